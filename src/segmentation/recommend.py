"""Advice from an analysis: one concrete action per segment, ordered by business impact.

Impact is size x value, where value is the segment's spend (or, without spend fields, income)
relative to the customer-weighted average. Each recommendation names its segment and cites the
figures that justify it; cross-segment advice follows (a large segment that spends little,
value concentrated in few customers, segments too unstable to act on).

Works on a full `Analysis` or on the summaries a front end posts back (customers optional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segmentation.pipeline.profile import OUTLIERS_NAME, axis_of, format_number, label
from segmentation.results import Analysis

__all__ = ["Recommendation", "SegmentSummary", "recommend", "summaries_of"]

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


@dataclass(frozen=True)
class Recommendation:
    """One piece of advice: for which segment, what to do, why, and how urgent (1 = first)."""

    segment: str | None
    cluster_id: int | None
    action: str
    rationale: str
    priority: int
    impact: float

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
    """Customer-weighted averages of each centroid field, and each segment's ratio to them."""

    def __init__(self, segments: Sequence[SegmentSummary], axes: Mapping[str, str] | None) -> None:
        totals: dict[str, float] = {}
        weights: dict[str, float] = {}
        for segment in segments:
            for field, value in segment.centroid.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    totals[field] = totals.get(field, 0.0) + value * segment.size
                    weights[field] = weights.get(field, 0.0) + segment.size
        self.mean = {f: totals[f] / weights[f] for f in totals if weights[f] > 0}
        self.axes: dict[str, list[str]] = {}
        for field in self.mean:
            # the analysis' own reading of each field (it saw the values) wins over the name
            axis = axes.get(field) if axes is not None else axis_of(field, None)
            if axis is not None:
                self.axes.setdefault(axis, []).append(field)

    def ratio(self, segment: SegmentSummary, axis: str) -> float | None:
        ratios = []
        for field in self.axes.get(axis, []):
            value, mean = segment.centroid.get(field), self.mean[field]
            if isinstance(value, int | float) and mean > 0:
                ratios.append(value / mean)
        return sum(ratios) / len(ratios) if ratios else None

    def figure(self, segment: SegmentSummary, axis: str) -> str:
        """'Spending score 82.1 vs 50.2 average' for the axis' first field."""
        for field in self.axes.get(axis, []):
            value = segment.centroid.get(field)
            if isinstance(value, int | float):
                mean = format_number(self.mean[field])
                return f"{label(field)} {format_number(value)} vs {mean} average"
        return ""

    def value(self, segment: SegmentSummary) -> float:
        """The segment's value per customer relative to the average (1 when unknown)."""
        spend = self.ratio(segment, "spend")
        if spend is not None:
            return spend
        income = self.ratio(segment, "income")
        return income if income is not None else 1.0


def _level(ratio: float | None) -> str:
    if ratio is None:
        return "?"
    return "H" if ratio >= HIGH_RATIO else "L" if ratio <= LOW_RATIO else "M"


def _segment_action(segment: SegmentSummary, averages: _Averages) -> tuple[str, str, list[str]]:
    """The action, the reason and the figures behind it, from value, income and engagement."""
    quoted = f'"{segment.name}"'
    value = _level(averages.ratio(segment, "spend"))
    income = _level(averages.ratio(segment, "income"))
    frequency = _level(averages.ratio(segment, "frequency"))
    recency = _level(averages.ratio(segment, "recency"))
    figures = [
        averages.figure(segment, axis)
        for axis in ("spend", "income", "frequency", "recency")
        if averages.figure(segment, axis)
    ]
    if value == "?":
        value = income
        income = "?"
    if segment.is_outliers or segment.name == OUTLIERS_NAME:
        return (
            f"Review the customers in {quoted} one by one before any campaign:",
            "they fit no segment, and may be data errors or exceptional accounts",
            [],
        )
    if recency == "H" and value in ("H", "M"):
        action = f"Win back {quoted} with a time-limited personal offer:"
        why = "they used to be valuable but have not bought for a long time"
    elif income == "L" and value == "H":
        action = f"Keep {quoted} engaged with value-for-money offers and instalment options:"
        why = "they spend generously relative to their income"
    elif value == "H" and frequency in ("H", "M", "?"):
        action = f"Protect {quoted} with a loyalty or VIP programme and early churn alerts:"
        why = "they bring the most value per customer"
    elif value == "H" and frequency == "L":
        action = f"Raise the purchase frequency of {quoted} with reminders or a subscription:"
        why = "they spend a lot per purchase but buy rarely"
    elif income == "H" and value == "L":
        action = f"Target {quoted} with premium offers and personal outreach:"
        why = "they can afford more than they currently spend with us"
    elif value == "L" and income == "L":
        action = f"Serve {quoted} with low-cost automated campaigns and value bundles:"
        why = "their budget is limited, so keep the cost to serve low"
    elif value == "L" and frequency == "H":
        action = f"Upsell and cross-sell to {quoted} with bundles that raise basket size:"
        why = "they buy often but spend little each time"
    elif value == "L":
        action = f"Re-engage {quoted} with a low-cost reactivation campaign:"
        why = "they spend little and rarely"
    elif frequency == "H":
        action = f"Reward the frequency of {quoted} with points and early access:"
        why = "they come back often"
    elif value == "M":
        action = f"Grow {quoted} with personalised cross-sell recommendations:"
        why = "they are close to the average and the easiest to move up"
    else:
        action = f"Tailor a dedicated campaign to {quoted}:"
        why = "it stands out from the other customers"
    return action, why, figures or list(segment.characteristics[:2])


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
the most value per customer (40 customers, 20% of the base; Spend 900 vs 260 average).
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
        action, why, figures = _segment_action(segment, averages)
        share = segment.size / total if total else 0.0
        evidence = "; ".join([f"{segment.size} customers, {share:.0%} of the base", *figures])
        advice.append(
            Recommendation(
                segment.name,
                segment.cluster_id,
                action,
                f"{why} ({evidence}).",
                0,
                impact[segment.cluster_id],
            )
        )
    advice += _cross_segment(segments, averages, total, accuracy)
    return [
        Recommendation(r.segment, r.cluster_id, r.action, r.rationale, i + 1, r.impact)
        for i, r in enumerate(advice)
    ]


def _cross_segment(
    segments: Sequence[SegmentSummary], averages: _Averages, total: int, accuracy: float | None
) -> list[Recommendation]:
    advice = []
    regular = [s for s in segments if not (s.is_outliers or s.name == OUTLIERS_NAME)]
    has_value = bool(averages.axes.get("spend") or averages.axes.get("income"))
    if has_value and regular and total:
        largest = max(regular, key=lambda s: s.size)
        value = averages.value(largest)
        if value <= LOW_RATIO and largest.size / total >= LARGE_SEGMENT_SHARE:
            advice.append(
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
            )
        value_total = sum(s.size * averages.value(s) for s in regular)
        for segment in regular:
            customer_share = segment.size / total
            value_share = segment.size * averages.value(segment) / value_total if value_total else 0
            if (
                value_share >= CONCENTRATION_LIFT * customer_share
                and value_share >= CONCENTRATION_MIN_SHARE
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
    for segment in regular:
        if segment.stability is not None and segment.stability < UNSTABLE_BELOW:
            advice.append(
                Recommendation(
                    segment.name,
                    segment.cluster_id,
                    f'Validate "{segment.name}" before building a campaign on it:',
                    f"its stability is {segment.stability:.2f} (below {UNSTABLE_BELOW}), so its "
                    "membership changes when the data is resampled.",
                    0,
                    0.0,
                )
            )
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
