"""POST /api/analyze: the seed's endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response

from segmentation.api.deps import AppSettings, JsonBody, Pool
from segmentation.api.schemas import ACCURACY_DOC, AnalysisResponse, AnalyzeRequest
from segmentation.api.work import analyze_body

router = APIRouter(tags=["analysis"])


@router.post(
    "/api/analyze",
    response_model=AnalysisResponse,
    summary="Segment customers",
    description=(
        "Segments the customers sent and explains the result. Every customer comes back in "
        "exactly one cluster, exactly as sent. accuracy: " + ACCURACY_DOC
    ),
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{AnalyzeRequest.__name__}"}}}}},
    responses={
        413: {"description": "Body larger than SEGMENTATION_MAX_BODY_BYTES"},
        415: {"description": "Body is not JSON"},
        422: {"description": "Bad records or options; names the record index and field"},
        503: {"description": "Too many analyses in progress; see Retry-After"},
    },
)  # fmt: skip
async def analyze_customers(body: JsonBody, pool: Pool, settings: AppSettings) -> Response:
    output = await pool.run(analyze_body, body, settings)
    headers = {"X-Cache": output.cache, "Server-Timing": output.server_timing}
    return Response(output.body, media_type="application/json", headers=headers)
