"""Worker processes for CPU-bound work: one class for the analysis pool and the job pool.

Processes, not threads: an analysis holds the GIL in pandas and Python loops for long stretches,
which would stall the event loop (and the health check). Spawned, not forked: forking a process
that runs uvicorn's threads can deadlock the child. A worker that dies (killed, out of memory)
breaks the whole executor; it is replaced once for every caller, and the callers whose tasks
it held get `WorkerDiedError`; a task submitted after an idle worker died runs on the new
executor, since no worker ever ran it. The pool is bounded twice: at most `workers` tasks run
at once, and at most `max_pending` are running or waiting; beyond that `run` refuses at once
with `ServiceBusyError` instead of joining an unbounded backlog.

Large tasks and results (a request body of megabytes, the response it gives) travel through a
file in shared memory (/dev/shm where there is one; a folder per server, removed at the next
start if the server died), not through the executor's pipe: a pipe
moves 12 MB in 64 KiB turns of both processes (measured: 25 ms each way for a 100,000-customer
body), a file in RAM in one copy each side (3 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import io
import multiprocessing
import os
import pickle
import shutil
import signal
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

from segmentation.errors import ServiceBusyError, WorkerDiedError

__all__ = [
    "ANALYSIS_WORKER_NAME",
    "ANALYSIS_WORKER_NICENESS",
    "JOB_WORKER_NAME",
    "JOB_WORKER_NICENESS",
    "ProcessPool",
    "Spilled",
    "die_with_parent",
    "give_memory_back",
    "run_task",
    "spill_folder",
    "start_worker",
    "warm_up",
]

T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PR_SET_NAME = 15
# what ps, top and psutil call each kind of worker (15 bytes at most)
ANALYSIS_WORKER_NAME = "seg-analysis"
JOB_WORKER_NAME = "seg-job"
M_MMAP_THRESHOLD = -3  # malloc.h
# blocks from this size on are mapped from the system and unmapped when freed (job workers)
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
# the scheduler's priority of workers below the server's event loop
ANALYSIS_WORKER_NICENESS = 5
JOB_WORKER_NICENESS = 10
# a worker idle for this many seconds gives the memory of its last tasks back
IDLE_TRIM_S = 2.0
# pickled tasks and results from this size on go through a spill file (see the docstring)
SPILL_BYTES = 1024 * 1024
# a server's spill folder is this followed by its process id
SPILL_PREFIX = "segmentation-spill-"


def _spill_root() -> Path:
    """RAM-backed /dev/shm where the system has one, else the temporary folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def spill_folder() -> Path:
    """This server's spill folder, made on first use; the folders of servers that died
    (killed in the middle of a request, whose spill files nobody will read) are removed, so
    that RAM is not kept by files of a dead process."""
    root = _spill_root()
    for folder in root.glob(f"{SPILL_PREFIX}*"):
        owner = folder.name.removeprefix(SPILL_PREFIX)
        if owner.isdigit() and int(owner) != os.getpid() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
    folder = root / f"{SPILL_PREFIX}{os.getpid()}"
    folder.mkdir(exist_ok=True)
    return folder


class _Pickler(pickle.Pickler):
    """Pickles a value with each bytes object of SPILL_BYTES or more left out, as a reference
    to its place in `raw`: a request body or a response travels as it is, never copied into
    a pickle and out of it again (measured: 17 ms each way for 12 MB, a third of the
    transport of a 100,000-customer scoring)."""

    def __init__(self, file: io.BytesIO, raw: list[bytes]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.raw = raw
        self.places: dict[int, int] = {}  # id of each object left out -> its place

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is not bytes or len(obj) < SPILL_BYTES:
            return None
        if id(obj) not in self.places:  # (once, however often it is referred to)
            self.places[id(obj)] = len(self.raw)
            self.raw.append(obj)
        return self.places[id(obj)]


class _Unpickler(pickle.Unpickler):
    def __init__(self, payload: bytes, raw: list[bytes]) -> None:
        super().__init__(io.BytesIO(payload))
        self.raw = raw

    def persistent_load(self, pid: Any) -> bytes:
        return self.raw[int(pid)]


def _read_exactly(file: io.FileIO, size: int) -> bytes:
    """`size` bytes read into one new bytes object (a single copy out of the file)."""
    data = file.read(size) or b""
    while len(data) < size:  # a short read (a single read stops at 2 GiB)
        more = file.read(size - len(data))
        if not more:
            raise EOFError(f"spill file ended {size - len(data)} bytes early")
        data += more
    return data


@dataclass(frozen=True)
class Spilled:
    """A task or result waiting in a file, whoever reads it deletes it: the count of its
    large bytes objects, the pickle's length and theirs (8 bytes each), the pickle, and those
    bytes as they are."""

    path: Path

    @classmethod
    def write(cls, payload: bytes, raw: list[bytes], folder: Path) -> Spilled:
        path = folder / f"{uuid.uuid4().hex}.pickle"
        lengths = [len(payload), *map(len, raw)]
        with path.open("wb", buffering=0) as file:
            for part in (struct.pack(f"<{len(lengths) + 1}Q", len(raw), *lengths), payload, *raw):
                view = memoryview(part)
                while view:  # a write may take less than it was given
                    view = view[file.write(view) :]
        return cls(path)

    def take(self) -> Any:
        try:
            with self.path.open("rb", buffering=0) as file:
                (count,) = struct.unpack("<Q", _read_exactly(file, 8))
                lengths = struct.unpack(f"<{count + 1}Q", _read_exactly(file, 8 * (count + 1)))
                payload, *raw = [_read_exactly(file, length) for length in lengths]
        finally:
            self.discard()
        return _Unpickler(payload, raw).load()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _packed(value: Any, folder: Path) -> bytes | Spilled:
    """A task or result pickled once: the pickle itself when small (the executor's pipe then
    carries bytes, which cost it a copy, not a second pickling), a file in `folder` from
    SPILL_BYTES on, its large bytes objects written as they are (see `_Pickler`)."""
    stream, raw = io.BytesIO(), list[bytes]()
    _Pickler(stream, raw).dump(value)
    payload = stream.getvalue()
    if raw or len(payload) >= SPILL_BYTES:
        return Spilled.write(payload, raw, folder)
    return payload


def _unpacked(packed: bytes | Spilled) -> Any:
    return packed.take() if isinstance(packed, Spilled) else pickle.loads(packed)


def run_task(task: bytes | Spilled, folder: Path) -> bytes | Spilled:
    """In a worker: the task's function on its arguments, the result packed in turn (a large
    one into the server's spill `folder`)."""
    _idle.task_started()
    try:
        function, args = _unpacked(task)
        return _packed(function(*args), folder)
    finally:
        _idle.task_ended()


def give_memory_back() -> None:
    """Collect the cycles left behind, then hand the free memory of glibc's heap and of
    Arrow's pool back to the system."""
    import pyarrow as pa

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # malloc_trim: glibc only
        ctypes.CDLL(None).malloc_trim(0)
    pa.default_memory_pool().release_unused()


class _IdleTrim:
    """Hands the memory finished tasks freed back to the system (glibc's heap, Arrow's pool)
    once the worker has been idle for IDLE_TRIM_S, so that an idle worker holds its warm
    state rather than the peak of its last request (measured: 80 MB per worker after a
    100,000-customer analysis). Never during a task nor between tasks that follow each other
    closely: each would then map that memory back in, page by page (measured: 30 ms more to
    score 100,000 customers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._last_end: float | None = None  # None: nothing to trim since the last trim

    def task_started(self) -> None:
        with self._lock:
            self._running += 1

    def task_ended(self) -> None:
        with self._lock:
            self._running -= 1
            self._last_end = time.monotonic()

    def _due(self, now: float) -> bool:
        with self._lock:
            due = (
                self._last_end is not None
                and not self._running
                and now - self._last_end >= IDLE_TRIM_S
            )
            if due:
                self._last_end = None
            return due

    def run(self) -> None:
        while True:
            time.sleep(IDLE_TRIM_S / 4)
            if self._due(time.monotonic()):
                give_memory_back()

    def start(self) -> None:
        threading.Thread(target=self.run, name="idle-trim", daemon=True).start()


_idle = _IdleTrim()


def die_with_parent() -> None:
    """In a worker: have the kernel kill this process when the server dies, even by SIGKILL,
    so that no orphan keeps running (and writing) a request nobody will collect."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the pipes still end it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the server died before the line above ran
        os._exit(1)


def _name_process(name: str) -> None:
    """The name ps and top show for this process, so that an operator (and a test) tells an
    analysis worker from a job worker."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: unnamed
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode())


def _return_large_blocks() -> None:
    """Give large freed blocks back to the system at once, for the job workers, whose peak
    is a million customers. glibc serves a block of a few MB (a column of a million
    customers) from its heap once such blocks have been freed, and keeps the heap; Arrow's
    default allocator keeps what it freed for reuse. The peak is then the sum of what each
    stage ever held (measured on a 1,000,000-customer job: 880 MB instead of 720). Not for
    the analysis workers: mapping and unmapping every block of 4 MB or more makes scoring
    100,000 customers 30 ms slower, in page faults."""
    import pyarrow as pa

    with contextlib.suppress(OSError, AttributeError):  # not glibc: its own policy applies
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    pa.set_memory_pool(pa.system_memory_pool())


def _one_heap_per_worker() -> None:
    """Have every worker process started from now on allocate from glibc's one main heap:
    MALLOC_ARENA_MAX=1 in this process' environment, which spawned processes inherit and
    glibc reads as a process starts (unless the operator set it; this process' own heap
    is already set up).

    By default each thread that finds the heap busy gets an arena of its own (measured: four
    heaps after two threads built Ward trees at once), and the search's two threads (k-means
    fits beside Ward's tree, which runs without the GIL) leave memory spread over heaps that
    trimming cannot hand back. Measured after a 100,000-customer analysis and scoring: 314
    MiB per analysis worker with arenas, 274 without; the 1,000,000-customer job's summed
    peak in bench.floor 1.46 -> 1.32 GiB, the job's time 7.0-8.1 s with arenas and 5.6-7.6 s
    without (two runs of two jobs each, alternated, the variable set for the whole server).
    The threads take turns on the GIL, so they seldom wait for the heap's lock; a job's
    Arrow buffers of 4 MiB and more are mapped from the system, not taken from the heap."""
    os.environ.setdefault("MALLOC_ARENA_MAX", "1")


def start_worker(*, large_jobs: bool = False) -> None:
    """What every worker does first: die with the server, run below the server's priority,
    keep BLAS to one thread, give the memory of finished tasks back, and, running
    `large_jobs`, every large block as soon as it is freed.

    The priority: when workers take every core, the event loop still gets one as soon as it
    has work (measured with a 1,000,000-customer job beside 16 clients' analyses on 2 cores:
    /health's worst answer was 22-153 ms in 4 runs before, 20-62 ms in 5 after), and a job,
    batch work, yields to analyses, which a caller waits on. A worker is one of several
    processes sharing the cores, so BLAS threads of its own only contend with them (measured:
    scoring 100,000 customers 1.3-2x slower with two BLAS threads on two cores; scikit-learn's
    OpenMP loops are not affected)."""
    die_with_parent()
    _name_process(JOB_WORKER_NAME if large_jobs else ANALYSIS_WORKER_NAME)
    with contextlib.suppress(OSError, AttributeError):  # not POSIX: the system's priority
        os.nice(JOB_WORKER_NICENESS if large_jobs else ANALYSIS_WORKER_NICENESS)
    threadpool_limits(limits=1, user_api="blas")
    if large_jobs:
        _return_large_blocks()
    _idle.start()


def warm_up(*, large_jobs: bool = False) -> None:
    """Start a worker (see `start_worker`), import what tasks run and run one analysis at the
    search-sample size, so that a worker's first real request does not pay for imports,
    first calls into scipy and scikit-learn, and the allocator's first growth to
    sample-sized arrays (measured: +40% on a cold worker's first 1,000 customers, 0.5 s more
    for a first job)."""
    from segmentation.analysis import analyze
    from segmentation.pipeline.search import SEARCH_SAMPLE_SIZE
    from segmentation.synthetic import make_population

    start_worker(large_jobs=large_jobs)
    # what the tasks of this pool import (the job runner imports the service)
    importlib.import_module("segmentation.jobs.runner" if large_jobs else "segmentation.service")
    analyze(make_population(SEARCH_SAMPLE_SIZE, 3, random_state=0).frame)
    # what the warm-up analysis freed goes back (70 MB), and the ML stack, hundreds of
    # thousands of long-lived objects, stays out of every later full garbage collection
    give_memory_back()
    gc.freeze()


def _discard_unclaimed(future: Future[Any]) -> None:
    """Delete a spilled result nobody took (take() already deleted a claimed one)."""
    if not future.cancelled() and future.exception() is None:
        result = future.result()
        if isinstance(result, Spilled):
            result.discard()


class ProcessPool:
    """`workers` spawned processes, each started with `initializer`; see the module docstring.

    `what` and `setting` name the work and the bound in the 503's message.
    """

    def __init__(
        self,
        workers: int,
        max_pending: int,
        retry_after: int,
        initializer: Callable[[], None] = start_worker,
        what: str = "analyses",
        setting: str = "SEGMENTATION_MAX_PENDING",
    ) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.retry_after = retry_after
        self.initializer = initializer
        self.what, self.setting = what, setting
        self.pending = 0
        self._spill = spill_folder()
        _one_heap_per_worker()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=self.initializer,
        )

    async def start(self) -> None:
        """Start every worker (each runs the initializer) before the first task: the executor
        spawns a process per submission while none is idle, so `workers` no-ops start them."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, int) for _ in range(self.workers))
        )

    def check_capacity(self) -> None:
        if self.pending >= self.max_pending:
            raise ServiceBusyError(self.pending, self.retry_after, self.what, self.setting)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        # once for every caller that saw the same broken executor
        if self._executor is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()

    def _submit(
        self, function: Callable[..., T], args: tuple[Any, ...]
    ) -> tuple[ProcessPoolExecutor, Future[T]]:
        executor = self._executor
        try:
            return executor, executor.submit(function, *args)
        except BrokenProcessPool:
            # A worker died while idle (killed, out of memory) and broke the executor before
            # this task was sent: the task never ran, so it goes to a fresh pool rather than
            # failing a request that no dead worker was running.
            self._replace(executor)
            executor = self._executor
            return executor, executor.submit(function, *args)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker; ServiceBusyError when full, WorkerDiedError when the
        worker running it died (the pool is then already replaced)."""
        self.check_capacity()
        self.pending += 1
        task = _packed((function, args), self._spill)
        try:
            executor, future = self._submit(run_task, (task, self._spill))
            try:
                result = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._replace(executor)
                raise WorkerDiedError() from None
            except asyncio.CancelledError:
                # the caller stopped waiting (a client gone): the result is deleted when the
                # worker delivers it
                future.add_done_callback(_discard_unclaimed)
                raise
            unpacked: T = _unpacked(result)
            return unpacked
        finally:
            self.pending -= 1
            if isinstance(task, Spilled):  # the worker died or never started it
                task.discard()

    def terminate(self) -> None:
        """Stop every worker now (a server stop), whatever it is running."""
        processes = getattr(self._executor, "_processes", None) or {}
        for process in list(processes.values()):
            process.terminate()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
