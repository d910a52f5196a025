"""GET /health: liveness and load, answered on the event loop without touching the workers."""

from __future__ import annotations

from fastapi import APIRouter

from segmentation import __version__
from segmentation.api.deps import Pool
from segmentation.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness and load")
async def health(pool: Pool) -> HealthOut:
    return HealthOut(
        status="ok",
        version=__version__,
        workers=pool.workers,
        pending=pool.pending,
        maxPending=pool.max_pending,
    )
