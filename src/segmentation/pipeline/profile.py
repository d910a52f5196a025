"""Segments in the user's words: centroids in original units, characteristics, outcomes.

A characteristic is stated only when the difference is large (|standardized difference| >= 0.5,
or a share at least 15 points and 1.3x above the overall one) and significant (Welch's t-test
or a two-proportion z-test, p < 0.01), and it always carries the numbers behind it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segmentation.pipeline.features import MISSING_LEVEL, category_codes, numeric_values
from segmentation.pipeline.naming import OUTLIERS_NAME, business_name, field_name, make_unique
from segmentation.pipeline.outcomes import (
    PRESENT,
    OutcomeSummary,
    segment_moments,
    summarize_outcome,
)
from segmentation.pipeline.schema import (
    ADDITIVE_AXES,
    FieldRole,
    FieldSpec,
    Schema,
    axis_fields,
    axis_of,
    joined,
)
from segmentation.pipeline.words import format_number, is_generic_level, label, level_phrase

__all__ = [
    "OUTLIERS_NAME",
    "Evidence",
    "FieldSummary",
    "SegmentProfile",
    "describe",
    "profile_segments",
    "summarize",
]

MIN_EFFECT_SD = 0.5
# fields this often without a value (or with a placeholder) have that as a trait to describe
MISSING_TRAIT_SHARE = 0.05
MIN_SHARE_LIFT = 1.3
MIN_SHARE_POINTS = 0.15
MAX_P_VALUE = 0.01
MAX_CHARACTERISTICS = 5


@dataclass(frozen=True)
class Evidence:
    """One measured difference between a segment and everyone: the basis of a phrase."""

    field: str
    kind: str  # "mean" | "share" | "date" | "missing" (no value) | "outcome"
    segment_value: float
    overall_value: float
    effect: float  # standardized difference (means) or Cohen's h (shares)
    p_value: float
    level: str | None = None
    phrase: str = ""


@dataclass(frozen=True)
class SegmentProfile:
    name: str
    centroid: dict[str, float | None]
    categories: dict[str, dict[str, float]]
    characteristics: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    standardized: dict[str, float]
    #: each outcome's rate or mean in the segment (None: no customer has a value)
    outcomes: dict[str, float | None] = field(default_factory=dict)


def _date_text(days: float) -> str:
    return (pd.Timestamp("1970-01-01") + pd.Timedelta(days=round(days))).strftime("%Y-%m-%d")


def _mean_phrase(spec: FieldSpec, seg: float, overall: float, non_negative: bool) -> str:
    if spec.role is FieldRole.DATE:
        direction = "later" if seg > overall else "earlier"
        figures = f"({_date_text(seg)} vs {_date_text(overall)})"
        return f"{label(spec.name)} {direction} than average {figures}"
    figures = f"({format_number(seg)} vs {format_number(overall)})"
    if non_negative and overall > 0:
        ratio = seg / overall
        if ratio >= 1.5:
            return f"{label(spec.name)} {ratio:.1f}x the average {figures}"
        if ratio <= 2 / 3:
            return f"{label(spec.name)} {(1 - ratio) * 100:.0f}% below the average {figures}"
    direction = "above" if seg > overall else "below"
    return f"{label(spec.name)} {direction} average {figures}"


def _share_phrase(spec: FieldSpec, level: str | None, seg: float, overall: float) -> str:
    """ "45% Partner", "60% No Internet Service", "95% Fiber optic (Internet service)", "30%
    with no Channel sales", each against the overall share."""
    if level == MISSING_LEVEL:
        what = f"with no {label(spec.name)}"
    elif level is None or is_generic_level(level):
        what = level_phrase(spec.name, level)
    else:
        what = f"{level} ({label(spec.name)})"
    return f"{seg:.0%} {what} vs {overall:.0%} overall"


def _welch_p(
    mean_in: float, var_in: float, n_in: int, mean_out: float, var_out: float, n_out: int
) -> float:
    """Two-sided p-value of Welch's t-test, segment against everyone else, from each side's
    count, mean and variance (ddof=1)."""
    from scipy import special

    if n_in < 2 or n_out < 2:
        return 1.0
    var_in, var_out = max(var_in, 0.0) / n_in, max(var_out, 0.0) / n_out
    spread = var_in + var_out
    if spread <= 0:
        return 0.0 if mean_in != mean_out else 1.0
    t = (mean_in - mean_out) / math.sqrt(spread)
    # Welch-Satterthwaite degrees of freedom: small segments get the t distribution's tails
    dof = spread**2 / (var_in**2 / (n_in - 1) + var_out**2 / (n_out - 1))
    # Student's t CDF itself: scipy.stats' distribution objects cost 100x the call
    return float(2 * special.stdtr(dof, -abs(t)))


def _proportion_p(hits_in: float, n_in: int, hits_out: float, n_out: int) -> float:
    from scipy import special

    if n_in == 0 or n_out == 0:
        return 1.0
    pooled = (hits_in + hits_out) / (n_in + n_out)
    spread = math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / n_in + 1 / n_out))
    if spread == 0:
        return 1.0
    z = (hits_in / n_in - hits_out / n_out) / spread
    return float(2 * special.ndtr(-abs(z)))


def _cohens_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


@dataclass(frozen=True)
class FieldSummary:
    """What a segment's characteristics are tested on, for one field, per segment id.

    A numeric, boolean or date field: the count, mean and variance (ddof=1) of its present
    values. A categorical field: the count of each level (missing values as MISSING_LEVEL).
    Sufficient statistics, so that an engine which aggregates where the data lives (Spark)
    tests every customer with the same code as the local one (`summarize`).
    """

    spec: FieldSpec
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    minimum: float = math.nan
    levels: dict[str, np.ndarray] | None = None
    #: customers per segment, with a value or without (None: not known)
    rows: np.ndarray | None = None

    @classmethod
    def of_levels(cls, spec: FieldSpec, levels: dict[str, np.ndarray]) -> FieldSummary:
        size = np.sum(list(levels.values()), axis=0) if levels else np.zeros(0)
        empty = np.full(len(size), math.nan)
        return cls(spec, np.asarray(size, dtype=np.int64), empty, empty, levels=levels)

    @property
    def total(self) -> int:
        return int(self.count.sum())

    @property
    def overall_mean(self) -> float:
        present = self.count > 0
        total = self.count[present].sum()
        return (
            float((self.count[present] * self.mean[present]).sum() / total) if total else math.nan
        )

    @property
    def _overall_m2(self) -> float:
        """The sum of squared deviations from the overall mean (Chan's pooled formula)."""
        present = self.count > 0
        within = np.where(self.count[present] > 1, self.var[present], 0.0)
        spread = (self.mean[present] - self.overall_mean) ** 2
        return float(((self.count[present] - 1) * within + self.count[present] * spread).sum())

    @property
    def overall_sd(self) -> float:
        """The population standard deviation of every present value (ddof=0)."""
        return math.sqrt(max(self._overall_m2, 0.0) / self.total) if self.total else 0.0

    def outside(self, segment: int) -> tuple[float, float, int]:
        """Mean, variance (ddof=1) and count of the present values outside `segment`."""
        n_in, n_out = int(self.count[segment]), self.total - int(self.count[segment])
        if n_out == 0:
            return math.nan, math.nan, 0
        mu = self.overall_mean
        mean_in = float(self.mean[segment]) if n_in else 0.0
        var_in = float(self.var[segment]) if n_in > 1 else 0.0
        mean_out = (self.total * mu - n_in * mean_in) / n_out
        m2_out = (
            self._overall_m2 - (n_in - 1) * var_in * (n_in > 1)
            - n_in * (mean_in - mu) ** 2 - n_out * (mean_out - mu) ** 2
        )  # fmt: skip
        return mean_out, max(m2_out, 0.0) / (n_out - 1) if n_out > 1 else 0.0, n_out

    def shares(self, segment: int) -> dict[str, float]:
        assert self.levels is not None
        size = int(self.count[segment])
        counts = sorted(
            ((level, int(c[segment])) for level, c in self.levels.items() if c[segment]),
            key=lambda kv: -kv[1],
        )
        return {level: round(c / size, 4) for level, c in counts} if size else {}

    def standardized(self, segment: int) -> float:
        """Segment mean minus overall mean in overall SDs (0 for categories: not used)."""
        sd = self.overall_sd
        if self.levels is not None or sd == 0 or not self.count[segment]:
            return 0.0
        return float((self.mean[segment] - self.overall_mean) / sd)

    def centroid(self, segment: int) -> float | None:
        return float(f"{self.mean[segment]:.6g}") if self.count[segment] else None

    def evidence(self, segment: int) -> list[Evidence]:
        if self.levels is not None:
            return self._share_evidence(segment)
        return self._mean_evidence(segment) + self._missing_evidence(segment)

    def _missing_evidence(self, segment: int) -> list[Evidence]:
        """The segment's share of customers with no value (or a placeholder: a salary of
        0, a year never set), when that share is a trait: the encoding marks it once
        missing values are common (features.MISSING_INDICATOR_SHARE)."""
        if self.rows is None or not self.rows[segment]:
            return []
        rows, total_rows = int(self.rows[segment]), int(self.rows.sum())
        missing_in = rows - int(self.count[segment])
        overall = (total_rows - self.total) / total_rows if total_rows else 0.0
        if not MISSING_TRAIT_SHARE <= overall <= 1 - MISSING_TRAIT_SHARE:
            return []
        share = missing_in / rows
        # said the way the segment stands out: "with no X" when it lacks X more often
        without = share >= overall
        seg, ref = (share, overall) if without else (1 - share, 1 - overall)
        p = _proportion_p(missing_in, rows, overall * total_rows - missing_in, total_rows - rows)
        if seg - ref >= MIN_SHARE_POINTS and seg >= MIN_SHARE_LIFT * ref and p < MAX_P_VALUE:
            words = "with no" if without else "with a"
            phrase = f"{seg:.0%} {words} {label(self.spec.name)} vs {ref:.0%} overall"
            h = _cohens_h(seg, ref)
            return [Evidence(self.spec.name, "missing", seg, ref, h, p, None, phrase)]
        return []

    def _mean_evidence(self, segment: int) -> list[Evidence]:
        spec = self.spec
        n_in = int(self.count[segment])
        sd, overall = self.overall_sd, self.overall_mean
        if not n_in or sd == 0:
            return []
        seg_mean = float(self.mean[segment])
        if spec.role is FieldRole.BOOLEAN:
            h = _cohens_h(min(max(seg_mean, 0.0), 1.0), min(max(overall, 0.0), 1.0))
            out_hits = overall * self.total - seg_mean * n_in
            p = _proportion_p(seg_mean * n_in, n_in, out_hits, self.total - n_in)
            if (
                abs(seg_mean - overall) >= MIN_SHARE_POINTS
                and p < MAX_P_VALUE
                and (
                    seg_mean >= MIN_SHARE_LIFT * overall
                    or (1 - seg_mean) >= MIN_SHARE_LIFT * (1 - overall)
                )
            ):
                phrase = _share_phrase(spec, None, seg_mean, overall)
                return [Evidence(spec.name, "share", seg_mean, overall, h, p, None, phrase)]
            return []
        effect = (seg_mean - overall) / sd
        mean_out, var_out, n_out = self.outside(segment)
        p = _welch_p(seg_mean, float(self.var[segment]), n_in, mean_out, var_out, n_out)
        if abs(effect) >= MIN_EFFECT_SD and p < MAX_P_VALUE:
            kind = "date" if spec.role is FieldRole.DATE else "mean"
            non_negative = bool(self.minimum >= 0)
            phrase = _mean_phrase(spec, seg_mean, overall, non_negative)
            return [Evidence(spec.name, kind, seg_mean, overall, effect, p, None, phrase)]
        return []

    def _share_evidence(self, segment: int) -> list[Evidence]:
        assert self.levels is not None
        spec, n_in = self.spec, int(self.count[segment])
        total = self.total
        found = []
        for level in self.shares(segment):
            count = int(self.levels[level][segment])
            seg_share = count / n_in
            overall = float(self.levels[level].sum() / total)
            h = _cohens_h(seg_share, overall)
            if (
                seg_share - overall >= MIN_SHARE_POINTS
                and seg_share >= MIN_SHARE_LIFT * overall
                and _proportion_p(count, n_in, overall * total - count, total - n_in) < MAX_P_VALUE
            ):
                phrase = _share_phrase(spec, level, seg_share, overall)
                found.append(
                    Evidence(spec.name, "share", seg_share, overall, h, 0.0, level, phrase)
                )
        return found


def summarize(
    frame: pd.DataFrame, spec: FieldSpec, segment_ids: np.ndarray, n_segments: int
) -> tuple[FieldSummary, np.ndarray | None]:
    """A field's FieldSummary over the customers of `frame`, in one vectorised pass, and its
    values as float64 (None for a categorical field)."""
    if spec.role is FieldRole.CATEGORICAL:
        codes, uniques = category_codes(frame[spec.name])
        cells = np.bincount(segment_ids * len(uniques) + codes, minlength=n_segments * len(uniques))
        table = cells.reshape(n_segments, len(uniques))
        return FieldSummary.of_levels(
            spec, {str(level): table[:, j] for j, level in enumerate(uniques)}
        ), None
    values = numeric_values(frame, spec)
    count, mean, var = segment_moments(values, segment_ids, n_segments)
    kept = values[~np.isnan(values)]
    minimum = float(kept.min()) if kept.size else math.nan
    rows = np.bincount(segment_ids, minlength=n_segments)
    return FieldSummary(spec, count, mean, var, minimum, rows=rows), values


def field_axis(spec: FieldSpec, values: np.ndarray | None) -> str | None:
    """`axis_of` for a field of the data, whose values say whether it counts."""
    if spec.role not in (FieldRole.NUMERIC, FieldRole.DATE):
        return None
    is_count = values is not None and bool(np.all(np.mod(values[~np.isnan(values)], 1) == 0))
    return axis_of(spec.name, is_count)


class _AxisScores:
    """Each segment's standardized level on each business axis, for naming.

    An additive axis (income, spend, frequency) made of several fields is scored on their
    per-customer sum (missing values at the field's mean), so six spend fields name a segment
    by its total spend; age and recency average their fields' standardized differences.
    """

    def __init__(
        self,
        summaries: dict[str, FieldSummary],
        values: dict[str, np.ndarray],
        axes: dict[str, str],
        segment_ids: np.ndarray,
        n_segments: int,
    ) -> None:
        self.totals: dict[str, FieldSummary] = {}
        self.averaged: dict[str, list[FieldSummary]] = {}
        for axis, fields in axis_fields(axes).items():
            members = [summaries[f] for f in fields]
            if axis in ADDITIVE_AXES:
                total = np.zeros(len(segment_ids))
                for member in members:
                    own = values[member.spec.name]
                    total += np.where(np.isnan(own), member.overall_mean, own)
                spec = FieldSpec(axis, FieldRole.NUMERIC)
                self.totals[axis], _ = summarize(
                    pd.DataFrame({axis: total}), spec, segment_ids, n_segments
                )
            else:
                self.averaged[axis] = members

    def __call__(self, segment: int) -> dict[str, float]:
        scores = {axis: total.standardized(segment) for axis, total in self.totals.items()}
        for axis, members in self.averaged.items():
            zs = []
            for member in members:
                z = member.standardized(segment)
                if axis == "age" and "birth" in member.spec.name.lower():
                    z = -z  # a later birth year is a younger customer
                if axis == "recency" and member.spec.role is FieldRole.DATE:
                    z = -z  # a later last-purchase date is a more recent customer
                if axis == "tenure" and joined(member.spec.name):
                    z = -z  # a later enrolment is a newer customer
                zs.append(z)
            scores[axis] = float(np.mean(zs))
        return scores


def _no_difference(standardized: dict[str, float], size: int) -> str:
    """The phrase for a segment with no stated difference, honest about why there is none."""
    field, largest = max(standardized.items(), key=lambda kv: abs(kv[1]), default=("", 0.0))
    detail = f" (largest difference: {label(field)} {largest:+.1f} SD)" if field else ""
    if abs(largest) >= MIN_EFFECT_SD:
        # a large difference that is not significant: too few customers to tell
        customers = "customer" if size == 1 else "customers"
        return f"No difference is significant with {size} {customers}{detail}"
    return f"Close to the average on every field{detail}"


# an outcome worth a phrase: this far from its overall rate (relative, and in points) or mean
OUTCOME_LIFT = 1.2
OUTCOME_POINTS = 0.02
OUTCOME_EFFECT_SD = 0.2
YES_TEXTS = frozenset({"yes", "y", "true", "t", "1"})


def outcome_of(summary: OutcomeSummary, segment: int) -> float | None:
    """An outcome's rate or mean in one segment (None: no customer there has a value)."""
    return float(summary.mean[segment]) if summary.count[segment] else None


def outcome_phrase(summary: OutcomeSummary, value: float, overall: float) -> str:
    """'Churn: 59% vs 27% overall', 'Attrited Customer (Attrition flag): 41% vs 16%
    overall', 'Target 12.3 vs 8.1 overall'."""
    name = label(summary.field)
    if summary.kind == "mean":
        return f"{name} {format_number(value)} vs {format_number(overall)} overall"
    positive = summary.positive or ""
    if positive == PRESENT:
        what = f"With a {name.lower()}"
    elif positive.casefold() in YES_TEXTS:
        what = name
    else:
        what = f"{positive} ({name})"
    return f"{what}: {value:.0%} vs {overall:.0%} overall"


def outcome_evidence(summary: OutcomeSummary, segment: int) -> Evidence | None:
    """The outcome's difference in a segment, when it is large and significant."""
    n_in, total = int(summary.count[segment]), int(summary.count.sum())
    overall = summary.overall
    if not n_in or n_in == total or not math.isfinite(overall):
        return None
    value = float(summary.mean[segment])
    out_mean = (overall * total - value * n_in) / (total - n_in)
    if summary.kind == "rate":
        p = _proportion_p(value * n_in, n_in, out_mean * (total - n_in), total - n_in)
        lifted = value >= OUTCOME_LIFT * overall or value <= overall / OUTCOME_LIFT
        large = lifted and abs(value - overall) >= OUTCOME_POINTS
        effect = _cohens_h(min(max(value, 0.0), 1.0), min(max(overall, 0.0), 1.0))
    else:
        # the mean's test is a numeric field's: the same pooled spread and Welch's test
        numbers = FieldSummary(
            FieldSpec(summary.field, FieldRole.NUMERIC), summary.count, summary.mean, summary.var
        )
        sd = numbers.overall_sd
        effect = (value - overall) / sd if sd else 0.0
        mean_out, var_out, n_out = numbers.outside(segment)
        var_in = float(summary.var[segment]) if n_in > 1 else 0.0
        p = _welch_p(value, var_in, n_in, mean_out, var_out, n_out)
        large = abs(effect) >= OUTCOME_EFFECT_SD
    if not large or p >= MAX_P_VALUE:
        return None
    phrase = outcome_phrase(summary, value, overall)
    return Evidence(summary.field, "outcome", value, overall, effect, p, summary.positive, phrase)


def describe(
    summaries: Sequence[FieldSummary],
    segment: int,
    size: int,
    outcomes: Sequence[OutcomeSummary] = (),
) -> tuple[tuple[Evidence, ...], tuple[str, ...], dict[str, float]]:
    """A segment's evidence (largest difference first), its characteristics (the phrases of
    its outcomes that differ, then of at most MAX_CHARACTERISTICS traits, or why there is
    none) and its standardized means. Outcomes are said but never evidence for a name."""
    evidence = sorted(
        (item for summary in summaries for item in summary.evidence(segment)),
        key=lambda e: -abs(e.effect),
    )
    standardized = {s.spec.name: s.standardized(segment) for s in summaries}
    characteristics = [e.phrase for e in evidence[:MAX_CHARACTERISTICS]]
    if not characteristics:
        characteristics = [_no_difference(standardized, size)]
    stated = [found for o in outcomes if (found := outcome_evidence(o, segment)) is not None]
    stated.sort(key=lambda e: -abs(e.effect))
    return tuple(evidence), (*(e.phrase for e in stated), *characteristics), standardized


def centroid_of(summaries: Sequence[FieldSummary], segment: int) -> dict[str, float | None]:
    """The segment's mean of each numeric and boolean field, in the field's units."""
    return {
        s.spec.name: s.centroid(segment)
        for s in summaries
        if s.spec.role in (FieldRole.NUMERIC, FieldRole.BOOLEAN)
    }


def categories_of(summaries: Sequence[FieldSummary], segment: int) -> dict[str, dict[str, float]]:
    """The segment's share of each level of each categorical field, largest first."""
    return {s.spec.name: s.shares(segment) for s in summaries if s.levels is not None}


def outcome_summaries(
    frame: pd.DataFrame, schema: Schema, segment_ids: np.ndarray, n_segments: int
) -> list[OutcomeSummary]:
    """Each outcome's count, rate or mean, and variance per segment (the frame as read by
    `schema.clean`: an outcome is 0/1 or its numbers)."""
    return [
        summarize_outcome(
            spec.name, spec.positive, spec.meaning,  # type: ignore[arg-type]
            frame[spec.name].to_numpy(dtype=float, na_value=np.nan), segment_ids, n_segments,
        )
        for spec in schema.outcomes
    ]  # fmt: skip


def profile_segments(
    frame: pd.DataFrame,
    schema: Schema,
    segment_ids: np.ndarray,
    n_segments: int,
    outlier_segment: int | None = None,
) -> tuple[list[SegmentProfile], dict[str, str]]:
    """One profile per segment 0..n_segments-1 (the outlier segment, if any, is named Outliers),
    and the business axis of each field that has one (see `schema.axis_of`)."""
    summaries, values = [], {}
    for spec in schema.features:
        summary, own = summarize(frame, spec, segment_ids, n_segments)
        summaries.append(summary)
        if own is not None:
            values[spec.name] = own
    axes = {}
    for summary in summaries:
        axis = field_axis(summary.spec, values.get(summary.spec.name))
        if axis is not None:
            axes[summary.spec.name] = axis
    outcomes = outcome_summaries(frame, schema, segment_ids, n_segments)
    by_name = {s.spec.name: s for s in summaries}
    axis_scores = _AxisScores(by_name, values, axes, segment_ids, n_segments)
    sizes = np.bincount(segment_ids, minlength=n_segments)
    names, described = [], []
    for segment in range(n_segments):
        evidence, characteristics, standardized = describe(
            summaries, segment, int(sizes[segment]), outcomes
        )
        if segment == outlier_segment:
            names.append(OUTLIERS_NAME)
        else:
            names.append(business_name(axis_scores(segment), evidence) or field_name(evidence))
        described.append((evidence, characteristics, standardized))
    names = make_unique(names, [d[0] for d in described], [d[2] for d in described])
    return [
        SegmentProfile(
            name,
            centroid_of(summaries, segment),
            categories_of(summaries, segment),
            characteristics,
            evidence,
            standardized,
            {o.field: outcome_of(o, segment) for o in outcomes},
        )
        for segment, (name, (evidence, characteristics, standardized)) in enumerate(
            zip(names, described, strict=True)
        )
    ], axes
