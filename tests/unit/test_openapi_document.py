"""`/openapi.json` tells the truth: each operation lists the statuses it can return, with the
error model the server sends, the constraints it enforces and the media types it answers in.

Plain reads of `create_app().openapi()`; the server itself is checked against the same document
by `tests/e2e/test_openapi_fuzz.py`. The request constraints are checked on the document (as
JSON Schema, the way a generated client reads them), not on the pydantic models behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.routing import APIRoute

from segmentation.api.app import create_app
from segmentation.api.routes import analyses, analyze, health, jobs, recommendations
from segmentation.api.schemas import (
    EXAMPLE_ANALYSIS,
    EXAMPLE_CUSTOMERS,
    ID_REGEX,
    ErrorResponse,
)
from segmentation.options import OPTIONS, AnalysisOptions

APP = create_app()
DOCUMENT = APP.openapi()
ERROR_REF = "#/components/schemas/ErrorResponse"
METHODS = ("get", "post", "put", "patch", "delete")
ID_PARAMETERS = ("analysisId", "jobId")
# the operations that queue work: each can be refused with 503 + Retry-After when full
QUEUED = {
    ("post", "/api/analyze"),  # the analysis pool
    ("post", "/api/analyses/{analysisId}/assign"),  # the same pool
    ("post", "/api/jobs"),  # the job queue
}
# the operations whose work runs in a worker process that can die (500, then replaced)
IN_WORKERS = {("post", "/api/analyze"), ("post", "/api/analyses/{analysisId}/assign")}


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


OPERATIONS = list(_operations())
IDS = [f"{method.upper()} {path}" for method, path, _ in OPERATIONS]


def _statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"]}


def _path_parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}


def _body_validator(name: str) -> Any:
    """A JSON Schema validator for the request component `name`, refs resolved in the
    document."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema_rs.validator_for(schema)


def test_the_operations_are_the_served_routes() -> None:
    # a route left out of the document is never fuzzed; a stale one misleads clients
    served = {
        f"{method} {route.path}"
        for module in (analyze, recommendations, analyses, jobs, health)
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert set(IDS) == served
    assert len(IDS) >= 14  # the routers were found


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_operation_with_input_documents_422(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    assert (422 in _statuses(operation)) == takes_input, sorted(_statuses(operation))


def _ids_in_path(operation: dict[str, Any]) -> list[str]:
    return [name for name in ID_PARAMETERS if name in _path_parameters(operation)]


ID_OPERATIONS = [(m, p, o) for m, p, o in OPERATIONS if _ids_in_path(o)]
BODY_OPERATIONS = [(m, p, o) for m, p, o in OPERATIONS if "requestBody" in o]


def test_the_id_and_body_routes_are_found() -> None:
    # the two tests below cannot pass by finding nothing to check
    assert len(ID_OPERATIONS) >= 9
    assert {p for _, p, _ in BODY_OPERATIONS} >= {"/api/analyze", "/api/jobs"}


@pytest.mark.parametrize(
    ("method", "path", "operation"), ID_OPERATIONS, ids=[f"{m} {p}" for m, p, _ in ID_OPERATIONS]
)
def test_id_routes_document_404_and_the_id_pattern(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    assert 404 in _statuses(operation)
    for name in _ids_in_path(operation):
        schema = _path_parameters(operation)[name]["schema"]
        assert schema["type"] == "string"
        # a malformed id is refused before any lookup (422); a well-formed unknown one is a 404
        assert schema["pattern"] == ID_REGEX == "^[A-Za-z0-9_-]{22}$"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    BODY_OPERATIONS,
    ids=[f"{m} {p}" for m, p, _ in BODY_OPERATIONS],
)
def test_body_routes_document_413_and_415(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    assert operation["requestBody"]["required"] is True
    # JSON, or a file upload (POST /api/fields/file takes only a file)
    assert {"application/json", "multipart/form-data"} & set(operation["requestBody"]["content"])
    assert {413, 415} <= _statuses(operation)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_queued_work_documents_503_with_retry_after_and_dead_workers_500(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    statuses = _statuses(operation)
    assert (503 in statuses) == ((method, path) in QUEUED), sorted(statuses)
    assert (500 in statuses) == ((method, path) in IN_WORKERS), sorted(statuses)
    if 503 in statuses:
        assert "Retry-After" in operation["responses"]["503"]["headers"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # options.previousAnalysisId naming no stored analysis
        ("post", "/api/analyze", 404),
        ("post", "/api/jobs", 404),
        # analysisId naming no stored analysis
        ("post", "/api/recommendations", 404),
        # the result of a job that has not succeeded
        ("get", "/api/jobs/{jobId}/result", 409),
        # cancelling a job that has finished
        ("delete", "/api/jobs/{jobId}", 409),
        # a multipart body Starlette's form parser cannot read
        ("post", "/api/jobs", 400),
    ],
)
def test_the_statuses_particular_to_one_operation(method: str, path: str, status: int) -> None:
    assert status in _statuses(DOCUMENT["paths"][path][method])


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_error_is_the_real_error_model_as_json(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        # JSON whatever the route's own media type (the report's errors are not HTML)
        assert response["content"] == {"application/json": {"schema": {"$ref": ERROR_REF}}}, status


def test_fastapis_default_validation_error_is_not_documented() -> None:
    # the server never sends {"detail": [...]}: its handler answers with ErrorResponse
    schemas = DOCUMENT["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert schemas["ErrorResponse"] == {
        key: value
        for key, value in ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}"
        ).items()
        if key != "$defs"
    }


@pytest.mark.parametrize(
    ("path", "media_types"),
    [
        ("/api/analyses/{analysisId}/assignments", {"text/csv", "application/json",
                                                    "application/vnd.apache.parquet"}),
        ("/api/analyses/{analysisId}/charts/{chart}.{image_format}", {"image/png",
                                                                      "image/svg+xml"}),
        ("/api/analyses/{analysisId}/report.html", {"text/html"}),
        ("/api/analyses/{analysisId}", {"application/json"}),
    ],
)  # fmt: skip
def test_the_media_types_of_each_success(path: str, media_types: set[str]) -> None:
    assert set(DOCUMENT["paths"][path]["get"]["responses"]["200"]["content"]) == media_types


def test_the_headers_clients_read_are_documented() -> None:
    paths = DOCUMENT["paths"]
    analyze = paths["/api/analyze"]["post"]["responses"]["200"]["headers"]
    assert {"X-Cache", "Server-Timing"} <= set(analyze)
    assign = paths["/api/analyses/{analysisId}/assign"]["post"]["responses"]["200"]["headers"]
    assert "Server-Timing" in assign
    assert "Location" in paths["/api/jobs"]["post"]["responses"]["202"]["headers"]


def test_the_listing_bounds_limit_and_offset() -> None:
    # an offset beyond what SQLite can hold was a 500 (OverflowError); now a documented 422
    parameters = {
        p["name"]: p["schema"] for p in DOCUMENT["paths"]["/api/analyses"]["get"]["parameters"]
    }
    assert parameters["limit"]["minimum"] == 1 and parameters["limit"]["maximum"] == 500
    assert parameters["offset"]["minimum"] == 0
    assert parameters["offset"]["maximum"] < 2**63


# --- request bodies, read as JSON Schema --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # the documented example itself
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"randomState": 0}},
        # two customers, the least there is
        {"customerData": EXAMPLE_CUSTOMERS[:2]},
        # one option at each bound it has
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"nClusters": 30, "randomState": 0}},
    ],
)
def test_an_analyze_body_the_server_accepts_is_valid(body: dict[str, Any]) -> None:
    assert _body_validator("AnalyzeRequest").is_valid(body)


@pytest.mark.parametrize(
    "body",
    [
        # one customer cannot be segmented (the server: at least 2)
        {"customerData": EXAMPLE_CUSTOMERS[:1]},
        # a customer is an object with fields
        {"customerData": [1, 2]},
        # customerData is required
        {"options": {}},
        # the server takes no other key
        {"customerData": EXAMPLE_CUSTOMERS, "colour": "blue"},
        # above the largest k
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"nClusters": 31}},
        # below the smallest k
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"nClusters": 1}},
        # not one of the algorithms
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"algorithm": "spectral"}},
        # a seed beyond 32 bits
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"randomState": 2**32}},
        # eps is exclusive of 0
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"eps": 0}},
        # not an analysis id
        {"customerData": EXAMPLE_CUSTOMERS, "options": {"previousAnalysisId": "last-month"}},
    ],
)
def test_an_analyze_body_the_server_refuses_is_invalid(body: dict[str, Any]) -> None:
    assert not _body_validator("AnalyzeRequest").is_valid(body)


def test_every_bounded_option_has_its_bounds_in_the_document() -> None:
    options = DOCUMENT["components"]["schemas"]["AnalyzeOptions"]["properties"]
    bounded = [spec for spec in OPTIONS if spec.minimum is not None or spec.maximum is not None]
    assert bounded  # nClusters, randomState, eps...
    for spec in bounded:
        text = str(options[spec.wire])
        if spec.minimum is not None:
            key = "exclusiveMinimum" if spec.exclusive_minimum else "minimum"
            assert f"'{key}': {spec.minimum}" in text, (spec.wire, text)
        if spec.maximum is not None:
            assert f"'maximum': {spec.maximum}" in text, (spec.wire, text)


def test_the_documented_examples_are_what_the_server_accepts() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for name in ("AnalyzeRequest", "AssignRequest", "RecommendationsRequest"):
        examples = schemas[name]["examples"]
        assert examples, name
        for example in examples:
            assert _body_validator(name).is_valid(example), name
    analyze_example = schemas["AnalyzeRequest"]["examples"][0]
    AnalysisOptions.from_wire(analyze_example["options"])  # the core's own check


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        # a stored analysis by id
        ({"analysisId": "A" * 22}, True),
        # the analysis itself
        ({"analysis": EXAMPLE_ANALYSIS}, True),
        # neither: the server needs one of the two
        ({}, False),
        # both at once
        ({"analysis": EXAMPLE_ANALYSIS, "analysisId": "A" * 22}, False),
        # an id of the wrong shape
        ({"analysisId": "A" * 21}, False),
    ],
)
def test_recommendations_take_an_analysis_or_its_id(body: dict[str, Any], valid: bool) -> None:
    assert _body_validator("RecommendationsRequest").is_valid(body) is valid


def test_assign_takes_at_least_one_customer_object() -> None:
    validator = _body_validator("AssignRequest")
    assert validator.is_valid({"customerData": EXAMPLE_CUSTOMERS[:1]})
    assert not validator.is_valid({"customerData": []})
    assert not validator.is_valid({"customerData": ["a"]})


# --- 405: the Allow header names the documented methods ---------------------------------


def _put(path: str) -> httpx.Response:
    """PUT, which no route serves, through the app in-process (routing only: no lifespan)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.put(path)

    return asyncio.run(send())


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
def test_405_allows_exactly_the_documented_methods(path: str) -> None:
    concrete = (
        path.replace("{analysisId}", "A" * 22)
        .replace("{jobId}", "B" * 22)
        .replace("{chart}", "sizes")
        .replace("{image_format}", "png")
    )
    response = _put(concrete)
    assert response.status_code == 405, response.text
    documented = {method.upper() for method in DOCUMENT["paths"][path]}
    assert set(response.headers["allow"].split(", ")) == documented
    assert set(response.json()) == {"detail", "errors"}


def test_every_reference_resolves() -> None:
    """A `$ref` to a schema the document does not publish breaks every generated client."""
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOCUMENT)
    schemas = DOCUMENT["components"]["schemas"]
    missing = sorted({r for r in refs if r.split("/")[-1] not in schemas})
    assert refs and not missing, missing
