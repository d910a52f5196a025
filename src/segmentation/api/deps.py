"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from segmentation.api.errors import PayloadTooLargeError, UnsupportedMediaError
from segmentation.api.jobs import JobRunner
from segmentation.api.pool import WorkerPool
from segmentation.config import Settings

__all__ = ["AppSettings", "Jobs", "JsonBody", "Pool"]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> WorkerPool:
    pool: WorkerPool = request.app.state.pool
    return pool


async def read_json_body(request: Request) -> bytes:
    """The raw body, refused early when it is not JSON or larger than the configured limit."""
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


def get_jobs(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


AppSettings = Annotated[Settings, Depends(get_settings)]
Jobs = Annotated[JobRunner, Depends(get_jobs)]
Pool = Annotated[WorkerPool, Depends(get_pool)]
JsonBody = Annotated[bytes, Depends(read_json_body)]
