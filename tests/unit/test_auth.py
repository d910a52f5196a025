"""auth: keys stored as hashes, scopes, rate limits, the append-only audit trail; and tenants
in the stores and the cache key (another tenant's id is exactly an unknown one)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from segmentation import analyze
from segmentation.auth import (
    KEY_PREFIX,
    ApiKey,
    AuditEvent,
    AuditLog,
    ForeignKeyError,
    KeyStore,
    RateLimits,
    Scope,
    UnknownKeyError,
    audit_event_of,
    authorize,
)
from segmentation.config import Settings
from segmentation.errors import (
    AuthenticationError,
    InvalidInputError,
    OtherTenantError,
    RateLimitedError,
    ScopeError,
)
from segmentation.jobs.store import ForeignJobError, JobStore, UnknownJobError
from segmentation.options import AnalysisOptions
from segmentation.service import SegmentationService, cache_key
from segmentation.storage.database import DATABASE
from segmentation.storage.store import AnalysisStore, ForeignAnalysisError, UnknownAnalysisError


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (Scope.READ, Scope.READ, True),
        # read cannot write
        (Scope.READ, Scope.WRITE, False),
        (Scope.WRITE, Scope.READ, True),
        # write cannot manage keys
        (Scope.WRITE, Scope.ADMIN, False),
        # admin includes everything
        (Scope.ADMIN, Scope.WRITE, True),
        (Scope.ADMIN, Scope.ADMIN, True),
    ],
)
def test_scopes_nest(held: Scope, needed: Scope, allowed: bool) -> None:
    assert held.allows(needed) is allowed


def test_a_missing_scope_is_named() -> None:
    key = ApiKey("A" * 22, "acme", "nightly-job", Scope.WRITE, 0.0, None, None)
    with pytest.raises(ScopeError, match=r"needs the 'admin' scope; the key has 'write'"):
        authorize(key, Scope.ADMIN)


def test_only_a_hash_of_the_key_is_stored(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    new = keys.create("acme", "nightly-job", "read")
    assert new.secret.startswith(KEY_PREFIX + new.key.key_id)
    assert len(new.secret) == 69
    assert keys.authenticate(new.secret) == keys.get(new.key.key_id)
    stored = b"".join(path.read_bytes() for path in tmp_path.glob(DATABASE + "*"))
    assert new.key.key_id.encode() in stored  # the id is public
    assert new.secret.encode() not in stored
    assert new.secret[26:].encode() not in stored


def test_the_first_use_is_recorded(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    new = keys.create("acme", "nightly-job", "read")
    assert keys.get(new.key.key_id).last_used_at is None
    before = time.time()
    keys.authenticate(new.secret)
    used = keys.get(new.key.key_id).last_used_at
    assert used is not None and used >= before


@pytest.mark.parametrize(
    ("sent", "message", "names_the_key"),
    [
        # nothing sent
        (None, "an API key is required", False),
        ("", "an API key is required", False),
        # not the shape of a key
        ("let-me-in", "the API key is not valid", False),
        # the shape of a key, but no key has its id
        (KEY_PREFIX + "B" * 65, "the API key is not valid", False),
        # a real key's id, another secret: the audit trail names the key aimed at
        ("wrong secret", "the API key is not valid", True),
    ],
)
def test_a_wrong_key_is_refused_without_repeating_it(
    tmp_path: Path, sent: str | None, message: str, names_the_key: bool
) -> None:
    keys = KeyStore(tmp_path)
    new = keys.create("acme", "nightly-job", "read")
    if sent == "wrong secret":
        sent = new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match=message) as raised:
        keys.authenticate(sent)
    if sent:
        assert sent not in str(raised.value)
    assert (raised.value.key_id == new.key.key_id) is names_the_key
    assert (raised.value.tenant == "acme") is names_the_key


def test_a_revoked_key_is_refused_at_once(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    new = keys.create("acme", "nightly-job", "write")
    keys.revoke(new.key.key_id)
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.authenticate(new.secret)
    # revoking twice changes nothing
    first = keys.get(new.key.key_id).revoked_at
    assert keys.revoke(new.key.key_id).revoked_at == first


def test_another_tenants_key_is_an_unknown_one(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    new = keys.create("acme", "nightly-job", "read")
    with pytest.raises(ForeignKeyError) as foreign:
        keys.revoke(new.key.key_id, tenant="globex")
    with pytest.raises(UnknownKeyError) as unknown:
        keys.revoke("A" * 22, tenant="globex")
    assert str(foreign.value) == str(unknown.value).replace("A" * 22, new.key.key_id)
    assert isinstance(foreign.value, OtherTenantError)
    assert keys.get(new.key.key_id).revoked_at is None
    assert [k.tenant for k in keys.list("globex")] == []
    assert [k.key_id for k in keys.list("acme")] == [new.key.key_id]


@pytest.mark.parametrize(
    ("tenant", "name", "scope", "field"),
    [
        # a space in the tenant
        ("a b", "x", "read", "tenant"),
        # a tenant starting with a dash
        ("-acme", "x", "read", "tenant"),
        # a tenant longer than 64 characters
        ("a" * 65, "x", "read", "tenant"),
        # a blank name
        ("acme", "  ", "read", "name"),
        # a name on two lines
        ("acme", "a\nb", "read", "name"),
        # not one of the scopes
        ("acme", "x", "root", "scope"),
    ],
)
def test_key_fields_are_checked(
    tmp_path: Path, tenant: str, name: str, scope: str, field: str
) -> None:
    with pytest.raises(InvalidInputError, match=f"field '{field}'"):
        KeyStore(tmp_path).create(tenant, name, scope)


def _event(at: float, tenant: str | None = "acme", event: str = "write") -> AuditEvent:
    return AuditEvent(at, "A" * 22, tenant, "POST", "/api/analyze", 200, "127.0.0.1", event)


def test_the_audit_trail_reads_by_tenant_newest_first(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path)
    now = time.time()
    for offset, tenant in ((3, "acme"), (2, "globex"), (1, "acme"), (0, None)):
        audit.record(_event(now - offset, tenant))
    assert [e.at for e in audit.read("acme")] == [now - 1, now - 3]
    assert [e.at for e in audit.read("acme", since=now - 2)] == [now - 1]
    assert len(audit.read()) == 4  # the operator's view: every tenant, and none
    assert len(audit.read(limit=2)) == 2


def test_the_audit_trail_is_append_only(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path)
    audit.record(_event(time.time()))
    connection = sqlite3.connect(tmp_path / DATABASE)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            connection.execute("UPDATE audit SET status = 204")
        with pytest.raises(sqlite3.DatabaseError, match="younger than an hour"):
            connection.execute("DELETE FROM audit")
    finally:
        connection.close()
    assert [e.status for e in audit.read()] == [200]


def test_retention_drops_only_rows_beyond_the_days_kept(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path, days=90)
    now = time.time()
    for days in (91, 89, 100):
        audit.record(_event(now - days * 86400))  # pruned at most once an hour meanwhile
    assert audit.prune() == 2
    assert [round((now - e.at) / 86400) for e in audit.read()] == [89]
    audit.record(_event(now - 95 * 86400))
    AuditLog(tmp_path, days=90)  # a server starting prunes
    assert [round((now - e.at) / 86400) for e in audit.read()] == [89]


@pytest.mark.parametrize(
    ("method", "status", "authenticated", "other_tenant", "event"),
    [
        ("GET", 401, False, False, "denied.unauthenticated"),
        ("DELETE", 403, True, False, "denied.scope"),
        ("GET", 429, True, False, "denied.rate-limit"),
        # an id of another tenant: a denial, though the caller sees an unknown id
        ("GET", 404, True, True, "denied.other-tenant"),
        # an unknown id of one's own: nothing to record
        ("GET", 404, True, False, None),
        # a read that was allowed: not recorded
        ("GET", 200, True, False, None),
        # anything that can change something, whatever its outcome
        ("POST", 200, True, False, "write"),
        ("DELETE", 204, True, False, "write"),
        ("POST", 422, True, False, "write"),
        # without a key nothing is served but /health and the docs
        ("POST", 404, False, False, None),
    ],
)
def test_what_the_audit_trail_records(
    method: str, status: int, authenticated: bool, other_tenant: bool, event: str | None
) -> None:
    assert audit_event_of(method, status, authenticated, other_tenant) == event


def test_rate_limits_per_key_with_retry_after() -> None:
    limits = RateLimits("2/minute", "1/minute")
    limits.hit("a")
    limits.hit("a")
    with pytest.raises(RateLimitedError, match=r"2 per 1 minute.*SEGMENTATION_RATE_LIMIT\)") as e:
        limits.hit("a")
    assert 1 <= e.value.retry_after <= 60
    limits.hit("b", analysis=True)  # another key, another window
    with pytest.raises(RateLimitedError, match="SEGMENTATION_RATE_LIMIT_ANALYZE"):
        limits.hit("b", analysis=True)


# --- tenants in the stores -----------------------------------------------------------------

CUSTOMERS = [
    {"id": i, "income": 30_000 + 900 * i + (80_000 if i >= 10 else 0), "visits": i % 4}
    for i in range(20)
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[AnalysisStore, str]:
    data = tmp_path_factory.mktemp("tenants")
    service = SegmentationService(Settings(data_dir=data))
    options = AnalysisOptions(algorithm="kmeans", n_clusters=2)
    analysis = analyze(CUSTOMERS, options=options)
    analysis_id = service.store_analysis(analysis, CUSTOMERS, options, tenant="acme")
    return service.store, analysis_id


def test_another_tenants_analysis_is_an_unknown_one(stored: tuple[AnalysisStore, str]) -> None:
    store, analysis_id = stored
    assert store.analysis(analysis_id, "acme").n_customers == 20
    assert store.analysis(analysis_id).n_customers == 20  # no tenant: the CLI, auth off
    with pytest.raises(ForeignAnalysisError) as foreign:
        store.open_file(analysis_id, "response.json", "globex")
    with pytest.raises(UnknownAnalysisError) as unknown:
        store.open_file("A" * 22, "response.json", "globex")
    assert str(foreign.value) == str(unknown.value).replace("A" * 22, analysis_id)
    for call in (store.fitted, store.previous, store.summary, store.delete, store.ancestors):
        with pytest.raises(ForeignAnalysisError):
            call(analysis_id, "globex")  # type: ignore[operator]
    assert [a.analysis_id for a in store.list(tenant="acme")] == [analysis_id]
    assert store.list(tenant="globex") == []
    assert [a.tenant for a in store.list()] == ["acme"]


def test_the_cache_key_holds_the_tenant() -> None:
    options = AnalysisOptions()
    plain = cache_key(CUSTOMERS, options)
    assert cache_key(CUSTOMERS, options, None) == plain  # as before tenants
    assert len({plain, cache_key(CUSTOMERS, options, "acme"),
                cache_key(CUSTOMERS, options, "globex")}) == 3  # fmt: skip


def test_the_cache_lookup_matches_the_tenant(tmp_path: Path) -> None:
    service = SegmentationService(Settings(data_dir=tmp_path))
    options = AnalysisOptions(algorithm="kmeans", n_clusters=2)
    analysis = analyze(CUSTOMERS, options=options)
    key = cache_key(CUSTOMERS, options, "acme")
    analysis_id = service.store_analysis(analysis, CUSTOMERS, options, key, tenant="acme")
    assert service.store.cached(key, "acme") == analysis_id
    assert service.store.cached(key, "globex") is None  # even given acme's key


def test_another_tenants_job_is_an_unknown_one(tmp_path: Path) -> None:
    jobs = JobStore(tmp_path)
    upload = tmp_path / "upload.json"
    upload.write_text("{}")
    job = jobs.create(upload, "input.json", tenant="acme")
    assert jobs.get(job.job_id, "acme").tenant == "acme"
    with pytest.raises(ForeignJobError) as foreign:
        jobs.get(job.job_id, "globex")
    with pytest.raises(UnknownJobError) as unknown:
        jobs.get("A" * 22, "globex")
    assert str(foreign.value) == str(unknown.value).replace("A" * 22, job.job_id)


def test_a_data_folder_from_before_tenants_gets_the_columns(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / DATABASE)
    connection.executescript(
        "CREATE TABLE analyses (id TEXT PRIMARY KEY, created_at REAL NOT NULL, last_used_at "
        "REAL NOT NULL, cache_key TEXT, customers INTEGER NOT NULL, segments INTEGER NOT NULL, "
        "algorithm TEXT NOT NULL, accuracy REAL, response_bytes INTEGER NOT NULL);"
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, stage TEXT NOT NULL, "
        "progress REAL NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL, "
        "error TEXT, analysis_id TEXT, input_name TEXT NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO analyses VALUES ('B', 1.0, 1.0, NULL, 20, 2, 'kmeans', 0.9, 10);"
    )
    connection.commit()
    connection.close()
    store = AnalysisStore(tmp_path)
    JobStore(tmp_path)
    with sqlite3.connect(tmp_path / DATABASE) as check:
        for table in ("analyses", "jobs"):
            columns = {row[1] for row in check.execute(f"PRAGMA table_info({table})")}
            assert "tenant" in columns, table
    # what was stored before belongs to no tenant
    assert [a.tenant for a in store.list()] == [None]
    assert store.list(tenant="acme") == []
