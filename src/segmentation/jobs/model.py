"""A job's states and the only transitions allowed between them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["TRANSITIONS", "Job", "JobStatus", "JobTransitionError"]


class JobStatus(StrEnum):
    """Where a job is in its life."""

    #: accepted and waiting for a worker
    QUEUED = "queued"
    #: a worker process is analysing it; `stage` and `progress` move
    RUNNING = "running"
    #: finished; the analysis is stored under `analysisId`
    SUCCEEDED = "succeeded"
    #: stopped by an error; `error` says what to do about it
    FAILED = "failed"
    #: stopped at the caller's request
    CANCELLED = "cancelled"


# Every allowed move, in one place. A server restart may put a running job back in the queue.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class JobTransitionError(Exception):
    """A move the state machine does not allow (cancelling a finished job, say)."""

    def __init__(self, job_id: str, current: JobStatus, wanted: JobStatus) -> None:
        super().__init__(job_id, current, wanted)  # pickles unchanged
        self.job_id, self.current, self.wanted = job_id, current, wanted

    def __str__(self) -> str:
        return f"job {self.job_id} is {self.current.value}; it cannot become {self.wanted.value}"


@dataclass(frozen=True)
class Job:
    job_id: str
    status: JobStatus
    stage: str
    progress: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    analysis_id: str | None
    input_name: str
    attempts: int
    #: the tenant of the key that submitted it (None with SEGMENTATION_AUTH=off)
    tenant: str | None = None
