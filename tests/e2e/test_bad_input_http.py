"""Bad input over real HTTP (DESIGN.md, "Bad input").

Every bad input gets a 4xx in the service's error format whose message names the record index
and/or field at fault, and the server keeps serving afterwards. Missing values and nested
fields are not errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    MAX_BODY_BYTES,
    REQUEST_TIMEOUT,
    all_customers,
    analyze_ok,
    assert_error,
    assert_still_serving,
    field_report,
    small_customers,
)


def _customers(n: int = 20) -> list[dict[str, Any]]:
    return small_customers(n)


def _with(changes: dict[int, Any], n: int = 20) -> list[Any]:
    """Good customers, with record i replaced by changes[i] (a dict is merged, else replaces)."""
    records: list[Any] = _customers(n)
    for index, change in changes.items():
        records[index] = {**records[index], **change} if isinstance(change, dict) else change
    return records


def _without(index: int, key: str, n: int = 20) -> list[dict[str, Any]]:
    records = _customers(n)
    del records[index][key]
    return records


@dataclass(frozen=True)
class Case:
    """One bad request and what the answer must say about it."""

    body: Callable[[], Any]  # a JSON-able value, or bytes sent as they are
    status: int
    record: int | None = None
    field: str | None = None
    mentions: tuple[str, ...] = ()
    content_type: str = "application/json"


def _data(customers: Callable[[], list[Any]], **options: Any) -> Callable[[], Any]:
    def body() -> dict[str, Any]:
        payload: dict[str, Any] = {"customerData": customers()}
        if options:
            payload["options"] = options
        return payload

    return body


def _raw(customers: Callable[[], list[Any]], literal: bytes) -> Callable[[], bytes]:
    """The body as Python's json writes it: float('nan') and float('inf') as NaN / Infinity."""

    def body() -> bytes:
        content = json.dumps({"customerData": customers()}).encode()
        assert b": " + literal + b"," in content  # the bare literal really is in the body
        return content

    return body


NAN = float("nan")
INF = float("inf")

CASES = {
    # no customers at all: nothing to segment
    "empty list": Case(_data(lambda: []), 422, mentions=("at least 2",)),
    # a single customer cannot be split
    "one customer": Case(_data(lambda: _customers(1)), 422, mentions=("at least 2",)),
    # 3 customers cannot form 5 segments: the option is at fault
    "fewer customers than nClusters": Case(
        _data(lambda: _customers(3), nClusters=5), 422, field="nClusters", mentions=("3",)
    ),
    # identical customers: every field is constant, and the message says which
    "all customers identical": Case(
        _data(lambda: [{"id": i, "age": 40, "income": 50_000} for i in range(20)]),
        422,
        mentions=("age", "income"),
    ),
    # a bare number where a customer object belongs
    "record is a number": Case(_data(lambda: _with({2: 42})), 422, record=2),
    # a list where a customer object belongs
    "record is a list": Case(_data(lambda: _with({2: [1, 2, 3]})), 422, record=2),
    # a string where a customer object belongs
    "record is a string": Case(_data(lambda: _with({5: "customer"})), 422, record=5),
    # a formatted number is text, not a number: never parsed silently
    "income '75,000'": Case(
        _data(lambda: _with({4: {"income": "75,000"}})),
        422,
        record=4,
        field="income",
        mentions=("75,000",),
    ),
    # free text in a numeric field
    "income 'abc'": Case(
        _data(lambda: _with({7: {"income": "abc"}})),
        422,
        record=7,
        field="income",
        mentions=("abc",),
    ),
    # NaN literal in the raw body (not valid JSON, but what many encoders write)
    "NaN literal": Case(
        _raw(lambda: _with({3: {"income": NAN}}), b"NaN"),
        422,
        record=3,
        field="income",
        mentions=("NaN",),
    ),
    "Infinity literal": Case(
        _raw(lambda: _with({6: {"income": INF}}), b"Infinity"),
        422,
        record=6,
        field="income",
        mentions=("Infinity",),
    ),
    "-Infinity literal": Case(
        _raw(lambda: _with({9: {"age": -INF}}), b"-Infinity"),
        422,
        record=9,
        field="age",
        mentions=("-Infinity",),
    ),
    # finite but absurd: squared distances would overflow
    "1e308": Case(_data(lambda: _with({4: {"income": 1e308}})), 422, record=4, field="income"),
    # true is not 1 in a numeric field
    "boolean in a numeric field": Case(
        _data(lambda: _with({11: {"income": True}})), 422, record=11, field="income"
    ),
    # two customers share id 3: the later one is named, and the message names the first
    "duplicate ids": Case(
        _data(lambda: _with({7: {"id": 3}})),
        422,
        record=7,
        field="id",
        mentions=("record 2",),
    ),
    # the id key is absent from one record while the others have it
    "missing id": Case(_data(lambda: _without(6, "id")), 422, record=6, field="id"),
    # an explicit null id
    "null id": Case(_data(lambda: _with({6: {"id": None}})), 422, record=6, field="id"),
    # only an id and a free-text note unique per customer: nothing to segment on
    "no usable feature": Case(
        _data(lambda: [{"id": i, "note": f"called on day {i}, left a message"} for i in range(20)]),
        422,
        mentions=("note",),
    ),
    # options are strict: a typo is an error, not silently ignored
    "unknown option": Case(_data(_customers, foo=1), 422, field="foo", mentions=("options.foo",)),
    "unknown top-level key": Case(
        lambda: {"customerData": _customers(), "colour": "blue"}, 422, field="colour"
    ),
    "nClusters 0": Case(_data(_customers, nClusters=0), 422, field="nClusters", mentions=("0",)),
    "nClusters 1": Case(_data(_customers, nClusters=1), 422, field="nClusters", mentions=("1",)),
    # 10 customers cannot form 12 segments
    "nClusters > customers": Case(
        _data(lambda: _customers(10), nClusters=12), 422, field="nClusters", mentions=("12",)
    ),
    # an inverted range
    "kRange [5, 2]": Case(_data(_customers, kRange=[5, 2]), 422, field="kRange"),
    # a string is not coerced to a number
    "nClusters '3'": Case(_data(_customers, nClusters="3"), 422, field="nClusters"),
    "unknown algorithm": Case(
        _data(_customers, algorithm="kmedoids"), 422, field="algorithm", mentions=("kmedoids",)
    ),
    # not JSON at all
    "malformed JSON": Case(
        lambda: b'{"customerData": [{"id": 1, "income": 3', 422, mentions=("JSON",)
    ),
    # JSON, but a list instead of {"customerData": [...]}
    "body is a JSON list": Case(lambda: _customers(), 422, mentions=("customerData",)),
    # customerData is not a list
    "customerData is an object": Case(
        lambda: {"customerData": {"id": 1}}, 422, field="customerData"
    ),
    # the body does not say customerData at all
    "customerData missing": Case(lambda: {"customers": _customers()}, 422, field="customerData"),
    # the right bytes with the wrong media type
    "text/plain": Case(
        lambda: json.dumps({"customerData": _customers()}).encode(),
        415,
        mentions=("application/json", "text/plain"),
        content_type="text/plain",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_a_4xx_naming_the_culprit(base_url: str, case: Case) -> None:
    body = case.body()
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        f"{base_url}/api/analyze",
        content=content,
        headers={"content-type": case.content_type},
        timeout=REQUEST_TIMEOUT,
    )
    assert_error(
        response, case.status, record=case.record, field=case.field, mentions=case.mentions
    )
    assert_still_serving(base_url)


def test_several_bad_values_are_all_named(base_url: str) -> None:
    # "75,000" and "abc" in income at known indexes: both records are reported, with the field
    customers = _with({3: {"income": "75,000"}, 12: {"income": "abc"}})
    response = httpx.post(
        f"{base_url}/api/analyze", json={"customerData": customers}, timeout=REQUEST_TIMEOUT
    )
    body = assert_error(response, 422, record=3, field="income", mentions=("75,000", "abc"))
    assert {(e["record"], e["field"]) for e in body["errors"]} == {(3, "income"), (12, "income")}
    assert_still_serving(base_url)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({7: {"id": 3}}, "duplicate id 3,"),  # an integer id, shown as the caller sent it
        ({4: {"income": 1e308}}, "1e+308"),  # a huge float, in JSON's spelling
    ],
)
def test_error_messages_quote_values_as_the_caller_wrote_them(
    base_url: str, changes: dict[int, Any], expected: str
) -> None:
    # The message should show the caller's value, not Python internals like "np.float64(3.0)".
    response = httpx.post(
        f"{base_url}/api/analyze",
        json={"customerData": _with(changes)},
        timeout=REQUEST_TIMEOUT,
    )
    body = assert_error(response, 422)
    assert "np." not in body["detail"] and "float64" not in body["detail"], body["detail"]
    assert expected in body["detail"], body["detail"]
    assert_still_serving(base_url)


@pytest.mark.parametrize(
    "n_clusters",
    [
        16,  # just over half of the 30 customers
        25,
        30,  # one customer per segment
    ],
)
def test_n_clusters_close_to_the_number_of_customers_is_honoured(
    base_url: str, n_clusters: int
) -> None:
    customers = _customers(30)
    response = httpx.post(
        f"{base_url}/api/analyze",
        json={"customerData": customers, "options": {"nClusters": n_clusters}},
        timeout=REQUEST_TIMEOUT,
    )
    # nClusters may be anything in 2..30 and the 30 customers are distinct: it is honoured,
    # down to one customer per segment (more segments than customers: "nClusters > customers")
    assert response.status_code == 200, (
        f"nClusters={n_clusters} with 30 customers: {response.status_code} {response.text[:500]}"
    )
    clusters = response.json()["clusters"]
    assert len(clusters) == n_clusters
    assert all(cluster["size"] >= 1 for cluster in clusters), [c["size"] for c in clusters]
    ids = sorted(customer["id"] for cluster in clusters for customer in cluster["customers"])
    assert ids == sorted(customer["id"] for customer in customers)
    assert_still_serving(base_url)


def test_body_over_the_limit_is_413(base_url: str) -> None:
    customers = [
        {"id": i, "age": 20 + i % 50, "income": 12_345.678 + i, "region": "North-North-East"}
        for i in range(45_000)
    ]
    content = json.dumps({"customerData": customers}).encode()
    assert 3_300_000 < len(content) < 4_000_000
    assert len(content) > MAX_BODY_BYTES
    response = httpx.post(
        f"{base_url}/api/analyze",
        content=content,
        headers={"content-type": "application/json"},
        timeout=REQUEST_TIMEOUT,
    )
    assert_error(response, 413, mentions=(str(MAX_BODY_BYTES),))
    assert_still_serving(base_url)


def test_multipart_is_415(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/api/analyze",
        files={"file": ("customers.json", json.dumps({"customerData": _customers()}).encode())},
        timeout=REQUEST_TIMEOUT,
    )
    assert_error(response, 415, mentions=("application/json", "multipart/form-data"))
    assert_still_serving(base_url)


def test_a_nested_object_is_ignored_not_an_error(base_url: str) -> None:
    customers = [
        {**customer, "address": {"city": f"City {i % 4}", "zip": f"{1000 + i}"}}
        for i, customer in enumerate(_customers(30))
    ]
    payload = analyze_ok(base_url, customers)
    ignored = {entry["field"] for entry in payload["dataQuality"]["ignoredFields"]}
    assert "address" in ignored, payload["dataQuality"]
    assert "address" not in payload["featureImportance"]
    # the nested value still comes back exactly as sent
    returned = {customer["id"]: customer for customer in all_customers(payload)}
    assert [returned[c["id"]] for c in customers] == customers
    assert_still_serving(base_url)


def test_missing_values_are_imputed_and_counted_not_errors(base_url: str) -> None:
    customers = _customers(30)
    customers[1]["age"] = None  # null
    del customers[2]["age"]  # absent key
    customers[5]["income"] = None
    del customers[8]["income"]
    del customers[9]["income"]
    customers[4]["region"] = None  # missing text
    payload = analyze_ok(base_url, customers)
    assert field_report(payload, "age")["missing"] == 2
    assert field_report(payload, "income")["missing"] == 3
    assert field_report(payload, "region")["missing"] == 1
    assert field_report(payload, "purchases")["missing"] == 0
    returned = {customer["id"]: customer for customer in all_customers(payload)}
    assert [returned[c["id"]] for c in customers] == customers  # absent keys stay absent
    assert_still_serving(base_url)


def test_the_server_still_answers_after_all_of_the_above(base_url: str) -> None:
    assert_still_serving(base_url)


def test_option_errors_spell_the_option_as_the_request_does(base_url: str) -> None:
    # the core says n_clusters; the caller wrote options.nClusters and must read that back
    customers = [{"id": i, "income": 1000.0 * i, "age": 20 + i} for i in range(10)]
    response = httpx.post(
        f"{base_url}/api/analyze",
        json={"customerData": customers, "options": {"nClusters": 12}},
        timeout=30,
    )
    body = assert_error(response, 422, field="nClusters", mentions=("nClusters=12",))
    assert [error["field"] for error in body["errors"]] == ["options.nClusters"]
    assert "n_clusters" not in body["detail"]
