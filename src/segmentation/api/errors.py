"""Errors of the service itself (not of the caller's data), and the HTTP status of every error.

    ServiceError
    ├── PayloadTooLargeError    413: the body exceeds SEGMENTATION_MAX_BODY_BYTES
    ├── UnsupportedMediaError   415: the body is not JSON
    ├── ServiceBusyError        503: SEGMENTATION_MAX_PENDING analyses already running or queued
    ├── WorkerDiedError         500: the worker process died mid-analysis (killed, out of memory)
    └── JobNotFinishedError     409: a job's result was asked for before it succeeded

Domain errors from the core (`segmentation.errors`) map to 422; an unknown analysis or job
id to 404; a job move the state machine forbids (cancelling a finished job) to 409.
"""

from __future__ import annotations

from segmentation.errors import InvalidInputError, SegmentationError
from segmentation.jobs.model import JobTransitionError
from segmentation.jobs.store import UnknownJobError
from segmentation.storage.store import UnknownAnalysisError

__all__ = [
    "JobNotFinishedError",
    "PayloadTooLargeError",
    "ServiceBusyError",
    "ServiceError",
    "UnsupportedMediaError",
    "WorkerDiedError",
    "status_of",
]


class ServiceError(Exception):
    """Base of the errors raised by the service layer."""


class PayloadTooLargeError(ServiceError):
    def __init__(self, limit: int, setting: str = "SEGMENTATION_MAX_BODY_BYTES") -> None:
        advice = (
            "send fewer customers per request, or submit a job (POST /api/jobs)"
            if setting == "SEGMENTATION_MAX_BODY_BYTES"
            else "split the customers into several jobs"
        )
        super().__init__(
            f"the request body exceeds the limit of {limit} bytes ({setting}); {advice}"
        )


class UnsupportedMediaError(ServiceError):
    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"the body must be JSON (Content-Type: application/json), got {content_type!r}"
        )


class ServiceBusyError(ServiceError):
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


STATUS = {
    PayloadTooLargeError: 413,
    UnsupportedMediaError: 415,
    ServiceBusyError: 503,
    WorkerDiedError: 500,
    UnknownAnalysisError: 404,
    UnknownJobError: 404,
    JobNotFinishedError: 409,
    JobTransitionError: 409,
    InvalidInputError: 422,
    SegmentationError: 422,
}


def status_of(error: Exception) -> int:
    """The HTTP status for an error: the most specific class listed in STATUS."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
