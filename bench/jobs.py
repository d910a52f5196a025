"""Benchmark of the stored-analysis features over real HTTP (`make bench` runs it second).

1. A 1,000,000-customer Parquet file analysed as a job: time to the first progress report,
   total time, and the peak resident memory of the server with all its worker processes.
2. The cache at 10,000 customers: the same request computed (miss) and answered from the
   store (hit), and their ratio.
3. Scoring throughput: 100,000 new customers assigned to a stored analysis, customers/s.

Run from the project root: `.venv/bin/python -m bench.jobs [--customers 1000000]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

from bench.run import (
    RESULTS_DIR,
    HealthPoller,
    MemorySampler,
    MiB,
    Server,
    machine,
    request_body,
    running,
)
from segmentation.synthetic import make_population

JOB_POLL_S = 0.1
JOB_TIMEOUT_S = 1800.0
TARGET_JOB_PEAK_GIB = 6.0
# the load beside a job: this many clients posting analyses of this many customers
LOAD_CLIENTS = 16
LOAD_CUSTOMERS = 1_000
LOAD_RETRY_S = 0.2


def _post_analysis(client: httpx.Client, url: str, body: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.post(
        f"{url}/api/analyze", content=body, headers={"content-type": "application/json"}
    )
    response.raise_for_status()
    return time.perf_counter() - started, response.headers["x-cache"]


def measure_cache(server: Server, n_customers: int) -> dict[str, Any]:
    population = make_population(n_customers, 5, random_state=77)
    body = json.dumps({"customerData": population.records()}).encode()
    with httpx.Client(timeout=600) as client:
        miss, miss_status = _post_analysis(client, server.url, body)
        hits = [_post_analysis(client, server.url, body) for _ in range(3)]
    hit = statistics.median(seconds for seconds, _ in hits)
    return {
        "customers": n_customers,
        "miss_seconds": round(miss, 4),
        "hit_seconds": round(hit, 4),
        "miss_over_hit": round(miss / hit, 1),
        "statuses": [miss_status, *(status for _, status in hits)],
    }


def measure_assign(server: Server, n_new: int, repeats: int = 3) -> dict[str, Any]:
    """Customers scored per second: the median of `repeats` requests of `n_new` new
    customers, after one unmeasured request (as every other figure, warm)."""
    learned = make_population(10_000, 5, random_state=78).records()
    fresh = make_population(n_new, 5, random_state=79).records()
    body = json.dumps({"customerData": fresh}).encode()
    trials, timings = [], []
    with httpx.Client(timeout=600) as client:
        analysis = client.post(f"{server.url}/api/analyze", json={"customerData": learned})
        analysis.raise_for_status()
        url = f"{server.url}/api/analyses/{analysis.json()['analysisId']}/assign"
        for trial in range(repeats + 1):
            started = time.perf_counter()
            scored = client.post(url, content=body, headers={"content-type": "application/json"})
            seconds = time.perf_counter() - started
            scored.raise_for_status()
            if trial:
                trials.append(round(seconds, 3))
                timings.append(scored.headers.get("server-timing"))
    seconds = statistics.median(trials)
    return {
        "customers": n_new,
        "seconds": seconds,
        "customers_per_second": round(n_new / seconds),
        "trials": trials,
        "server_timing": timings,
    }


def _follow_job(server: Server, path: Path) -> dict[str, Any]:
    """Submit a Parquet file as a job and poll it to its end: its last state, the time to
    submit, to the first progress and to the end, and every stage seen."""
    started = time.perf_counter()
    first_progress = None
    stages: list[tuple[float, str, float]] = []
    with httpx.Client(timeout=600) as client, path.open("rb") as upload:
        submitted = client.post(f"{server.url}/api/jobs", files={"file": (path.name, upload)})
        submitted.raise_for_status()
        job_id = submitted.json()["jobId"]
        while time.perf_counter() - started < JOB_TIMEOUT_S:
            job = client.get(f"{server.url}/api/jobs/{job_id}").json()
            now = time.perf_counter() - started
            if not stages or stages[-1][1:] != (job["stage"], job["progress"]):
                stages.append((round(now, 2), job["stage"], job["progress"]))
            if first_progress is None and job["progress"] > 0:
                first_progress = now
            if job["status"] in {"succeeded", "failed", "cancelled"}:
                break
            time.sleep(JOB_POLL_S)
    return {
        "status": job["status"],
        "error": job["error"],
        "submit_seconds": round(submitted.elapsed.total_seconds(), 3),
        "first_progress_seconds": round(first_progress, 2) if first_progress else None,
        "total_seconds": round(time.perf_counter() - started, 2),
        "stages": stages,
    }


def measure_job(server: Server, n_customers: int, folder: Path) -> dict[str, Any]:
    path = folder / "customers.parquet"
    make_population(n_customers, 5, random_state=80).frame.to_parquet(path, index=False)
    sampler = MemorySampler(server.pid, pss=True)
    sampler.start()
    job = _follow_job(server, path)
    peak = sampler.finish()
    return {
        "customers": n_customers,
        **job,
        "peak_mib": round(peak / MiB),
        "peak_pss_mib": round(sampler.peak_pss / MiB),
        # the server first, then its workers: each one's own peak
        "peak_mib_each": [round(rss / MiB) for rss in sampler.each.values()],
    }


def _post_analyses_until(
    url: str, clients: int, ready: Event, stop: Event, outcome: Queue[dict[int, int]]
) -> None:
    """In a process of its own, so that the clients' work does not delay the health checks:
    `clients` threads posting 1,000-customer analyses back to back until `stop` (after a 503,
    the Retry-After a client would honour, shortened to LOAD_RETRY_S); then the count of
    each status (0: no answer)."""
    bodies = [
        request_body(make_population(LOAD_CUSTOMERS, 5, random_state=100 + i), ours=True)
        for i in range(clients)
    ]
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def post(body: bytes) -> None:
        with httpx.Client(timeout=600) as client:
            while not stop.is_set():
                try:
                    status = client.post(
                        f"{url}/api/analyze",
                        content=body,
                        headers={"content-type": "application/json"},
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    counts[status] += 1
                if status == 503:
                    stop.wait(LOAD_RETRY_S)

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    ready.set()
    for thread in threads:
        thread.join()
    outcome.put(dict(counts))


def _poll_health_until(
    url: str, ready: Event, stop: Event, outcome: Queue[dict[str, float | int]]
) -> None:
    """In a process of its own, so that uploading the job and reading its state (this
    benchmark's own Python work) cannot delay a check: `HealthPoller` until `stop`."""
    poller = HealthPoller(url)
    poller.start()
    ready.set()
    stop.wait()
    outcome.put(poller.finish())


def measure_health_under_load(
    server: Server, n_customers: int, folder: Path, clients: int = LOAD_CLIENTS
) -> dict[str, Any]:
    """`GET /health`'s latency every 50 ms while a job of `n_customers` runs and `clients`
    clients post analyses back to back, and what those clients got."""
    path = folder / "load.parquet"
    make_population(n_customers, 5, random_state=81).frame.to_parquet(path, index=False)
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    load_ready, load_outcome = spawn.Event(), spawn.Queue()
    health_ready, health_outcome = spawn.Event(), spawn.Queue()
    helpers = [
        spawn.Process(target=_post_analyses_until, daemon=True,
                      args=(server.url, clients, load_ready, stop, load_outcome)),
        spawn.Process(target=_poll_health_until, daemon=True,
                      args=(server.url, health_ready, stop, health_outcome)),
    ]  # fmt: skip
    for helper in helpers:
        helper.start()
    load_ready.wait(120)
    health_ready.wait(120)
    try:
        job = _follow_job(server, path)
    finally:
        stop.set()
        statuses = load_outcome.get(timeout=600)
        health = health_outcome.get(timeout=600)
        for helper in helpers:
            helper.join()
    return {
        "customers": n_customers,
        "clients": clients,
        "job_status": job["status"],
        "job_seconds": job["total_seconds"],
        "analyses": {str(status): count for status, count in sorted(statuses.items())},
        **health,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000, help="job size")
    parser.add_argument("--cache-customers", type=int, default=10_000)
    parser.add_argument("--assign-customers", type=int, default=100_000)
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    before = machine()
    server = Server("ours-jobs", "main:app", cache=True)
    with tempfile.TemporaryDirectory() as folder, running(server):
        cache = measure_cache(server, args.cache_customers)
        assign = measure_assign(server, args.assign_customers)
        job = measure_job(server, args.customers, Path(folder))
    peak_gib = job["peak_mib"] / 1024
    lines = [
        f"job: {job['customers']:,} customers from Parquet: {job['status']} in "
        f"{job['total_seconds']} s, first progress after {job['first_progress_seconds']} s, "
        f"peak {peak_gib:.2f} GiB (target < {TARGET_JOB_PEAK_GIB:g} GiB: "
        f"{'PASS' if peak_gib < TARGET_JOB_PEAK_GIB and job['status'] == 'succeeded' else 'FAIL'})",
        "  stages (s, stage, progress): " + ", ".join(f"{t} {s} {p}" for t, s, p in job["stages"]),
        f"cache at {cache['customers']:,} customers: miss {cache['miss_seconds']} s, hit "
        f"{cache['hit_seconds']} s (median of 3): hit is {cache['miss_over_hit']}x faster "
        f"({', '.join(cache['statuses'])})",
        f"assign: {assign['customers']:,} new customers in {assign['seconds']} s = "
        f"{assign['customers_per_second']:,} customers/s",
    ]
    print("\n".join(lines))
    output = RESULTS_DIR / "jobs.json"
    output.write_text(
        json.dumps({"machine": before, "job": job, "cache": cache, "assign": assign}, indent=2)
    )
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
