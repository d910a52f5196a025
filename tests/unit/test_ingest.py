"""ingest: every record and field checked, problems named by record index, field and value."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from segmentation.errors import InsufficientDataError, InvalidInputError
from segmentation.pipeline.ingest import CustomerColumns, NonFiniteNumber, find_id_field, ingest


def _problems(
    error: pytest.ExceptionInfo[InvalidInputError],
) -> list[tuple[int | None, str | None]]:
    return [(p.record, p.field) for p in error.value.problems]


def test_text_among_numbers_names_the_minority_record() -> None:
    customers = [{"id": i, "income": v} for i, v in enumerate([52_000, 61_000, 48_000, "75,000"])]
    with pytest.raises(InvalidInputError, match=r"record 3, field 'income'.*'75,000'") as error:
        ingest(customers)
    assert _problems(error) == [(3, "income")]


def test_number_among_text_names_the_number() -> None:
    customers = [{"region": "North"}, {"region": 5}, {"region": "South"}]
    with pytest.raises(InvalidInputError, match=r"record 1, field 'region'.*got 5") as error:
        ingest(customers)
    assert _problems(error) == [(1, "region")]


def test_boolean_among_numbers_is_rejected() -> None:
    customers = [{"purchases": 3}, {"purchases": True}, {"purchases": 7}]
    with pytest.raises(InvalidInputError, match=r"record 1, field 'purchases'.*got true"):
        ingest(customers)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        # what parse_json makes of the NaN literal: shown as the caller wrote it
        (NonFiniteNumber("NaN"), "NaN "),
        # and of -Infinity
        (NonFiniteNumber("-Infinity"), "-Infinity "),
        # a Python float infinity, or what JSON's 1e999 parses to (display: see below)
        (float("inf"), ""),
        (float("-inf"), ""),
    ],
)
def test_non_finite_numbers_are_rejected(value: object, shown: str) -> None:
    customers = [{"id": 1, "income": 10.0}, {"id": 2, "income": value}, {"id": 3, "income": 3.0}]
    with pytest.raises(
        InvalidInputError, match=rf"record 1, field 'income': {shown}.*is not (a )?finite"
    ) as error:
        ingest(customers)
    assert _problems(error) == [(1, "income")]


@pytest.mark.parametrize(
    "value",
    [
        # just past the limit
        2e15,
        # negative side
        -2e15,
        # an integer that a float holds only approximately
        10**30,
    ],
)
def test_numbers_beyond_1e15_are_rejected(value: float) -> None:
    customers = [{"income": 1.0}, {"income": value}, {"income": 3.0}]
    with pytest.raises(InvalidInputError, match=r"record 1, field 'income'.*too large"):
        ingest(customers)


def test_1e15_itself_is_accepted() -> None:
    frame = ingest([{"income": 1e15}, {"income": -1e15}]).frame
    assert frame["income"].tolist() == [1e15, -1e15]


def test_integer_too_large_for_a_float_is_an_input_error_not_a_crash() -> None:
    # BUG: json.loads (parse_json's fallback) yields an exact int for a 400-digit literal, and
    # ingest then dies with OverflowError ("int too large to convert to float"): a 500, not a 422.
    customers = [{"id": 1, "income": 10**400}, {"id": 2, "income": 2}]
    with pytest.raises(InvalidInputError, match=r"record 0, field 'income'"):
        ingest(customers)


@pytest.mark.parametrize(
    ("customers", "shown"),
    [
        # infinity in a list of records (JSON's 1e999 parses to it)
        ([{"income": 1.0}, {"income": float("inf")}, {"income": 3.0}], "inf"),
        # infinity in a float column of a DataFrame
        (pd.DataFrame({"income": [1.0, np.inf, 3.0]}), "inf"),
        # a huge value in a float column
        (pd.DataFrame({"income": [1.0, 2e16, 3.0]}), "2e+16"),
    ],
)
def test_bad_numbers_are_shown_as_the_caller_wrote_them(customers: object, shown: str) -> None:
    # numpy's repr ("np.float64(inf) is not a finite number") means nothing to a JSON caller
    with pytest.raises(InvalidInputError, match=r"record 1, field 'income'") as error:
        ingest(customers)  # type: ignore[arg-type]
    message = str(error.value)
    assert "np.float64" not in message
    assert shown in message


@pytest.mark.parametrize(
    ("customers", "expected"),
    [
        # a list among objects
        ([{"id": 1}, [1, 2], {"id": 3}], [1]),
        # text and null records
        ([{"id": 1}, "customer", None], [1, 2]),
    ],
)
def test_non_object_records_are_named(customers: list[object], expected: list[int]) -> None:
    with pytest.raises(InvalidInputError, match=r"must be an object") as error:
        ingest(customers)  # type: ignore[arg-type]
    assert [p.record for p in error.value.problems] == expected


@pytest.mark.parametrize(
    "customers",
    [
        # a bare string is a sequence, but not of customers
        "customers",
        # a dict is not a list of customers
        {"id": 1},
    ],
)
def test_non_list_input_is_rejected(customers: object) -> None:
    with pytest.raises(InvalidInputError, match=r"list of objects"):
        ingest(customers)  # type: ignore[arg-type]


def test_duplicate_ids_name_both_records() -> None:
    customers = [{"id": 7, "x": 1}, {"id": 8, "x": 2}, {"id": 7, "x": 3}]
    with pytest.raises(
        InvalidInputError, match=r"record 2, field 'id': duplicate id .*also used by record 0"
    ) as error:
        ingest(customers)
    assert _problems(error) == [(2, "id")]


def test_duplicate_ids_show_the_id_as_sent() -> None:
    # ids are stored as float64; the message must still say 7, not 7.0 or np.float64(7.0)
    customers = [{"id": 7, "x": 1}, {"id": 8, "x": 2}, {"id": 7, "x": 3}]
    with pytest.raises(InvalidInputError, match=r"duplicate id 7\b"):
        ingest(customers)


def test_duplicate_text_ids_in_a_dataframe() -> None:
    frame = pd.DataFrame({"CustomerID": ["a1", "b2", "a1"], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match=r"record 2, field 'CustomerID'.*record 0"):
        ingest(frame)


def test_distinct_large_ids_are_not_called_duplicates() -> None:
    # 2**53 and 2**53 + 1 are distinct 16-digit ids (database keys) that one float64 holds as
    # the same value: ids are kept as sent, so both customers are accepted, ids exact
    ingested = ingest([{"id": 2**53, "x": 1}, {"id": 2**53 + 1, "x": 2}])
    assert list(ingested.frame["id"]) == [2**53, 2**53 + 1]


def test_a_large_id_used_twice_is_named_exactly() -> None:
    # the real duplicate is named, with the id as sent (not 9007199254740992.0); record 1,
    # whose id differs from record 0's by one, is not
    customers = [{"id": 2**53, "x": 1}, {"id": 2**53 + 1, "x": 2}, {"id": 2**53 + 1, "x": 3}]
    with pytest.raises(
        InvalidInputError,
        match=r"^record 2, field 'id': duplicate id 9007199254740993, also used by record 1;",
    ) as error:
        ingest(customers)
    assert _problems(error) == [(2, "id")]


def test_missing_ids_are_named() -> None:
    customers = [{"id": 1, "x": 1}, {"x": 2}, {"id": 3, "x": 3}, {"id": None, "x": 4}]
    with pytest.raises(InvalidInputError, match=r"record 1, field 'id': has no 'id'") as error:
        ingest(customers)
    assert _problems(error) == [(1, "id"), (3, "id")]


@pytest.mark.parametrize(
    "customers",
    [
        # nothing at all
        [],
        # a single customer cannot be split
        [{"id": 1, "income": 10}],
        # the same for a one-row DataFrame
        pd.DataFrame({"income": [10.0]}),
    ],
)
def test_fewer_than_two_customers(customers: object) -> None:
    with pytest.raises(InsufficientDataError, match=r"at least 2"):
        ingest(customers)  # type: ignore[arg-type]


def test_problems_from_several_fields_are_all_reported_in_record_order() -> None:
    customers = [
        {"age": 30, "income": 1.0},
        {"age": 31, "income": "lots"},
        {"age": "old", "income": 3.0},
        {"age": 33, "income": 4.0},
    ]
    with pytest.raises(InvalidInputError) as error:
        ingest(customers)
    assert _problems(error) == [(1, "income"), (2, "age")]


def test_nested_values_are_reported_not_rejected() -> None:
    customers = [
        {"id": 1, "income": 10, "tags": ["new"]},
        {"id": 2, "income": 20, "tags": {"vip": True}},
        {"id": 3, "income": 30, "tags": None},
    ]
    ingested = ingest(customers)
    assert ingested.nested_fields == ("tags",)
    assert "tags" not in ingested.frame.columns
    assert ingested.frame["income"].tolist() == [10.0, 20.0, 30.0]


def test_types_of_a_clean_list() -> None:
    customers = [
        {"id": "001", "income": 10, "vip": True, "region": "North"},
        {"id": "002", "income": None, "vip": None, "region": None},
        {"id": "003", "income": 2.5, "vip": False},
    ]
    ingested = ingest(customers)
    frame = ingested.frame
    assert ingested.id_field == "id"
    assert ingested.boolean_fields == ("vip",)
    # zero-padded ids stay text, exactly as sent
    assert frame["id"].tolist() == ["001", "002", "003"]
    assert frame["income"].dtype == np.float64
    assert frame["income"].isna().tolist() == [False, True, False]
    assert frame["vip"].tolist()[0::2] == [1.0, 0.0]
    assert frame["region"].isna().tolist() == [False, True, True]


def test_dataframe_with_nan_as_missing_is_fine_and_not_mutated() -> None:
    frame = pd.DataFrame(
        {
            "CustomerID": [10, 11, 12, 13],
            "income": [52_000.0, np.nan, 61_000.0, 58_000.0],
            "region": ["North", None, "South", np.nan],
            "vip": [True, False, True, False],
        },
        index=[7, 3, 9, 1],
    )
    before = copy.deepcopy(frame)
    ingested = ingest(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert ingested.id_field == "CustomerID"
    assert ingested.frame.index.tolist() == [0, 1, 2, 3]
    assert ingested.frame["income"].isna().sum() == 1
    assert ingested.boolean_fields == ("vip",)


def test_list_of_records_is_not_mutated() -> None:
    customers = [{"id": 1, "income": 10, "tags": [1]}, {"id": 2, "income": None, "tags": [2]}]
    before = copy.deepcopy(customers)
    ingest(customers)
    assert customers == before


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # plain
        (["age", "id"], "id"),
        # camel case
        (["Gender", "CustomerID"], "CustomerID"),
        # upper snake case (CC GENERAL)
        (["BALANCE", "CUST_ID"], "CUST_ID"),
        # the first matching name wins
        (["user_id", "id"], "user_id"),
        # no id-like name
        (["identity", "paid", "age"], None),
    ],
)
def test_find_id_field(fields: list[str], expected: str | None) -> None:
    assert find_id_field(fields) == expected


@pytest.mark.parametrize(
    ("customers", "field", "message"),
    [
        # NaN in the id: the id is echoed, so it must be a valid JSON value
        (
            [{"id": NonFiniteNumber("NaN"), "x": 1}, {"id": 2, "x": 2}],
            "id",
            "holds NaN, which is not a finite number",
        ),
        # Infinity inside a nested object that is only echoed
        (
            [{"id": 1, "x": 1, "n": {"a": NonFiniteNumber("Infinity")}}, {"id": 2, "x": 2}],
            "n",
            "holds Infinity",
        ),
        # absurdly deep nesting would exhaust the stack when serialized again
        (
            [
                {
                    "id": 1,
                    "x": 1,
                    "n": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
                },
                {"id": 2, "x": 2},
            ],
            "n",
            "is nested more than 32 levels",
        ),
    ],
)
def test_echoed_values_must_be_valid_json(customers, field: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"record 0, field '{field}': {message}"):
        ingest(customers)


def test_duplicate_column_names_are_an_input_error() -> None:
    frame = pd.DataFrame([[1, 2, 3], [4, 5, 6]], columns=["id", "x", "x"])
    with pytest.raises(InvalidInputError, match="field 'x': appears more than once"):
        ingest(frame)


# Records with the same fields are read field by field (one C-level pass per field); any other
# list goes through pandas' own row reader. Both must give the same frame, kinds and problems.
SAME_FIELDS_CASES = [
    # numbers, text and nulls: the usual columns
    [{"id": 1, "a": 1, "b": "x", "c": None}, {"id": 2, "a": 2.5, "b": None, "c": None}],
    # booleans beside a null, and a column of nulls
    [{"a": 1, "b": True}, {"a": None, "b": False}],
    [{"a": 1, "b": True}, {"a": None, "b": None}],
    # ids beyond 64 bits beside nested values
    [{"id": 2**70, "b": [1, 2]}, {"id": 3, "b": {"k": 1}}],
    # whole numbers only, and lists whole
    [{"a": 1, "b": 2}, {"a": 3, "b": 4}],
    [{"a": [1, 2], "b": [3, 4]}, {"a": [5, 6], "b": [7, 8]}],
    # integers too large for a float, or beyond 1e15
    [{"a": 10**400, "b": 2}, {"a": 3, "b": 4}],
    [{"a": 10**20, "b": 2}, {"a": 3, "b": 4}],
    # text with a number among it, NaN as missing, a NaN literal
    [{"a": "x", "b": 2}, {"a": 3, "b": 4}, {"a": "y", "b": 4}],
    [{"a": float("nan"), "b": "s"}, {"a": 3, "b": float("nan")}],
    [{"a": NonFiniteNumber("NaN")}, {"a": 3}],
    # a duplicated id, a missing id
    [{"id": 1, "a": 1}, {"id": 1, "a": 2}],
    [{"id": None, "a": 1}, {"id": 1, "a": 2}],
    # numpy scalars, non-ASCII and empty text
    [{"a": np.int64(3)}, {"a": np.float64(2.5)}],
    [{"a": "é", "b": ""}, {"a": "x", "b": "y"}],
]


def _outcome(customers: object) -> tuple[object, ...]:
    try:
        found = ingest(customers)  # type: ignore[arg-type]
    except (InvalidInputError, InsufficientDataError) as error:
        return (type(error).__name__, str(error))
    ids = found.frame[found.id_field].tolist() if found.id_field else None
    features = found.frame.drop(columns=[found.id_field] if found.id_field else [])
    return ("ok", features, ids, found.boolean_fields, found.nested_fields)


@pytest.mark.parametrize("customers", SAME_FIELDS_CASES)
def test_records_with_the_same_fields_read_as_pandas_reads_them(customers: list[dict]) -> None:
    by_field = _outcome(customers)
    # a record with one more field (null everywhere) makes the same list take pandas' reader
    by_row = _outcome([*customers[:-1], {**customers[-1], "zz_extra": None}])
    if by_field[0] != "ok":
        assert by_row == by_field
        return
    assert by_row[0] == "ok", by_row
    with_extra = by_row[1]
    assert isinstance(with_extra, pd.DataFrame)
    # (an empty column index differs in type only: nested fields are not columns)
    pd.testing.assert_frame_equal(
        by_field[1], with_extra.drop(columns="zz_extra"), check_column_type=False
    )
    assert by_field[2:] == by_row[2:]


def test_records_with_other_fields_are_read_whole() -> None:
    customers = [{"a": 1}, {"a": 2, "b": "x"}, {"b": "y"}]
    frame = ingest(customers).frame
    assert frame["a"].tolist()[:2] == [1.0, 2.0] and np.isnan(frame["a"].iloc[2])
    assert frame["b"].tolist() == [None, "x", "y"]


def test_columns_are_read_like_the_records_they_come_from() -> None:
    records = [{"id": 7, "income": 10, "region": "N"}, {"id": 9, "income": None, "region": None}]
    columns = CustomerColumns({k: [r[k] for r in records] for k in records[0]}, len(records))
    pd.testing.assert_frame_equal(ingest(columns).frame, ingest(records).frame)
    assert ingest(columns).frame["id"].tolist() == [7, 9]
