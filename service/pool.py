"""Bounded execution of solves off the event loop, with admission control and micro-batching.

:class:`SolverPool` runs CPU work on at most ``threads`` worker threads
(``anyio.to_thread.run_sync`` with a ``CapacityLimiter``) and admits at most
``threads + capacity`` jobs at once; one more is refused with :class:`QueueFull`
(→ 503 + Retry-After) instead of queueing without bound.

:class:`MicroBatcher` merges single solves with the same model, grid and fast-phase
settings that queue while the workers are busy into one vectorised pass (one
hypernetwork call, one fast phase over all rows, one batched field evaluation); an
idle server starts a lone request at once.

Everything here runs on the event loop thread except the functions handed to the
worker threads, so the counters need no locks.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, Callable, Sequence

import anyio
import anyio.to_thread

from service.metrics import Registry


class QueueFull(Exception):
    """Every worker is busy and the wait queue is at capacity."""

    def __init__(self, retry_after_s: int):
        super().__init__("the solver queue is full")
        self.retry_after_s = retry_after_s


class SolverPool:
    """``threads`` workers and room for ``capacity`` waiting jobs."""

    def __init__(self, threads: int, capacity: int, retry_after_s: int, metrics: Registry):
        self.threads = threads
        self.max_admitted = threads + capacity
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self.limiter = anyio.CapacityLimiter(threads)
        self.admitted = 0  # jobs accepted and not finished (waiting + running)
        self.running = 0
        self._idle: asyncio.Event | None = None

    def admit(self, n: int = 1) -> None:
        """Reserve room for ``n`` jobs or raise QueueFull; pair with :meth:`release`."""
        if self.admitted + n > self.max_admitted:
            self.metrics.rejected.inc()
            raise QueueFull(self.retry_after_s)
        self.admitted += n
        self._gauges()

    def release(self, n: int = 1) -> None:
        self.admitted -= n
        self._gauges()
        if self.admitted == 0 and self._idle is not None:
            self._idle.set()

    def _gauges(self) -> None:
        self.metrics.queue_depth.set(max(self.admitted - self.running, 0))
        self.metrics.in_flight.set(self.running)

    @asynccontextmanager
    async def worker(self):
        """Hold one of the ``threads`` worker slots (FIFO among waiters)."""
        async with self.limiter:
            yield

    async def call(self, jobs: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on a thread for ``jobs`` admitted jobs; the caller holds a worker slot."""
        self.running += jobs
        self._gauges()
        try:
            # Not abandoned on cancellation: the worker finishes and the counters stay true.
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self.running -= jobs
            self._gauges()

    async def run(self, fn: Callable[..., Any], *args: Any, jobs: int = 1) -> Any:
        """Wait for a worker slot, then run ``fn(*args)`` on a thread; the caller admitted the jobs."""
        async with self.worker():
            return await self.call(jobs, fn, *args)

    async def drain(self, timeout: float) -> bool:
        """Wait until no job is admitted (at shutdown); False on timeout."""
        if self.admitted == 0:
            return True
        self._idle = asyncio.Event()
        try:
            with anyio.move_on_after(timeout):
                await self._idle.wait()
        finally:
            self._idle = None
        return self.admitted == 0


class MicroBatcher:
    """Merge concurrent compatible jobs into one solver pass, adaptively.

    Jobs with one key (model, grid, fast-phase settings) join a pending group; the
    group's task waits (after an optional extra ``window`` in seconds) for a free
    worker slot and takes every job that joined meanwhile, up to ``max_jobs``. An idle
    server therefore starts a lone job at once, and a busy one solves the jobs that
    queued behind a running pass together: one hypernetwork call, one fast phase over
    all rows, one batched field evaluation. ``solve_many(runtime, jobs) -> list`` runs
    on the worker thread. Each job must have been admitted to the pool; the batcher
    releases it when its pass is over.
    """

    def __init__(self, pool: SolverPool, window: float, max_jobs: int,
                 solve_many: Callable[[Any, Sequence[Any]], list]):
        self.pool, self.window, self.max_jobs, self.solve_many = pool, window, max_jobs, solve_many
        self._groups: dict[tuple, list[tuple[Any, asyncio.Future]]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, runtime: Any, key: tuple, job: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        gkey = (runtime.name, key)
        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = []
            task = loop.create_task(self._run(gkey, runtime, group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        group.append((job, fut))
        if len(group) >= self.max_jobs:
            self._close(gkey, group)
        return await fut

    def _close(self, gkey: tuple, group: list) -> None:
        """No more joiners: later jobs with this key start a new group."""
        if self._groups.get(gkey) is group:
            del self._groups[gkey]

    async def _run(self, gkey: tuple, runtime: Any, group: list) -> None:
        try:
            if self.window > 0:
                await anyio.sleep(self.window)
            async with self.pool.worker():
                self._close(gkey, group)
                jobs = [job for job, _ in group]
                results = await self.pool.call(len(jobs), self.solve_many, runtime, jobs)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("solver shut down"))
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, fut), res in zip(group, results):
                if not fut.done():
                    fut.set_result(res)
        finally:
            self._close(gkey, group)
            self.pool.release(len(group))
