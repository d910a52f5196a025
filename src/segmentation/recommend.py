"""Advice from an analysis: one concrete action per segment, ordered by business impact.

Impact is size x value, where value is the segment's spend (or, without spend fields, income)
relative to the customer-weighted average. Each recommendation names its segment and cites the
figures that justify it; a refit's advice follows (the largest movements between segments,
segments that emerged or disappeared, fields that drifted: see pipeline/lineage.py), then
cross-segment advice (a large segment that spends little, value concentrated in few
customers, segments too unstable to act on).

Works on a full `Analysis` or on the summaries a front end posts back (customers optional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from segmentation.pipeline.lineage import PSI_SIGNIFICANT, Lineage, Transition, drifted, flows
from segmentation.pipeline.profile import OUTLIERS_NAME, format_number, label
from segmentation.pipeline.schema import ADDITIVE_AXES, AXIS_LABELS, axis_fields, axis_of
from segmentation.results import Analysis

__all__ = [
    "Direction",
    "Figure",
    "Recommendation",
    "SegmentSummary",
    "recommend",
    "summaries_of",
]

HIGH_RATIO, LOW_RATIO = 1.25, 0.8
UNSTABLE_BELOW = 0.6
# value concentration worth a word: 1.5x the segment's share of customers and a quarter of all
CONCENTRATION_LIFT = 1.5
CONCENTRATION_MIN_SHARE = 0.25
# a "large" segment holds a fifth of the customers; the uplift assumes a tenth of it moves
LARGE_SEGMENT_SHARE = 0.2
UPLIFT_SHARE = 0.1


@dataclass(frozen=True)
class SegmentSummary:
    """What recommendations need to know about one segment."""

    cluster_id: int
    name: str
    size: int
    centroid: Mapping[str, float | None]
    characteristics: Sequence[str] = ()
    stability: float | None = None
    is_outliers: bool = False


class Direction(StrEnum):
    """What a sentence says of a cited figure, against the average."""

    ABOVE = "above"
    BELOW = "below"
    NEAR = "near"


@dataclass(frozen=True)
class Figure:
    """A number cited in advice: the segment's value of a business axis, the average, and what
    the sentence claims of it. `holds` checks the claim against the numbers."""

    label: str
    value: float
    average: float
    direction: Direction

    @property
    def text(self) -> str:
        return f"{self.label} {format_number(self.value)} vs {format_number(self.average)} average"

    @property
    def holds(self) -> bool:
        if self.direction is Direction.ABOVE:
            return self.value > self.average
        if self.direction is Direction.BELOW:
            return self.value < self.average
        return LOW_RATIO * self.average < self.value < HIGH_RATIO * self.average


@dataclass(frozen=True)
class Recommendation:
    """One piece of advice: for which segment, what to do, why, how urgent (1 = first), and
    the figures its reason rests on."""

    segment: str | None
    cluster_id: int | None
    action: str
    rationale: str
    priority: int
    impact: float
    figures: tuple[Figure, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.action} {self.rationale}".strip()


def summaries_of(analysis: Analysis) -> list[SegmentSummary]:
    return [
        SegmentSummary(
            s.segment_id, s.name, s.size, s.centroid, s.characteristics, s.stability, s.is_outliers
        )
        for s in analysis.segments
    ]


class _Averages:
    """Each business axis as one number per segment and its customer-weighted average.

    An axis made of several fields is their sum (six spend fields are total spend, purchase
    counts are total purchases; see `schema.axis_fields`), so advice speaks of the whole axis
    and never of whichever field happens to come first.
    """

    def __init__(self, segments: Sequence[SegmentSummary], axes: Mapping[str, str] | None) -> None:
        fields = {f for s in segments for f, v in s.centroid.items() if _finite(v)}
        # the analysis' own reading of each field (it saw the values) wins over the name
        known = (
            {f: a for f, a in axes.items() if f in fields}
            if axes is not None
            else {f: a for f in fields if (a := axis_of(f, None)) is not None}
        )
        self.fields = {
            axis: members
            for axis, members in axis_fields(known).items()
            if all(all(_finite(s.centroid.get(f)) for f in members) for s in segments)
        }
        total = sum(s.size for s in segments)
        self.mean = {
            axis: sum(self._raw(s, axis) * s.size for s in segments) / total
            for axis in self.fields
        } if total else {}  # fmt: skip

    def _raw(self, segment: SegmentSummary, axis: str) -> float:
        values = [float(segment.centroid[f]) for f in self.fields[axis]]  # type: ignore[arg-type]
        return sum(values) if axis in ADDITIVE_AXES else sum(values) / len(values)

    def has(self, axis: str) -> bool:
        return axis in self.mean

    def ratio(self, segment: SegmentSummary, axis: str) -> float | None:
        if not self.has(axis) or self.mean[axis] <= 0:
            return None
        return self._raw(segment, axis) / self.mean[axis]

    def figure(self, segment: SegmentSummary, axis: str, direction: Direction) -> Figure:
        """'Total spend (6 fields) 1.2k vs 606 average' or 'Spending score 82 vs 50 average'."""
        members = self.fields[axis]
        name = label(members[0]) if len(members) == 1 else (
            f"{AXIS_LABELS.get(axis, label(axis))} ({len(members)} fields)"
        )  # fmt: skip
        return Figure(name, self._raw(segment, axis), self.mean[axis], direction)

    def value(self, segment: SegmentSummary) -> float:
        """The segment's value per customer relative to the average (1 when unknown)."""
        for axis in ("spend", "income"):
            ratio = self.ratio(segment, axis)
            if ratio is not None:
                return ratio
        return 1.0


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _level(ratio: float | None) -> str:
    if ratio is None:
        return "?"
    return "H" if ratio >= HIGH_RATIO else "L" if ratio <= LOW_RATIO else "M"


_UP, _DOWN, _NEAR = Direction.ABOVE, Direction.BELOW, Direction.NEAR
# "value" is spend, or income when there is no spend field; "-" matches a level unknown or
# any. Each rule: the levels it needs (value, income, frequency, recency), the action (with
# {segment}), the reason, and the axes whose figures back the reason, with the direction it
# claims. The first rule that matches wins, so the specific come before the general.
Rule = tuple[dict[str, str], str, str, tuple[tuple[str, Direction], ...]]
RULES: tuple[Rule, ...] = (
    ({"recency": "H", "value": "H"}, "Win back {segment} with a time-limited personal offer:",
     "they are valuable but have not bought for a long time",
     (("recency", _UP), ("value", _UP))),
    ({"recency": "H"}, "Reactivate {segment} with a reminder and a time-limited offer:",
     "they have not bought for a long time", (("recency", _UP),)),
    ({"income": "L", "value": "H"},
     "Keep {segment} engaged with value-for-money offers and instalment options:",
     "they spend generously relative to their income", (("value", _UP), ("income", _DOWN))),
    ({"value": "H", "frequency": "L"},
     "Raise the purchase frequency of {segment} with reminders or a subscription:",
     "they spend a lot but buy rarely", (("value", _UP), ("frequency", _DOWN))),
    ({"value": "H"}, "Protect {segment} with a loyalty or VIP programme and early churn alerts:",
     "they bring well above the average value per customer", (("value", _UP),)),
    ({"income": "H", "value": "L"}, "Target {segment} with premium offers and personal outreach:",
     "they can afford more than they currently spend with us",
     (("income", _UP), ("value", _DOWN))),
    ({"value": "L", "income": "L"},
     "Serve {segment} with low-cost automated campaigns and value bundles:",
     "their budget is limited, so keep the cost to serve low",
     (("value", _DOWN), ("income", _DOWN))),
    ({"value": "L", "frequency": "H"},
     "Upsell and cross-sell to {segment} with bundles that raise basket size:",
     "they buy often but spend little", (("frequency", _UP), ("value", _DOWN))),
    ({"value": "L", "frequency": "L"}, "Re-engage {segment} with a low-cost reactivation campaign:",
     "they spend little and buy rarely", (("value", _DOWN), ("frequency", _DOWN))),
    ({"value": "L"}, "Re-engage {segment} with a low-cost campaign that raises basket size:",
     "they spend little", (("value", _DOWN),)),
    ({"frequency": "H"}, "Reward the frequency of {segment} with points and early access:",
     "they come back often", (("frequency", _UP),)),
    ({"value": "M"}, "Grow {segment} with personalised cross-sell recommendations:",
     "they are close to the average and the easiest to move up", (("value", _NEAR),)),
    ({}, "Tailor a dedicated campaign to {segment}:", "it stands out from the other customers",
     ()),
)  # fmt: skip


def _segment_action(
    segment: SegmentSummary, averages: _Averages
) -> tuple[str, str, list[tuple[str, Direction]]]:
    """The action, its reason, and the axes (with the direction the reason claims) whose
    figures back it: a reason cites only what supports it."""
    quoted = f'"{segment.name}"'
    if segment.is_outliers or segment.name == OUTLIERS_NAME:
        return (
            f"Review the customers in {quoted} one by one before any campaign:",
            "they fit no segment, and may be data errors or exceptional accounts",
            [],
        )
    levels = {
        axis: _level(averages.ratio(segment, axis))
        for axis in ("spend", "income", "frequency", "recency")
    }
    # without spend fields, income stands for value (and is then not a second axis)
    value_axis = "spend" if levels["spend"] != "?" else "income"
    levels["value"] = levels[value_axis]
    if value_axis == "income":
        levels["income"] = "?"
    for needs, action, why, claims in RULES:
        if all(levels[axis] == level for axis, level in needs.items()):
            backed = [(value_axis if axis == "value" else axis, d) for axis, d in claims]
            return action.format(segment=quoted), why, backed
    raise AssertionError("the last rule matches every segment")


def recommend(
    analysis: Analysis | Sequence[SegmentSummary],
    accuracy: float | None = None,
    axes: Mapping[str, str] | None = None,
) -> list[Recommendation]:
    """Per-segment actions by impact (size x value), then cross-segment advice.

    `axes` maps fields to business axes (`dataQuality.fields[].axis` of an analysis); without
    it the field names decide.

    Examples
    --------
    >>> segments = [
    ...     SegmentSummary(0, "Big Spenders", 40, {"spend": 900.0}),
    ...     SegmentSummary(1, "Bargain Hunters", 160, {"spend": 100.0}),
    ... ]
    >>> print(recommend(segments)[0].text)
    Protect "Big Spenders" with a loyalty or VIP programme and early churn alerts: they bring \
well above the average value per customer (40 customers, 20% of the base; Spend 900 vs 260 average).
    """
    if isinstance(analysis, Analysis):
        accuracy = analysis.accuracy if accuracy is None else accuracy
        axes = analysis.data_quality.axes if axes is None else axes
        segments = summaries_of(analysis)
    else:
        segments = list(analysis)
    total = sum(s.size for s in segments)
    averages = _Averages(segments, axes)
    impact = {s.cluster_id: s.size * averages.value(s) for s in segments}
    ordered = sorted(
        segments, key=lambda s: (s.is_outliers or s.name == OUTLIERS_NAME, -impact[s.cluster_id])
    )
    advice: list[Recommendation] = []
    for segment in ordered:
        action, why, claims = _segment_action(segment, averages)
        figures = tuple(averages.figure(segment, axis, direction) for axis, direction in claims)
        share = segment.size / total if total else 0.0
        cited = [f.text for f in figures] or list(segment.characteristics[:2])
        evidence = "; ".join([f"{segment.size} customers, {share:.0%} of the base", *cited])
        advice.append(
            Recommendation(
                segment.name,
                segment.cluster_id,
                action,
                f"{why} ({evidence}).",
                0,
                impact[segment.cluster_id],
                figures,
            )
        )
    if isinstance(analysis, Analysis) and analysis.lineage is not None:
        advice += _lineage_advice(analysis.lineage, segments, averages)
    advice += _cross_segment(segments, averages, total, accuracy)
    return [replace(r, priority=i + 1) for i, r in enumerate(advice)]


# a flow worth a word: this share of the customers in both analyses, and at least this many
FLOW_MIN_SHARE = 0.02
FLOW_MIN_CUSTOMERS = 10
FLOWS_CITED = 3


def _flow_advice(
    flow: Transition, by_id: Mapping[int, SegmentSummary], averages: _Averages
) -> Recommendation:
    """Customers who moved between two segments that both persist."""
    assert flow.source is not None and flow.target is not None
    source, target = by_id[flow.source], by_id[flow.target]
    moved = f'{flow.customers:,} customers moved from "{source.name}" to "{target.name}"'
    down = averages.value(target) < averages.value(source)
    action = f"{moved}: start a win-back for them." if down else (
        f"{moved}: find out what lifted them and repeat it."
    )  # fmt: skip
    why = (f"\"{target.name}\" is worth {averages.value(target):.0%} of the average value per "
           f"customer, against {averages.value(source):.0%} for \"{source.name}\".")  # fmt: skip
    return Recommendation(target.name, target.cluster_id, action, why, 0, 0.0)


def _disappeared_advice(
    previous_id: int, lineage: Lineage, by_id: Mapping[int, SegmentSummary]
) -> Recommendation:
    name = lineage.previous_names.get(previous_id, f"segment {previous_id}")
    went = [t for t in flows(lineage) if t.source == previous_id and t.target in by_id]
    where = ", ".join(f"{t.customers:,} to \"{by_id[t.target].name}\""  # type: ignore[index]
                      for t in went[:FLOWS_CITED])  # fmt: skip
    return Recommendation(
        None, None, f"The \"{name}\" segment disappeared:",
        (f"its customers moved ({where}) or left; " if where else "its customers left; ")
        + "retire the campaigns that targeted it.", 0, 0.0,
    )  # fmt: skip


def _lineage_advice(
    lineage: Lineage, segments: Sequence[SegmentSummary], averages: _Averages
) -> list[Recommendation]:
    """Advice from a refit: the largest movements between persisting segments, segments that
    emerged or disappeared, and fields whose distribution shifted."""
    by_id = {s.cluster_id: s for s in segments}
    floor = max(FLOW_MIN_CUSTOMERS, FLOW_MIN_SHARE * lineage.customers_compared)
    between = [f for f in flows(lineage) if f.source in by_id and f.target in by_id]
    advice = [_flow_advice(f, by_id, averages) for f in between[:FLOWS_CITED]
              if f.customers >= floor]  # fmt: skip
    total = sum(s.size for s in segments) or 1
    for event in lineage.segments:
        if event.event == "emerged" and event.cluster_id in by_id:
            new = by_id[event.cluster_id]
            advice.append(Recommendation(
                new.name, new.cluster_id, f"A new segment emerged: \"{new.name}\".",
                f"{new.size:,} customers ({new.size / total:.0%} of the base) that no previous "
                "segment held; review its profile and give it its own treatment.", 0, 0.0,
            ))  # fmt: skip
        elif event.event == "disappeared" and event.previous_cluster_id is not None:
            advice.append(_disappeared_advice(event.previous_cluster_id, lineage, by_id))
    for d in drifted(lineage, PSI_SIGNIFICANT):
        advice.append(Recommendation(
            None, None, f"The {d.field} field drifted (PSI {d.psi:.2f}):",
            "the customer base itself changed on it since the previous analysis; re-check "
            "thresholds and targeting built on it.", 0, 0.0,
        ))  # fmt: skip
    return advice


def _largest_below_value(
    regular: Sequence[SegmentSummary], averages: _Averages, total: int
) -> list[Recommendation]:
    largest = max(regular, key=lambda s: s.size)
    value = averages.value(largest)
    if value > LOW_RATIO or largest.size / total < LARGE_SEGMENT_SHARE:
        return []
    return [
        Recommendation(
            largest.name,
            largest.cluster_id,
            f'"{largest.name}" is the largest segment but below-average in value:',
            f"{largest.size / total:.0%} of customers at {value:.0%} of the average "
            f"value each; lifting a tenth of them to the average adds about "
            f"{UPLIFT_SHARE * largest.size * (1 - value) / total:.1%} to total value.",
            0,
            0.0,
        )
    ]


def _concentration(
    regular: Sequence[SegmentSummary], averages: _Averages, total: int
) -> list[Recommendation]:
    advice = []
    value_total = sum(s.size * averages.value(s) for s in regular)
    for segment in regular:
        customer_share = segment.size / total
        value_share = segment.size * averages.value(segment) / value_total if value_total else 0
        if value_share >= CONCENTRATION_LIFT * customer_share and (
            value_share >= CONCENTRATION_MIN_SHARE
        ):
            advice.append(
                Recommendation(
                    segment.name,
                    segment.cluster_id,
                    f'Put retention budget on "{segment.name}" first:',
                    f"{customer_share:.0%} of customers hold about {value_share:.0%} of the "
                    "value, so each one lost costs the most.",
                    0,
                    0.0,
                )
            )
    return advice


def _doubts(regular: Sequence[SegmentSummary], accuracy: float | None) -> list[Recommendation]:
    advice = [
        Recommendation(
            segment.name,
            segment.cluster_id,
            f'Validate "{segment.name}" before building a campaign on it:',
            f"its stability is {segment.stability:.2f} (below {UNSTABLE_BELOW}), so its "
            "membership changes when the data is resampled.",
            0,
            0.0,
        )
        for segment in regular
        if segment.stability is not None and segment.stability < UNSTABLE_BELOW
    ]
    if accuracy is not None and accuracy < UNSTABLE_BELOW:
        advice.append(
            Recommendation(
                None,
                None,
                "Treat this segmentation as exploratory:",
                f"its accuracy (resampling stability) is {accuracy:.2f}, so the customers do not "
                "form clearly distinct groups; test any campaign on a small group first.",
                0,
                0.0,
            )
        )
    return advice


def _cross_segment(
    segments: Sequence[SegmentSummary], averages: _Averages, total: int, accuracy: float | None
) -> list[Recommendation]:
    regular = [s for s in segments if not (s.is_outliers or s.name == OUTLIERS_NAME)]
    advice = []
    if (averages.has("spend") or averages.has("income")) and regular and total:
        advice += _largest_below_value(regular, averages, total)
        advice += _concentration(regular, averages, total)
    return advice + _doubts(regular, accuracy)
