"""The HTTP side of SEGMENTATION_AUTH=keys: the key check as a dependency, the audit trail
as middleware, and what the OpenAPI document says about both.

`require_key` runs before anything else a protected route does (its body is not even read):
it takes the key from `X-API-Key` or `Authorization: Bearer`, and asks `auth.Access` whether
the key may do this now (401, 429, then 403). The scope follows the method: GET and HEAD
need `read`, every other method `write`; the admin routes (keys, audit) need `admin`.

`AuditMiddleware` records, before the response leaves, every denial (401, 403, 429, and a 404
for another tenant's id, which the caller cannot tell from an unknown one) and every
authenticated request that can change something. It reads what the request left in its
`state`: the key (`caller`, or `denied_key` for a wrong or revoked one), `other_tenant`, and
an `audit_event` named by the keys routes.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmentation.api.errors import documented
from segmentation.api.schemas import KeyRequest
from segmentation.auth import (
    READING_METHODS,
    Access,
    ApiKey,
    AuditEvent,
    audit_event_of,
    authorize,
)
from segmentation.auth import Scope as KeyScope
from segmentation.errors import AuthenticationError

__all__ = [
    "ANALYSIS_OPERATIONS",
    "WWW_AUTHENTICATE",
    "AuditMiddleware",
    "document_access",
    "require_admin",
    "require_key",
]

WWW_AUTHENTICATE = 'Bearer realm="segmentation"'
# the operations that also count against SEGMENTATION_RATE_LIMIT_ANALYZE
ANALYSIS_OPERATIONS = frozenset({("POST", "/api/analyze"), ("POST", "/api/jobs")})

api_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="APIKeyHeader",
    description="An API key (`segmentation keys create`, or POST /api/keys).",
    auto_error=False,
)
bearer = HTTPBearer(
    scheme_name="HTTPBearer",
    description="The same API key as `Authorization: Bearer <key>`.",
    auto_error=False,
)
HeaderKey = Annotated[str | None, Security(api_key_header)]
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def _admit(request: Request, header: str | None, token: Any, needed: KeyScope) -> ApiKey:
    access: Access = request.app.state.access
    presented = header or (token.credentials if token is not None else None)
    route = request.scope.get("route")
    operation = (request.method, getattr(route, "path", request.url.path))
    try:
        key = access.keys.authenticate(presented)
    except AuthenticationError as error:
        request.state.denied_key = (error.key_id, error.tenant)
        raise
    request.state.caller = key  # from here on, a denial is recorded under the key
    # every request of a key counts, refused ones too; then the scope (403)
    access.limits.hit(key.key_id, analysis=operation in ANALYSIS_OPERATIONS)
    authorize(key, needed)
    return key


def require_key(request: Request, header: HeaderKey, token: BearerKey) -> ApiKey:
    """The key check of the service's routes (a plain def: its SQLite lookups run in the
    thread pool, off the event loop)."""
    needed = KeyScope.READ if request.method in ("GET", "HEAD") else KeyScope.WRITE
    return _admit(request, header, token, needed)


def require_admin(request: Request, header: HeaderKey, token: BearerKey) -> ApiKey:
    """The key check of the keys and audit routes."""
    return _admit(request, header, token, KeyScope.ADMIN)


KEY_CHECK = [Depends(require_key)]
ADMIN_CHECK = [Depends(require_admin)]


class AuditMiddleware:
    """Records an exchange in the audit trail when `audit_event_of` says so, before the
    response's first byte leaves (so that a client reading the trail next finds it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        recorded = False

        async def send_audited(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._record(scope, state, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            if not recorded:  # a 500 the outer error handler is about to send
                await self._record(scope, state, 500)
            raise

    @staticmethod
    async def _record(scope: Scope, state: dict[str, Any], status: int) -> None:
        caller: ApiKey | None = state.get("caller")
        key_id, tenant = (caller.key_id, caller.tenant) if caller else state.get(
            "denied_key", (None, None)
        )  # fmt: skip
        method = str(scope["method"])
        event = state.get("audit_event") if 200 <= status < 300 else None
        event = event or audit_event_of(
            method, status, caller is not None, bool(state.get("other_tenant"))
        )
        if event is None:
            return
        client = scope.get("client")
        access: Access = scope["app"].state.access
        row = AuditEvent(
            at=time.time(), key_id=key_id, tenant=tenant, method=method,
            path=str(scope["path"]), status=status, client=client[0] if client else None,
            event=event, target=state.get("audit_target"),
        )  # fmt: skip
        await run_in_threadpool(access.audit.record, row)


def document_access(app: FastAPI) -> None:
    """What the document says with SEGMENTATION_AUTH=keys, on top of what FastAPI writes
    from the security dependencies (the schemes, and `security` on each operation): 401
    with WWW-Authenticate and 429 with Retry-After wherever a key is checked, 403 where the
    scope needed is more than `read` (methods that write, and the admin routes)."""
    base_openapi = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = base_openapi()
        if not done:
            _add_access_responses(schema)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components[KeyRequest.__name__] = KeyRequest.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_access_responses(schema: dict[str, Any]) -> None:
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            admin = "admin" in operation.get("tags", [])
            reads = method.upper() in READING_METHODS and not admin
            statuses = (401, 429) if reads else (401, 403, 429)
            responses = operation.setdefault("responses", {})
            for status, response in documented(*statuses).items():
                responses.setdefault(str(status), response)
            operation["responses"] = dict(sorted(responses.items()))
