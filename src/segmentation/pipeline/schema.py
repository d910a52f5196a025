"""Each field's role: id, numeric, boolean, categorical, date, or ignored (with the reason).

The role decides how a field is encoded and described. An id is never a feature; free text,
constants and nested values are ignored and reported, never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.ingest import IngestedCustomers

__all__ = [
    "ADDITIVE_AXES",
    "AXIS_LABELS",
    "FieldRole",
    "FieldSpec",
    "Schema",
    "axis_fields",
    "axis_of",
    "detect_date_format",
    "infer_schema",
    "is_money",
    "name_words",
    "parse_dates",
]

# A text field with more distinct values than this is free text or a code, not a category.
MAX_CATEGORY_LEVELS = 50
# "ISO8601" covers what browsers send (toISOString: 2021-03-04T10:20:30.123Z) and offsets.
ISO_8601 = "ISO8601"
DATE_FORMATS = ("%Y-%m-%d", ISO_8601, "%d-%m-%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d")

# Business axes recognised from the words of field names (`NumWebPurchases` -> num, web,
# purchases); whole words, so `account_balance` is not a count and `discount` not a count.
INCOME_WORDS = frozenset({"income", "salary", "wealth", "earnings", "earning"})
SPEND_WORDS = frozenset(
    {
        "spend",
        "spending",
        "spent",
        "mnt",
        "amount",
        "monetary",
        "revenue",
        "sales",
        "value",
        "balance",
        "payment",
        "payments",
        "ltv",
        "clv",
    }
)
FREQUENCY_WORDS = frozenset({"frequency", "freq", "count", "trx", "visits"})
# a count of these is frequency, an amount of them is spend
PURCHASE_WORDS = frozenset({"purchases", "purchase", "orders", "order", "transactions", "deals"})
NUMBER_WORDS = frozenset({"num", "number", "n", "nb"})
RECENCY_WORDS = frozenset({"recency", "recent"})
LAST_WORDS = frozenset({"purchase", "order", "visit", "transaction", "seen", "active"})


def name_words(name: str) -> list[str]:
    """`CustomerID` -> customer, id; `amount_paid` -> amount, paid; `MntWines` -> mnt, wines."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def axis_of(field: str, is_count: bool | None) -> str | None:
    """The business axis a field measures (income, spend, frequency, recency, age), if its
    name says so.

    `purchases` is ambiguous: a count of purchases is frequency, an amount is spend.
    `is_count` settles it (None: unknown, read as a count, as in the seed's example).

    Examples
    --------
    >>> [axis_of(name, None) for name in ("Annual Income (k$)", "NumWebPurchases", "MntWines")]
    ['income', 'frequency', 'spend']
    >>> [axis_of(name, None) for name in ("account_balance", "discount", "last_purchase")]
    ['spend', None, 'recency']
    """
    words = name_words(field)
    bag = set(words)
    if "age" in bag or {"year", "birth"} <= bag or "birthyear" in bag:
        return "age"
    if bag & RECENCY_WORDS or ("last" in bag and bag & LAST_WORDS):
        return "recency"
    if bag & INCOME_WORDS:
        return "income"
    if bag & FREQUENCY_WORDS or (bag & NUMBER_WORDS and bag & PURCHASE_WORDS):
        return "frequency"
    if bag & SPEND_WORDS:
        return "spend"
    if bag & PURCHASE_WORDS:
        return "spend" if is_count is False else "frequency"
    return None


# Axes whose fields add up to one business quantity (total spend, total purchases); the
# others (age, recency) are averaged, since adding two ages means nothing.
ADDITIVE_AXES = frozenset({"income", "spend", "frequency"})
AXIS_LABELS = {"income": "Total income", "spend": "Total spend", "frequency": "Total purchases"}


def axis_fields(axes: Mapping[str, str]) -> dict[str, list[str]]:
    """The fields that make up each business axis, from a field -> axis mapping.

    Purchase counts and visit counts both read as frequency, but adding web visits to
    purchases would count browsing as buying: when a frequency field names purchases, orders
    or transactions, frequency is made of those alone.

    Examples
    --------
    >>> axis_fields({"MntWines": "spend", "MntFruits": "spend", "NumWebPurchases": "frequency",
    ...              "NumWebVisitsMonth": "frequency"})
    {'spend': ['MntWines', 'MntFruits'], 'frequency': ['NumWebPurchases']}
    """
    grouped: dict[str, list[str]] = {}
    for field, axis in axes.items():
        grouped.setdefault(axis, []).append(field)
    frequency = grouped.get("frequency", [])
    counts = [f for f in frequency if set(name_words(f)) & (PURCHASE_WORDS | {"trx"})]
    if counts:
        grouped["frequency"] = counts
    return grouped


def is_money(field: str) -> bool:
    """Income or spend by its name: such fields get the log transform at a lower skew."""
    return axis_of(field, is_count=False) in ("income", "spend")


class FieldRole(StrEnum):
    """How a field takes part in the segmentation."""

    #: identifies the customer; never a feature
    ID = "id"
    #: a number; imputed with the median, log-transformed when skewed, standardized
    NUMERIC = "numeric"
    #: true/false or 0/1; imputed with the most frequent value
    BOOLEAN = "boolean"
    #: a few distinct text values; one-hot encoded with rare levels grouped
    CATEGORICAL = "categorical"
    #: calendar dates; used as days before the latest date in the data
    DATE = "date"
    #: not used; `FieldSpec.reason` says why
    IGNORED = "ignored"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    role: FieldRole
    reason: str = ""
    date_format: str | None = None

    @property
    def is_feature(self) -> bool:
        return self.role not in (FieldRole.ID, FieldRole.IGNORED)


@dataclass(frozen=True)
class Schema:
    fields: tuple[FieldSpec, ...]
    id_field: str | None

    @property
    def features(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.is_feature)

    @property
    def ignored(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.role is FieldRole.IGNORED)

    def role(self, name: str) -> FieldRole:
        return next(f.role for f in self.fields if f.name == name)


def parse_dates(values: pd.Series, date_format: str) -> pd.Series:
    """Text to naive UTC timestamps with one explicit format; unparseable values become NaT."""
    if date_format == ISO_8601:
        stamps = pd.to_datetime(values, format=ISO_8601, errors="coerce", utc=True)
        return stamps.dt.tz_localize(None)
    return pd.to_datetime(values, format=date_format, errors="coerce")


def detect_date_format(text: pd.Series) -> str | None:
    # distinct values only: a million customers share a few thousand dates at most
    return _date_format_of(pd.Series(text.dropna().unique()))


def _date_format_of(present: pd.Series) -> str | None:
    """The date format of all these distinct present values, if they are dates."""
    # a date has digits and a separator or eight digits; "2013" alone is a number, not a date
    if present.empty or not present.str.match(r"^\d{8}$|^\d{1,4}[-/.]\d").all():
        return None
    probe = present.iloc[: min(len(present), 200)]
    for date_format in DATE_FORMATS:
        if parse_dates(probe, date_format).notna().all() and (
            parse_dates(present, date_format).notna().all()
        ):
            return date_format
    return None


def _text_role(name: str, n_present: int, distinct: pd.Series, n_customers: int) -> FieldSpec:
    """The role of a text field with `n_present` values, `distinct` of them different."""
    levels = len(distinct)
    if levels <= 1:
        return _constant(name, levels)
    date_format = _date_format_of(distinct)
    if date_format is not None:
        return FieldSpec(name, FieldRole.DATE, date_format=date_format)
    unique_per_customer = levels == n_present and n_present >= 10
    if unique_per_customer:
        return FieldSpec(name, FieldRole.IGNORED, "a different value for every customer (a code)")
    if levels > MAX_CATEGORY_LEVELS or (n_customers >= 40 and levels > n_customers / 2):
        return FieldSpec(name, FieldRole.IGNORED, f"free text or a code ({levels} distinct values)")
    return FieldSpec(name, FieldRole.CATEGORICAL)


# "75,000", "$1,200.50", "1 200": numbers a spreadsheet formatted; which separator is decimal
# cannot be known, so they are refused with the record that shows one rather than guessed.
FORMATTED_NUMBER = re.compile(r"^[+-]?[$€£]?\s?\d{1,3}([,\s]\d{3})+(\.\d+)?$|^[+-]?[$€£]\s?\d")


def _check_formatted_numbers(name: str, text: pd.Series, distinct: pd.Series) -> None:
    # tested on the distinct values (a million rows hold a few hundred levels), then the
    # first record holding a formatted one is found
    formatted = distinct.str.match(FORMATTED_NUMBER).fillna(False).astype(bool)
    plain = pd.to_numeric(distinct, errors="coerce").notna()
    if len(distinct) and bool((formatted | plain).all()) and bool(formatted.any()):
        position = int(np.argmax(text.isin(set(distinct[formatted])).to_numpy()))
        raise InvalidInputError(
            Problem(
                f"{text.iloc[position]!r} is a number written as formatted text; "
                "send plain numbers (75000, not '75,000')",
                position,
                name,
            )
        )


def _text_or_number_role(name: str, text: pd.Series, n_customers: int) -> FieldSpec:
    """Text that is really dates or numbers ("2013-05-01", "75000") gets their role; text
    with leading zeros ("0042") is a code, whatever its digits say."""
    # every test below looks at the distinct values, found once: a million customers hold a
    # few hundred (each pass over the rows cost 0.1 s at 1,000,000 customers)
    present = text.dropna()
    distinct = pd.Series(present.unique(), dtype=object)
    _check_formatted_numbers(name, text, distinct)
    if _date_format_of(distinct) is None and len(distinct):
        as_numbers = pd.to_numeric(distinct, errors="coerce")
        is_code = distinct.str.match(r"^[+-]?0\d").any()
        if as_numbers.notna().all() and not is_code:
            return _numeric_role(name, pd.to_numeric(text, errors="coerce").astype(float), False)
    return _text_role(name, len(present), distinct, n_customers)


def _constant(name: str, levels: int) -> FieldSpec:
    reason = "no value for any customer" if levels == 0 else "the same value for every customer"
    return FieldSpec(name, FieldRole.IGNORED, reason)


def _numeric_role(name: str, values: pd.Series, is_boolean: bool) -> FieldSpec:
    present = values.dropna()
    if present.nunique() <= 1:
        return _constant(name, present.nunique())
    if is_boolean or set(np.unique(present.to_numpy())) <= {0.0, 1.0}:
        return FieldSpec(name, FieldRole.BOOLEAN)
    return FieldSpec(name, FieldRole.NUMERIC)


def _select(
    columns: Sequence[str], features: Sequence[str] | None, exclude: Sequence[str]
) -> set[str]:
    """The fields the caller allows as features; unknown names are errors, not no-ops."""
    known = set(columns)
    shown = ", ".join(repr(c) for c in list(columns)[:30])
    problems = [
        Problem(f"names unknown field {name!r}; the customers have: {shown}", field=option)
        for option, names in (("features", features or []), ("exclude", exclude))
        for name in names
        if name not in known
    ]
    if problems:
        raise InvalidInputError(problems)
    allowed = set(features) if features else known
    return allowed - set(exclude)


def infer_schema(
    customers: IngestedCustomers,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> Schema:
    """Decide each field's role from its name and values.

    `features` (if given) is the complete list of fields to use and `exclude` removes fields;
    either naming a field the customers do not have raises `InvalidInputError`.
    """
    frame = customers.frame
    all_fields = [*frame.columns, *customers.nested_fields]
    allowed = _select(all_fields, features, exclude)
    specs: list[FieldSpec] = []
    for name in frame.columns:
        column = frame[name]
        if name == customers.id_field:
            specs.append(FieldSpec(name, FieldRole.ID, "the customer id"))
        elif name not in allowed:
            specs.append(FieldSpec(name, FieldRole.IGNORED, "excluded by the options"))
        elif not pd.api.types.is_numeric_dtype(column.dtype):
            specs.append(_text_or_number_role(name, column, len(frame)))
        elif (
            name_words(name)[-1:] == ["id"]
            and column.notna().all()
            and bool((column % 1 == 0).all())
            and column.nunique() == len(column) >= 10
        ):
            specs.append(FieldSpec(name, FieldRole.IGNORED, "an identifier (unique per customer)"))
        else:
            specs.append(_numeric_role(name, column, name in customers.boolean_fields))
    specs += [
        FieldSpec(name, FieldRole.IGNORED, "holds objects or lists, which cannot be compared")
        for name in customers.nested_fields
    ]
    return Schema(fields=tuple(specs), id_field=customers.id_field)
