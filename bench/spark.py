"""Benchmark of the Spark engine: `make bench-spark` (`python -m bench.spark`).

Generates 1M, 3M and 10M customers (8 numeric and 4 categorical fields, 6 true segments) as
folders of Parquet files, runs `segmentation.spark.analyze` at local[2] on each, and prints
the end-to-end time, the stage times, the driver's peak RSS and the rows per second. Each
run is a process of its own, as a scheduled job is: the driver is that Python process and
the JVM it starts (which in local mode also runs the executors); the Python workers the JVM
forks for mapInPandas are measured apart. The 1M file also goes through the local engine
for the ratio. Sizes: BENCH_SPARK_SIZES
(comma-separated, default 1000000,3000000,10000000). Results: bench/results/spark.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from sklearn.metrics import adjusted_rand_score

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 1_000_000
MiB = 1024 * 1024
N_SEGMENTS = 6
CATEGORIES = {
    "region": ["North", "South", "East", "West"],
    "channel": ["web", "store", "app"],
    "plan": ["basic", "plus", "premium"],
    "segment_code": ["a", "b", "c", "d", "e"],
}


def _chunk(rows: int, start: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    truth = rng.integers(0, N_SEGMENTS, rows)
    centres = np.random.default_rng(7).normal(0, 3, size=(N_SEGMENTS, 8))
    values = centres[truth] + rng.normal(0, 1, size=(rows, 8))
    frame = pd.DataFrame(values, columns=[f"x{i}" for i in range(8)])
    frame.insert(0, "id", np.arange(start, start + rows))
    level_rng = np.random.default_rng(11)
    for name, levels in CATEGORIES.items():
        # each segment leans to one level, the rest spread
        lean = level_rng.integers(0, len(levels), N_SEGMENTS)
        pick = np.where(rng.random(rows) < 0.6, lean[truth], rng.integers(0, len(levels), rows))
        frame[name] = np.array(levels, dtype=object)[pick]
    return frame, truth


def generate(rows: int, folder: Path) -> np.ndarray:
    """`rows` customers as Parquet files of 1M rows each; returns the true segments."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rows)
    truths = []
    for part, start in enumerate(range(0, rows, CHUNK)):
        frame, truth = _chunk(min(CHUNK, rows - start), start, rng)
        frame.to_parquet(folder / f"part-{part:05d}.parquet", index=False)
        truths.append(truth)
    return np.concatenate(truths)


class PeakRss:
    """Peak resident memory of a process tree, sampled every 50 ms: the driver (the process
    and the JVM it started) and, apart, the Python workers the JVM forks for mapInPandas
    (executor-side work that runs on the cluster's machines outside local mode)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.workers_peak = 0
        self.python_peak = self.jvm_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.wait(0.05):
            try:
                python, jvm, workers = root.memory_info().rss, 0, 0
                children = root.children(recursive=True)
            except psutil.Error:
                return
            for child in children:
                try:
                    rss = child.memory_info().rss
                    if "java" in child.name():
                        jvm += rss
                    else:
                        workers += rss
                except psutil.Error:
                    continue
            self.python_peak, self.jvm_peak = max(self.python_peak, python), max(self.jvm_peak, jvm)
            self.peak = max(self.peak, python + jvm)
            self.workers_peak = max(self.workers_peak, workers)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


SPARK_RUN = """
import json, sys, time
from segmentation import spark
started = time.perf_counter()
session = spark.session("local[2]", app_name="bench-spark")
jvm = time.perf_counter() - started
started = time.perf_counter()
analysis = spark.analyze(sys.argv[1], spark=session)
analysis.assignments.write.mode("overwrite").parquet(sys.argv[2])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "jvmStartSeconds": round(jvm, 1),
                  "segments": len(analysis.segments), "stages": analysis.timings}))
session.stop()
"""


def _spark_run(folder: Path, out: Path) -> tuple[dict[str, Any], PeakRss]:
    """The Spark engine on `folder` in a process of its own, its memory watched."""
    child = subprocess.Popen(
        [sys.executable, "-c", SPARK_RUN, str(folder), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    with PeakRss(child.pid) as rss:
        stdout, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the Spark run on {folder} failed ({child.returncode})")
    return json.loads(stdout.strip().splitlines()[-1]), rss


LOCAL_RUN = """
import sys, time
import numpy as np, pandas as pd
from segmentation import analyze
frame = pd.read_parquet(sys.argv[1])
started = time.perf_counter()
labels = analyze(frame).labels
print(round(time.perf_counter() - started, 1))
np.save(sys.argv[2], labels)
"""


def _local_run(folder: Path, truth: np.ndarray) -> tuple[float, float]:
    """The local engine on the same files, in a subprocess: (seconds, ARI vs the truth)."""
    labels_path = folder.parent / "local-labels.npy"
    result = subprocess.run(
        [sys.executable, "-c", LOCAL_RUN, str(folder), str(labels_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = float(result.stdout.strip().splitlines()[-1])
    return seconds, round(adjusted_rand_score(truth, np.load(labels_path)), 3)


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SPARK_SIZES", "1000000,3000000,10000000")
             .split(",")]  # fmt: skip
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as scratch:
        for rows in sizes:
            folder = Path(scratch) / f"customers-{rows}"
            truth = generate(rows, folder)
            out = Path(scratch) / f"assignments-{rows}"
            run, rss = _spark_run(folder, out)
            seconds = run["seconds"]
            scored = pd.read_parquet(out, columns=["id", "clusterId"])
            scored = scored.assign(id=scored["id"].astype(np.int64)).sort_values("id")
            ari = adjusted_rand_score(truth, scored["clusterId"].to_numpy())
            row: dict[str, Any] = {
                "rows": rows, "seconds": round(seconds, 1),
                "rowsPerSecond": round(rows / seconds), "peakRssMiB": round(rss.peak / MiB),
                "workersPeakRssMiB": round(rss.workers_peak / MiB),
                "driverPythonPeakRssMiB": round(rss.python_peak / MiB),
                "driverJvmPeakRssMiB": round(rss.jvm_peak / MiB),
                "segments": run["segments"], "ari": round(ari, 3),
                "jvmStartSeconds": run["jvmStartSeconds"], "stages": run["stages"],
            }  # fmt: skip
            if rows == sizes[0]:
                # in a process of its own: the driver's peak memory stays the Spark engine's
                row["localSeconds"], row["localAri"] = _local_run(folder, truth)
            results.append(row)
            print(json.dumps(row), flush=True)
            del scored, truth
    base = results[0]
    for row in results:
        print(
            f"{row['rows']:>10,} customers: {row['seconds']:7.1f} s end to end, "
            f"{row['rowsPerSecond']:>9,} rows/s, driver peak RSS {row['peakRssMiB']:,} MiB "
            f"(Python workers {row['workersPeakRssMiB']:,} MiB), "
            f"{row['segments']} segments, ARI {row['ari']:.3f}; "
            f"{row['seconds'] / base['seconds'] * base['rows'] / row['rows']:.2f}x the 1M "
            "cost per row"
        )
    if "localSeconds" in base:
        print(
            f"local engine on {base['rows']:,}: {base['localSeconds']} s (ARI "
            f"{base['localAri']}); Spark / local = {base['seconds'] / base['localSeconds']:.2f}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "spark.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
