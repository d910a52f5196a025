"""The OpenAPI document against the real server: schemathesis generates requests from the
document and checks every answer against what the document says.

The document is the one `uvicorn main:app` serves (the first test checks the two are equal); it
is loaded at import so that each operation is a test of its own. The server is a real
`uvicorn main:app` of this module's own, with a temporary data folder. Before generating, it
stores two analyses and runs one job; every second well-formed id a test draws (in the path, or
`analysisId` in a body) is swapped for an existing one, so that GET, assign, export, charts,
report, result and DELETE run on real resources as well as on unknown (404) and malformed (422)
ids. DELETE of an analysis gets an analysis of its own, so that the one the other operations
read stays.

Generated bodies stay small (a few kB: Hypothesis' draw budget), so each accepted analysis is a
few customers and fits in well under a second; the server keeps its real limits, and every job a
test submits is cancelled at once so that the job worker stays idle.

Deterministic: Hypothesis derandomized, a fixed schemathesis seed, no example database.
`FUZZ_SCALE` multiplies the examples per operation (`make fuzz` runs ten times as many); the
coverage phase (boundary and invalid values of each parameter) runs at every scale.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import SchemathesisConfig

from segmentation.api.app import create_app
from segmentation.storage.database import ID_PATTERN
from tests.e2e.conftest import MAX_BODY_BYTES, REQUEST_TIMEOUT, _serve, small_customers

FUZZ_SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
# generated examples per operation at scale 1, besides the coverage phase's: the module then
# takes about a minute on two cores
EXAMPLES = 40 * FUZZ_SCALE
# each accepted example runs a clustering in a worker process (a second or so): fewer draws
COSTLY_EXAMPLES = 15 * FUZZ_SCALE
SEED = 20260108
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    # a method the document does not list on a path gets 405 with an Allow header (its
    # exact value is checked below)
    unsupported_method,
]
FUZZ_ENV = {
    # the limit of the suite's other servers: a 413 needs only a few MB
    "SEGMENTATION_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    "SEGMENTATION_WORKERS": "2",
}

DOCUMENT = create_app().openapi()
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"deterministic": True, "database": "none", "max-examples": EXAMPLES},
        "operations": [
            {
                "include-path-regex": "^/api/(analyze|jobs)$",
                "include-method": "POST",
                "generation": {"max-examples": COSTLY_EXAMPLES},
            }
        ],
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

# requests sent per operation (which draws get a real id), and the statuses they got
SENT: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}


@dataclass(frozen=True)
class RealIds:
    analysis: str
    deletable_analysis: str
    job: str


def _stored_analysis(client: httpx.Client, random_state: int) -> str:
    body = {"customerData": small_customers(12), "options": {"randomState": random_state}}
    response = client.post("/api/analyze", json=body)
    assert response.status_code == 200, response.text[:2000]
    analysis_id: str = response.json()["analysisId"]
    return analysis_id


def _finished_job(client: httpx.Client) -> str:
    response = client.post("/api/jobs", json={"customerData": small_customers(12)})
    assert response.status_code == 202, response.text[:2000]
    job_id: str = response.json()["jobId"]
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            assert job["status"] == "succeeded", job
            return job_id
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {REQUEST_TIMEOUT} s")


@pytest.fixture(scope="module")
def fuzz_base_url(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    started = time.monotonic()
    yield from _serve(FUZZ_ENV, tmp_path_factory.mktemp("fuzz-server"))
    lines = [
        f"schemathesis, FUZZ_SCALE={FUZZ_SCALE}: {len(SENT)} operations, "
        f"{sum(SENT.values())} requests, {time.monotonic() - started:.0f} s"
    ]
    for label, statuses in sorted(STATUSES.items()):
        counts = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
        lines.append(f"  {label}  {counts}")
    # past pytest's capture: the figures are the point of `make fuzz`
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)


@pytest.fixture(scope="module")
def real_ids(fuzz_base_url: str) -> RealIds:
    with httpx.Client(base_url=fuzz_base_url, timeout=REQUEST_TIMEOUT) as client:
        return RealIds(
            analysis=_stored_analysis(client, 0),
            deletable_analysis=_stored_analysis(client, 1),
            job=_finished_job(client),
        )


def test_the_document_fuzzed_is_the_one_served(fuzz_base_url: str) -> None:
    served = httpx.get(f"{fuzz_base_url}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


def _swap_in_real_ids(case: Case, ids: RealIds, draw: int) -> None:
    """Every second draw of an operation: its well-formed ids replaced by existing ones."""
    if draw % 2:
        return
    deleting = case.method == "DELETE" and case.path == "/api/analyses/{analysisId}"
    analysis = ids.deletable_analysis if deleting else ids.analysis
    path = case.path_parameters or {}
    for name, real in (("analysisId", analysis), ("jobId", ids.job)):
        if isinstance(path.get(name), str) and ID_PATTERN.fullmatch(path[name]):
            path[name] = real
    body = case.body if isinstance(case.body, dict) else {}
    options = body.get("options")
    # /api/recommendations names its analysis in the body, a refit its predecessor in options
    for holder, name in ((body, "analysisId"), (options, "previousAnalysisId")):
        value = holder.get(name) if isinstance(holder, dict) else None
        if isinstance(value, str) and ID_PATTERN.fullmatch(value):
            holder[name] = ids.analysis


@schema.parametrize()
def test_the_server_answers_as_its_openapi_document_says(
    case: Case, fuzz_base_url: str, real_ids: RealIds
) -> None:
    SENT[case.operation.label] += 1
    _swap_in_real_ids(case, real_ids, SENT[case.operation.label])
    response = case.call_and_validate(
        base_url=fuzz_base_url, checks=CHECKS, timeout=REQUEST_TIMEOUT
    )
    STATUSES.setdefault(case.operation.label, Counter())[response.status_code] += 1
    if response.status_code == 405:
        allowed = {m.strip() for m in response.headers.get("allow", [""])[0].split(",")}
        assert allowed == {m.upper() for m in DOCUMENT["paths"][case.path]}, response.headers
    if case.operation.label == "POST /api/jobs" and response.status_code == 202:
        # cancelled at once: the queue (SEGMENTATION_MAX_QUEUED_JOBS) is never full of
        # generated jobs, and the job worker does not compete with the rest of the suite
        job_id = response.json()["jobId"]
        cancelled = httpx.delete(f"{fuzz_base_url}/api/jobs/{job_id}", timeout=REQUEST_TIMEOUT)
        assert cancelled.status_code in (200, 409), cancelled.text
