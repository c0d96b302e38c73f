"""The rungs an answer can come from, and the escalation that climbs them to a tolerance.

Cheapest first:

- ``surrogate``: the LRNR's field, uncorrected (the hypernetwork's coefficients, or the fast
  phase's). Its estimate is the fast phase's calibrated error proxy when the fast phase ran,
  else the model's a-priori error map (no residual, no check grid: the sweep path).
- ``corrected``: the LRNR's field plus its error, solved from the LRNR's residual on the
  correction grid (``fastlrnr.numerics.correction``). The corrected rungs differ only in the substeps of
  the error equation and share one LRNR pass; each has its own calibrated estimate.
- ``reference``: the verified reference solver at a resolution chosen for the tolerance, with
  its own two-resolution estimate (``fastlrnr.numerics.reference_rung``).

Without a tolerance the answer is the first rung's (corrected when the request corrects,
else surrogate). With one, every row whose estimate is above it climbs: through the further
corrected rungs when it was corrected, then to the reference. A request that turned the
correction off climbs straight to the reference: at scattered points the reference costs
less than a correction grid's LRNR pass. A rung is started only when its predicted time fits
before the deadline; a row left above the tolerance when the time is up is flagged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from fastlrnr.numerics.answer import (
    A_PRIORI,
    AnswerDiagnostics,
    CoefficientSource,
    CorrectionDiagnostics,
    Diagnostics,
    Escalation,
    FastPhaseDiagnostics,
    Rung,
    finite_or_none,
)
from fastlrnr.numerics.correction import CorrectionPass, ErrorField
from fastlrnr.numerics.reference_rung import points_for, solve_to_tolerance
from fastlrnr.server.api.jobs import GridArrays
from fastlrnr.server.http.errors import SolverError

if TYPE_CHECKING:
    from fastlrnr.server.engine.solver import ModelRuntime


@dataclass
class Answer:
    """A pass's answers: u (R, ...) float64, estimate (R,), and the correction's LRNR pass and
    solve time (for the further corrected rungs). What produced each row's answer is in the
    rows' diagnostics (``Diagnostics.answer``)."""

    u: np.ndarray
    estimate: np.ndarray
    correction_pass: CorrectionPass | None = None
    correction_s: float = 0.0


def at_sites(field: ErrorField, grid: GridArrays) -> np.ndarray:
    """The error field at the request's sites: (R, nt, nx) or (R, P)."""
    if grid.kind == "points":
        return field.at_points(grid.x_eval, grid.t)
    return field.on_axes(grid.x_eval, grid.t)


def first_answer(
    rt: ModelRuntime,
    S: np.ndarray,
    mu: np.ndarray,
    grid: GridArrays,
    u_lrnr: np.ndarray,
    rows: list[Diagnostics],
    correct: bool,
    fast_ran: bool,
) -> Answer:
    """The cheapest answer of every row: corrected when ``correct``, else the surrogate.
    Fills the rows' answer and correction diagnostics (and their residual and error proxy when
    the fast phase did not run)."""
    outside = ~rt.served.contains(mu)
    for row in rows:
        row.answer = AnswerDiagnostics(
            Rung.CORRECTED if correct else Rung.SURROGATE,
            CoefficientSource.FAST_PHASE if row.fast_phase.accepted else CoefficientSource.HYPERNETWORK,
        )
    if correct:
        t0 = time.perf_counter()
        cp = rt.correction.evaluate(S, mu)
        cr = rt.correction.solve(cp)
        if not np.all(np.isfinite(cr.d)):
            raise SolverError(f"model {rt.name!r} produced a non-finite correction")
        u = u_lrnr + at_sites(cr.field, grid)
        estimate = rt.correction_spec.rungs[0].error_model.predict(cr.d, mu)
        estimate = estimate * np.where(outside, rt.corrected_extrapolation_factor, 1.0)
        for i, row in enumerate(rows):
            row.correction = _correction_diag(cr, i, rt)
            if not fast_ran:
                row.fast_phase = _checked(row.fast_phase, cr.rms[i], cr.proxy[i])
            row.answer.substeps = cr.substeps
        return Answer(u, estimate, cp, time.perf_counter() - t0)
    if fast_ran:
        proxy = np.array(
            [np.nan if r.fast_phase.error_proxy_after is None else r.fast_phase.error_proxy_after for r in rows]
        )
        estimate = rt.error_model.predict(proxy, mu) * np.where(outside, rt.extrapolation_factor, 1.0)
    elif rt.a_priori is not None:
        estimate = rt.a_priori.predict(mu)
        for row in rows:
            row.answer.estimate = A_PRIORI
    else:  # an artifact without an a-priori map: the proxy on the check grid
        proxy, rms = rt.fast.check(S, mu)
        for row, p, q in zip(rows, proxy, rms):
            row.fast_phase = _checked(row.fast_phase, q, p)
        estimate = rt.error_model.predict(proxy, mu) * np.where(outside, rt.extrapolation_factor, 1.0)
    if not np.all(np.isfinite(estimate)):
        raise SolverError(f"model {rt.name!r} produced a non-finite residual")
    return Answer(np.asarray(u_lrnr, dtype=np.float64), estimate)


def _checked(fast_phase: FastPhaseDiagnostics, rms, proxy) -> FastPhaseDiagnostics:
    """A row's fast-phase diagnostics with the residual and the error proxy of its (unadapted)
    coefficients, as the correction or the check grid measured them."""
    rms, proxy = finite_or_none(rms), finite_or_none(proxy)
    return replace(
        fast_phase, residual_before=rms, residual_after=rms, error_proxy_before=proxy, error_proxy_after=proxy
    )


def _correction_diag(cr, i: int, rt: ModelRuntime) -> CorrectionDiagnostics:
    return CorrectionDiagnostics(
        applied=True,
        two_grid_difference=finite_or_none(cr.d[i]),
        substeps=cr.substeps,
        newton_steps=int(cr.newton_steps[i]),
        newton_increment=None if np.isnan(cr.increment[i]) else float(cr.increment[i]),
        grid=(rt.correction.grid[0], rt.correction.grid[1]),
    )


def escalate(
    rt: ModelRuntime,
    ans: Answer,
    mu: np.ndarray,
    grid: GridArrays,
    u_lrnr: np.ndarray,
    tolerance: float,
    deadline: float | None,
    rows: list[Diagnostics],
) -> None:
    """Climb the ladder, in place, for every row whose estimate is above ``tolerance``."""
    need = np.flatnonzero(~(ans.estimate <= tolerance))
    if need.size == 0:
        return
    for i in need:
        rows[i].answer.escalation = Escalation(rows[i].answer.rung)
    exhausted = False
    outside = ~rt.served.contains(mu)
    if ans.correction_pass is not None:
        first = rt.correction_spec.rungs[0]
        for rung in rt.correction_spec.rungs[1:]:
            if need.size == 0:
                break
            predicted = ans.correction_s * rung.substeps / first.substeps * need.size / len(mu)
            if deadline is not None and time.perf_counter() + predicted > deadline:
                exhausted = True
                break
            cr = rt.correction.solve(ans.correction_pass.take(need), rung.substeps)
            est = rung.error_model.predict(cr.d, mu[need]) * np.where(
                outside[need], rt.corrected_extrapolation_factor, 1.0
            )
            better = est < ans.estimate[need]
            e_sites = at_sites(cr.field, grid)
            for k, i in enumerate(need):
                answer = rows[i].answer
                answer.escalation.tried.append(Escalation.corrected(rung.substeps))
                if better[k]:
                    ans.u[i] = u_lrnr[i] + e_sites[k]
                    ans.estimate[i] = est[k]
                    answer.rung, answer.substeps = Rung.CORRECTED, rung.substeps
                    rows[i].correction = _correction_diag(cr, k, rt)
            need = need[~(ans.estimate[need] <= tolerance)]
    if need.size and not exhausted:
        predicted = rt.reference_cost(need.size, int(np.prod(grid.shape)))
        if deadline is not None and time.perf_counter() + predicted > deadline:
            exhausted = True
        else:
            points = grid.kind == "points"
            ref = solve_to_tolerance(
                mu[need],
                grid.x_eval,
                grid.t,
                points,
                tolerance,
                deadline,
                points_for(tolerance, rt.family, mu[need]),
                family=rt.family,
            )
            exhausted = ref.exhausted
            for k, i in enumerate(need):
                answer = rows[i].answer
                answer.escalation.tried.append(str(Rung.REFERENCE))
                if ref.estimate[k] < ans.estimate[i]:
                    ans.u[i] = ref.u[k]
                    ans.estimate[i] = ref.estimate[k]
                    answer.rung, answer.substeps = Rung.REFERENCE, int(ref.substeps[k])
                    answer.reference_points = int(ref.points[k])
            need = need[~(ans.estimate[need] <= tolerance)]
    for i in need:
        rows[i].answer.escalation.time_budget_exhausted = exhausted
