"""Jobs: POST an analysis (JSON or a file), poll it, fetch its result, cancel it."""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from segmentation.api.deps import AppSettings, Jobs, Store, Tenant
from segmentation.api.errors import PayloadTooLargeError, UnsupportedMediaError, documented
from segmentation.api.routes.analyses import stream_file
from segmentation.api.schemas import (
    ID_REGEX,
    AnalysisResponse,
    AnalyzeRequest,
    JobOut,
    SparkJobRequest,
)
from segmentation.api.wire import file_upload
from segmentation.errors import InvalidInputError, JobNotFinishedError, Problem
from segmentation.files import check_customer_file, detect_kind
from segmentation.jobs.model import Job, JobStatus
from segmentation.jobs.runner import JSON_INPUT, SPARK_INPUT, JobRunner
from segmentation.options import AnalysisOptions
from segmentation.rfm import TransactionColumns
from segmentation.serialize import parse_json
from segmentation.service import read_spark_job
from segmentation.storage.store import RESPONSE

router = APIRouter(tags=["jobs"])

HEAD_BYTES = 8192


def job_to_wire(job: Job) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "status": job.status.value,
        "stage": job.stage,
        "progress": round(job.progress, 4),
        "createdAt": job.created_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "error": job.error,
        "analysisId": job.analysis_id,
        "attempts": job.attempts,
        "links": {"self": f"/api/jobs/{job.job_id}", "result": f"/api/jobs/{job.job_id}/result"},
    }


# the options JSON is small: a form field beyond this is refused rather than held in memory
OPTIONS_PART_BYTES = 1 << 20
UPLOAD_SETTING = "SEGMENTATION_MAX_UPLOAD_BYTES"


# a Spark job's body names its data and is small; a customers body is read by the worker
SPARK_BODY_BYTES = 1 << 20


def _small_body(path: FilePath) -> dict[str, Any] | None:
    """A small JSON object body, read now for what can be checked at once; None for anything
    else (not JSON, or large: the worker reads and checks it, as for any JSON job)."""
    if path.stat().st_size > SPARK_BODY_BYTES:
        return None
    try:
        payload = parse_json(path.read_bytes())
    except InvalidInputError:
        return None
    return payload if isinstance(payload, dict) else None


async def _check_previous(options: Any, runner: JobRunner, tenant: str | None) -> None:
    """An options.previousAnalysisId that names no stored analysis (of this tenant) is a 404
    at submission, as on /api/analyze, not a job that fails later."""
    previous = options.get("previousAnalysisId") if isinstance(options, dict) else None
    if isinstance(previous, str):
        await run_in_threadpool(runner.service.store.folder, previous, tenant)


async def _receive_json(request: Request, runner: JobRunner, limit: int, tenant: str | None) -> Job:
    target = runner.jobs.staging_file(".json")
    try:
        received, start = 0, b""
        with target.open("wb") as sink:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise PayloadTooLargeError(limit, UPLOAD_SETTING)
                start = start or chunk.lstrip()[:1]
                await asyncio.to_thread(sink.write, chunk)
        if start != b"{":
            raise InvalidInputError(
                Problem('the body must be a JSON object: {"customerData": [...]}', field="body")
            )
        name = JSON_INPUT
        payload = await asyncio.to_thread(_small_body, target)
        if payload is not None:
            await _check_previous(payload.get("options"), runner, tenant)
            if "source" in payload and "customerData" not in payload:
                # a Spark job names its data: checked now (the setting too), a 422 at once
                read_spark_job(payload, runner.settings.spark_master)
                name = SPARK_INPUT
        return await runner.submit(target, name, None, tenant=tenant)
    finally:
        target.unlink(missing_ok=True)  # gone already when submitted: the job owns it


async def _receive_file(request: Request, runner: JobRunner, limit: int, tenant: str | None) -> Job:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + OPTIONS_PART_BYTES:
        raise PayloadTooLargeError(limit, UPLOAD_SETTING)
    form = await request.form(max_part_size=OPTIONS_PART_BYTES)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInputError(Problem("a multipart upload needs a 'file' part", field="file"))
    options = form.get("options")
    if options is not None and not isinstance(options, str):
        raise InvalidInputError(Problem("must be a text field holding JSON", field="options"))
    options_bytes = None
    if options is not None and options.strip():
        options_bytes = options.encode()
        parsed_options = parse_json(options_bytes)
        AnalysisOptions.from_wire(parsed_options)  # checked now: a 422 at once
        await _check_previous(parsed_options, runner, tenant)
    transactions = form.get("transactions")
    transactions_bytes = None
    if isinstance(transactions, str) and transactions.strip():
        transactions_bytes = transactions.encode()
        TransactionColumns.from_wire(parse_json(transactions_bytes))
    head = await upload.read(HEAD_BYTES)
    kind = detect_kind(head, upload.filename or "upload")
    target = runner.jobs.staging_file(f".{kind}")
    try:
        copied = len(head)
        with target.open("wb") as sink:
            await asyncio.to_thread(sink.write, head)
            while chunk := await upload.read(1 << 20):
                copied += len(chunk)
                if copied > limit:
                    raise PayloadTooLargeError(limit, UPLOAD_SETTING)
                await asyncio.to_thread(sink.write, chunk)
        # the first rows (or the Parquet schema) now, so that a broken file is a 422 at once;
        # the worker reads the whole file
        await run_in_threadpool(check_customer_file, target, kind)
        return await runner.submit(
            target, f"input.{kind}", options_bytes, transactions_bytes, tenant
        )
    finally:
        target.unlink(missing_ok=True)


@router.post(
    "/api/jobs",
    status_code=202,
    summary="Analyse asynchronously: the /api/analyze body, a CSV/Parquet/JSON Lines file, or "
    "a source for the Spark engine",
    description=(
        "Send the /api/analyze JSON body, or multipart/form-data with a `file` part (CSV with "
        "any delimiter, UTF-8 or Latin-1, optionally xz/gzip/bz2-compressed; Parquet; JSON "
        "Lines), an optional `options` part holding the options JSON and, for a file of orders, "
        "a `transactions` part (customerId, date, amount or quantity and price, invoice, asOf) "
        'to derive one row per customer first. Or `{"source": "<path or URI>", '
        '"engine": "spark", "options": {...}}` for the Spark engine (422 unless the '
        "server sets SEGMENTATION_SPARK_MASTER). Answers 202 with the job and its Location."
    ),
    response_model=JobOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": f"#/components/schemas/{AnalyzeRequest.__name__}"},
                            {"$ref": f"#/components/schemas/{SparkJobRequest.__name__}"},
                        ]
                    }
                },
                "multipart/form-data": file_upload(
                    options={"type": "string", "description": "options as JSON"},
                    transactions={"type": "string", "description": "TransactionsSpec as JSON"},
                ),
            },
        }
    },
    responses={
        202: {
            "description": "The job, queued",
            "headers": {
                "Location": {
                    "description": "Where to poll the job: /api/jobs/{jobId}",
                    "schema": {"type": "string"},
                }
            },
        },
        # 400: a multipart body that cannot be parsed (Starlette's form parser)
        **documented(400, 404, 413, 415, 422, 503),
    },
)
async def submit_job(
    request: Request, runner: Jobs, settings: AppSettings, tenant: Tenant
) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    async with runner.reservation():
        if media_type == "application/json" or media_type.endswith("+json"):
            job = await _receive_json(request, runner, settings.max_upload_bytes, tenant)
        elif media_type == "multipart/form-data":
            job = await _receive_file(request, runner, settings.max_upload_bytes, tenant)
        else:
            raise UnsupportedMediaError(content_type)
    location = f"/api/jobs/{job.job_id}"
    return JSONResponse(job_to_wire(job), status_code=202, headers={"Location": location})


JobId = Annotated[str, Path(pattern=ID_REGEX, description="22 characters of A-Z a-z 0-9 _ -")]


@router.get(
    "/api/jobs/{jobId}",
    response_model=JobOut,
    summary="A job's status, stage, progress and timings",
    responses=documented(404, 422),
)
async def get_job(jobId: JobId, runner: Jobs, tenant: Tenant) -> JobOut:
    job = await run_in_threadpool(runner.jobs.get, jobId, tenant)
    return JobOut.model_validate(job_to_wire(job))


@router.get(
    "/api/jobs/{jobId}/result",
    response_model=AnalysisResponse,
    summary="The analysis of a finished job",
    responses=documented(404, 409, 422),
)
async def job_result(jobId: JobId, runner: Jobs, store: Store, tenant: Tenant) -> StreamingResponse:
    job = await run_in_threadpool(runner.jobs.get, jobId, tenant)
    if job.status is not JobStatus.SUCCEEDED or job.analysis_id is None:
        raise JobNotFinishedError(job.job_id, job.status.value, job.error)
    # an open file stays readable if the analysis is deleted meanwhile (no 500 half-way)
    handle = await run_in_threadpool(store.open_file, job.analysis_id, RESPONSE, tenant)
    return StreamingResponse(stream_file(handle), media_type="application/json")


@router.delete(
    "/api/jobs/{jobId}",
    response_model=JobOut,
    summary="Cancel a queued or running job",
    responses=documented(404, 409, 422),
)
async def cancel_job(jobId: JobId, runner: Jobs, tenant: Tenant) -> JobOut:
    return JobOut.model_validate(job_to_wire(await runner.cancel(jobId, tenant)))
