"""Settings, all from environment variables prefixed SEGMENTATION_, each with a safe default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Service configuration. Every field is read from `SEGMENTATION_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SEGMENTATION_", extra="ignore")

    cors_origins: str = Field(
        default="http://localhost:3000,http://localhost:5173,http://127.0.0.1:3000,http://127.0.0.1:5173",
        description="Comma-separated origins allowed to call the API from a browser; '*' for any.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted; larger bodies get 413.",
    )
    workers: int = Field(
        default_factory=lambda: max(1, min(2, os.cpu_count() or 1)),
        ge=1,
        description="Worker processes that run analyses (never on the event loop).",
    )
    max_pending: int = Field(
        default=8,
        ge=1,
        description="Analyses running or waiting at once; beyond, 503 + Retry-After.",
    )
    max_fields: int = Field(
        default=100,
        ge=1,
        description="Most fields per customer; the cost of explaining grows with their square.",
    )
    max_customers: int = Field(
        default=1_000_000, ge=2, description="Most customers accepted in one analysis."
    )
    retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After sent with 503.")
    data_dir: Path = Field(
        default=Path("data"),
        description="Folder of the SQLite index and the stored analyses (created if missing).",
    )
    cache: bool = Field(
        default=True, description="Answer identical analysis requests from the store."
    )
    max_stored_analyses: int = Field(
        default=1000,
        ge=1,
        description="Analyses kept on disk; beyond, the least recently used are deleted.",
    )
    job_workers: int = Field(
        default=1, ge=1, description="Worker processes running jobs (besides `workers`)."
    )
    max_queued_jobs: int = Field(
        default=16, ge=1, description="Jobs waiting at once; beyond, 503 + Retry-After."
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, gt=0, description="Largest job input (JSON body or file)."
    )
    cache_max_entries: int = Field(
        default=256, ge=1, description="Most recently used requests the cache answers."
    )
    spark_master: str | None = Field(
        default=None,
        description="Spark master URL (local[2], spark://host:7077) for jobs with "
        '"engine": "spark"; unset, such jobs are refused (422).',
    )

    auth: Literal["off", "keys"] = Field(
        default="off",
        description="off: anyone who reaches the port may do anything (bind to 127.0.0.1); "
        "keys: every route but /health, the docs and the dashboard's pages needs an API key.",
    )
    rate_limit: str = Field(
        default="120/minute",
        description="Requests per key (with auth=keys), as the `limits` package writes them: "
        "'120/minute', '10 per 5 seconds'; beyond, 429 + Retry-After.",
    )
    rate_limit_analyze: str = Field(
        default="20/minute",
        description="POST /api/analyze and POST /api/jobs per key, on top of rate_limit.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where the rate-limit windows are counted (a `limits` storage URI); "
        "memory:// counts in the server process.",
    )
    audit_days: int = Field(
        default=90, ge=1, description="Days the audit trail keeps its rows (auth=keys)."
    )

    @field_validator("rate_limit", "rate_limit_analyze")
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        try:
            limits.parse_many(value)
        except ValueError as error:
            message = f"{value!r} is not a rate limit such as '120/minute': {error}"
            raise ValueError(message) from None
        return value

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
