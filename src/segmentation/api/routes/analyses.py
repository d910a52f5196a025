"""Stored analyses: fetch, list, delete, export assignments, score new customers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from enum import StrEnum
from typing import Annotated, Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from segmentation.api.convert import summaries_from_wire
from segmentation.api.deps import AppSettings, JsonBody, Pool
from segmentation.api.schemas import AssignRequest, ClusterIn
from segmentation.api.work import assign_body
from segmentation.charts import CHARTS, FORMATS, render
from segmentation.config import Settings
from segmentation.recommend import recommend
from segmentation.report import render_report
from segmentation.storage.store import ASSIGNMENTS, RESPONSE, AnalysisStore

router = APIRouter(tags=["analyses"])

# rows per batch when streaming assignments: bounded memory whatever the analysis size
EXPORT_BATCH_ROWS = 65_536


ChartName = StrEnum("ChartName", {name.replace("-", "_"): name for name in CHARTS})  # type: ignore[misc]
ImageFormat = StrEnum("ImageFormat", {name: name for name in FORMATS})  # type: ignore[misc]


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _store(settings: Settings) -> AnalysisStore:
    return AnalysisStore(settings.data_dir)


@router.get("/api/analyses", summary="List stored analyses, newest first")
async def list_analyses(
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    rows = await run_in_threadpool(_store(settings).list, limit, offset)
    return {
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


@router.get(
    "/api/analyses/{analysis_id}",
    summary="A stored analysis, exactly as /api/analyze returned it",
    responses={404: {"description": "No analysis with this id"}},
)
async def get_analysis(analysis_id: str, settings: AppSettings) -> StreamingResponse:
    handle = await run_in_threadpool(_store(settings).open_file, analysis_id, RESPONSE)
    return StreamingResponse(stream_file(handle), media_type="application/json")


async def stream_file(handle: BinaryIO) -> AsyncIterator[bytes]:
    """An open file in 1 MiB chunks read off the event loop; closed at the end."""
    try:
        while chunk := await run_in_threadpool(handle.read, 1 << 20):
            yield chunk
    finally:
        handle.close()


@router.delete("/api/analyses/{analysis_id}", status_code=204, summary="Delete an analysis")
async def delete_analysis(analysis_id: str, settings: AppSettings) -> Response:
    await run_in_threadpool(_store(settings).delete, analysis_id)
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
    "/api/analyses/{analysis_id}/assignments",
    summary="One row per customer: index, id, clusterId, clusterName, confidence, ambiguous",
)
async def assignments(
    analysis_id: str,
    settings: AppSettings,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv,
) -> Response:
    handle = await run_in_threadpool(_store(settings).open_file, analysis_id, ASSIGNMENTS)
    filename = f"assignments-{analysis_id}.{export_format.value}"
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
    "/api/analyses/{analysis_id}/assign",
    summary="Score new customers into a stored analysis' segments",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{AssignRequest.__name__}"}}}}},
)  # fmt: skip
async def assign_customers(
    analysis_id: str, body: JsonBody, pool: Pool, settings: AppSettings
) -> Response:
    content = await pool.run(assign_body, body, analysis_id, settings)
    return Response(content, media_type="application/json")


@router.get(
    "/api/analyses/{analysis_id}/charts/{chart}.{image_format}",
    summary="A chart of a stored analysis: projection, profiles, sizes, k-selection, silhouette",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
async def chart(
    analysis_id: str, chart: ChartName, image_format: ImageFormat, settings: AppSettings
) -> Response:
    data = await run_in_threadpool(_store(settings).chart_data, analysis_id)
    image = await run_in_threadpool(render, chart.value, data, image_format.value)
    return Response(image, media_type=FORMATS[image_format.value])


def report_html(store: AnalysisStore, analysis_id: str) -> str:
    summary = store.summary_dict(analysis_id)
    clusters = [ClusterIn.model_validate(c) for c in summary["clusters"]]
    advice = recommend(summaries_from_wire(clusters), accuracy=summary["accuracy"])
    title = f"Customer segments — analysis {analysis_id}"
    return render_report(summary, store.chart_data(analysis_id), [a.text for a in advice], title)


@router.get(
    "/api/analyses/{analysis_id}/report.html",
    summary="A self-contained HTML report of a stored analysis (charts inlined)",
    response_class=HTMLResponse,
)
async def report(analysis_id: str, settings: AppSettings) -> HTMLResponse:
    html = await run_in_threadpool(report_html, _store(settings), analysis_id)
    return HTMLResponse(html)
