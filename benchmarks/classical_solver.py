"""The classical solver of the baseline (``classical_baseline``): the textbook method of
``fastlrnr.numerics.reference`` (Fourier pseudo-spectral in x on ``n`` points, Strang splitting in t with both
sub-flows exact) at low resolution, vectorised over parameter sets, and the choice of the
cheapest resolution that meets an accuracy.

``strang_states`` and ``classical_solver`` are the reference's method with its operators built
once per step length (a dense real matrix for the convection–diffusion step when there are few
rows) and the trigonometric interpolation as one matrix; ``classical_baseline`` checks them
against ``fastlrnr.numerics.reference.solve_reference_batch`` at the start of every run, and
tests/benchmarks/test_benchmark_helpers.py to 1e-12. ``Sites`` is where a query wants u.
Parameter rows are (B, 3): (β, ν, ρ) of the CDR family.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.reference import solve_reference_batch
from fastlrnr.numerics.spectral import trig_interpolate

try:
    from benchmarks.timing import interleaved, median
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import interleaved, median

NX_LADDER = (16, 32, 64)  # the grid sizes n a resolution may have
DENSE_ROWS = 16  # up to this many rows the convection–diffusion step is a dense (n, n) matrix


def strang_states(mu: np.ndarray, t: np.ndarray, substeps: int, n: int) -> np.ndarray:
    """Grid values (B, nt, n) at the sorted times t (nt,) for mu (B, 3): the march of
    ``fastlrnr.numerics.reference.strang_march`` (same steps, same sub-flows), operators built once per step length."""
    B = mu.shape[0]
    beta, nu, rho = (mu[:, i : i + 1] for i in range(3))
    k = np.fft.rfftfreq(n, d=1.0 / n)
    symbol = -1j * beta * k - nu * k * k  # (B, n/2 + 1)
    reacting = bool(np.any(rho > 0.0))
    dense = B <= DENSE_ROWS
    eye_hat = np.fft.rfft(np.eye(n), axis=-1) if dense else None
    cache: dict[float, tuple] = {}

    def operators(h: float) -> tuple:
        key = round(h, 15)
        if key not in cache:
            p = np.exp(symbol * h)
            cd = np.fft.irfft(eye_hat[None] * p[:, None, :], n, axis=-1) if dense else p  # (B, n, n): u ← u @ M_b
            full = (np.exp(rho * h), np.expm1(rho * h))
            half = (np.exp(rho * 0.5 * h), np.expm1(rho * 0.5 * h))
            cache[key] = (cd[0] if dense and B == 1 else cd, full, half)
        return cache[key]

    def convect(u: np.ndarray, cd: np.ndarray) -> np.ndarray:
        if not dense:
            return np.fft.irfft(np.fft.rfft(u) * cd, n)
        return u @ cd if cd.ndim == 2 else np.matmul(u[:, None, :], cd)[:, 0]

    def react(u: np.ndarray, factors: tuple) -> np.ndarray:
        grow, grow_m1 = factors
        den = u * grow_m1
        den += 1.0
        u *= grow
        u /= den
        return u

    u = np.broadcast_to(CDR_FAMILY.initial_condition(X_PERIOD * np.arange(n) / n), (B, n)).copy()
    out = np.empty((B, t.size, n))
    t_now = 0.0
    for j, t_next in enumerate(t):
        span = t_next - t_now
        if span > 0.0:
            steps = max(1, math.ceil(substeps * span - 1e-9)) if reacting else 1
            cd, full, half = operators(span / steps)
            if reacting:
                u = react(u, half)
                for step in range(steps):
                    u = react(convect(u, cd), full if step < steps - 1 else half)
            else:
                u = convect(u, cd)
        out[:, j] = u
        t_now = t_next
    return out


@dataclass(frozen=True)
class Sites:
    """Where a query wants u: a tensor grid (``grid``: x (nx,), t (nt,)) or points (x, t (P,))."""

    kind: str
    x: np.ndarray
    t: np.ndarray

    @property
    def size(self) -> int:
        return self.x.size * self.t.size if self.kind == "grid" else self.x.size

    def times(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(sorted output times, index of each point's time or None for a grid)."""
        if self.kind == "grid":
            return self.t, None
        return np.unique(self.t, return_inverse=True)

    def steps(self, substeps: int) -> int:
        """Splitting steps a reacting march takes to reach every time."""
        t, _ = self.times()
        spans = np.diff(np.concatenate([[0.0], t]))
        return int(sum(max(1, math.ceil(substeps * s - 1e-9)) for s in spans if s > 0.0))

    def request_grid(self) -> dict:
        if self.kind == "grid":
            return {"x": self.x.tolist(), "t": self.t.tolist()}
        return {"points": np.stack([self.x, self.t], axis=1).tolist()}


def classical_solver(sites: Sites, substeps: int, n: int) -> Callable[[np.ndarray], np.ndarray]:
    """mu (B, 3) → u at the sites, (B, nt, nx) or (B, P), by ``strang_states`` at (substeps, n)."""
    t, where = sites.times()
    E = trig_interpolate(np.eye(n), sites.x)  # (n, m): interpolation is linear in the grid values

    def solve(mu: np.ndarray) -> np.ndarray:
        states = strang_states(mu, t, substeps, n)
        if where is None:
            return states @ E
        return np.einsum("bpj,jp->bp", states[:, where, :], E)

    return solve


def reference_at(sites: Sites, mu: np.ndarray, **kw) -> np.ndarray:
    """``fastlrnr.numerics.reference.solve_reference_batch`` of the CDR family at the sites (fine by default)."""
    t, where = sites.times()
    u = solve_reference_batch(mu, sites.x, t, family=CDR_FAMILY, **kw)
    return u if where is None else u[:, where, np.arange(sites.x.size)]


def rel_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative L2 error per row: (B, ...) → (B,)."""
    axes = tuple(range(1, ref.ndim))
    return np.sqrt(np.sum((u - ref) ** 2, axis=axes) / np.sum(ref**2, axis=axes))


# ---------------------------------------------------------------------- matching


def ladder_errors(sites: Sites, hard: np.ndarray, ref: np.ndarray, substeps: list[int]) -> dict[tuple, float]:
    """Worst relative L2 error over the hard points of every (nx_internal, substeps)."""
    return {(n, s): float(rel_l2(classical_solver(sites, s, n)(hard), ref).max()) for n in NX_LADDER for s in substeps}


def cheapest(sites: Sites, errors: dict[tuple, float], target: float, mu: np.ndarray) -> tuple[int, int] | None:
    """The cheapest (n, substeps) whose worst error ≤ target; None when none reaches it.

    Per n the one with fewest steps; of those, one with no more steps and no more modes than
    another wins outright; the rest are timed on ``mu`` (ties within 10%, a noisy machine's
    resolution: fewer steps, then fewer modes)."""
    candidates = []
    for n in NX_LADDER:
        ok = [s for (m, s), e in errors.items() if m == n and e <= target]
        if ok:
            fewest = min(sites.steps(s) for s in ok)
            candidates.append((n, min(s for s in ok if sites.steps(s) == fewest)))
    candidates = [  # drop those another beats on both steps and modes
        c
        for c in candidates
        if not any(d != c and sites.steps(d[1]) <= sites.steps(c[1]) and d[0] <= c[0] for d in candidates)
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    times = interleaved({c: (lambda c=c: classical_solver(sites, c[1], c[0])(mu)) for c in candidates}, 5)
    fastest = min(median(times[c]) for c in candidates)
    return min((c for c in candidates if median(times[c]) <= 1.1 * fastest), key=lambda c: (sites.steps(c[1]), c[0]))
