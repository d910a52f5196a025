"""POST /api/recommendations: advice from an analysis the caller already has."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from segmentation.api.convert import (
    parse_json,
    problems_from_validation,
    recommendations_to_wire,
    summaries_from_wire,
)
from segmentation.api.deps import AppSettings, JsonBody
from segmentation.api.schemas import AnalysisIn, RecommendationsRequest, RecommendationsResponse
from segmentation.config import Settings
from segmentation.errors import InvalidInputError
from segmentation.recommend import recommend
from segmentation.storage.store import AnalysisStore

router = APIRouter(tags=["recommendations"])


def _recommend(body: bytes, settings: Settings) -> RecommendationsResponse:
    try:
        request = RecommendationsRequest.model_validate(parse_json(body))
    except ValidationError as error:
        raise problems_from_validation(error) from None
    if request.analysisId is not None:
        summary = AnalysisStore(settings.data_dir).summary(request.analysisId)
        analysis = AnalysisIn.model_validate(parse_json(summary))
    elif request.analysis is not None:
        analysis = request.analysis
    else:  # the schema's validator admits exactly one of the two
        raise InvalidInputError('give "analysis" or "analysisId"')
    advice = recommend(
        summaries_from_wire(analysis.clusters), accuracy=analysis.accuracy, axes=analysis.axes()
    )
    return RecommendationsResponse.model_validate(recommendations_to_wire(advice))


@router.post(
    "/api/recommendations",
    response_model=RecommendationsResponse,
    summary="Recommend actions per segment",
    description=(
        'Takes {"analysis": <an /api/analyze response>} (clusters[].customers may be dropped '
        'if clusters[].size is kept) or {"analysisId": "..."} of a stored analysis, and '
        "returns concrete per-segment actions ordered by business impact (size x value), then "
        "cross-segment advice."
    ),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{RecommendationsRequest.__name__}"}}}}},
)  # fmt: skip
async def recommendations(body: JsonBody, settings: AppSettings) -> RecommendationsResponse:
    # parsing a posted-back analysis with all its customers can take 100 ms: off the loop
    return await run_in_threadpool(_recommend, body, settings)
