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

Every attempt is predicted before it starts (``fastlrnr.numerics.reference_cost``: its splitting
steps — at least one per distinct requested time —, FFTs and interpolation; the rates corrected
by how the last attempt measured against its prediction) and starts only when it fits the
deadline and ``max_bytes``. Memory stays bounded whatever the sites: the served solve hands its
states on as its march reaches each time, the check marches its rows in groups, and both
interpolate to the sites a block of times at a time. A ``stop`` (``fastlrnr.numerics.stopping``)
is polled inside the marches; when it fires, the attempt is abandoned and the earlier attempts'
answers stand.


A family may plan the climb otherwise (``PdeFamily.rung``, a ``RungPlan``, and
``PdeFamily.rung_points``). The burgers family's solver (``fastlrnr.numerics.shock_reference``)
ties its step to its points by a CFL limit and its error is set by the points: its first
attempt takes the points its resolution rule asks for the tolerance (twice those the check
needs), every attempt doubles the points and the steps, and the check hits the requested times
exactly (a front moving through a site makes interpolation in time useless), up to its own
``max_points``. (The cost prediction counts the requested steps, not the extra steps a CFL
limit adds: for such a family the first attempt is predicted low, and the drift measured on it
corrects the next.)"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import PdeFamily, RungPlan
from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.reference import march, solve_reference_batch
from fastlrnr.numerics.reference_cost import (
    CHUNK_VALUES,
    ReferenceRates,
    attempt_bytes,
    attempt_seconds,
    check_rows,
    march_steps,
)
from fastlrnr.numerics.spectral import cubic_rows, cubic_stencil, trig_at_points, trig_interpolate
from fastlrnr.numerics.stopping import Stop, Stopped, check

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


class _Sites:
    """The requested sites of R rows and where their values go: ``out`` (R, P) at the points
    (x_p, t_p), or (R, len(t), len(x)) on the axes. Grid values arrive a block of the sorted
    distinct times at a time (``write``)."""

    def __init__(self, x: np.ndarray, t: np.ndarray, points: bool, rows: int):
        self.x, self.points = x, points
        self.times, self.inverse = np.unique(t, return_inverse=True)
        self.order = np.argsort(self.inverse, kind="stable")  # the sites grouped by their distinct time
        self.starts = np.searchsorted(self.inverse[self.order], np.arange(self.times.size + 1))
        self.out = np.empty((rows, x.size) if points else (rows, t.size, x.size))

    def block(self, rows: int, n: int) -> int:
        """Distinct times interpolated at once for ``rows`` rows of ``n`` points: CHUNK_VALUES values."""
        width = n if self.points else max(n, self.x.size)
        return max(1, CHUNK_VALUES // max(1, rows * width))

    def write(self, rows: slice, j0: int, values: np.ndarray) -> None:
        """``values`` (r, m, n): grid values at the distinct times j0 … j0 + m − 1 of ``rows``."""
        idx = self.order[self.starts[j0] : self.starts[j0 + values.shape[1]]]
        rel = self.inverse[idx] - j0
        if self.points:
            self.out[rows, idx] = trig_at_points(values, rel, self.x[idx])
        else:
            self.out[rows, idx] = trig_interpolate(values, self.x)[:, rel]


class _Blocks:
    """The served march's ``emit``: keeps the states of a block of times, writes them when full."""

    def __init__(self, sites: _Sites, rows: int, n: int):
        self.sites, self.j0 = sites, 0
        self.buf = np.empty((rows, min(sites.block(rows, n), sites.times.size), n))

    def __call__(self, j: int, u: np.ndarray) -> None:
        self.buf[:, j - self.j0] = u
        if j - self.j0 + 1 == self.buf.shape[1]:
            self.flush(j + 1)

    def flush(self, end: int) -> None:
        if end > self.j0:
            self.sites.write(slice(None), self.j0, self.buf[:, : end - self.j0])
        self.j0 = end


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
    stop: Stop | None = None,
) -> np.ndarray:
    """Reference values of ``family`` for rows mu (R, p): (R, len(t), len(x)) on the axes x,
    t, or (R, P) at the points (x_p, t_p) when ``points``. Times need not be sorted.
    ``uniform``: march with uniform steps of 1/substeps and interpolate cubically to the
    times (else every requested time is a step boundary). ``stop`` is polled in the march
    (Stopped). Memory: the answer, one block of CHUNK_VALUES states, and for ``uniform`` the
    kept states of one group of rows (``fastlrnr.numerics.reference_cost.check_rows``)."""
    mu = np.asarray(mu, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    sites = _Sites(x, np.asarray(t, dtype=np.float64), points, len(mu))
    if uniform:
        _uniform(mu, sites, substeps, n, family, stop)
    else:
        blocks = _Blocks(sites, len(mu), n)
        march(mu, sites.times, blocks, substeps=substeps, nx_internal=n, family=family, stop=stop)
        blocks.flush(sites.times.size)
    return sites.out


def _uniform(mu: np.ndarray, sites: _Sites, substeps: int, n: int, family: PdeFamily, stop: Stop | None) -> None:
    """The check's solve: uniform steps of 1/substeps, every step kept for a group of rows,
    cubic in time to the sites' times."""
    times = sites.times
    grid = X_PERIOD * np.arange(n) / n
    if times[-1] <= 0.0:  # every site at t = 0: the initial condition
        u0 = np.broadcast_to(family.initial_condition(grid), (len(mu), 1, n))
        sites.write(slice(None), 0, u0)
        return
    marched = np.linspace(0.0, times[-1], march_steps(times, substeps, uniform=True) + 1)
    group = check_rows(len(mu), times, substeps, n)
    for lo in range(0, len(mu), group):
        check(stop)
        rows = slice(lo, min(len(mu), lo + group))
        states = solve_reference_batch(
            mu[rows], grid, marched, substeps=substeps, nx_internal=n, family=family, stop=stop
        )
        stencil = cubic_stencil(states, marched, times)
        m = sites.block(states.shape[0], n)
        for j0 in range(0, times.size, m):
            sites.write(rows, j0, cubic_rows(stencil, slice(j0, j0 + m)))


@dataclass(frozen=True)
class ReferenceAnswer:
    """u: (R, ...) the served values (None when no attempt ran); estimate: (R,) their
    estimated relative L2 error (inf for a row no attempt reached); substeps: per row, the
    splitting steps per unit time of the served solve; points: per row, its internal points;
    n: the most internal points any attempt used; attempts: the step counts tried;
    exhausted: the deadline, ``max_bytes`` or ``stop`` ended the ladder before every row met
    the tolerance."""

    u: np.ndarray | None
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
    stop: Stop | None = None,
    max_bytes: int | None = None,
    rates: ReferenceRates | None = None,
) -> ReferenceAnswer:
    """Rows mu (R, p) of ``family`` solved at doubling step counts until each row's estimate is ≤
    ``tolerance`` (a row keeps the first attempt that meets it) or the family's plan ends (its
    ``max_substeps``, or for a plan that refines the points every attempt its ``max_points``).
    An attempt starts only when its predicted time (``rates``, default ``ReferenceRates()``)
    ends before ``deadline`` (a ``time.perf_counter`` value) and its predicted peak memory is
    within ``max_bytes``; ``stop`` abandons the attempt under way.

    n: internal points of the first attempt (None: ``family.rung_points``, else
    ``NX_INTERNAL``); first: its time steps per unit time (None: the plan's ``first_substeps``)."""
    mu = np.asarray(mu, dtype=np.float64)
    plan = family.rung
    if n is None:
        n = family.rung_points(tolerance, mu) or NX_INTERNAL
    if first is None:
        first = plan.first_substeps
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    rates = rates or ReferenceRates()
    times = np.unique(t)
    sites = x.size if points else x.size * t.size
    R = len(mu)
    u = None
    est, steps, row_points = np.full(R, np.inf), np.zeros(R, dtype=int), np.zeros(R, dtype=int)
    todo = np.arange(R)
    attempts: list[int] = []
    s, n_max, drift = int(first), int(n), 1.0
    exhausted = False
    while todo.size and s <= plan.max_substeps and not (plan.refine_points and n > plan.max_points):
        model = attempt_seconds(rates, todo.size, times, sites, s, n)
        late = deadline is not None and time.perf_counter() + drift * model > deadline
        if late or (max_bytes is not None and attempt_bytes(todo.size, R, sites) > max_bytes):
            exhausted = True
            break
        t0 = time.perf_counter()
        try:
            fine = solve_at_sites(mu[todo], x, t, points, s, n, family=family, stop=stop)
            coarse = solve_at_sites(
                mu[todo], x, t, points, max(2, s // 2), n // 2, plan.uniform_check, family=family, stop=stop
            )
        except Stopped:
            exhausted = True
            break
        drift = (time.perf_counter() - t0) / max(model, 1e-9)  # this machine, now, against the rates
        diff = (fine - coarse).reshape(len(todo), -1)
        del coarse
        norm = np.linalg.norm(fine.reshape(len(todo), -1), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.linalg.norm(diff, axis=1) / norm
        del diff
        e = np.where(np.isfinite(e), e, np.inf)
        if u is None:
            u = np.empty((R,) + fine.shape[1:])
        stalled = np.any((e > tolerance) & (e > STALLED * est[todo]) & (e > ROUNDING))  # est: the last attempt's
        u[todo], est[todo], steps[todo], row_points[todo] = fine, e, s, n
        attempts.append(s)
        n_max = max(n_max, n)
        todo = todo[e > tolerance]
        s *= 2
        if plan.refine_points or (stalled and n < plan.max_points):
            n = 2 * n  # twice the points: the next attempt is predicted at that size
    return ReferenceAnswer(u, est, steps, row_points, n_max, tuple(attempts), exhausted)
