"""Python clients of the solve service: :class:`SolveClient` (sync) and :class:`AsyncSolveClient`.

    with SolveClient("http://127.0.0.1:8000", api_key="...") as client:
        res = client.solve({"beta": 2.0, "nu": 1.0, "rho": 1.0}, grid={"nx": 256, "nt": 100},
                           tolerance=0.02)
        res.u                 # (nt, nx) float array, res.x (nx,), res.t (nt,)
        res.error_estimate    # estimated relative L2 error; res.within_tolerance, res.flags
        res.diagnostics.fast_phase.accepted

Installed alone by ``pip install ".[client]"`` (httpx and numpy): this module imports neither
fastapi, pydantic, onnxruntime nor torch, nor the numerics (only the pure-Python
``fastlrnr.numerics.answer`` and ``fastlrnr.numerics.grid``). Answers come back as the dataclasses of
``fastlrnr.client.results`` (:class:`SolveResult`, :class:`BatchResult` of :class:`BatchItem`,
:class:`ModelRef`; a row's :class:`Diagnostics` and :class:`Flag` are the server's own, from
``fastlrnr.numerics.answer``), the response contract of ``fastlrnr.server.api.schemas`` typed for Python.

Both clients retry, with exponential backoff and jitter, on 503 and 408 (waiting as long as the
server's ``Retry-After`` says, capped) and on connection failures (the solve is a pure
function of its input, so a retry is safe); every other error raises :class:`SolveError`
carrying the server's error code, message, field errors and request id. ``transport="npy"``
fetches fields as ``.npy`` bytes (smaller, exact float32) instead of JSON.

``fit`` estimates the parameters that explain observed values (``POST /fit``,
``fastlrnr.client.fits``), with their covariance, intervals, misfit and flags.

``solve_batch`` splits a batch larger than the server's limits (``max_batch_size``,
``max_batch_values``: the server's defaults unless given) into several requests, sent one
after another, and joins the answers in order; a 413 ``batch_too_large`` makes it lower its
limits and split further. ``solve_many`` sends many single solves with at most
``concurrency`` in flight. ``solve_sweep`` sends many parameter sets at the same sites as
binary ``.npz`` requests (``fastlrnr.client.sweeps``), split to the server's limits.

With a ``tolerance`` the server escalates an answer whose estimate is above it (finer
correction, then the reference solver) within ``time_budget_ms`` (a client setting; the
server's default when None); ``res.rung`` says what produced ``u``.

Layout: the logic is sans I/O, as plans (generators that yield requests and sleeps,
``fastlrnr.client.plans``, ``fastlrnr.client.sweeps``) over ``fastlrnr.client.options`` (options,
bodies) and ``fastlrnr.client.answers`` (parsing); the two classes here only carry plans out,
one with httpx.Client and time.sleep, the other with httpx.AsyncClient and asyncio.sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar, Unpack

import httpx

from fastlrnr.client import fits, plans
from fastlrnr.client import sweeps as sweep_client
from fastlrnr.client.fits import FitField, FitFlag, FitKwargs, FitOptions, FitResult
from fastlrnr.client.options import (
    DEFAULT_GRID_VALUES,
    NPY,
    FastPhaseOptions,
    Plan,
    Sleep,
    SolveKwargs,
    SolveOptions,
    keywords_from,
    params_dict,
)
from fastlrnr.client.plans import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_VALUES,
    RETRY_EXCEPTIONS,
    ClientConfig,
    Run,
)
from fastlrnr.client.results import BatchItem, BatchResult, ModelRef, SolveError, SolveResult
from fastlrnr.client.sweeps import SweepKwargs, SweepOptions, SweepResult
from fastlrnr.numerics.answer import (
    AnswerDiagnostics,
    CorrectionDiagnostics,
    Diagnostics,
    Escalation,
    FastPhaseDiagnostics,
    Flag,
    FlagCode,
)
from fastlrnr.numerics.grid import uniform_grid

__all__ = [
    "DEFAULT_GRID_VALUES",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_VALUES",
    "NPY",
    "NPZ_TYPE",
    "RETRY_EXCEPTIONS",
    "AnswerDiagnostics",
    "AsyncSolveClient",
    "BatchItem",
    "BatchResult",
    "CorrectionDiagnostics",
    "Diagnostics",
    "Escalation",
    "FastPhaseDiagnostics",
    "FastPhaseOptions",
    "FitField",
    "FitFlag",
    "FitOptions",
    "FitResult",
    "Flag",
    "FlagCode",
    "ModelRef",
    "SolveClient",
    "SolveError",
    "SolveOptions",
    "SolveResult",
    "SweepOptions",
    "SweepResult",
    "params_dict",
    "sweep_client",
    "uniform_grid",
]

NPZ_TYPE = sweep_client.NPZ
T = TypeVar("T")


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")


class SolveClient(ClientConfig):
    """Synchronous client (one connection pool; thread-safe as httpx.Client is)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs):
        http_client = kwargs.pop("http_client", None)
        super().__init__(base_url, **kwargs)
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=self._timeout, headers=self._headers)
        if http_client is not None:
            self._http.headers.update(self._headers)

    def __enter__(self) -> SolveClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, plan: Plan[T]) -> T:
        """Carry a plan out: send its requests (a transport failure goes to the plan), sleep its sleeps."""
        run = Run(plan)
        for step in run:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
            else:
                try:
                    run.reply = self._http.request(step.method, step.url, **step.options)
                except httpx.TransportError as exc:  # the plan retries, or gives up
                    run.error = exc
        return run.value

    @keywords_from(SolveOptions)
    def solve(self, params, **options: Unpack[SolveKwargs]) -> SolveResult:
        """Solve for one parameter set ({beta, nu, rho} or (beta, nu, rho)); ``correction``:
        add the linearised correction (None: the model's default, see ``models()``)."""
        return self._run(plans.solve(self, params, SolveOptions(**options)))

    @keywords_from(SolveOptions)
    def solve_batch(self, params: Sequence, **options: Unpack[SolveKwargs]) -> BatchResult:
        """Solve many parameter sets on one grid: one vectorised pass per request, as many
        requests (one after another) as the server's batch limits need."""
        return self._run(plans.batch(self, params, SolveOptions(**options)))

    @keywords_from(SweepOptions)
    def solve_sweep(self, params, **options: Unpack[SweepKwargs]) -> SweepResult:
        """Many parameter sets (B, 3) at the same sites (``points`` (P, 2), or the axes ``x``,
        ``t``) through ``POST /solve/sweep``: binary, split into requests that fit the server's
        body (``body_bytes``) and answer limits, answers joined in order."""
        return self._run(sweep_client.sweep(self, params, SweepOptions(**options)))

    @keywords_from(SolveOptions)
    def solve_many(
        self,
        params: Iterable,
        *,
        concurrency: int = 4,
        return_exceptions: bool = False,
        **options: Unpack[SolveKwargs],
    ) -> list:
        """One ``solve`` per parameter set, at most ``concurrency`` in flight (threads sharing
        this client's connections); results in the order of ``params``.

        ``return_exceptions=False``: the first failure is raised once the solves in flight have
        finished, and those not yet sent are dropped. ``True``: a failed solve's exception
        (e.g. :class:`SolveError`) takes its place in the list and the others go on."""
        _check_concurrency(concurrency)
        SolveOptions(**options)  # refuse an unknown option before anything is sent
        items = list(params)
        if not items:
            return []
        stop = threading.Event()  # set by the first failure when it is to be raised: send nothing more

        def one(p):
            if stop.is_set():
                return None
            try:
                return self.solve(p, **options)
            except Exception:
                if not return_exceptions:
                    stop.set()
                raise

        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix="solve-many")
        try:
            futures: list[Future] = [pool.submit(one, p) for p in items]
            if not return_exceptions:
                wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception()), None)
                if failed is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise failed.exception()
            return (
                [f.exception() or f.result() for f in futures] if return_exceptions else [f.result() for f in futures]
            )
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    @keywords_from(FitOptions)
    def fit(self, points, u, **options: Unpack[FitKwargs]) -> FitResult:
        """Fit the model's parameters to observed values ``u`` (n,) at ``points`` (n, 2) as [x, t]
        (x in radians within [0, 2π], t in [0, 1]) through ``POST /fit``: the parameters, their
        covariance, standard errors and intervals, the misfit and the flags
        (:class:`~fastlrnr.client.fits.FitResult`)."""
        return self._run(fits.fit(self, points, u, FitOptions(**options)))

    def models(self) -> dict:
        """``GET /models``: the models served, their domains and the server's limits."""
        return self._run(plans.models(self))

    def ready(self, timeout: float | None = None) -> bool:
        """Whether GET /readyz answers 200 (False on 503 or no connection)."""
        return self._run(plans.ready(timeout))

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll /readyz until it answers 200; TimeoutError after ``timeout`` seconds."""
        return self._run(plans.wait_ready(self, timeout, interval))


class AsyncSolveClient(ClientConfig):
    """asyncio client; same methods as :class:`SolveClient`, awaitable."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs):
        http_client = kwargs.pop("http_client", None)
        super().__init__(base_url, **kwargs)
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url, timeout=self._timeout, headers=self._headers
        )
        if http_client is not None:
            self._http.headers.update(self._headers)

    async def __aenter__(self) -> AsyncSolveClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, plan: Plan[T]) -> T:
        """Carry a plan out: send its requests, sleep its sleeps, on the event loop."""
        run = Run(plan)
        for step in run:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            else:
                try:
                    run.reply = await self._http.request(step.method, step.url, **step.options)
                except httpx.TransportError as exc:  # the plan retries, or gives up
                    run.error = exc
        return run.value

    @keywords_from(SolveOptions)
    async def solve(self, params, **options: Unpack[SolveKwargs]) -> SolveResult:
        """As :meth:`SolveClient.solve`."""
        return await self._run(plans.solve(self, params, SolveOptions(**options)))

    @keywords_from(SolveOptions)
    async def solve_batch(self, params: Sequence, **options: Unpack[SolveKwargs]) -> BatchResult:
        """As :meth:`SolveClient.solve_batch`."""
        return await self._run(plans.batch(self, params, SolveOptions(**options)))

    @keywords_from(SweepOptions)
    async def solve_sweep(self, params, **options: Unpack[SweepKwargs]) -> SweepResult:
        """As :meth:`SolveClient.solve_sweep`."""
        return await self._run(sweep_client.sweep(self, params, SweepOptions(**options)))

    @keywords_from(SolveOptions)
    async def solve_many(
        self,
        params: Iterable,
        *,
        concurrency: int = 4,
        return_exceptions: bool = False,
        **options: Unpack[SolveKwargs],
    ) -> list:
        """As :meth:`SolveClient.solve_many`, on ``concurrency`` tasks; with
        ``return_exceptions=False`` the first failure cancels the solves in flight and is raised."""
        _check_concurrency(concurrency)
        SolveOptions(**options)  # refuse an unknown option before anything is sent
        items = list(params)
        out: list = [None] * len(items)
        indices = iter(range(len(items)))  # shared: each index is taken by exactly one worker

        async def worker() -> None:
            for i in indices:
                try:
                    out[i] = await self.solve(items[i], **options)
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    out[i] = exc

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return out

    @keywords_from(FitOptions)
    async def fit(self, points, u, **options: Unpack[FitKwargs]) -> FitResult:
        """As :meth:`SolveClient.fit`."""
        return await self._run(fits.fit(self, points, u, FitOptions(**options)))

    async def models(self) -> dict:
        """As :meth:`SolveClient.models`."""
        return await self._run(plans.models(self))

    async def ready(self, timeout: float | None = None) -> bool:
        """Whether GET /readyz answers 200 (False on 503 or no connection)."""
        return await self._run(plans.ready(timeout))

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll /readyz until it answers 200; TimeoutError after ``timeout`` seconds."""
        return await self._run(plans.wait_ready(self, timeout, interval))
