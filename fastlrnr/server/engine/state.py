"""What one app instance owns (settings, metrics, models, pool) and how a job reaches a worker.

Route handlers get the state through ``Depends(get_state)``. :meth:`ServiceState.execute`
is the one place where a solve job takes its place in the solver queue and gives it
back; :attr:`ServiceState.requests` bounds the open solve requests before their bodies
are read. :meth:`ServiceState.replace_model` swaps a model's runtime (``fastlrnr.server.engine.reload``):
requests that found the old one finish on it, and it is closed when the last of them is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import anyio
from fastapi import Request

from fastlrnr.server.api.jobs import Job, PassResult
from fastlrnr.server.engine.loading import load_models
from fastlrnr.server.engine.pool import Gate, MicroBatcher, SolverPool
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.http.metrics import Registry
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
    def run_pass(self, runtime: ModelRuntime, jobs: list[Job]) -> list[PassResult]:
        """Worker thread: one solver pass over ``jobs``, recorded in the metrics.

        When these jobs are all the work admitted, the field is evaluated on
        ``field_threads`` threads; otherwise the other workers need the cores."""
        workers = self.settings.field_threads if self.pool.idle_for(len(jobs)) else 1
        results = runtime.solve_jobs(jobs, field_workers=workers)
        m, timings = self.metrics, results[0].timings
        for stage, secs in timings.items():
            m.stage.labels(runtime.name, stage).observe(secs)
        m.fast_phase.labels(runtime.name).observe(timings["fast_phase"])
        m.batch_rows.labels(runtime.name).observe(sum(j.mu.shape[0] for j in jobs))
        for res in results:
            for row in res.rows:
                fp = row.fast_phase
                outcome = "skipped" if not fp.enabled else "accepted" if fp.accepted else "rejected"
                m.solves.labels(runtime.name, outcome).inc()
        return results

    async def execute(self, runtime: ModelRuntime, job: Job, batchable: bool) -> PassResult:
        """Admit the job to the solver queue (503 when full), run it, give the place back.

        The runtime is held from the first statement (no await between the handler's model
        look-up and here), so a reload cannot close it under the job."""
        self._hold(runtime, +1)
        try:
            async with self.pool.slot():
                if batchable and self.batcher is not None:
                    # id(runtime): jobs for two versions of one model never share a pass
                    return await self.batcher.submit(runtime, (id(runtime), job.key), job)
                return (await self.pool.run(self.run_pass, runtime, [job]))[0]
        finally:
            self._hold(runtime, -1)

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
