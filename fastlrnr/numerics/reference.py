"""Classical reference solver for a PDE family (docs/method.md, “The reference solver”); by
default the convection–diffusion–reaction family

    u_t + β u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic,   u(x, 0) = 1 + sin x

Fourier pseudo-spectral in x on a uniform internal grid of ``nx_internal`` points,
Strang splitting in t with both sub-flows solved exactly (``fastlrnr.numerics.family.PdeFamily`` declares
them; for CDR):

    reaction (pointwise logistic ODE)   u ← u e^{ρh} / (1 + u (e^{ρh} − 1))
    convection–diffusion (per mode k)   û_k ← û_k exp((−iβk − νk²) h)

one step being  R(h/2) ∘ CD(h) ∘ R(h/2)  (second order in h). Consecutive half
reaction steps inside an interval are merged into one full step.

Time stepping: ``substeps`` is the number of splitting steps per unit of time — the
total count over t ∈ [0, 1]. The solver marches from 0 through the requested times in
order, splitting each interval [t_{j−1}, t_j] into ceil(substeps · (t_j − t_{j−1}))
equal steps (at least one), so every output lies at its requested time exactly and no
step is longer than 1/substeps, whatever the output grid. When ρ = 0 the two
convection–diffusion flows are applied exactly (one step per interval), as the
splitting is then exact (for any family: a row whose reaction parameters are all 0).

Space: the output is the trigonometric interpolant of the internal grid values,
evaluated at the requested x (any real x; values at the internal grid are returned
directly when x is that grid).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.pde import X_PERIOD, params_to_array, standard_grid
from fastlrnr.numerics.spectral import trig_interpolate
from fastlrnr.numerics.stopping import POLL_STEPS, Stop, check

Emit = Callable[[int, np.ndarray], None]  # (time index j, grid values (B, n) at t_j)

NX_INTERNAL: int = 256
"""Default number of internal grid points in x (even)."""

DEFAULT_SUBSTEPS: int = 8000
"""Default splitting steps per unit time: relative L2 error ≤ 2e-9 over the cdr domain
(5e-10 at (2, 0.7, 1.5)), about 0.15 s on the standard grid; see
``benchmarks/reference_convergence.py``."""


def solve_reference(
    mu: Mapping[str, float] | np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    *,
    substeps: int = DEFAULT_SUBSTEPS,
    nx_internal: int = NX_INTERNAL,
    family: PdeFamily = CDR_FAMILY,
) -> np.ndarray:
    """Reference solution u(x_j, t_i) for one parameter set.

    mu: (p,) array in ``family.params`` order ((beta, nu, rho) for CDR) or a mapping with
    those names (missing → 0);
    x: (nx,) positions in radians (any real value; periodic);
    t: (nt,) times, non-decreasing, ≥ 0;
    substeps: splitting steps per unit time (see module docstring);
    nx_internal: even number of internal Fourier grid points;
    family: the PDE family (default CDR).
    Returns (nt, nx) float64. Raises ValueError (ParameterError for mu) on bad input.
    """
    mu = params_to_array(mu, family.params)[None, :]
    return solve_reference_batch(mu, x, t, substeps=substeps, nx_internal=nx_internal, family=family)[0]


def reference_on_standard_grid(mu: Mapping[str, float] | np.ndarray, *, substeps: int = DEFAULT_SUBSTEPS) -> np.ndarray:
    """(100, 256) reference on ``fastlrnr.numerics.pde.standard_grid()`` (rows t, columns x)."""
    x, t = standard_grid()
    return solve_reference(mu, x, t, substeps=substeps)


def solve_reference_batch(
    mu: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    *,
    substeps: int = DEFAULT_SUBSTEPS,
    nx_internal: int = NX_INTERNAL,
    family: PdeFamily = CDR_FAMILY,
    stop: Stop | None = None,
) -> np.ndarray:
    """Reference solutions for B parameter sets at once: mu (B, p) → (B, nt, nx) float64
    (p = len(family.params), 3 for CDR).

    Every row shares x, t and the step sizes; see ``solve_reference`` for the arguments.
    ``stop`` is polled every few steps (``fastlrnr.numerics.stopping``: Stopped when it says so)."""
    mu, x, t = _checked(mu, x, t, substeps, nx_internal, family)
    states = _march(mu, t, int(substeps), int(nx_internal), family, stop=stop)  # (B, nt, nx_internal)
    grid = X_PERIOD * np.arange(nx_internal) / nx_internal
    if x.shape == grid.shape and np.allclose(x, grid, rtol=0.0, atol=1e-13):
        return states
    return trig_interpolate(states, x)


def march(
    mu: np.ndarray,
    t: np.ndarray,
    emit: Emit,
    *,
    substeps: int = DEFAULT_SUBSTEPS,
    nx_internal: int = NX_INTERNAL,
    family: PdeFamily = CDR_FAMILY,
    stop: Stop | None = None,
) -> None:
    """The march of ``solve_reference_batch`` without keeping its states: the grid values
    (B, nx_internal) on x_j = 2πj/nx_internal at each time t_i are handed to ``emit(i, u)``
    (a view, valid during the call) as the march reaches them, so memory stays that of one
    state whatever the number of times. Same checks, same steps, same values."""
    mu, _, t = _checked(mu, np.zeros(1), t, substeps, nx_internal, family)
    _march(mu, t, int(substeps), int(nx_internal), family, emit=emit, stop=stop)


def _checked(mu, x, t, substeps, nx_internal, family: PdeFamily) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arguments of the solver checked (ValueError, ParameterError): (mu, x, t) as float64."""
    mu = family.check_params(mu)
    x = _check_vector(x, "x")
    t = _check_vector(t, "t")
    if t[0] < 0.0:
        raise ValueError(f"t must be ≥ 0, got t[0] = {t[0]:g}")
    if np.any(np.diff(t) < 0.0):
        i = int(np.argmax(np.diff(t) < 0.0))
        raise ValueError(f"t must be sorted (non-decreasing), got t[{i}] = {t[i]:g} > t[{i + 1}] = {t[i + 1]:g}")
    if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValueError(f"substeps must be a positive integer, got {substeps!r}")
    if (
        isinstance(nx_internal, bool)
        or not isinstance(nx_internal, (int, np.integer))
        or nx_internal < 8
        or nx_internal % 2
    ):
        raise ValueError(f"nx_internal must be an even integer ≥ 8, got {nx_internal!r}")
    return mu, x, t


def _check_vector(v, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] < 1:
        raise ValueError(f"expected shape (n{name},) with n{name} ≥ 1 for {name}, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v[~np.isfinite(v)][0]}")
    return v


def _march(
    mu: np.ndarray,
    t: np.ndarray,
    substeps: int,
    n: int,
    family: PdeFamily = CDR_FAMILY,
    emit: Emit | None = None,
    stop: Stop | None = None,
) -> np.ndarray | None:
    """Grid values (B, nt, n) at the times t by Strang splitting of ``family``'s sub-flows; with
    ``emit``, each time's values are handed to it instead (and None is returned). ``stop`` is
    polled every POLL_STEPS steps."""
    params = family.columns(mu)  # (B, 1) each
    k = np.fft.rfftfreq(n, d=1.0 / n)  # 0, 1, ..., n/2
    symbol = family.symbol(k, *params)  # (B, n/2 + 1)
    reacting = bool(np.any(family.reacting(mu)))

    u = np.broadcast_to(family.initial_condition(X_PERIOD * np.arange(n) / n), (mu.shape[0], n)).copy()
    out = np.empty((mu.shape[0], t.shape[0], n)) if emit is None else None
    t_now, done = 0.0, 0
    for j, t_next in enumerate(t):
        span = t_next - t_now
        if span > 0.0:
            steps = max(1, math.ceil(substeps * span - 1e-9)) if reacting else 1
            h = span / steps
            propagator = np.exp(symbol * h)
            if reacting:
                half, full = family.reaction_flow(0.5 * h, *params), family.reaction_flow(h, *params)
                u = half(u)
                for step in range(steps):
                    u = np.fft.irfft(np.fft.rfft(u) * propagator, n)
                    u = full(u) if step < steps - 1 else half(u)
                    done += 1
                    if done % POLL_STEPS == 0:
                        check(stop)
            else:
                u = np.fft.irfft(np.fft.rfft(u) * propagator, n)
                done += 1
        if out is not None:
            out[:, j] = u
        else:
            emit(j, u)
        t_now = t_next
        if j % POLL_STEPS == 0:
            check(stop)
    return out
