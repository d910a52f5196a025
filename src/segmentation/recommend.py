"""Advice from an analysis: one concrete action per segment, ordered by business impact.

Each segment's action is chosen from what distinguishes it (its levers): an outcome rate far
from the overall one (churn: retain and win back; response: first in the next campaign),
recency, value, income and frequency, tenure (onboard the new, reward the long-standing),
and product mix (an over-represented level). The strongest lever wins, and segments of one
analysis get different actions unless one has no other lever. A segment is called close to
the average only when its characteristics say so.

Impact is size x value, where value is the segment's spend (or, without spend fields, income)
relative to the customer-weighted average. Each recommendation names its segment and cites the
figures that justify it; a refit's advice follows (the largest movements between segments,
segments that emerged or disappeared, fields that drifted: see pipeline/lineage.py), then
cross-segment advice (an outcome concentrated in one segment, a large segment that spends
little, value concentrated in few customers, segments too unstable to act on).

Works on a full `Analysis` or on the summaries a front end posts back (customers optional).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from segmentation.pipeline.lineage import PSI_SIGNIFICANT, Lineage, Transition, drifted, flows
from segmentation.pipeline.naming import OUTLIERS_NAME
from segmentation.pipeline.schema import ADDITIVE_AXES, AXIS_LABELS, axis_fields, axis_of
from segmentation.pipeline.words import (
    MISSING_LEVEL,
    format_number,
    is_generic_level,
    label,
    level_phrase,
)
from segmentation.results import Analysis, Outcome

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
    #: each outcome's rate or mean in the segment
    outcomes: Mapping[str, float | None] = field(default_factory=dict)
    #: each categorical field's share per level
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: each numeric field's mean in overall standard deviations from the overall mean
    standardized: Mapping[str, float] = field(default_factory=dict)


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
    #: a rate or a share, written as a percentage
    percent: bool = False

    @property
    def text(self) -> str:
        if self.percent:
            return f"{self.label} {self.value:.0%} vs {self.average:.0%} average"
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
            s.segment_id, s.name, s.size, s.centroid, s.characteristics, s.stability,
            s.is_outliers, s.outcomes, s.categories, s.standardized,
        )
        for s in analysis.segments
    ]  # fmt: skip


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
        total = AXIS_LABELS.get(axis, label(axis))
        if axis == "frequency" and all("visit" in m.lower() for m in members):
            total = "Total visits"  # visits counted where no purchase count exists
        name = label(members[0]) if len(members) == 1 else f"{total} ({len(members)} fields)"
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
    ({"frequency": "L"},
     "Raise the purchase frequency of {segment} with reminders and a subscription offer:",
     "they buy less often than the other customers", (("frequency", _DOWN),)),
    # without spend fields, income says what customers can afford, not what they bring
    ({"value": "?", "income": "H"},
     "Target {segment} with premium offers and personal outreach:",
     "their income is well above the average", (("income", _UP),)),
    ({"value": "?", "income": "L"},
     "Serve {segment} with value-for-money offers through low-cost channels:",
     "their budget is limited", (("income", _DOWN),)),
)  # fmt: skip

# An outcome worth acting on: its rate this far from the overall one, relatively and in points
# (a mean: relatively), significant for the segment's size (two-proportion z-test).
OUTCOME_LIFT = 1.2
OUTCOME_POINTS = 0.02
OUTCOME_Z = 2.576  # two-sided p < 0.01
# outcomes weigh more than traits: they are what the business wants to change; one far above
# the average comes before any trait
OUTCOME_WEIGHT = 1.5
OUTCOME_PRIORITY = 100.0
# the standardized difference a characteristic needs (profile.MIN_EFFECT_SD)
STATED_DIFFERENCE = 0.5
# a level this over-represented (and by 15 points) is the segment's product mix
MIX_LIFT = 1.5
MIX_POINTS = 0.15
MIX_WEIGHT = 0.8


@dataclass(frozen=True)
class _Lever:
    """One thing that distinguishes a segment and the action it calls for. `key` names the
    lever's kind: segments of one analysis get different kinds where they can."""

    key: str
    strength: float
    action: str
    why: str
    figures: tuple[Figure, ...] = ()
    #: the fields it rests on
    fields: tuple[str, ...] = ()
    #: an outcome far above the average (churn, default, response): every segment where it is
    #: gets this action, whatever else distinguishes it
    must: bool = False


# what an outcome's meaning asks for, when its rate is above and when below the average
OUTCOME_ACTIONS: dict[str | None, tuple[tuple[str, str], tuple[str, str]]] = {
    "loss": (
        ("Retain {segment} and win back those already lost:",
         "they leave far more often than the other customers"),
        ("Ask {segment} for referrals and reviews:",
         "they stay far more often than the other customers"),
    ),
    "risk": (
        ("Review the terms offered to {segment} and monitor them closely:",
         "{outcome} is far more frequent among them"),
        ("Offer {segment} better terms to win more of their business:",
         "{outcome} is far rarer among them"),
    ),
    "gain": (
        ("Put {segment} first in the next campaign:",
         "they respond far more often than the other customers"),
        ("Test another offer or channel on {segment} before the next campaign:",
         "they respond far less often than the other customers"),
    ),
    None: (
        ("Find out what drives {outcome} among {segment}:", "it is far above the average there"),
        ("Find out what keeps {outcome} low among {segment}:", "it is far below the average there"),
    ),
}  # fmt: skip


def _significant(rate: float, overall: float, size: int, total: int) -> bool:
    """A two-proportion z-test of a segment's rate against everyone else's (p < 0.01)."""
    others = total - size
    if size <= 0 or others <= 0:
        return False
    rest = (overall * total - rate * size) / others
    pooled = overall
    spread = math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / size + 1 / others))
    return spread > 0 and abs(rate - rest) / spread > OUTCOME_Z


def _outcome_levers(
    segment: SegmentSummary, outcomes: Sequence[Outcome], total: int
) -> list[_Lever]:
    levers = []
    for outcome in outcomes:
        value = segment.outcomes.get(outcome.field)
        overall = outcome.overall
        if value is None or not _finite(value) or not _finite(overall) or overall <= 0:
            continue
        ratio = value / overall
        if outcome.kind == "rate" and (
            abs(value - overall) < OUTCOME_POINTS
            or not _significant(value, overall, segment.size, total)
        ):
            continue
        if 1 / OUTCOME_LIFT < ratio < OUTCOME_LIFT:
            continue
        above = ratio >= OUTCOME_LIFT
        action, why = OUTCOME_ACTIONS[outcome.meaning][0 if above else 1]
        name = label(outcome.field)
        direction = Direction.ABOVE if above else Direction.BELOW
        figure = Figure(name, value, overall, direction, percent=outcome.kind == "rate")
        strength = OUTCOME_WEIGHT * abs(math.log(ratio)) if ratio > 0 else OUTCOME_WEIGHT * 3
        levers.append(
            _Lever(
                # one kind per meaning: five campaigns' responses are one lever, not five
                f"outcome:{outcome.meaning}:{direction.value}",
                strength + (OUTCOME_PRIORITY if above else 0.0),
                action.replace("{outcome}", name.lower()),
                why.replace("{outcome}", name.lower()),
                (figure,),
                (outcome.field,),
                must=above,
            )
        )
    return levers


def _rule_levers(segment: SegmentSummary, averages: _Averages) -> list[_Lever]:
    """The value, income, frequency and recency rules that match (the first match and any
    later one on other axes), each as strong as its most different cited axis."""
    levels = {
        axis: _level(averages.ratio(segment, axis))
        for axis in ("spend", "income", "frequency", "recency")
    }
    # value is what customers bring: spend; income alone gets rules of its own
    levels["value"] = levels["spend"]
    levers = []
    for needs, action, why, claims in RULES:
        if not all(levels[axis] == level for axis, level in needs.items()):
            continue
        backed = [("spend" if axis == "value" else axis, d) for axis, d in claims]
        if not _stated(segment, [f for axis, _ in backed for f in averages.fields.get(axis, ())]):
            continue
        ratios = [averages.ratio(segment, axis) for axis, _ in backed]
        strength = max((abs(math.log(r)) for r in ratios if r is not None and r > 0), default=0.0)
        figures = tuple(averages.figure(segment, axis, d) for axis, d in backed)
        fields = tuple(f for axis, _ in backed for f in averages.fields.get(axis, ()))
        levers.append(_Lever(f"rule:{action}", strength, action, why, figures, fields))
    return levers


def _stated(segment: SegmentSummary, fields: Sequence[str]) -> bool:
    """Whether one of these fields differs enough in the segment to be a characteristic of
    it (half a standard deviation): advice never rests on a difference the profile calls
    close to the average. Summaries without standardized means are taken at their ratios."""
    known = [abs(segment.standardized[f]) for f in fields if f in segment.standardized]
    return not known or max(known) >= STATED_DIFFERENCE


def _tenure_lever(segment: SegmentSummary, averages: _Averages) -> list[_Lever]:
    ratio = averages.ratio(segment, "tenure")
    if ratio is None or LOW_RATIO < ratio < HIGH_RATIO or ratio <= 0:
        return []
    if not _stated(segment, averages.fields["tenure"]):
        return []
    if ratio <= LOW_RATIO:
        action = "Onboard {segment} with a welcome series and an early second-purchase offer:"
        why, direction = "they are newer customers than the others", Direction.BELOW
    else:
        action = "Reward the loyalty of {segment} with anniversary perks and early access:"
        why, direction = "they have been customers the longest", Direction.ABOVE
    figure = averages.figure(segment, "tenure", direction)
    fields = tuple(averages.fields["tenure"])
    return [
        _Lever(f"tenure:{direction.value}", abs(math.log(ratio)), action, why, (figure,), fields)
    ]


def _mix_lever(
    segment: SegmentSummary, overall_shares: Mapping[str, Mapping[str, float]]
) -> list[_Lever]:
    """The level most over-represented in the segment (its product mix or channel)."""
    best: tuple[float, str, str, float, float] | None = None
    for field_name, shares in segment.categories.items():
        for level, share in shares.items():
            overall = overall_shares.get(field_name, {}).get(level, 0.0)
            if level == MISSING_LEVEL or overall <= 0:
                continue
            if share >= MIX_LIFT * overall and share - overall >= MIX_POINTS:
                strength = MIX_WEIGHT * math.log(share / overall)
                if best is None or strength > best[0]:
                    best = (strength, field_name, level, share, overall)
    if best is None:
        return []
    strength, field_name, level, share, overall = best
    what = (
        level_phrase(field_name, level) if is_generic_level(level)
        else f"{level} ({label(field_name)})"
    )  # fmt: skip
    figure = Figure(what, share, overall, Direction.ABOVE, percent=True)
    return [
        _Lever(
            f"mix:{field_name}:{level}", strength,
            f"Shape the offer for {{segment}} around {what}:", "it sets them apart", (figure,),
            (field_name,),
        )
    ]  # fmt: skip


def _fallback(segment: SegmentSummary, shared: Sequence[str] = ()) -> _Lever:
    """A segment with no lever of its own: close to the average (only when its
    characteristics say so), too small to tell, or different on fields no rule speaks of,
    or only on `shared` fields, whose lever an earlier segment took."""
    first = segment.characteristics[0] if segment.characteristics else ""
    if not first or first.startswith("Close to the average"):
        return _Lever(
            "average", 0.0, "Grow {segment} with personalised cross-sell recommendations:",
            "they are close to the average on every field, the broad middle to move up",
        )  # fmt: skip
    if first.startswith("No difference is significant"):
        return _Lever(
            "unclear", 0.0, "Gather more data on {segment} before a campaign of its own:",
            "no difference from the other customers is significant yet",
        )  # fmt: skip
    own = {f: z for f, z in segment.standardized.items() if f not in shared}
    trait = max(own.items(), key=lambda kv: abs(kv[1]), default=None)
    if trait is None or not trait[1]:
        return _Lever(
            f"apart:{segment.cluster_id}", 0.0,
            "Address {segment} with a message built on what sets them apart:",
            "their traits below set them apart",
        )  # fmt: skip
    field_name, z = trait
    high = "high" if z > 0 else "low"
    return _Lever(
        f"apart:{segment.cluster_id}", 0.0,
        f"Address {{segment}} with a message built on their {high} {label(field_name).lower()}:",
        "it sets them apart from the other customers",
    )  # fmt: skip


def _overall_shares(segments: Sequence[SegmentSummary]) -> dict[str, dict[str, float]]:
    """Each categorical level's share over all customers, from the segments' shares."""
    total = sum(s.size for s in segments) or 1
    shares: dict[str, dict[str, float]] = {}
    for segment in segments:
        for field_name, levels in segment.categories.items():
            for level, share in levels.items():
                field_shares = shares.setdefault(field_name, {})
                field_shares[level] = field_shares.get(level, 0.0) + share * segment.size / total
    return shares


def _choose_levers(
    segments: Sequence[SegmentSummary],
    averages: _Averages,
    outcomes: Sequence[Outcome],
) -> dict[int, _Lever]:
    """Each segment's lever: the strongest (segment, lever) pairs first, each lever kind to
    one segment (the churn lever goes to the segment that churns most); a segment whose
    every lever went to another is told apart by a trait of its own."""
    total = sum(s.size for s in segments)
    overall = _overall_shares(segments)
    levers = {
        s.cluster_id: [*_outcome_levers(s, outcomes, total), *_rule_levers(s, averages),
                       *_tenure_lever(s, averages), *_mix_lever(s, overall)]
        for s in segments
    }  # fmt: skip
    pairs = sorted(
        ((lever, position) for position, s in enumerate(segments)
         for lever in levers[s.cluster_id]),
        key=lambda pair: (-pair[0].strength, pair[1]),
    )  # fmt: skip
    chosen: dict[int, _Lever] = {}
    taken: set[str] = set()
    for lever, position in pairs:
        segment = segments[position]
        if segment.cluster_id in chosen:
            continue
        if lever.key not in taken:
            chosen[segment.cluster_id] = lever
            taken.add(lever.key)
        elif lever.must:
            # a second segment where the outcome is far above: the same action, led by what
            # sets this one apart
            chosen[segment.cluster_id] = _led_by_own_trait(lever, segment)
    for segment in segments:
        if segment.cluster_id not in chosen:
            own = levers[segment.cluster_id]
            strongest = max(own, key=lambda lever: lever.strength).fields if own else ()
            chosen[segment.cluster_id] = _fallback(segment, strongest)
    return chosen


def _led_by_own_trait(lever: _Lever, segment: SegmentSummary) -> _Lever:
    """The lever's action for a second segment, led by the trait that sets it apart most."""
    trait = max(segment.standardized.items(), key=lambda kv: abs(kv[1]), default=None)
    if trait is None or not trait[1]:
        return lever
    field_name, z = trait
    lead = f", leading with their {'high' if z > 0 else 'low'} {label(field_name).lower()}:"
    return replace(lever, action=lever.action.removesuffix(":") + lead)


def _outliers_advice(segment: SegmentSummary, total: int, impact: float) -> Recommendation:
    share = segment.size / total if total else 0.0
    return Recommendation(
        segment.name, segment.cluster_id,
        f'Review the customers in "{segment.name}" one by one before any campaign:',
        "they fit no segment, and may be data errors or exceptional accounts "
        f"({segment.size} customers, {share:.0%} of the base).",
        0, impact,
    )  # fmt: skip


def recommend(
    analysis: Analysis | Sequence[SegmentSummary],
    accuracy: float | None = None,
    axes: Mapping[str, str] | None = None,
    outcomes: Sequence[Outcome] | None = None,
) -> list[Recommendation]:
    """Per-segment actions by impact (size x value), then cross-segment advice.

    `axes` maps fields to business axes (`dataQuality.fields[].axis` of an analysis); without
    it the field names decide. `outcomes` are the analysis' outcome fields (their overall
    rates and meaning); each segment's own rate is in `SegmentSummary.outcomes`.

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
        outcomes = analysis.outcomes if outcomes is None else outcomes
        segments = summaries_of(analysis)
    else:
        segments = list(analysis)
    outcomes = list(outcomes or ())
    total = sum(s.size for s in segments)
    averages = _Averages(segments, axes)
    impact = {s.cluster_id: s.size * averages.value(s) for s in segments}
    ordered = sorted(
        segments, key=lambda s: (s.is_outliers or s.name == OUTLIERS_NAME, -impact[s.cluster_id])
    )
    regular = [s for s in ordered if not (s.is_outliers or s.name == OUTLIERS_NAME)]
    levers = _choose_levers(regular, averages, outcomes)
    advice: list[Recommendation] = []
    for segment in ordered:
        if segment.cluster_id not in levers:
            advice.append(_outliers_advice(segment, total, impact[segment.cluster_id]))
            continue
        lever = levers[segment.cluster_id]
        share = segment.size / total if total else 0.0
        cited = [f.text for f in lever.figures] or list(segment.characteristics[:2])
        evidence = "; ".join([f"{segment.size} customers, {share:.0%} of the base", *cited])
        advice.append(
            Recommendation(
                segment.name, segment.cluster_id, lever.action.format(segment=f'"{segment.name}"'),
                f"{lever.why} ({evidence}).", 0, impact[segment.cluster_id], lever.figures,
            )
        )  # fmt: skip
    if isinstance(analysis, Analysis) and analysis.lineage is not None:
        advice += _lineage_advice(analysis.lineage, segments, averages)
    advice += _cross_segment(segments, averages, total, accuracy, outcomes)
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


# an outcome worth a cross-segment word: one segment holds this many times its share of the
# customers among the outcome's cases, and at least a third of them
OUTCOME_CONCENTRATION_LIFT = 1.5
OUTCOME_CONCENTRATION_MIN_SHARE = 1 / 3


def _outcome_concentration(
    regular: Sequence[SegmentSummary], outcomes: Sequence[Outcome], total: int
) -> list[Recommendation]:
    """Where a loss outcome (churn, default) concentrates: the budget to prevent it goes
    there first."""
    advice = []
    for outcome in outcomes:
        if outcome.kind != "rate" or outcome.meaning not in ("loss", "risk"):
            continue
        cases = {
            s.cluster_id: s.size * rate
            for s in regular
            if (rate := s.outcomes.get(outcome.field)) is not None and _finite(rate)
        }
        all_cases = sum(cases.values())
        if not all_cases or not cases:
            continue
        top = max(regular, key=lambda s: cases.get(s.cluster_id, 0.0))
        case_share = cases.get(top.cluster_id, 0.0) / all_cases
        customer_share = top.size / total
        if case_share >= max(
            OUTCOME_CONCENTRATION_LIFT * customer_share, OUTCOME_CONCENTRATION_MIN_SHARE
        ):
            name = label(outcome.field)
            advice.append(
                Recommendation(
                    top.name, top.cluster_id,
                    f'Spend the budget against {name.lower()} on "{top.name}" first:',
                    f"{case_share:.0%} of all {name.lower()} cases are among its "
                    f"{customer_share:.0%} of the customers.", 0, 0.0,
                )
            )  # fmt: skip
    return advice


def _cross_segment(
    segments: Sequence[SegmentSummary],
    averages: _Averages,
    total: int,
    accuracy: float | None,
    outcomes: Sequence[Outcome] = (),
) -> list[Recommendation]:
    regular = [s for s in segments if not (s.is_outliers or s.name == OUTLIERS_NAME)]
    advice = _outcome_concentration(regular, outcomes, total) if regular and total else []
    if (averages.has("spend") or averages.has("income")) and regular and total:
        advice += _largest_below_value(regular, averages, total)
        advice += _concentration(regular, averages, total)
    return advice + _doubts(regular, accuracy)
