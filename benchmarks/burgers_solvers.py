"""The classical solvers of the burgers baseline (``burgers_baseline``), each vectorised over
parameter sets and run on one thread, and where a query wants u (``Sites``).

    u_t + β u u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic,   u(x, 0) = 1 + sin x;
    parameter rows (B, 3) = (β, ν, ρ).

- ``WENO5``: finite volume on n cells (centres x_i = 2πi/n, cell averages), WENO5-Z
  reconstruction (Jiang–Shu candidate stencils and smoothness indicators, the Z weights of
  Borges et al.) of u at each face from both sides, the Rusanov (local Lax–Friedrichs) flux of
  f(u) = β u²/2, fourth-order central differences for ν u_xx, the reaction pointwise; SSP-RK3
  (Shu–Osher) in time with 1/Δt ≥ 2 β_max / (``WENO_CFL`` · h) + ν_max / (0.45 h²) (transport at
  the a-priori bound 0 ≤ u ≤ 2, and diffusion), every output time hit exactly. u at a site: the
  cell-centre values, linear in x between centres (exact sampling when the sites are centres).
- ``SPECTRAL``: the reference's method (``fastlrnr.numerics.shock_reference.etdrk4_march``:
  Fourier pseudo-spectral, Hou–Li filtered quadratic term, ETDRK4) at a low resolution n, its
  steps by the CFL limit alone (Courant ``SPECTRAL_COURANT``); u at a site by the trigonometric
  interpolant.

A call sorts its rows by β and marches them ``CHUNK`` at a time, each chunk with the steps of its
own largest β (steps ∝ β: a chunk of small β is cheap). ``solver`` builds the timed callable for
fixed sites (interpolation precomputed as one matrix); ``evaluate`` answers several site sets
from one march (to the union of their times), for the accuracy ladders.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics import shock_reference as sr
from fastlrnr.numerics.spectral import trig_interpolate

X_PERIOD = 2.0 * math.pi
CHUNK = 8  # rows marched at once
WENO_CFL = 0.8  # stable for every n measured; 1.2 costs accuracy, 1.6 blows up at ν = 3e-3
SPECTRAL_COURANT = sr.COURANT

Solver = Callable[[np.ndarray], np.ndarray]


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


@dataclass(frozen=True)
class Method:
    """A classical method: ``march(mu (B, 3), t (nt,) sorted, n) → grid values (B, nt, n)``
    and ``matrix(n, x (m,)) → (n, m)``, the linear map from grid values to values at x."""

    name: str
    march: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    matrix: Callable[[int, np.ndarray], np.ndarray]


def by_beta(mu: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """fn over the rows mu (B, 3) sorted by β, ``CHUNK`` at a time; results in the rows' order."""
    mu = np.asarray(mu, dtype=np.float64)
    order = np.argsort(mu[:, 0], kind="stable")
    parts = [fn(mu[order[lo : lo + CHUNK]]) for lo in range(0, mu.shape[0], CHUNK)]
    out = np.empty((mu.shape[0],) + parts[0].shape[1:])
    out[order] = np.concatenate(parts)
    return out


def at_sites(sites: Sites, states: np.ndarray, times: np.ndarray, E: np.ndarray) -> np.ndarray:
    """u at the sites from grid values states (B, len(times), n) at the sorted times ``times``
    (a superset of the sites' times) and the site matrix E (n, m): (B, nt, nx) or (B, P)."""
    t, where = sites.times()
    rows = np.searchsorted(times, t)
    if where is None:
        return states[:, rows] @ E
    return np.einsum("bpj,jp->bp", states[:, rows[where]], E)


def solver(method: Method, sites: Sites, n: int) -> Solver:
    """mu (B, 3) → u at the sites, (B, nt, nx) or (B, P), by ``method`` on n points."""
    t, _ = sites.times()
    E = method.matrix(n, sites.x)
    return lambda mu: by_beta(mu, lambda rows: at_sites(sites, method.march(rows, t, n), t, E))


def evaluate(method: Method, n: int, mu: np.ndarray, site_sets: list[Sites]) -> list[np.ndarray]:
    """u at every site set for rows mu, from one march per chunk to the union of their times."""
    times = np.unique(np.concatenate([s.times()[0] for s in site_sets]))
    matrices = [method.matrix(n, s.x) for s in site_sets]
    widths = [s.size for s in site_sets]

    def rows_at_all(rows: np.ndarray) -> np.ndarray:
        states = method.march(rows, times, n)
        return np.concatenate(
            [at_sites(s, states, times, E).reshape(len(rows), -1) for s, E in zip(site_sets, matrices)], axis=1
        )

    flat = by_beta(mu, rows_at_all)
    bounds = np.cumsum([0] + widths)
    shapes = [(s.t.size, s.x.size) if s.kind == "grid" else (s.x.size,) for s in site_sets]
    return [flat[:, lo:hi].reshape((len(mu),) + shape) for lo, hi, shape in zip(bounds[:-1], bounds[1:], shapes)]


# ---------------------------------------------------------------------- finite volume


def weno5z_faces(p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """WENO5-Z values at the faces i − 1/2 (i = 0..n) from both sides: (left, right), each (B, n + 1),
    from the averages p (B, n + 6) with three ghost cells a side (v_j = p[:, j + 3]).

    Per cell j: the Jiang–Shu smoothness indicators of its three candidate stencils (ending at,
    centred on, starting at j) and the WENO-Z factors 1 + τ5 / (β_k + ε), τ5 = |β_0 − β_2|, are
    computed once and serve both faces of the cell: the face on its right upwinded from j
    (linear weights 0.1, 0.6, 0.3 on the stencils ending at, centred on, starting at j) and the
    face on its left upwinded from j (the mirror image)."""
    vm2, vm1, v0, vp1, vp2 = (p[:, k : k + n + 2] for k in range(5))  # cells j = −1..n
    d2 = p[:, : n + 4] - 2.0 * p[:, 1 : n + 5] + p[:, 2 : n + 6]  # second differences at j = −2..n + 1
    q = (13.0 / 12.0) * d2 * d2
    s_end = q[:, : n + 2] + 0.25 * (vm2 - 4.0 * vm1 + 3.0 * v0) ** 2
    s_mid = q[:, 1 : n + 3] + 0.25 * (vp1 - vm1) ** 2
    s_start = q[:, 2 : n + 4] + 0.25 * (3.0 * v0 - 4.0 * vp1 + vp2) ** 2
    tau = np.abs(s_end - s_start)
    eps = 1e-40
    g_end, g_mid, g_start = (1.0 + tau / (s + eps) for s in (s_end, s_mid, s_start))
    a0, a1, a2 = 0.1 * g_end, 0.6 * g_mid, 0.3 * g_start  # the face on the right of j
    right_face = (
        a0 * (2.0 * vm2 - 7.0 * vm1 + 11.0 * v0)
        + a1 * (-vm1 + 5.0 * v0 + 2.0 * vp1)
        + a2 * (2.0 * v0 + 5.0 * vp1 - vp2)
    ) / (6.0 * (a0 + a1 + a2))
    b0, b2 = 0.1 * g_start, 0.3 * g_end  # the face on the left of j (mirror)
    left_face = (
        b0 * (2.0 * vp2 - 7.0 * vp1 + 11.0 * v0)
        + a1 * (-vp1 + 5.0 * v0 + 2.0 * vm1)
        + b2 * (2.0 * v0 + 5.0 * vm1 - vm2)
    ) / (6.0 * (b0 + a1 + b2))
    return right_face[:, : n + 1], left_face[:, 1 : n + 2]


def weno5_states(mu: np.ndarray, t: np.ndarray, n: int, cfl: float = WENO_CFL) -> np.ndarray:
    """Cell averages (B, nt, n) at the sorted times t for rows mu (B, 3): WENO5-Z, Rusanov, SSP-RK3."""
    h = X_PERIOD / n
    beta, nu, rho = (mu[:, i : i + 1] for i in range(3))
    # the rates of transport (|f'(u)| ≤ 2β) and diffusion (the fourth-order stencil's largest
    # eigenvalue 16ν/3h² against RK3's real-axis limit 2.5) add up: either limit alone, taken
    # with the other close to its own, let the march blow up (ν = 1e-2 on 2048 cells)
    dt_max = 1.0 / (2.0 * float(beta.max()) / (cfl * h) + float(nu.max()) / (0.45 * h * h))
    centre = X_PERIOD * np.arange(n) / n
    u = np.broadcast_to(1.0 + (2.0 * math.sin(0.5 * h) / h) * np.sin(centre), (mu.shape[0], n)).copy()
    half_beta = 0.5 * beta
    diffusion = nu / (12.0 * h * h)
    reacting = bool(np.any(rho != 0.0))

    def rhs(v: np.ndarray) -> np.ndarray:
        p = np.concatenate([v[:, -3:], v, v[:, :3]], axis=1)  # 3 ghost cells a side; v_i is p[:, i + 3]
        left, right = weno5z_faces(p, n)  # at the faces i − 1/2, i = 0..n
        speed = np.maximum(np.abs(left), np.abs(right))
        flux = half_beta * (0.5 * (left * left + right * right) - speed * (right - left))  # Rusanov
        c = p[:, 3 : n + 3]
        out = (flux[:, :n] - flux[:, 1:]) / h
        out += diffusion * (
            -p[:, 1 : n + 1] + 16.0 * p[:, 2 : n + 2] - 30.0 * c + 16.0 * p[:, 4 : n + 4] - p[:, 5 : n + 5]
        )
        if reacting:
            out += rho * c * (1.0 - c)
        return out

    states = np.empty((mu.shape[0], t.size, n))
    t_now = 0.0
    for j, t_next in enumerate(t):
        span = float(t_next - t_now)
        if span > 0.0:
            steps = max(1, math.ceil(span / dt_max - 1e-9))
            dt = span / steps
            for _ in range(steps):
                u1 = u + dt * rhs(u)
                u2 = 0.75 * u + 0.25 * (u1 + dt * rhs(u1))
                u = u / 3.0 + (2.0 / 3.0) * (u2 + dt * rhs(u2))
        states[:, j] = u
        t_now = float(t_next)
    return states


def linear_matrix(n: int, x: np.ndarray) -> np.ndarray:
    """(n, m): periodic linear interpolation between the centres 2πi/n, at x (m,)."""
    pos = np.mod(np.asarray(x, dtype=np.float64), X_PERIOD) * n / X_PERIOD
    i = np.floor(pos).astype(int) % n
    f = pos - np.floor(pos)
    E = np.zeros((n, pos.size))
    cols = np.arange(pos.size)
    E[i, cols] += 1.0 - f
    E[(i + 1) % n, cols] += f
    return E


WENO5 = Method("WENO5-Z + Rusanov, SSP-RK3", weno5_states, linear_matrix)


# ---------------------------------------------------------------------- spectral


def spectral_states(mu: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    """Grid values (B, nt, n) by ``etdrk4_march`` with CFL steps only (substeps 1)."""
    return sr.etdrk4_march(mu, t, 1, n, courant=SPECTRAL_COURANT)


def trig_matrix(n: int, x: np.ndarray) -> np.ndarray:
    """(n, m): the trigonometric interpolant's map from the n grid values to x (m,)."""
    return trig_interpolate(np.eye(n), x)


SPECTRAL = Method("Fourier + ETDRK4 (Hou–Li filter)", spectral_states, trig_matrix)
METHODS = {"weno5": WENO5, "spectral": SPECTRAL}
