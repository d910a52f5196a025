"""The HTTP layer's own errors, and the HTTP status of every error.

    ServiceError (segmentation.errors)
    └── HttpError
        ├── PayloadTooLargeError    413: the body exceeds SEGMENTATION_MAX_BODY_BYTES
        └── UnsupportedMediaError   415: the body is not JSON

The service's errors map as: ServiceBusyError 503, WorkerDiedError 500, JobNotFinishedError
409. Domain errors from the core map to 422; an unknown analysis, job or key id to 404 (and so
another tenant's); a job move the state machine forbids (cancelling a finished job) to 409.
With SEGMENTATION_AUTH=keys: AuthenticationError 401, ScopeError 403, RateLimitedError 429.
"""

from __future__ import annotations

from typing import Any

from segmentation.auth import UnknownKeyError
from segmentation.errors import (
    AuthenticationError,
    InvalidInputError,
    JobNotFinishedError,
    NotAvailableError,
    RateLimitedError,
    ScopeError,
    SegmentationError,
    ServiceBusyError,
    ServiceError,
    WorkerDiedError,
)
from segmentation.jobs.model import JobTransitionError
from segmentation.jobs.store import UnknownJobError
from segmentation.storage.store import UnknownAnalysisError

__all__ = ["HttpError", "PayloadTooLargeError", "UnsupportedMediaError", "status_of"]


class HttpError(ServiceError):
    """A request the HTTP layer refuses before any work: its body."""


class PayloadTooLargeError(HttpError):
    def __init__(
        self, limit: int, setting: str = "SEGMENTATION_MAX_BODY_BYTES", advice: str | None = None
    ) -> None:
        advice = advice or (
            "send fewer customers per request, or submit a job (POST /api/jobs)"
            if setting == "SEGMENTATION_MAX_BODY_BYTES"
            else "split the customers into several jobs"
        )
        super().__init__(
            f"the request body exceeds the limit of {limit} bytes ({setting}); {advice}"
        )


class UnsupportedMediaError(HttpError):
    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"the body must be JSON (Content-Type: application/json), got {content_type!r}"
        )


STATUS = {
    PayloadTooLargeError: 413,
    UnsupportedMediaError: 415,
    ServiceBusyError: 503,
    WorkerDiedError: 500,
    UnknownAnalysisError: 404,
    NotAvailableError: 404,
    UnknownJobError: 404,
    UnknownKeyError: 404,
    AuthenticationError: 401,
    ScopeError: 403,
    RateLimitedError: 429,
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


DESCRIPTIONS = {
    400: "The request could not be read",
    401: "Missing, wrong or revoked API key",
    403: "The key lacks the scope this route needs",
    404: "No such analysis, job or API key",
    405: "Method not allowed on this path; see Allow",
    409: "The job is not in a state that allows this",
    413: "Body larger than the configured limit",
    415: "Body is not of a supported content type",
    422: "Bad records, fields or options; each problem names its record and field",
    429: "Rate limit reached; see Retry-After",
    500: "Internal error, or the worker process died (it has been replaced; retry)",
    503: "Too much work in progress; see Retry-After",
}


# headers an error response carries, documented with it
HEADERS = {
    401: {"WWW-Authenticate": 'The scheme to authenticate with: Bearer realm="segmentation"'},
    405: {"Allow": "The methods this path serves, comma-separated"},
    429: {"Retry-After": "Seconds to wait before retrying"},
    503: {"Retry-After": "Seconds to wait before retrying"},
}
ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route: each error status with the real error model, as JSON.

    The content is spelled out rather than given as `model`: FastAPI would document a model
    under the route's own media type, so that the errors of an HTML route read as text/html.
    The app publishes `ErrorResponse` among the components.
    """
    return {
        status: {
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
            **(
                {
                    "headers": {
                        name: {"description": text, "schema": {"type": "string"}}
                        for name, text in HEADERS[status].items()
                    }
                }
                if status in HEADERS
                else {}
            ),
        }
        for status in statuses
    }
