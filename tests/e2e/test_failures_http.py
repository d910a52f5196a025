"""Failure paths of POST /api/analyze on real uvicorn servers: a killed worker, a full pool,
concurrent calls, and a streamed body over the limit.

The worker of an analysis is found among the server's child processes by the name it gives
itself (`seg-analysis`; job workers are `seg-job`); "running" is seen as CPU time it spends
after a request was sent, never as a sleep, so the tests do not depend on how fast the shared
machine is.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from segmentation.synthetic import make_population
from segmentation.workers import (
    ANALYSIS_WORKER_NAME,
    ANALYSIS_WORKER_NICENESS,
    JOB_WORKER_NAME,
    JOB_WORKER_NICENESS,
)
from tests.e2e.conftest import (
    MAX_BODY_BYTES,
    REQUEST_TIMEOUT,
    SERVER_ENV,
    ServerProcess,
    all_customers,
    analyze,
    analyze_ok,
    assert_error,
    assert_still_serving,
    small_customers,
)

RETRY_AFTER = 7  # not the default (5), so the header is seen to come from the setting
# Enough customers that an analysis takes seconds of CPU (about 3 s on one core when idle),
# so that it is certainly still running when the test acts on it.
SLOW_CUSTOMERS = 250_000
BUSY_CPU_SECONDS = 0.3  # CPU a worker spends before it counts as running the request


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One analysis worker and room for one analysis at a time: the second gets a 503."""
    folder = tmp_path_factory.mktemp("tiny-pool")
    env = {
        **SERVER_ENV,
        "SEGMENTATION_DATA_DIR": str(folder / "data"),
        "SEGMENTATION_WORKERS": "1",
        "SEGMENTATION_MAX_PENDING": "1",
        "SEGMENTATION_RETRY_AFTER_SECONDS": str(RETRY_AFTER),
        "SEGMENTATION_MAX_BODY_BYTES": str(64 * 1024 * 1024),
    }
    server = ServerProcess(env, folder / "uvicorn.log")
    try:
        server.wait_until_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def slow_body() -> bytes:
    records = make_population(SLOW_CUSTOMERS, 4, random_state=3).records()
    return json.dumps({"customerData": records, "options": {"includeCustomers": False}}).encode()


def analysis_workers(server: ServerProcess) -> list[psutil.Process]:
    """The server's analysis worker processes (the job workers have a name of their own)."""
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [child for child in children if child.name() == ANALYSIS_WORKER_NAME]


def only_worker(server: ServerProcess) -> psutil.Process:
    workers = analysis_workers(server)
    assert len(workers) == 1, workers
    return workers[0]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class InFlight:
    """A POST /api/analyze sent from a thread; `response` once it has returned."""

    def __init__(self, base_url: str, body: bytes) -> None:
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, args=(base_url, body), daemon=True)
        self._thread.start()

    def _send(self, base_url: str, body: bytes) -> None:
        try:
            self.response = httpx.post(
                f"{base_url}/api/analyze",
                content=body,
                headers={"content-type": "application/json"},
                timeout=REQUEST_TIMEOUT,
            )
        except BaseException as error:  # re-raised in the test's thread by `result`
            self.error = error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> httpx.Response:
        self._thread.join(REQUEST_TIMEOUT)
        if self.error is not None:
            raise self.error
        assert self.response is not None, "the request did not return"
        return self.response


def send_and_wait_until_running(base_url: str, body: bytes, worker: psutil.Process) -> InFlight:
    """Send `body` and return once the idle worker has spent BUSY_CPU_SECONDS on it (it
    parses, then analyses: seconds of CPU in all)."""
    start = cpu_seconds(worker)
    request = InFlight(base_url, body)
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while cpu_seconds(worker) - start < BUSY_CPU_SECONDS:
        assert not request.done, "the request returned before its worker was seen running"
        assert time.monotonic() < deadline, "the worker never started on the request"
        time.sleep(0.02)
    return request


# --- a killed worker ---------------------------------------------------------------------------


def test_a_worker_killed_during_an_analysis_gives_a_500_and_is_replaced(
    tiny_pool: ServerProcess, slow_body: bytes
) -> None:
    base = tiny_pool.base_url
    worker = only_worker(tiny_pool)
    request = send_and_wait_until_running(base, slow_body, worker)
    worker.send_signal(signal.SIGKILL)
    body = assert_error(request.result(), 500, mentions=("worker", "died", "retried"))
    assert body["errors"] == [], body
    # the next analysis runs in a new worker
    assert_still_serving(base)
    replacement = only_worker(tiny_pool)
    assert replacement.pid != worker.pid


def test_a_worker_killed_while_idle_fails_no_request(tiny_pool: ServerProcess) -> None:
    # No worker was running the next request, so it must not get "the worker died": it runs
    # on the replaced pool.
    worker = only_worker(tiny_pool)
    worker.send_signal(signal.SIGKILL)
    # reaped only once the pool has marked itself broken, so the next request sees that
    _gone, alive = psutil.wait_procs([worker], timeout=30)
    assert alive == [], alive
    payload = analyze_ok(tiny_pool.base_url, small_customers(12), nClusters=2)
    assert len(all_customers(payload)) == 12
    assert only_worker(tiny_pool).pid != worker.pid


def test_workers_yield_the_cores_to_the_event_loop(tiny_pool: ServerProcess) -> None:
    # /health must answer while workers take every core: they run at a lower priority, and
    # the job workers (batch work) below the analysis workers (a caller waits on those)
    server = psutil.Process(tiny_pool.process.pid)
    children = server.children(recursive=True)
    by_name = {child.name(): child.nice() for child in children}
    assert by_name[ANALYSIS_WORKER_NAME] == server.nice() + ANALYSIS_WORKER_NICENESS
    assert by_name[JOB_WORKER_NAME] == server.nice() + JOB_WORKER_NICENESS


def test_the_server_process_loads_no_fitting_library(tiny_pool: ServerProcess) -> None:
    # its workers fit; the server itself only reads and routes (90 MB less for each server)
    mapped = {region.path for region in psutil.Process(tiny_pool.process.pid).memory_maps()}
    libraries = ("/sklearn/", "/scipy/", "/fastcluster")
    fitting = [path for path in mapped if any(library in path for library in libraries)]
    assert not fitting, fitting[:5]
    workers = analysis_workers(tiny_pool)
    assert workers and any(
        "/sklearn/" in region.path for region in workers[0].memory_maps()
    )  # (the check itself sees a library when one is loaded)


# --- a full pool -------------------------------------------------------------------------------


def test_a_full_pool_gives_a_503_with_retry_after(
    tiny_pool: ServerProcess, slow_body: bytes
) -> None:
    base = tiny_pool.base_url
    assert_still_serving(base)  # a worker is up (a previous test may have replaced it)
    request = send_and_wait_until_running(base, slow_body, only_worker(tiny_pool))
    refused = analyze(base, small_customers(12), nClusters=2)
    body = assert_error(refused, 503, mentions=("SEGMENTATION_MAX_PENDING", "retry"))
    assert body["errors"] == [], body
    assert refused.headers["retry-after"] == str(RETRY_AFTER)
    # the analysis that held the place finishes normally, and frees it
    finished = request.result()
    assert finished.status_code == 200, finished.text[:2000]
    assert sum(c["size"] for c in finished.json()["clusters"]) == SLOW_CUSTOMERS
    assert_still_serving(base)


# --- concurrent calls --------------------------------------------------------------------------

CONCURRENT = 8  # the default SEGMENTATION_MAX_PENDING: all of them are admitted


def test_concurrent_analyses_all_succeed_with_their_own_results(base_url: str) -> None:
    # eight different inputs (sizes, segment counts, seeds), each first analysed alone
    inputs = [
        (make_population(150 + 40 * i, 2 + i % 3, random_state=i).records(), {"randomState": i})
        for i in range(CONCURRENT)
    ]
    alone = [analyze_ok(base_url, customers, **options) for customers, options in inputs]
    start = threading.Barrier(CONCURRENT)

    def concurrently(i: int) -> httpx.Response:
        customers, options = inputs[i]
        start.wait()
        return analyze(base_url, customers, **options)

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        together = list(pool.map(concurrently, range(CONCURRENT)))
    ids = set()
    for i, response in enumerate(together):
        assert response.status_code == 200, f"request {i}: {response.text[:2000]}"
        payload = response.json()
        ids.add(payload.pop("analysisId"))
        expected = dict(alone[i])
        expected.pop("analysisId")
        # same input, same seed: the same body as alone, whatever ran beside it
        assert payload == expected, f"request {i} differs from the same request alone"
        echoed = sorted(c["id"] for c in all_customers(payload))
        assert echoed == sorted(c["id"] for c in inputs[i][0]), f"request {i}"
    assert len(ids) == CONCURRENT  # each stored under its own id


# --- a streamed body ---------------------------------------------------------------------------


def streamed(n_customers: int, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """An /api/analyze body in chunks, as a generator: httpx sends it chunked, without a
    Content-Length."""
    customers = small_customers(n_customers)
    head = b'{"customerData": ['
    rows = (json.dumps(c).encode() for c in customers)
    buffer = head + next(rows)
    for row in rows:
        buffer += b"," + row
        if len(buffer) >= chunk_bytes:
            yield buffer
            buffer = b""
    yield buffer + b"]}"


def post_streamed(base_url: str, n_customers: int) -> httpx.Response:
    response = httpx.post(
        f"{base_url}/api/analyze",
        content=streamed(n_customers),
        headers={"content-type": "application/json"},
        timeout=REQUEST_TIMEOUT,
    )
    # what was sent: chunked, so the server can only count the bytes as they arrive
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    return response


def streamed_size(n_customers: int) -> int:
    return sum(len(chunk) for chunk in streamed(n_customers))


@pytest.mark.parametrize(
    "n_customers",
    [
        40_000,  # a little over the 3 MB limit
        400_000,  # ten times over: refused long before the end arrives
    ],
)
def test_a_streamed_body_over_the_limit_is_413(base_url: str, n_customers: int) -> None:
    assert streamed_size(n_customers) > MAX_BODY_BYTES
    response = post_streamed(base_url, n_customers)
    body = assert_error(
        response, 413, mentions=(str(MAX_BODY_BYTES), "SEGMENTATION_MAX_BODY_BYTES")
    )
    assert body["errors"] == [], body
    assert_still_serving(base_url)


def test_a_streamed_body_under_the_limit_is_analysed(base_url: str) -> None:
    n_customers = 30_000
    assert streamed_size(n_customers) < MAX_BODY_BYTES
    response = post_streamed(base_url, n_customers)
    assert response.status_code == 200, response.text[:2000]
    assert len(all_customers(response.json())) == n_customers
