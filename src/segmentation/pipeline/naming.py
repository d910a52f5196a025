"""Segment names a marketer would sign: short (at most 40 characters), unique within an
analysis, from the tested profile.

A segment is named by its business axes when the fields say what they measure ("High-Value
Customers", "Young Budget-Conscious Customers"), else by the fields that distinguish it most
("High Grocery & Milk Customers", "Fiber Optic, Month-to-month"). A category level is never
shown alone where it means nothing without its field ("No Internet Service", not "Mostly
No"); no word is doubled ("Customer Customers"); a placeholder (a missing value) and an
outcome never name a segment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from segmentation.pipeline.schema import axis_of, joined
from segmentation.pipeline.words import (
    MAX_NAME_LENGTH,
    MISSING_LEVEL,
    fit_name,
    level_phrase,
    short_label,
)

if TYPE_CHECKING:
    from segmentation.pipeline.profile import Evidence

__all__ = ["OUTLIERS_NAME", "business_name", "field_name", "make_unique"]

OUTLIERS_NAME = "Outliers"
HIGH, LOW = 0.5, -0.5
# a prefix ("Young", "Senior", "Lapsing") needs a clearer difference than a level does
STRONG = 0.8
# look-alike segments are told apart on a field where they differ at least this much (SD)
DISTINCT_SPREAD = 0.5

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
FREQUENCY_NAMES = {"H": "Frequent Buyers", "M": "Regular Buyers", "L": "Infrequent Buyers"}
# how look-alike segments are told apart, from the lowest value of their most different field
RANK_WORDS = {2: ("Lower", "Higher"), 3: ("Lowest", "Middle", "Highest")}


def level_of(z: float) -> str:
    return "H" if z >= HIGH else "L" if z <= LOW else "M"


def _nameable(evidence: Sequence[Evidence]) -> list[Evidence]:
    """The evidence a name may rest on: a trait, not a missing value nor an outcome."""
    return [
        e for e in evidence if e.kind not in ("missing", "outcome") and e.level != MISSING_LEVEL
    ]


def business_name(axis: Mapping[str, float], evidence: Sequence[Evidence]) -> str | None:
    """A name from the business axes (income, spend, frequency, recency, age), or None when
    the fields measure none of them, or when they only say "average" while another field
    sets the segment clearly apart (then that field names it)."""
    if "income" in axis and "spend" in axis:
        base = INCOME_SPEND_NAMES[(level_of(axis["income"]), level_of(axis["spend"]))]
    elif ("spend" in axis or "income" in axis) and "frequency" in axis:
        value = axis.get("spend", axis.get("income", 0.0))
        base = VALUE_FREQUENCY_NAMES[(level_of(value), level_of(axis["frequency"]))]
    elif "spend" in axis or "income" in axis:
        base = VALUE_NAMES[level_of(axis.get("spend", axis.get("income", 0.0)))]
    elif "frequency" in axis:
        base = FREQUENCY_NAMES[level_of(axis["frequency"])]
    else:
        return None
    if axis.get("recency", 0.0) >= STRONG:
        base = "Lapsing " + base
    age, tenure = axis.get("age", 0.0), axis.get("tenure", 0.0)
    if age <= -STRONG:
        base = "Young " + base
    elif age >= STRONG:
        base = "Senior " + base
    elif tenure <= -STRONG and not base.startswith("Lapsing"):
        base = "New " + base
    elif tenure >= STRONG and not base.startswith("Lapsing"):
        base = "Long-Standing " + base
    if base in AVERAGE_NAMES and any(abs(e.effect) >= STRONG for e in _nameable(evidence)):
        return None
    return base


# how a marketer says high and low on an axis whose numbers read the other way round
AXIS_WORDS = {
    "recency": ("Lapsing", "Recent"), "tenure": ("Long-Standing", "New"),
    "age": ("Senior", "Young"),
}  # fmt: skip


def descriptor(item: Evidence) -> str:
    """What a piece of evidence says in a name: "High Grocery", "Recent" (few days since the
    last purchase), "New" (short tenure), "Fiber optic", "No Internet Service", "Partner"."""
    if item.kind == "share":
        return level_phrase(item.field, item.level, present=item.segment_value > item.overall_value)
    axis = axis_of(item.field, None)
    if axis in AXIS_WORDS and item.kind in ("mean", "date"):
        higher = (item.effect > 0) != _reversed(item.field, axis)
        if item.kind == "date" and axis == "recency":
            higher = not higher  # a later last purchase is a more recent customer
        return AXIS_WORDS[axis][0 if higher else 1]
    return f"{'High' if item.effect > 0 else 'Low'} {short_label(item.field)}"


def _reversed(field: str, axis: str) -> bool:
    """A birth year or an enrolment year grows the other way: a later one is younger, or a
    newer customer."""
    return (axis == "age" and "birth" in field.lower()) or (axis == "tenure" and joined(field))


def field_name(evidence: Sequence[Evidence]) -> str:
    """A short name from the one or two most different fields ("High Grocery & Milk
    Customers", "Fiber Optic, Month-to-month"), within MAX_NAME_LENGTH characters."""
    top = [descriptor(e) for e in sorted(_nameable(evidence), key=lambda e: -abs(e.effect))[:2]]
    if not top:
        return "Typical Customers"
    first, *rest = top
    if not rest:
        return fit_name(first)
    second = rest[0]
    qualifier, _, what = second.partition(" ")
    if first.startswith(f"{qualifier} ") and qualifier in ("High", "Low"):
        both = f"{first} & {what}"  # "High Grocery & Milk"
    else:
        both = f"{first}, {second}"
    return fit_name(both, first)


def _apart(
    name: str, holders: list[int], evidence: Sequence[Sequence[Evidence]],
    standardized: Sequence[Mapping[str, float]],
) -> dict[int, str]:  # fmt: skip
    """Names for segments that share one: two or three told apart by the field on which they
    differ most ("(Higher Age)", "(Lower Age)"); otherwise each by its strongest trait that
    no other holder shows ("(Germany)", "(Not Active Member)")."""
    spreads = {
        field: max(standardized[i][field] for i in holders)
        - min(standardized[i][field] for i in holders)
        for field in standardized[holders[0]]
    }
    field = max(spreads, key=lambda f: spreads[f], default=None)
    qualifiers: dict[int, str] = {}
    if len(holders) in RANK_WORDS and field is not None and spreads[field] >= DISTINCT_SPREAD:
        ranked = sorted(holders, key=lambda i: standardized[i][field])
        words = RANK_WORDS[len(ranked)]
        qualifiers = {i: f"{words[rank]} {short_label(field)}" for rank, i in enumerate(ranked)}
    else:
        qualifiers = _own_traits(name, holders, evidence)
    # one style for the whole group: the long form only when every name fits it
    long_form = all(len(f"{name} ({q})") <= MAX_NAME_LENGTH for q in qualifiers.values())
    return {i: _qualified(name, q, long_form) for i, q in qualifiers.items()}


def _own_traits(
    name: str, holders: list[int], evidence: Sequence[Sequence[Evidence]]
) -> dict[int, str]:
    """Each holder's strongest trait that is not in the shared name and that no other holder
    shows as strongly: the holders with the clearest traits choose first."""
    candidates = {
        i: [
            descriptor(e)
            for e in sorted(_nameable(evidence[i]), key=lambda e: -abs(e.effect))
            if short_label(e.field).lower() not in name.lower()
        ]
        for i in holders
    }
    strongest = {
        i: max((abs(e.effect) for e in _nameable(evidence[i])), default=0.0) for i in holders
    }
    taken: set[str] = set()
    traits = {}
    for i in sorted(holders, key=lambda i: -strongest[i]):
        own = next((d for d in candidates[i] if d not in taken), None)
        if own is not None:
            traits[i] = own
            taken.add(own)
    return traits


def _qualified(name: str, qualifier: str, long_form: bool) -> str:
    """ "Budget-Conscious Customers (Low Income)", or shorter: "Budget-Conscious (Low
    Income)", then the qualifier cut at a word."""
    if long_form:
        return f"{name} ({qualifier})"
    base = name.removesuffix(" Customers")
    if len(f"{base} ({qualifier})") <= MAX_NAME_LENGTH:
        return f"{base} ({qualifier})"
    room = MAX_NAME_LENGTH - len(base) - 3
    cut = qualifier[:room].rsplit(" ", 1)[0] if room > 0 else ""
    return f"{base} ({cut})" if cut else base[:MAX_NAME_LENGTH]


def make_unique(
    names: Sequence[str],
    evidence: Sequence[Sequence[Evidence]],
    standardized: Sequence[Mapping[str, float]],
) -> list[str]:
    """Names unique within the analysis. Shared names are told apart (see `_apart`); an
    average-profile name shared by several segments says nothing, so those are named after
    their own fields; any name still shared is numbered."""
    result = list(names)
    for name in sorted(set(names)):
        holders = [i for i, n in enumerate(names) if n == name]
        if len(holders) < 2:
            continue
        if name in AVERAGE_NAMES:
            for i in holders:
                result[i] = field_name(evidence[i])
            continue
        for i, renamed in _apart(name, holders, evidence, standardized).items():
            result[i] = renamed
    seen: dict[str, int] = {}
    for i, name in enumerate(result):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            number = f" {seen[name]}"
            base = name if len(name + number) <= MAX_NAME_LENGTH else (
                name.replace(" Customers", "", 1)[: MAX_NAME_LENGTH - len(number)].rstrip()
            )  # fmt: skip
            result[i] = base + number
    return result
