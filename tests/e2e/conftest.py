"""End-to-end fixtures: a real `uvicorn main:app` in a subprocess, spoken to over HTTP.

The server runs exactly as the seed's setup says (`uvicorn main:app` from the repository root),
configured through its environment: a 3 MB body limit so that a 413 needs only a few MB, two
workers, and one allowed CORS origin. Nothing here imports the app in-process.

Helpers used by several test modules live here too (tests import them from `tests.e2e.conftest`),
because the e2e suite is a package of its own and has no other shared module.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"

HOST = "127.0.0.1"
MAX_BODY_BYTES = 3_000_000
ALLOWED_ORIGIN = "http://localhost:5173"
SERVER_ENV = {
    "SEGMENTATION_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    "SEGMENTATION_WORKERS": "2",
    "SEGMENTATION_CORS_ORIGINS": ALLOWED_ORIGIN,
    # off, so that "same request, same response" is computed twice, not answered from the store
    "SEGMENTATION_CACHE": "false",
}
# cc_general.csv (8,950 x 18) is about 5 MB of JSON: it needs a server with a larger limit.
LARGE_BODY_ENV = {**SERVER_ENV, "SEGMENTATION_MAX_BODY_BYTES": "32000000"}
# The pool imports the ML stack in every worker before /health answers: a few seconds.
STARTUP_TIMEOUT = 60.0
# Generous: another engineer may be running benchmarks on the same two cores.
REQUEST_TIMEOUT = 180.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """One uvicorn subprocess; `stop` always ends it (terminate, wait, kill)."""

    def __init__(self, env_overrides: Mapping[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        env = {**os.environ, **env_overrides}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "main:app", "--host", HOST, "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_until_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited with {self.process.returncode} before answering /health:\n"
                    + self.log_tail()
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"/health did not answer 200 within {timeout} s:\n" + self.log_tail())

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=15)
        finally:
            self._log.close()


def _serve(env: Mapping[str, str], log_dir: Path) -> Iterator[str]:
    # every server stores its analyses in its own temporary data folder
    env = {"SEGMENTATION_DATA_DIR": str(log_dir / "data"), **env}
    # A free port can be taken between probing and binding: try a fresh one a few times.
    for attempt in range(3):
        server = ServerProcess(env, log_dir / f"uvicorn-{attempt}.log")
        try:
            server.wait_until_healthy()
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
            continue
        try:
            yield server.base_url
        finally:
            server.stop()
        return


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the session's server (3 MB body limit, 2 workers, one CORS origin)."""
    yield from _serve(SERVER_ENV, tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="session")
def cached_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with the cache on, bounded at 3 entries so that eviction can be seen."""
    env = {**SERVER_ENV, "SEGMENTATION_CACHE": "true", "SEGMENTATION_CACHE_MAX_ENTRIES": "3"}
    yield from _serve(env, tmp_path_factory.mktemp("cached-server"))


@pytest.fixture(scope="session")
def large_body_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server, started only when asked for, whose body limit fits cc_general.csv."""
    yield from _serve(LARGE_BODY_ENV, tmp_path_factory.mktemp("large-body-server"))


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    # One client per test: after a 500 uvicorn drops the connection, which must not leak into
    # the next test as a connection reset.
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT) as http:
        yield http


# --- helpers shared by the test modules ------------------------------------------------------


def analyze(base_url: str, customers: Sequence[Any], **options: Any) -> httpx.Response:
    """POST /api/analyze with `{"customerData": customers, "options": options}`."""
    body: dict[str, Any] = {"customerData": list(customers)}
    if options:
        body["options"] = options
    return httpx.post(f"{base_url}/api/analyze", json=body, timeout=REQUEST_TIMEOUT)


def analyze_ok(base_url: str, customers: Sequence[Any], **options: Any) -> dict[str, Any]:
    response = analyze(base_url, customers, **options)
    assert response.status_code == 200, response.text[:2000]
    payload: dict[str, Any] = response.json()
    return payload


def assert_still_serving(base_url: str) -> None:
    """The server answers /health and a small good analysis after whatever came before."""
    health = httpx.get(f"{base_url}/health", timeout=10.0)
    assert health.status_code == 200, health.text
    good = analyze(base_url, small_customers(12), nClusters=2)
    assert good.status_code == 200, good.text[:2000]
    assert sum(c["size"] for c in good.json()["clusters"]) == 12


def small_customers(n: int) -> list[dict[str, Any]]:
    """`n` distinct, well-formed customers in two obvious groups."""
    return [
        {
            "id": i + 1,
            "age": 25 + (i % 5) if i % 2 else 55 + (i % 7),
            "income": 30_000 + 500 * i if i % 2 else 120_000 + 700 * i,
            "purchases": 3 + i % 4,
            "region": ("North", "South", "East")[i % 3],
        }
        for i in range(n)
    ]


def assert_error(
    response: httpx.Response,
    status: int,
    *,
    record: int | None = None,
    field: str | None = None,
    mentions: Sequence[str] = (),
) -> dict[str, Any]:
    """The service's error format, the status, and that it names the record and field at fault.

    `record`: some entry of `errors` has this record index and "record <i>" is in `detail`.
    `field`: some entry's field contains this name (options errors are spelled `nClusters` or
    `options.nClusters`), on the same entry as `record` when both are given, and the name is in
    `detail`. `mentions`: substrings `detail` must contain.
    """
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "errors"}, body
    detail = body["detail"]
    assert isinstance(detail, str) and detail.strip(), body
    assert isinstance(body["errors"], list), body
    for error in body["errors"]:
        assert set(error) == {"record", "field", "message"}, error
        assert error["record"] is None or isinstance(error["record"], int), error
        assert error["field"] is None or isinstance(error["field"], str), error
        assert isinstance(error["message"], str) and error["message"], error
    if record is not None:
        assert f"record {record}" in detail, detail
        assert any(
            e["record"] == record and (field is None or field in (e["field"] or ""))
            for e in body["errors"]
        ), body
    if field is not None:
        assert field in detail, detail
        assert any(field in (e["field"] or "") for e in body["errors"]), body
    for text in mentions:
        assert text in detail, f"{text!r} not in {detail!r}"
    return body


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready customers: NaN becomes None, numpy scalars Python numbers."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{str(k): _plain(v) for k, v in record.items()} for record in records]


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def all_customers(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [customer for cluster in payload["clusters"] for customer in cluster["customers"]]


def field_report(payload: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The `dataQuality.fields` entry of one field."""
    reports = [f for f in payload["dataQuality"]["fields"] if f["field"] == name]
    assert len(reports) == 1, payload["dataQuality"]["fields"]
    report: dict[str, Any] = reports[0]
    return report
