"""The reference solver as the last rung of the escalation ladder: a resolution chosen for a
tolerance, with an estimate of its own error from two resolutions.

``fastlrnr.numerics.reference`` (Fourier pseudo-spectral in x, Strang splitting with exact sub-flows in t)
is second order in the step h and spectral in x. Each attempt solves at (n, s) — n internal
points, at most 1/s per splitting step, every requested time hit exactly — and checks it
against a coarse solve of n/2 points marched with uniform steps twice as long as the served
solve's longest (``check_substeps``: the requested times may force the served steps below 1/s)
and interpolated cubically to the requested times (so the check's step really is twice as long,
however closely the requested times lie); their difference

    est = ‖u_(n, s) − u_coarse‖ / ‖u_(n, s)‖     (over the requested sites)

is about the coarse solve's error, so about four times the served solve's or more (the
splitting is second order; the spatial error is usually far smaller). A row whose estimate is
above the tolerance gets a further attempt, until every row meets it, the largest step count
is reached, or the next attempt would overrun the deadline. Each row's next attempt refines
what limits it: when the modes its check cannot hold (those above n/4 of the served solve:
``tail``) carry more than a quarter of the tolerance, or its estimate fell by less than half
from its last attempt, space limits it and the next attempt doubles n (up to ``MAX_POINTS``; a
front sharper than the grid, as in a reaction-dominated Allen–Cahn solution) — unless the
estimate is already at the level of rounding (``ROUNDING``); otherwise time does, and the next
attempt doubles s. Rows may start at their own (n, s) (the route plan's,
``fastlrnr.numerics.routes``); rows at the same resolution are solved together.

Both solves are the cheap form of the method: the Strang march builds a step length's
operators once and, for a few rows of few points, steps with one real matrix per row instead
of two FFTs; the values reach the sites through one real interpolation matrix per block of
sites (trigonometric in x; for the check, the cubic in time as a matrix too).

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
from fastlrnr.numerics.reference_cost import (
    CHUNK_VALUES,
    ReferenceRates,
    attempt_bytes,
    attempt_seconds,
    check_rows,
    check_substeps,
    march_steps,
)
from fastlrnr.numerics.spectral import (
    cubic_rows,
    cubic_stencil,
    hermite_weights,
    trig_at_points,
    trig_interpolate,
    trig_matrix,
)
from fastlrnr.numerics.stopping import Stop, Stopped, check
from fastlrnr.numerics.strang import strang_march

NX_INTERNAL = 128  # internal points of the served solve (the check uses half: 64 resolve these solutions)


def points_for(tolerance: float, family: PdeFamily, mu: np.ndarray | None = None) -> int:
    """Internal points of a first attempt for a tolerance: the check's n/2 points resolve most
    solutions below it (16 points: ~2e-3 on cdr's hardest corner, far less on most of its domain;
    32: ~4e-5); a row they do not resolve doubles n at its next attempt (``solve_to_tolerance``).
    A family may declare its own for rows mu (R, p) (``PdeFamily.rung_points``; burgers: by the
    shock width)."""
    if mu is not None:
        declared = family.rung_points(tolerance, np.asarray(mu, dtype=np.float64))
        if declared is not None:
            return int(declared)
    return 32 if tolerance >= 1e-3 else 64 if tolerance >= 1e-5 else NX_INTERNAL


FIRST_SUBSTEPS = RungPlan.first_substeps  # splitting steps per unit time of the first attempt
MAX_SUBSTEPS = RungPlan.max_substeps
MAX_POINTS = RungPlan.max_points  # internal points of the finest attempt (when space, not time, limits the estimate)
STALLED = 0.5  # an estimate that falls by less than this factor between attempts is space-limited
ROUNDING = 1e-8  # ... unless it is below this: there rounding stalls it, which more points do not cure
TAIL_SHARE = 0.25  # a row whose unresolved-by-the-check modes carry this share of the tolerance refines n
FLOOR = 1e-12  # no estimate below this: two solves that agree to rounding still carry rounding of their march
MATRIX_VALUES = 1 << 18  # interpolation matrices of at most this many entries are built (2 MiB)


def _strang(family: PdeFamily) -> bool:
    """The family marches by the default Strang splitting (its march is not overridden)."""
    return type(family).march is PdeFamily.march


def _march(mu, times, emit, substeps: int, n: int, family: PdeFamily, stop: Stop | None):
    """The family's march to the sorted ``times``; the Strang march with its dense step."""
    if _strang(family):
        return strang_march(mu, times, substeps, n, family, emit=emit, stop=stop, dense=True)
    return family.march(mu, times, substeps, n, emit=emit, stop=stop)


class _Sites:
    """The requested sites of R rows and where their values go: ``out`` (R, P) at the points
    (x_p, t_p), or (R, len(t), len(x)) on the axes. Grid values arrive a block of the sorted
    distinct times at a time (``write``): on the axes through one (n, nx) interpolation matrix,
    at points through one (n, points) matrix per block when the rows outnumber the modes (else
    through the points' own Fourier sums)."""

    def __init__(self, x: np.ndarray, t: np.ndarray, points: bool, rows: int):
        self.x, self.points = x, points
        self.times, self.inverse = np.unique(t, return_inverse=True)
        self.order = np.argsort(self.inverse, kind="stable")  # the sites grouped by their distinct time
        self.starts = np.searchsorted(self.inverse[self.order], np.arange(self.times.size + 1))
        self.out = np.empty((rows, x.size) if points else (rows, t.size, x.size))
        self._matrix: dict[int, np.ndarray | None] = {}

    def block(self, rows: int, n: int) -> int:
        """Distinct times interpolated at once for ``rows`` rows of ``n`` points: CHUNK_VALUES values."""
        width = n if self.points else max(n, self.x.size)
        return max(1, CHUNK_VALUES // max(1, rows * width))

    def _axes_matrix(self, n: int) -> np.ndarray | None:
        if n not in self._matrix:
            small = n * self.x.size <= MATRIX_VALUES
            self._matrix[n] = trig_matrix(n, self.x) if small else None
        return self._matrix[n]

    def write(self, rows: slice, j0: int, values: np.ndarray) -> None:
        """``values`` (r, m, n): grid values at the distinct times j0 … j0 + m − 1 of ``rows``."""
        idx = self.order[self.starts[j0] : self.starts[j0 + values.shape[1]]]
        rel = self.inverse[idx] - j0
        r, _, n = values.shape
        if self.points:
            if r > n and n * idx.size <= MATRIX_VALUES:  # many rows: the interpolation as one real matrix
                self.out[rows, idx] = np.einsum("rpj,jp->rp", values[:, rel], trig_matrix(n, self.x[idx]))
            else:
                self.out[rows, idx] = trig_at_points(values, rel, self.x[idx])
            return
        E = self._axes_matrix(n)
        self.out[rows, idx] = (values @ E if E is not None else trig_interpolate(values, self.x))[:, rel]


class _Blocks:
    """The served march's ``emit``: keeps the states of a block of times, writes them when full;
    with ``tail``, also keeps the last state's relative energy in its modes above n/4 (what a
    check on n/2 points cannot hold)."""

    def __init__(self, sites: _Sites, rows: int, n: int, tail: bool = False):
        self.sites, self.j0 = sites, 0
        self.buf = np.empty((rows, min(sites.block(rows, n), sites.times.size), n))
        self.want_tail = tail
        self._tail = np.zeros(rows)

    def __call__(self, j: int, u: np.ndarray) -> None:
        self.buf[:, j - self.j0] = u
        if j - self.j0 + 1 == self.buf.shape[1]:
            self.flush(j + 1)

    def flush(self, end: int) -> None:
        if end > self.j0:
            states = self.buf[:, : end - self.j0]
            self.sites.write(slice(None), self.j0, states)
            if self.want_tail and end == self.sites.times.size:  # the last state
                c = np.abs(np.fft.rfft(states[:, -1], axis=-1)) ** 2
                n = states.shape[-1]
                with np.errstate(divide="ignore", invalid="ignore"):
                    self._tail = np.sqrt(c[:, n // 4 :].sum(axis=1) / c.sum(axis=1))
        self.j0 = end

    def tail(self) -> np.ndarray:
        """(R,) √(energy above n/4 / energy) of the last state: what the check cannot hold."""
        return np.where(np.isfinite(self._tail), self._tail, np.inf)


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
    return _solve(mu, x, t, points, substeps, n, uniform, family, stop)[0]


def _solve(mu, x, t, points, substeps, n, uniform, family, stop, tail: bool = False):
    """``solve_at_sites`` and, with ``tail`` (the served solve), each row's ``_Blocks.tail``."""
    mu = family.check_params(np.asarray(mu, dtype=np.float64))
    x = np.asarray(x, dtype=np.float64)
    sites = _Sites(x, np.asarray(t, dtype=np.float64), points, len(mu))
    if uniform:
        _uniform(mu, sites, substeps, n, family, stop)
        return sites.out, None
    blocks = _Blocks(sites, len(mu), n, tail)
    _march(mu, sites.times, blocks, substeps, n, family, stop)
    blocks.flush(sites.times.size)
    return sites.out, (blocks.tail() if tail else None)


def _uniform(mu: np.ndarray, sites: _Sites, substeps: int, n: int, family: PdeFamily, stop: Stop | None) -> None:
    """The check's solve: uniform steps of 1/substeps, every step kept for a group of rows,
    then in time to the sites' times: cubic Hermite from the kept states and their time
    derivatives (u_t = −R[u] with u_t = 0 in R, the x-derivatives spectral: fourth order, so the
    check's error is its splitting's, not its interpolation's) for a Strang family; Catmull–Rom
    from the states alone for a family with its own march."""
    times = sites.times
    grid = X_PERIOD * np.arange(n) / n
    if times[-1] <= 0.0:  # every site at t = 0: the initial condition
        u0 = np.broadcast_to(family.initial_condition(grid), (len(mu), 1, n))
        sites.write(slice(None), 0, u0)
        return
    marched = np.linspace(0.0, times[-1], march_steps(times, substeps, uniform=True) + 1)
    hermite = _strang(family)
    group = check_rows(len(mu), times, substeps, n)
    for lo in range(0, len(mu), group):
        check(stop)
        rows = slice(lo, min(len(mu), lo + group))
        r = rows.stop - lo
        states = np.empty((marched.size, r, n))  # step-major: each step's states are one block

        def keep(j: int, u: np.ndarray, states=states) -> None:
            states[j] = u

        _march(mu[rows], marched, keep, substeps, n, family, stop)
        m = sites.block(r, n)
        if not hermite:
            stencil = cubic_stencil(states.transpose(1, 0, 2), marched, times)
            for j0 in range(0, times.size, m):
                sites.write(rows, j0, cubic_rows(stencil, slice(j0, j0 + m)))
            continue
        slope = _time_derivative(states, mu[rows], family)
        j, w = hermite_weights(marched, times)
        for j0 in range(0, times.size, m):
            jj, ww = j[j0 : j0 + m], w[j0 : j0 + m, :, None, None]
            block = ww[:, 0] * states[jj] + ww[:, 1] * states[jj + 1] + ww[:, 2] * slope[jj] + ww[:, 3] * slope[jj + 1]
            sites.write(rows, j0, block.transpose(1, 0, 2))


def _time_derivative(states: np.ndarray, mu: np.ndarray, family: PdeFamily) -> np.ndarray:
    """u_t (S, r, n) of grid values (S, r, n) of rows mu (r, p) on x_j = 2πj/n: the linear part
    by its Fourier symbol (one FFT pair), less the nonlinearity N(u) (R[u], every derivative 0)."""
    n = states.shape[-1]
    k = np.fft.rfftfreq(n, d=1.0 / n)
    columns = family.columns(mu)  # (r, 1): broadcast against (S, r, ·)
    linear = np.fft.irfft(np.fft.rfft(states, axis=-1) * family.symbol(k, *columns), n, axis=-1)
    linear -= family.residual(states, 0.0, 0.0, 0.0, *columns)
    return linear


def _check(mu, x, t, points: bool, times, substeps: int, n: int, plan: RungPlan, family, stop) -> np.ndarray:
    """An attempt's check on n/2 points: uniform steps twice the served solve's longest,
    interpolated in time (``check_substeps``), for the rows whose splitting has a time error; the
    rows without a nonlinearity are marched exactly through the requested times (one exact step
    per interval, as the served solve), so their check measures space alone."""
    if not plan.uniform_check:
        return solve_at_sites(mu, x, t, points, max(2, substeps // 2), n // 2, False, family=family, stop=stop)
    steps = check_substeps(times, substeps)
    linear = ~family.reacting(mu) if _strang(family) else np.zeros(len(mu), bool)
    if not linear.any():
        return solve_at_sites(mu, x, t, points, steps, n // 2, True, family=family, stop=stop)
    out = np.empty((len(mu),) + ((x.size,) if points else (t.size, x.size)))
    out[linear] = solve_at_sites(mu[linear], x, t, points, substeps, n // 2, False, family=family, stop=stop)
    if not linear.all():
        out[~linear] = solve_at_sites(mu[~linear], x, t, points, steps, n // 2, True, family=family, stop=stop)
    return out


@dataclass(frozen=True)
class ReferenceAnswer:
    """u: (R, ...) the served values (None when no attempt ran); estimate: (R,) their
    estimated relative L2 error (inf for a row no attempt reached); substeps: per row, the
    splitting steps per unit time of the served solve; points: per row, its internal points;
    n: the most internal points any attempt used; attempts: the step counts of the attempts
    made, in order (one per resolution tried); exhausted: the deadline, ``max_bytes`` or
    ``stop`` ended the ladder before every row met the tolerance."""

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
    n: int | np.ndarray | None = None,
    first: int | np.ndarray | None = None,
    *,
    family: PdeFamily,
    stop: Stop | None = None,
    max_bytes: int | None = None,
    rates: ReferenceRates | None = None,
) -> ReferenceAnswer:
    """Rows mu (R, p) of ``family`` solved at refining resolutions until each row's estimate is
    ≤ ``tolerance`` (a row keeps the first attempt that meets it) or the family's plan ends (its
    ``max_substeps``, or for a plan that refines the points every attempt its ``max_points``).
    An attempt starts only when its predicted time (``rates``, default ``ReferenceRates()``)
    ends before ``deadline`` (a ``time.perf_counter`` value) and its predicted peak memory is
    within ``max_bytes``; ``stop`` abandons the attempt under way.

    n: internal points of each row's first attempt, one for all or (R,) (None:
    ``family.rung_points``, else ``NX_INTERNAL``); first: its time steps per unit time, the same
    way (None: the plan's ``first_substeps``). Rows at the same resolution are solved together,
    the cheapest resolution first."""
    mu = np.asarray(mu, dtype=np.float64)
    plan = family.rung
    R = len(mu)
    if n is None:
        n = family.rung_points(tolerance, mu) or NX_INTERNAL
    if first is None:
        first = plan.first_substeps
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    rates = rates or ReferenceRates()
    times = np.unique(t)
    sites = x.size if points else x.size * t.size
    u = None
    est, steps, row_points = np.full(R, np.inf), np.zeros(R, dtype=int), np.zeros(R, dtype=int)
    next_n = np.broadcast_to(np.asarray(n, dtype=int), (R,)).copy()
    next_s = np.broadcast_to(np.asarray(first, dtype=int), (R,)).copy()
    todo = np.ones(R, dtype=bool)
    previous = np.full(R, np.inf)  # each row's estimate at its last attempt
    refined_n = np.zeros(R, dtype=bool)  # its next attempt refines space (else time)
    attempts: list[int] = []
    drift, exhausted = 1.0, False

    def open_rows() -> np.ndarray:
        ok = todo & (next_s <= plan.max_substeps)
        if plan.refine_points:
            ok &= next_n <= plan.max_points
        return ok

    while np.any(open_rows()) and not exhausted:
        live = open_rows()
        groups = sorted({(int(a), int(b)) for a, b in zip(next_n[live], next_s[live])}, key=lambda g: g[0] * g[1])
        for g_n, g_s in groups:
            rows = np.flatnonzero(live & (next_n == g_n) & (next_s == g_s))
            model = attempt_seconds(rates, rows.size, times, sites, g_s, g_n)
            late = deadline is not None and time.perf_counter() + drift * model > deadline
            if late or (max_bytes is not None and attempt_bytes(rows.size, R, sites) > max_bytes):
                exhausted = True
                break
            t0 = time.perf_counter()
            try:
                fine, tail = _solve(mu[rows], x, t, points, g_s, g_n, False, family, stop, tail=not plan.refine_points)
                coarse = _check(mu[rows], x, t, points, times, g_s, g_n, plan, family, stop)
            except Stopped:
                exhausted = True
                break
            drift = (time.perf_counter() - t0) / max(model, 1e-9)  # this machine, now, against the rates
            diff = (fine - coarse).reshape(rows.size, -1)
            del coarse
            norm = np.linalg.norm(fine.reshape(rows.size, -1), axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                e = np.linalg.norm(diff, axis=1) / norm
            del diff
            e = np.where(np.isfinite(e), np.maximum(e, FLOOR), np.inf)
            if u is None:
                u = np.full((R,) + fine.shape[1:], np.nan)
            better = e < est[rows]  # a row keeps its best attempt (a later one is normally better)
            keep = rows[better]
            u[keep], est[keep], steps[keep], row_points[keep] = fine[better], e[better], g_s, g_n
            attempts.append(g_s)
            todo[rows[e <= tolerance]] = False
            if plan.refine_points:
                next_n[rows], next_s[rows] = 2 * g_n, 2 * g_s
                continue
            # space limits a row whose check cannot hold its modes, or whose estimate did not fall
            # when its steps were halved; else time does
            stalled = (e > STALLED * previous[rows]) & (e > ROUNDING) & ~refined_n[rows]
            spatial = ((tail > TAIL_SHARE * tolerance) | stalled) & (2 * g_n <= plan.max_points)
            next_n[rows] = np.where(spatial, 2 * g_n, g_n)
            next_s[rows] = np.where(spatial, g_s, 2 * g_s)
            previous[rows], refined_n[rows] = e, spatial
    return ReferenceAnswer(u, est, steps, row_points, int(row_points.max(initial=0)), tuple(attempts), exhausted)
