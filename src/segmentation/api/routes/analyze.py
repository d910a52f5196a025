"""POST /api/analyze: the seed's endpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from segmentation.api.deps import JsonBody, Pool, Service, Tenant
from segmentation.api.errors import PayloadTooLargeError, UnsupportedMediaError, documented
from segmentation.api.schemas import (
    ACCURACY_DOC,
    AnalysisResponse,
    AnalyzeRequest,
    FieldsOut,
    FieldsRequest,
)
from segmentation.api.wire import file_upload, json_body
from segmentation.errors import InvalidInputError, Problem
from segmentation.files import detect_kind

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


# a preview reads a file's first rows: the dashboard sends its first 256 KiB
PREVIEW_FILE_BYTES = 2 << 20
PREVIEW_ADVICE = "send the file's first rows only; POST /api/jobs reads the whole file"


def _header_part(value: object) -> bool | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInputError(Problem('must be "true" or "false"', field="header"))


@router.post(
    "/api/fields/file",
    response_model=FieldsOut,
    summary="The role each field of a file would get, read as an analysis reads the file",
    description=(
        "multipart/form-data with a `file` part (the first rows of a CSV with any delimiter, "
        "or JSON Lines; at most 2 MiB) and an optional `header` part (`true` or `false`; "
        "default: detected). The file is read as `POST /api/jobs` reads it: its delimiter, "
        "a header row or none, blank rows, numbers written as text, placeholders."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": file_upload(
                    header={"type": "string", "enum": ["true", "false"]}
                )
            },
        }
    },
    responses=documented(400, 413, 415, 422),
)
async def file_field_roles(request: Request, service: Service) -> Response:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise UnsupportedMediaError(content_type)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > PREVIEW_FILE_BYTES + (64 << 10):
        raise PayloadTooLargeError(PREVIEW_FILE_BYTES, "a preview", PREVIEW_ADVICE)
    form = await request.form(max_part_size=PREVIEW_FILE_BYTES)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInputError(Problem("a multipart upload needs a 'file' part", field="file"))
    header = _header_part(form.get("header"))
    content = await upload.read(PREVIEW_FILE_BYTES + 1)
    if len(content) > PREVIEW_FILE_BYTES:
        raise PayloadTooLargeError(PREVIEW_FILE_BYTES, "a preview", PREVIEW_ADVICE)
    kind = detect_kind(content[:8192], upload.filename or "preview")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"preview.{kind}"
        path.write_bytes(content)
        answer = await run_in_threadpool(service.file_field_roles, path, kind, header)
    return Response(answer, media_type="application/json")
