"""What one app instance owns (settings, metrics, models, pool) and how a job reaches a worker.

Route handlers get the state through ``Depends(get_state)``. :meth:`ServiceState.execute`
is the one place where a solve job takes its place in the solver queue and gives it
back; :attr:`ServiceState.requests` bounds the open solve requests before their bodies
are read. :meth:`ServiceState.replace_model` swaps a model's runtime (``fastlrnr.server.engine.reload``):
a request holds the runtime it found (``hold``) from its model look-up to its answer, whatever
its number of passes, and a replaced runtime — its field threads included — is closed when the
last request holding it is done.

A job is two passes at most: its first answer (micro-batched for /solve, in the long lane when
predicted long) and, when rows are above its tolerance, their climb (in the long lane unless its
budget leaves it less than LONG_PASS_S), under one place in the solver queue. Every first pass
tells its runtime's ``Load`` how long it took against its prediction. A job whose explicit time
budget ran out while it waited is refused at the start of its pass (503 + Retry-After), one
whose client left is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import anyio
import numpy as np
from fastapi import Request

from fastlrnr.numerics import ladder
from fastlrnr.server.engine.costs import LONG_PASS_S
from fastlrnr.server.engine.jobs import Job, PassResult
from fastlrnr.server.engine.loading import load_models
from fastlrnr.server.engine.pool import Gate, MicroBatcher, SolverPool
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.errors import ClientGone, Overloaded
from fastlrnr.server.metrics import Registry
from fastlrnr.server.settings import ServiceSettings

# Bodies larger than this are parsed one at a time, apart from small ones, so that a flood of
# large bodies cannot hold up the parsing of ordinary requests.
LARGE_BODY_BYTES = 64 * 1024
T = TypeVar("T")


class ServiceState:
    """Everything one app instance owns: settings, metrics, models, pool, limits."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.metrics = Registry()
        self.models: dict[str, ModelRuntime] = {}
        self._in_use: dict[int, int] = {}  # id(runtime) → jobs running on it (event loop only)
        self._retired: dict[int, ModelRuntime] = {}  # replaced runtimes still in use
        self.unavailable: list[dict] = []
        self.status: Literal["starting", "ready", "draining", "failed"] = "starting"
        self.pool = SolverPool(settings.solver_threads, settings.queue_capacity, settings.retry_after_s, self.metrics)
        self.requests = Gate(
            settings.max_requests,
            settings.retry_after_s,
            "too many solve requests are open",
            on_change=self.metrics.open_requests.set,
            on_reject=self.metrics.requests_rejected.inc,
        )
        self.parse_small = anyio.CapacityLimiter(max(2, settings.solver_threads))
        self.parse_large = anyio.CapacityLimiter(1)
        self.encode_limiter = anyio.CapacityLimiter(max(2, settings.solver_threads))
        self.batcher = (
            MicroBatcher(self.pool, settings.microbatch_window_ms / 1000.0, settings.microbatch_max, self.run_pass)
            if settings.microbatch
            else None
        )

    # ---- start-up and shutdown (lifespan)
    def load(self) -> None:
        """Worker thread: load, verify and warm the models (StartupError when the default fails)."""
        loaded = load_models(self.settings, field_threads=self.settings.field_threads)
        self.models, self.unavailable = loaded.models, loaded.unavailable
        for name, runtime in self.models.items():
            self.metrics.models.labels(name, runtime.artifact.version, runtime.artifact.sha256).set(1)

    def close(self) -> None:
        for runtime in [*self.models.values(), *self._retired.values()]:
            runtime.close()
        self._retired.clear()

    def readiness(self) -> tuple[bool, str]:
        """(ready, status): ready when every model is loaded and warmed and the workers are not
        all pinned on passes longer than ``ready_busy_s`` (then status ``busy``)."""
        if self.status != "ready":
            return False, self.status
        busy_s = self.settings.ready_busy_s
        if busy_s > 0 and self.pool.pinned_s() > busy_s:
            return False, "busy"
        return True, self.status

    # ---- reload (event loop thread)
    def replace_model(self, name: str, runtime: ModelRuntime | None) -> ModelRuntime | None:
        """Serve ``runtime`` under ``name`` (None: stop serving it); returns the runtime replaced.

        The new mapping is swapped in whole, so a request sees either the old or the new
        model; the old runtime is closed once no job runs on it any more."""
        models = dict(self.models)
        old = models.pop(name, None)
        if runtime is not None:
            models[name] = runtime
        self.models = models
        if old is not None:
            self.metrics.models.remove(name, old.artifact.version, old.artifact.sha256)
            self._retire(old)
        if runtime is not None:
            self.metrics.models.labels(name, runtime.artifact.version, runtime.artifact.sha256).set(1)
        return old

    @contextmanager
    def hold(self, runtime: ModelRuntime) -> Iterator[ModelRuntime]:
        """Hold ``runtime`` for the block (a request from its model look-up to its answer): a
        reload that replaces it meanwhile closes it only after the last holder lets go. Enter it
        with no await after the look-up."""
        self._hold(runtime, +1)
        try:
            yield runtime
        finally:
            self._hold(runtime, -1)

    def _retire(self, runtime: ModelRuntime) -> None:
        if self._in_use.get(id(runtime), 0) > 0:
            self._retired[id(runtime)] = runtime
        else:
            runtime.close()

    def _hold(self, runtime: ModelRuntime, delta: int) -> None:
        key = id(runtime)
        n = self._in_use.get(key, 0) + delta
        if n > 0:
            self._in_use[key] = n
            return
        self._in_use.pop(key, None)
        retired = self._retired.pop(key, None)
        if retired is not None:
            retired.close()

    # ---- solving
    def run_pass(self, runtime: ModelRuntime, jobs: list[Job]) -> list[PassResult | Exception]:
        """Worker thread: one first pass over ``jobs``, recorded in the metrics; a job whose
        explicit budget ran out while it waited gets Overloaded instead, one whose client left
        ClientGone.

        When these jobs are all the work admitted, the field is evaluated on
        ``field_threads`` threads; otherwise the other workers need the cores."""
        refused: dict[int, Exception] = {}
        for i, job in enumerate(jobs):
            if job.budget is not None and job.budget.gone.is_set():
                refused[i] = ClientGone()
            elif job.budget is not None and job.budget.late():
                refused[i] = Overloaded("the request waited past its time budget", self.settings.retry_after_s)
        live = [job for i, job in enumerate(jobs) if i not in refused]
        if not live:
            return [refused[i] for i in range(len(jobs))]
        workers = self.settings.field_threads if self.pool.idle_for(len(live)) else 1
        solved = runtime.solve_jobs(live, field_workers=workers, climb=False)
        for job, res in zip(live, solved):
            if res.climb is not None and job.plan is not None and not job.plan.lrnr.all():
                self.run_climb(runtime, job, res)  # rows routed to the reference: solved in this pass
        results = iter(solved)
        out = [refused[i] if i in refused else next(results) for i in range(len(jobs))]
        m, timings = self.metrics, next(r for r in out if isinstance(r, PassResult)).timings
        first = live[0]
        rows, sites = sum(j.mu.shape[0] for j in live), first.grid.sites
        if first.plan is None:  # the load is learnt from LRNR passes against their prediction
            predicted = runtime.rates.pass_seconds(rows, sites, first.correct, first.settings is not None)
            runtime.load.observe(predicted, sum(timings.values()))
        for stage, secs in timings.items():
            m.stage.labels(runtime.name, stage).observe(secs)
        m.fast_phase.labels(runtime.name).observe(timings["fast_phase"])
        m.batch_rows.labels(runtime.name).observe(sum(j.mu.shape[0] for j in live))
        for res in out:
            for row in res.rows if isinstance(res, PassResult) else ():
                fp = row.fast_phase
                outcome = "skipped" if not fp.enabled else "accepted" if fp.accepted else "rejected"
                m.solves.labels(runtime.name, outcome).inc()
        return out

    def run_climb(self, runtime: ModelRuntime, job: Job, res: PassResult) -> PassResult:
        """Worker thread: the climb of ``res``'s rows above the job's tolerance, within its budget
        (the reference rung may take what the pass's answer leaves of the memory budget)."""
        budget = job.budget
        held = res.u.nbytes + (res.climb.u_lrnr.nbytes if res.climb is not None else 0)
        max_bytes = None if budget is None else max(0, budget.memory_bytes - budget.reserved_bytes - held)
        runtime.climb(res, job.mu, job.grid, job.tolerance, job.limits(max_bytes), job.correct)
        self.metrics.stage.labels(runtime.name, "escalation").observe(res.timings["escalation"])
        return res

    async def execute(self, runtime: ModelRuntime, job: Job, batchable: bool, long: bool | None = None) -> PassResult:
        """Admit the job to the solver queue (503 when full), run it (``run_job``), give the place back."""
        async with self.pool.slot():
            return await self.run_job(runtime, job, batchable, long)

    async def run_job(
        self, runtime: ModelRuntime, job: Job, batchable: bool = False, long: bool | None = None
    ) -> PassResult:
        """The job's first pass and, when rows are above its tolerance, their climb; the caller
        holds a place in the solver queue (``pool.slot()``: a sweep holds one for all its passes).

        ``batchable``: the first pass may be shared with other /solve jobs; ``long``: it runs in
        the long lane (None: when predicted longer than LONG_PASS_S). The runtime is held
        throughout (the caller holds it too, from its model look-up: ``hold``)."""
        long = job.predicted_s > LONG_PASS_S if long is None else long
        with self.hold(runtime):
            if batchable and self.batcher is not None:
                # id(runtime): jobs for two versions of one model never share a pass
                res = await self.batcher.submit(runtime, (id(runtime), job.key), job)
            else:
                res = (await self.pool.run(self.run_pass, runtime, [job], long=long))[0]
                if isinstance(res, Exception):
                    raise res
            if res.climb is not None:
                res = await self._climb(runtime, job, res)
            return res

    async def _climb(self, runtime: ModelRuntime, job: Job, res: PassResult) -> PassResult:
        """The climb of a first pass's rows above the tolerance (in the long lane unless its budget
        leaves it less than LONG_PASS_S); none when no row needs it; flagged without work when the
        budget is spent before it could start (the wait for a worker included)."""
        if np.all(res.estimate <= job.tolerance):
            res.climb = None
            return res
        budget = job.budget
        if budget is None or not budget.escalation_stop():
            wait_s = None if budget is None else budget.escalation_deadline - time.perf_counter()
            long = wait_s is None or wait_s > LONG_PASS_S  # a climb its budget keeps short is short work
            try:
                return await self.pool.run(self.run_climb, runtime, job, res, long=long, wait_s=wait_s)
            except TimeoutError:
                pass
        ladder.give_up(res.estimate, job.tolerance, res.rows)
        res.climb = None
        return res

    async def execute_call(self, runtime: ModelRuntime, fn: Callable[..., T], *args: Any) -> T:
        """Admit one job that is not a solve pass (a fit, ``fastlrnr.server.api.fit``) to the solver
        queue (503 when full) and run ``fn(*args)`` on a worker, the runtime held as ``execute``
        holds it."""
        self._hold(runtime, +1)
        try:
            async with self.pool.slot():
                return await self.pool.run(fn, *args)
        finally:
            self._hold(runtime, -1)


def get_state(request: Request) -> ServiceState:
    """FastAPI dependency: the app's state."""
    return request.app.state.service
