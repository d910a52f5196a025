"""GET /health: liveness and load, answered on the event loop without touching the workers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from segmentation import __version__
from segmentation.api.deps import Pool

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness and load")
async def health(pool: Pool) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "workers": pool.workers,
        "pending": pool.pending,
        "maxPending": pool.max_pending,
    }
