"""Where the time goes: every stage of a request, per size, in one worker-like process.

Run from the project root: `.venv/bin/python -m bench.profile` (what `make bench` runs after
bench.floor; it prints the README's profile table). Each row is the median over `--repeats`
runs of the service call a worker process makes for that request, its stages read from the
Server-Timing the service returns:

- `POST /api/analyze` with 1,000, 10,000 and 100,000 customers: read (JSON parse and checks),
  the analysis stages (features, search, fit, explain, profile) and store (the response
  written to disk with every customer, and read back);
- `POST /api/analyses/{id}/assign` with 100,000 new customers: read, score, write;
- a 1,000,000-customer Parquet job: reading the file, the stages, storing.

`--pyinstrument SIZE` (analyze sizes, `assign` or `job`) also prints pyinstrument's call
tree of one run of that request (`pip install -e '.[bench]'`). Results:
bench/results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.run import N_SEGMENTS, RESULTS_DIR, machine
from segmentation.config import Settings
from segmentation.files import read_customers
from segmentation.options import AnalysisOptions
from segmentation.service import SegmentationService
from segmentation.synthetic import make_population
from segmentation.workers import warm_up

ANALYZE_SIZES = (1_000, 10_000, 100_000)
ASSIGN_SIZE = 100_000
JOB_SIZE = 1_000_000


def steps_of(server_timing: str) -> dict[str, float]:
    """`read;dur=12.0, search;dur=85.1` as seconds per step."""
    steps = (part.split(";dur=") for part in server_timing.split(", ") if part)
    return {name: float(ms) / 1000 for name, ms in steps}


def _analyze_body(size: int) -> bytes:
    population = make_population(size, N_SEGMENTS, random_state=size)
    return json.dumps(
        {"customerData": population.records(), "options": {"randomState": 0}}
    ).encode()


def _job(service: SegmentationService, path: Path) -> dict[str, float]:
    """A Parquet job's work as the job worker does it (bench.jobs measures it over HTTP)."""
    started = time.perf_counter()
    customers = read_customers(path, "parquet")
    reading = time.perf_counter() - started
    analysis = service.run_analysis(customers, AnalysisOptions())
    started = time.perf_counter()
    service.store_analysis(analysis, customers, AnalysisOptions())
    return {"reading": reading, **analysis.timings, "store": time.perf_counter() - started}


def _median_steps(runs: list[dict[str, float]]) -> dict[str, float]:
    steps = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    return {**steps, "total": statistics.median(sum(run.values()) for run in runs)}


def _workloads(service: SegmentationService, scratch: Path) -> dict[str, Callable[[], Any]]:
    """Each request as a call returning its steps in seconds."""
    calls: dict[str, Callable[[], dict[str, float]]] = {}
    for size in ANALYZE_SIZES:
        body = _analyze_body(size)
        calls[f"{size:,} analyze"] = lambda body=body: steps_of(
            service.analyze_body(body).server_timing
        )
    learned = service.analyze_body(_analyze_body(10_000))
    analysis_id = json.loads(learned.body)["analysisId"]
    fresh = make_population(ASSIGN_SIZE, N_SEGMENTS, random_state=79).records()
    assign_body = json.dumps({"customerData": fresh}).encode()
    calls[f"{ASSIGN_SIZE:,} assign"] = lambda: steps_of(
        service.assign_body(analysis_id, assign_body).server_timing
    )
    path = scratch / "customers.parquet"
    make_population(JOB_SIZE, N_SEGMENTS, random_state=80).frame.to_parquet(path, index=False)
    calls[f"{JOB_SIZE:,} job"] = lambda: _job(service, path)
    return calls


def table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| request | total | steps (seconds) |", "|---|---:|---|"]
    for request, steps in results.items():
        parts = ", ".join(
            f"{name} {seconds:.3f}" for name, seconds in steps.items() if name != "total"
        )
        lines.append(f"| {request} | {steps['total']:.3f} s | {parts} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--pyinstrument", metavar="REQUEST", help="e.g. '100,000 analyze', '100,000 assign', "
        "'1,000,000 job': print the call tree of one more run of it",
    )  # fmt: skip
    args = parser.parse_args(argv)
    warm_up()  # what every worker process does first: one thread of BLAS, a warm stack
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        service = SegmentationService(Settings(data_dir=Path(scratch) / "data", cache=False))
        calls = _workloads(service, Path(scratch))
        for request, call in calls.items():
            results[request] = _median_steps([call() for _ in range(args.repeats)])
            print(f"{request}: {results[request]['total']:.3f} s", file=sys.stderr)
        print(table(results))
        if args.pyinstrument:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            with profiler:
                calls[args.pyinstrument]()
            print(profiler.output_text(unicode=False, color=False))
    RESULTS_DIR.mkdir(exist_ok=True)
    output = RESULTS_DIR / "profile.json"
    output.write_text(json.dumps({"machine": machine(), "steps": results}, indent=2))
    print(f"\nresults written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
