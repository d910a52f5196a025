"""Benchmark: our service against the plain approach, over real HTTP, on known segments.

Run from the project root: `.venv/bin/python -m bench.run` (what `make bench` calls).

Both servers run as real uvicorn subprocesses on 127.0.0.1, so the numbers include parsing,
serialisation and the worker processes, as a client would see them. For each population size
the benchmark records the client-side wall time, the peak resident memory of the server and
all its children, and the adjusted Rand index against the true segments. During our requests
it also polls `GET /health` to show that a long analysis does not block the server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import numpy as np
import psutil
from sklearn.metrics import adjusted_rand_score

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
RESULTS_DIR = ROOT / "bench" / "results"
HOST = "127.0.0.1"  # never any other address: the benchmark must not expose a server

with contextlib.suppress(ImportError):  # the package is installed by `make install`...
    import segmentation  # noqa: F401
if "segmentation" not in sys.modules:  # ...but a bare checkout still runs from src/
    sys.path.insert(0, str(SRC))
from segmentation.synthetic import Population, make_population  # noqa: E402

N_SEGMENTS = 5
MiB = 1024 * 1024
MEMORY_SAMPLE_S = 0.02
HEALTH_POLL_S = 0.05
HEALTH_CALL_TIMEOUT_S = 5.0
STARTUP_TIMEOUT_S = 60.0
OURS_TIMEOUT_S = 900.0
MAX_HEALTH_CALLS = 100_000  # bounds the poll loop even if a request never returns
FOREIGN_CPU_WARN = 0.1  # above this share of the CPUs taken by other work, a time is suspect

TARGET_TIME_S = {1_000: 0.3, 10_000: 1.0, 100_000: 10.0}
TARGET_SPEEDUP_AT = 10_000
TARGET_SPEEDUP = 10.0
TARGET_PEAK_AT = 100_000
TARGET_PEAK_MIB = 2048.0
TARGET_HEALTH_AT = 100_000
TARGET_HEALTH_MS = 100.0


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    """A port the OS says is free now; the tiny race before uvicorn binds it is acceptable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def child_env(cache: bool = False) -> dict[str, str]:
    """The environment for a server: src/ on the path, so a checkout without install works;
    the cache off unless asked for (repeats must be computed, not fetched) and a throw-away
    data folder."""
    env = dict(os.environ)
    env["SEGMENTATION_CACHE"] = "true" if cache else "false"
    env["SEGMENTATION_DATA_DIR"] = tempfile.mkdtemp(prefix="segmentation-bench-")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return env


class Server:
    """One uvicorn subprocess in its own session, so that it and its workers die together."""

    def __init__(self, name: str, app: str, cache: bool = False) -> None:
        self.name = name
        self.app = app
        self.cache = cache
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = RESULTS_DIR / f"{name}-server.log"

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """Process id of uvicorn itself (the root of the tree whose memory is measured)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} server is not running")
        return self.process.pid

    def start(self) -> None:
        """Start uvicorn and wait until GET /health answers 200, or fail with its log."""
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=child_env(self.cache),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        """Poll /health (bounded) so that no measurement includes the server's start-up."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} server ({self.app}) did not become healthy:\n{tail}")

    def stop(self) -> None:
        """Terminate the whole process group, then kill what is left: no orphaned workers."""
        if self.process is None:
            return
        process, self.process = self.process, None
        tree: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)  # the group we created with start_new_session
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
                break
        for proc in tree:  # workers that left the group, by pid
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def restart(self) -> None:
        """Kill a server stuck in a long request, so it stops burning CPU, and start afresh."""
        self.stop()
        self.start()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """Start a server and guarantee it is stopped, also on Ctrl-C or an exception."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- measuring


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss(pid: int, each: dict[int, int] | None = None) -> int:
    """Summed RSS of a process and all its descendants (shared pages count more than once);
    `each` keeps every process' own peak."""
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.Error):
            rss = proc.memory_info().rss
            total += rss
            if each is not None:
                each[proc.pid] = max(each.get(proc.pid, 0), rss)
    return total


def tree_pss(pid: int) -> int:
    """Summed PSS of a process and its descendants: each shared page (the libraries every
    worker maps, about 130 MiB each) counted once in all, its share in each process."""
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.Error, AttributeError):  # PSS: Linux only
            total += proc.memory_full_info().pss
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent not idle, summed over all CPUs."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class ForeignLoad:
    """Share of the machine's CPUs used by other work during a request.

    The benchmark often shares a machine with builds and tests; this says how far to trust the
    times. Foreign = busy CPU time of the machine minus that of the server tree and of this
    process. Server children that exit mid-request are counted as foreign (an overestimate).
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.me = psutil.Process()
        self.start = self._snapshot()

    def _snapshot(self) -> tuple[float, float, float, float]:
        """Wall clock, machine busy CPU, server tree CPU, own CPU: all in seconds."""
        mine = self.me.cpu_times()
        own = mine.user + mine.system
        return time.monotonic(), busy_cpu_seconds(), tree_cpu_seconds(self.server_pid), own

    def share(self) -> float:
        """Foreign CPU seconds / (elapsed seconds x CPUs), 0 (idle) to 1 (all CPUs taken)."""
        end = self._snapshot()
        wall, busy, server, own = (b - a for a, b in zip(self.start, end, strict=True))
        foreign = max(0.0, busy - server - own)
        return round(min(1.0, foreign / max(wall * (os.cpu_count() or 1), 1e-9)), 3)


class MemorySampler(threading.Thread):
    """Samples the server tree's memory every 20 ms: the peak is what an operator must
    provision. Summed RSS always; summed PSS too when asked (reading it costs more)."""

    def __init__(self, pid: int, pss: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.pss = pss
        self.peak = 0
        self.peak_pss = 0
        self.each: dict[int, int] = {}  # every process' own peak RSS
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Sample until told to stop (the request bounds how long that is)."""
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid, self.each))
            if self.pss:
                self.peak_pss = max(self.peak_pss, tree_pss(self.pid))
            self._stop_event.wait(MEMORY_SAMPLE_S)

    def finish(self) -> int:
        """Stop sampling and return the peak summed RSS in bytes."""
        self._stop_event.set()
        self.join()
        return self.peak


class HealthPoller(threading.Thread):
    """Times GET /health every 50 ms: a long analysis must not starve the event loop."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Poll, bounded by MAX_HEALTH_CALLS; a failed or slow call counts as its full time."""
        with httpx.Client(timeout=HEALTH_CALL_TIMEOUT_S) as client:
            for _ in range(MAX_HEALTH_CALLS):
                if self._stop_event.is_set():
                    return
                started = time.perf_counter()
                try:
                    ok = client.get(f"{self.url}/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.failures += not ok
                self._stop_event.wait(HEALTH_POLL_S)

    def finish(self) -> dict[str, float | int]:
        """Stop polling; return count, failures, max and p99 latency in milliseconds."""
        self._stop_event.set()
        self.join()
        values = self.latencies_ms or [float("nan")]
        return {
            "calls": len(self.latencies_ms),
            "failures": self.failures,
            "max_ms": round(float(np.max(values)), 1),
            "p99_ms": round(float(np.percentile(values, 99)), 1),
        }


@dataclass
class Run:
    """One request of one size to one server, as reported."""

    server: str
    size: int
    status: str  # "ok", "timeout", "error", "skipped"
    seconds: float | None = None
    baseline_mib: float | None = None
    peak_mib: float | None = None
    ari: float | None = None
    assigned: int | None = None
    n_clusters: int | None = None
    detail: str = ""
    health: dict[str, float | int] = field(default_factory=dict)
    foreign_cpu_share: float | None = None
    trials: list[float] = field(default_factory=list)  # each repeat's time; seconds = median


def assignment(response: dict[str, Any]) -> dict[Any, Any]:
    """Customer id -> cluster id, read from clusters[].customers[] as a client would."""
    mapping: dict[Any, Any] = {}
    for cluster in response.get("clusters", []):
        cluster_id = cluster.get("clusterId", cluster.get("id"))
        for customer in cluster.get("customers", []):
            customer_id = customer.get("id") if isinstance(customer, dict) else customer
            mapping[customer_id] = cluster_id
    return mapping


def score(population: Population, response: dict[str, Any]) -> tuple[float, int, int]:
    """ARI against the true segments; a customer missing from the answer is its own -1 group."""
    mapping = assignment(response)
    ids = population.frame["id"].tolist()
    predicted = [str(mapping.get(customer_id, "missing")) for customer_id in ids]
    assigned = sum(customer_id in mapping for customer_id in ids)
    ari = float(adjusted_rand_score(population.labels, predicted))
    return ari, assigned, len(response.get("clusters", []))


def measure(
    server: Server,
    population: Population,
    body: bytes,
    timeout_s: float,
    poll_health: bool,
    sample_memory: bool = True,
) -> Run:
    """POST one analysis, timing it client-side while sampling memory (and health).

    Without `sample_memory` only the time is taken: reading the tree's memory every 20 ms
    costs CPU that a 2-core machine takes from the server (measured: a 1,000-customer
    request timed 20% slower with it)."""
    size = len(population.labels)
    baseline = tree_rss(server.pid)
    sampler = MemorySampler(server.pid) if sample_memory else None
    poller = HealthPoller(server.url) if poll_health else None
    timeout = httpx.Timeout(timeout_s, connect=10.0)
    foreign = ForeignLoad(server.pid)
    if sampler is not None:
        sampler.start()
    if poller is not None:
        poller.start()
    status, detail, response = "ok", "", None
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout) as client:
            response = client.post(
                f"{server.url}/api/analyze",
                content=body,
                headers={"content-type": "application/json"},
            )
    except httpx.TimeoutException:
        status, detail = "timeout", f"did not finish in {timeout_s:g} s"
    except httpx.HTTPError as error:
        status, detail = "error", f"{type(error).__name__}: {error}"
    finally:
        elapsed = time.perf_counter() - started
        peak = sampler.finish() if sampler is not None else None
        health = poller.finish() if poller is not None else {}
        foreign_share = foreign.share()
    if status == "ok" and elapsed > timeout_s:
        status, detail = "timeout", f"did not finish in {timeout_s:g} s"
    run = Run(
        server.name,
        size,
        status,
        round(elapsed, 3),
        round(baseline / MiB, 1),
        round(peak / MiB, 1) if peak is not None else None,
        detail=detail,
        health=health,
        foreign_cpu_share=foreign_share,
    )
    if status == "ok" and response is not None:
        if response.status_code != 200:
            run.status, run.detail = "error", f"HTTP {response.status_code}: {response.text[:300]}"
        else:
            run.ari, run.assigned, run.n_clusters = score(population, response.json())
            run.ari = round(run.ari, 4)
    return run


# --------------------------------------------------------------------------- running


def request_body(population: Population, ours: bool) -> bytes:
    """Serialise before the clock starts, so client-side JSON encoding is not measured."""
    payload: dict[str, Any] = {"customerData": population.records()}
    if ours:
        payload["options"] = {"randomState": 0}
    return json.dumps(payload).encode()


def warm_up(server: Server, size: int, ours: bool) -> None:
    """One small unmeasured request, so lazy imports and first-call costs are not timed."""
    if size <= 0:
        return
    population = make_population(size, N_SEGMENTS, random_state=12345)
    with httpx.Client(timeout=OURS_TIMEOUT_S) as client:
        client.post(
            f"{server.url}/api/analyze",
            content=request_body(population, ours),
            headers={"content-type": "application/json"},
        )


def median_run(trials: list[Run]) -> Run:
    """The repeat with the median time (this machine is noisy), listing every repeat's time."""
    ordered = sorted(trials, key=lambda run: run.seconds if run.seconds is not None else 1e9)
    chosen = ordered[len(ordered) // 2]
    chosen.trials = [run.seconds for run in trials if run.seconds is not None]
    return chosen


def benchmark(
    sizes: list[int], only: str, plain_timeout: float, warmup: int, repeat: int
) -> list[Run]:
    """Run every size against each selected server, one request at a time; ours `repeat`
    times per size (the median is reported), the plain approach once (it is slow)."""
    runs: list[Run] = []
    servers = {
        "ours": Server("ours", "main:app") if only in ("both", "ours") else None,
        "plain": Server("plain", "bench.plain_app:app") if only in ("both", "plain") else None,
    }
    with contextlib.ExitStack() as stack:
        for name, server in servers.items():
            if server is not None:
                stack.enter_context(running(server))
                warm_up(server, warmup, ours=name == "ours")
        plain_gave_up_at: int | None = None
        for size in sizes:
            population = make_population(size, N_SEGMENTS, random_state=size)
            ours, plain = servers["ours"], servers["plain"]
            if ours is not None:
                body = request_body(population, ours=True)
                trials = [
                    measure(ours, population, body, OURS_TIMEOUT_S, poll_health=True)
                    for _ in range(repeat)
                ]
                runs.append(median_run(trials))
                report_progress(runs[-1])
            if plain is not None:
                if plain_gave_up_at is not None:
                    runs.append(
                        Run(
                            "plain",
                            size,
                            "skipped",
                            detail=f"not run: {plain_gave_up_at:,} did not finish",
                        )
                    )
                else:
                    body = request_body(population, ours=False)
                    runs.append(measure(plain, population, body, plain_timeout, poll_health=False))
                    if runs[-1].status == "timeout":
                        plain_gave_up_at = size
                        plain.restart()
                report_progress(runs[-1])
    return runs


def report_progress(run: Run) -> None:
    """One line per request as it finishes, since the whole run can take minutes."""
    what = f"{run.seconds:.3f} s" if run.status == "ok" and run.seconds is not None else run.detail
    if len(run.trials) > 1:
        what += f" (median of {', '.join(f'{t:.3f}' for t in run.trials)})"
    print(f"  {run.server:>5} {run.size:>9,}: {what}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- reporting


def find(runs: list[Run], server: str, size: int) -> Run | None:
    """The run of one server at one size, if it was made."""
    return next((r for r in runs if r.server == server and r.size == size), None)


def verdict(passed: bool | None) -> str:
    """PASS / FAIL / NOT RUN, as printed."""
    return "NOT RUN" if passed is None else ("PASS" if passed else "FAIL")


def ok(run: Run | None) -> bool:
    """Whether a run finished with an answer that could be scored."""
    return run is not None and run.status == "ok"


def speedup(ours: Run | None, plain: Run | None, plain_timeout: float) -> tuple[float, bool]:
    """plain/ours time; for a plain run that timed out, a lower bound (second item True)."""
    if not ok(ours) or ours is None or not ours.seconds:
        return float("nan"), False
    if ok(plain) and plain is not None and plain.seconds:
        return plain.seconds / ours.seconds, False
    if plain is not None and plain.status in ("timeout", "skipped"):
        return plain_timeout / ours.seconds, True
    return float("nan"), False


def targets(runs: list[Run], plain_timeout: float) -> list[dict[str, Any]]:
    """Each target with the measured value and PASS / FAIL / NOT RUN."""
    result: list[dict[str, Any]] = []
    for size, limit in TARGET_TIME_S.items():
        run = find(runs, "ours", size)
        passed = None if run is None else ok(run) and (run.seconds or 0) < limit
        value = run.seconds if run is not None and ok(run) else None
        result.append(
            {"target": f"ours {size:,} < {limit:g} s", "value": value, "verdict": verdict(passed)}
        )

    ours, plain = find(runs, "ours", TARGET_SPEEDUP_AT), find(runs, "plain", TARGET_SPEEDUP_AT)
    ratio, bound = speedup(ours, plain, plain_timeout)
    passed = None
    if ours is not None and plain is not None:
        ari_better = ok(ours) and (not ok(plain) or (ours.ari or 0) > (plain.ari or 0))
        passed = bool(ari_better and ratio >= TARGET_SPEEDUP)
    result.append(
        {
            "target": f">= {TARGET_SPEEDUP:g}x faster than plain at "
            f"{TARGET_SPEEDUP_AT:,}, better ARI",
            "value": None if np.isnan(ratio) else round(ratio, 1),
            "lower_bound": bound,
            "verdict": verdict(passed),
        }
    )

    run = find(runs, "ours", TARGET_PEAK_AT)
    passed = None if run is None else ok(run) and (run.peak_mib or 0) < TARGET_PEAK_MIB
    result.append(
        {
            "target": f"ours peak < {TARGET_PEAK_MIB / 1024:g} GiB at {TARGET_PEAK_AT:,}",
            "value": run.peak_mib if run is not None else None,
            "verdict": verdict(passed),
        }
    )

    run = find(runs, "ours", TARGET_HEALTH_AT)
    health = run.health if run is not None else {}
    passed = None
    if run is not None:
        passed = (
            bool(health)
            and not health.get("failures")
            and float(health.get("max_ms", float("inf"))) < TARGET_HEALTH_MS
        )
    result.append(
        {
            "target": f"/health max < {TARGET_HEALTH_MS:g} ms during ours {TARGET_HEALTH_AT:,}",
            "value": health.get("max_ms"),
            "verdict": verdict(passed),
        }
    )
    return result


def cell(run: Run | None) -> list[str]:
    """Time, peak MiB and ARI of one run, or why there are none."""
    if run is None:
        return ["-", "-", "-"]
    if run.status != "ok":
        short = {"timeout": run.detail, "skipped": "not run", "error": "ERROR"}[run.status]
        return [short, f"{run.peak_mib:.0f}" if run.peak_mib else "-", "-"]
    return [f"{run.seconds:.3f} s", f"{run.peak_mib:.0f}", f"{run.ari:.3f}"]


def table(runs: list[Run], sizes: list[int], plain_timeout: float, load_before: float) -> str:
    """The results as a fixed-width text table, then the targets and health latencies."""
    header = [
        "size",
        "ours time",
        "ours MiB",
        "ours ARI",
        "plain time",
        "plain MiB",
        "plain ARI",
        "plain/ours",
    ]
    rows = [header]
    for size in sizes:
        ours, plain = find(runs, "ours", size), find(runs, "plain", size)
        ratio, bound = speedup(ours, plain, plain_timeout)
        shown = "-" if np.isnan(ratio) else f"{'>' if bound else ''}{ratio:.1f}x"
        rows.append([f"{size:,}", *cell(ours), *cell(plain), shown])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))

    lines.append("")
    lines.append(
        "peak MiB: max summed RSS of the server and all its child processes "
        "(baselines: "
        + ", ".join(f"{r.server} {r.size:,} {r.baseline_mib:.0f}" for r in runs if r.baseline_mib)
        + ")"
    )
    lines.append(
        "CPU taken by other work during each request: "
        + ", ".join(
            f"{r.server} {r.size:,} {r.foreign_cpu_share:.0%}"
            for r in runs
            if r.foreign_cpu_share is not None
        )
    )
    for run in runs:
        if run.health:
            h = run.health
            lines.append(
                f"/health during ours {run.size:,}: {h['calls']} calls, max "
                f"{h['max_ms']} ms, p99 {h['p99_ms']} ms, failures {h['failures']}"
            )
        if run.status == "error":
            lines.append(f"{run.server} {run.size:,} error: {run.detail}")
        if run.status == "ok" and run.assigned != run.size:
            lines.append(
                f"{run.server} {run.size:,}: only {run.assigned:,} of "
                f"{run.size:,} customers assigned"
            )
    lines.append(f"load average (1 min) before the run: {load_before:.2f} on {os.cpu_count()} CPUs")
    skewed = [r for r in runs if (r.foreign_cpu_share or 0.0) > FOREIGN_CPU_WARN]
    if skewed:
        names = ", ".join(f"{r.server} {r.size:,}" for r in skewed)
        lines.append(
            f"WARNING: other work took > {FOREIGN_CPU_WARN:.0%} of the CPUs during {names}; "
            "those times are inflated, run again on a quiet machine"
        )
    lines.append("")
    for target in targets(runs, plain_timeout):
        value = target["value"]
        shown = (
            ""
            if value is None
            else f"  (measured {'>' if target.get('lower_bound') else ''}{value})"
        )
        lines.append(f"{target['verdict']:>7}  {target['target']}{shown}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def python_loop_seconds(repeats: int = 3) -> float:
    """Seconds of a fixed pure-Python loop (3,000,000 additions), the best of `repeats`: how
    fast this machine runs Python-level work right now. Its speed drifts within an hour (up to
    2x here), so a figure with no peer of its own (seconds at 1,000 customers, customers
    scored per second) is read beside this one."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def write_json(
    runs: list[Run], args: argparse.Namespace, path: Path, before: dict[str, Any]
) -> None:
    """Keep the numbers for comparison across commits (bench/results/ is git-ignored)."""
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": before,
        "loadavg_after_1_5_15": machine()["loadavg_1_5_15"],
        "settings": {
            "sizes": args.sizes,
            "only": args.only,
            "plain_timeout_s": args.plain_timeout,
            "warmup_customers": args.warmup,
            "segments": N_SEGMENTS,
        },
        "runs": [asdict(run) for run in runs],
        "targets": targets(runs, args.plain_timeout),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line: sizes, which servers, and how long the plain approach may take."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        type=lambda s: [int(x) for x in s.split(",") if x.strip()],
        help="comma-separated population sizes (default: %(default)s)",
    )
    parser.add_argument(
        "--plain-timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="give up on one plain request after this long (default: 180)",
    )
    parser.add_argument(
        "--only",
        choices=("both", "ours", "plain"),
        default="both",
        help="benchmark only one server (default: both)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=500,
        metavar="N",
        help="customers in one unmeasured warm-up request, 0 for none",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="N",
        help="requests per size to our service; the median is reported (default: 3)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="where to write the JSON results (default: bench/results/latest.json)",
    )
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the servers are stopped by the finally blocks."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; 130 if interrupted."""
    args = parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    print(
        f"benchmark: sizes {args.sizes}, servers {args.only}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        file=sys.stderr,
    )
    before = machine()  # the load now is other work's, not ours
    try:
        runs = benchmark(args.sizes, args.only, args.plain_timeout, args.warmup, args.repeat)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    print(table(runs, args.sizes, args.plain_timeout, before["loadavg_1_5_15"][0]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_json(runs, args, args.output, before)
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
