"""Bounded execution of solves off the event loop, with admission control and micro-batching.

:class:`Gate` bounds how many things are open at once and refuses one more with
:class:`~fastlrnr.server.errors.Overloaded` (→ 503 + Retry-After) instead of queueing without
bound: the app uses one for open solve requests (taken before the body is read) and
:class:`SolverPool` one for solve jobs (``threads`` running + ``capacity`` waiting).
Each is taken and released in one place, ``async with gate.slot():``.

:class:`SolverPool` runs CPU work on at most ``threads`` worker threads
(``anyio.to_thread.run_sync`` with a ``CapacityLimiter``). Long work — a pass predicted
longer than ``LONG_PASS_S``, a climb to a tolerance whose budget leaves it longer — also takes a
place in the long lane, ``threads − 1`` places (at least one): however many long requests run, a worker stays
free for short ones. The pool knows since when each worker has been on its pass
(``pinned_s``): readiness reports a pod whose workers are all pinned (``fastlrnr.server.api.routes``).

:class:`MicroBatcher` merges single solves with the same model, grid and fast-phase
settings that queue while the workers are busy into one vectorised pass (one
hypernetwork call, one fast phase over all rows, one batched field evaluation); an
idle server starts a lone request at once.

Everything here runs on the event loop thread except the functions handed to the
worker threads, so the counters need no locks.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread

from fastlrnr.server.errors import Overloaded


class Gate:
    """At most ``limit`` holders; one more is refused at once (``Overloaded``)."""

    def __init__(
        self,
        limit: int,
        retry_after_s: int,
        what: str,
        on_change: Callable[[int], None] = lambda n: None,
        on_reject: Callable[[], None] = lambda: None,
    ):
        self.limit, self.retry_after_s, self.what = limit, retry_after_s, what
        self.held = 0
        self._on_change, self._on_reject = on_change, on_reject
        self._idle: asyncio.Event | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one place for the duration of the block, or raise Overloaded."""
        if self.held >= self.limit:
            self._on_reject()
            raise Overloaded(self.what, self.retry_after_s)
        self.held += 1
        self._on_change(self.held)
        try:
            yield
        finally:
            self.held -= 1
            self._on_change(self.held)
            if self.held == 0 and self._idle is not None:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no place is held (at shutdown); False on timeout."""
        if self.held == 0:
            return True
        self._idle = asyncio.Event()
        try:
            with anyio.move_on_after(timeout):
                await self._idle.wait()
        finally:
            self._idle = None
        return self.held == 0


class SolverPool:
    """``threads`` workers (``threads − 1`` of them, at least one, for long work at once) and
    room for ``capacity`` waiting jobs."""

    def __init__(self, threads: int, capacity: int, retry_after_s: int, metrics: Any):
        self.threads = threads
        self.metrics = metrics
        self.running = 0
        self._calls: dict[int, float] = {}  # call id → perf_counter when its worker started it
        self._ids = itertools.count()
        self.long_limiter = anyio.CapacityLimiter(max(1, threads - 1))
        self.gate = Gate(
            threads + capacity,
            retry_after_s,
            "the solver queue is full",
            on_change=lambda n: self._gauges(),
            on_reject=metrics.rejected.inc,
        )
        self.limiter = anyio.CapacityLimiter(threads)

    @property
    def admitted(self) -> int:
        """Jobs accepted and not finished (waiting + running)."""
        return self.gate.held

    def slot(self):
        """``async with pool.slot():`` — one solve job admitted (or Overloaded)."""
        return self.gate.slot()

    def idle_for(self, jobs: int) -> bool:
        """True when the ``jobs`` about to run are all the work there is (nothing else admitted)."""
        return self.gate.held <= jobs

    def _gauges(self) -> None:
        self.metrics.queue_depth.set(max(self.gate.held - self.running, 0))
        self.metrics.in_flight.set(self.running)

    @asynccontextmanager
    async def worker(self, long: bool = False, wait_s: float | None = None) -> AsyncIterator[None]:
        """Hold one of the ``threads`` worker slots (FIFO among waiters); ``long`` work takes a
        place in the long lane first. ``wait_s``: give up (TimeoutError) when the places are not
        had within this many seconds."""
        async with AsyncExitStack() as places:
            with anyio.move_on_after(float("inf") if wait_s is None else max(wait_s, 0.0)) as waiting:
                if long:
                    await places.enter_async_context(self.long_limiter)
                await places.enter_async_context(self.limiter)
            if waiting.cancelled_caught:
                raise TimeoutError("no worker within the time allowed")
            yield

    async def call(self, jobs: int, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on a thread for ``jobs`` admitted jobs; the caller holds a worker slot."""
        self.running += jobs
        self._gauges()
        key = next(self._ids)
        self._calls[key] = time.perf_counter()
        try:
            # Not abandoned on cancellation: the worker finishes and the counters stay true.
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            del self._calls[key]
            self.running -= jobs
            self._gauges()

    async def run(
        self, fn: Callable[..., Any], *args: Any, jobs: int = 1, long: bool = False, wait_s: float | None = None
    ) -> Any:
        """Wait for a worker slot (at most ``wait_s`` seconds: else TimeoutError), then run
        ``fn(*args)`` on a thread; the caller admitted the jobs."""
        async with self.worker(long, wait_s):
            return await self.call(jobs, fn, *args)

    def pinned_s(self) -> float:
        """How long every worker has been on its current pass: the shortest of their times
        when all ``threads`` are busy, else 0."""
        if len(self._calls) < self.threads:
            return 0.0
        return time.perf_counter() - max(self._calls.values())

    async def drain(self, timeout: float) -> bool:
        """Wait until no job is admitted (at shutdown); False on timeout."""
        return await self.gate.wait_idle(timeout)


class MicroBatcher:
    """Merge concurrent compatible jobs into one solver pass, adaptively.

    Jobs with one key (model, grid, fast-phase settings) join a pending group; the
    group's task waits (after an optional extra ``window`` in seconds) for a free
    worker slot and takes every job that joined meanwhile, up to ``max_jobs``. An idle
    server therefore starts a lone job at once, and a busy one solves the jobs that
    queued behind a running pass together: one hypernetwork call, one fast phase over
    all rows, one batched field evaluation. ``solve_many(runtime, jobs) -> list`` runs
    on the worker thread; an exception in its list is raised to that job's caller alone. The
    caller holds each job's pool slot while it waits; a job whose caller gives up before its
    group starts is dropped from the group.
    """

    def __init__(
        self, pool: SolverPool, window: float, max_jobs: int, solve_many: Callable[[Any, Sequence[Any]], list]
    ):
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
        entry = (job, fut)
        group.append(entry)
        if len(group) >= self.max_jobs:
            self._close(gkey, group)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if self._groups.get(gkey) is group and entry in group:
                group.remove(entry)  # not started yet: nothing will be solved for it
            raise

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
                if not group:
                    return
                jobs = [job for job, _ in group]
                results = await self.pool.call(len(jobs), self.solve_many, runtime, jobs)
        except BaseException as exc:
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("solver shut down"))
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, fut), res in zip(group, results):
                if fut.done():
                    continue
                if isinstance(res, Exception):  # a job refused at the start of the pass (solve_many said why)
                    fut.set_exception(res)
                else:
                    fut.set_result(res)
        finally:
            self._close(gkey, group)
