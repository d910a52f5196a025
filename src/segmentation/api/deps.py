"""Dependencies shared by the routes, as `Annotated` aliases; built once in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from segmentation.api.errors import PayloadTooLargeError, UnsupportedMediaError
from segmentation.auth import Access, ApiKey
from segmentation.config import Settings
from segmentation.errors import AuthenticationError
from segmentation.jobs.runner import JobRunner
from segmentation.service import SegmentationService
from segmentation.storage.store import AnalysisStore
from segmentation.workers import ProcessPool

__all__ = [
    "AccessControl",
    "AppSettings",
    "Caller",
    "Jobs",
    "JsonBody",
    "Pool",
    "Service",
    "Store",
    "Tenant",
]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> ProcessPool:
    pool: ProcessPool = request.app.state.pool
    return pool


def get_service(request: Request) -> SegmentationService:
    service: SegmentationService = request.app.state.service
    return service


def get_store(request: Request) -> AnalysisStore:
    return get_service(request).store


def get_jobs(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


def get_caller(request: Request) -> ApiKey:
    """The key the request was admitted with (`security.require_key` put it there).

    Fails closed: a route reached without the key check gets a 401, never every tenant."""
    caller: ApiKey | None = getattr(request.state, "caller", None)
    if caller is None:
        raise AuthenticationError("an API key is required")
    return caller


def get_tenant(request: Request) -> str | None:
    """The caller's tenant; None when SEGMENTATION_AUTH=off (then every analysis is one's own)."""
    if get_settings(request).auth == "off":
        return None
    return get_caller(request).tenant


def get_access(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


async def read_json_body(request: Request) -> bytes:
    """The raw body, refused early when it is not JSON or larger than the configured limit
    (declared or, for a streamed body without Content-Length, as it arrives)."""
    settings = get_settings(request)
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaError(content_type)
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(limit)
    chunks = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


AppSettings = Annotated[Settings, Depends(get_settings)]
Jobs = Annotated[JobRunner, Depends(get_jobs)]
Pool = Annotated[ProcessPool, Depends(get_pool)]
Service = Annotated[SegmentationService, Depends(get_service)]
Store = Annotated[AnalysisStore, Depends(get_store)]
JsonBody = Annotated[bytes, Depends(read_json_body)]
Caller = Annotated[ApiKey, Depends(get_caller)]
Tenant = Annotated[str | None, Depends(get_tenant)]
AccessControl = Annotated[Access, Depends(get_access)]
