"""The FastAPI application factory: settings, stores, service, worker pools, routes, errors.

The heavy resources (the SQLite stores, the service, the worker pools) are built once, in the
lifespan, and reach the routes through `deps`. Every error leaves in one shape,
`{"detail": "...", "errors": [{"record", "field", "message"}]}` (`schemas.ErrorResponse`),
whatever raised it: the core, the service, FastAPI's own validation or routing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from segmentation import __version__
from segmentation.api import security
from segmentation.api.errors import status_of
from segmentation.api.routes import (
    admin,
    analyses,
    analyze,
    dashboard,
    health,
    jobs,
    recommendations,
)
from segmentation.api.schemas import (
    AnalyzeRequest,
    AssignRequest,
    ErrorResponse,
    FieldsRequest,
    RecommendationsRequest,
    SparkJobRequest,
    TransactionsSpec,
)
from segmentation.auth import Access
from segmentation.config import Settings
from segmentation.errors import (
    AuthenticationError,
    InvalidInputError,
    OtherTenantError,
    RateLimitedError,
    SegmentationError,
    ServiceBusyError,
    ServiceError,
)
from segmentation.jobs.model import JobTransitionError
from segmentation.jobs.runner import JobRunner
from segmentation.jobs.store import JobStore
from segmentation.service import SegmentationService
from segmentation.storage.store import AnalysisStore
from segmentation.workers import ProcessPool, warm_up

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error quoting a lone surrogate a caller sent stays
    valid JSON instead of failing to encode (a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = ErrorResponse.model_validate({"detail": detail, "errors": errors or []})
    return _AsciiJSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _handle(request: Request, error: Exception) -> JSONResponse:
    problems = error.problems if isinstance(error, InvalidInputError) else []
    errors = [{"record": p.record, "field": p.field, "message": p.message} for p in problems]
    headers = None
    if isinstance(error, ServiceBusyError | RateLimitedError):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, AuthenticationError):
        headers = {"WWW-Authenticate": security.WWW_AUTHENTICATE}
    if isinstance(error, OtherTenantError):  # the same 404 as an unknown id; audited as denied
        request.state.other_tenant = True
    return _error(status_of(error), str(error), errors, headers)


async def _handle_unexpected(request: Request, error: Exception) -> JSONResponse:
    # a bug, not the caller's fault: logged with its traceback; the caller still gets the
    # documented error shape rather than plain text
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, f"internal error ({type(error).__name__}); it has been logged")


async def _handle_validation(request: Request, error: Exception) -> JSONResponse:
    """FastAPI's own checks (path, query): each problem named by its parameter."""
    assert isinstance(error, RequestValidationError)
    errors = []
    for item in error.errors():
        where = [str(part) for part in item["loc"] if part not in ("path", "query", "body")]
        errors.append({"record": None, "field": ".".join(where) or None, "message": item["msg"]})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return _error(422, detail, errors)


# the methods a 405's Allow header can name; HEAD and OPTIONS only where a route serves them
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first route's).

    Asked of each route through `matches`, Starlette's public routing call, with the method
    swapped: included routers keep their routes out of `app.router.routes`."""
    routes = request.app.router.routes

    def served(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in routes)

    return [method for method in METHODS if served(method)]


async def _handle_http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    return _error(error.status_code, detail, headers=headers or None)


def _with_component_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Publish models the routes refer to by `$ref` only: the request models whose bodies
    they read raw (for speed and size limits), and the error model (`errors.documented`)."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _include_api(app: FastAPI, settings: Settings) -> None:
    """The service's routes. With SEGMENTATION_AUTH=keys every one needs a key, the keys and
    audit routes are served, and the audit trail is kept; /health, the docs and the
    dashboard's pages and files stay public (the pages call the API with the key the user
    gives them)."""
    keys = settings.auth == "keys"
    for module in (analyze, recommendations, analyses, jobs):
        app.include_router(module.router, dependencies=security.KEY_CHECK if keys else None)
    app.include_router(health.router)
    if keys:
        app.include_router(admin.router, dependencies=security.ADMIN_CHECK)
        app.add_middleware(security.AuditMiddleware)


# request bodies read as raw JSON (no pydantic parameter), published as components
REQUEST_SCHEMAS: list[type[BaseModel]] = [
    AnalyzeRequest, AssignRequest, RecommendationsRequest, TransactionsSpec, ErrorResponse,
    SparkJobRequest, FieldsRequest,
]  # fmt: skip


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = SegmentationService(settings, AnalysisStore(settings.data_dir))
        pool = ProcessPool(
            settings.workers, settings.max_pending, settings.retry_after_seconds, warm_up
        )
        runner = JobRunner(service, JobStore(settings.data_dir))
        await asyncio.gather(pool.start(), runner.start())
        app.state.service, app.state.pool, app.state.jobs = service, pool, runner
        # What is loaded by now (the app, the ML stack the service imports: 180,000 objects)
        # lives as long as the server: kept out of every later full garbage collection, which
        # walked it on the event loop (measured: a 90 ms collection, /health answering in
        # 134 ms, during a 1,000,000-customer job beside 16 clients' analyses).
        gc.collect()
        gc.freeze()
        app.state.access = Access.of(settings) if settings.auth == "keys" else None
        try:
            yield
        finally:
            runner.close()
            pool.close()

    app = FastAPI(
        title="Customer segmentation",
        version=__version__,
        description=(
            "Named, explained, reproducible customer segments. See the README for the "
            "definitions of accuracy, featureImportance, confidence and the choice of k."
        ),
        lifespan=lifespan,
        # served by `dashboard.install` from vendored assets: the defaults load from a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        # a browser script may read these: cache status, stage times, where a job lives
        expose_headers=["X-Cache", "Server-Timing", "Location", "Retry-After"],
    )
    for error_class in (SegmentationError, ServiceError, JobTransitionError):
        app.add_exception_handler(error_class, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Exception, _handle_unexpected)
    _include_api(app, settings)
    dashboard.install(app)
    _with_component_schemas(app, REQUEST_SCHEMAS)
    if settings.auth == "keys":
        security.document_access(app)
    return app
