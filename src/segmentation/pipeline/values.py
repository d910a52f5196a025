"""How a field's values are read: numbers written as text, placeholders, bands, yes/no.

Real exports write numbers the way a spreadsheet shows them: blanks for nothing, thousands
separators, decimal commas, currency and percent signs, bands such as "$40K - $60K"; and
they mark missing values with codes (`NULL`, `?`, `unknown`, 0 among years, 999 among day
counts). Each reading decided here is stored with the field (`FieldSpec.number_format`,
`placeholders`, `aliases`), so new customers scored later are read the same way, and each is
reported with its count.

Everything here is a pure function of the values: no field names, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BANDS",
    "YES_NO",
    "YES_WORDS",
    "NumberReading",
    "TextValues",
    "band_reading",
    "format_count",
    "number_reading",
    "numeric_placeholders",
    "read_numbers",
    "text_values",
    "yes_no_reading",
]

# Texts that stand for "no value" in exports (compared stripped and case-folded). "None" is
# left out on purpose: it is a real level as often as not ("None" of a product, a plan).
PLACEHOLDER_TEXTS = frozenset(
    {
        "", "?", "??", "-", "--", "---", ".", "n/a", "n.a.", "#n/a", "na", "nan", "null", "nil",
        "missing", "unknown", "unk", "undefined", "not available", "not known", "unspecified",
        "not specified", "(blank)", "(missing)", "(null)", "#value!", "#ref!", "#div/0!",
    }
)  # fmt: skip

# Numeric codes for "no value": 0 (a year, a salary, a price never set), -1, -9, -99 ... among
# non-negative values, and 9, 99, 999 ... above every real value (999 days: "never").
NINES = (9.0, 99.0, 999.0, 9999.0, 99999.0, 999999.0)
NEGATIVE_CODES = (-1.0, -9.0, -99.0, -999.0, -9999.0)
# a code must stand apart: beyond the central 99% of the other values ...
TAIL = 0.005
# ... a 9s code by more than the others' whole span, a zero below positive values that stay
# clear of zero (their low end at least this share of their median)
ZERO_CLEARANCE = 0.05
# values kept for the quantiles of a large field: a million customers need not be sorted
PLACEHOLDER_SAMPLE = 100_000
MIN_VALUES_FOR_PLACEHOLDERS = 20

YES_NO = "yes/no"
BANDS = "bands"
YES_WORDS = frozenset({"yes", "y", "true", "t"})
NO_WORDS = frozenset({"no", "n", "false", "f"})

CURRENCY = "$€£¥₹"
# spaces a spreadsheet writes inside numbers: no-break and narrow no-break spaces
SPACES = "\u00a0\u202f\u2009"
PLAIN_SPACES = str.maketrans(dict.fromkeys(SPACES, " "))
SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "%": 1.0}
# a share of the present values at most this large may fail to read as numbers (stray words
# in a column of numbers: read as missing and reported); more and the field is text
MAX_UNREADABLE_SHARE = 0.02
# the largest magnitude read as a number (pipeline.ingest.MAX_ABS_NUMBER, for numbers sent as
# numbers): beyond 1e15 a float loses whole numbers and squared distances lose all precision
LARGEST = 1e15
# bands are categories: a field with more distinct values is no field of bands
MAX_BAND_LEVELS = 50


def format_count(count: int, noun: str) -> str:
    """'1 customer', '4,238 customers'."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class TextValues:
    """A text field's values stripped of surrounding whitespace, with blanks and
    placeholder texts (`NULL`, `?`) as missing, and how many of each there were.

    Held as each customer's code into the distinct readable texts (`levels`, -1 for a
    missing value) and how many customers hold each: every test of a field's text looks at
    its levels (a million customers hold a few thousand at most), never at every row."""

    codes: np.ndarray
    levels: pd.Series
    counts: np.ndarray
    blanks: int
    placeholders: dict[str, int]
    #: the column's index, which the text per customer keeps
    index: pd.Index | None = None

    @property
    def values(self) -> pd.Series:
        """The text per customer, None where missing."""
        table = np.empty(len(self.levels) + 1, dtype=object)  # code -1 reads the last: None
        table[:-1] = self.levels.to_numpy(dtype=object)
        return pd.Series(table[self.codes], index=self.index, dtype=object)

    def per_customer(self, level_values: np.ndarray) -> np.ndarray:
        """Values given per level, per customer (NaN where missing)."""
        values: np.ndarray = np.append(level_values.astype(float), np.nan)[self.codes]
        return values

    @property
    def present(self) -> int:
        return int(self.counts.sum())

    @property
    def notes(self) -> list[str]:
        notes = []
        if self.blanks:
            notes.append(f"{format_count(self.blanks, 'blank value')} read as missing")
        for text, count in sorted(self.placeholders.items(), key=lambda kv: -kv[1]):
            notes.append(
                f"{text!r} in {format_count(count, 'customer')} read as missing (a placeholder)"
            )
        return notes


def _strip(distinct: pd.Series) -> pd.Series:
    return distinct.str.strip(" \t\r\n" + SPACES)


def text_values(column: pd.Series) -> TextValues:
    """The column's text, stripped, blanks and placeholder texts as missing (counted)."""
    codes, distinct = pd.factorize(column)
    texts = pd.Series(np.asarray(distinct, dtype=object), dtype=object).map(str)
    stripped = _strip(texts)
    folded = stripped.str.casefold()
    blank = (stripped == "").to_numpy()
    placeholder = folded.isin(PLACEHOLDER_TEXTS).to_numpy() & ~blank
    raw_counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
    found: dict[str, int] = {}
    for position in np.flatnonzero(placeholder):
        shown = str(stripped.iloc[position])
        found[shown] = found.get(shown, 0) + int(raw_counts[position])
    # two texts that read alike once stripped (" a", "a") are one level
    readable = stripped.where(~(blank | placeholder))
    level_of, levels = pd.factorize(readable)  # missing: -1
    customer_codes = np.append(level_of, -1)[codes]
    counts = np.bincount(level_of[level_of >= 0], weights=raw_counts[level_of >= 0],
                         minlength=len(levels)).astype(np.int64)  # fmt: skip
    return TextValues(
        customer_codes, pd.Series(np.asarray(levels, dtype=object), dtype=object), counts,
        int(raw_counts[blank].sum()), found, column.index,
    )  # fmt: skip


# --- numbers written as text ------------------------------------------------------------------

NUMBER_SHAPE = re.compile(
    rf"^(?P<sign>[+-]?)\s*(?P<cur>[{CURRENCY}])?\s*(?P<sign2>[+-]?)\s*"
    rf"(?P<digits>[\d.,' ]*\d[\d.,' ]*)\s*(?P<suffix>[kKmM%]?)\s*[{CURRENCY}]?$"
)
ACCOUNTING = re.compile(r"^\((?P<inner>.+)\)$")


def _grouped(decimal: str) -> re.Pattern[str]:
    """Digits with optional thousands groups and a fraction, for one decimal mark."""
    thousands = "[,' ]" if decimal == "." else "[.' ]"
    mark = re.escape(decimal)
    return re.compile(rf"^(\d{{1,3}}({thousands}\d{{3}})+|\d+)({mark}\d*)?$|^{mark}\d+$")


GROUPED = {".": _grouped("."), ",": _grouped(",")}


def _number(text: str, decimal: str) -> float:
    """One text as a number with `decimal` as the decimal mark; NaN when it is none."""
    text = text.translate(PLAIN_SPACES)
    negative = False
    accounting = ACCOUNTING.match(text)
    if accounting:  # (1,234.00): a negative amount as accountants write it
        text, negative = accounting.group("inner").strip(), True
    match = NUMBER_SHAPE.match(text)
    if match is None:
        return math.nan
    digits = match.group("digits").strip()
    if not GROUPED[decimal].match(digits):
        return math.nan
    plain = re.sub(r"[.,' ]", lambda m: "." if m.group() == decimal else "", digits)
    value = float(plain) * SUFFIXES[match.group("suffix")]
    if "-" in (match.group("sign"), match.group("sign2")):
        negative = not negative
    return -value if negative else value


def _zero_padded(texts: pd.Series) -> bool:
    """A leading zero before another digit marks a code ("0042"), not a number."""
    return bool(texts.str.match(r"^[+-]?0\d").any())


def _decimal_mark(texts: pd.Series) -> str | None:
    """The decimal mark the values show: "," ("29,85", "1.234,5", "1.234.567"), "." ("29.85",
    "1,234.5"), or None when they show neither (only "1,234" shapes) or both."""
    comma_decimal = texts.str.contains(r"\d,\d{1,2}$|\d,\d{4,}$|\.\d{3}[.,]", regex=True)
    point_decimal = texts.str.contains(r"\d\.\d{1,2}$|\d\.\d{4,}$|,\d{3}[.,]", regex=True)
    if comma_decimal.any() and point_decimal.any():
        return None
    if comma_decimal.any():
        return ","
    if point_decimal.any():
        return "."
    return None


@dataclass(frozen=True)
class NumberReading:
    """How a text field reads as numbers: the format (see `read_numbers`), the number of each
    of its levels (`TextValues.levels`; NaN: not a number), and the values that could not be
    read (a few stray words, read as missing)."""

    number_format: str
    level_values: np.ndarray
    unreadable: dict[str, int]

    @property
    def notes(self) -> list[str]:
        if self.number_format.startswith(BANDS):
            return [f"bands read as numbers at their midpoints ({_band_note(self.number_format)})"]
        notes = []
        if self.number_format == ",":
            notes.append("decimal commas read as decimal marks")
        if self.unreadable:
            shown = ", ".join(repr(t) for t in list(self.unreadable)[:3])
            count = sum(self.unreadable.values())
            verb = "is not a number" if count == 1 else "are not numbers"
            notes.append(f"{format_count(count, 'value')} that {verb} ({shown}) read as missing")
        return notes


def _band_note(number_format: str) -> str:
    width = float(number_format.split()[2])
    return f"an open band ('Under X', 'X+') half a typical band width ({width:g}) beyond X"


def _read_distinct(distinct: pd.Series, number_format: str) -> np.ndarray:
    numbers = np.array(_parse_distinct(distinct, number_format), dtype=float)  # a copy
    # "inf", "1e400", 25 digits: no value a customer has (ingest refuses such numbers sent
    # as numbers); read as not a number, so they are missing values reported, or refused
    with np.errstate(invalid="ignore"):
        numbers[~(np.abs(numbers) <= LARGEST)] = np.nan
    return numbers


def _parse_distinct(distinct: pd.Series, number_format: str) -> np.ndarray:
    if number_format.startswith(BANDS):
        _, decimal, width = number_format.split()
        return np.array([_band_value(t, decimal, float(width)) for t in distinct], dtype=float)
    if number_format == YES_NO:
        folded = distinct.str.casefold()
        return np.where(folded.isin(YES_WORDS), 1.0, np.where(folded.isin(NO_WORDS), 0.0, np.nan))
    plain = pd.to_numeric(distinct, errors="coerce").to_numpy(dtype=float)
    if number_format == "." and not np.isnan(plain).any():
        return plain
    return np.array([_number(t, number_format) for t in distinct], dtype=float)


def read_numbers(column: pd.Series, number_format: str | None) -> np.ndarray:
    """A field's values as float64 (NaN where missing or unreadable), text read with
    `number_format`: "." or "," (the decimal mark; thousands separators, currency and
    percent signs allowed), "bands <mark> <width>" (a band at its midpoint), or "yes/no"."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=float, na_value=np.nan)
    codes, distinct = pd.factorize(column)
    texts = _strip(pd.Series(np.asarray(distinct, dtype=object), dtype=object).map(str))
    numbers = (
        _read_distinct(texts, number_format)
        if number_format is not None
        else pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float)
    )
    return np.append(numbers, np.nan)[codes]


def number_reading(read: TextValues, decimal_hint: str | None = None) -> NumberReading | None:
    """How a text field reads as numbers, or None when it is not numbers. The decimal mark
    comes from the values ("29,85" or "1.234,5" say comma), else from `decimal_hint` (what the
    rest of the file says), else the point."""
    texts, counts = read.levels, read.counts
    if texts.empty or _zero_padded(texts):
        return None
    plain = texts.str.translate(PLAIN_SPACES)
    shaped = plain.str.match(NUMBER_SHAPE) | plain.str.match(ACCOUNTING)
    if not _few_unreadable(int(counts[~shaped.to_numpy()].sum()), read.present):
        return None
    decimal = _decimal_mark(texts[shaped]) or decimal_hint or "."
    numbers = _read_distinct(texts, decimal)
    failed = np.isnan(numbers)
    if not _few_unreadable(int(counts[failed].sum()), read.present) or failed.all():
        return None
    unreadable = {str(texts.iloc[i]): int(counts[i]) for i in np.flatnonzero(failed)}
    return NumberReading(decimal, numbers, unreadable)


def _few_unreadable(unreadable: int, present: int) -> bool:
    """Few enough values that are not numbers for the field to be numbers with stray values:
    2% of them, or one in a small file (but never a tenth)."""
    return unreadable <= max(MAX_UNREADABLE_SHARE * present, 1) and unreadable < 0.1 * present


def decimal_comma_evident(read: TextValues) -> bool:
    """Whether a text field's values show decimal commas ("29,85", "1.234,50")."""
    distinct = read.levels
    if distinct.empty or _zero_padded(distinct):
        return False
    shaped = distinct[distinct.str.match(NUMBER_SHAPE)]
    return len(shaped) == len(distinct) and _decimal_mark(shaped) == ","


def yes_no_reading(read: TextValues) -> NumberReading | None:
    """yes/no, y/n, true/false or t/f (any case) as 1/0; None for other text."""
    distinct = set(read.levels.str.casefold())
    pairs = (({"yes"}, {"no"}), ({"y"}, {"n"}), ({"true"}, {"false"}), ({"t"}, {"f"}))
    if not any(distinct <= yes | no and distinct & yes and distinct & no for yes, no in pairs):
        return None
    return NumberReading(YES_NO, _read_distinct(read.levels, YES_NO), {})


# --- bands and ranges -------------------------------------------------------------------------

AMOUNT = rf"[+-]?\s*[{CURRENCY}]?\s*\d[\d.,' ]*\s*[kKmM]?\s*%?"
# hyphen, en dash, em dash or "to" between the two edges
CLOSED_BAND = re.compile(
    rf"^(?P<low>{AMOUNT})\s*(?:-|\u2013|\u2014|to)\s*(?P<high>{AMOUNT})$", re.IGNORECASE
)
BELOW = re.compile(
    rf"^(?:under|below|less than|fewer than|up to|<=?)\s*(?P<edge>{AMOUNT})$", re.IGNORECASE
)
ABOVE = re.compile(
    rf"^(?:over|above|more than|greater than|>=?)\s*(?P<edge>{AMOUNT})$"
    rf"|^(?P<edge2>{AMOUNT})\s*(?:\+|plus|and over|and above|and more|or more|and up)$",
    re.IGNORECASE,
)


def _band_value(text: str, decimal: str, width: float) -> float:
    """A band at its midpoint; an open band half a typical width beyond its edge (but never
    below zero when its edge is positive); a plain number as itself."""
    closed = CLOSED_BAND.match(text)
    if closed:
        low = _number(closed["low"].strip(), decimal)
        high = _number(closed["high"].strip(), decimal)
        return (low + high) / 2 if low < high else math.nan
    below = BELOW.match(text)
    if below:
        edge = _number(below["edge"].strip(), decimal)
        return edge - width / 2 if edge - width / 2 >= 0 or edge <= 0 else edge / 2
    above = ABOVE.match(text)
    if above:
        edge = _number((above["edge"] or above["edge2"]).strip(), decimal)
        return edge + width / 2
    return _number(text, decimal)


def band_reading(read: TextValues, decimal_hint: str | None = None) -> NumberReading | None:
    """Bands ("$30,000 - $39,999", "Under $20,000", "$500,000 Plus", "25-29") as numbers at
    their midpoints, when every value is a band (or a plain number) and some band is closed
    with low < high; None otherwise."""
    distinct = read.levels
    if distinct.empty or len(distinct) > MAX_BAND_LEVELS:
        return None
    closed = distinct[distinct.map(lambda t: CLOSED_BAND.match(t) is not None)]
    if closed.empty:
        return None
    decimal = decimal_hint or "."
    widths = []
    for band in closed:
        match = CLOSED_BAND.match(band)
        assert match is not None
        low, high = _number(match["low"].strip(), decimal), _number(match["high"].strip(), decimal)
        if not low < high:
            return None
        widths.append(high - low)
    width = float(np.median(widths))
    number_format = f"{BANDS} {decimal} {width:.6g}"
    values = _read_distinct(distinct.map(str), number_format)
    if np.isnan(values).any():
        return None
    return NumberReading(number_format, values, {})


# --- numeric placeholders ---------------------------------------------------------------------


def _typical_spacing(values: np.ndarray) -> float:
    distinct = np.unique(values)
    return float(np.median(np.diff(distinct))) if len(distinct) > 1 else 0.0


def _stands_apart(code: float, others: np.ndarray) -> bool:
    """Whether `code` lies apart from every other value, as a placeholder does."""
    low, high = np.quantile(others, [TAIL, 1 - TAIL])
    if code > others.max():  # 999 among day counts 0..27
        return code in NINES and code - high >= max(high - low, 1.0)
    if code == 0:
        # 0 below positive values that stay clear of zero (years, salaries, prices never
        # set; a stray negative aside); not shares in [0, 1] nor counts, whose zero is a
        # real value next to 1, 2, 3
        return bool(
            low > 0
            and high > 1
            and low >= ZERO_CLEARANCE * float(np.median(others))
            and low > 3 * _typical_spacing(others)
        )
    # -1 among non-negative values
    return code in NEGATIVE_CODES and code < others.min() and low >= 0


def numeric_placeholders(
    values: np.ndarray, zero_is_a_value: bool = False, random_state: int = 0
) -> dict[float, int]:
    """Placeholder codes among a numeric field's values, with their counts: a code (0, -1,
    -99, 999, ...) at the edge of the values that stands apart from all the others.
    `zero_is_a_value`: the field measures an amount or a count, whose 0 means none (no
    purchase, no spend), never "unknown"."""
    present = values[~np.isnan(values)]
    if len(present) < MIN_VALUES_FOR_PLACEHOLDERS:
        return {}
    found = {}
    # a code stands at an edge of the values; 0 may have a few stray negatives below it
    edges = {float(present.min()), float(present.max())}
    if (present == 0).any():
        edges.add(0.0)
    if zero_is_a_value:
        edges.discard(0.0)
    for code in sorted(edges):
        if code not in (0.0, *NINES, *NEGATIVE_CODES):
            continue
        is_code = present == code
        others = present[~is_code]
        if len(others) < MIN_VALUES_FOR_PLACEHOLDERS or len(np.unique(others[:1000])) < 3:
            continue
        if len(others) > PLACEHOLDER_SAMPLE:
            rng = np.random.default_rng(random_state)
            others = rng.choice(others, PLACEHOLDER_SAMPLE, replace=False)
        if _stands_apart(code, others):
            found[code] = int(is_code.sum())
    return found


def without(values: np.ndarray, codes: Iterable[float]) -> np.ndarray:
    """The values with every placeholder code as NaN (a copy)."""
    cleaned = values.astype(float, copy=True)
    for code in codes:
        cleaned[cleaned == code] = np.nan
    return cleaned
