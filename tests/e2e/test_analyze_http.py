"""POST /api/analyze over real HTTP: the seed's contract and the documented additions."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from segmentation.synthetic import make_population
from tests.e2e.conftest import (
    ALLOWED_ORIGIN,
    REQUEST_TIMEOUT,
    all_customers,
    analyze,
    analyze_ok,
    field_report,
    small_customers,
)

N_CUSTOMERS = 500
SEED_FIELDS = ("clusterId", "customers", "centroid", "clusterName", "characteristics")


@pytest.fixture(scope="module")
def customers() -> list[dict[str, Any]]:
    """A generated population, with the odd records a front end really sends."""
    records = make_population(N_CUSTOMERS, 4, random_state=21).records()
    # extra fields the service knows nothing about: must come back untouched
    records[0] = {**records[0], "vip": True, "signupDate": "2023-05-17"}
    records[1] = {**records[1], "vip": False}
    records[2] = {**records[2], "age": None}  # a missing value as null
    del records[3]["purchases"]  # and one as an absent key
    return records


@pytest.fixture(scope="module")
def default_analysis(base_url: str, customers: list[dict[str, Any]]) -> dict[str, Any]:
    return analyze_ok(base_url, customers)


def _by_id(customers: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {customer["id"]: customer for customer in customers}


def _assert_every_customer_once(payload: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    returned = all_customers(payload)
    counts = Counter(customer["id"] for customer in returned)
    assert len(returned) == len(sent)
    assert set(counts) == {customer["id"] for customer in sent}
    assert max(counts.values()) == 1
    sent_by_id = _by_id(sent)
    for customer in returned:
        # same keys (nothing added, nothing dropped) and the same values, as sent
        assert customer == sent_by_id[customer["id"]]
        assert list(customer) == list(sent_by_id[customer["id"]])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- the seed's contract -----------------------------------------------------------------------


def test_status_and_top_level_keys(default_analysis: dict[str, Any]) -> None:
    for key in ("clusters", "featureImportance", "accuracy"):
        assert key in default_analysis
    assert isinstance(default_analysis["clusters"], list) and default_analysis["clusters"]
    assert isinstance(default_analysis["featureImportance"], dict)
    assert _is_number(default_analysis["accuracy"])


def test_every_cluster_has_the_seed_shape(default_analysis: dict[str, Any]) -> None:
    for cluster in default_analysis["clusters"]:
        for key in (*SEED_FIELDS, "size", "share", "confidence", "stability"):
            assert key in cluster, (key, sorted(cluster))
        assert isinstance(cluster["clusterId"], int) and not isinstance(cluster["clusterId"], bool)
        assert isinstance(cluster["customers"], list)
        assert isinstance(cluster["centroid"], dict) and cluster["centroid"]
        assert all(v is None or _is_number(v) for v in cluster["centroid"].values()), cluster
        assert isinstance(cluster["clusterName"], str) and cluster["clusterName"].strip()
        assert isinstance(cluster["characteristics"], list)
        assert all(isinstance(c, str) and c for c in cluster["characteristics"])
        assert isinstance(cluster["size"], int) and cluster["size"] == len(cluster["customers"])
        for key in ("share", "confidence", "stability"):
            assert _is_number(cluster[key]), (key, cluster[key])
        assert 0 <= cluster["share"] <= 1
    ids = [cluster["clusterId"] for cluster in default_analysis["clusters"]]
    assert len(ids) == len(set(ids))
    assert sum(c["share"] for c in default_analysis["clusters"]) == pytest.approx(1, abs=1e-3)


def test_cluster_names_are_unique(default_analysis: dict[str, Any]) -> None:
    names = [cluster["clusterName"] for cluster in default_analysis["clusters"]]
    assert len(names) == len(set(names)), names


def test_every_customer_comes_back_once_exactly_as_sent(
    default_analysis: dict[str, Any], customers: list[dict[str, Any]]
) -> None:
    _assert_every_customer_once(default_analysis, customers)
    returned = _by_id(all_customers(default_analysis))
    # the odd records, spelled out
    assert returned[customers[0]["id"]]["vip"] is True
    assert returned[customers[0]["id"]]["signupDate"] == "2023-05-17"
    assert returned[customers[1]["id"]]["vip"] is False
    assert returned[customers[2]["id"]]["age"] is None
    assert "purchases" not in returned[customers[3]["id"]]


def test_feature_importance_is_per_original_field_and_sums_to_one(
    default_analysis: dict[str, Any], customers: list[dict[str, Any]]
) -> None:
    importance = default_analysis["featureImportance"]
    sent_fields = {field for customer in customers for field in customer}
    assert importance, importance
    assert set(importance) <= sent_fields - {"id"}, importance
    assert "id" not in importance
    assert all(_is_number(v) and v >= 0 for v in importance.values()), importance
    assert sum(importance.values()) == pytest.approx(1, abs=1e-3)
    # the fields that define the generated segments are all scored
    assert {"age", "income", "purchases"} <= set(importance)


def test_accuracy_is_in_the_unit_interval(default_analysis: dict[str, Any]) -> None:
    assert 0 <= default_analysis["accuracy"] <= 1


def test_k_selection_explains_the_choice(default_analysis: dict[str, Any]) -> None:
    selection = default_analysis["kSelection"]
    candidates = selection["candidates"]
    assert candidates
    chosen = [c for c in candidates if c["chosen"] is True]
    assert len(chosen) == 1, candidates
    assert isinstance(selection["reason"], str) and selection["reason"].strip()
    regular = [c for c in default_analysis["clusters"] if not c.get("isOutliers")]
    assert chosen[0]["k"] == len(regular)


def test_data_quality_counts_records_and_finds_the_id(
    default_analysis: dict[str, Any], customers: list[dict[str, Any]]
) -> None:
    assert default_analysis["dataQuality"]["records"] == len(customers)
    assert field_report(default_analysis, "id")["role"] == "id"


# --- options -----------------------------------------------------------------------------------


def test_n_clusters_gives_exactly_that_many(base_url: str, customers: list[dict[str, Any]]) -> None:
    payload = analyze_ok(base_url, customers, nClusters=3)
    assert len(payload["clusters"]) == 3
    _assert_every_customer_once(payload, customers)


def _evenly_spaced_customers(n: int) -> list[dict[str, Any]]:
    """Customers on a regular grid (ages and incomes one step apart), as in a toy export."""
    return [
        {"id": i + 1, "age": 20 + i % 40, "income": 30_000 + 1_000 * i, "region": "NS"[i % 2]}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("make_customers", "n_customers", "n_clusters", "algorithm"),
    [
        (small_customers, 200, 6, "kmeans"),  # a larger k than the data suggests is honoured
        (small_customers, 200, 6, "hierarchical"),
        (small_customers, 12, 5, "kmeans"),  # small data: about two customers per segment
        (small_customers, 10, 5, "hierarchical"),  # small data, Ward linkage
        (_evenly_spaced_customers, 10, 5, "kmeans"),  # tied distances everywhere
        (_evenly_spaced_customers, 10, 5, "hierarchical"),  # ties in Ward's merge heights
        (_evenly_spaced_customers, 10, 5, "auto"),
    ],
)
def test_n_clusters_is_honoured_for_every_algorithm(
    base_url: str,
    make_customers: Callable[[int], list[dict[str, Any]]],
    n_customers: int,
    n_clusters: int,
    algorithm: str,
) -> None:
    sent = make_customers(n_customers)
    payload = analyze_ok(base_url, sent, nClusters=n_clusters, algorithm=algorithm)
    assert payload["kSelection"]["chosen"]["k"] == n_clusters
    sizes = [c["size"] for c in payload["clusters"]]
    assert len(payload["clusters"]) == n_clusters, (
        f"nClusters={n_clusters} ({algorithm}, chosen {payload['kSelection']['chosen']}) "
        f"gave {len(sizes)} clusters of sizes {sizes}"
    )
    _assert_every_customer_once(payload, sent)


@pytest.mark.parametrize("algorithm", ["kmeans", "hierarchical", "dbscan"])
def test_each_algorithm_works(
    base_url: str, customers: list[dict[str, Any]], algorithm: str
) -> None:
    payload = analyze_ok(base_url, customers, algorithm=algorithm)
    assert payload["algorithm"] == algorithm
    _assert_every_customer_once(payload, customers)
    names = [cluster["clusterName"] for cluster in payload["clusters"]]
    assert len(names) == len(set(names)), names
    outliers = [cluster for cluster in payload["clusters"] if cluster.get("isOutliers")]
    if algorithm == "dbscan":
        # density-based noise is one explicit segment, never silently dropped
        assert len(outliers) <= 1
        for cluster in outliers:
            assert cluster["clusterName"] == "Outliers"
            assert cluster["size"] == len(cluster["customers"]) > 0
    else:
        assert outliers == []


def test_features_option_limits_the_fields(base_url: str, customers: list[dict[str, Any]]) -> None:
    payload = analyze_ok(base_url, customers, features=["income", "purchases"])
    assert set(payload["featureImportance"]) == {"income", "purchases"}
    assert sum(payload["featureImportance"].values()) == pytest.approx(1, abs=1e-3)
    _assert_every_customer_once(payload, customers)


def test_exclude_option_removes_a_field(base_url: str, customers: list[dict[str, Any]]) -> None:
    payload = analyze_ok(base_url, customers, exclude=["age"])
    assert "age" not in payload["featureImportance"]
    assert payload["featureImportance"]
    assert sum(payload["featureImportance"].values()) == pytest.approx(1, abs=1e-3)
    _assert_every_customer_once(payload, customers)


def test_customer_scores_one_per_customer(base_url: str, customers: list[dict[str, Any]]) -> None:
    payload = analyze_ok(base_url, customers, includeCustomerScores=True)
    scores = payload["customerScores"]
    assert len(scores) == len(customers)
    cluster_of = {
        customer["id"]: cluster["clusterId"]
        for cluster in payload["clusters"]
        for customer in cluster["customers"]
    }
    for position, (score, sent) in enumerate(zip(scores, customers, strict=True)):
        assert {"index", "id", "clusterId", "confidence", "ambiguous"} <= set(score), score
        assert score["index"] == position
        assert score["id"] == sent["id"]
        # the score's segment is the cluster the customer is listed in
        assert score["clusterId"] == cluster_of[sent["id"]]
        assert _is_number(score["confidence"])
        assert isinstance(score["ambiguous"], bool)


def test_without_customers_the_sizes_still_add_up(
    base_url: str, customers: list[dict[str, Any]]
) -> None:
    payload = analyze_ok(base_url, customers, includeCustomers=False)
    assert all(cluster["customers"] == [] for cluster in payload["clusters"])
    assert sum(cluster["size"] for cluster in payload["clusters"]) == len(customers)


def test_same_request_same_response(base_url: str, customers: list[dict[str, Any]]) -> None:
    body = {"customerData": customers, "options": {"randomState": 7}}
    bodies = []
    for _ in range(2):
        response = httpx.post(f"{base_url}/api/analyze", json=body, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, response.text[:2000]
        # wall-clock stage times travel in a header, so the body itself is byte-identical
        steps = [part.split(";")[0] for part in response.headers["server-timing"].split(", ")]
        assert steps == ["read", "features", "search", "fit", "explain", "profile", "store"]
        # except the id it is stored under: with the cache off, each request is a new analysis
        payload = json.loads(response.content)
        assert len(payload.pop("analysisId")) == 22
        bodies.append(json.dumps(payload).encode())
    assert bodies[0] == bodies[1]
    assert json.loads(bodies[0])["randomState"] == 7


# --- HTTP surroundings -------------------------------------------------------------------------


def test_cors_preflight_allows_the_configured_origin(client: httpx.Client) -> None:
    response = client.options(
        "/api/analyze",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 200, response.text
    assert response.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    assert "POST" in response.headers.get("access-control-allow-methods", "")


def test_cors_preflight_refuses_another_origin(client: httpx.Client) -> None:
    response = client.options(
        "/api/analyze",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers


def test_cors_headers_on_a_real_request(client: httpx.Client) -> None:
    response = client.post(
        "/api/analyze",
        json={"customerData": small_customers(12)},
        headers={"Origin": ALLOWED_ORIGIN},
    )
    assert response.status_code == 200, response.text[:2000]
    assert response.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN


def test_openapi_documents_both_endpoints(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert "post" in document["paths"]["/api/analyze"]
    assert "post" in document["paths"]["/api/recommendations"]
    schemas = document["components"]["schemas"]
    assert "AnalyzeRequest" in schemas
    assert "customerData" in schemas["AnalyzeRequest"]["properties"]
    request_body = document["paths"]["/api/analyze"]["post"]["requestBody"]
    assert request_body["content"]["application/json"]["schema"]["$ref"].endswith("/AnalyzeRequest")


def test_health_answers_while_a_large_analysis_runs(base_url: str) -> None:
    customers = make_population(20_000, 5, random_state=3).records()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["response"] = analyze(base_url, customers, includeCustomers=False)
        except Exception as error:  # reported below, not lost in the thread
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    checks = 0
    try:
        with httpx.Client(base_url=base_url, timeout=2.0) as http:
            while worker.is_alive():
                # a 2 s timeout: an event loop blocked by the analysis would raise here
                assert http.get("/health").status_code == 200
                checks += 1
                time.sleep(0.05)
    finally:
        worker.join(REQUEST_TIMEOUT)
    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert response.status_code == 200, response.text[:2000]
    assert sum(cluster["size"] for cluster in response.json()["clusters"]) == len(customers)
    assert checks >= 1


def _sentences(value: Any) -> list[str]:
    """Every string anywhere in a response."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _sentences(item)]
    if isinstance(value, list):
        return [s for item in value for s in _sentences(item)]
    return []


@pytest.mark.parametrize("n_customers", [2, 3, 12])
def test_too_few_customers_for_stability_get_a_null_accuracy_and_no_nan(
    base_url: str, n_customers: int
) -> None:
    payload = analyze_ok(base_url, small_customers(n_customers))
    assert payload["accuracy"] is None
    assert all(c["stability"] is None for c in payload["clusters"])
    assert "cannot be measured" in payload["kSelection"]["reason"]
    assert any("cannot be measured" in w for w in payload["dataQuality"]["warnings"])
    advice = httpx.post(
        f"{base_url}/api/recommendations", json={"analysis": payload}, timeout=60
    ).json()
    for sentence in _sentences(payload) + advice["recommendations"]:
        assert "nan" not in re.findall(r"[a-z]+", sentence.lower()), sentence


def test_field_roles_before_a_run(base_url: str) -> None:
    """POST /api/fields: the role each field of a file's first rows would get."""
    rows = [
        {"id": i, "age": str(20 + i % 40), "region": ("North", "South")[i % 2], "code": f"X{i}",
         "flag": i % 2 == 0, "constant": 1}
        for i in range(50)
    ]  # fmt: skip
    response = httpx.post(f"{base_url}/api/fields", json={"customerData": rows}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    roles = {f["field"]: f["role"] for f in body["fields"]}
    assert body["customers"] == 50
    assert roles == {"id": "id", "age": "numeric", "region": "categorical", "code": "id",
                     "flag": "boolean", "constant": "ignored"}  # fmt: skip
    reasons = {f["field"]: f["reason"] for f in body["fields"]}
    assert "same value" in reasons["constant"]
    bad = httpx.post(
        f"{base_url}/api/fields", content=b'{"customerData": [{"a": NaN}]}',
        headers={"Content-Type": "application/json"}, timeout=30,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "a"
