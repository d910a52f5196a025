"""Real exports nobody here prepared, uploaded as an analyst uploads them (POST /api/jobs with
the file as it is), checked the way an analyst reads the result: the roles of the fields,
outcomes reported per segment and never segmenting, leaks left out, names and advice a
marketer would sign, and results that do not depend on the order of the columns.

The files are `../shared/datasets/realworld/` (their README says what is messy in each).
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from segmentation.files import read_customer_file
from tests.e2e.conftest import DATASETS, REQUEST_TIMEOUT, analyze_ok, frame_records

pytestmark = pytest.mark.slow

REALWORLD = DATASETS / "realworld"
JOB_TIMEOUT = 300.0
MOSTLY_BARE = re.compile(r"\bMostly (No|Yes|True|False|\d+)\b", re.IGNORECASE)

# per file: the fields an analyst would call ids, outcomes and leaks of an outcome, fields
# that must be read as numbers though the file writes them as text, and options a file needs
EXPECTED: dict[str, dict[str, Any]] = {
    # two id-like numbers; Complain equals Exited in 9,986 of 10,000 rows
    "bank_churn_records.csv": {
        "ids": {"RowNumber", "CustomerId"}, "outcomes": {"Exited"}, "leaks": {"Complain"},
    },
    # semicolons, a BOM, CRLF, no final line break; blanks in seven numeric columns
    "ecommerce_churn.csv": {
        "ids": {"CustomerID"}, "outcomes": {"Churn"},
        "numbers": {"Tenure", "WarehouseToHome", "HourSpendOnApp", "DaySinceLastOrder"},
    },
    # a hashed id; MISSING as a placeholder in two codes
    "energy_clients_churn.csv": {"ids": {"id"}, "outcomes": {"churn"}},
    # no header row: generic names, the class (1 good / 2 bad) last
    "german_credit.data": {"outcomes": {"column_21"}},
    # reservation_status is set by the outcome; company is 92% NULL
    "hotel_bookings_resort.csv": {
        "outcomes": {"is_canceled"}, "leaks": {"reservation_status"}, "ignored": {"company"},
    },
    # 1,332 ids repeat: refused by default (see the test below), analysed keeping the first
    "car_insurance_claims.csv": {
        "ids": {"ID"}, "outcomes": {"CLAIM_FLAG"}, "leaks": {"CLM_AMT"},
        "numbers": {"INCOME", "HOME_VAL", "BLUEBOOK", "OLDCLAIM"},
        "options": {"duplicateIds": "first"},
    },
}  # fmt: skip


def _wait(base_url: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=30).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {JOB_TIMEOUT} s")


def upload(base_url: str, path: Path, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The file as it is, as a job; the finished job."""
    files: dict[str, Any] = {"file": (path.name, path.read_bytes())}
    data = {"options": json.dumps(options)} if options else None
    response = httpx.post(f"{base_url}/api/jobs", files=files, data=data, timeout=120)
    assert response.status_code == 202, response.text[:2000]
    return _wait(base_url, response.json()["jobId"])


def _roles(analysis: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {f["field"]: f for f in analysis["dataQuality"]["fields"]}


@pytest.fixture(scope="module")
def analysed(base_url: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Every realworld file uploaded once: its analysis and its advice."""
    found = {}
    for name, expected in EXPECTED.items():
        job = upload(base_url, REALWORLD / name, expected.get("options"))
        assert job["status"] == "succeeded", (name, job["error"])
        analysis = httpx.get(
            f"{base_url}/api/analyses/{job['analysisId']}", timeout=REQUEST_TIMEOUT
        ).json()
        advice = httpx.post(
            f"{base_url}/api/recommendations", json={"analysisId": job["analysisId"]},
            timeout=REQUEST_TIMEOUT,
        ).json()  # fmt: skip
        found[name] = (analysis, advice)
    return found


@pytest.mark.parametrize("name", list(EXPECTED))
def test_roles_are_what_an_analyst_would_give(
    name: str, analysed: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    analysis, _ = analysed[name]
    expected = EXPECTED[name]
    roles = _roles(analysis)
    for field in expected.get("ids", ()):
        assert roles[field]["role"] == "id", roles[field]
    for field in expected.get("outcomes", ()):
        assert roles[field]["role"] == "outcome", roles[field]
    for field in expected.get("leaks", ()):
        assert roles[field]["role"] == "ignored", roles[field]
        assert "restates the outcome" in roles[field]["reason"], roles[field]
    for field in expected.get("ignored", ()):
        assert roles[field]["role"] == "ignored", roles[field]
    for field in expected.get("numbers", ()):
        assert roles[field]["role"] == "numeric", roles[field]
    # nothing an analyst would not segment on takes part in the segments
    unused = {f for f, r in roles.items() if r["role"] in ("id", "outcome", "ignored")}
    assert not unused & set(analysis["featureImportance"]), analysis["featureImportance"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_outcomes_are_reported_per_segment(
    name: str, analysed: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    analysis, _ = analysed[name]
    reported = {o["field"]: o for o in analysis["outcomes"]}
    assert set(reported) == EXPECTED[name]["outcomes"]
    total = sum(c["size"] for c in analysis["clusters"])
    for field, outcome in reported.items():
        assert outcome["kind"] == "rate" and 0 < outcome["overall"] < 1, outcome
        rates = [c["outcomes"][field]["rate"] for c in analysis["clusters"]]
        weighted = sum(r * c["size"] for r, c in zip(rates, analysis["clusters"], strict=True))
        # each segment's rate over its customers adds up to the overall rate
        assert weighted / total == pytest.approx(outcome["overall"], abs=0.01)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_names_and_advice_a_marketer_would_sign(
    name: str, analysed: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    analysis, advice = analysed[name]
    names = [c["clusterName"] for c in analysis["clusters"]]
    assert len(set(names)) == len(names), names
    for segment in names:
        assert len(segment) <= 40, segment
        assert not MOSTLY_BARE.search(segment), segment
        words = [w.lower().rstrip("s") for w in re.findall(r"[A-Za-z]+", segment)]
        assert len(words) == len(set(words)) or {"high", "low"} & set(words), segment
    per_segment = [a for a in advice["actions"] if a["clusterId"] is not None]
    actions = [a["action"].replace(f'"{a["segment"]}"', "<segment>") for a in per_segment]
    if len(analysis["clusters"]) > 1:
        assert len(set(actions)) > 1, actions  # not one sentence for every segment
    for action in advice["actions"]:
        for figure in action["figures"]:
            claim, value, average = figure["direction"], figure["value"], figure["average"]
            assert claim != "above" or value > average, (figure, action)
            assert claim != "below" or value < average, (figure, action)


def test_churn_well_above_the_average_gets_retention_advice(
    analysed: dict[str, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """A segment whose churn rate is well above the overall one is told to retain, citing
    both rates."""
    checked = 0
    for name in ("bank_churn_records.csv", "ecommerce_churn.csv", "energy_clients_churn.csv"):
        analysis, advice = analysed[name]
        (outcome,) = analysis["outcomes"]
        field, overall = outcome["field"], outcome["overall"]
        for cluster in analysis["clusters"]:
            rate = cluster["outcomes"][field]["rate"]
            if rate < 1.5 * overall or cluster["size"] < 100:
                continue
            mine = [a for a in advice["actions"] if a["clusterId"] == cluster["clusterId"]]
            retention = [a for a in mine if a["action"].startswith("Retain")]
            assert retention, (cluster["clusterName"], rate, overall, mine)
            cited = retention[0]["figures"][0]
            assert cited["value"] == pytest.approx(rate, abs=1e-3)
            assert cited["average"] == pytest.approx(overall, abs=1e-3)
            checked += 1
    assert checked, "no segment churned well above average in these files"


def test_repeated_ids_are_refused_in_one_line_with_the_choices(base_url: str) -> None:
    job = upload(base_url, REALWORLD / "car_insurance_claims.csv")
    assert job["status"] == "failed"
    error = job["error"]
    assert "1,332 ids appear more than once (1,549 extra rows)" in error, error
    assert "--transactions" in error and "duplicateIds" in error, error
    assert error.count("duplicate id") == 1, error  # one line, not one per record


def test_the_preview_reads_a_file_as_the_analysis_does(base_url: str) -> None:
    """POST /api/fields/file: a semicolon export with a BOM, and a file without a header."""
    head = (REALWORLD / "ecommerce_churn.csv").read_bytes()[:65_536]
    head = head[: head.rfind(b"\n") + 1]
    response = httpx.post(
        f"{base_url}/api/fields/file", files={"file": ("preview.csv", head)}, timeout=60
    )
    assert response.status_code == 200, response.text
    roles = {f["field"]: f for f in response.json()["fields"]}
    assert roles["CustomerID"]["role"] == "id"
    assert roles["Churn"]["role"] == "outcome"
    assert roles["Tenure"]["role"] == "numeric" and roles["Tenure"]["examples"]
    german = (REALWORLD / "german_credit.data").read_bytes()[:20_000]
    response = httpx.post(
        f"{base_url}/api/fields/file",
        files={"file": ("german.data", german[: german.rfind(b"\n") + 1])},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [f["field"] for f in body["fields"]][:2] == ["column_1", "column_2"]
    assert any("looks like data" in note for note in body["notes"]), body["notes"]


def test_column_order_and_an_ignored_field_change_nothing(large_body_base_url: str) -> None:
    """The same customers with their columns shuffled, and with an e-mail column added:
    every customer lands in the same segment, under the same name."""
    frame = read_customer_file(REALWORLD / "ecommerce_churn.csv", "csv").frame
    records = frame_records(frame)
    columns = list(frame.columns)
    random.Random(7).shuffle(columns)
    shuffled = [{c: r[c] for c in columns} for r in records]
    with_email = [{**r, "email": f"c{r['CustomerID']}@example.com"} for r in records]

    def segments(customers: list[dict[str, Any]]) -> dict[Any, str]:
        payload = analyze_ok(large_body_base_url, customers, includeCustomerScores=True,
                             includeCustomers=False)  # fmt: skip
        names = {c["clusterId"]: c["clusterName"] for c in payload["clusters"]}
        return {s["id"]: names[s["clusterId"]] for s in payload["customerScores"]}

    reference = segments(records)
    assert segments(shuffled) == reference
    assert segments(with_email) == reference
