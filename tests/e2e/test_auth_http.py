"""API keys, tenants, rate limits and the audit trail, through HTTP on a real uvicorn started
with SEGMENTATION_AUTH=keys (and the installed `segmentation` script for the operator's side).

Two tenants, acme and globex: their first admin keys come from `segmentation keys create`,
the others from POST /api/keys. Every key created in this module is remembered, and the last
test searches the whole data folder (SQLite file, WAL, analyses) and the server log for them.
A second server with low limits checks 429 and Retry-After.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REQUEST_TIMEOUT, SERVER_ENV, _serve, assert_error, small_customers

SCRIPT = Path(sys.executable).with_name("segmentation")
KEY_PATTERN = re.compile(r"seg_[A-Za-z0-9_-]{65}")
UNKNOWN_ID = "A" * 22
# every key this module creates: none may appear in the data folder or the server log
SECRETS: list[str] = []
JOB_TIMEOUT = 240.0
USER = getpass.getuser()


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), f"{SCRIPT} is missing: pip install -e ."
    env = {**os.environ, "SEGMENTATION_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def cli_key(data_dir: Path, tenant: str, name: str, scope: str) -> str:
    created = cli(data_dir, "keys", "create", "--tenant", tenant, "--name", name, "--scope", scope)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert KEY_PATTERN.fullmatch(key), created.stdout  # stdout holds the key, and only it
    SECRETS.append(key)
    return key


@dataclass(frozen=True)
class AuthServer:
    base_url: str
    data_dir: Path
    log_dir: Path

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["X-API-Key"] = key
        return httpx.request(
            method, self.base_url + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
        )


def _auth_server(
    tmp_path_factory: pytest.TempPathFactory, name: str, **env: str
) -> Iterator[AuthServer]:
    log_dir = tmp_path_factory.mktemp(name)
    data_dir = log_dir / "data"
    server_env = {
        **SERVER_ENV,
        "SEGMENTATION_AUTH": "keys",
        "SEGMENTATION_DATA_DIR": str(data_dir),
        **env,
    }
    for base_url in _serve(server_env, log_dir):
        yield AuthServer(base_url, data_dir, log_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """Cache on (so that it can be seen not to cross tenants); limits out of the way."""
    yield from _auth_server(
        tmp_path_factory, "auth-server", SEGMENTATION_CACHE="true",
        SEGMENTATION_RATE_LIMIT="100000/minute", SEGMENTATION_RATE_LIMIT_ANALYZE="100000/minute",
    )  # fmt: skip


@dataclass(frozen=True)
class Keys:
    acme_admin: str
    acme_write: str
    acme_read: str
    globex_admin: str
    globex_write: str


def _http_key(server: AuthServer, admin: str, name: str, scope: str) -> str:
    response = server.call("POST", "/api/keys", admin, json={"name": name, "scope": scope})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    assert KEY_PATTERN.fullmatch(key)
    SECRETS.append(key)
    return key


@pytest.fixture(scope="module")
def keys(server: AuthServer) -> Keys:
    acme_admin = cli_key(server.data_dir, "acme", "acme operator", "admin")
    globex_admin = cli_key(server.data_dir, "globex", "globex operator", "admin")
    return Keys(
        acme_admin=acme_admin,
        acme_write=_http_key(server, acme_admin, "nightly-job", "write"),
        acme_read=_http_key(server, acme_admin, "dashboard", "read"),
        globex_admin=globex_admin,
        globex_write=_http_key(server, globex_admin, "globex job", "write"),
    )


def key_id(key: str) -> str:
    return key[4:26]


@dataclass(frozen=True)
class AcmeResources:
    analysis_id: str
    job_id: str
    key_id: str


def _analyze(server: AuthServer, key: str, customers: list[dict[str, Any]], **options: Any) -> Any:
    body = {"customerData": customers, "options": {"nClusters": 2, **options}}
    return server.call("POST", "/api/analyze", key, json=body)


def _finished_job(server: AuthServer, key: str) -> str:
    response = server.call(
        "POST", "/api/jobs", key, json={"customerData": small_customers(14), "options": {}}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        job = server.call("GET", f"/api/jobs/{job_id}", key).json()
        if job["status"] not in ("queued", "running"):
            assert job["status"] == "succeeded", job
            return job_id
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {JOB_TIMEOUT} s")


@pytest.fixture(scope="module")
def acme(server: AuthServer, keys: Keys) -> AcmeResources:
    analysis = _analyze(server, keys.acme_write, small_customers(12))
    assert analysis.status_code == 200, analysis.text
    return AcmeResources(
        analysis_id=analysis.json()["analysisId"],
        job_id=_finished_job(server, keys.acme_write),
        key_id=key_id(keys.acme_read),
    )


# --- what stays public -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/openapi.json", "/docs"])
def test_health_and_the_docs_need_no_key(server: AuthServer, path: str) -> None:
    assert server.call("GET", path).status_code == 200


def test_the_served_document_declares_the_key_schemes(server: AuthServer) -> None:
    document = server.call("GET", "/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": schemes["APIKeyHeader"]["description"],
    }  # fmt: skip
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    operation = document["paths"]["/api/analyze"]["post"]
    assert operation["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}]
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "Retry-After" in operation["responses"]["429"]["headers"]


# --- 401 ------------------------------------------------------------------------------------


def _revoked_key(server: AuthServer, keys: Keys) -> str:
    key = _http_key(server, keys.acme_admin, "to be revoked", "read")
    revoked = server.call("DELETE", f"/api/keys/{key_id(key)}", keys.acme_admin)
    assert revoked.status_code == 200 and revoked.json()["revokedAt"] is not None, revoked.text
    return key


@pytest.mark.parametrize(
    ("case", "message"),
    [
        # no key at all
        ("missing", "an API key is required"),
        # not the shape of a key
        ("garbage", "the API key is not valid"),
        # a real key's id with another secret
        ("wrong secret", "the API key is not valid"),
        # the same wrong key as a bearer token
        ("wrong bearer", "the API key is not valid"),
        # a key that worked, revoked
        ("revoked", "the API key has been revoked"),
    ],
)
def test_no_valid_key_is_a_401_with_www_authenticate(
    server: AuthServer, keys: Keys, case: str, message: str
) -> None:
    real = keys.acme_read
    wrong = real[:26] + ("A" if real[26] != "A" else "B") + real[27:]
    headers = {
        "missing": {},
        "garbage": {"X-API-Key": "let-me-in"},
        "wrong secret": {"X-API-Key": wrong},
        "wrong bearer": {"Authorization": f"Bearer {wrong}"},
        "revoked": {"X-API-Key": _revoked_key(server, keys)} if case == "revoked" else {},
    }[case]
    for path in ("/api/analyses", f"/api/analyses/{UNKNOWN_ID}"):
        response = server.call("GET", path, headers=headers)
        body = assert_error(response, 401, mentions=[message])
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
        for sent in headers.values():  # the error never repeats the key
            assert sent.removeprefix("Bearer ") not in body["detail"]


def test_a_key_works_in_either_header(server: AuthServer, keys: Keys) -> None:
    bearer = {"Authorization": f"Bearer {keys.acme_read}"}
    assert server.call("GET", "/api/analyses", headers=bearer).status_code == 200
    assert server.call("GET", "/api/analyses", keys.acme_read).status_code == 200


# --- 403 ------------------------------------------------------------------------------------

# (method, path, body, scope needed); {a} an analysis and {j} a job of acme, {k} a key
WRITE_ROUTES = [
    ("POST", "/api/analyze", {"customerData": small_customers(12)}, "write"),
    ("POST", "/api/recommendations", {"analysisId": "{a}"}, "write"),
    ("POST", "/api/jobs", {"customerData": small_customers(12)}, "write"),
    ("POST", "/api/analyses/{a}/assign", {"customerData": small_customers(2)}, "write"),
    ("DELETE", "/api/analyses/{a}", None, "write"),
    ("DELETE", "/api/jobs/{j}", None, "write"),
    ("POST", "/api/keys", {"name": "x", "scope": "read"}, "admin"),
    ("GET", "/api/keys", None, "admin"),
    ("DELETE", "/api/keys/{k}", None, "admin"),
    ("GET", "/api/audit", None, "admin"),
]


def _fill(template: Any, acme: AcmeResources) -> Any:
    if isinstance(template, str):
        return (
            template.replace("{a}", acme.analysis_id)
            .replace("{j}", acme.job_id)
            .replace("{k}", acme.key_id)
        )
    if isinstance(template, dict):
        return {key: _fill(value, acme) for key, value in template.items()}
    return template


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    WRITE_ROUTES,
    ids=[f"{m} {p}" for m, p, _, _ in WRITE_ROUTES],
)
def test_a_key_without_the_scope_is_a_403_naming_it(
    server: AuthServer, keys: Keys, acme: AcmeResources,
    method: str, path: str, body: Any, scope: str,
) -> None:  # fmt: skip
    callers = [keys.acme_read] + ([keys.acme_write] if scope == "admin" else [])
    for key in callers:
        response = server.call(method, _fill(path, acme), key, json=_fill(body, acme))
        assert_error(response, 403, mentions=[f"'{scope}' scope"])
    # nothing was done: the analysis, the job and the key are still there
    assert (
        server.call("GET", f"/api/analyses/{acme.analysis_id}", keys.acme_read).status_code == 200
    )
    assert server.call("GET", f"/api/jobs/{acme.job_id}", keys.acme_read).json()["status"] == (
        "succeeded"
    )


# --- tenants --------------------------------------------------------------------------------

# every route that names a resource: (method, path, body); another tenant gets exactly the 404
# of an id that does not exist
NAMED_ROUTES = [
    ("GET", "/api/analyses/{a}", None),
    ("GET", "/api/analyses/{a}/charts/sizes.png", None),
    ("GET", "/api/analyses/{a}/report.html", None),
    ("GET", "/api/analyses/{a}/assignments?format=csv", None),
    ("POST", "/api/analyses/{a}/assign", {"customerData": small_customers(3)}),
    ("GET", "/api/analyses/{a}/lineage", None),
    ("POST", "/api/recommendations", {"analysisId": "{a}"}),
    ("POST", "/api/analyze",
     {"customerData": small_customers(12), "options": {"previousAnalysisId": "{a}"}}),
    ("POST", "/api/jobs",
     {"customerData": small_customers(12), "options": {"previousAnalysisId": "{a}"}}),
    ("GET", "/api/jobs/{j}", None),
    ("GET", "/api/jobs/{j}/result", None),
    ("DELETE", "/api/jobs/{j}", None),
    ("DELETE", "/api/analyses/{a}", None),
    ("DELETE", "/api/keys/{k}", None),
]  # fmt: skip


def _unknown(template: Any) -> Any:
    if isinstance(template, str):
        return (
            template.replace("{a}", UNKNOWN_ID)
            .replace("{j}", UNKNOWN_ID)
            .replace("{k}", UNKNOWN_ID)
        )
    if isinstance(template, dict):
        return {key: _unknown(value) for key, value in template.items()}
    return template


@pytest.mark.parametrize(
    ("method", "path", "body"), NAMED_ROUTES, ids=[f"{m} {p}" for m, p, _ in NAMED_ROUTES]
)
def test_another_tenants_resource_is_exactly_an_unknown_one(
    server: AuthServer, keys: Keys, acme: AcmeResources, method: str, path: str, body: Any
) -> None:
    key = keys.globex_admin  # every scope: nothing but the tenant stands in the way
    foreign = server.call(method, _fill(path, acme), key, json=_fill(body, acme))
    unknown = server.call(method, _unknown(path), key, json=_unknown(body))
    assert_error(foreign, 404)
    assert_error(unknown, 404)
    real_id = {"{a}": acme.analysis_id, "{j}": acme.job_id, "{k}": acme.key_id}
    named = next(real_id[mark] for mark in real_id if mark in path or mark in str(body))
    assert foreign.text == unknown.text.replace(UNKNOWN_ID, named)
    assert foreign.headers["content-type"] == unknown.headers["content-type"]
    # and the owner still has it, untouched
    owner = server.call("GET", f"/api/analyses/{acme.analysis_id}", keys.acme_read)
    assert owner.status_code == 200
    assert server.call("GET", f"/api/jobs/{acme.job_id}/result", keys.acme_read).status_code == 200
    listed = server.call("GET", "/api/keys", keys.acme_admin).json()["keys"]
    assert acme.key_id in [k["keyId"] for k in listed if k["revokedAt"] is None]


def test_listings_show_only_the_callers_own(
    server: AuthServer, keys: Keys, acme: AcmeResources
) -> None:
    theirs = _analyze(server, keys.globex_write, small_customers(16))
    assert theirs.status_code == 200, theirs.text
    globex_id = theirs.json()["analysisId"]
    acme_ids, globex_ids = (
        [a["analysisId"] for a in server.call("GET", "/api/analyses?limit=500", key).json()
         ["analyses"]]
        for key in (keys.acme_read, keys.globex_write)
    )  # fmt: skip
    assert acme.analysis_id in acme_ids and globex_id not in acme_ids
    assert globex_id in globex_ids and acme.analysis_id not in globex_ids
    # the job's analysis is its tenant's too
    job = server.call("GET", f"/api/jobs/{acme.job_id}", keys.acme_read).json()
    assert job["analysisId"] in acme_ids and job["analysisId"] not in globex_ids
    for admin, tenant in ((keys.acme_admin, "acme"), (keys.globex_admin, "globex")):
        listed = server.call("GET", "/api/keys", admin)
        assert listed.status_code == 200
        assert {k["tenant"] for k in listed.json()["keys"]} == {tenant}
        assert all("key" not in k for k in listed.json()["keys"])
        assert not any(secret in listed.text for secret in SECRETS)


def test_the_cache_never_answers_one_tenant_with_anothers_analysis(
    server: AuthServer, keys: Keys
) -> None:
    customers = small_customers(18)
    first = _analyze(server, keys.acme_write, customers, randomState=7)
    assert (first.status_code, first.headers["x-cache"]) == (200, "miss"), first.text
    other = _analyze(server, keys.globex_write, customers, randomState=7)
    assert (other.status_code, other.headers["x-cache"]) == (200, "miss"), other.text
    assert other.json()["analysisId"] != first.json()["analysisId"]
    for key, expected in ((keys.acme_write, first), (keys.globex_write, other)):
        again = _analyze(server, key, customers, randomState=7)
        assert again.headers["x-cache"] == "hit"
        assert again.json()["analysisId"] == expected.json()["analysisId"]


def test_a_refit_of_another_tenants_analysis_is_a_404(
    server: AuthServer, keys: Keys, acme: AcmeResources
) -> None:
    own = _analyze(server, keys.acme_write, small_customers(12),
                   previousAnalysisId=acme.analysis_id)  # fmt: skip
    assert own.status_code == 200, own.text
    assert own.json()["lineage"]["previousAnalysisId"] == acme.analysis_id
    foreign = _analyze(server, keys.globex_write, small_customers(12),
                       previousAnalysisId=acme.analysis_id)  # fmt: skip
    assert_error(foreign, 404, mentions=[f"no analysis with id {acme.analysis_id!r}"])


# --- the audit trail ------------------------------------------------------------------------


def _audit(server: AuthServer, admin: str, **params: Any) -> list[dict[str, Any]]:
    response = server.call("GET", "/api/audit", admin, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_the_audit_trail_records_denials_writes_and_key_events(
    server: AuthServer, keys: Keys, acme: AcmeResources
) -> None:
    started = time.time()
    read = key_id(keys.acme_read)
    denied = server.call("DELETE", f"/api/analyses/{acme.analysis_id}", keys.acme_read)
    assert denied.status_code == 403
    probe = server.call("GET", f"/api/analyses/{acme.analysis_id}/report.html", keys.globex_write)
    assert probe.status_code == 404
    unknown_own = server.call("GET", f"/api/analyses/{UNKNOWN_ID}", keys.globex_write)
    assert unknown_own.status_code == 404
    allowed = server.call("GET", f"/api/analyses/{acme.analysis_id}/assignments?format=json",
                          keys.acme_read)  # fmt: skip
    assert allowed.status_code == 200
    created = _http_key(server, keys.acme_admin, "audited", "read")
    revoked = server.call("DELETE", f"/api/keys/{key_id(created)}", keys.acme_admin)
    assert revoked.status_code == 200
    cli_made = cli_key(server.data_dir, "acme", "made by the operator", "read")
    assert cli(server.data_dir, "keys", "revoke", key_id(cli_made)).returncode == 0
    assert server.call("GET", "/api/analyses", cli_made).status_code == 401

    acme_rows = _audit(server, keys.acme_admin, since=started)
    seen = {(r["event"], r["method"], r["path"], r["status"], r["keyId"], r["target"])
            for r in acme_rows}  # fmt: skip
    admin = key_id(keys.acme_admin)
    assert ("denied.scope", "DELETE", f"/api/analyses/{acme.analysis_id}", 403, read, None) in seen
    assert ("key.created", "POST", "/api/keys", 201, admin, key_id(created)) in seen
    assert ("key.revoked", "DELETE", f"/api/keys/{key_id(created)}", 200, admin,
            key_id(created)) in seen  # fmt: skip
    assert ("key.created", "CLI", "segmentation keys create", None, None, key_id(cli_made)) in seen
    assert ("key.revoked", "CLI", "segmentation keys revoke", None, None, key_id(cli_made)) in seen
    assert ("denied.unauthenticated", "GET", "/api/analyses", 401, key_id(cli_made), None) in seen
    # a GET that was allowed is not recorded; the query string never is
    assert not any(r["path"].endswith("/assignments") for r in acme_rows)
    assert all("?" not in r["path"] for r in acme_rows)
    assert {r["tenant"] for r in acme_rows} == {"acme"}
    for row in acme_rows:  # the client's address; the user at the command line
        assert row["client"] == ("127.0.0.1" if row["method"] != "CLI" else "cli:" + USER), row
    # the probe of acme's report is globex's denial, in globex's trail; its own unknown id is
    # no denial
    globex_rows = _audit(server, keys.globex_admin, since=started)
    probes = [r for r in globex_rows if r["event"] == "denied.other-tenant"]
    assert [(r["path"], r["status"], r["keyId"]) for r in probes] == [
        (f"/api/analyses/{acme.analysis_id}/report.html", 404, key_id(keys.globex_write))
    ]
    assert not any(r["path"].endswith(UNKNOWN_ID) for r in globex_rows)
    assert {r["tenant"] for r in globex_rows} == {"globex"}


def test_every_write_and_every_denial_is_recorded(
    server: AuthServer, keys: Keys, acme: AcmeResources
) -> None:
    """Across the whole module so far: each cross-tenant probe, each analysis posted."""
    acme_rows = _audit(server, keys.acme_admin)
    writes = [r for r in acme_rows if r["event"] == "write"]
    assert ("POST", "/api/analyze", 200, key_id(keys.acme_write)) in {
        (r["method"], r["path"], r["status"], r["keyId"]) for r in writes
    }
    assert ("POST", "/api/jobs", 202) in {(r["method"], r["path"], r["status"]) for r in writes}
    globex_probes = {
        (r["method"], r["path"])
        for r in _audit(server, keys.globex_admin)
        if r["event"] == "denied.other-tenant"
    }
    for method, path, _ in NAMED_ROUTES:
        if method == "POST" and "{a}" not in path:  # the id was in the body
            assert (method, path) in globex_probes
        else:
            assert (method, _fill(path, acme).split("?")[0]) in globex_probes
    # the rows of keys that matched nothing belong to no tenant: the operator reads them
    listing = cli(server.data_dir, "audit", "--limit", "1000")
    assert listing.returncode == 0, listing.stderr
    assert "denied.unauthenticated" in listing.stdout


def test_the_audit_trail_is_admin_only_and_bounded(server: AuthServer, keys: Keys) -> None:
    assert_error(server.call("GET", "/api/audit", keys.acme_write), 403, mentions=["'admin'"])
    assert_error(server.call("GET", "/api/audit?limit=0", keys.acme_admin), 422, field="limit")
    assert_error(server.call("GET", "/api/audit?since=-1", keys.acme_admin), 422, field="since")
    future = _audit(server, keys.acme_admin, since=time.time() + 3600)
    assert future == []
    assert len(_audit(server, keys.acme_admin, limit=2)) == 2


# --- the key never appears ------------------------------------------------------------------


def test_no_key_is_stored_or_logged(server: AuthServer, keys: Keys) -> None:
    """Last in the module: every key made above, searched for in every file of the data
    folder (the SQLite file and its WAL included) and in the server's log."""
    assert len(SECRETS) >= 8
    files = [path for path in server.data_dir.rglob("*") if path.is_file()]
    assert any(path.name.startswith("segmentation.sqlite3") for path in files)
    logs = list(server.log_dir.glob("uvicorn-*.log"))
    assert logs
    for path in [*files, *logs]:
        content = path.read_bytes()
        for secret in SECRETS:
            # the whole key, and its secret part (the id before it is public)
            assert secret.encode() not in content, path
            assert secret[26:].encode() not in content, path
    log = b"".join(path.read_bytes() for path in logs)
    assert b"POST /api/keys" in log  # the log is the server's access log, and it was searched


# --- limits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server whose keys may make 5 requests in 10 s, and 2 analyses a minute."""
    yield from _auth_server(
        tmp_path_factory, "limited-server", SEGMENTATION_WORKERS="1",
        SEGMENTATION_RATE_LIMIT="5/10 seconds", SEGMENTATION_RATE_LIMIT_ANALYZE="2/minute",
    )  # fmt: skip


def test_a_burst_over_the_limit_is_a_429_and_service_resumes(limited: AuthServer) -> None:
    key = cli_key(limited.data_dir, "acme", "burst", "read")
    statuses, refused = [], None
    for _ in range(30):
        response = limited.call("GET", "/api/analyses", key)
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused = response
            break
    # the first five are within any window; a sixth within 10 s of the first is not
    assert statuses[:5] == [200] * 5, statuses
    assert refused is not None, statuses
    body = assert_error(refused, 429, mentions=["SEGMENTATION_RATE_LIMIT", "5 per 10 second"])
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 10, refused.headers
    assert key not in body["detail"]
    # other keys have limits of their own
    other = cli_key(limited.data_dir, "acme", "another", "read")
    assert limited.call("GET", "/api/analyses", other).status_code == 200
    time.sleep(retry_after + 0.5)
    assert limited.call("GET", "/api/analyses", key).status_code == 200


def test_analyses_have_a_limit_of_their_own(limited: AuthServer) -> None:
    key = cli_key(limited.data_dir, "acme", "analyses", "admin")
    # a refused body still counts: the limit is checked before the body is read
    for _ in range(2):
        assert limited.call("POST", "/api/analyze", key, json={}).status_code == 422
    refused = limited.call("POST", "/api/jobs", key, json={})
    assert_error(refused, 429, mentions=["SEGMENTATION_RATE_LIMIT_ANALYZE", "2 per 1 minute"])
    assert int(refused.headers["retry-after"]) >= 1
    # other routes still answer within the request limit
    assert limited.call("GET", "/api/analyses", key).status_code == 200
    rows = limited.call("GET", "/api/audit", key).json()["events"]
    assert [(r["event"], r["method"], r["path"], r["status"]) for r in rows[:1]] == [
        ("denied.rate-limit", "POST", "/api/jobs", 429)
    ]
