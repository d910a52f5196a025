"""Worker processes for CPU-bound work: one class for the analysis pool and the job pool.

Processes, not threads: an analysis holds the GIL in pandas and Python loops for long stretches,
which would stall the event loop (and the health check). Spawned, not forked: forking a process
that runs uvicorn's threads can deadlock the child. A worker that dies (killed, out of memory)
breaks the whole executor; it is replaced once for every caller, and the callers whose tasks
it held get `WorkerDiedError`; a task submitted after an idle worker died runs on the new
executor, since no worker ever ran it. The pool is bounded twice: at most `workers` tasks run
at once, and at most `max_pending` are running or waiting; beyond that `run` refuses at once
with `ServiceBusyError` instead of joining an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from segmentation.errors import ServiceBusyError, WorkerDiedError

__all__ = ["ProcessPool", "die_with_parent", "warm_up"]

T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In a worker: have the kernel kill this process when the server dies, even by SIGKILL,
    so that no orphan keeps running (and writing) a request nobody will collect."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the pipes still end it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the server died before the line above ran
        os._exit(1)


def warm_up() -> None:
    """Run one analysis at the search-sample size, so that a worker's first real request does
    not pay for lazy imports, first calls into scipy and scikit-learn, and the allocator's
    first growth to sample-sized arrays (measured: +40% on a cold worker's first 1,000)."""
    from segmentation.analysis import analyze
    from segmentation.pipeline.search import SEARCH_SAMPLE_SIZE
    from segmentation.synthetic import make_population

    die_with_parent()
    analyze(make_population(SEARCH_SAMPLE_SIZE, 3, random_state=0).frame)
    # the ML stack is hundreds of thousands of long-lived objects: keep them out of every
    # later full garbage collection
    gc.collect()
    gc.freeze()


class ProcessPool:
    """`workers` spawned processes, each started with `initializer`; see the module docstring.

    `what` and `setting` name the work and the bound in the 503's message.
    """

    def __init__(
        self,
        workers: int,
        max_pending: int,
        retry_after: int,
        initializer: Callable[[], None] = die_with_parent,
        what: str = "analyses",
        setting: str = "SEGMENTATION_MAX_PENDING",
    ) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.retry_after = retry_after
        self.initializer = initializer
        self.what, self.setting = what, setting
        self.pending = 0
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
        try:
            executor, future = self._submit(function, args)
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool:
                self._replace(executor)
                raise WorkerDiedError() from None
        finally:
            self.pending -= 1

    def terminate(self) -> None:
        """Stop every worker now (a server stop), whatever it is running."""
        processes = getattr(self._executor, "_processes", None) or {}
        for process in list(processes.values()):
            process.terminate()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
