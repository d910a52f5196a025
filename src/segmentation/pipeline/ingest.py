"""Customers in: check every record and field, and build one typed frame.

Nothing is converted silently. A field mixing numbers with text or booleans, a non-finite or
absurdly large number, a record that is not an object, a missing or duplicated id: each is a
`Problem` naming the record and the field. Missing values (null or absent keys) are fine: later
stages impute and report them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

from segmentation.errors import InsufficientDataError, InvalidInputError, Problem

__all__ = [
    "MAX_ABS_NUMBER",
    "CustomerColumns",
    "IngestedCustomers",
    "NonFiniteNumber",
    "describe",
    "exact_int64",
    "find_id_field",
    "ingest",
]

# Beyond 1e15 a float no longer holds every integer exactly and squared distances of scaled
# values lose all precision; no plausible customer attribute is that large.
MAX_ABS_NUMBER = 1e15
# Problems past this many are counted, not listed: a caller fixing a file needs the first few.
MAX_PROBLEMS = 20
# Nested values are echoed back, never used; deeper than this they are refused, since
# serializing them again would exhaust the stack.
MAX_NESTING = 32

ID_FIELD_NAMES = frozenset(
    {
        "id", "customerid", "custid", "clientid", "userid", "memberid", "accountid",
        "customernumber", "customerno", "customerkey",
    }
)  # fmt: skip


@dataclass(frozen=True)
class NonFiniteNumber:
    """A NaN or Infinity literal from JSON, kept distinct from null so it can be rejected."""

    text: str


@dataclass(frozen=True)
class IngestedCustomers:
    """The validated customers: one row per customer in input order, clean dtypes.

    `frame` columns are float64 (numbers, booleans as 0/1) or object (text); missing values
    are NaN / None. `id_field` names the customer id column if there is one. `nested_fields`
    held objects or lists, which are kept in the records but cannot be features. `rows` are
    the positions (in the input) of the rows kept when repeated ids were settled by keeping
    one row per id (None: every row), and `notes` say what was left out.
    """

    frame: pd.DataFrame
    id_field: str | None
    boolean_fields: tuple[str, ...]
    nested_fields: tuple[str, ...]
    rows: np.ndarray | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerColumns:
    """Customers field by field: each field's values in customer order as sent, None where a
    customer has no value; what a body decoded straight into columns gives (no dict per
    customer). A field no customer has is left out. A field the decoder already read as
    numbers throughout comes as a float array, NaN where a customer has no value."""

    values: Mapping[str, list[Any] | np.ndarray]
    count: int


def normalized_name(field: str) -> str:
    return re.sub(r"[^a-z0-9]", "", field.lower())


def find_id_field(fields: Iterable[str]) -> str | None:
    """The first field whose name says it is the customer id (`id`, `CustomerID`, `CUST_ID`)."""
    return next((f for f in fields if normalized_name(f) in ID_FIELD_NAMES), None)


def _kind(value: Any) -> str:
    # bool before int: True is an int to Python but not a number to a customer record
    if value is None:
        return "null"
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "number"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "null"
        return "number" if math.isfinite(value) else "nonfinite"
    if isinstance(value, str):
        # a blank is no value, as an empty cell is: "" beside numbers is not a type error
        return "text" if value.strip() else "null"
    if isinstance(value, NonFiniteNumber):
        return "nonfinite"
    if isinstance(value, pd.Timestamp | np.datetime64):
        return "text"
    if value is pd.NaT or value is pd.NA:
        return "null"
    return "nested"


KIND_WORDS = {"number": "a number", "text": "text", "boolean": "a boolean (true/false)"}


def describe(value: Any) -> str:
    """A value as the caller wrote it in JSON: 3 not np.float64(3.0), true not True."""
    if isinstance(value, NonFiniteNumber):
        return value.text
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < MAX_ABS_NUMBER:
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_mixed_kinds(
    field: str, column: pd.Series, kinds: pd.Series, expected: str | None = None
) -> list[Problem]:
    """Flag the records whose type differs from the field's majority type, or from the
    `expected` one (the kind stored segments learned) when it is given."""
    counts = kinds[kinds.isin(list(KIND_WORDS))].value_counts()
    if len(counts) <= 1:
        return []
    if expected is not None:
        return [
            Problem(
                f"expected {KIND_WORDS[expected]}, as when the segments were learned, got "
                f"{describe(column.iloc[position])}",
                int(position),
                field,
            )
            for position in np.flatnonzero((kinds != expected) & kinds.isin(list(KIND_WORDS)))[
                :MAX_PROBLEMS
            ]
        ]
    majority = str(counts.index[0])
    problems = []
    for position in np.flatnonzero((kinds != majority) & kinds.isin(list(KIND_WORDS)))[
        :MAX_PROBLEMS
    ]:
        value = column.iloc[position]
        problems.append(
            Problem(
                f"expected {KIND_WORDS[majority]} as in {counts.iloc[0]} other records, "
                f"got {describe(value)}",
                int(position),
                field,
            )
        )
    return problems


def _check_numbers(field: str, values: np.ndarray) -> list[Problem]:
    with np.errstate(invalid="ignore", over="ignore"):
        bad = (np.isinf(values) | (np.abs(values) > MAX_ABS_NUMBER)) & ~np.isnan(values)
    problems = []
    for position in np.flatnonzero(bad)[:MAX_PROBLEMS]:
        value = values[position]
        # an integer too long for a float arrives here as inf, so inf says "too large" too
        reason = f"is not finite or too large (|value| must be <= {MAX_ABS_NUMBER:.0e})"
        problems.append(Problem(f"{describe(value)} {reason}", int(position), field))
    return problems


def _to_float(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an integer with hundreds of digits
        return math.inf if value > 0 else -math.inf


def _numbers(column: pd.Series) -> np.ndarray:
    return np.fromiter((_to_float(v) for v in column), dtype=float, count=len(column))


def _clean_column(
    field: str, column: pd.Series, expected: str | None = None
) -> tuple[pd.Series | None, str, list[Problem]]:
    """One column in its clean dtype, its kind (number/boolean/text/nested), and its problems."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.astype(float), "boolean", []
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        return pd.Series(values, index=column.index), "number", _check_numbers(field, values)
    # pandas' C-level type inference settles the common all-text column without a Python call
    # per value; only mixed columns are inspected one value at a time
    if pd.api.types.infer_dtype(column, skipna=True) == "string":
        return _distinct_text(column), "text", []
    kinds = column.map(_kind)
    problems = [
        Problem(f"{describe(column.iloc[position])} is not a finite number", int(position), field)
        for position in np.flatnonzero(kinds == "nonfinite")[:MAX_PROBLEMS]
    ]
    problems += _check_mixed_kinds(field, column, kinds, expected)
    present = set(kinds.unique()) - {"null"}
    if problems:
        return None, "invalid", problems
    if "nested" in present:
        return None, "nested", []
    if present == {"number"}:
        values = _numbers(column)
        return pd.Series(values, index=column.index), "number", _check_numbers(field, values)
    if present == {"boolean"}:
        return column.map(lambda v: np.nan if v is None else float(v)).astype(float), "boolean", []
    text = column.astype(object).where(kinds != "null", None)
    return text.map(lambda v: v if v is None else str(v)), "text", []


def _distinct_text(column: pd.Series) -> pd.Series:
    """A text column as Python strings, missing as None, one string object per distinct
    value: a file's million customers in a few regions hold a few strings, not a million
    (100 MB for two such columns), and reading them takes a fraction of the time."""
    codes, distinct = pd.factorize(column)  # missing: -1
    text = np.empty(len(distinct) + 1, dtype=object)  # the last one, None, for code -1
    text[:-1] = np.asarray(distinct, dtype=object)
    return pd.Series(text[codes], index=column.index, dtype=object)


def _object_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Values as a 1-D object array, lists and dicts kept whole (np.array would nest them)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# what pandas' C-level inference calls a column of numbers (and nulls) only
NUMBER_COLUMNS = frozenset({"integer", "floating", "mixed-integer-float"})


def _clean_values(
    field: str, values: list[Any] | np.ndarray, expected: str | None = None
) -> tuple[pd.Series | None, str, list[Problem]]:
    """`_clean_column` of a field's values as sent: the usual columns (numbers, text, each
    with nulls) converted in one C-level pass; any other mix goes through pandas exactly as a
    frame's column would."""
    if isinstance(values, np.ndarray):  # numbers, as the decoder read them
        numbers = values.astype(float, copy=False)
        return pd.Series(numbers, copy=False), "number", _check_numbers(field, numbers)
    array = _object_array(values)  # inferred as an array, not once per list
    if pd.api.types.infer_dtype(array, skipna=False) == "string":  # text, none missing
        return pd.Series(array, dtype=object, copy=False), "text", []
    inferred = pd.api.types.infer_dtype(array, skipna=True)
    if inferred in NUMBER_COLUMNS:
        try:
            numbers = np.array(values, dtype=float)  # null -> NaN
        except OverflowError:  # an integer with hundreds of digits: described as sent below
            pass
        else:
            return pd.Series(numbers, copy=False), "number", _check_numbers(field, numbers)
    elif inferred == "string":  # with nulls
        array[pd.isna(array)] = None
        return pd.Series(array, dtype=object, copy=False), "text", []
    return _clean_column(field, pd.Series(array, dtype=object), expected)


def _nested_problem(value: Any, depth: int = 0) -> str | None:
    """What makes a value unfit to echo back: a NaN/Infinity inside it, or absurd depth."""
    if depth > MAX_NESTING:
        return f"is nested more than {MAX_NESTING} levels deep"
    if isinstance(value, NonFiniteNumber) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        return f"holds {describe(value)}, which is not a finite number"
    children = value.values() if isinstance(value, Mapping) else value
    if isinstance(value, Mapping | list | tuple):
        for child in children:
            problem = _nested_problem(child, depth + 1)
            if problem is not None:
                return problem
    return None


def _check_echoed(field: str, column: pd.Series) -> list[Problem]:
    """Values kept only to be echoed (ids, nested objects) must still be valid JSON numbers."""
    # whole numbers or text throughout (the usual id column): nothing to look inside
    if pd.api.types.infer_dtype(column, skipna=True) in ("integer", "string", "empty"):
        return []
    problems = []
    for position, value in enumerate(column):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        problem = _nested_problem(value)
        if problem is not None:
            problems.append(Problem(problem, position, field))
            if len(problems) >= MAX_PROBLEMS:
                break
    return problems


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _id_keys(ids: pd.Series) -> pd.Series:
    """Ids as hashable keys: an object or array as id is compared by its JSON text."""
    plain = pd.api.types.infer_dtype(ids, skipna=True) in ("integer", "string", "empty")
    return ids if plain else ids.map(lambda v: _json_key(v) if isinstance(v, dict | list) else v)


def _clean_ids(field: str, ids: pd.Series) -> tuple[pd.Series, list[Problem], bool]:
    """The id column as sent (ids are compared, never computed with: 64-bit keys stay exact),
    missing as None, its problems (a missing or non-finite id), and whether some id repeats.

    The usual ids (whole numbers or text throughout, hence none missing) are told apart in
    one C-level inference and checked for repeats by a hash of their values; only a column
    with repeats, gaps or other values is looked at id by id."""
    kind = pd.api.types.infer_dtype(ids, skipna=False)
    as_int64 = _int64(ids) if kind == "integer" else None
    plain = kind == "string" or as_int64 is not None
    if plain and (ids if as_int64 is None else pd.Index(as_int64)).is_unique:
        return _as_objects(ids), [], False
    problems = _check_echoed(field, ids)
    if kind not in ("integer", "string"):
        ids = ids.astype(object).where(ids.notna(), None)
    problems += [
        Problem(f"has no {field!r} while other records do", int(position), field)
        for position in np.flatnonzero(ids.isna().to_numpy())[:MAX_PROBLEMS]
    ]
    keys = _id_keys(ids if as_int64 is None else pd.Series(as_int64))
    repeated = bool((keys.duplicated() & ids.notna()).any())
    return _as_objects(ids), problems, repeated


DUPLICATE_IDS = ("refuse", "first", "last")
DIFFERING_FIELDS_SHOWN = 4


def _repeats(frame: pd.DataFrame, id_field: str) -> tuple[pd.Series, pd.Series]:
    """Which rows repeat an earlier row's id, and which of those repeat its every field."""
    keys = _id_keys(frame[id_field])
    repeated = keys.duplicated() & frame[id_field].notna()
    hashable = [c for c in frame.columns if c != id_field]
    try:
        identical = frame[hashable].assign(__key=keys).duplicated() & repeated
    except TypeError:  # a cell pandas cannot hash: no row counts as identical
        identical = pd.Series(False, index=frame.index)
    return repeated, identical


def _repeated_ids_problem(frame: pd.DataFrame, id_field: str) -> Problem:
    """One problem for every repeated id: how many repeat, whether the rows are copies, and
    what the caller can do."""
    keys = _id_keys(frame[id_field])
    repeated, identical = _repeats(frame, id_field)
    first_repeat = int(np.flatnonzero(repeated.to_numpy())[0])
    earlier = int(np.flatnonzero((keys == keys.iloc[first_repeat]).to_numpy())[0])
    n_ids = int(keys[repeated].nunique())
    extra = int(repeated.sum())
    copies = int(identical.sum())
    message = (
        f"duplicate id {describe(frame[id_field].iloc[first_repeat])}, also used by record "
        f"{earlier}; {n_ids:,} {'id appears' if n_ids == 1 else 'ids appear'} more than once "
        f"({extra:,} extra {'row' if extra == 1 else 'rows'})"
    )
    if copies == extra:
        return Problem(
            f"{message}, each an exact copy of an earlier row: keep one row per id with "
            "duplicateIds 'first' (CLI: --duplicate-ids first)",
            first_repeat,
            id_field,
        )
    sharing = frame[keys.isin(keys[repeated])].assign(__key=keys)
    differing = [
        c for c in frame.columns
        if c != id_field and (sharing.groupby("__key")[c].nunique(dropna=False) > 1).any()
    ]  # fmt: skip
    shown = ", ".join(repr(c) for c in differing[:DIFFERING_FIELDS_SHOWN])
    more = f" and {len(differing) - DIFFERING_FIELDS_SHOWN} more" if (
        len(differing) > DIFFERING_FIELDS_SHOWN
    ) else ""  # fmt: skip
    copies_said = (
        f"{copies:,} {'is an exact copy' if copies == 1 else 'are exact copies'}, the others"
        if copies
        else "the rows"
    )
    return Problem(
        f"{message}; {copies_said} differ in {shown}{more}. If each row is an order or another "
        "record of a customer, derive one row per customer first (--transactions, or a "
        "transactions part in POST /api/jobs); or keep one row per id with duplicateIds "
        "'first' or 'last' (CLI: --duplicate-ids)",
        first_repeat,
        id_field,
    )


def _one_row_per_id(
    frame: pd.DataFrame, id_field: str, keep: str
) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The frame with one row per id (the first or last of each), the kept rows' positions,
    and a note of what was left out."""
    keys = _id_keys(frame[id_field])
    kept = ~(keys.duplicated(keep=keep) & frame[id_field].notna()).to_numpy()  # type: ignore[arg-type]
    rows = np.flatnonzero(kept)
    left_out = len(frame) - len(rows)
    note = (
        f"{left_out:,} {'row' if left_out == 1 else 'rows'} whose id repeats another row's "
        f"{'was' if left_out == 1 else 'were'} left out, keeping the {keep} row of each id "
        f"(duplicateIds '{keep}')"
    )
    return frame.iloc[rows].reset_index(drop=True), rows, note


def _as_objects(column: pd.Series) -> pd.Series:
    """The column as Python objects, not copied when it holds them already."""
    return column if column.dtype == object else column.astype(object)


def _check_records(customers: Any) -> None:
    """A list of objects, or InvalidInputError naming the records that are not objects."""
    if isinstance(customers, str | bytes) or not isinstance(customers, Sequence):
        raise InvalidInputError("customers must be a list of objects (one per customer)")
    # plain dicts (what JSON gives) pass at C speed; anything else is looked at closely
    if set(map(type, customers)) != {dict}:
        not_objects = [
            Problem(f"must be an object with the customer's fields, got {describe(record)}", i)
            for i, record in enumerate(customers)
            if not isinstance(record, Mapping)
        ]
        if not_objects:
            raise InvalidInputError(not_objects)


def _record_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]] | None:
    """Each field's values in record order, when every record has the same fields (what
    clients and files send): one C-level pass per field, where pandas' row-to-column
    transposition and type inference cost 3x as much. None when records differ in fields."""
    if not records:
        return None
    fields = list(records[0])
    try:
        columns = {str(field): list(map(itemgetter(field), records)) for field in fields}
    except KeyError:  # a record lacks a field the first one has
        return None
    if len(columns) < len(fields) or sum(map(len, records)) != len(fields) * len(records):
        return None  # a record has more fields, or two names are the same as text
    return columns


def exact_int64(ids: Sequence[Any] | pd.Series) -> np.ndarray | None:
    """Ids as one int64 array when every one is a whole number within 64 bits (the usual
    ids: compared, hashed and stored at C speed); None otherwise (a null, text, an integer
    beyond 64 bits), for the caller to keep them as sent."""
    if pd.api.types.infer_dtype(ids, skipna=False) != "integer":
        return None
    return _int64(ids)


def _int64(whole_numbers: Sequence[Any] | pd.Series) -> np.ndarray | None:
    """Whole numbers as int64, None when one lies beyond 64 bits."""
    try:
        return np.array(whole_numbers, dtype=np.int64)
    except OverflowError:
        return None


def _raw_frame(customers: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The customers as a frame with text column names."""
    if isinstance(customers, pd.DataFrame):
        raw = customers.reset_index(drop=True)
    else:
        raw = pd.DataFrame.from_records(list(customers)) if customers else pd.DataFrame()
    raw.columns = [str(c) for c in raw.columns]
    return raw


def _received(
    customers: pd.DataFrame | Sequence[Mapping[str, Any]] | CustomerColumns,
) -> tuple[pd.DataFrame, Mapping[str, list[Any] | np.ndarray] | None, int]:
    """The customers as a frame, or as each field's values when they come as records with
    the same fields or as columns (the frame is then empty), and how many there are."""
    if isinstance(customers, CustomerColumns):
        return pd.DataFrame(), customers.values, customers.count
    if not isinstance(customers, pd.DataFrame):
        _check_records(customers)
        by_field = _record_columns(customers)
        if by_field is not None:
            return pd.DataFrame(), by_field, len(customers)
    raw = _raw_frame(customers)
    repeated = sorted({str(c) for c in raw.columns[raw.columns.duplicated()]})
    if repeated:
        raise InvalidInputError(
            [Problem("appears more than once among the columns", field=name) for name in repeated]
        )
    return raw, None, len(raw)


def ingest(
    customers: pd.DataFrame | Sequence[Mapping[str, Any]] | CustomerColumns,
    min_customers: int = 2,
    expected_kinds: Mapping[str, str] | None = None,
    duplicate_ids: str = "refuse",
) -> IngestedCustomers:
    """Validate customers and return them as one frame with clean dtypes.

    Segmenting needs `min_customers=2`; scoring new customers into stored segments needs 1.
    `expected_kinds` (field -> "number", "text" or "boolean"): a field mixing kinds names the
    records that differ from this kind rather than from its majority (scoring new customers
    against what stored segments learned). `duplicate_ids`: "refuse" ids that repeat (one
    problem saying how many and how the rows differ), or keep the "first" or "last" row of
    each id (`IngestedCustomers.rows` says which).

    Raises `InvalidInputError` listing every problem found (up to 20 named), or
    `InsufficientDataError` when there are fewer than 2 customers.

    Examples
    --------
    >>> ingest([{"id": 1, "income": 10}, {"id": 2, "income": "75,000"}])
    Traceback (most recent call last):
    ...
    segmentation.errors.InvalidInputError: record 1, field 'income': expected a number as in 1 \
other records, got '75,000'
    """
    raw, by_field, n_customers = _received(customers)
    fields = list(by_field if by_field is not None else raw.columns)
    if n_customers == 0:
        raise InsufficientDataError(f"no customers were sent; at least {min_customers} are needed")
    if n_customers < min_customers:
        raise InsufficientDataError(
            f"n_customers={n_customers} is too few to segment; at least {min_customers} are needed"
        )

    def column(field: str) -> pd.Series:
        if by_field is None:
            return raw[field]
        return pd.Series(_object_array(by_field[field]), dtype=object)

    problems: list[Problem] = []
    columns: dict[str, pd.Series] = {}
    boolean_fields: list[str] = []
    nested_fields: list[str] = []
    id_field = find_id_field(fields)
    ids_repeat = False
    for field in fields:
        if field == id_field:
            columns[field], id_problems, ids_repeat = _clean_ids(field, column(field))
            problems += id_problems
            continue
        expected = (expected_kinds or {}).get(field)
        cleaned, kind, field_problems = (
            _clean_values(field, by_field[field], expected)
            if by_field is not None
            else _clean_column(field, raw[field], expected)
        )
        problems += field_problems
        if kind == "nested":
            nested_fields.append(field)
            problems += _check_echoed(field, column(field))
        elif cleaned is not None:
            columns[field] = cleaned
            if kind == "boolean":
                boolean_fields.append(field)

    frame = pd.DataFrame(columns, index=pd.RangeIndex(n_customers))
    rows: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    if ids_repeat and id_field is not None and not any(p.field == id_field for p in problems):
        if duplicate_ids == "refuse":
            problems.append(_repeated_ids_problem(frame, id_field))
        else:
            frame, rows, note = _one_row_per_id(frame, id_field, duplicate_ids)
            notes = (note,)
    if problems:
        problems.sort(key=lambda p: p.record if p.record is not None else -1)
        raise InvalidInputError(problems)
    return IngestedCustomers(
        frame=frame, id_field=id_field, boolean_fields=tuple(boolean_fields),
        nested_fields=tuple(nested_fields), rows=rows, notes=notes,
    )  # fmt: skip
