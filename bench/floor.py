"""The six speed figures of `make bench`, each beside its peer and the floor, in one run.

Run from the project root: `.venv/bin/python -m bench.floor` (what `make bench` calls first).

Every figure is a ratio against something measured in the same run on the same machine,
because this machine is noisy:

1. 10,000 customers over HTTP: our server against the plain approach (bench/plain_app.py);
2. 1,000 customers over HTTP: seconds;
3. 100,000 customers over HTTP against the floor, one plain scikit-learn `KMeans` fit at the
   true k on the same customers' standardized numbers (what no segmentation can beat);
4. 1,000,000 customers as a Parquet job: seconds end to end;
5. the peak memory of the server and its workers during that job: summed RSS (shared
   libraries counted once per process) and summed PSS (each shared page split among them);
6. scoring 100,000 new customers, `POST /api/analyses/{id}/assign`: customers per second,
   the median of 3 warm requests;

and `/health`'s worst latency while the 100,000-customer analysis runs, and while a second
1,000,000-customer job runs beside 16 clients posting 1,000-customer analyses back to back
(the clients and the health checks each from a process of their own, so that neither they
nor this process' upload of the job delay a check; the 503s the full pool gives the clients
are counted). Two figures have no peer (seconds at 1,000, customers scored per second), so the
run also times a fixed pure-Python loop before and after: the machine's speed at the time.
Results: bench/results/floor.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from bench.jobs import LOAD_CLIENTS, measure_assign, measure_health_under_load, measure_job
from bench.run import (
    N_SEGMENTS,
    OURS_TIMEOUT_S,
    RESULTS_DIR,
    Run,
    Server,
    machine,
    measure,
    median_run,
    python_loop_seconds,
    request_body,
    running,
    warm_up,
)
from segmentation.synthetic import make_population

PLAIN_TIMEOUT_S = 300.0
TARGETS = {
    "speedup_10k": 20.0,  # at least, x the plain approach
    "seconds_1k": 0.2,  # under
    "floor_ratio_100k": 25.0,  # at most, x one plain KMeans fit
    "job_seconds_1m": 10.0,  # under
    "job_peak_gib_1m": 1.5,  # under
    "assign_per_second": 500_000,  # at least
    "health_max_ms": 100.0,  # under
    "health_under_load_max_ms": 100.0,  # under
}


def _median(server: Server, size: int, repeats: int, ours: bool, poll_health: bool) -> Run:
    """The median of `repeats` requests, timed alone: no memory is a target at these sizes,
    and sampling it would take CPU from the server (see `measure`)."""
    population = make_population(size, N_SEGMENTS, random_state=size)
    body = request_body(population, ours)
    timeout = OURS_TIMEOUT_S if ours else PLAIN_TIMEOUT_S
    return median_run([measure(server, population, body, timeout, poll_health,
                               sample_memory=False) for _ in range(repeats)])  # fmt: skip


def kmeans_floor(size: int, repeats: int = 3) -> float:
    """Median seconds of one plain `KMeans` fit at the true k on the customers' numbers."""
    frame = make_population(size, N_SEGMENTS, random_state=size).frame
    numbers = frame.select_dtypes("number").drop(columns="id")
    X = StandardScaler().fit_transform(numbers.fillna(numbers.median()))
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        KMeans(N_SEGMENTS, n_init=1, random_state=seed).fit(X)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def figures(job_customers: int, assign_customers: int) -> dict[str, Any]:
    loop_before = python_loop_seconds()
    floor_100k = kmeans_floor(100_000)
    ours, plain = Server("ours", "main:app"), Server("plain", "bench.plain_app:app")
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as scratch, running(ours):
        warm_up(ours, 1_000, ours=True)
        at_1k = _median(ours, 1_000, 5, ours=True, poll_health=False)
        at_10k = _median(ours, 10_000, 3, ours=True, poll_health=False)
        at_100k = _median(ours, 100_000, 3, ours=True, poll_health=True)
        scored = measure_assign(ours, assign_customers)
        job = measure_job(ours, job_customers, Path(scratch))
        loaded = measure_health_under_load(ours, job_customers, Path(scratch))
    with running(plain):
        warm_up(plain, 1_000, ours=False)
        plain_10k = _median(plain, 10_000, 3, ours=False, poll_health=False)
    return {
        "python_loop_seconds": {"before": loop_before, "after": python_loop_seconds()},
        "seconds_1k": at_1k.seconds,
        "seconds_10k": at_10k.seconds,
        "plain_seconds_10k": plain_10k.seconds,
        "speedup_10k": round(plain_10k.seconds / at_10k.seconds, 1)
        if plain_10k.seconds and at_10k.seconds
        else None,
        "seconds_100k": at_100k.seconds,
        "kmeans_floor_seconds_100k": round(floor_100k, 3),
        "floor_ratio_100k": round(at_100k.seconds / floor_100k, 1) if at_100k.seconds else None,
        "health_max_ms": at_100k.health.get("max_ms"),
        "health_p99_ms": at_100k.health.get("p99_ms"),
        "ari_100k": at_100k.ari,
        "job_status_1m": job["status"],
        "job_seconds_1m": job["total_seconds"],
        "job_peak_gib_1m": round(job["peak_mib"] / 1024, 2),
        "job_peak_pss_gib_1m": round(job["peak_pss_mib"] / 1024, 2),
        "job_stages_1m": job["stages"],
        "assign_per_second": scored["customers_per_second"],
        "assign_seconds": scored["seconds"],
        "assign_trials": scored["trials"],
        "assign_server_timing": scored["server_timing"],
        "job_peak_mib_each_1m": job["peak_mib_each"],
        "health_under_load_max_ms": loaded["max_ms"],
        "health_under_load": loaded,
        "runs": {
            "1k": at_1k.trials,
            "10k": at_10k.trials,
            "100k": at_100k.trials,
            "plain_10k": plain_10k.trials,
        },
    }


def _verdict(name: str, value: float | None) -> str:
    if value is None:
        return "NOT RUN"
    target = TARGETS[name]
    higher_is_better = name in ("speedup_10k", "assign_per_second")
    return "PASS" if (value >= target if higher_is_better else value < target) else "FAIL"


def table(result: dict[str, Any]) -> str:
    r = result
    rows = [
        ("10,000 over HTTP vs the plain approach",
         f"{r['seconds_10k']} s vs {r['plain_seconds_10k']} s", f"{r['speedup_10k']}x faster",
         ">= 20x", _verdict("speedup_10k", r["speedup_10k"])),
        ("1,000 over HTTP", f"{r['seconds_1k']} s", "", "< 0.2 s",
         _verdict("seconds_1k", r["seconds_1k"])),
        ("100,000 over HTTP vs one KMeans fit at the true k",
         f"{r['seconds_100k']} s vs {r['kmeans_floor_seconds_100k']} s",
         f"{r['floor_ratio_100k']}x the fit", "<= 25x",
         _verdict("floor_ratio_100k", r["floor_ratio_100k"])),
        ("1,000,000 as a Parquet job", f"{r['job_seconds_1m']} s ({r['job_status_1m']})", "",
         "< 10 s", _verdict("job_seconds_1m", r["job_seconds_1m"])),
        ("peak memory, server and workers, 1M job (summed RSS)", f"{r['job_peak_gib_1m']} GiB",
         f"PSS {r['job_peak_pss_gib_1m']} GiB", "< 1.5 GiB",
         _verdict("job_peak_gib_1m", r["job_peak_gib_1m"])),
        ("assign 100,000 new customers (median of 3)",
         f"{r['assign_per_second']:,} customers/s", "",
         ">= 500k/s", _verdict("assign_per_second", r["assign_per_second"])),
        ("/health during the 100,000 analysis", f"max {r['health_max_ms']} ms, p99 "
         f"{r['health_p99_ms']} ms", "", "< 100 ms", _verdict("health_max_ms", r["health_max_ms"])),
        (f"/health during a 1M job and {LOAD_CLIENTS} clients' analyses",
         f"max {r['health_under_load_max_ms']} ms, p99 {r['health_under_load']['p99_ms']} ms",
         f"{r['health_under_load']['calls']} calls", "< 100 ms",
         _verdict("health_under_load_max_ms", r["health_under_load_max_ms"])),
    ]  # fmt: skip
    lines = ["| work | measured | ratio | target | verdict |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    loop = r["python_loop_seconds"]
    lines.append(
        f"\nthe machine's speed: a fixed pure-Python loop took {loop['before']} s before "
        f"this run and {loop['after']} s after it (bench.run.python_loop_seconds)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job-customers", type=int, default=1_000_000)
    parser.add_argument("--assign-customers", type=int, default=100_000)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "floor.json")
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(exist_ok=True)
    result = figures(args.job_customers, args.assign_customers)
    print(table(result))
    args.output.write_text(json.dumps({"machine": machine(), **result}, indent=2))
    print(f"\nresults written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
