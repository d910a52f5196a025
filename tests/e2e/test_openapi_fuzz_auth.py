"""The OpenAPI document of SEGMENTATION_AUTH=keys against a real server started with it:
schemathesis as in test_openapi_fuzz.py (same checks, same swapping in of real ids), every
request sent with an admin key made by `segmentation keys create`, so that the keys and audit
routes are fuzzed too and every other operation runs as it does for a tenant.

The limits are set out of reach (the point is the document, not 429); tests/e2e/test_auth_http.py
checks 401, 403 and 429 themselves. Fewer examples per operation than the suite without keys,
which already fuzzes the shared operations at length.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from segmentation.api.app import create_app
from segmentation.config import Settings
from tests.e2e.conftest import MAX_BODY_BYTES, REQUEST_TIMEOUT, _serve
from tests.e2e.test_auth_http import cli_key
from tests.e2e.test_openapi_fuzz import (
    CHECKS,
    RealIds,
    _finished_job,
    _stored_analysis,
    _swap_in_real_ids,
)

FUZZ_SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = 15 * FUZZ_SCALE
COSTLY_EXAMPLES = 6 * FUZZ_SCALE
SEED = 20261202
DOCUMENT = create_app(Settings(auth="keys", data_dir=Path("/nonexistent/never-created"))).openapi()
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
SENT: Counter[str] = Counter()


@dataclass(frozen=True)
class KeyedServer:
    base_url: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    log_dir = tmp_path_factory.mktemp("fuzz-auth-server")
    env = {
        "SEGMENTATION_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "SEGMENTATION_WORKERS": "2",
        "SEGMENTATION_AUTH": "keys",
        "SEGMENTATION_DATA_DIR": str(log_dir / "data"),
        "SEGMENTATION_RATE_LIMIT": "1000000/minute",
        "SEGMENTATION_RATE_LIMIT_ANALYZE": "1000000/minute",
    }
    key = cli_key(log_dir / "data", "fuzz", "schemathesis", "admin")
    for base_url in _serve(env, log_dir):
        yield KeyedServer(base_url, key)


@pytest.fixture(scope="module")
def real_ids(keyed: KeyedServer) -> RealIds:
    with httpx.Client(
        base_url=keyed.base_url, headers=keyed.headers, timeout=REQUEST_TIMEOUT
    ) as client:
        return RealIds(
            analysis=_stored_analysis(client, 0),
            deletable_analysis=_stored_analysis(client, 1),
            job=_finished_job(client),
        )


def test_the_document_fuzzed_is_the_one_served(keyed: KeyedServer) -> None:
    served = httpx.get(f"{keyed.base_url}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert served.status_code == 200
    assert served.json() == DOCUMENT
    assert "securitySchemes" in DOCUMENT["components"]


@schema.parametrize()
def test_the_keyed_server_answers_as_its_openapi_document_says(
    case: Case, keyed: KeyedServer, real_ids: RealIds
) -> None:
    SENT[case.operation.label] += 1
    _swap_in_real_ids(case, real_ids, SENT[case.operation.label])
    response = case.call_and_validate(
        base_url=keyed.base_url, headers=keyed.headers, checks=CHECKS, timeout=REQUEST_TIMEOUT
    )
    # the key was accepted: a refusal here would mean the fuzzing never got past the check
    assert response.status_code not in (401, 403, 429), response.text
    if response.status_code == 405:
        allowed = {m.strip() for m in response.headers.get("allow", [""])[0].split(",")}
        assert allowed == {m.upper() for m in DOCUMENT["paths"][case.path]}, response.headers
    if case.operation.label == "POST /api/jobs" and response.status_code == 202:
        job_id = response.json()["jobId"]
        cancelled = httpx.delete(
            f"{keyed.base_url}/api/jobs/{job_id}", headers=keyed.headers, timeout=REQUEST_TIMEOUT
        )
        assert cancelled.status_code in (200, 409), cancelled.text
