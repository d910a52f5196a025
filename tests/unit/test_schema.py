"""schema: each field's role (id, numeric, boolean, categorical, date, ignored) and why."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentation.errors import InvalidInputError
from segmentation.pipeline.ingest import ingest
from segmentation.pipeline.schema import FieldRole, Schema, clean, infer_schema

N = 12


def _schema(customers: object, **options: object) -> Schema:
    return infer_schema(ingest(customers), **options)  # type: ignore[arg-type]


def _spec(schema: Schema, name: str) -> tuple[FieldRole, str]:
    spec = next(f for f in schema.fields if f.name == name)
    return spec.role, spec.reason


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        # the seed's spelling
        ("id", list(range(1, N + 1))),
        # Mall customers
        ("CustomerID", list(range(1, N + 1))),
        # CC GENERAL: text codes
        ("CUST_ID", [f"C{i:05d}" for i in range(N)]),
        # snake case
        ("customer_id", list(range(N))),
        # zero-padded text ids stay ids (and text)
        ("id", [f"{i:04d}" for i in range(N)]),
    ],
)
def test_id_detection(name: str, ids: list[object]) -> None:
    frame = pd.DataFrame({name: ids, "income": [float(10 * i) for i in range(N)]})
    schema = _schema(frame)
    assert schema.id_field == name
    assert _spec(schema, name)[0] is FieldRole.ID
    assert [f.name for f in schema.features] == ["income"]


def test_zero_padded_text_ids_keep_their_zeros() -> None:
    customers = [{"id": f"{i:04d}", "income": i * 10} for i in range(N)]
    ingested = ingest(customers)
    assert ingested.frame["id"].tolist()[:2] == ["0000", "0001"]
    assert infer_schema(ingested).id_field == "id"


def test_zero_padded_unique_codes_are_not_numeric_features() -> None:
    # BUG: "0001".."0012" (an account number kept as text for its leading zeros) is converted
    # with pd.to_numeric and becomes a NUMERIC feature; a unique code should be ignored.
    frame = pd.DataFrame(
        {"account": [f"{i:04d}" for i in range(1, N + 1)], "income": [float(i) for i in range(N)]}
    )
    role, _ = _spec(_schema(frame), "account")
    assert role in (FieldRole.ID, FieldRole.IGNORED)


def test_money_field_whose_name_ends_in_id_is_a_feature() -> None:
    # BUG: "amount_paid" normalises to "amountpaid", which ends with "id"; its values are unique
    # (as money amounts are), so it is ignored as "an identifier (unique per customer)".
    frame = pd.DataFrame(
        {"amount_paid": [10.5 + 3.1 * i for i in range(N)], "age": [20 + i % 5 for i in range(N)]}
    )
    assert _spec(_schema(frame), "amount_paid")[0] is FieldRole.NUMERIC


def test_unique_integer_field_named_like_an_id_is_an_identifier() -> None:
    frame = pd.DataFrame({"order_id": list(range(N)), "income": [float(i % 4) for i in range(N)]})
    role, reason = _spec(_schema(frame), "order_id")
    assert role is FieldRole.ID
    assert "identifier" in reason


@pytest.mark.parametrize(
    ("values", "role", "reason"),
    [
        # a constant number carries no information
        ([5.0] * N, FieldRole.IGNORED, "the same value for every customer"),
        # a constant text too
        (["NL"] * N, FieldRole.IGNORED, "the same value for every customer"),
        # constant apart from missing values
        ([1.0, None] * (N // 2), FieldRole.IGNORED, "the same value for every customer"),
        # a unique text code per customer
        ([f"X{i}" for i in range(N)], FieldRole.ID, "an identifier: a different code"),
        # a different sentence for every customer: free text
        ([f"note number {i}" for i in range(N)], FieldRole.IGNORED, "a different text"),
        # a few text levels
        (["gold", "silver", "bronze"] * (N // 3), FieldRole.CATEGORICAL, ""),
        # text levels with missing values
        (["North", None, "South"] * (N // 3), FieldRole.CATEGORICAL, ""),
        # 0/1 numbers
        ([0, 1] * (N // 2), FieldRole.BOOLEAN, ""),
        # 0/1 with a missing value
        ([0.0, 1.0, None] * (N // 3), FieldRole.BOOLEAN, ""),
        # JSON booleans
        ([True, False] * (N // 2), FieldRole.BOOLEAN, ""),
        # numbers sent as text are numbers
        (["1", "2", "3", "4"] * (N // 4), FieldRole.NUMERIC, ""),
        # ordinary numbers
        ([float(i * i) for i in range(N)], FieldRole.NUMERIC, ""),
    ],
)
def test_roles(values: list[object], role: FieldRole, reason: str) -> None:
    customers = [{"field": v, "income": float(i)} for i, v in enumerate(values)]
    found_role, found_reason = _spec(_schema(customers), "field")
    assert found_role is role
    assert found_reason.startswith(reason)


def test_text_with_more_levels_than_half_the_customers_is_ignored() -> None:
    # 30 levels over 60 customers: free text, not a category
    customers = [{"note": f"n{i % 31}", "income": float(i)} for i in range(60)]
    role, reason = _spec(_schema(customers), "note")
    assert role is FieldRole.IGNORED
    assert "free text or a code" in reason


@pytest.mark.parametrize(
    ("dates", "date_format"),
    [
        # day-month-year
        ([f"{d:02d}-03-2021" for d in range(1, N + 1)], "%d-%m-%Y"),
        # ISO
        ([f"2021-03-{d:02d}" for d in range(1, N + 1)], "%Y-%m-%d"),
        # ISO with a time
        ([f"2021-03-{d:02d}T10:00:00" for d in range(1, N + 1)], "ISO8601"),
        # what a browser's toISOString() sends: fraction of a second and Z
        ([f"2021-03-{d:02d}T10:20:30.123Z" for d in range(1, N + 1)], "ISO8601"),
        # an offset from UTC
        ([f"2021-03-{d:02d}T10:20+02:00" for d in range(1, N + 1)], "ISO8601"),
        # missing dates are allowed
        ([f"2021-03-{d:02d}" if d % 3 else None for d in range(1, N + 1)], "%Y-%m-%d"),
    ],
)
def test_dates(dates: list[str | None], date_format: str) -> None:
    customers = [{"joined": d, "income": float(i)} for i, d in enumerate(dates)]
    schema = _schema(customers)
    spec = next(f for f in schema.fields if f.name == "joined")
    assert spec.role is FieldRole.DATE
    assert spec.date_format == date_format


def test_mixed_date_formats_are_not_a_date() -> None:
    dates = ["2021-03-01", "02-03-2021"] * (N // 2)
    customers = [{"joined": d, "income": float(i)} for i, d in enumerate(dates)]
    assert _spec(_schema(customers), "joined")[0] is not FieldRole.DATE


def test_nested_fields_are_ignored_with_a_reason() -> None:
    customers = [{"income": float(i), "tags": [i]} for i in range(4)]
    role, reason = _spec(_schema(customers), "tags")
    assert role is FieldRole.IGNORED
    assert "objects or lists" in reason


FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5],
        "age": [23, 45, 31, 52, 38],
        "income": [30_000, 80_000, 45_000, 95_000, 60_000],
        "region": ["N", "S", "N", "S", "E"],
    }
)


@pytest.mark.parametrize(
    ("options", "features"),
    [
        # everything usable by default
        ({}, ["age", "income", "region"]),
        # features restrict to the named fields
        ({"features": ["income", "age"]}, ["age", "income"]),
        # exclude removes fields
        ({"exclude": ["region"]}, ["age", "income"]),
        # both: features then exclude
        ({"features": ["income", "age"], "exclude": ["age"]}, ["income"]),
    ],
)
def test_features_and_exclude(options: dict[str, list[str]], features: list[str]) -> None:
    schema = _schema(FRAME, **options)
    assert [f.name for f in schema.features] == features
    for spec in schema.ignored:
        assert spec.reason in ("excluded by the options", "not named in features")


def test_a_feature_that_cannot_be_one_is_refused_with_its_reason() -> None:
    # a field named in features is never silently dropped
    with pytest.raises(InvalidInputError, match=r"'id': cannot be a feature: the customer id"):
        _schema(FRAME, features=["id", "age"])


@pytest.mark.parametrize(
    "options",
    [
        # a typo in features
        {"features": ["incme"]},
        # a typo in exclude
        {"exclude": ["incme"]},
        # one good and one bad name
        {"features": ["age", "incme"]},
    ],
)
def test_unknown_option_fields_are_errors(options: dict[str, list[str]]) -> None:
    with pytest.raises(InvalidInputError, match=r"unknown field 'incme'.*'income'") as error:
        _schema(FRAME, **options)
    assert len(error.value.problems) == 1


def test_fields_are_listed_in_input_order_and_roles_looked_up() -> None:
    schema = _schema(FRAME)
    assert [f.name for f in schema.fields] == ["id", "age", "income", "region"]
    assert schema.role("region") is FieldRole.CATEGORICAL
    assert schema.role("id") is FieldRole.ID


@pytest.mark.parametrize(
    ("values", "numbers"),
    [
        # thousands separators in every record: numbers formatted by a spreadsheet
        (["75,000", "80,000", "1,200", "64,500"], [75000, 80000, 1200, 64500]),
        # currency signs
        (["$75", "$80.50", "$12", "$7"], [75, 80.5, 12, 7]),
        # decimal commas, blanks and a percent sign
        (["29,85", " ", "1.889,50", "12%"], [29.85, None, 1889.5, 12]),
    ],
)
def test_numbers_written_as_formatted_text_are_read_as_numbers(
    values: list[str], numbers: list[float | None]
) -> None:
    customers = [{"id": i, "income": v, "age": 30 + i} for i, v in enumerate(values)]
    schema = _schema(customers)
    assert schema.role("income") is FieldRole.NUMERIC
    read = clean(ingest(customers).frame, schema)["income"].tolist()
    assert read == pytest.approx([float("nan") if n is None else n for n in numbers], nan_ok=True)


def test_a_field_with_no_value_at_all_says_so() -> None:
    customers = [{"id": i, "x": float(i), "empty": None} for i in range(12)]
    spec = next(f for f in _schema(customers).fields if f.name == "empty")
    assert spec.role is FieldRole.IGNORED
    assert spec.reason == "no value for any customer"


def test_a_constant_date_is_ignored_like_any_constant() -> None:
    customers = [{"id": i, "x": float(i), "joined": "2021-03-04"} for i in range(12)]
    spec = next(f for f in _schema(customers).fields if f.name == "joined")
    assert spec.role is FieldRole.IGNORED
