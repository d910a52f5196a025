"""Running jobs: a bounded queue in the server, a pool of worker processes, state in SQLite.

The runner belongs to the app's lifespan. `submit` refuses work (503) when
SEGMENTATION_MAX_QUEUED_JOBS jobs already wait, so the backlog is bounded. Each job runs in a
worker process (`run_job`), which reports its stage and progress to SQLite as it goes and stops
at the next report once the job has been cancelled. A worker that dies (killed, out of memory)
fails its job with that reason and the pool is replaced. At start-up, jobs that were queued
are queued again and jobs that were running when the server stopped are run again, once: a
job whose second run is interrupted too is failed with the reason, never left "running".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import orjson
from pydantic import ValidationError

from segmentation.api.errors import ServiceBusyError
from segmentation.api.schemas import AnalyzeOptions, AnalyzeRequest, TransactionsSpec
from segmentation.api.work import (
    die_with_parent,
    keep_bounded,
    parse_request,
    run_analysis,
    store_analysis,
)
from segmentation.config import Settings
from segmentation.errors import InvalidInputError, SegmentationError
from segmentation.jobs.files import read_customers
from segmentation.jobs.model import Job, JobStatus, JobTransitionError
from segmentation.jobs.store import OPTIONS_FILE, TRANSACTIONS_FILE, JobStore
from segmentation.rfm import customers_from_transactions
from segmentation.storage.store import AnalysisStore, UnknownAnalysisError

__all__ = ["MAX_ATTEMPTS", "JobCancelledError", "JobRunner", "run_job"]

logger = logging.getLogger(__name__)

# a job interrupted by a server stop runs once more; interrupted again, it fails
MAX_ATTEMPTS = 2
JSON_INPUT = "input.json"
READ_PROGRESS = 0.05  # reading is done; features begin


class JobCancelledError(SegmentationError):
    """Raised inside a worker when its job was cancelled: the analysis is abandoned."""


def _records(frame_or_records: object) -> list[dict[str, object]]:
    """Customers as JSON-ready dicts (missing cells as null) for the response's echo."""
    import pandas as pd

    if isinstance(frame_or_records, pd.DataFrame):
        frame = frame_or_records.astype(object).where(frame_or_records.notna(), None)
        return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
    return list(frame_or_records)  # type: ignore[call-overload]


def run_job(job_id: str, attempt: int, settings: Settings) -> str:
    """Runs in a worker process: read the input, analyse with progress reports, store the
    analysis; returns its id. Raises InvalidInputError for bad input, JobCancelledError when
    the job was cancelled or this attempt is no longer the job's current one."""
    jobs = JobStore(settings.data_dir)
    job = jobs.get(job_id)

    def report(stage: str, fraction: float) -> None:
        if not jobs.report(job_id, attempt, stage, fraction):
            raise JobCancelledError(f"job {job_id} attempt {attempt} stopped during {stage}")

    report("reading", 0.0)
    path = jobs.input_path(job)
    if job.input_name == JSON_INPUT:
        _, request = parse_request(path.read_bytes(), settings, AnalyzeRequest)
        customers: object = request.customerData
        options = request.options
    else:
        options_path = path.parent / OPTIONS_FILE
        options = AnalyzeOptions.model_validate_json(
            options_path.read_bytes() if options_path.exists() else b"{}"
        )
        customers = read_customers(path, path.suffix.lstrip("."))
        spec_path = path.parent / TRANSACTIONS_FILE
        if spec_path.exists():
            spec = TransactionsSpec.model_validate_json(spec_path.read_bytes())
            customers = customers_from_transactions(
                customers, customer_id=spec.customerId, date=spec.date, amount=spec.amount,
                quantity=spec.quantity, price=spec.price, invoice=spec.invoice, as_of=spec.asOf,
            ).customers  # fmt: skip
    report("features", READ_PROGRESS)
    analysis = run_analysis(customers, options, settings.max_fields, progress=report)
    # the echo of every customer is only built when the response carries it
    records = _records(customers) if options.includeCustomers else []
    store = AnalysisStore(settings.data_dir)
    analysis_id, _ = store_analysis(store, analysis, records, options, None)
    keep_bounded(store, settings)
    return analysis_id


class JobRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs = JobStore(settings.data_dir)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        # ids in the queue and not cancelled, plus submissions being written: the bound
        self._waiting: set[str] = set()
        self._reserved = 0
        self._executor = self._new_executor()
        self._consumers: list[asyncio.Task[None]] = []

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: see api/pool.py
        return ProcessPoolExecutor(
            max_workers=self.settings.job_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
        )

    async def start(self) -> None:
        for job in await asyncio.to_thread(self._recover):
            self._waiting.add(job.job_id)
            self._queue.put_nowait(job.job_id)
        self._consumers = [
            asyncio.create_task(self._consume()) for _ in range(self.settings.job_workers)
        ]

    def _recover(self) -> list[Job]:
        """Jobs left queued or running by a stopped server: queued again, or failed."""
        for job in self.jobs.with_status(JobStatus.RUNNING):
            if job.attempts >= MAX_ATTEMPTS:
                self.jobs.transition(
                    job.job_id, JobStatus.FAILED, finished_at=time.time(), stage="failed",
                    error=f"the server stopped during each of {job.attempts} runs of this job; "
                    "submit it again, perhaps with fewer customers",
                )  # fmt: skip
            else:
                self.jobs.transition(job.job_id, JobStatus.QUEUED, stage="queued", progress=0.0)
        return self.jobs.with_status(JobStatus.QUEUED)

    def check_capacity(self) -> None:
        """503 before an upload is even read when the queue is full."""
        waiting = len(self._waiting) + self._reserved
        if waiting >= self.settings.max_queued_jobs:
            raise ServiceBusyError(
                waiting, self.settings.retry_after_seconds, "jobs", "SEGMENTATION_MAX_QUEUED_JOBS"
            )

    @contextlib.asynccontextmanager
    async def reservation(self) -> AsyncIterator[None]:
        """A place in the queue held while an upload arrives: check and hold happen with no
        await in between, so concurrent submissions cannot overshoot the bound."""
        self.check_capacity()
        self._reserved += 1
        try:
            yield
        finally:
            self._reserved -= 1

    async def submit(
        self,
        input_file: Path,
        input_name: str,
        options: bytes | None,
        transactions: bytes | None = None,
    ) -> Job:
        """Queue a received input (call within `reservation`)."""
        job = await asyncio.to_thread(
            self.jobs.create, input_file, input_name, options, transactions
        )
        self._waiting.add(job.job_id)
        self._queue.put_nowait(job.job_id)
        return job

    async def cancel(self, job_id: str) -> Job:
        job = await asyncio.to_thread(
            self.jobs.transition, job_id, JobStatus.CANCELLED, finished_at=time.time(),
            stage="cancelled",
        )  # fmt: skip
        self._waiting.discard(job_id)
        return job

    async def _consume(self) -> None:
        while True:
            job_id = await self._queue.get()
            if job_id not in self._waiting:
                continue  # cancelled while it waited
            self._waiting.discard(job_id)
            try:
                await self._run(job_id)
            except Exception:  # one job's failure must never stop the consumer
                logger.exception("job %s could not be run", job_id)
            finally:
                await asyncio.to_thread(self.jobs.discard_input_if_finished, job_id)

    async def _run(self, job_id: str) -> None:
        jobs = self.jobs
        try:
            job = await asyncio.to_thread(jobs.get, job_id)
            attempt = job.attempts + 1
            await asyncio.to_thread(
                jobs.transition, job_id, JobStatus.RUNNING, started_at=time.time(),
                attempts=attempt, stage="reading", progress=0.0,
            )  # fmt: skip
        except JobTransitionError:
            return  # cancelled while it waited
        executor = self._executor
        finish: dict[str, object] = {"finished_at": None}
        try:
            analysis_id = await asyncio.get_running_loop().run_in_executor(
                executor, run_job, job_id, attempt, self.settings
            )
        except JobCancelledError:
            return  # already marked cancelled by DELETE
        except (InvalidInputError, ValidationError, orjson.JSONDecodeError) as error:
            finish = {"error": f"the input cannot be analysed: {error}"}
        except BrokenProcessPool:
            if self._executor is executor:
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            finish = {
                "error": "the worker process running this job died (killed, or out of memory); "
                "try again, or with fewer customers or fields"
            }
        except Exception as error:  # a bug: the job must still end, with a reason
            logger.exception("job %s failed", job_id)
            finish = {"error": f"internal error ({type(error).__name__}: {error})"}
        else:
            try:
                await asyncio.to_thread(
                    jobs.transition, job_id, JobStatus.SUCCEEDED, finished_at=time.time(),
                    analysis_id=analysis_id, stage="done", progress=1.0,
                )  # fmt: skip
            except JobTransitionError:
                # cancelled while the analysis was being stored: nobody will ask for it
                store = AnalysisStore(self.settings.data_dir)
                with contextlib.suppress(UnknownAnalysisError):
                    await asyncio.to_thread(store.delete, analysis_id)
            return
        with contextlib.suppress(JobTransitionError):
            await asyncio.to_thread(
                jobs.transition, job_id, JobStatus.FAILED, stage="failed",
                **{**finish, "finished_at": time.time()},
            )  # fmt: skip

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.cancel()
        # Workers still running a job are stopped with the server: the job stays "running" in
        # SQLite and is run again at the next start-up (see _recover).
        processes = getattr(self._executor, "_processes", None) or {}
        for process in list(processes.values()):
            process.terminate()
        self._executor.shutdown(wait=False, cancel_futures=True)
