"""Every check of a parsed request against the loaded models and the configured limits.

The schema (``fastlrnr.server.api.schemas``) has already checked types and shapes; here: the model
exists (404), the grid and the batch fit the limits (413), the fast-phase options are
allowed (422), the parameters lie in the model's served domain (422, or flagged with
``allow_extrapolation``), and the work fits the request's budget (``fastlrnr.server.engine.budget``):
its memory predicted from the declared sizes before any array is built (413
``over_memory_budget``), its time from the model's measured rates (422 ``over_time_budget``).
The result is a :class:`~fastlrnr.server.engine.jobs.Job` for the solver (a sweep: one per part).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from fastlrnr.numerics.answer import Flag, outside_served_domain
from fastlrnr.numerics.routes import RoutePlan
from fastlrnr.numerics.sites import Sites
from fastlrnr.server.api.grids import grid_arrays
from fastlrnr.server.api.schemas import BatchSolveRequest, FastPhase, Grid, Params, SolveRequest
from fastlrnr.server.api.sweep import SweepInput
from fastlrnr.server.api.sweep_plan import Part, plan
from fastlrnr.server.engine.budget import Budget
from fastlrnr.server.engine.costs import pass_bytes
from fastlrnr.server.engine.jobs import Job
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.errors import ApiError
from fastlrnr.server.settings import ServiceSettings


def find_model(models: Mapping[str, ModelRuntime], name: str | None, default: str) -> ModelRuntime:
    """The runtime a request names (or the default); 404 when none is loaded under that name."""
    name = name or default
    runtime = models.get(name)
    if runtime is None:
        raise ApiError(
            404,
            "unknown_model",
            f"no model named {name!r}; available: {sorted(models)}",
            [{"loc": ["body", "model"], "msg": f"unknown model {name!r}", "type": "not_found"}],
        )
    return runtime


def solve_job(runtime: ModelRuntime, body: SolveRequest, limits: ServiceSettings) -> Job:
    """The job of one ``POST /solve``."""
    return _job(runtime, body, [body.params], limits, single=True)


def batch_job(runtime: ModelRuntime, body: BatchSolveRequest, limits: ServiceSettings) -> Job:
    """The job of one ``POST /solve/batch``: the batch limits, then the same checks as /solve per row."""
    rows = len(body.params)
    if rows > limits.max_batch_size:
        raise ApiError(
            413,
            "batch_too_large",
            f"{rows} parameter sets; the limit is {limits.max_batch_size}",
            [{"loc": ["body", "params"], "msg": f"at most {limits.max_batch_size} items", "type": "too_large"}],
        )
    values = rows * body.grid.size
    if values > limits.max_batch_values:
        raise ApiError(
            413,
            "batch_too_large",
            f"{rows} × {body.grid.size} field values; the limit is {limits.max_batch_values}",
            [
                {
                    "loc": ["body", "grid"],
                    "msg": f"batch size × grid values at most {limits.max_batch_values}",
                    "type": "too_large",
                }
            ],
        )
    return _job(runtime, body, body.params, limits, single=False)


def _job(
    runtime: ModelRuntime,
    body: SolveRequest | BatchSolveRequest,
    params: Sequence[Params],
    limits: ServiceSettings,
    single: bool,
) -> Job:
    check_grid(body.grid, limits.max_grid_points)
    correct = runtime.correction_default if body.correction is None else body.correction
    tolerance = body.tolerance
    # with a tolerance and no correction asked, the route is the service's to choose: the fast
    # phase then runs only when asked for, as on a corrected answer
    free = tolerance is not None and body.correction is None
    settings, steps = fast_phase_settings(runtime, body.fast_phase, limits.max_steps, correct or free)
    mu = param_rows(runtime, params, single)
    inside, outside, beyond = check_domain(runtime, mu, body.allow_extrapolation, single, tolerance is not None)
    budget = Budget.of(body.time_budget_ms, limits)
    rows, sites = len(mu), body.grid.size
    grid = grid_arrays(body.grid)
    what = f"{rows} × {sites} field values and their answer"
    budget.refuse_memory(pass_bytes(rows, sites, correct, tolerance is not None, json=True), what, ("body", "grid"))
    plan = None
    if tolerance is not None:
        plan = runtime.plan(mu, grid, tolerance, body.correction, settings is not None, beyond)
        predicted = plan.seconds
    else:
        predicted = runtime.current_rates().pass_seconds(rows, sites, correct, settings is not None)
    budget.refuse_time(predicted, f"the first answer ({rows} × {sites} field values)")
    return Job(
        mu,
        ~inside,
        grid,
        settings,
        steps,
        tolerance,
        outside,
        correct=correct,
        budget=budget,
        predicted_s=predicted,
        plan=plan,
    )


def sweep_jobs(
    runtime: ModelRuntime,
    sweep: SweepInput,
    held_bytes: int,
    correct: bool | None,
    tolerance: float | None,
    budget_ms: int | None,
    allow_extrapolation: bool,
    limits: ServiceSettings,
) -> tuple[list[Part], list[Job], Budget, np.ndarray]:
    """The parts and jobs of one ``POST /solve/sweep`` (``held_bytes``: what the request holds
    besides its passes, ``fastlrnr.server.api.sweep.held_bytes``): the served-domain check of
    every row, then one job per part (``fastlrnr.server.api.sweep_plan``), all under one budget;
    and which rows are extrapolated (B,). ``correct`` None: uncorrected without a tolerance;
    with one, every row takes the cheapest route predicted to meet it (``correct`` True or
    False restricts the routes as for /solve)."""
    check_sweep_params(runtime, sweep.mu)
    inside, outside, beyond = check_domain(runtime, sweep.mu, allow_extrapolation, False, tolerance is not None)
    budget = Budget.of(budget_ms, limits, loc=("query", "time_budget_ms"))
    budget.reserved_bytes = held_bytes
    rates = runtime.current_rates()
    plans: dict[tuple, RoutePlan] = {}
    predict = None
    sized_corrected = bool(correct)
    if tolerance is not None:
        priors = runtime.corrected_priors
        sized_corrected = correct is True or (correct is None and bool(priors) and min(priors) <= tolerance)

        def predict(rows: slice, grid: Sites) -> float:
            p = runtime.plan(sweep.mu[rows], grid, tolerance, correct, False, beyond[rows], rates, explain=False)
            plans[(rows.start, rows.stop, grid.key)] = p
            return p.seconds

    parts = plan(
        sweep, held_bytes, sized_corrected, tolerance is not None, limits.max_batch_values, rates, budget, predict
    )
    jobs = [
        Job(
            sweep.mu[p.rows],
            ~inside[p.rows],
            p.grid,
            None,
            0,
            tolerance,
            outside[p.rows],
            correct=bool(correct),
            budget=budget,
            predicted_s=p.predicted_s,
            plan=plans.get((p.rows.start, p.rows.stop, p.grid.key)),
        )
        for p in parts
    ]
    return parts, jobs, budget, ~inside


def check_grid(grid: Grid, max_points: int) -> None:
    """413 when the grid asks for more field values than ``max_points``."""
    if grid.size > max_points:
        raise ApiError(
            413,
            "grid_too_large",
            f"the grid asks for {grid.size} values; the limit is {max_points}",
            [
                {
                    "loc": ["body", "grid"],
                    "msg": f"at most {max_points} values (nx·nt, len(x)·len(t) or len(points)), got {grid.size}",
                    "type": "too_large",
                }
            ],
        )


def fast_phase_settings(runtime: ModelRuntime, fast_phase: FastPhase, max_steps: int, correct: bool = False):
    """(settings or None when off, steps requested) from the request's options and the model's
    defaults. ``enabled`` null runs the fast phase for an uncorrected answer or when the
    request names ``steps``: on a corrected answer it changes nothing the client sees
    (docs/fast_phase_analysis.md), so by default it does not run there."""
    defaults = runtime.default_settings
    field_name = "steps" if fast_phase.steps is not None or fast_phase.epochs is None else "epochs"
    steps = fast_phase.requested_steps
    steps = min(defaults.steps, max_steps) if steps is None else steps
    if steps > max_steps:
        raise ApiError(
            422,
            "validation_error",
            f"fast_phase.{field_name} = {steps} exceeds the limit {max_steps}",
            [
                {
                    "loc": ["body", "fast_phase", field_name],
                    "msg": f"must be at most {max_steps}",
                    "type": "less_than_equal",
                }
            ],
        )
    backend = fast_phase.backend or defaults.backend
    if backend not in runtime.fast.backends:
        raise ApiError(
            422,
            "validation_error",
            f"model {runtime.name!r} has no {backend!r} backend",
            [
                {
                    "loc": ["body", "fast_phase", "backend"],
                    "type": "unavailable",
                    "msg": f"available: {list(runtime.fast.backends)}",
                }
            ],
        )
    enabled = fast_phase.enabled
    if enabled is None:  # on for an uncorrected answer, or when the request names its steps
        enabled = not correct or fast_phase.requested_steps is not None
    if not enabled or steps == 0:
        return None, 0
    changes: dict = {"steps": int(steps), "backend": backend}
    if fast_phase.locality != "auto":
        changes["locality"] = (float(fast_phase.locality),)
    return dataclasses.replace(defaults, **changes), int(steps)


def param_rows(runtime: ModelRuntime, params: Sequence[Params], single: bool) -> np.ndarray:
    """(B, p) float64 rows in the columns of the model's family (a missing name is 0), or 422
    naming the first parameter the family does not declare."""
    names = runtime.family.params
    for row, p in enumerate(params):
        unknown = sorted(set(p) - set(names))
        if unknown:
            loc = ["body", "params"] + ([] if single else [row]) + [unknown[0]]
            msg = (
                f"unknown parameter {unknown[0]!r}: model {runtime.name!r} solves the {runtime.family.name!r} "
                f"family, whose parameters are {', '.join(names)}"
            )
            raise ApiError(422, "validation_error", msg, [{"loc": loc, "type": "unknown_parameter", "msg": msg}])
    return np.array([[p.get(k, 0.0) for k in names] for p in params], dtype=np.float64).reshape(-1, len(names))


def check_sweep_params(runtime: ModelRuntime, mu: np.ndarray) -> None:
    """422 unless a sweep's params array has one column per parameter of the model's family."""
    names = runtime.family.params
    if mu.shape[1] != len(names):
        msg = f"params must have shape (B, {len(names)}): the columns {', '.join(names)} of model {runtime.name!r}"
        raise ApiError(422, "validation_error", msg, [{"loc": ["body", "params"], "type": "value_error", "msg": msg}])


def check_domain(
    runtime: ModelRuntime, mu: np.ndarray, allow_extrapolation: bool, single: bool, tolerance: bool = False
) -> tuple[np.ndarray, list[list[Flag]], np.ndarray]:
    """(rows inside the served domain, per-row flags, rows beyond the extrapolation box) or 422
    naming every offending parameter.

    Outside the served domain a row is refused, unless ``allow_extrapolation``: then it is
    solved and flagged within the model's extrapolation box (where its estimates' widening was
    measured: ``fastlrnr.numerics.extrapolation_box``); beyond the box only with a ``tolerance``,
    answered by the reference solver (a parameter fixed in the box, e.g. ``convection``'s ν, is
    refused anywhere else)."""
    served = runtime.served
    inside = served.contains(mu)
    errors: list[dict] = []
    outside: list[list[Flag]] = [[] for _ in range(len(mu))]
    beyond = np.zeros(len(mu), bool)
    lo_box, hi_box = runtime.extrapolation_low, runtime.extrapolation_high
    for row in np.flatnonzero(~inside):
        loc = ["body", "params"] + ([] if single else [int(row)])
        for i, key in enumerate(served.params):
            lo, hi = served.bounds[key]
            v = mu[row, i]
            if lo - 1e-12 <= v <= hi + 1e-12:
                continue
            allowed = f"= {lo:g}" if lo == hi else f"∈ [{lo:g}, {hi:g}]"
            if not allow_extrapolation:
                errors.append(
                    {
                        "loc": [*loc, key],
                        "type": "out_of_domain",
                        "msg": f"{key} = {float(v)!r} is outside the served domain of {runtime.name!r}: {key} "
                        f"{allowed} (set allow_extrapolation to solve anyway)",
                    }
                )
            elif not lo_box[i] - 1e-12 <= v <= hi_box[i] + 1e-12:
                errors.append(
                    {
                        "loc": [*loc, key],
                        "type": "extrapolation_too_far",
                        "msg": f"{key} = {float(v)!r} is too far outside the served domain of {runtime.name!r} "
                        f"({key} {allowed}); extrapolation is limited to [{lo_box[i]:g}, {hi_box[i]:g}]"
                        + (", where the estimates' widening was measured" if lo != hi else ""),
                    }
                )
            else:
                beyond[row] |= not lo_box[i] - 1e-12 <= v <= hi_box[i] + 1e-12
                outside[row].append(outside_served_domain(key, float(v), allowed))
    if errors:
        raise ApiError(422, "out_of_domain", errors[0]["msg"], errors[:20])
    return inside, outside, beyond
