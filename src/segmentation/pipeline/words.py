"""Fields, levels and figures in a reader's words: `CASH_ADVANCE` -> "Cash advance", the
level "No" of `InternetService` -> "No Internet Service", 152,000 -> "152k".

Shared by the profile (characteristics), the names, the advice, the report and the charts.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_NAME_LENGTH",
    "MISSING_LEVEL",
    "fit_name",
    "format_number",
    "is_generic_level",
    "label",
    "level_phrase",
    "short_label",
]

MAX_NAME_LENGTH = 40
MAX_NAME_WORDS = 3
# the level categorical fields give to a missing value (features.MISSING_LEVEL)
MISSING_LEVEL = "(missing)"
# words that carry no meaning in a segment's name: "Num Web Visits Month" reads "Web Visits"
FILLER_WORDS = frozenset(
    {"num", "number", "nb", "n", "mnt", "amt", "amount", "month", "monthly", "per", "of", "the",
     "total", "count", "avg", "average", "k", "1", "100"}
)  # fmt: skip
# "1", "0", "F", "M" are codes among a category's levels (a true/false field, "Y"/"N" included,
# is read as such and has no levels here)
YES_LEVELS = frozenset({"yes", "true"})
NO_LEVELS = frozenset({"no", "false", "none"})
OTHER_LEVELS = frozenset({"other", "others"})
# a level this short ("M", "A1") says nothing without its field
SHORT_LEVEL = 2


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


def _level_text(level: str) -> str:
    # "z_" marks the reference level in some statistics packages' exports: not part of it
    text = level.strip().removeprefix("z_")
    return text[:1].upper() + text[1:]


def is_generic_level(level: str) -> bool:
    """Whether a level means nothing without its field: yes/no, a number, a code of one or
    two characters, "Other"."""
    text = _level_text(level)
    folded = text.casefold()
    return (
        folded in YES_LEVELS | NO_LEVELS | OTHER_LEVELS
        or len(text) <= SHORT_LEVEL
        or bool(re.fullmatch(r"[+-]?\d+([.,]\d+)?", text))
    )


def _without_verb(words: list[str]) -> tuple[list[str], str]:
    """`Is Active Member` -> (Active Member, "Not"), `Has Cr Card` -> (Cr Card, "No")."""
    if len(words) > 1 and words[0].lower() == "is":
        return words[1:], "Not"
    if len(words) > 1 and words[0].lower() in ("has", "have"):
        return words[1:], "No"
    return words, "No"


def level_phrase(field: str, level: str | None, present: bool = True) -> str:
    """A level as a reader would name it, with its field when it needs one: "Fiber optic",
    "No Internet Service" (level "No"), "Partner" (level "Yes"), "City Tier 1", "Other
    Payment Method". `level` None is a true/false field: `present` says which side.

    Examples
    --------
    >>> level_phrase("InternetService", "No"), level_phrase("Contract", "Month-to-month")
    ('No Internet Service', 'Month-to-month')
    >>> level_phrase("CityTier", "1"), level_phrase("IsActiveMember", None, present=False)
    ('City Tier 1', 'Not Active Member')
    """
    words, negation = _without_verb(short_label(field).split())
    what = " ".join(words)
    if level is None:
        return what if present else f"{negation} {what}"
    text = _level_text(level)
    folded = text.casefold()
    if folded in YES_LEVELS:
        return what
    if folded in NO_LEVELS:
        return f"{negation} {what}"
    if folded in OTHER_LEVELS:
        return f"Other {what}"
    if is_generic_level(level):
        return f"{what} {text}"
    return text


def _has_customer_word(name: str) -> bool:
    return bool(re.search(r"\b(customers?|clients?|members?|buyers?|users?|spenders?)\b", name,
                          re.IGNORECASE))  # fmt: skip


def fit_name(*options: str) -> str:
    """The first option that fits MAX_NAME_LENGTH with " Customers" after it, else the first
    that fits alone, else the last cut at a word; "Customers" is never added to a name
    that already says who (no "Customer Customers")."""
    for option in options:
        suffixed = option if _has_customer_word(option) else f"{option} Customers"
        if len(suffixed) <= MAX_NAME_LENGTH:
            return suffixed
    for option in options:
        if len(option) <= MAX_NAME_LENGTH:
            return option
    cut = options[-1][:MAX_NAME_LENGTH].rsplit(" ", 1)[0]
    return cut.rstrip(",&-( ")
