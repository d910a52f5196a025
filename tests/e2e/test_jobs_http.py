"""Jobs through real uvicorn processes sharing one real SQLite data folder.

Each test starts the servers it needs (one worker process for analyses, one for jobs, so that
they start fast), and some stop them on purpose: SIGTERM, SIGKILL, a killed worker.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from segmentation.synthetic import make_population
from segmentation.workers import JOB_WORKER_NAME
from tests.e2e.conftest import DATASETS, ServerProcess, assert_error, assert_still_serving

JOB_TIMEOUT = 240.0
FINISHED = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _start(data_dir: Path, log: Path, **env: str) -> ServerProcess:
    server = ServerProcess(
        {
            "SEGMENTATION_DATA_DIR": str(data_dir),
            "SEGMENTATION_WORKERS": "1",
            "SEGMENTATION_JOB_WORKERS": "1",
            "SEGMENTATION_CACHE": "false",
            **env,
        },
        log,
    )
    server.wait_until_healthy()
    return server


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    started = _start(data_dir, tmp_path / "server.log")
    try:
        yield started
    finally:
        started.stop()


def _submit_json(base_url: str, n_customers: int, **options: Any) -> dict[str, Any]:
    records = make_population(n_customers, 4, random_state=n_customers).records()
    response = httpx.post(
        f"{base_url}/api/jobs",
        json={"customerData": records, "options": {"includeCustomers": False, **options}},
        timeout=120,
    )
    assert response.status_code == 202, response.text[:2000]
    assert response.headers["location"] == f"/api/jobs/{response.json()['jobId']}"
    return response.json()


def _wait(base_url: str, job_id: str, until: set[str] = FINISHED) -> list[dict[str, Any]]:
    """Every distinct state seen while polling, the last one in `until`."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/api/jobs/{job_id}", timeout=30).json()
        if not seen or (job["stage"], job["progress"]) != (seen[-1]["stage"], seen[-1]["progress"]):
            seen.append(job)
        if job["status"] in until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {seen[-1]} after {JOB_TIMEOUT} s")


def test_a_json_job_reports_moving_progress_and_its_result(server: ServerProcess) -> None:
    job = _submit_json(server.base_url, 60_000)
    assert job["status"] == "queued" and len(job["jobId"]) == 22
    seen = _wait(server.base_url, job["jobId"])
    final = seen[-1]
    assert final["status"] == "succeeded", final
    progress = [state["progress"] for state in seen if state["status"] == "running"]
    assert len(set(progress)) >= 3, seen  # it really moves, stage by stage
    assert progress == sorted(progress)
    assert final["progress"] == 1.0 and final["startedAt"] <= final["finishedAt"]
    result = httpx.get(f"{server.base_url}/api/jobs/{job['jobId']}/result", timeout=60)
    assert result.status_code == 200
    stored = httpx.get(f"{server.base_url}/api/analyses/{final['analysisId']}", timeout=60)
    assert result.content == stored.content
    assert sum(c["size"] for c in result.json()["clusters"]) == 60_000


def test_a_100k_customer_csv_upload(server: ServerProcess) -> None:
    frame = make_population(100_000, 5, random_state=4).frame
    upload = frame.to_csv(index=False, sep=";").encode()  # not the default delimiter
    response = httpx.post(
        f"{server.base_url}/api/jobs",
        files={"file": ("customers.csv", upload, "text/csv")},
        data={"options": json.dumps({"includeCustomers": False, "randomState": 1})},
        timeout=120,
    )
    assert response.status_code == 202, response.text[:2000]
    seen = _wait(server.base_url, response.json()["jobId"])
    assert seen[-1]["status"] == "succeeded", seen[-1]
    assert len({state["stage"] for state in seen}) >= 4
    analysis = httpx.get(
        f"{server.base_url}/api/jobs/{seen[-1]['jobId']}/result", timeout=60
    ).json()
    assert sum(c["size"] for c in analysis["clusters"]) == 100_000
    assert analysis["dataQuality"]["fields"][0] == {
        "field": "id", "role": "id", "missing": 0, "handling": "", "reason": "the customer id",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("files", "status", "mention"),
    [
        # binary content that is no Parquet
        ({"file": ("data.bin", b"\x00\x01\x02\x03" * 64)}, 422, "neither CSV"),
        # an empty file
        ({"file": ("empty.csv", b"")}, 422, "empty"),
        # a CSV row with more fields than the header
        ({"file": ("broken.csv", b"a,b,c\n1,2,3\n4,5,6\n7,8,9,10,11\n")}, 422, "line 4"),
        # a Parquet file cut short
        ({"file": ("cut.parquet", b"PAR1" + b"\x00" * 50)}, 422, "parquet"),
        # no file part at all
        ({"other": ("x.csv", b"a\n1\n")}, 422, "'file'"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(
    server: ServerProcess, files: dict[str, Any], status: int, mention: str
) -> None:
    response = httpx.post(f"{server.base_url}/api/jobs", files=files, timeout=60)
    assert_error(response, status, mentions=(mention,))


def test_bad_options_ids_and_content_types(server: ServerProcess) -> None:
    base = server.base_url
    bad_options = httpx.post(
        f"{base}/api/jobs",
        files={"file": ("a.csv", b"x,y\n1,2\n3,4\n")},
        data={"options": json.dumps({"nClusters": 0})},
    )
    assert_error(bad_options, 422, field="options.nClusters")
    assert_error(httpx.get(f"{base}/api/jobs/nope"), 422, field="jobId")
    assert_error(httpx.get(f"{base}/api/jobs/{'A' * 22}"), 404, mentions=("AAAA",))
    assert_error(httpx.get(f"{base}/api/jobs/{'A' * 22}/result"), 404)
    assert_error(httpx.delete(f"{base}/api/jobs/{'A' * 22}"), 404)
    wrong = httpx.post(f"{base}/api/jobs", content=b"x", headers={"content-type": "text/plain"})
    assert_error(wrong, 415)
    assert_still_serving(base)


def test_a_job_whose_input_cannot_be_analysed_fails_with_the_reason(
    server: ServerProcess,
) -> None:
    response = httpx.post(
        f"{server.base_url}/api/jobs",
        json={"customerData": [{"id": 1, "income": 5}, {"id": 2, "income": "75,000"}]},
    )
    assert response.status_code == 202
    final = _wait(server.base_url, response.json()["jobId"])[-1]
    assert final["status"] == "failed"
    assert "record 1" in final["error"] and "income" in final["error"]
    result = httpx.get(f"{server.base_url}/api/jobs/{final['jobId']}/result")
    assert_error(result, 409, mentions=("failed",))


def test_cancelling_a_queued_and_a_running_job(server: ServerProcess) -> None:
    base = server.base_url
    running = _submit_json(base, 150_000)
    queued = _submit_json(base, 1_000)
    _wait(base, running["jobId"], until={"running"})
    cancelled = httpx.delete(f"{base}/api/jobs/{queued['jobId']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert httpx.delete(f"{base}/api/jobs/{running['jobId']}").json()["status"] == "cancelled"
    final = _wait(base, running["jobId"])[-1]
    assert final["status"] == "cancelled" and final["analysisId"] is None
    # a finished job cannot be cancelled again, and the queued one never ran
    assert_error(httpx.delete(f"{base}/api/jobs/{queued['jobId']}"), 409, mentions=("cancelled",))
    assert httpx.get(f"{base}/api/jobs/{queued['jobId']}").json()["startedAt"] is None
    # the runner goes on with the next job
    assert _wait(base, _submit_json(base, 500)["jobId"])[-1]["status"] == "succeeded"


def test_a_full_queue_answers_503_with_retry_after(data_dir: Path, tmp_path: Path) -> None:
    server = _start(data_dir, tmp_path / "bounded.log", SEGMENTATION_MAX_QUEUED_JOBS="2")
    try:
        base = server.base_url
        first = _submit_json(base, 150_000)
        _wait(base, first["jobId"], until={"running"})
        queued = _submit_json(base, 800)
        _submit_json(base, 900)
        refused = httpx.post(
            f"{base}/api/jobs", json={"customerData": [{"x": 1}, {"x": 2}]}, timeout=30
        )
        assert_error(refused, 503, mentions=("retry", "SEGMENTATION_MAX_QUEUED_JOBS"))
        assert int(refused.headers["retry-after"]) > 0
        # a cancelled job frees its place in the queue at once
        assert httpx.delete(f"{base}/api/jobs/{queued['jobId']}").status_code == 200
        assert _submit_json(base, 600)["status"] == "queued"
        assert_still_serving(base)
    finally:
        server.stop()


def test_concurrent_submissions_never_overshoot_the_queue_bound(
    data_dir: Path, tmp_path: Path
) -> None:
    server = _start(data_dir, tmp_path / "burst.log", SEGMENTATION_MAX_QUEUED_JOBS="3")
    try:
        base = server.base_url
        running = _submit_json(base, 150_000)
        _wait(base, running["jobId"], until={"running"})
        body = json.dumps(
            {"customerData": make_population(2_000, 3, random_state=3).records()}
        ).encode()

        def submit(_: int) -> int:
            response = httpx.post(
                f"{base}/api/jobs",
                content=body,
                headers={"content-type": "application/json"},
                timeout=60,
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(submit, range(12)))
        assert statuses.count(202) == 3, statuses  # exactly the bound, however they interleave
        assert statuses.count(503) == 9, statuses
    finally:
        server.stop()


def test_an_upload_over_the_limit_is_refused(data_dir: Path, tmp_path: Path) -> None:
    server = _start(data_dir, tmp_path / "small.log", SEGMENTATION_MAX_UPLOAD_BYTES="20000")
    try:
        big = make_population(2_000, 3, random_state=2).frame.to_csv(index=False).encode()
        response = httpx.post(
            f"{server.base_url}/api/jobs", files={"file": ("big.csv", big)}, timeout=60
        )
        assert_error(response, 413, mentions=("SEGMENTATION_MAX_UPLOAD_BYTES",))
        leftovers = list((data_dir / "jobs").glob(".upload-*"))
        assert leftovers == [], leftovers  # nothing of the refused upload stays on disk
    finally:
        server.stop()


def _job_worker(server: ServerProcess) -> psutil.Process:
    """The one job worker process (the analysis workers have a name of their own)."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    (worker,) = [child for child in children if child.name() == JOB_WORKER_NAME]
    return worker


def test_a_killed_worker_fails_its_job_and_the_next_job_succeeds(server: ServerProcess) -> None:
    base = server.base_url
    job = _submit_json(base, 200_000)
    _wait(base, job["jobId"], until={"running"})
    _job_worker(server).send_signal(signal.SIGKILL)
    final = _wait(base, job["jobId"])[-1]
    assert final["status"] == "failed"
    assert "died" in final["error"]
    assert _wait(base, _submit_json(base, 600)["jobId"])[-1]["status"] == "succeeded"
    assert_still_serving(base)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
def test_jobs_and_analyses_survive_a_server_stop(
    data_dir: Path, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    first = _start(data_dir, tmp_path / "first.log")
    try:
        kept = httpx.post(
            f"{first.base_url}/api/analyze",
            json={"customerData": make_population(500, 3, random_state=9).records()},
            timeout=60,
        )
        assert kept.status_code == 200
        job = _submit_json(first.base_url, 150_000)
        _wait(first.base_url, job["jobId"], until={"running"})
        waiting = _submit_json(first.base_url, 700)
        workers = psutil.Process(first.process.pid).children(recursive=True)
        os.kill(first.process.pid, stop_signal)
        first.process.wait(timeout=60)
        # no worker outlives the server, even a SIGKILLed one: none runs a job twice
        _gone, alive = psutil.wait_procs(workers, timeout=15)
        assert alive == [], alive
    finally:
        first.stop()
    second = _start(data_dir, tmp_path / "second.log")
    try:
        # the job that was running is run once more (its first run was cut short), the job
        # that waited runs for the first time: both finish, neither is lost or stuck
        rerun = _wait(second.base_url, job["jobId"])[-1]
        assert rerun["status"] == "succeeded", rerun
        assert rerun["attempts"] == 2, rerun
        queued = _wait(second.base_url, waiting["jobId"])[-1]
        assert queued["status"] == "succeeded", queued
        assert queued["attempts"] == 1, queued
        again = httpx.get(f"{second.base_url}/api/analyses/{kept.json()['analysisId']}")
        assert again.status_code == 200 and again.content == kept.content
        listed = httpx.get(f"{second.base_url}/api/analyses").json()["analyses"]
        assert kept.json()["analysisId"] in {a["analysisId"] for a in listed}
    finally:
        second.stop()


def test_a_parquet_and_a_json_lines_upload(server: ServerProcess) -> None:
    frame = make_population(3_000, 3, random_state=5).frame
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    lines = frame.to_json(orient="records", lines=True).encode()
    for name, content in (("c.parquet", parquet.getvalue()), ("c.jsonl", lines)):
        response = httpx.post(
            f"{server.base_url}/api/jobs", files={"file": (name, content)}, timeout=60
        )
        assert response.status_code == 202, response.text
        final = _wait(server.base_url, response.json()["jobId"])[-1]
        assert final["status"] == "succeeded", final


@pytest.mark.parametrize(
    "name",
    [
        # comma-separated, CRLF line endings
        "mall_customers.csv",
        # zero-padded string ids, no final newline
        "mall_customers_genre_variant.csv",
        # blank cells
        "mall_customers_with_missing.csv",
        # tab-separated, dd-mm-yyyy dates, constant columns
        "marketing_campaign.tsv",
        "wholesale_customers.csv",
    ],
)
def test_the_real_customer_files_upload_as_they_are(server: ServerProcess, name: str) -> None:
    path = DATASETS / name
    response = httpx.post(
        f"{server.base_url}/api/jobs", files={"file": (name, path.read_bytes())}, timeout=60
    )
    assert response.status_code == 202, response.text
    final = _wait(server.base_url, response.json()["jobId"])[-1]
    assert final["status"] == "succeeded", final
    analysis = httpx.get(f"{server.base_url}/api/jobs/{final['jobId']}/result", timeout=60).json()
    names = [cluster["clusterName"] for cluster in analysis["clusters"]]
    assert len(set(names)) == len(names) >= 2
    if name == "mall_customers_genre_variant.csv":
        first = analysis["clusters"][0]["customers"][0]
        assert isinstance(first["CustomerID"], str) and len(first["CustomerID"]) == 4


def test_the_disk_keeps_only_the_most_recently_used_analyses(
    data_dir: Path, tmp_path: Path
) -> None:
    server = _start(data_dir, tmp_path / "retention.log", SEGMENTATION_MAX_STORED_ANALYSES="2")
    try:
        ids = []
        for seed in range(3):
            response = httpx.post(
                f"{server.base_url}/api/analyze",
                json={"customerData": make_population(300, 3, random_state=seed).records()},
                timeout=60,
            )
            assert response.status_code == 200
            ids.append(response.json()["analysisId"])
        assert httpx.get(f"{server.base_url}/api/analyses/{ids[0]}").status_code == 404
        for kept in ids[1:]:
            assert httpx.get(f"{server.base_url}/api/analyses/{kept}").status_code == 200
        folders = [p for p in (data_dir / "analyses").iterdir() if not p.name.startswith(".")]
        assert len(folders) == 2
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "spec", "customers"),
    [
        # CDNOW: one amount per order, ids zero-padded
        (
            "cdnow_sample.csv",
            {"customerId": "customer_id", "date": "date", "amount": "dollar_value",
             "asOf": "1997-09-30"},
            2357,
        ),
        # UCI Online Retail, xz-compressed: quantity x price, C-invoices are cancellations,
        # 135,080 rows without a customer, 33 customers with only returns (left out)
        (
            "online_retail.csv.xz",
            {"customerId": "CustomerID", "date": "InvoiceDate", "quantity": "Quantity",
             "price": "UnitPrice", "invoice": "InvoiceNo"},
            4339,
        ),
    ],
)  # fmt: skip
def test_a_job_on_a_file_of_orders_segments_its_customers(
    server: ServerProcess, name: str, spec: dict[str, str], customers: int
) -> None:
    response = httpx.post(
        f"{server.base_url}/api/jobs",
        files={"file": (name, (DATASETS / name).read_bytes())},
        data={
            "transactions": json.dumps(spec),
            "options": json.dumps({"includeCustomers": False}),
        },
        timeout=120,
    )
    assert response.status_code == 202, response.text
    final = _wait(server.base_url, response.json()["jobId"])[-1]
    assert final["status"] == "succeeded", final
    analysis = httpx.get(f"{server.base_url}/api/jobs/{final['jobId']}/result", timeout=60).json()
    assert sum(c["size"] for c in analysis["clusters"]) == customers
    roles = {f["field"]: f["role"] for f in analysis["dataQuality"]["fields"]}
    assert roles["recency_days"] == roles["frequency"] == roles["monetary"] == "numeric"


def test_a_bad_transactions_spec_is_a_422(server: ServerProcess) -> None:
    response = httpx.post(
        f"{server.base_url}/api/jobs",
        files={"file": ("o.csv", b"c,d,v\n1,2011-01-01,3\n")},
        data={"transactions": json.dumps({"date": "d"})},
    )
    assert_error(response, 422, field="transactions.customerId")
