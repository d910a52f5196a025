"""POST /api/recommendations over real HTTP, fed with what /api/analyze returned."""

from __future__ import annotations

import copy
import html
import json
import re
from typing import Any

import httpx
import pytest

from segmentation.synthetic import make_population
from tests.e2e.conftest import REQUEST_TIMEOUT, analyze_ok, assert_error, assert_still_serving

NUMBER = re.compile(r"\d")


def recommend(base_url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{base_url}/api/recommendations", json=body, timeout=REQUEST_TIMEOUT)


def recommend_ok(base_url: str, analysis: dict[str, Any]) -> dict[str, Any]:
    response = recommend(base_url, {"analysis": analysis})
    assert response.status_code == 200, response.text[:2000]
    payload: dict[str, Any] = response.json()
    return payload


@pytest.fixture(scope="module", params=["auto", "dbscan"])
def analysis(request: pytest.FixtureRequest, base_url: str) -> dict[str, Any]:
    """A fresh analysis; dbscan's may carry an "Outliers" segment."""
    customers = make_population(600, 4, random_state=11).records()
    return analyze_ok(base_url, customers, algorithm=request.param)


def _without(analysis: dict[str, Any], *keys: str, only: int | None = None) -> dict[str, Any]:
    stripped = copy.deepcopy(analysis)
    for index, cluster in enumerate(stripped["clusters"]):
        if only is None or index == only:
            for key in keys:
                cluster.pop(key, None)
    return stripped


def test_recommendations_for_a_fresh_analysis(base_url: str, analysis: dict[str, Any]) -> None:
    payload = recommend_ok(base_url, analysis)
    texts = payload["recommendations"]
    assert isinstance(texts, list) and texts
    assert all(isinstance(text, str) and text.strip() for text in texts)
    for cluster in analysis["clusters"]:
        if cluster.get("isOutliers"):
            continue
        name = cluster["clusterName"]
        mentioning = [text for text in texts if name in text]
        assert mentioning, f"no recommendation names {name!r}: {texts}"
    # each per-segment recommendation cites a number from the data
    per_segment = [a for a in payload["actions"] if a["segment"] is not None]
    assert per_segment
    for action in per_segment:
        text = f"{action['action']} {action['rationale']}"
        assert NUMBER.search(text.replace(action["segment"], "")), text


def test_actions_are_complete_and_prioritised(base_url: str, analysis: dict[str, Any]) -> None:
    payload = recommend_ok(base_url, analysis)
    actions = payload["actions"]
    assert len(actions) == len(payload["recommendations"])
    for action in actions:
        assert {"segment", "action", "rationale", "priority"} <= set(action), action
        assert action["segment"] is None or isinstance(action["segment"], str)
        assert isinstance(action["action"], str) and action["action"].strip()
        assert isinstance(action["rationale"], str) and action["rationale"].strip()
    assert [a["priority"] for a in actions] == list(range(1, len(actions) + 1))
    # every segment gets its own action
    names = {c["clusterName"] for c in analysis["clusters"]}
    assert names <= {a["segment"] for a in actions}


def test_customers_may_be_dropped_when_sizes_are_kept(
    base_url: str, analysis: dict[str, Any]
) -> None:
    full = recommend_ok(base_url, analysis)
    light = recommend_ok(base_url, _without(analysis, "customers"))
    assert light["recommendations"]
    # the sizes carry everything recommendations need: same advice
    assert light == full


def test_without_customers_and_size_the_cluster_is_named(
    base_url: str, analysis: dict[str, Any]
) -> None:
    response = recommend(base_url, {"analysis": _without(analysis, "customers", "size", only=1)})
    body = assert_error(response, 422, field="analysis.clusters.1", mentions=("size",))
    assert [e["field"] for e in body["errors"]] == ["analysis.clusters.1"]
    response = recommend(base_url, {"analysis": _without(analysis, "customers", "size")})
    body = assert_error(response, 422, field="analysis.clusters.0")
    assert [e["field"] for e in body["errors"]] == [
        f"analysis.clusters.{i}" for i in range(len(analysis["clusters"]))
    ]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "mention"),
    [
        # an analysis without clusters
        (json.dumps({"analysis": {}}).encode(), "application/json", 422, "clusters"),
        # no analysis at all, and an unknown key
        (json.dumps({"foo": 1}).encode(), "application/json", 422, "analysis"),
        # an analysis with no clusters to advise on
        (json.dumps({"analysis": {"clusters": []}}).encode(), "application/json", 422, "clusters"),
        # not JSON, said so
        (b"segment my customers please", "text/plain", 415, "application/json"),
        # not JSON, though it claims to be
        (b"{analysis: clusters}", "application/json", 422, "JSON"),
        # an infinite centroid value (1e400 overflows a float) cannot be compared
        (
            b'{"analysis": {"clusters": [{"clusterId": 0, "clusterName": "A", "size": 5,'
            b' "centroid": {"spend": 1e400}}]}}',
            "application/json",
            422,
            "centroid",
        ),
        # two clusters with one id: priorities would be mixed up
        (
            json.dumps(
                {
                    "analysis": {
                        "clusters": [
                            {"clusterId": 0, "clusterName": "A", "size": 5, "centroid": {}},
                            {"clusterId": 0, "clusterName": "B", "size": 9, "centroid": {}},
                        ]
                    }
                }
            ).encode(),
            "application/json",
            422,
            "also used by cluster 0",
        ),
    ],
)
def test_bad_bodies_get_a_clear_4xx(
    base_url: str, content: bytes, content_type: str, status: int, mention: str
) -> None:
    response = httpx.post(
        f"{base_url}/api/recommendations",
        content=content,
        headers={"content-type": content_type},
        timeout=REQUEST_TIMEOUT,
    )
    assert_error(response, status, mentions=(mention,))
    assert_still_serving(base_url)


def test_big_valuable_segment_comes_before_a_small_cheap_one(base_url: str) -> None:
    hand_made = {
        "clusters": [
            {
                "clusterId": 0,
                "clusterName": "Occasional Savers",
                "centroid": {"income": 22_000.0, "spend": 90.0},
                "characteristics": ["Spend 90 vs 1,150 average"],
                "size": 40,
            },
            {
                "clusterId": 1,
                "clusterName": "Everyday Regulars",
                "centroid": {"income": 58_000.0, "spend": 700.0},
                "characteristics": [],
                "size": 300,
            },
            {
                "clusterId": 2,
                "clusterName": "Premium Loyalists",
                "centroid": {"income": 140_000.0, "spend": 2_400.0},
                "characteristics": ["Spend 2.1x the average"],
                "size": 260,
            },
        ],
        "featureImportance": {"income": 0.4, "spend": 0.6},
        "accuracy": 0.9,
    }
    payload = recommend_ok(base_url, hand_made)
    first_priority: dict[str, int] = {}
    for action in payload["actions"]:
        if action["segment"] is not None:
            first_priority.setdefault(action["segment"], action["priority"])
    assert set(first_priority) == {"Occasional Savers", "Everyday Regulars", "Premium Loyalists"}
    assert first_priority["Premium Loyalists"] < first_priority["Occasional Savers"]
    assert first_priority["Premium Loyalists"] == 1
    assert payload["actions"][0]["segment"] == "Premium Loyalists"
    assert "Premium Loyalists" in payload["recommendations"][0]


def test_the_report_and_the_api_give_the_same_advice(base_url: str) -> None:
    # marketing-like fields (several spend fields share an axis): the case where the report
    # once advised without the business axes the API used
    customers = make_population(800, 4, random_state=12).records()
    stored = analyze_ok(base_url, customers, includeCustomers=False)
    by_id = recommend(base_url, {"analysisId": stored["analysisId"]})
    assert by_id.status_code == 200, by_id.text
    report = httpx.get(
        f"{base_url}/api/analyses/{stored['analysisId']}/report.html", timeout=REQUEST_TIMEOUT
    )
    assert report.status_code == 200
    advice = report.text.split("<h2>Recommendations</h2>", 1)[1].split("</ol>", 1)[0]
    in_report = [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", advice)]
    assert in_report == by_id.json()["recommendations"]
    assert in_report  # not vacuously equal
