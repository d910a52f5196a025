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
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from segmentation.errors import (
    InvalidInputError,
    SegmentationError,
    ServiceBusyError,
    WorkerDiedError,
)
from segmentation.files import read_customer_file
from segmentation.jobs.model import Job, JobStatus, JobTransitionError
from segmentation.jobs.store import OPTIONS_FILE, TRANSACTIONS_FILE, JobStore
from segmentation.options import AnalysisOptions
from segmentation.rfm import TransactionColumns
from segmentation.serialize import parse_json
from segmentation.service import (
    SegmentationService,
    read_analyze_request,
    read_spark_job,
)
from segmentation.storage.store import UnknownAnalysisError
from segmentation.workers import ProcessPool, warm_up

__all__ = ["MAX_ATTEMPTS", "JobCancelledError", "JobRunner", "run_job"]

logger = logging.getLogger(__name__)

# a job interrupted by a server stop runs once more; interrupted again, it fails
MAX_ATTEMPTS = 2
JSON_INPUT = "input.json"
SPARK_INPUT = "source.json"  # a Spark job's body: the source it names and its options
READ_PROGRESS = 0.05  # reading is done; features begin


class JobCancelledError(SegmentationError):
    """Raised inside a worker when its job was cancelled: the analysis is abandoned."""


def _read_input(
    jobs: JobStore, job: Job, max_customers: int
) -> tuple[Any, AnalysisOptions, tuple[str, ...]]:
    """The job's customers, options and what reading a file noted: the JSON body, or a file
    (its orders turned into one row per customer when a transactions spec came with it)."""
    path = jobs.input_path(job)
    if job.input_name == JSON_INPUT:
        request = read_analyze_request(parse_json(path.read_bytes()), max_customers)
        return request.customers, request.options, ()
    options_path = path.parent / OPTIONS_FILE
    options = AnalysisOptions.from_wire(
        parse_json(options_path.read_bytes()) if options_path.exists() else None
    )
    read = read_customer_file(path, path.suffix.lstrip("."), header=options.header)
    customers = read.frame
    spec_path = path.parent / TRANSACTIONS_FILE
    if spec_path.exists():
        spec = TransactionColumns.from_wire(parse_json(spec_path.read_bytes()))
        customers = spec.derive(customers).customers
    return customers, options, read.notes


def _run_spark_job(
    path: Path, service: SegmentationService, report: Callable[[str, float], None],
    tenant: str | None,
) -> str:  # fmt: skip
    """A job that names its data for the Spark engine: analysed on the cluster, stored like
    any other analysis (its assignments written by Spark)."""
    request = read_spark_job(parse_json(path.read_bytes()), service.settings.spark_master)
    # the previous analysis it follows is its tenant's, as for any job
    analysis = service.run_spark_analysis(
        request.source, request.options, progress=report, tenant=tenant
    )
    return service.store_analysis(analysis, [], request.options, tenant=tenant)


def run_job(job_id: str, attempt: int, service: SegmentationService) -> str:
    """Runs in a worker process: read the input, analyse with progress reports, store the
    analysis; returns its id. Raises InvalidInputError for bad input, JobCancelledError when
    the job was cancelled or this attempt is no longer the job's current one."""
    jobs = JobStore(service.settings.data_dir)

    def report(stage: str, fraction: float) -> None:
        if not jobs.report(job_id, attempt, stage, fraction):
            raise JobCancelledError(f"job {job_id} attempt {attempt} stopped during {stage}")

    report("reading", 0.0)
    job = jobs.get(job_id)
    if job.input_name == SPARK_INPUT:
        return _run_spark_job(jobs.input_path(job), service, report, job.tenant)
    customers, options, notes = _read_input(jobs, job, service.settings.max_customers)
    report("features", READ_PROGRESS)
    # the job's analysis, and the previous one it follows, are its tenant's
    analysis = service.run_analysis(
        customers, options, progress=report, tenant=job.tenant, input_notes=notes
    )
    return service.store_analysis(analysis, customers, options, tenant=job.tenant)


class JobRunner:
    """The queue and the worker pool of jobs; built once, in the app's lifespan."""

    def __init__(self, service: SegmentationService, jobs: JobStore) -> None:
        self.service = service
        self.settings = service.settings
        self.jobs = jobs
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        # ids in the queue and not cancelled, plus submissions being written: the bound
        self._waiting: set[str] = set()
        self._reserved = 0
        # the queue bounds the backlog; the pool itself never refuses one of its consumers
        workers = self.settings.job_workers
        # warmed up like the analysis workers: a first job would otherwise pay the imports and
        # first calls of the ML stack (measured: 2 s of a 1,000,000-customer job); large
        # freed blocks go back to the system at once (a job's peak is a million customers)
        self._pool = ProcessPool(
            workers, workers, self.settings.retry_after_seconds,
            functools.partial(warm_up, large_jobs=True),
        )  # fmt: skip
        self._consumers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._pool.start()
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
        tenant: str | None = None,
    ) -> Job:
        """Queue a received input (call within `reservation`) as the tenant's job."""
        job = await asyncio.to_thread(
            self.jobs.create, input_file, input_name, options, transactions, tenant
        )
        self._waiting.add(job.job_id)
        self._queue.put_nowait(job.job_id)
        return job

    async def cancel(self, job_id: str, tenant: str | None = None) -> Job:
        await asyncio.to_thread(self.jobs.get, job_id, tenant)  # another tenant's: unknown
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
        finish: dict[str, object] = {"finished_at": None}
        try:
            analysis_id = await self._pool.run(run_job, job_id, attempt, self.service)
        except JobCancelledError:
            return  # already marked cancelled by DELETE
        except (InvalidInputError, UnknownAnalysisError) as error:
            # an unknown previousAnalysisId, or another tenant's: the same words for both
            finish = {"error": f"the input cannot be analysed: {error}"}
        except WorkerDiedError:
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
                with contextlib.suppress(UnknownAnalysisError):
                    await asyncio.to_thread(self.service.store.delete, analysis_id)
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
        self._pool.terminate()
