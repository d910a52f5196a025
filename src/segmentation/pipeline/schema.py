"""Each field's role: id, numeric, boolean, categorical, date, or ignored (with the reason).

The role decides how a field is encoded and described. An id is never a feature; free text,
constants and nested values are ignored and reported, never guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.ingest import IngestedCustomers

__all__ = ["FieldRole", "FieldSpec", "Schema", "axis_of", "infer_schema", "is_money", "parse_dates"]

# A text field with more distinct values than this is free text or a code, not a category.
MAX_CATEGORY_LEVELS = 50
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d-%m-%Y", "%d/%m/%Y",
                "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d")  # fmt: skip

# Business axes recognised from field names; a segment's position on them picks its name.
AXIS_PATTERNS = {
    "income": re.compile(r"income|salary|wealth|earning"),
    "spend": re.compile(r"spend|mnt|amount|monetary|revenue|sales|value|balance|payment|ltv|clv"),
    "frequency": re.compile(r"frequen|count|num|trx|visits"),
    # a count of these is frequency, an amount of them is spend
    "purchases": re.compile(r"visit|order|transaction|purchase"),
    "recency": re.compile(r"recen|dayssince|lastpurchase|lastorder"),
    "age": re.compile(r"^age\b|^age_|yearbirth|birthyear"),
}


def axis_of(field: str, is_count: bool | None) -> str | None:
    """The business axis a numeric field measures, if its name says so.

    `purchases` is ambiguous: a count of purchases is frequency, an amount is spend.
    `is_count` settles it (None: unknown, read as a count, as in the seed's example).
    """
    name = re.sub(r"[^a-z]", "", field.lower())
    if AXIS_PATTERNS["age"].search(field.lower()) or "yearbirth" in name:
        return "age"
    if AXIS_PATTERNS["recency"].search(name):
        return "recency"
    if AXIS_PATTERNS["income"].search(name):
        return "income"
    if AXIS_PATTERNS["frequency"].search(name):
        return "frequency"
    if AXIS_PATTERNS["spend"].search(name):
        return "spend"
    if AXIS_PATTERNS["purchases"].search(name):
        return "spend" if is_count is False else "frequency"
    return None


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
    """Text to timestamps with one explicit format; unparseable values become NaT."""
    return pd.to_datetime(values, format=date_format, errors="coerce")


def _date_format(text: pd.Series) -> str | None:
    # distinct values only: a million customers share a few thousand dates at most
    present = pd.Series(text.dropna().unique())
    if present.empty or not present.map(lambda v: any(c.isdigit() for c in v)).all():
        return None
    probe = present.iloc[: min(len(present), 200)]
    for date_format in DATE_FORMATS:
        if parse_dates(probe, date_format).notna().all() and (
            parse_dates(present, date_format).notna().all()
        ):
            return date_format
    return None


def _text_role(name: str, text: pd.Series, n_customers: int) -> FieldSpec:
    present = text.dropna()
    levels = present.nunique()
    date_format = _date_format(text)
    if date_format is not None:
        return FieldSpec(name, FieldRole.DATE, date_format=date_format)
    if levels <= 1:
        return FieldSpec(name, FieldRole.IGNORED, "the same value for every customer")
    unique_per_customer = levels == len(present) and len(present) >= 10
    if unique_per_customer:
        return FieldSpec(name, FieldRole.IGNORED, "a different value for every customer (a code)")
    if levels > MAX_CATEGORY_LEVELS or (n_customers >= 40 and levels > n_customers / 2):
        return FieldSpec(name, FieldRole.IGNORED, f"free text or a code ({levels} distinct values)")
    return FieldSpec(name, FieldRole.CATEGORICAL)


def _text_or_number_role(name: str, text: pd.Series, n_customers: int) -> FieldSpec:
    """Text that is really dates or numbers ("2013-05-01", "75000") gets their role; text
    with leading zeros ("0042") is a code, whatever its digits say."""
    distinct = pd.Series(text.dropna().unique())
    if _date_format(text) is None and len(distinct):
        as_numbers = pd.to_numeric(distinct, errors="coerce")
        is_code = distinct.str.match(r"^[+-]?0\d").any()
        if as_numbers.notna().all() and not is_code:
            return _numeric_role(name, pd.to_numeric(text, errors="coerce").astype(float), False)
    return _text_role(name, text, n_customers)


def _name_words(name: str) -> list[str]:
    """`CustomerID` -> customer, id; `amount_paid` -> amount, paid."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def _numeric_role(name: str, values: pd.Series, is_boolean: bool) -> FieldSpec:
    present = values.dropna()
    if present.nunique() <= 1:
        return FieldSpec(name, FieldRole.IGNORED, "the same value for every customer")
    if is_boolean or set(np.unique(present.to_numpy())) <= {0.0, 1.0}:
        return FieldSpec(name, FieldRole.BOOLEAN)
    return FieldSpec(name, FieldRole.NUMERIC)


def _select(
    columns: Sequence[str], features: Sequence[str] | None, exclude: Sequence[str]
) -> set[str]:
    """The fields the caller allows as features; unknown names are errors, not no-ops."""
    known = set(columns)
    unknown = [f for f in [*(features or []), *exclude] if f not in known]
    if unknown:
        shown = ", ".join(repr(c) for c in list(columns)[:30])
        raise InvalidInputError(
            [
                Problem(f"options name unknown field {name!r}; the customers have: {shown}")
                for name in unknown
            ]
        )
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
            _name_words(name)[-1:] == ["id"]
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
