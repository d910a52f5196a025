"""The errors the segmentation core and its service raise, all in one tree.

    SegmentationError
    └── InvalidInputError          the caller's data or options cannot be segmented (HTTP 422)
        └── InsufficientDataError  well-formed, but too little or too uniform to segment
    ServiceError                   the service, not the caller's data
    ├── ServiceBusyError           every worker is taken and the queue is full (503)
    ├── WorkerDiedError            the worker process died mid-request (500)
    └── JobNotFinishedError        a job's result was asked for before it succeeded (409)

Each problem names the record (0-based position in the input) and the field at fault where
there is one, and carries the offending value in its message. Errors are picklable so that they
cross the boundary of a worker process unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "InsufficientDataError",
    "InvalidInputError",
    "JobNotFinishedError",
    "Problem",
    "SegmentationError",
    "ServiceBusyError",
    "ServiceError",
    "WorkerDiedError",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is and what is wrong."""

    message: str
    record: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class SegmentationError(Exception):
    """Base of every error the core raises on purpose."""


class InvalidInputError(SegmentationError):
    """The input or the options cannot be used; `problems` says where and why.

    Examples
    --------
    >>> error = InvalidInputError([Problem("expected a number, got '75,000'", 3, "income")])
    >>> str(error)
    "record 3, field 'income': expected a number, got '75,000'"
    """

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        shown = "; ".join(str(problem) for problem in self.problems[:5])
        more = len(self.problems) - 5
        return shown + (f"; and {more} more problems" if more > 0 else "")


class InsufficientDataError(InvalidInputError):
    """The input is well formed but cannot be split into segments (too few or identical)."""


class NotAvailableError(SegmentationError):
    """The analysis exists but has no such thing (a migration chart without a previous
    analysis): a 404 that says why."""


class ServiceError(Exception):
    """Base of the errors of the service itself (not of the caller's data)."""


class ServiceBusyError(ServiceError):
    """Refused at once rather than queued without bound; `retry_after` is in seconds."""

    def __init__(
        self,
        pending: int,
        retry_after: int,
        what: str = "analyses",
        setting: str = "SEGMENTATION_MAX_PENDING",
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"{pending} {what} are already running or queued ({setting}); retry in {retry_after} s"
        )


class WorkerDiedError(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            "the worker process running this analysis died (killed or out of memory); "
            "a new worker has been started, so the request can be retried"
        )


class JobNotFinishedError(ServiceError):
    def __init__(self, job_id: str, status: str, error: str | None) -> None:
        reason = f": {error}" if error else ""
        super().__init__(f"job {job_id} is {status}{reason}; it has no result")
