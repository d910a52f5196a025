"""A bounded pool of worker processes for CPU-bound analyses.

Processes, not threads: an analysis holds the GIL in pandas and Python loops for long stretches,
which would stall the event loop (and the health check). The pool is bounded twice: at most
`workers` analyses run at once, and at most `max_pending` are running or waiting; beyond that a
request is refused with 503 at once instead of joining an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from segmentation.api.errors import ServiceBusyError, WorkerDiedError
from segmentation.api.work import warm_up

__all__ = ["WorkerPool"]

T = TypeVar("T")


class WorkerPool:
    def __init__(self, workers: int, max_pending: int, retry_after: int) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self.retry_after = retry_after
        self.pending = 0
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that runs uvicorn's threads can deadlock the child
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=warm_up
        )

    async def start(self) -> None:
        """Start every worker (each warms up in its initializer) before the first request."""
        # the executor spawns a process per submission while none is idle: `workers` no-ops
        # start them all, and each runs `warm_up` before taking its first task
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, int) for _ in range(self.workers))
        )

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self.pending >= self.max_pending:
            raise ServiceBusyError(self.pending, self.retry_after)
        self.pending += 1
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, function, *args)
        except BrokenProcessPool:
            # A dead worker breaks the whole executor; replace it once for everyone.
            if self._executor is executor:
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
            raise WorkerDiedError() from None
        finally:
            self.pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
