"""bulk_json: bodies read as columns only in the plain case, rows written as the dicts are."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from segmentation import analyze, bulk_json
from segmentation.assign import Assignment
from segmentation.bulk_json import assignments_json, decode_customer_columns, json_rows, json_texts
from segmentation.serialize import analysis_to_wire, dumps
from segmentation.synthetic import make_population

FIELDS = ["id", "income", "region"]


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_a_plain_body_becomes_columns_of_the_values_as_sent() -> None:
    body = _body({"customerData": [{"id": 2**70, "income": 10, "region": "N"},
                                   {"id": "b", "income": 2.5, "region": None}]})  # fmt: skip
    columns = decode_customer_columns(body, FIELDS, 10)
    assert columns is not None and columns.count == 2
    assert columns.values == {
        "id": [2**70, "b"], "income": [10, 2.5], "region": ["N", None]
    }  # fmt: skip
    assert type(columns.values["income"][0]) is int  # no type imposed: the ingest checks


def test_a_field_no_customer_has_is_absent_and_one_some_lack_is_null() -> None:
    body = _body({"customerData": [{"id": 1, "income": 3}, {"id": 2}]})
    columns = decode_customer_columns(body, FIELDS, 10)
    assert columns is not None
    assert columns.values == {"id": [1, 2], "income": [3, None]}


def test_fields_learned_as_numbers_come_as_float_arrays() -> None:
    body = _body({"customerData": [{"id": 1, "income": 10, "region": "N"},
                                   {"id": 2, "income": None, "region": "S"},
                                   {"id": 3, "region": "S"}]})  # fmt: skip
    columns = decode_customer_columns(body, FIELDS, 10, numbers=["income"])
    assert columns is not None
    income = columns.values["income"]
    assert isinstance(income, np.ndarray) and income.dtype == float
    assert income[0] == 10 and np.isnan(income[1:]).all()
    assert columns.values["id"] == [1, 2, 3] and columns.values["region"] == ["N", "S", "S"]
    # nulls only: left as sent, for the ingest to say what kind of field it is
    only_nulls = _body({"customerData": [{"id": 1, "income": None}]})
    columns = decode_customer_columns(only_nulls, FIELDS, 10, numbers=["income"])
    assert columns is not None and columns.values["income"] == [None]


@pytest.mark.parametrize("value", ["10", True, {"a": 1}, [1], 1e400, 10**400])
def test_anything_but_a_number_where_numbers_were_learned_is_left_to_the_general_reader(
    value: Any,
) -> None:
    customers = [{"id": 1, "income": 5}, {"id": 2, "income": value}]
    body = _body({"customerData": customers}).replace(b"Infinity", b"1e400")
    assert decode_customer_columns(body, FIELDS, 10) is not None or value == 1e400
    assert decode_customer_columns(body, FIELDS, 10, numbers=["income"]) is None


@pytest.mark.parametrize(
    "body",
    [
        # a field the segments never saw, another key, not a list, a record not an object
        _body({"customerData": [{"id": 1, "age": 3}]}),
        _body({"customerData": [{"id": 1}], "options": {}}),
        _body({"customerData": {"id": 1}}),
        _body({"customerData": [{"id": 1}, 5]}),
        # no customers, more than the limit, a NaN literal, malformed JSON, a lone surrogate
        _body({"customerData": []}),
        _body({"customerData": [{"id": i} for i in range(11)]}),
        b'{"customerData": [{"id": 1, "income": NaN}]}',
        b'{"customerData": [{"id": 1}',
        b'{"customerData": [{"id": 1, "region": "\\ud800"}]}',
    ],
)
def test_any_other_body_is_left_to_the_general_reader(body: bytes) -> None:
    assert decode_customer_columns(body, FIELDS, 10) is None


def _rows(scored: Assignment, ids: list[Any] | None) -> list[dict[str, Any]]:
    rows = []
    for index, (label, score, ambiguous) in enumerate(
        zip(scored.labels.tolist(), np.round(scored.confidence, 4).tolist(),
            scored.ambiguous.tolist(), strict=True)
    ):  # fmt: skip
        row = {"index": index, "clusterId": label, "clusterName": scored.segment_names[label],
               "confidence": score, "ambiguous": ambiguous}  # fmt: skip
        if ids is not None:
            row["id"] = ids[index]
        rows.append(row)
    return rows


def _scored(n: int, seed: int = 0) -> Assignment:
    rng = np.random.default_rng(seed)
    return Assignment(
        labels=rng.choice([0, 3, 7], size=n),
        confidence=np.concatenate([[1.0, 0.0, -0.25, 1e-4], rng.uniform(-1, 1, n - 4)]),
        ambiguous=rng.random(n) < 0.3,
        segment_names={0: "Mainstream", 3: 'The "Quoted" \\ One', 7: "Étoile ☆"},
        warnings=("Field(s) 'age' missing from every new customer",),
        customers=None,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "ids",
    [
        None,
        list(range(100, 110)),
        [f"C-{i}" for i in range(10)],
        # text that JSON escapes, non-ASCII, ids beyond 64 bits, floats, mixed kinds, nested
        ['a"b', "c\\d", "e\nf", "\x01", "ü", "x", "y", "z", "w", "v"],
        [2**70 + i for i in range(10)],
        [1.5, 2.0, 3, "4", True, None, [1], {"k": 1}, -(2**63), 0],
    ],
)
def test_rows_written_as_columns_read_back_as_the_dicts(ids: list[Any] | None) -> None:
    scored = _scored(10)
    written = assignments_json("abc", scored, ids)
    assert written is not None
    expected = {"analysisId": "abc", "assignments": _rows(scored, ids),
                "warnings": list(scored.warnings)}  # fmt: skip
    assert json.loads(written) == expected


def test_confidences_are_written_as_arrow_writes_them() -> None:
    """The lookup of a rounded confidence's text gives Arrow's text of it, character for
    character: the grid's ends, values that round to -0, and beyond [-1, 1] (the cast)."""
    rng = np.random.default_rng(3)
    rounded = np.round(np.concatenate([
        rng.uniform(-1, 1, 5000), -rng.uniform(0, 1e-4, 500), rng.uniform(0, 1e-4, 500),
        [-1.0, 1.0, 0.0, -0.0, 0.99995, -0.99995, 0.5, 1e-4, -1e-4],
    ]), 4)  # fmt: skip
    looked_up = bulk_json._confidence_texts(rounded).to_pylist()
    for values in (rounded, np.append(rounded, 1.5)):
        written = bulk_json._confidence_texts(values).to_pylist()
        assert written == pa.array(values).cast(pa.large_string()).to_pylist()
    # (the lookup itself, not the cast a value beyond [-1, 1] falls back to, wrote these)
    assert "-0" in looked_up and "1" in looked_up and "-1" in looked_up


def test_json_texts_are_json() -> None:
    values = ["plain", 'quo"te', 7, None, 2**80]
    assert [json.loads(t) for t in json_texts(values).to_pylist()] == values
    assert orjson.loads(b"[" + ",".join(json_texts([1, 2]).to_pylist()).encode() + b"]") == [1, 2]


@pytest.mark.parametrize(
    ("echo", "scores"),
    [
        (True, False),  # the default response
        (True, True),  # with every customer's score
        (False, False),  # no customers listed
    ],
)
@pytest.mark.parametrize("as_frame", [False, True], ids=["records", "frame"])
def test_the_streamed_response_is_the_response(
    monkeypatch: pytest.MonkeyPatch, echo: bool, scores: bool, as_frame: bool
) -> None:
    # batches of 5 customers: segments span several batches, and one may end a segment
    monkeypatch.setattr(bulk_json, "ECHO_BATCH_ROWS", 5)
    records = make_population(60, 3, random_state=4).records()
    analysis = analyze(records, random_state=0)
    customers = pd.DataFrame(records) if as_frame else records
    expected = analysis_to_wire(
        analysis, records, include_customers=echo, include_customer_scores=scores
    )
    expected["analysisId"] = "A" * 22
    out = io.BytesIO()
    bulk_json.write_analysis_json(
        out, analysis, customers, include_customers=echo, include_customer_scores=scores,
        extra={"analysisId": "A" * 22},
    )  # fmt: skip
    if as_frame:  # the same JSON; a file's numbers in their shortest form (51, not 51.0)
        assert json.loads(out.getvalue()) == json.loads(dumps(expected))
    else:  # records as sent: byte for byte
        assert out.getvalue() == dumps(expected)


@pytest.mark.parametrize(
    ("column", "written"),
    [
        # numbers, booleans and plain text, each with a missing value
        (pa.array([1, None]), True),
        (pa.array([2.5, None]), True),
        (pa.array([True, None]), True),
        (pa.array(["North", None]), True),
        (pa.array(["Nörth ☆", ""], pa.large_string()), True),
        (pa.array([None, None]), True),
        # declined: text JSON escapes, NaN, dates, lists
        (pa.array(['say "hi"', "x"]), False),
        (pa.array([float("nan"), 1.0]), False),
        (pa.array([float("inf"), 1.0]), False),
        (pa.array([pd.Timestamp("2024-01-02"), None]), False),
        (pa.array([[1], []]), False),
    ],
)
def test_rows_are_written_only_where_arrow_text_is_json(column: pa.Array, written: bool) -> None:
    table = pa.table({"id": [1, 2], "value": column})
    rows = json_rows(table)
    assert (rows is not None) == written
    if rows is not None:
        text = "[" + "".join(rows.to_pylist())[:-1] + "]"
        assert json.loads(text) == table.to_pylist()
