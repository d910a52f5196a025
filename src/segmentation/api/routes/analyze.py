"""POST /api/analyze: the seed's endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from segmentation.api.deps import JsonBody, Pool, Service, Tenant
from segmentation.api.errors import documented
from segmentation.api.schemas import (
    ACCURACY_DOC,
    AnalysisResponse,
    AnalyzeRequest,
    FieldsOut,
    FieldsRequest,
)
from segmentation.api.wire import json_body

router = APIRouter(tags=["analysis"])


@router.post(
    "/api/analyze",
    response_model=AnalysisResponse,
    summary="Segment customers",
    description=(
        "Segments the customers sent and explains the result. Every customer comes back in "
        "exactly one cluster, exactly as sent. The analysis is stored under `analysisId`; "
        "identical requests are answered from the store (X-Cache). accuracy: " + ACCURACY_DOC
    ),
    openapi_extra=json_body(AnalyzeRequest),
    responses={
        200: {
            "description": "The segments, how far to trust them, and where they are stored",
            "headers": {
                "X-Cache": {
                    "description": "hit: answered from the store; miss: computed; off",
                    "schema": {"type": "string", "enum": ["hit", "miss", "off"]},
                },
                "Server-Timing": {
                    "description": "Time spent in each stage, in milliseconds",
                    "schema": {"type": "string"},
                },
            },
        },
        # 404: options.previousAnalysisId names no stored analysis
        **documented(404, 413, 415, 422, 500, 503),
    },
)
async def analyze_customers(
    body: JsonBody, pool: Pool, service: Service, tenant: Tenant
) -> Response:
    output = await pool.run(service.analyze_body, body, tenant)
    headers = {"X-Cache": output.cache, "Server-Timing": output.server_timing}
    return Response(output.body, media_type="application/json", headers=headers)


@router.post(
    "/api/fields",
    response_model=FieldsOut,
    summary="The role each field would get (a file's first rows), before an analysis",
    openapi_extra=json_body(FieldsRequest),
    responses=documented(413, 415, 422),
)
async def field_roles(body: JsonBody, service: Service) -> Response:
    content = await run_in_threadpool(service.field_roles, body)
    return Response(content, media_type="application/json")
