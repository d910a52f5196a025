"""Segments in the user's words: centroids in original units, characteristics, business names.

A characteristic is stated only when the difference is large (|standardized difference| >= 0.5,
or a share at least 15 points and 1.3x above the overall one) and significant (Welch's t-test
or a two-proportion z-test, p < 0.01), and it always carries the numbers behind it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from segmentation.pipeline.features import MISSING_LEVEL, numeric_values
from segmentation.pipeline.schema import (
    ADDITIVE_AXES,
    FieldRole,
    FieldSpec,
    Schema,
    axis_fields,
    axis_of,
)

__all__ = ["Evidence", "SegmentProfile", "format_number", "profile_segments"]

MIN_EFFECT_SD = 0.5
MIN_SHARE_LIFT = 1.3
MIN_SHARE_POINTS = 0.15
MAX_P_VALUE = 0.01
MAX_CHARACTERISTICS = 5
HIGH, LOW = 0.5, -0.5
# a prefix ("Young", "Senior", "Lapsing") needs a clearer difference than a level does
STRONG = 0.8
OUTLIERS_NAME = "Outliers"


@dataclass(frozen=True)
class Evidence:
    """One measured difference between a segment and everyone: the basis of a phrase."""

    field: str
    kind: str  # "mean" | "share" | "date"
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


def format_number(value: float) -> str:
    """Short human figure: 152k, 1.2M, 14.3, 0.42."""
    magnitude = abs(value)
    if magnitude >= 999_500:  # 999,999 reads 1.0M, not 1000k
        return f"{value / 1e6:.1f}M"
    if magnitude >= 1e4:
        return f"{value / 1e3:.0f}k"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def label(field: str) -> str:
    """A field name as a reader would write it: `CASH_ADVANCE` -> `Cash advance`,
    `NumWebPurchases` -> `Num Web Purchases`."""
    text = field.replace("_", " ").strip()
    if text.isupper():
        text = text.lower()
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return text[:1].upper() + text[1:]


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
    if spec.role is FieldRole.BOOLEAN:
        return f"{seg:.0%} {label(spec.name)} vs {overall:.0%} overall"
    return f"{seg:.0%} {level} ({label(spec.name)}) vs {overall:.0%} overall"


def _welch_p(values: np.ndarray, members: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test, segment against everyone else."""
    inside, outside = values[members], values[~members]
    inside, outside = inside[~np.isnan(inside)], outside[~np.isnan(outside)]
    if len(inside) < 2 or len(outside) < 2:
        return 1.0
    var_in, var_out = inside.var(ddof=1) / len(inside), outside.var(ddof=1) / len(outside)
    spread = var_in + var_out
    if spread <= 0:
        return 0.0 if inside.mean() != outside.mean() else 1.0
    t = (inside.mean() - outside.mean()) / math.sqrt(spread)
    # Welch-Satterthwaite degrees of freedom: small segments get the t distribution's tails
    dof = spread**2 / (var_in**2 / (len(inside) - 1) + var_out**2 / (len(outside) - 1))
    return float(2 * stats.t.sf(abs(t), dof))


def _proportion_p(hits_in: float, n_in: int, hits_out: float, n_out: int) -> float:
    if n_in == 0 or n_out == 0:
        return 1.0
    pooled = (hits_in + hits_out) / (n_in + n_out)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_in + 1 / n_out))
    if spread == 0:
        return 1.0
    z = (hits_in / n_in - hits_out / n_out) / spread
    return float(2 * stats.norm.sf(abs(z)))


def _cohens_h(p1: float, p2: float) -> float:
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


class _FieldStats:
    """Per-field numbers computed once for all segments."""

    def __init__(self, frame: pd.DataFrame, spec: FieldSpec, segment_ids: np.ndarray) -> None:
        self.spec = spec
        self.segment_ids = segment_ids
        if spec.role is FieldRole.CATEGORICAL:
            column = frame[spec.name].astype(object).where(frame[spec.name].notna(), MISSING_LEVEL)
            self.text: np.ndarray = column.map(str).to_numpy()
            shares = pd.Series(self.text).value_counts(normalize=True)
            self.overall_shares = {str(level): float(share) for level, share in shares.items()}
        else:
            self.values = numeric_values(frame, spec)
            present = self.values[~np.isnan(self.values)]
            self.overall_mean = float(present.mean()) if present.size else math.nan
            self.overall_sd = float(present.std()) if present.size else 0.0
            self.non_negative = bool(present.size and present.min() >= 0)

    def evidence(self, segment: int) -> list[Evidence]:
        members = self.segment_ids == segment
        n_in, n_out = int(members.sum()), int((~members).sum())
        spec = self.spec
        if spec.role is FieldRole.CATEGORICAL:
            found = []
            inside = pd.Series(self.text[members]).value_counts()
            for level, count in inside.items():
                seg_share = count / n_in
                overall = float(self.overall_shares[str(level)])
                out_hits = overall * len(self.text) - count
                h = _cohens_h(seg_share, overall)
                if (
                    seg_share - overall >= MIN_SHARE_POINTS
                    and seg_share >= MIN_SHARE_LIFT * overall
                    and _proportion_p(count, n_in, out_hits, n_out) < MAX_P_VALUE
                ):
                    found.append(
                        Evidence(spec.name, "share", seg_share, overall, h, 0.0, str(level),
                                 _share_phrase(spec, str(level), seg_share, overall))
                    )  # fmt: skip
            return found
        values = self.values
        seg_values = values[members]
        seg_values = seg_values[~np.isnan(seg_values)]
        if not seg_values.size or self.overall_sd == 0:
            return []
        seg_mean = float(seg_values.mean())
        if spec.role is FieldRole.BOOLEAN:
            n_present = int((~np.isnan(values)).sum())
            h = _cohens_h(min(max(seg_mean, 0.0), 1.0), min(max(self.overall_mean, 0.0), 1.0))
            out_hits = self.overall_mean * n_present - seg_mean * seg_values.size
            p = _proportion_p(seg_mean * seg_values.size, seg_values.size, out_hits,
                              n_present - seg_values.size)  # fmt: skip
            if (
                abs(seg_mean - self.overall_mean) >= MIN_SHARE_POINTS
                and p < MAX_P_VALUE
                and (
                    seg_mean >= MIN_SHARE_LIFT * self.overall_mean
                    or (1 - seg_mean) >= MIN_SHARE_LIFT * (1 - self.overall_mean)
                )
            ):
                phrase = _share_phrase(spec, None, seg_mean, self.overall_mean)
                return [
                    Evidence(spec.name, "share", seg_mean, self.overall_mean, h, p, None, phrase)
                ]
            return []
        effect = (seg_mean - self.overall_mean) / self.overall_sd
        p = _welch_p(values, members)
        if abs(effect) >= MIN_EFFECT_SD and p < MAX_P_VALUE:
            kind = "date" if spec.role is FieldRole.DATE else "mean"
            phrase = _mean_phrase(spec, seg_mean, self.overall_mean, self.non_negative)
            return [Evidence(spec.name, kind, seg_mean, self.overall_mean, effect, p, None, phrase)]
        return []

    def standardized(self, segment: int) -> float:
        """Segment mean minus overall mean in overall SDs (shares for categories: not used)."""
        if self.spec.role is FieldRole.CATEGORICAL or self.overall_sd == 0:
            return 0.0
        seg_values = self.values[self.segment_ids == segment]
        seg_values = seg_values[~np.isnan(seg_values)]
        if not seg_values.size:
            return 0.0
        return float((seg_values.mean() - self.overall_mean) / self.overall_sd)

    def centroid(self, segment: int) -> float | None:
        seg_values = self.values[self.segment_ids == segment]
        seg_values = seg_values[~np.isnan(seg_values)]
        return float(f"{seg_values.mean():.6g}") if seg_values.size else None

    def shares(self, segment: int) -> dict[str, float]:
        inside = pd.Series(self.text[self.segment_ids == segment]).value_counts(normalize=True)
        return {str(level): round(float(share), 4) for level, share in inside.items()}


# Names by (income level, spend level), and by (value level, frequency level).
INCOME_SPEND_NAMES = {
    ("H", "H"): "High-Value Customers", ("H", "L"): "Cautious Affluent Customers",
    ("L", "H"): "Impulsive Spenders", ("L", "L"): "Budget-Conscious Customers",
    ("M", "M"): "Mainstream Customers", ("H", "M"): "Affluent Moderate Spenders",
    ("L", "M"): "Modest-Income Customers", ("M", "H"): "Enthusiastic Spenders",
    ("M", "L"): "Low-Spending Customers",
}  # fmt: skip
VALUE_FREQUENCY_NAMES = {
    ("H", "H"): "Champions", ("H", "L"): "Big-Ticket Occasional Buyers",
    ("L", "H"): "Frequent Bargain Hunters", ("L", "L"): "Low-Engagement Customers",
    ("M", "M"): "Core Customers", ("H", "M"): "High-Value Customers",
    ("M", "H"): "Loyal Regulars", ("L", "M"): "Light Spenders", ("M", "L"): "Occasional Buyers",
}  # fmt: skip
AVERAGE_NAMES = frozenset(
    {"Mainstream Customers", "Core Customers", "Mid-Value Customers", "Regular Buyers"}
)
VALUE_NAMES = {"H": "High-Value Customers", "M": "Mid-Value Customers", "L": "Low-Value Customers"}


def field_axis(spec: FieldSpec, values: np.ndarray | None) -> str | None:
    """`axis_of` for a field of the data, whose values say whether it counts."""
    if spec.role not in (FieldRole.NUMERIC, FieldRole.DATE):
        return None
    is_count = values is not None and bool(np.all(np.mod(values[~np.isnan(values)], 1) == 0))
    return axis_of(spec.name, is_count)


def _level(z: float) -> str:
    return "H" if z >= HIGH else "L" if z <= LOW else "M"


class _AxisScores:
    """Each segment's standardized level on each business axis, for naming.

    An additive axis (income, spend, frequency) made of several fields is scored on their
    per-customer sum (missing values at the field's mean), so six spend fields name a segment
    by its total spend; age and recency average their fields' standardized differences.
    """

    def __init__(
        self, stats_by_field: list[_FieldStats], axes: dict[str, str], segment_ids: np.ndarray
    ) -> None:
        self.segment_ids = segment_ids
        by_name = {s.spec.name: s for s in stats_by_field}
        self.totals: dict[str, tuple[np.ndarray, float, float]] = {}
        self.averaged: dict[str, list[_FieldStats]] = {}
        for axis, fields in axis_fields(axes).items():
            members = [by_name[f] for f in fields]
            if axis in ADDITIVE_AXES:
                total = np.zeros(len(segment_ids))
                for member in members:
                    total += np.where(np.isnan(member.values), member.overall_mean, member.values)
                self.totals[axis] = (total, float(total.mean()), float(total.std()))
            else:
                self.averaged[axis] = members

    def __call__(self, segment: int) -> dict[str, float]:
        scores = {}
        inside = self.segment_ids == segment
        for axis, (total, mean, sd) in self.totals.items():
            scores[axis] = float((total[inside].mean() - mean) / sd) if sd > 0 else 0.0
        for axis, members in self.averaged.items():
            zs = []
            for field_stats in members:
                z = field_stats.standardized(segment)
                if axis == "age" and "birth" in field_stats.spec.name.lower():
                    z = -z  # a later birth year is a younger customer
                if axis == "recency" and field_stats.spec.role is FieldRole.DATE:
                    z = -z  # a later last-purchase date is a more recent customer
                zs.append(z)
            scores[axis] = float(np.mean(zs))
        return scores


def _business_name(axis: dict[str, float], evidence: list[Evidence]) -> str | None:
    if "income" in axis and "spend" in axis:
        base = INCOME_SPEND_NAMES[(_level(axis["income"]), _level(axis["spend"]))]
    elif ("spend" in axis or "income" in axis) and "frequency" in axis:
        value = axis.get("spend", axis.get("income", 0.0))
        base = VALUE_FREQUENCY_NAMES[(_level(value), _level(axis["frequency"]))]
    elif "spend" in axis or "income" in axis:
        base = VALUE_NAMES[_level(axis.get("spend", axis.get("income", 0.0)))]
    elif "frequency" in axis:
        base = {"H": "Frequent Buyers", "M": "Regular Buyers", "L": "Infrequent Buyers"}[
            _level(axis["frequency"])
        ]
    else:
        return None
    if axis.get("recency", 0.0) >= STRONG:
        base = "Lapsing " + base
    age = axis.get("age", 0.0)
    if age <= -STRONG:
        base = "Young " + base
    elif age >= STRONG:
        base = "Senior " + base
    return base


# words that carry no meaning in a segment's name: "Num Web Visits Month" reads "Web Visits"
FILLER_WORDS = frozenset(
    {"num", "number", "nb", "n", "mnt", "amt", "amount", "month", "monthly", "per", "of", "the",
     "total", "count", "avg", "average", "k", "1", "100"}
)  # fmt: skip
MAX_NAME_LENGTH = 40
MAX_NAME_WORDS = 3


def short_label(field: str) -> str:
    """A field's label for a name: filler and unit words dropped, at most three words.

    Examples
    --------
    >>> [short_label(f) for f in ("NumWebVisitsMonth", "MntWines", "Annual Income (k$)")]
    ['Web Visits', 'Wines', 'Annual Income']
    """
    words = [w for w in re.split(r"[\s()$%/_-]+", label(field)) if w]
    kept = [w for w in words if w.lower() not in FILLER_WORDS] or words
    return " ".join(w[:1].upper() + w[1:] for w in kept[:MAX_NAME_WORDS])


def _descriptor(item: Evidence) -> tuple[str, str]:
    """("High", "Grocery"), ("Mostly", "Female"): the qualifier and what it qualifies."""
    if item.kind == "share":
        return "Mostly", item.level if item.level else short_label(item.field)
    return ("High" if item.effect > 0 else "Low"), short_label(item.field)


def _field_name(evidence: list[Evidence]) -> str:
    """A short name from the one or two most different fields ("High Grocery & Milk
    Customers"), within MAX_NAME_LENGTH characters."""
    top = [_descriptor(e) for e in sorted(evidence, key=lambda e: -abs(e.effect))[:2]]
    if not top:
        return "Typical Customers"
    (qualifier, what), *rest = top
    options = [f"{qualifier} {what}"]
    if rest:
        other_qualifier, other = rest[0]
        joined = other if other_qualifier == qualifier else f"{other_qualifier.lower()} {other}"
        options.insert(0, f"{qualifier} {what} & {joined}")
    for option in options:
        if len(option) + len(" Customers") <= MAX_NAME_LENGTH:
            return f"{option} Customers"
    return options[-1][:MAX_NAME_LENGTH]


# how look-alike segments are told apart, from the lowest value of their most different field
RANK_WORDS = {2: ("Lower", "Higher"), 3: ("Lowest", "Middle", "Highest")}


def _make_unique(
    names: list[str], evidence: list[list[Evidence]], standardized: list[dict[str, float]]
) -> list[str]:
    """Shared names get the field on which the holders differ most ("Higher Age" / "Lower
    Age"); an average-profile name shared by several segments says nothing, so those are
    named after their own fields."""
    result = list(names)
    for name in sorted(set(names)):
        holders = [i for i, n in enumerate(names) if n == name]
        if len(holders) < 2:
            continue
        if name in AVERAGE_NAMES:
            for i in holders:
                result[i] = _field_name(evidence[i])
            continue
        spreads = {
            field: max(standardized[i][field] for i in holders)
            - min(standardized[i][field] for i in holders)
            for field in standardized[holders[0]]
        }
        field = max(spreads, key=lambda f: spreads[f], default=None)
        if field is not None and spreads[field] >= MIN_EFFECT_SD:
            ranked = sorted(holders, key=lambda i: standardized[i][field])
            rank_words = RANK_WORDS.get(len(ranked))
            for rank, i in enumerate(ranked):
                word = rank_words[rank] if rank_words else f"#{rank + 1} by"
                result[i] = f"{name} ({word} {short_label(field)})"
            continue
        for i in holders:
            lowered = name.lower()
            extra = next(
                (e for e in sorted(evidence[i], key=lambda e: -abs(e.effect))
                 if label(e.field).lower() not in lowered),
                None,
            )  # fmt: skip
            if extra is not None:
                result[i] = f"{name} ({' '.join(_descriptor(extra))})"
    seen: dict[str, int] = {}
    for i, name in enumerate(result):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            result[i] = f"{name} {seen[name]}"
    return result


def _no_difference(standardized: dict[str, float], size: int) -> str:
    """The phrase for a segment with no stated difference, honest about why there is none."""
    field, largest = max(standardized.items(), key=lambda kv: abs(kv[1]), default=("", 0.0))
    detail = f" (largest difference: {label(field)} {largest:+.1f} SD)" if field else ""
    if abs(largest) >= MIN_EFFECT_SD:
        # a large difference that is not significant: too few customers to tell
        customers = "customer" if size == 1 else "customers"
        return f"No difference is significant with {size} {customers}{detail}"
    return f"Close to the average on every field{detail}"


def profile_segments(
    frame: pd.DataFrame,
    schema: Schema,
    segment_ids: np.ndarray,
    n_segments: int,
    outlier_segment: int | None = None,
) -> tuple[list[SegmentProfile], dict[str, str]]:
    """One profile per segment 0..n_segments-1 (the outlier segment, if any, is named Outliers),
    and the business axis of each field that has one (see `schema.axis_of`)."""
    stats_by_field = [_FieldStats(frame, spec, segment_ids) for spec in schema.features]
    axes = {}
    for field_stats in stats_by_field:
        values = getattr(field_stats, "values", None)
        axis = field_axis(field_stats.spec, values)
        if axis is not None:
            axes[field_stats.spec.name] = axis
    axis_scores = _AxisScores(stats_by_field, axes, segment_ids)
    names, evidence_lists, partial = [], [], []
    for segment in range(n_segments):
        evidence = [item for s in stats_by_field for item in s.evidence(segment)]
        evidence.sort(key=lambda e: -abs(e.effect))
        centroid = {
            s.spec.name: s.centroid(segment)
            for s in stats_by_field
            if s.spec.role in (FieldRole.NUMERIC, FieldRole.BOOLEAN)
        }
        categories = {
            s.spec.name: s.shares(segment)
            for s in stats_by_field
            if s.spec.role is FieldRole.CATEGORICAL
        }
        standardized = {s.spec.name: s.standardized(segment) for s in stats_by_field}
        if segment == outlier_segment:
            name = OUTLIERS_NAME
        else:
            name = _business_name(axis_scores(segment), evidence) or (_field_name(evidence))
        characteristics = [e.phrase for e in evidence[:MAX_CHARACTERISTICS]]
        if not characteristics:
            characteristics = [_no_difference(standardized, int((segment_ids == segment).sum()))]
        names.append(name)
        evidence_lists.append(evidence)
        partial.append(
            (centroid, categories, tuple(characteristics), tuple(evidence), standardized)
        )
    names = _make_unique(names, evidence_lists, [p[4] for p in partial])
    profiles = [
        SegmentProfile(name, centroid, categories, characteristics, evidence, standardized)
        for name, (centroid, categories, characteristics, evidence, standardized) in zip(
            names, partial, strict=True
        )
    ]
    return profiles, axes
