"""`POST /api/jobs` with `"engine": "spark"` on a real uvicorn: refused (422 naming the
setting) without SEGMENTATION_SPARK_MASTER; with it, analysed on Spark in the job worker and
stored like any other analysis (charts, report, recommendations, assign, assignments)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from segmentation.synthetic import make_population
from tests.e2e.conftest import SERVER_ENV, _serve, assert_error

pytest.importorskip("pyspark", reason="pip install -e '.[spark]'")
pytestmark = pytest.mark.spark
JOB_TIMEOUT = 300


@pytest.fixture(scope="module")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**SERVER_ENV, "SEGMENTATION_SPARK_MASTER": "local[1]"}
    yield from _serve(env, tmp_path_factory.mktemp("spark-server"))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server without SEGMENTATION_SPARK_MASTER."""
    yield from _serve(SERVER_ENV, tmp_path_factory.mktemp("plain-server"))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = tmp_path_factory.mktemp("spark-source")
    population = make_population(3_000, 3, random_state=8)
    population.frame.to_parquet(folder / "customers.parquet", index=False)
    return folder / "customers.parquet", population


def _finished(base_url: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        job: dict[str, Any] = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=30).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_without_the_setting_a_spark_job_is_refused(base_url: str, source: tuple) -> None:
    response = httpx.post(
        f"{base_url}/api/jobs", json={"source": str(source[0]), "engine": "spark"}, timeout=60
    )
    assert_error(response, 422, field="engine", mentions=["SEGMENTATION_SPARK_MASTER"])


def test_a_spark_job_is_stored_like_any_analysis(spark_server: str, source: tuple) -> None:
    path, population = source
    response = httpx.post(
        f"{spark_server}/api/jobs",
        json={"source": str(path), "engine": "spark", "options": {"nClusters": 3}},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job = _finished(spark_server, response.json()["jobId"])
    assert job["status"] == "succeeded", job
    result = httpx.get(f"{spark_server}/api/jobs/{job['jobId']}/result", timeout=60).json()
    assert result["engine"] == "spark" and len(result["clusters"]) == 3
    assert sum(c["size"] for c in result["clusters"]) == 3_000
    assert "Spark engine" in result["kSelection"]["method"]
    analysis_id = result["analysisId"]
    base = f"{spark_server}/api/analyses/{analysis_id}"
    chart = httpx.get(f"{base}/charts/profiles.png", timeout=60)
    assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"
    report = httpx.get(f"{base}/report.html", timeout=60)
    assert report.status_code == 200 and result["clusters"][0]["clusterName"] in report.text
    advice = httpx.post(
        f"{spark_server}/api/recommendations", json={"analysisId": analysis_id}, timeout=60
    )
    assert advice.status_code == 200 and advice.json()["recommendations"]
    rows = httpx.get(f"{base}/assignments?format=csv", timeout=60).text.strip().splitlines()
    assert len(rows) == 3_001
    scored = httpx.post(
        f"{base}/assign", json={"customerData": population.records()[:50]}, timeout=60
    )
    assert scored.status_code == 200 and len(scored.json()["assignments"]) == 50
    # a refit of the same customers follows the stored analysis: every segment survives
    refit = httpx.post(
        f"{spark_server}/api/jobs",
        json={"source": str(path), "engine": "spark",
              "options": {"nClusters": 3, "previousAnalysisId": analysis_id}},
        timeout=60,
    )  # fmt: skip
    assert refit.status_code == 202, refit.text
    job = _finished(spark_server, refit.json()["jobId"])
    assert job["status"] == "succeeded", job
    again = httpx.get(f"{spark_server}/api/jobs/{job['jobId']}/result", timeout=60).json()
    lineage = again["lineage"]
    assert lineage["previousAnalysisId"] == analysis_id and lineage["matchedBy"] == "customers"
    assert {e["event"] for e in lineage["segments"]} == {"survived"}
    before = {c["clusterId"]: c["clusterName"] for c in result["clusters"]}
    assert {c["clusterId"]: c["clusterName"] for c in again["clusters"]} == before


def test_a_spark_job_with_a_missing_source_fails_in_words(spark_server: str, tmp_path) -> None:
    response = httpx.post(
        f"{spark_server}/api/jobs",
        json={"source": str(tmp_path / "nothing.parquet"), "engine": "spark"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job = _finished(spark_server, response.json()["jobId"])
    assert job["status"] == "failed"
    assert "no such file or directory" in job["error"]
