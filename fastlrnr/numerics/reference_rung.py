"""The reference solver as the last rung of the escalation ladder: a resolution chosen for a
tolerance, with an estimate of its own error from two resolutions.

``fastlrnr.numerics.reference`` (Fourier pseudo-spectral in x, Strang splitting with exact sub-flows in t)
is second order in the step h and spectral in x. Each attempt solves at (n, s) — n internal
points, at most 1/s per splitting step, every requested time hit exactly — and checks it
against a coarse solve of n/2 points marched with uniform steps of 2/s and interpolated
cubically to the requested times (so the check's step really is twice as long, however
closely the requested times lie); their difference

    est = ‖u_(n, s) − u_coarse‖ / ‖u_(n, s)‖     (over the requested sites)

is about the coarse solve's error, so about four times the served solve's or more (the
splitting is second order; the spatial error is usually far smaller). An attempt whose
estimate is above the tolerance is followed by one at 2s, until every row meets it, the
largest step count is reached, or the next attempt would overrun the deadline. When a row's
estimate falls by less than half from one attempt to the next, time is not what limits it:
the next attempt doubles n as well (up to ``MAX_POINTS``; a front sharper than the grid, as
in a reaction-dominated Allen–Cahn solution) — unless the estimate is already at the level
of rounding (``ROUNDING``).

A family may plan the climb otherwise (``PdeFamily.rung``, a ``RungPlan``, and
``PdeFamily.rung_points``). The burgers family's solver (``fastlrnr.numerics.shock_reference``)
ties its step to its points by a CFL limit and its error is set by the points: its first
attempt takes the points its resolution rule asks for the tolerance (twice those the check
needs), every attempt doubles the points and the steps, and the check hits the requested times
exactly (a front moving through a site makes interpolation in time useless), up to its own
``max_points``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import PdeFamily, RungPlan
from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.reference import solve_reference_batch
from fastlrnr.numerics.spectral import cubic_in_time, trig_at_points, trig_interpolate

NX_INTERNAL = 128  # internal points of the served solve (the check uses half: 64 resolve these solutions)


def points_for(tolerance: float, family: PdeFamily, mu: np.ndarray | None = None) -> int:
    """Internal points for a tolerance: the check's n/2 modes must resolve the solution well
    below it (16 modes: ~2e-3 on cdr's hardest corner, 32: ~1e-6). A family may declare its
    own for rows mu (R, p) (``PdeFamily.rung_points``; burgers: by the shock width)."""
    if mu is not None:
        declared = family.rung_points(tolerance, np.asarray(mu, dtype=np.float64))
        if declared is not None:
            return int(declared)
    return 32 if tolerance >= 1e-2 else 64 if tolerance >= 1e-4 else NX_INTERNAL


FIRST_SUBSTEPS = RungPlan.first_substeps  # splitting steps per unit time of the first attempt
MAX_SUBSTEPS = RungPlan.max_substeps
MAX_POINTS = RungPlan.max_points  # internal points of the finest attempt (when space, not time, limits the estimate)
STALLED = 0.5  # an estimate that falls by less than this factor between attempts is space-limited
ROUNDING = 1e-8  # ... unless it is below this: there rounding stalls it, which more points do not cure
MARCH_VALUES = 1 << 22  # states kept at once by the check's uniform march (32 MiB of float64)


def solve_at_sites(
    mu: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    points: bool,
    substeps: int,
    n: int,
    uniform: bool = False,
    *,
    family: PdeFamily,
) -> np.ndarray:
    """Reference values of ``family`` for rows mu (R, p): (R, len(t), len(x)) on the axes x,
    t, or (R, P) at the points (x_p, t_p) when ``points``. Times need not be sorted.
    ``uniform``: march with uniform steps of 1/substeps and interpolate cubically to the
    times (else every requested time is a step boundary)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    times, inverse = np.unique(t, return_inverse=True)
    grid = X_PERIOD * np.arange(n) / n
    if uniform:
        steps = max(2, math.ceil(substeps * times[-1] - 1e-9))
        marched = np.linspace(0.0, times[-1], steps + 1)
        rows = max(1, MARCH_VALUES // ((steps + 1) * n))  # every step is kept: bound the memory
        parts = []
        for lo in range(0, len(mu), rows):
            states = solve_reference_batch(
                mu[lo : lo + rows], grid, marched, substeps=substeps, nx_internal=n, family=family
            )
            parts.append(
                cubic_in_time(states, marched, times) if times[-1] > 0 else states[:, :1].repeat(len(times), 1)
            )
        states = np.concatenate(parts)
    else:
        states = solve_reference_batch(mu, grid, times, substeps=substeps, nx_internal=n, family=family)
    if not points:
        return trig_interpolate(states, x)[:, inverse]
    return trig_at_points(states, inverse, x)


@dataclass(frozen=True)
class ReferenceAnswer:
    """u: (R, ...) the served values; estimate: (R,) their estimated relative L2 error;
    substeps: per row, the splitting steps per unit time of the served solve; points: per row,
    its internal points; n: the most internal points any attempt used; attempts: the step
    counts tried; exhausted: the deadline stopped the ladder
    before every row met the tolerance."""

    u: np.ndarray
    estimate: np.ndarray
    substeps: np.ndarray
    points: np.ndarray
    n: int
    attempts: tuple[int, ...]
    exhausted: bool


def solve_to_tolerance(
    mu: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    points: bool,
    tolerance: float,
    deadline: float | None = None,
    n: int | None = None,
    first: int | None = None,
    *,
    family: PdeFamily,
) -> ReferenceAnswer:
    """Rows mu (R, p) of ``family`` solved at doubling step counts until each row's estimate is ≤
    ``tolerance`` (a row keeps the first attempt that meets it), the plan's ``max_substeps``
    (or, for a plan that refines the points every attempt, its ``max_points``) is passed, or —
    with ``deadline`` (a ``time.perf_counter`` value) — the next attempt, predicted to take
    twice the last one (four times when it doubles the points), would end after it.

    n: internal points of the first attempt (None: ``family.rung_points``, else
    ``NX_INTERNAL``); first: its time steps per unit time (None: the plan's ``first_substeps``)."""
    mu = np.asarray(mu, dtype=np.float64)
    plan = family.rung
    if n is None:
        n = family.rung_points(tolerance, mu) or NX_INTERNAL
    if first is None:
        first = plan.first_substeps
    R = len(mu)
    u = est = steps = row_points = None
    todo = np.arange(R)
    attempts: list[int] = []
    s, last, n_max = int(first), 0.0, int(n)
    exhausted = False
    while todo.size:
        ended = s > plan.max_substeps or (plan.refine_points and n > plan.max_points)
        if attempts and (ended or (deadline is not None and time.perf_counter() + 2.0 * last > deadline)):
            exhausted = not ended
            break
        t0 = time.perf_counter()
        fine = solve_at_sites(mu[todo], x, t, points, s, n, family=family)
        coarse = solve_at_sites(
            mu[todo], x, t, points, max(2, s // 2), n // 2, uniform=plan.uniform_check, family=family
        )
        diff = (fine - coarse).reshape(len(todo), -1)
        norm = np.linalg.norm(fine.reshape(len(todo), -1), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.linalg.norm(diff, axis=1) / norm
        e = np.where(np.isfinite(e), e, np.inf)
        if u is None:
            u = np.empty((R,) + fine.shape[1:])
            est, steps, row_points = np.full(R, np.inf), np.zeros(R, dtype=int), np.zeros(R, dtype=int)
        stalled = np.any((e > tolerance) & (e > STALLED * est[todo]) & (e > ROUNDING))  # est: the last attempt's
        u[todo], est[todo], steps[todo], row_points[todo] = fine, e, s, n
        attempts.append(s)
        n_max = max(n_max, n)
        last = time.perf_counter() - t0
        todo = todo[e > tolerance]
        s *= 2
        if plan.refine_points or (stalled and n < plan.max_points):
            n, last = 2 * n, 2.0 * last  # twice the points: the next attempt costs about four times
    return ReferenceAnswer(u, est, steps, row_points, n_max, tuple(attempts), exhausted)
