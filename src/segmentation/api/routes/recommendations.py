"""POST /api/recommendations: advice from an analysis the caller has, or a stored one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from segmentation.api.convert import (
    outcomes_from_wire,
    problems_from_validation,
    summaries_from_wire,
)
from segmentation.api.deps import JsonBody, Service, Tenant
from segmentation.api.errors import documented
from segmentation.api.schemas import RecommendationsRequest, RecommendationsResponse
from segmentation.api.wire import json_body
from segmentation.recommend import Recommendation
from segmentation.serialize import parse_json, recommendations_to_wire
from segmentation.service import SegmentationService

router = APIRouter(tags=["recommendations"])


def _advice(body: bytes, service: SegmentationService, tenant: str | None) -> list[Recommendation]:
    try:
        request = RecommendationsRequest.model_validate(parse_json(body))
    except ValidationError as error:
        raise problems_from_validation(error) from None
    if request.analysisId is not None:
        # a stored analysis: the same call its report makes
        return service.recommendations(request.analysisId, tenant)
    assert request.analysis is not None  # the schema admits exactly one of the two
    analysis = request.analysis
    return service.advise(
        summaries_from_wire(analysis.clusters), analysis.accuracy, analysis.axes(),
        outcomes_from_wire(analysis.outcomes),
    )  # fmt: skip


@router.post(
    "/api/recommendations",
    response_model=RecommendationsResponse,
    summary="Recommend actions per segment",
    description=(
        'Takes {"analysis": <an /api/analyze response>} (clusters[].customers may be dropped '
        'if clusters[].size is kept) or {"analysisId": "..."} of a stored analysis, and '
        "returns concrete per-segment actions ordered by business impact (size x value), then "
        "cross-segment advice; each action lists the figures its rationale cites."
    ),
    openapi_extra=json_body(RecommendationsRequest),
    responses=documented(404, 413, 415, 422),
)
async def recommendations(
    body: JsonBody, service: Service, tenant: Tenant
) -> RecommendationsResponse:
    # parsing a posted-back analysis with all its customers can take 100 ms: off the loop
    advice = await run_in_threadpool(_advice, body, service, tenant)
    return RecommendationsResponse.model_validate(recommendations_to_wire(advice))
