"""The worker pool's transport: large tasks and results travel through spill files, which
are always deleted, whoever stopped waiting."""

from __future__ import annotations

import asyncio
import functools
import operator
import os
import subprocess
import sys
import time

import pytest

from segmentation.workers import (
    ANALYSIS_WORKER_NICENESS,
    IDLE_TRIM_S,
    JOB_WORKER_NICENESS,
    SPILL_BYTES,
    SPILL_PREFIX,
    ProcessPool,
    Spilled,
    _IdleTrim,
    _packed,
    _unpacked,
    spill_folder,
    start_worker,
)


def _spill_files() -> set[str]:
    return {p.name for p in spill_folder().glob("*.pickle")}


@pytest.fixture
def pool():
    before = _spill_files()
    workers = ProcessPool(1, 4, 1)
    yield workers
    workers.close()
    assert _spill_files() <= before, "a spill file was left behind"


def test_a_large_task_and_result_travel_whole(pool: ProcessPool) -> None:
    body = bytes(range(256)) * (2 * SPILL_BYTES // 256)
    result = asyncio.run(pool.run(operator.mul, body, 2))
    assert result == body * 2


def test_small_tasks_go_through_the_pipe(pool: ProcessPool) -> None:
    assert asyncio.run(pool.run(operator.add, 2, 3)) == 5


def test_a_result_nobody_waits_for_any_more_is_deleted(pool: ProcessPool) -> None:
    async def abandon() -> None:
        # the first task keeps the one worker busy; the second waits in the call queue
        # (already "running" to the executor, so it cannot be cancelled) and runs afterwards
        busy = asyncio.ensure_future(pool.run(time.sleep, 0.5))
        late = asyncio.ensure_future(pool.run(operator.mul, b"x", 2 * SPILL_BYTES))
        await asyncio.sleep(0.1)
        late.cancel()
        await busy
        with pytest.raises(asyncio.CancelledError):
            await late
        await asyncio.sleep(1.0)  # the abandoned result arrives and is deleted

    asyncio.run(abandon())


def test_workers_run_below_the_servers_priority(pool: ProcessPool) -> None:
    # the event loop (and /health) comes first when the workers take every core
    assert asyncio.run(pool.run(os.nice, 0)) == os.nice(0) + ANALYSIS_WORKER_NICENESS
    jobs = ProcessPool(1, 1, 1, functools.partial(start_worker, large_jobs=True))
    try:
        assert asyncio.run(jobs.run(os.nice, 0)) == os.nice(0) + JOB_WORKER_NICENESS
    finally:
        jobs.close()
    assert JOB_WORKER_NICENESS > ANALYSIS_WORKER_NICENESS > 0  # batch jobs yield to analyses


def _heaps_after_threads_allocate() -> int:
    """In a worker: two threads build Ward trees at once (fastcluster allocates without the
    GIL, so they meet at the heap's lock), then glibc's malloc_info counts the heaps."""
    import ctypes
    import tempfile
    import threading

    import numpy as np

    from segmentation.pipeline.models import ward_tree

    def build() -> None:
        for seed in range(5):
            ward_tree(np.random.default_rng(seed).normal(size=(600, 4)))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        return report.read().count(b"<heap nr=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_info")
def test_workers_allocate_from_one_heap(pool: ProcessPool) -> None:
    # threads that each got an arena would leave memory that trimming cannot give back
    assert asyncio.run(pool.run(os.getenv, "MALLOC_ARENA_MAX")) == "1"
    assert asyncio.run(pool.run(_heaps_after_threads_allocate)) == 1


def test_a_spilled_payload_is_read_once(tmp_path) -> None:
    spilled = Spilled.write(b"\x80\x05K\x07.", [], tmp_path)  # pickle of 7
    assert spilled.take() == 7
    assert not spilled.path.exists()
    spilled.discard()  # already gone: nothing to do


def test_large_bytes_are_spilled_as_they_are_and_come_back_whole(tmp_path) -> None:
    body, other = os.urandom(SPILL_BYTES + 1), bytes(SPILL_BYTES * 2)
    value = {"body": body, "again": body, "small": b"abc", "nested": [other, 7]}
    packed = _packed(value, tmp_path)
    assert isinstance(packed, Spilled)
    # each large object once, beside a small pickle: not copied into the pickle
    size = packed.path.stat().st_size
    assert len(body) + len(other) < size < len(body) + len(other) + 1000
    unpacked = _unpacked(packed)
    assert unpacked == value
    assert unpacked["body"] is unpacked["again"] and type(unpacked["body"]) is bytes
    assert not any(tmp_path.iterdir())
    assert _unpacked(_packed(b"x" * 100, tmp_path)) == b"x" * 100  # small: no file
    assert not any(tmp_path.iterdir())


def test_memory_is_trimmed_once_a_worker_is_idle_and_never_during_a_task() -> None:
    idle = _IdleTrim()
    now = time.monotonic()
    assert not idle._due(now + 60)  # nothing ran yet
    idle.task_started()
    assert not idle._due(now + 60)
    idle.task_started()
    idle.task_ended()
    assert not idle._due(time.monotonic() + 60)  # one task still running
    idle.task_ended()
    ended = time.monotonic()
    assert not idle._due(ended + IDLE_TRIM_S / 2)  # tasks may follow closely: not yet
    assert idle._due(ended + IDLE_TRIM_S)
    assert not idle._due(ended + 2 * IDLE_TRIM_S)  # once per idle spell


def test_the_spill_folder_of_a_dead_server_is_removed() -> None:
    # a process that has ended: its spill files would otherwise hold RAM for good
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = spill_folder().parent / f"{SPILL_PREFIX}{ended.pid}"
    dead.mkdir()
    (dead / "left.pickle").write_bytes(b"x" * 1000)
    mine = spill_folder()
    assert not dead.exists()
    assert mine.name == f"{SPILL_PREFIX}{os.getpid()}" and mine.is_dir()
