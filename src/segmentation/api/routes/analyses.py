"""Stored analyses: fetch, list, delete, export assignments, score new customers, charts,
the report."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from enum import StrEnum
from typing import Annotated, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from segmentation.api.deps import JsonBody, Pool, Service, Store, Tenant
from segmentation.api.errors import documented
from segmentation.api.schemas import (
    ID_REGEX,
    AnalysesOut,
    AnalysisResponse,
    AssignRequest,
    AssignResponse,
    LineageChainOut,
)
from segmentation.api.wire import json_body
from segmentation.charts import CHARTS, FORMATS
from segmentation.storage.store import ASSIGNMENTS, RESPONSE

router = APIRouter(tags=["analyses"])

# rows per batch when streaming assignments: bounded memory whatever the analysis size
EXPORT_BATCH_ROWS = 65_536
# a page of the listing can start anywhere a SQLite integer can (beyond: 422, never 500)
MAX_OFFSET = 2**62

AnalysisId = Annotated[str, Path(pattern=ID_REGEX, description="22 characters of A-Z a-z 0-9 _ -")]
ChartName = StrEnum("ChartName", {name.replace("-", "_"): name for name in CHARTS})  # type: ignore[misc]
ImageFormat = StrEnum("ImageFormat", {name: name for name in FORMATS})  # type: ignore[misc]


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


@router.get(
    "/api/analyses",
    response_model=AnalysesOut,
    summary="List stored analyses, newest first",
    responses=documented(422),
)
async def list_analyses(
    store: Store,
    tenant: Tenant,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AnalysesOut:
    rows = await run_in_threadpool(store.list, limit, offset, tenant)
    return AnalysesOut.model_validate(
        {
            "analyses": [
                {
                    "analysisId": row.analysis_id,
                    "createdAt": row.created_at,
                    "customers": row.customers,
                    "segments": row.segments,
                    "algorithm": row.algorithm,
                    "accuracy": row.accuracy,
                }
                for row in rows
            ]
        }
    )


async def stream_file(handle: BinaryIO) -> AsyncIterator[bytes]:
    """An open file in 1 MiB chunks read off the event loop; closed at the end."""
    try:
        while chunk := await run_in_threadpool(handle.read, 1 << 20):
            yield chunk
    finally:
        handle.close()


@router.get(
    "/api/analyses/{analysisId}",
    response_model=AnalysisResponse,
    summary="A stored analysis, exactly as /api/analyze returned it",
    responses=documented(404, 422),
)
async def get_analysis(analysisId: AnalysisId, store: Store, tenant: Tenant) -> StreamingResponse:
    handle = await run_in_threadpool(store.open_file, analysisId, RESPONSE, tenant)
    return StreamingResponse(stream_file(handle), media_type="application/json")


@router.delete(
    "/api/analyses/{analysisId}",
    status_code=204,
    summary="Delete an analysis",
    responses=documented(404, 422),
)
async def delete_analysis(analysisId: AnalysisId, store: Store, tenant: Tenant) -> Response:
    await run_in_threadpool(store.delete, analysisId, tenant)
    return Response(status_code=204)


def _batches(handle: BinaryIO, export: ExportFormat) -> Iterator[bytes]:
    parquet = pq.ParquetFile(handle)
    if export is ExportFormat.json:
        yield b"["
    first = True
    for batch in parquet.iter_batches(batch_size=EXPORT_BATCH_ROWS):
        if export is ExportFormat.csv:
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(batch, sink, write_options=pa_csv.WriteOptions(include_header=first))
            yield sink.getvalue().to_pybytes()
        else:
            rows = orjson.dumps(batch.to_pylist())[1:-1]
            if rows:
                yield (b"" if first else b",") + rows
        first = False
    if export is ExportFormat.json:
        yield b"]"
    handle.close()


@router.get(
    "/api/analyses/{analysisId}/assignments",
    summary="One row per customer: index, id, clusterId, clusterName, confidence, ambiguous",
    responses={
        200: {
            "description": "The assignments as a file",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        **documented(404, 422),
    },
)
async def assignments(
    analysisId: AnalysisId,
    store: Store,
    tenant: Tenant,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv,
) -> Response:
    handle = await run_in_threadpool(store.open_file, analysisId, ASSIGNMENTS, tenant)
    filename = f"assignments-{analysisId}.{export_format.value}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if export_format is ExportFormat.parquet:
        media = "application/vnd.apache.parquet"
        return StreamingResponse(stream_file(handle), media_type=media, headers=disposition)
    media = "text/csv" if export_format is ExportFormat.csv else "application/json"
    return StreamingResponse(
        iterate_in_threadpool(_batches(handle, export_format)),
        media_type=media,
        headers=disposition,
    )


@router.post(
    "/api/analyses/{analysisId}/assign",
    response_model=AssignResponse,
    summary="Score new customers into a stored analysis' segments",
    openapi_extra=json_body(AssignRequest),
    responses={
        200: {
            "description": "Every new customer's segment, confidence and ambiguity",
            "headers": {
                "Server-Timing": {
                    "description": "Time spent reading the body, scoring and writing the "
                    "rows (read, score, write), in milliseconds",
                    "schema": {"type": "string"},
                }
            },
        },
        **documented(404, 413, 415, 422, 500, 503),
    },
)
async def assign_customers(
    analysisId: AnalysisId, body: JsonBody, pool: Pool, service: Service, tenant: Tenant
) -> Response:
    output = await pool.run(service.assign_body, analysisId, body, tenant)
    return Response(
        output.body, media_type="application/json", headers={"Server-Timing": output.server_timing}
    )


@router.get(
    "/api/analyses/{analysisId}/charts/{chart}.{image_format}",
    summary="A chart of a stored analysis: projection, profiles, sizes, k-selection, "
    "silhouette, migration (a refit only: 404 otherwise)",
    response_class=Response,
    responses={
        200: {
            "description": "The chart",
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/svg+xml": {"schema": {"type": "string"}},
            },
        },
        **documented(404, 422),
    },
)
async def chart(
    analysisId: AnalysisId,
    chart: ChartName,
    image_format: ImageFormat,
    service: Service,
    tenant: Tenant,
) -> Response:
    image = await run_in_threadpool(
        service.chart, analysisId, chart.value, image_format.value, tenant
    )
    return Response(image, media_type=FORMATS[image_format.value])


@router.get(
    "/api/analyses/{analysisId}/lineage",
    response_model=LineageChainOut,
    summary="The chain of analyses this one refits (previousAnalysisId), newest first",
    responses=documented(404, 422),
)
async def lineage(analysisId: AnalysisId, service: Service, tenant: Tenant) -> LineageChainOut:
    chain = await run_in_threadpool(service.lineage, analysisId, tenant)
    return LineageChainOut.model_validate(chain)


@router.get(
    "/api/analyses/{analysisId}/report.html",
    summary="A self-contained HTML report of a stored analysis (charts inlined)",
    response_class=HTMLResponse,
    responses=documented(404, 422),
)
async def report(analysisId: AnalysisId, service: Service, tenant: Tenant) -> HTMLResponse:
    return HTMLResponse(await run_in_threadpool(service.report, analysisId, tenant))
