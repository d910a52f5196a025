"""Who may do what: API keys, their scopes and tenants, rate limits, and the audit trail.

With SEGMENTATION_AUTH=keys every API route needs a key (HTTP sends it in `X-API-Key` or
`Authorization: Bearer`; `api/security.py` is the FastAPI side, the CLI's `keys` commands the
operator's). Everything here is plain Python over the data folder's SQLite file:

    api_keys  id, tenant, name, scope, key_hash, created_at, last_used_at, revoked_at
    audit     id, at, key_id, tenant, method, path, status, client, event, target
              (append-only: triggers refuse updates, and deletes of rows under an hour old)

A key reads `seg_<id><secret>`: the 22-character id is public (listings, the audit trail) and
finds the row; the whole key is hashed with SHA-256 (a 256-bit random secret needs no slow
hash) and compared with `hmac.compare_digest`. Only the hash is stored, and no message, log
line or audit row ever holds the key.

Scopes nest: `read` (GET), `write` (read, plus analyses, jobs, scoring, advice, deletes),
`admin` (write, plus keys and the audit trail), all within the key's tenant.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import limits
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from segmentation.config import Settings
from segmentation.errors import (
    AuthenticationError,
    InvalidInputError,
    OtherTenantError,
    Problem,
    RateLimitedError,
    ScopeError,
    SegmentationError,
)
from segmentation.storage.database import ID_PATTERN, check_id, connect, new_id

__all__ = [
    "KEY_PREFIX",
    "Access",
    "ApiKey",
    "AuditEvent",
    "AuditLog",
    "ForeignKeyError",
    "KeyStore",
    "NewKey",
    "RateLimits",
    "Scope",
    "UnknownKeyError",
    "audit_event_of",
    "authorize",
]

KEY_PREFIX = "seg_"
# secrets.token_urlsafe(32): 256 random bits in 43 characters
SECRET_BYTES = 32
KEY_LENGTH = len(KEY_PREFIX) + 22 + 43
# last use is recorded at this resolution: one write per key a minute, not one per request
LAST_USED_RESOLUTION = 60.0
# the audit trail never loses a row younger than this, whatever SEGMENTATION_AUDIT_DAYS says
AUDIT_MIN_AGE_SECONDS = 3600
# how often a server prunes the trail to SEGMENTATION_AUDIT_DAYS
PRUNE_EVERY_SECONDS = 3600.0
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_NAME_LENGTH = 100
# a key's name: any text on one line (no control characters), not only spaces
NAME_PATTERN = re.compile(r"[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant, created_at);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    key_id TEXT,
    tenant TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER,
    client TEXT,
    event TEXT NOT NULL,
    target TEXT
);
CREATE INDEX IF NOT EXISTS audit_tenant_at ON audit (tenant, at);
CREATE TRIGGER IF NOT EXISTS audit_append_only BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_keeps_recent_rows BEFORE DELETE ON audit
WHEN OLD.at > CAST(strftime('%s', 'now') AS REAL) - {AUDIT_MIN_AGE_SECONDS}
BEGIN
    SELECT RAISE(ABORT, 'audit rows younger than an hour cannot be deleted');
END;
"""


class Scope(StrEnum):
    """What a key may do, each scope including the one before."""

    #: GET: stored analyses, their charts, report and assignments, jobs
    READ = "read"
    #: read, plus analyze, jobs, assign, recommendations and deletes
    WRITE = "write"
    #: write, plus the keys and the audit trail of its tenant
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        order = list(Scope)
        return order.index(self) >= order.index(needed)


class UnknownKeyError(SegmentationError):
    """No key has this id (for a tenant: none of its own)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(key_id)
        self.key_id = key_id

    def __str__(self) -> str:
        return f"no API key with id {self.key_id!r}"


class ForeignKeyError(UnknownKeyError, OtherTenantError):
    """The key exists, for another tenant: to the caller it does not."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    tenant: str
    name: str
    scope: Scope
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class NewKey:
    """A key just created: `secret` is the key itself, shown this once and never stored."""

    key: ApiKey
    secret: str


def _digest(presented: str) -> str:
    return hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()


# compared against when the sent key names no stored key, so that both cases cost the same
_NO_KEY_HASH = _digest(KEY_PREFIX + "0" * (KEY_LENGTH - len(KEY_PREFIX)))
_KEY_COLUMNS = "id, tenant, name, scope, created_at, last_used_at, revoked_at"


def _key(row: Sequence[Any]) -> ApiKey:
    key_id, tenant, name, scope, created, used, revoked = row
    return ApiKey(key_id, tenant, name, Scope(scope), created, used, revoked)


def _check_key_fields(tenant: str, name: str, scope: str) -> Scope:
    problems = []
    if not TENANT_PATTERN.fullmatch(tenant):
        problems.append(
            Problem(
                f"{tenant[:70]!r} is not a tenant: 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                field="tenant",
            )
        )
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        problems.append(
            Problem(
                f"must be 1-{MAX_NAME_LENGTH} characters on one line, not only spaces",
                field="name",
            )
        )
    if scope not in tuple(Scope):
        problems.append(Problem(f"{scope[:20]!r} is not read, write or admin", field="scope"))
    if problems:
        raise InvalidInputError(problems)
    return Scope(scope)


class KeyStore:
    """The API keys of one data folder. Every call opens its own short SQLite connection."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.executescript(SCHEMA)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.root)

    def create(self, tenant: str, name: str, scope: str) -> NewKey:
        checked = _check_key_fields(tenant, name, scope)
        key_id = new_id()
        secret = KEY_PREFIX + key_id + secrets.token_urlsafe(SECRET_BYTES)
        now = time.time()
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO api_keys (id, tenant, name, scope, key_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, tenant, name, checked.value, _digest(secret), now),
            )
        return NewKey(ApiKey(key_id, tenant, name, checked, now, None, None), secret)

    def get(self, key_id: str, tenant: str | None = None) -> ApiKey:
        check_id(key_id, "keyId")
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise UnknownKeyError(key_id)
        key = _key(row)
        if tenant is not None and key.tenant != tenant:
            raise ForeignKeyError(key_id)
        return key

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Oldest first; a tenant's own only when `tenant` is given. Never the keys."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE (? IS NULL OR tenant = ?) "
                "ORDER BY created_at, id",
                (tenant, tenant),
            ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str, tenant: str | None = None) -> ApiKey:
        """Revoked at once, for good (a revoked key stays listed); revoking twice is a no-op."""
        self.get(key_id, tenant)
        with self._connect() as connection:
            connection.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
        return self.get(key_id)

    def authenticate(self, presented: str | None) -> ApiKey:
        """The stored key the sent one is; AuthenticationError if none is sent, it matches no
        key, or its key is revoked (the message never holds what was sent)."""
        if not presented:
            raise AuthenticationError(
                "an API key is required: send it in the X-API-Key header or as "
                "Authorization: Bearer <key>"
            )
        key_id = presented[len(KEY_PREFIX) : len(KEY_PREFIX) + 22]
        row = None
        if (
            len(presented) == KEY_LENGTH
            and presented.startswith(KEY_PREFIX)
            and ID_PATTERN.fullmatch(key_id)
        ):
            with self._connect() as connection:
                row = connection.execute(
                    f"SELECT {_KEY_COLUMNS}, key_hash FROM api_keys WHERE id = ?", (key_id,)
                ).fetchone()
        matches = hmac.compare_digest(row[-1] if row else _NO_KEY_HASH, _digest(presented))
        if row is None or not matches:
            # a real key id with a wrong secret: the audit trail names the key it aimed at
            tenant = None if row is None else str(row[1])
            raise AuthenticationError(
                "the API key is not valid", None if row is None else key_id, tenant
            )
        key = _key(row[:-1])
        if key.revoked_at is not None:
            raise AuthenticationError("the API key has been revoked", key.key_id, key.tenant)
        return self._touch(key)

    def _touch(self, key: ApiKey) -> ApiKey:
        now = time.time()
        if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
            return key
        with self._connect() as connection:
            connection.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key.key_id)
            )
        return replace(key, last_used_at=now)


class RateLimits:
    """Per key, in a moving window (the `limits` package): every request counts against
    `requests`; analyses and jobs against `analyses` as well."""

    def __init__(self, requests: str, analyses: str, storage_uri: str = "memory://") -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._rules = {
            "requests": ("SEGMENTATION_RATE_LIMIT", limits.parse_many(requests)),
            "analyses": ("SEGMENTATION_RATE_LIMIT_ANALYZE", limits.parse_many(analyses)),
        }

    def hit(self, key_id: str, analysis: bool = False) -> None:
        """Count one request of the key; RateLimitedError (with Retry-After) beyond a limit."""
        for name in ("requests", "analyses") if analysis else ("requests",):
            setting, items = self._rules[name]
            for item in items:
                if not self._limiter.hit(item, name, key_id):
                    reset = self._limiter.get_window_stats(item, name, key_id).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    raise RateLimitedError(str(item), setting, wait)


def authorize(key: ApiKey, needed: Scope) -> None:
    if not key.scope.allows(needed):
        raise ScopeError(needed.value, key.scope.value)


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit trail. `event`: what happened (see `audit_event_of`, and
    key.created / key.revoked); `target`: the key created or revoked. Never a key, never
    customer data: the path has no query string."""

    at: float
    key_id: str | None
    tenant: str | None
    method: str
    path: str
    status: int | None
    client: str | None
    event: str
    target: str | None = None
    event_id: int | None = None


# the methods that read; every other one, authenticated, is recorded
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def audit_event_of(method: str, status: int, authenticated: bool, other_tenant: bool) -> str | None:
    """What an HTTP exchange is in the audit trail, or None when it is not recorded: every
    denial (401, 403, 429, and a 404 for an id of another tenant), and every authenticated
    request that can change something (any method but GET, HEAD and OPTIONS)."""
    if status == 401:
        return "denied.unauthenticated"
    if status == 403:
        return "denied.scope"
    if status == 429:
        return "denied.rate-limit"
    if status == 404 and other_tenant:
        return "denied.other-tenant"
    if authenticated and method.upper() not in READING_METHODS:
        return "write"
    return None


_AUDIT_COLUMNS = "at, key_id, tenant, method, path, status, client, event, target, id"


class AuditLog:
    """The append-only audit trail of one data folder, pruned to `days` of history."""

    def __init__(self, data_dir: Path, days: int = 90) -> None:
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.days = days
        with self._connect() as connection:
            connection.executescript(SCHEMA)
        self.prune()  # then at most once an hour, as rows are added

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return connect(self.root)

    def record(self, event: AuditEvent) -> None:
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO audit (at, key_id, tenant, method, path, status, client, event, "
                "target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.at, event.key_id, event.tenant, event.method, event.path[:2000],
                    event.status, event.client, event.event, event.target,
                ),
            )  # fmt: skip
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self.prune()

    _pruned_at = -math.inf

    def prune(self) -> int:
        """Delete the rows older than `days`; returns how many."""
        self._pruned_at = time.monotonic()
        cutoff = time.time() - self.days * 86400
        with self._connect() as connection:
            return connection.execute("DELETE FROM audit WHERE at < ?", (cutoff,)).rowcount

    def read(
        self, tenant: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """Newest first, from `since` (seconds since the epoch) on; a tenant's only when
        `tenant` is given (the rows of keys that matched no key belong to no tenant)."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE (? IS NULL OR tenant = ?) "
                "AND at >= ? ORDER BY id DESC LIMIT ?",
                (tenant, tenant, -math.inf if since is None else since, limit),
            ).fetchall()
        return [AuditEvent(*row) for row in rows]


@dataclass(frozen=True)
class Access:
    """The keys, limits and audit trail of a server with SEGMENTATION_AUTH=keys; built once,
    in the app's lifespan."""

    keys: KeyStore
    limits: RateLimits
    audit: AuditLog

    @classmethod
    def of(cls, settings: Settings) -> Access:
        return cls(
            KeyStore(settings.data_dir),
            RateLimits(
                settings.rate_limit, settings.rate_limit_analyze, settings.rate_limit_storage
            ),
            AuditLog(settings.data_dir, settings.audit_days),
        )
