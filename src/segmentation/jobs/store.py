"""Jobs in the same SQLite file as the analyses; inputs beside it in <data dir>/jobs/<id>/.

Every status change goes through `transition`, which applies `model.TRANSITIONS` inside one
UPDATE (`... WHERE status IN (allowed sources)`): two processes can never both move a job.
A job belongs to the tenant that submitted it: `get(job_id, tenant)` of another tenant's job
raises exactly what an unknown id raises (ForeignJobError is an UnknownJobError).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from segmentation.errors import OtherTenantError, SegmentationError
from segmentation.jobs.model import TRANSITIONS, Job, JobStatus, JobTransitionError
from segmentation.storage.database import check_id, connect, new_id

__all__ = ["OPTIONS_FILE", "TRANSACTIONS_FILE", "ForeignJobError", "JobStore", "UnknownJobError"]

OPTIONS_FILE = "options.json"
TRANSACTIONS_FILE = "transactions.json"

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    progress REAL NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    analysis_id TEXT,
    input_name TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    tenant TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
"""
COLUMNS = (
    "id, status, stage, progress, created_at, started_at, finished_at, error, analysis_id, "
    "input_name, attempts, tenant"
)


class UnknownJobError(SegmentationError):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)  # pickles back from a worker unchanged
        self.job_id = job_id

    def __str__(self) -> str:
        return f"no job with id {self.job_id!r}"


class ForeignJobError(UnknownJobError, OtherTenantError):
    """The job exists, for another tenant: to the caller it does not."""


def _job(row: tuple[Any, ...]) -> Job:
    return Job(row[0], JobStatus(row[1]), *row[2:])


class JobStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.folders = self.root / "jobs"
        self.folders.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.executescript(SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(jobs)")}
            if "tenant" not in columns:  # a data folder from before API keys
                with contextlib.suppress(sqlite3.OperationalError):  # another process did it
                    connection.execute("ALTER TABLE jobs ADD COLUMN tenant TEXT")

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.root)

    def folder(self, job_id: str) -> Path:
        check_id(job_id, "jobId")
        return self.folders / job_id

    def create(
        self,
        input_file: Path,
        input_name: str,
        options: bytes | None = None,
        transactions: bytes | None = None,
        tenant: str | None = None,
    ) -> Job:
        """Move the input in first, then insert the row: a queued job always has its input."""
        job_id = new_id()
        folder = self.folder(job_id)
        folder.mkdir(parents=True)
        if options is not None:
            (folder / OPTIONS_FILE).write_bytes(options)
        if transactions is not None:
            (folder / TRANSACTIONS_FILE).write_bytes(transactions)
        shutil.move(input_file, folder / input_name)
        now = time.time()
        with self._connect() as connection:
            connection.execute(
                f"INSERT INTO jobs ({COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, 0, ?)",
                (job_id, JobStatus.QUEUED.value, "queued", 0.0, now, input_name, tenant),
            )
        return self.get(job_id)

    def get(self, job_id: str, tenant: str | None = None) -> Job:
        """The job; UnknownJobError if there is none (or, for a tenant, none of its own)."""
        self.folder(job_id)  # validates the id's shape
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        if row is None:
            raise UnknownJobError(job_id)
        job = _job(row)
        if tenant is not None and job.tenant != tenant:
            raise ForeignJobError(job_id)
        return job

    def with_status(self, *statuses: JobStatus) -> list[Job]:
        marks = ", ".join("?" for _ in statuses)
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY created_at",
                [s.value for s in statuses],
            ).fetchall()
        return [_job(row) for row in rows]

    def transition(self, job_id: str, wanted: JobStatus, **fields: Any) -> Job:
        """Move a job to `wanted` if the state machine allows it from its current status."""
        sources = [s.value for s, targets in TRANSITIONS.items() if wanted in targets]
        assignments = ", ".join(["status = ?", *(f"{name} = ?" for name in fields)])
        marks = ", ".join("?" for _ in sources)
        with self._connect() as connection:
            cursor = connection.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND status IN ({marks})",
                [wanted.value, *fields.values(), job_id, *sources],
            )
            changed = cursor.rowcount
        if changed == 0:
            current = self.get(job_id)
            raise JobTransitionError(job_id, current.status, wanted)
        return self.get(job_id)

    def report(self, job_id: str, attempt: int, stage: str, progress: float) -> bool:
        """Record the stage a running job is entering. False when the job is no longer running
        this attempt (cancelled, or run again after a restart): the worker must stop."""
        with self._connect() as connection:
            cursor = connection.execute(
                "UPDATE jobs SET stage = ?, progress = ? "
                "WHERE id = ? AND status = ? AND attempts = ?",
                (stage, progress, job_id, JobStatus.RUNNING.value, attempt),
            )
            return cursor.rowcount == 1

    def staging_file(self, suffix: str) -> Path:
        """A fresh path for an upload being received, on the same disk as the jobs."""
        return self.folders / f".upload-{new_id()}{suffix}"

    def input_path(self, job: Job) -> Path:
        return self.folder(job.job_id) / job.input_name

    def discard_input_if_finished(self, job_id: str) -> None:
        """A finished job's input is no longer needed (its analysis is stored): free the disk.
        A job put back in the queue keeps its input for the next run."""
        if self.get(job_id).status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
