"""The rungs an answer can come from, and the escalation that climbs them to a tolerance.

Cheapest first:

- ``surrogate``: the LRNR's field, uncorrected (the hypernetwork's coefficients, or the fast
  phase's). Its estimate bounds the error at the returned sites through the model's site
  envelope; on a full uniform grid (``field_like``) it is the field-wide calibrated estimate —
  the fast phase's error proxy when it ran, else the a-priori map — which holds there as
  calibrated and is far tighter (the pointwise bound is ~40× loose over a whole field).
- ``corrected``: the LRNR's field plus its error, solved from the LRNR's residual on the
  correction grid (``fastlrnr.numerics.correction``). The corrected rungs differ only in the substeps of
  the error equation and share one LRNR pass; each has its own calibrated estimate.
- ``reference``: the verified reference solver at a resolution chosen for the tolerance, with
  its own two-resolution estimate (``fastlrnr.numerics.reference_rung``).

Without a tolerance the answer is the first rung's (corrected when the request corrects,
else surrogate). With one, each row may first be routed (``fastlrnr.numerics.routes``: the
cheapest route predicted to meet the tolerance — a row routed to the reference gets nothing from
the first pass and is solved by the climb, from the resolution its route chose); then every row
whose estimate is above it climbs: through the further corrected rungs when it was corrected,
then to the reference. A request that turned the
correction off climbs straight to the reference: at scattered points the reference costs
less than a correction grid's LRNR pass. A rung is started only when its predicted time fits
before the deadline (:class:`Limits`) — the reference rung's from its steps, at least one per
distinct time, and its memory (``fastlrnr.numerics.reference_cost``) —; the reference rung polls
the request's ``stop`` inside its marches. A row left above the tolerance when the budget is
spent is flagged.

The first answer and the climb are separate calls (``first_answer``, ``escalate``) so that the
server can run them as separate passes: what the climb needs of the first pass is a
:class:`Climb`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from fastlrnr.numerics.answer import (
    A_PRIORI,
    SITE_ENVELOPE,
    AnswerDiagnostics,
    CoefficientSource,
    CorrectionDiagnostics,
    Diagnostics,
    Escalation,
    FastPhaseDiagnostics,
    GridSize,
    Rung,
    finite_or_none,
)
from fastlrnr.numerics.correction import CorrectionPass, ErrorField
from fastlrnr.numerics.failures import SolverError
from fastlrnr.numerics.reference_rung import points_for, solve_to_tolerance
from fastlrnr.numerics.routes import RoutePlan, route_name
from fastlrnr.numerics.site_envelope import SiteEnvelope
from fastlrnr.numerics.sites import Sites
from fastlrnr.numerics.stopping import Stop

if TYPE_CHECKING:
    from fastlrnr.numerics.served_model import ServedModel


ENVELOPE_CHUNK = 1 << 20  # site bounds computed at once (rows × sites), 8 MiB of float64
FIELD_GRID = 16  # uniform grids at least this wide in x and t get the field-wide estimates (``field_like``)
UNBOUNDED = 1e9  # the site estimate of an answer no larger than its error bound (finite, so JSON carries it)


@dataclass
class Answer:
    """A pass's answers: u (R, ...) float32, estimate (R,), and the correction's LRNR pass and
    solve time (for the further corrected rungs). What produced each row's answer is in the
    rows' diagnostics (``Diagnostics.answer``)."""

    u: np.ndarray
    estimate: np.ndarray
    correction_pass: CorrectionPass | None = None
    correction_s: float = 0.0


@dataclass
class Climb:
    """What a first pass keeps for its rows' climb: the LRNR's field at the sites (R, ...)
    float32 (NaN on rows it did not evaluate), the correction's LRNR pass (None: uncorrected) and
    how long its solve took; ``corrected`` (R,) bool: the rows that pass covers (None: all of
    them); ``plan``: the rows' routes when the request named a tolerance
    (``fastlrnr.numerics.routes``)."""

    u_lrnr: np.ndarray
    correction_pass: CorrectionPass | None
    correction_s: float
    corrected: np.ndarray | None = None
    plan: RoutePlan | None = None

    def covered(self) -> np.ndarray:
        """(R,) bool: the rows the correction pass covers."""
        if self.correction_pass is None:
            return np.zeros(len(self.u_lrnr), bool)
        return np.ones(len(self.u_lrnr), bool) if self.corrected is None else self.corrected

    def pass_rows(self, rows: np.ndarray) -> np.ndarray:
        """Positions in the correction pass of ``rows`` (indices of rows it covers)."""
        return (np.cumsum(self.covered()) - 1)[rows]

    def take(self, lo: int, hi: int) -> Climb:
        """The rows lo … hi − 1 (a job's share of a shared pass)."""
        covered = self.covered()
        mine = np.flatnonzero(covered[lo:hi]) + lo
        cp = None if self.correction_pass is None else self.correction_pass.take(self.pass_rows(mine))
        share = mine.size / max(1, int(covered.sum()))
        return Climb(
            self.u_lrnr[lo:hi],
            cp,
            self.correction_s * share,
            None if self.corrected is None else self.corrected[lo:hi],
            None if self.plan is None else self.plan.take(lo, hi),
        )


@dataclass(frozen=True)
class Limits:
    """How far a climb may go: rungs must end by ``deadline`` (perf_counter; None: no limit),
    ``stop`` is polled inside the reference rung, whose attempts may take ``max_bytes``."""

    deadline: float | None = None
    stop: Stop | None = None
    max_bytes: int | None = None

    def late(self, predicted_s: float) -> bool:
        """A rung predicted to take ``predicted_s`` would end too late (or the work is stopped)."""
        if self.stop is not None and self.stop():
            return True
        return self.deadline is not None and time.perf_counter() + predicted_s > self.deadline


def at_sites(field: ErrorField, grid: Sites) -> np.ndarray:
    """The error field at the request's sites: (R, nt, nx) or (R, P)."""
    if grid.kind == "points":
        return field.at_points(grid.x_eval, grid.t)
    return field.on_axes(grid.x_eval, grid.t)


def first_answer(
    model: ServedModel,
    S: np.ndarray,
    mu: np.ndarray,
    grid: Sites,
    u_lrnr: np.ndarray,
    rows: list[Diagnostics],
    correct: bool,
    fast_ran: bool,
    u_hyper: np.ndarray | None = None,
) -> Answer:
    """The cheapest answer of every row: corrected when ``correct``, else the surrogate.
    Fills the rows' answer and correction diagnostics (and their residual and error proxy when
    the fast phase did not run).

    An uncorrected answer's estimate holds at the sites it returns when the model has a site
    envelope (``fastlrnr.numerics.site_envelope``; on a full uniform grid, the field-wide
    calibrated estimate instead): the envelope bounds the hypernetwork's
    error pointwise, and where the fast phase moved the coefficients their field's departure
    from the hypernetwork's (``u_hyper``, the hypernetwork's field at the sites; None: the
    same as ``u_lrnr``) is added to the bound."""
    outside = ~model.served.contains(mu)
    for row in rows:
        row.answer = AnswerDiagnostics(
            Rung.CORRECTED if correct else Rung.SURROGATE,
            CoefficientSource.FAST_PHASE if row.fast_phase.accepted else CoefficientSource.HYPERNETWORK,
        )
    if correct:
        t0 = time.perf_counter()
        cp = model.correction.evaluate(S, mu)
        cr = model.correction.solve(cp)
        if not np.all(np.isfinite(cr.d)):
            raise SolverError(f"model {model.name!r} produced a non-finite correction")
        e = at_sites(cr.field, grid)  # float64, then the LRNR's field added in place
        e += u_lrnr
        u = e.astype(np.float32)
        del e
        estimate = model.correction_spec.rungs[0].error_model.predict(cr.d, mu)
        estimate = estimate * np.where(outside, model.corrected_extrapolation_factor, 1.0)
        for i, row in enumerate(rows):
            row.correction = _correction_diag(cr, i, model)
            if not fast_ran:
                row.fast_phase = _checked(row.fast_phase, cr.rms[i], cr.proxy[i])
            row.answer.substeps = cr.substeps
        return Answer(u, estimate, cp, time.perf_counter() - t0)
    if model.envelope is not None and not field_like(grid):
        estimate, label = site_estimate(model.envelope, mu, grid, u_lrnr, u_hyper), SITE_ENVELOPE
    else:
        estimate, label = _field_estimate(model, S, mu, rows, fast_ran, outside)
    for row in rows:
        row.answer.estimate = label
    if not np.all(np.isfinite(estimate)):
        raise SolverError(f"model {model.name!r} produced a non-finite residual")
    return Answer(np.asarray(u_lrnr, dtype=np.float32), estimate)


def field_like(grid: Sites) -> bool:
    """Sites that sample the whole domain as densely as the calibration did: a uniform grid of at
    least ``FIELD_GRID`` × ``FIELD_GRID``. There the field-wide estimates (calibrated on the relative
    L2 error over the domain) hold as they were calibrated."""
    return grid.kind == "uniform" and grid.x.size >= FIELD_GRID and grid.t.size >= FIELD_GRID


def _field_estimate(model: ServedModel, S, mu, rows, fast_ran: bool, outside) -> tuple[np.ndarray, str | None]:
    """(R,) field-wide estimates of uncorrected answers and their label: the fast phase's
    calibrated error proxy when it ran, else the a-priori map, else the proxy on the check grid."""
    if fast_ran:
        proxy = np.array(
            [np.nan if r.fast_phase.error_proxy_after is None else r.fast_phase.error_proxy_after for r in rows]
        )
        return model.error_model.predict(proxy, mu) * np.where(outside, model.extrapolation_factor, 1.0), None
    if model.a_priori is not None:
        return model.a_priori.predict(mu), A_PRIORI
    proxy, rms = model.fast.check(S, mu)  # an artifact without an a-priori map: the proxy on the check grid
    for i, (p, q) in enumerate(zip(proxy, rms)):
        rows[i].fast_phase = _checked(rows[i].fast_phase, q, p)
    return model.error_model.predict(proxy, mu) * np.where(outside, model.extrapolation_factor, 1.0), None


def site_estimate(
    envelope: SiteEnvelope, mu: np.ndarray, grid: Sites, u: np.ndarray, u_hyper: np.ndarray | None = None
) -> np.ndarray:
    """(R,) bounds on the relative L2 error at the sites of answers u (R, ...) (see ``first_answer``):
    B / (‖u‖ − B) with B = ‖bound + |u − u_hyper|‖ over the sites; ``UNBOUNDED`` where ‖u‖ ≤ B
    (the answer is no larger than its error bound: no relative promise can be made)."""
    R = len(mu)
    if grid.kind == "points":
        x, t = grid.x_eval, grid.t
    else:
        X, T = np.meshgrid(grid.x_eval, grid.t)
        x, t = X.ravel(), T.ravel()
    u = np.asarray(u, dtype=np.float64).reshape(R, -1)
    bound = np.empty_like(u)
    rows = max(1, ENVELOPE_CHUNK // max(1, x.size))
    for lo in range(0, R, rows):
        bound[lo : lo + rows] = envelope.bound(mu[lo : lo + rows], x, t)
    if u_hyper is not None:
        bound += np.abs(u - np.asarray(u_hyper, dtype=np.float64).reshape(R, -1))
    b = np.sqrt(np.sum(bound * bound, axis=1))
    norm = np.sqrt(np.sum(u * u, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = b / (norm - b)
    return np.minimum(np.where((norm > b) & np.isfinite(out), out, UNBOUNDED), UNBOUNDED)


def _checked(fast_phase: FastPhaseDiagnostics, rms, proxy) -> FastPhaseDiagnostics:
    """A row's fast-phase diagnostics with the residual and the error proxy of its (unadapted)
    coefficients, as the correction or the check grid measured them."""
    rms, proxy = finite_or_none(rms), finite_or_none(proxy)
    return replace(
        fast_phase, residual_before=rms, residual_after=rms, error_proxy_before=proxy, error_proxy_after=proxy
    )


def _correction_diag(cr, i: int, model: ServedModel) -> CorrectionDiagnostics:
    return CorrectionDiagnostics(
        applied=True,
        two_grid_difference=finite_or_none(cr.d[i]),
        substeps=cr.substeps,
        newton_steps=int(cr.newton_steps[i]),
        newton_increment=None if np.isnan(cr.increment[i]) else float(cr.increment[i]),
        grid=GridSize(model.correction.grid[0], model.correction.grid[1]),
    )


def give_up(estimate: np.ndarray, tolerance: float, rows: list[Diagnostics]) -> None:
    """Rows above ``tolerance`` whose climb could not start (the budget was spent, the client
    gone): flagged as stopped by the budget, nothing tried."""
    for i in np.flatnonzero(~(estimate <= tolerance)):
        rows[i].answer.escalation = Escalation(rows[i].answer.rung)
        rows[i].answer.escalation.time_budget_exhausted = True


def escalate(
    model: ServedModel,
    u: np.ndarray,
    estimate: np.ndarray,
    climb: Climb,
    mu: np.ndarray,
    grid: Sites,
    tolerance: float,
    limits: Limits,
    rows: list[Diagnostics],
) -> None:
    """Every row whose estimate is above ``tolerance`` — on its first route, or routed straight
    to the reference (``climb.plan``) — within ``limits``: ``u`` (R, ...) float32, ``estimate``
    (R,) and ``rows`` updated in place. A corrected row climbs the further corrected rungs, then
    every row the reference solver (a routed row from the resolution its plan chose)."""
    need = np.flatnonzero(~(estimate <= tolerance))
    if need.size == 0:
        return
    plan = climb.plan
    routed = np.zeros(len(mu), bool) if plan is None else ~plan.lrnr  # rows whose route is the reference
    for i in need:
        if not routed[i]:  # a route whose own estimate missed: the climb starts here
            answer = rows[i].answer
            answer.escalation = Escalation(answer.rung)
            if answer.route is not None:
                answer.reason = (
                    f"{answer.reason}; its own estimate {estimate[i]:.3g} missed the tolerance, so the answer climbed"
                )
    exhausted = False
    outside = ~model.served.contains(mu)
    u_lrnr = climb.u_lrnr
    covered = climb.covered()
    if climb.correction_pass is not None:
        first = model.correction_spec.rungs[0]
        for rung in model.correction_spec.rungs[1:]:
            up = need[covered[need]]
            if up.size == 0:
                break
            predicted = climb.correction_s * rung.substeps / first.substeps * up.size / max(1, int(covered.sum()))
            if limits.late(predicted):
                exhausted = True
                break
            cr = model.correction.solve(climb.correction_pass.take(climb.pass_rows(up)), rung.substeps)
            est = rung.error_model.predict(cr.d, mu[up]) * np.where(
                outside[up], model.corrected_extrapolation_factor, 1.0
            )
            better = est < estimate[up]
            e_sites = at_sites(cr.field, grid)
            for k, i in enumerate(up):
                answer = rows[i].answer
                answer.escalation.tried.append(Escalation.corrected(rung.substeps))
                if better[k]:
                    u[i] = u_lrnr[i] + e_sites[k]
                    estimate[i] = est[k]
                    answer.rung, answer.substeps = Rung.CORRECTED, rung.substeps
                    answer.estimate = None  # the rung's calibrated estimate now
                    if answer.route is not None:
                        answer.route = route_name(str(Rung.CORRECTED), substeps=rung.substeps)
                    rows[i].correction = _correction_diag(cr, k, model)
            del e_sites
            need = need[~(estimate[need] <= tolerance)]
    if need.size and not exhausted:
        default_n = points_for(tolerance, model.family, mu[need])
        first_n = np.where(routed[need] & (plan is not None), _plan_of(plan, "points", need), default_n)
        first_s = np.where(routed[need] & (plan is not None), _plan_of(plan, "substeps", need), 0)
        first_s = np.where(first_s > 0, first_s, model.family.rung.first_substeps)
        ref = solve_to_tolerance(
            mu[need],
            grid.x_eval,
            grid.t,
            grid.kind == "points",
            tolerance,
            limits.deadline,
            first_n,
            first_s,
            family=model.family,
            stop=limits.stop,
            max_bytes=limits.max_bytes,
            rates=model.reference_rates(),
        )
        exhausted = ref.exhausted
        for k, i in enumerate(need):
            answer = rows[i].answer
            if not routed[i] and ref.attempts:
                answer.escalation.tried.append(str(Rung.REFERENCE))
            elif routed[i] and not ref.attempts:
                answer.escalation = Escalation(Rung.REFERENCE)
            if ref.attempts and ref.estimate[k] < estimate[i]:
                u[i] = ref.u[k]
                estimate[i] = ref.estimate[k]
                answer.rung, answer.substeps = Rung.REFERENCE, int(ref.substeps[k])
                answer.estimate = None  # the reference's own two-resolution estimate now
                answer.reference_points = int(ref.points[k])
                if answer.route is not None:
                    answer.route = route_name(str(Rung.REFERENCE), points=int(ref.points[k]))
            if routed[i] and ref.attempts and not estimate[i] <= tolerance:
                answer.escalation = Escalation(Rung.REFERENCE, [str(Rung.REFERENCE)])
        need = need[~(estimate[need] <= tolerance)]
    for i in need:
        if rows[i].answer.escalation is None:
            rows[i].answer.escalation = Escalation(rows[i].answer.rung)
        rows[i].answer.escalation.time_budget_exhausted = exhausted


def _plan_of(plan: RoutePlan | None, what: str, rows: np.ndarray) -> np.ndarray:
    return np.zeros(rows.size, int) if plan is None else getattr(plan, what)[rows]
