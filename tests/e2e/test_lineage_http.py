"""Segments that persist across refits, through HTTP on a real server: `previousAnalysisId`
on /api/analyze and /api/jobs, the `lineage` response, the lineage chain, the migration chart,
the report and the advice.

Month 1 and month 2 of one customer base with known truth (`make_refit`): 10% of the staying
customers change persona, one persona vanishes, one appears, 5% leave and 5% join.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pytest

from segmentation.synthetic import Refit, make_population, make_refit
from tests.e2e.conftest import analyze, analyze_ok, assert_error

SEEDS = (21, 22, 23)


def _segment_of(payload: dict[str, Any], truth: np.ndarray, persona: int) -> int:
    """The clusterId holding most of a persona's customers (customerScores are in row order)."""
    labels = np.array([row["clusterId"] for row in payload["customerScores"]])
    ids, counts = np.unique(labels[truth == persona], return_counts=True)
    return int(ids[counts.argmax()])


@pytest.fixture(scope="module")
def refits(base_url: str) -> list[tuple[Refit, dict[str, Any], dict[str, Any]]]:
    runs = []
    for seed in SEEDS:
        refit = make_refit(1500, 4, random_state=seed)
        options = {"nClusters": 4, "includeCustomers": False, "includeCustomerScores": True}
        first = analyze_ok(base_url, refit.first.records(), **options)
        second = analyze_ok(
            base_url, refit.second.records(), previousAnalysisId=first["analysisId"], **options
        )
        runs.append((refit, first, second))
    return runs


def test_survivors_keep_id_and_name_vanished_disappears_new_emerges(refits: list) -> None:
    kept = total = 0
    for refit, first, second in refits:
        lineage = second["lineage"]
        assert lineage["previousAnalysisId"] == first["analysisId"]
        assert lineage["matchedBy"] == "customers"
        names = {c["clusterId"]: c["clusterName"] for c in second["clusters"]}
        before = {c["clusterId"]: c["clusterName"] for c in first["clusters"]}
        for persona in range(refit.vanished):
            was = _segment_of(first, refit.first.labels, persona)
            now = _segment_of(second, refit.second.labels, persona)
            total += 1
            kept += was == now and names[now] == before[was]
        events = {(r["previousClusterId"], r["clusterId"]): r["event"] for r in lineage["segments"]}
        vanished = _segment_of(first, refit.first.labels, refit.vanished)
        emerged = _segment_of(second, refit.second.labels, refit.emerged)
        assert events[(vanished, None)] == "disappeared"
        assert events[(None, emerged)] == "emerged"
        assert emerged not in before
        # one row per current segment and per previous one
        assert {r["clusterId"] for r in lineage["segments"]} - {None} == set(names)
        assert {r["previousClusterId"] for r in lineage["segments"]} - {None} == set(before)
        sizes = [c["size"] for c in second["clusters"]]
        assert sizes == sorted(sizes, reverse=True)
    assert kept / total >= 0.95, f"{kept} of {total}"


def test_moved_transitions_and_previous_cluster_ids(refits: list) -> None:
    for refit, first, second in refits:
        lineage = second["lineage"]
        assert abs(lineage["moved"] / lineage["customersCompared"] - refit.moved) <= 0.02
        flows = lineage["transitions"]
        n_first, n_second = len(first["customerScores"]), len(second["customerScores"])
        assert (
            sum(t["customers"] for t in flows) == n_first + n_second - lineage["customersCompared"]
        )
        # previousClusterId per customer agrees with the first month's segment of that id
        then = {row["id"]: row["clusterId"] for row in first["customerScores"]}
        pairs = Counter()
        for row in second["customerScores"]:
            assert row["previousClusterId"] == then.get(row["id"])
            pairs[(row["previousClusterId"], row["clusterId"])] += 1
        assert all(
            pairs[(t["from"], t["to"])] == t["customers"] for t in flows if t["to"] is not None
        )
        assert sum(n for (a, b), n in pairs.items() if a is not None and a != b) == lineage["moved"]
        fields = {d["field"] for d in lineage["drift"]}
        assert {"age", "income", "purchases", "region"} <= fields
        assert all(d["psi"] >= 0 for d in lineage["drift"])


def test_identical_refit_and_shuffled_rows(base_url: str) -> None:
    records = make_population(1200, 4, random_state=31, spread=0.6).records()
    first = analyze_ok(base_url, records, includeCustomers=False)
    again = analyze_ok(
        base_url, records, includeCustomers=False, previousAnalysisId=first["analysisId"]
    )
    assert again["lineage"]["moved"] == 0
    assert {r["event"] for r in again["lineage"]["segments"]} == {"survived"}
    assert [c["clusterId"] for c in again["clusters"]] == [
        c["clusterId"] for c in first["clusters"]
    ]
    assert [c["clusterName"] for c in again["clusters"]] == [
        c["clusterName"] for c in first["clusters"]
    ]
    shuffled = [records[i] for i in np.random.default_rng(4).permutation(len(records))]
    moved = analyze_ok(
        base_url, shuffled, includeCustomers=False, previousAnalysisId=first["analysisId"]
    )
    assert {(c["clusterId"], c["clusterName"]) for c in moved["clusters"]} == {
        (c["clusterId"], c["clusterName"]) for c in first["clusters"]
    }


def test_a_chain_of_three_keeps_ids_and_is_listed(base_url: str, refits: list) -> None:
    refit, first, second = refits[0]
    third = analyze_ok(
        base_url, refit.second.records(), nClusters=4, includeCustomers=False,
        previousAnalysisId=second["analysisId"],
    )  # fmt: skip
    assert [c["clusterId"] for c in third["clusters"]] == [
        c["clusterId"] for c in second["clusters"]
    ]
    assert third["lineage"]["nextClusterId"] == second["lineage"]["nextClusterId"]
    chain = httpx.get(f"{base_url}/api/analyses/{third['analysisId']}/lineage", timeout=30)
    assert chain.status_code == 200, chain.text
    links = chain.json()["chain"]
    assert [link["analysisId"] for link in links] == [
        third["analysisId"], second["analysisId"], first["analysisId"],
    ]  # fmt: skip
    assert links[0]["createdAt"] >= links[1]["createdAt"] >= links[2]["createdAt"]
    assert links[2]["previousAnalysisId"] is None and links[2]["events"] is None
    assert links[1]["events"]["disappeared"] >= 1 and links[1]["events"]["emerged"] >= 1
    assert [(s["clusterId"], s["clusterName"], s["size"]) for s in links[1]["segments"]] == [
        (c["clusterId"], c["clusterName"], c["size"]) for c in second["clusters"]
    ]
    assert chain.json()["missingAnalysisId"] is None


def test_a_new_cohort_matches_by_centroids(base_url: str) -> None:
    first = analyze_ok(base_url, make_population(1000, 3, random_state=41, spread=0.6).records(),
                       nClusters=3, includeCustomers=False)  # fmt: skip
    cohort = make_population(900, 3, random_state=41, spread=0.6).records()
    for row in cohort:
        row["id"] = f"new-{row['id']}"
    second = analyze_ok(base_url, cohort, nClusters=3, includeCustomers=False,
                        previousAnalysisId=first["analysisId"])  # fmt: skip
    lineage = second["lineage"]
    assert lineage["matchedBy"] == "centroids" and lineage["customersCompared"] == 0
    assert all(r["event"] == "survived" and r["distance"] >= 0 for r in lineage["segments"])
    assert {c["clusterName"] for c in second["clusters"]} == {
        c["clusterName"] for c in first["clusters"]
    }


def test_previous_errors(base_url: str) -> None:
    records = make_population(200, 3, random_state=5).records()
    unknown = analyze(base_url, records, previousAnalysisId="A" * 22)
    assert_error(unknown, 404, mentions=["AAAAAAAAAAAAAAAAAAAAAA"])
    job = httpx.post(
        f"{base_url}/api/jobs",
        json={"customerData": records, "options": {"previousAnalysisId": "A" * 22}},
        timeout=60,
    )  # a 404 at submission, not a job that fails later
    assert_error(job, 404, mentions=["AAAAAAAAAAAAAAAAAAAAAA"])
    malformed = analyze(base_url, records, previousAnalysisId="../etc")
    assert_error(malformed, 422, field="previousAnalysisId")
    first = analyze_ok(base_url, records, includeCustomers=False)
    other = [{"tenure": i % 13, "visits": (i * 7) % 11} for i in range(200)]
    unrelated = analyze(base_url, other, previousAnalysisId=first["analysisId"])
    assert_error(unrelated, 422, field="previousAnalysisId", mentions=["shares no field"])
    # the migration chart exists only for a refit
    missing = httpx.get(f"{base_url}/api/analyses/{first['analysisId']}/charts/migration.png")
    assert_error(missing, 404, mentions=["no previous analysis"])
    assert "lineage" not in first


def test_migration_chart_report_and_advice(base_url: str, refits: list) -> None:
    _, _, second = refits[1]
    analysis_id = second["analysisId"]
    png = httpx.get(f"{base_url}/api/analyses/{analysis_id}/charts/migration.png", timeout=60)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    svg = httpx.get(f"{base_url}/api/analyses/{analysis_id}/charts/migration.svg", timeout=60)
    assert svg.status_code == 200 and b"<svg" in svg.content
    for cluster in second["clusters"]:
        assert cluster["clusterName"].encode() in svg.content.replace(b"&amp;", b"&")
    report = httpx.get(f"{base_url}/api/analyses/{analysis_id}/report.html", timeout=60).text
    assert "What changed" in report and "customers in both" in report
    advice = httpx.post(
        f"{base_url}/api/recommendations", json={"analysisId": analysis_id}, timeout=60
    ).json()["recommendations"]
    gone = next(r["previousClusterName"] for r in second["lineage"]["segments"]
                if r["event"] == "disappeared")  # fmt: skip
    assert any(f'"{gone}" segment disappeared' in text for text in advice)
    assert any(text.startswith("A new segment emerged") for text in advice)


def test_a_job_follows_its_previous_analysis(base_url: str, refits: list) -> None:
    refit, first, _ = refits[2]
    response = httpx.post(
        f"{base_url}/api/jobs",
        json={"customerData": refit.second.records(),
              "options": {"nClusters": 4, "previousAnalysisId": first["analysisId"]}},
        timeout=120,
    )  # fmt: skip
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    deadline = time.monotonic() + 180
    while (job := httpx.get(f"{base_url}/api/jobs/{job_id}").json())["status"] not in (
        "succeeded", "failed", "cancelled",
    ):  # fmt: skip
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    result = httpx.get(f"{base_url}/api/jobs/{job_id}/result", timeout=60).json()
    assert result["lineage"]["previousAnalysisId"] == first["analysisId"]
    assert {r["event"] for r in result["lineage"]["segments"]} >= {"survived", "emerged"}


def test_deleting_an_ancestor_cuts_the_chain(base_url: str) -> None:
    records = make_population(300, 3, random_state=8).records()
    first = analyze_ok(base_url, records, includeCustomers=False)
    second = analyze_ok(base_url, records, includeCustomers=False,
                        previousAnalysisId=first["analysisId"])  # fmt: skip
    assert httpx.delete(f"{base_url}/api/analyses/{first['analysisId']}").status_code == 204
    chain = httpx.get(f"{base_url}/api/analyses/{second['analysisId']}/lineage").json()
    assert [link["analysisId"] for link in chain["chain"]] == [second["analysisId"]]
    assert chain["missingAnalysisId"] == first["analysisId"]
    gone = httpx.get(f"{base_url}/api/analyses/{first['analysisId']}/lineage")
    assert_error(gone, 404)
