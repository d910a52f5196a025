"""The FastAPI application factory: settings, worker pool, CORS, routes, error mapping."""

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

from segmentation import __version__
from segmentation.api.errors import ServiceBusyError, ServiceError, status_of
from segmentation.api.jobs import JobRunner
from segmentation.api.pool import WorkerPool
from segmentation.api.routes import analyses, analyze, health, jobs, recommendations
from segmentation.api.schemas import AnalyzeRequest, AssignRequest, RecommendationsRequest
from segmentation.config import Settings
from segmentation.errors import InvalidInputError, SegmentationError
from segmentation.jobs.model import JobTransitionError

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _error_response(error: Exception) -> JSONResponse:
    """`{"detail": "...", "errors": [{"record", "field", "message"}]}` with the mapped status."""
    problems = error.problems if isinstance(error, InvalidInputError) else []
    content = {
        "detail": str(error),
        "errors": [{"record": p.record, "field": p.field, "message": p.message} for p in problems],
    }
    headers = (
        {"Retry-After": str(error.retry_after)} if isinstance(error, ServiceBusyError) else None
    )
    return JSONResponse(content, status_code=status_of(error), headers=headers)


async def _handle(request: Request, error: Exception) -> JSONResponse:
    return _error_response(error)


async def _handle_unexpected(request: Request, error: Exception) -> JSONResponse:
    # a bug, not the caller's fault: logged with its traceback by uvicorn; the caller still
    # gets the documented error shape rather than plain text
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    content = {"detail": f"internal error ({type(error).__name__}); it has been logged"}
    return JSONResponse({**content, "errors": []}, status_code=500)


async def _handle_validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = "; ".join(
        f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
    )
    return JSONResponse({"detail": detail, "errors": []}, status_code=422)


def _with_request_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Publish request models whose bodies the routes read raw (for speed and size limits)."""
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
        pool = WorkerPool(settings.workers, settings.max_pending, settings.retry_after_seconds)
        await pool.start()
        app.state.pool = pool
        jobs = JobRunner(settings)
        await jobs.start()
        app.state.jobs = jobs
        try:
            yield
        finally:
            jobs.close()
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
    app.add_exception_handler(SegmentationError, _handle)
    app.add_exception_handler(ServiceError, _handle)
    app.add_exception_handler(JobTransitionError, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(Exception, _handle_unexpected)
    app.include_router(analyze.router)
    app.include_router(recommendations.router)
    app.include_router(analyses.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    _with_request_schemas(app, [AnalyzeRequest, AssignRequest, RecommendationsRequest])
    return app
