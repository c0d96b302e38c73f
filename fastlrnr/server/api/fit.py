"""``POST /fit``: parameter estimation from observations (``fastlrnr.numerics.fit``).

A fit request, in order: API key (401) → a place among the open requests (503) → body read
(413, 408) and parsed off the event loop as the other JSON routes are (422: types, finite
numbers, x ∈ [0, 2π], t ∈ [0, 1], one value per point, σ > 0) → the checks against the model
and the limits (:func:`fit_job`: 404, 413, 422) → a place in the solver queue (503) and the fit
on a worker thread (with the fitted field when a grid is asked for) → the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from fastlrnr.numerics.answer import finite_or_none
from fastlrnr.numerics.fit import FitError, FitModel, FitResult, FitSettings, Observations, Refinement, fit_parameters
from fastlrnr.numerics.sites import Sites
from fastlrnr.server.api import checks
from fastlrnr.server.api.fit_schemas import FitRequest, FitResponse
from fastlrnr.server.api.grids import grid_arrays
from fastlrnr.server.api.openapi import error_responses, request_body
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.engine.state import ServiceState, get_state
from fastlrnr.server.errors import ApiError
from fastlrnr.server.http import encoding
from fastlrnr.server.http.auth import require_key
from fastlrnr.server.http.bodies import parse_body
from fastlrnr.server.http.middleware import START_KEY
from fastlrnr.server.logs import request_id_var

router = APIRouter(dependencies=[Depends(require_key)])

MAX_OBSERVATIONS = 4096  # observations per fit (413 beyond): a fit's time and memory grow with them
DEFAULT_TIME_BUDGET_MS = 2000
OUTSIDE = "outside_served_domain"

# u of cdr at (beta, nu, rho) = (2, 0.5, 1) at these points (the reference solver), plus noise of σ = 0.01
POINTS = [[0.4, 0.15], [1.3, 0.3], [2.2, 0.45], [3.1, 0.6], [4.0, 0.75], [4.9, 0.9], [5.8, 1.0], [0.9, 0.5]]
U_OBSERVED = [1.063, 1.351, 1.363, 1.291, 1.143, 0.946, 0.747, 0.909]
FIT_EXAMPLES: dict[str, dict] = {
    "known_noise": {
        "summary": "observations with a known noise level σ: every parameter of the default model (cdr) fitted",
        "value": {
            "observations": {"points": POINTS, "u": U_OBSERVED},
            "noise": 0.01,
        },
    },
    "estimated_noise": {
        "summary": "σ unknown: estimated from the residual (Student-t intervals)",
        "value": {
            "model": "cdr",
            "observations": {"points": POINTS, "u": U_OBSERVED},
        },
    },
    "bounds_and_fixed": {
        "summary": "nu held at 0.5, beta searched in [1.5, 2.5], rho in the served domain; the fitted field too",
        "value": {
            "model": "cdr",
            "observations": {"points": POINTS, "u": U_OBSERVED},
            "noise": 0.01,
            "bounds": {"beta": [1.5, 2.5]},
            "fixed": {"nu": 0.5},
            "grid": {"nx": 64, "nt": 11},
        },
    },
}


@dataclass(frozen=True)
class FitJob:
    """A checked fit: observations, the box (low, high) over the family's parameters (equal ends:
    held), σ or None, the settings, and the fitted field's grid (None: not asked for)."""

    obs: Observations
    low: np.ndarray
    high: np.ndarray
    sigma: float | None
    settings: FitSettings
    grid: Sites | None
    enqueued: float


@router.post(
    "/fit",
    tags=["fit"],
    response_model=FitResponse,
    responses=error_responses(401, 404, 408, 413, 422, 500, 503),
    openapi_extra=request_body(FitRequest, FIT_EXAMPLES),
)
async def fit(request: Request, state: ServiceState = Depends(get_state)) -> Response:
    """Observed values of u at scattered points → the parameters that explain them, with their
    covariance, 95 % intervals, the misfit and the flags (docs/service.md, "Parameter estimation")."""
    async with state.requests.slot():
        body = await parse_body(request, FitRequest, state)
        runtime = checks.find_model(state.models, body.model, state.settings.default_model)
        job = fit_job(runtime, body, state.settings.max_grid_points)
        answer = await state.execute_call(runtime, run_fit, runtime, job)
        answer["request_id"] = request_id_var.get()
        threshold = state.settings.gzip_min_bytes
        gzip_min = (
            threshold if threshold > 0 and encoding.accepts_gzip(request.headers.get("accept-encoding")) else None
        )
        start = request.scope.get(START_KEY, job.enqueued)
        data, compressed = await anyio.to_thread.run_sync(
            _encode, answer, start, gzip_min, limiter=state.encode_limiter
        )
        headers = {"Vary": "Accept-Encoding"} if threshold > 0 else {}
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return Response(data, media_type="application/json", headers=headers)


def _encode(answer: dict, start: float, gzip_min: int | None) -> tuple[bytes, bool]:
    """Worker thread: the answer's JSON with its total time, gzip-compressed when at least
    ``gzip_min`` bytes (None: never)."""
    answer["diagnostics"]["timings_ms"]["total"] = round((time.perf_counter() - start) * 1e3, 3)
    data = encoding.dumps(answer)
    if gzip_min is None or len(data) < gzip_min:
        return data, False
    return encoding.gzip_bytes(data), True


# ---------------------------------------------------------------------- checks


def _error(status: int, code: str, loc: list, msg: str, kind: str) -> ApiError:
    return ApiError(status, code, msg, [{"loc": ["body", *loc], "msg": msg, "type": kind}])


def fit_job(runtime: ModelRuntime, body: FitRequest, max_grid_points: int) -> FitJob:
    """The checks of one ``POST /fit`` against the model and the limits → a :class:`FitJob`."""
    n = len(body.observations.points)
    if n > MAX_OBSERVATIONS:
        raise _error(
            413,
            "too_many_observations",
            ["observations", "points"],
            f"{n} observations; the limit is {MAX_OBSERVATIONS}",
            "too_large",
        )
    if body.grid is not None:
        checks.check_grid(body.grid, max_grid_points)
    names = runtime.family.params
    served = runtime.served
    bounds, fixed = body.bounds or {}, body.fixed or {}
    for where, given in (("bounds", bounds), ("fixed", fixed)):
        for name in given:
            if name not in names:
                raise _error(
                    422,
                    "validation_error",
                    [where, name],
                    f"unknown parameter {name!r}: model {runtime.name!r} solves the {runtime.family.name!r} family, "
                    f"whose parameters are {', '.join(names)}",
                    "unknown_parameter",
                )
    for name in sorted(set(bounds) & set(fixed)):
        raise _error(
            422, "validation_error", ["fixed", name], f"{name} is both bounded and fixed; give one", "conflict"
        )
    low, high = served.low.copy(), served.high.copy()
    for i, name in enumerate(names):
        if name in fixed:
            low[i] = high[i] = fixed[name]
        elif name in bounds:
            lo, hi = bounds[name]
            if lo > hi:
                raise _error(
                    422, "validation_error", ["bounds", name], f"{name}: low {lo!r} > high {hi!r}", "value_error"
                )
            low[i], high[i] = lo, hi
    for i, name in enumerate(names):
        if name in bounds or name in fixed:
            _check_range(runtime, i, name, low[i], high[i], "fixed" if name in fixed else "bounds", body)
    free = int(np.sum(high > low))
    if n < free or (body.noise is None and n <= free):
        need = free if body.noise is not None else free + 1
        what = "" if body.noise is not None else " and the noise level (give noise to need one fewer)"
        raise _error(
            422,
            "validation_error",
            ["observations"],
            f"{n} observations cannot determine {free} free parameters{what}: at least {need} are needed",
            "too_few_observations",
        )
    pts = np.asarray(body.observations.points, dtype=np.float64).reshape(-1, 2)
    obs = Observations(pts[:, 0], pts[:, 1], np.asarray(body.observations.u, dtype=np.float64))
    budget = DEFAULT_TIME_BUDGET_MS if body.time_budget_ms is None else body.time_budget_ms
    settings = FitSettings(
        starts=body.starts or FitSettings.starts, refinement=Refinement(body.refinement), time_budget_s=budget / 1e3
    )
    grid = grid_arrays(body.grid) if body.grid is not None else None
    return FitJob(obs, low, high, body.noise, settings, grid, time.perf_counter())


def _check_range(runtime: ModelRuntime, i: int, name: str, lo: float, hi: float, where: str, body: FitRequest) -> None:
    """422 unless [lo, hi] lies in the served domain, or (allow_extrapolation) in its extrapolation range."""
    s_lo, s_hi = runtime.served.bounds[name]
    allowed = f"= {s_lo:g}" if s_lo == s_hi else f"∈ [{s_lo:g}, {s_hi:g}]"
    loc = [where, name]
    if s_lo - 1e-12 <= lo and hi <= s_hi + 1e-12:
        return
    shown = f"{float(lo)!r}" if lo == hi else f"[{float(lo)!r}, {float(hi)!r}]"
    if not body.allow_extrapolation:
        msg = (
            f"{name} {shown} reaches outside the served domain of {runtime.name!r}: {name} {allowed} "
            "(set allow_extrapolation to fit there anyway)"
        )
        raise _error(422, "out_of_domain", loc, msg, "out_of_domain")
    e_lo, e_hi = runtime.extrapolation_low[i], runtime.extrapolation_high[i]
    if not (e_lo - 1e-12 <= lo and hi <= e_hi + 1e-12):
        msg = (
            f"{name} {shown} is too far outside the served domain of {runtime.name!r} ({name} {allowed}); "
            f"extrapolation is limited to [{e_lo:g}, {e_hi:g}]"
        )
        raise _error(422, "out_of_domain", loc, msg, "extrapolation_too_far")


# ---------------------------------------------------------------------- the fit (worker thread)


def run_fit(runtime: ModelRuntime, job: FitJob) -> dict:
    """The fit, the fitted field when asked for, and the answer as a JSON-ready dict."""
    started = time.perf_counter()
    model = FitModel.from_artifact(runtime.artifact, correction=runtime.correction)
    try:
        res = fit_parameters(model, job.obs, job.low, job.high, sigma=job.sigma, settings=job.settings)
    except FitError as exc:  # the checks should have refused it
        raise _error(422, "validation_error", [exc.field or "observations"], str(exc), "value_error") from None
    timings = {"queue": started - job.enqueued, **res.timings}
    timings["fit"] = timings.pop("total")
    field = None
    if job.grid is not None:
        t0 = time.perf_counter()
        solved = runtime.solve(res.params[None], job.grid, None)
        field = {
            "grid": job.grid.kind,
            "x": job.grid.x,
            "t": job.grid.t,
            "u": solved.u[0],
            "rung": str(solved.rows[0].answer.rung),
            "error_estimate": float(solved.estimate[0]),
        }
        timings["field"] = time.perf_counter() - t0
    answer = fit_answer(runtime, res, job)
    answer["field"] = field
    answer["diagnostics"] = {"timings_ms": {k: round(v * 1e3, 3) for k, v in timings.items()}}
    return answer


def fit_answer(runtime: ModelRuntime, res: FitResult, job: FitJob) -> dict:
    """A :class:`~fastlrnr.numerics.fit.FitResult` in the JSON of ``FitResponse``."""
    names = res.names
    free = [k for k, f in zip(names, res.free) if f]
    idx = [names.index(k) for k in free]
    outside = not runtime.served.contains(res.params)[0]
    flags = [{"code": str(code), "message": msg, "params": list(params)} for code, msg, params in res.flags]
    if outside:
        lo, hi = runtime.served.low, runtime.served.high
        beyond = [k for i, k in enumerate(names) if not lo[i] - 1e-12 <= res.params[i] <= hi[i] + 1e-12]
        flags.append(
            {
                "code": OUTSIDE,
                "message": f"the fit lies outside the served domain ({', '.join(beyond)}): the surrogate extrapolates "
                "there, its error estimate is widened by the model's extrapolation factor",
                "params": beyond,
            }
        )
    return {
        "model": runtime.ref,
        "params": res.by_name(res.params),
        "free": free,
        "std_errors": {k: finite_or_none(res.std_errors[i]) for k, i in zip(free, idx)},
        "intervals": {k: [float(v) for v in res.intervals[i]] for k, i in zip(free, idx)},
        "level": res.level,
        "covariance": {
            "params": free,
            "matrix": [[finite_or_none(res.covariance[i, j]) for j in idx] for i in idx],
        },
        "bounds": {k: [float(job.low[i]), float(job.high[i])] for i, k in enumerate(names)},
        "noise": {"sigma": res.sigma, "estimated": res.sigma_estimated, "effective": res.sigma_eff},
        "misfit": {
            "chi2": finite_or_none(res.chi2),
            "dof": res.dof,
            "p_value": finite_or_none(res.chi2_p),
            "residual_rms": res.residual_rms,
        },
        "surrogate": {
            "rung": res.rung,
            "error_estimate": finite_or_none(res.surrogate_estimate),
            "error": res.surrogate_error,
            "widening": finite_or_none(res.widening),
        },
        "flags": flags,
        "iterations": res.iterations,
        "starts": res.starts,
        "refinements": res.refinements,
        "converged": res.converged,
        "extrapolated": bool(outside),
    }
