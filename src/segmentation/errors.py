"""The errors the segmentation core and its service raise, all in one tree.

    SegmentationError
    ├── InvalidInputError          the caller's data or options cannot be segmented (HTTP 422)
    │   └── InsufficientDataError  well-formed, but too little or too uniform to segment
    └── OtherTenantError           mixed into an unknown-id error when the id is another
                                   tenant's: the same 404, and a denial in the audit trail
    ServiceError                   the service, not the caller's data
    ├── ServiceBusyError           every worker is taken and the queue is full (503)
    ├── WorkerDiedError            the worker process died mid-request (500)
    ├── JobNotFinishedError        a job's result was asked for before it succeeded (409)
    └── AccessError                the caller may not do this (SEGMENTATION_AUTH=keys)
        ├── AuthenticationError    no key, a wrong one or a revoked one (401)
        ├── ScopeError             the key lacks the scope the route needs (403)
        └── RateLimitedError       the key made too many requests (429)

Each problem names the record (0-based position in the input) and the field at fault where
there is one, and carries the offending value in its message. Errors are picklable so that they
cross the boundary of a worker process unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccessError",
    "AuthenticationError",
    "InsufficientDataError",
    "InvalidInputError",
    "JobNotFinishedError",
    "OtherTenantError",
    "Problem",
    "RateLimitedError",
    "ScopeError",
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


class OtherTenantError(SegmentationError):
    """Mixed into the "no such id" errors when the id exists but belongs to another tenant.

    The caller gets exactly the answer an unknown id gets (the message is the unknown id's),
    so that nobody learns what another tenant holds; only the audit trail tells the two apart.
    """


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


class AccessError(ServiceError):
    """The caller may not do this. No message ever holds the key that was sent."""


class AuthenticationError(AccessError):
    """No key, a key that matches none, or a revoked one (401 with WWW-Authenticate).

    `key_id` and `tenant` name the stored key the sent one pointed at, when there is one (a
    wrong secret, a revoked key): the audit trail records them; the message does not."""

    def __init__(self, message: str, key_id: str | None = None, tenant: str | None = None) -> None:
        super().__init__(message, key_id, tenant)  # pickles unchanged
        self.message, self.key_id, self.tenant = message, key_id, tenant

    def __str__(self) -> str:
        return self.message


class ScopeError(AccessError):
    def __init__(self, needed: str, held: str) -> None:
        super().__init__(needed, held)
        self.needed, self.held = needed, held

    def __str__(self) -> str:
        return (
            f"this needs the {self.needed!r} scope; the key has {self.held!r} "
            "(scopes: read < write < admin)"
        )


class RateLimitedError(AccessError):
    """Beyond a key's rate limit; `retry_after` is in seconds (sent as Retry-After)."""

    def __init__(self, limit: str, setting: str, retry_after: int) -> None:
        super().__init__(limit, setting, retry_after)
        self.limit, self.setting, self.retry_after = limit, setting, retry_after

    def __str__(self) -> str:
        return (
            f"the key's limit of {self.limit} is reached ({self.setting}); "
            f"retry in {self.retry_after} s"
        )
