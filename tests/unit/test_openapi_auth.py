"""`/openapi.json` with SEGMENTATION_AUTH=keys tells the truth about keys: the two ways to send
one, 401/403/429 where each can happen, the keys and audit routes; and with auth off (the
default) the document is what it was, without any of it.

Plain reads of `create_app(...).openapi()`, as tests/unit/test_openapi_document.py does; the
server is checked against the keys document by tests/e2e/test_openapi_fuzz_auth.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi.routing import APIRoute

from segmentation.api.app import create_app
from segmentation.api.routes import admin, analyses, analyze, health, jobs, recommendations
from segmentation.config import Settings

# the document only: no lifespan runs, so the data folder is never created
KEYS_APP = create_app(Settings(auth="keys", data_dir=Path("/nonexistent/never-created")))
KEYS = KEYS_APP.openapi()
OFF = create_app().openapi()
METHODS = ("get", "post", "put", "patch", "delete")
SCHEMES = [{"APIKeyHeader": []}, {"HTTPBearer": []}]
ADMIN = {(method.lower(), route.path) for route in admin.router.routes
         if isinstance(route, APIRoute) for method in route.methods}  # fmt: skip


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


OPERATIONS = _operations(KEYS)
IDS = [f"{method.upper()} {path}" for method, path, _ in OPERATIONS]


def _statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"]}


def test_the_operations_are_the_served_routes_and_the_admin_ones() -> None:
    served = {
        (method.lower(), route.path)
        for module in (analyze, recommendations, analyses, jobs, health, admin)
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert {(method, path) for method, path, _ in OPERATIONS} == served
    admin_routes = {("post", "/api/keys"), ("get", "/api/keys"),
                    ("delete", "/api/keys/{keyId}"), ("get", "/api/audit")}  # fmt: skip
    assert admin_routes == ADMIN


def test_both_schemes_are_declared() -> None:
    schemes = KEYS["components"]["securitySchemes"]
    assert set(schemes) == {"APIKeyHeader", "HTTPBearer"}
    assert {k: schemes["APIKeyHeader"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
    }  # fmt: skip
    assert {k: schemes["HTTPBearer"][k] for k in ("type", "scheme")} == {
        "type": "http", "scheme": "bearer",
    }  # fmt: skip


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_every_route_but_health_needs_a_key_and_says_what_it_can_refuse(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    if path == "/health":
        assert "security" not in operation
        assert not {401, 403, 429} & _statuses(operation)
        return
    # either scheme, not both
    assert operation["security"] == SCHEMES
    statuses = _statuses(operation)
    assert {401, 429} <= statuses
    # every key may read; only writing and the admin routes need more
    assert (403 in statuses) == (method != "get" or (method, path) in ADMIN), sorted(statuses)
    responses = operation["responses"]
    assert "WWW-Authenticate" in responses["401"]["headers"]
    assert "Retry-After" in responses["429"]["headers"]
    for status in ("401", "403", "429"):
        if status in responses:
            assert responses[status]["content"] == {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            }


@pytest.mark.parametrize(("method", "path", "operation"), _operations(OFF),
                         ids=[f"{m.upper()} {p}" for m, p, _ in _operations(OFF)])  # fmt: skip
def test_keys_only_add_to_what_each_operation_says(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    with_keys = KEYS["paths"][path][method]
    added = _statuses(with_keys) - _statuses(operation)
    assert added <= {401, 403, 429}
    for status, response in operation["responses"].items():
        assert with_keys["responses"][status] == response
    assert {k: v for k, v in with_keys.items() if k not in ("security", "responses")} == {
        k: v for k, v in operation.items() if k != "responses"
    }


def test_auth_off_documents_no_key_at_all() -> None:
    assert "securitySchemes" not in OFF["components"]
    assert not any("security" in operation for _, _, operation in _operations(OFF))
    assert not any(path.startswith(("/api/keys", "/api/audit")) for path in OFF["paths"])
    assert not any({401, 403, 429} & _statuses(op) for _, _, op in _operations(OFF))
    assert "KeyRequest" not in OFF["components"]["schemas"]


def _validator(name: str) -> Any:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": KEYS["components"]}
    )


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"name": "nightly-job", "scope": "read"}, True),
        ({"name": "ops: the admin key", "scope": "admin"}, True),
        # the tenant is the caller's own: the body cannot name another
        ({"name": "x", "scope": "read", "tenant": "globex"}, False),
        # only spaces
        ({"name": "   ", "scope": "read"}, False),
        # two lines
        ({"name": "a\nb", "scope": "read"}, False),
        # not a scope
        ({"name": "x", "scope": "root"}, False),
        # a name is required
        ({"scope": "read"}, False),
    ],
)
def test_a_key_request_as_the_document_says(body: dict[str, Any], valid: bool) -> None:
    assert _validator("KeyRequest").is_valid(body) is valid
    for example in KEYS["components"]["schemas"]["KeyRequest"]["examples"]:
        assert _validator("KeyRequest").is_valid(example)


def test_the_key_is_in_the_creation_answer_only() -> None:
    schemas = KEYS["components"]["schemas"]
    created = KEYS["paths"]["/api/keys"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/KeyCreatedOut")
    assert "key" in schemas["KeyCreatedOut"]["properties"]
    assert "key" not in schemas["KeyOut"]["properties"]


def _put(path: str) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=KEYS_APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.put(path)

    return asyncio.run(send())


@pytest.mark.parametrize("path", ["/api/keys", "/api/keys/" + "A" * 22, "/api/audit"])
def test_405_allows_exactly_the_documented_methods(path: str) -> None:
    documented = KEYS["paths"]["/api/keys/{keyId}" if path.count("/") == 3 else path]
    response = _put(path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {m.upper() for m in documented}
