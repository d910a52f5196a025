"""The FastAPI application factory: settings, stores, service, worker pools, routes, errors.

The heavy resources (the SQLite stores, the service, the worker pools) are built once, in the
lifespan, and reach the routes through `deps`. Every error leaves in one shape,
`{"detail": "...", "errors": [{"record", "field", "message"}]}` (`schemas.ErrorResponse`),
whatever raised it: the core, the service, FastAPI's own validation or routing.
"""

from __future__ import annotations

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
from segmentation.api.errors import status_of
from segmentation.api.routes import analyses, analyze, health, jobs, recommendations
from segmentation.api.schemas import (
    AnalyzeRequest,
    AssignRequest,
    ErrorResponse,
    RecommendationsRequest,
    TransactionsSpec,
)
from segmentation.config import Settings
from segmentation.errors import InvalidInputError, SegmentationError, ServiceBusyError, ServiceError
from segmentation.jobs.model import JobTransitionError
from segmentation.jobs.runner import JobRunner
from segmentation.jobs.store import JobStore
from segmentation.service import SegmentationService
from segmentation.storage.store import AnalysisStore
from segmentation.workers import ProcessPool, warm_up

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = ErrorResponse.model_validate({"detail": detail, "errors": errors or []})
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


async def _handle(request: Request, error: Exception) -> JSONResponse:
    problems = error.problems if isinstance(error, InvalidInputError) else []
    errors = [{"record": p.record, "field": p.field, "message": p.message} for p in problems]
    headers = (
        {"Retry-After": str(error.retry_after)} if isinstance(error, ServiceBusyError) else None
    )
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = SegmentationService(settings, AnalysisStore(settings.data_dir))
        pool = ProcessPool(
            settings.workers, settings.max_pending, settings.retry_after_seconds, warm_up
        )
        await pool.start()
        runner = JobRunner(service, JobStore(settings.data_dir))
        await runner.start()
        app.state.service, app.state.pool, app.state.jobs = service, pool, runner
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
    for module in (analyze, recommendations, analyses, jobs, health):
        app.include_router(module.router)
    _with_component_schemas(
        app,
        [AnalyzeRequest, AssignRequest, RecommendationsRequest, TransactionsSpec, ErrorResponse],
    )
    return app
