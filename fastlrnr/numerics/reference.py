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

Other families: the march is the family's (``PdeFamily.march``; Strang splitting as above
by default — the burgers family, whose transport term u u_x has no exact sub-flow, brings a
Fourier/ETDRK4 solver, ``fastlrnr.numerics.shock_reference``), and so are the default
``substeps`` and ``nx_internal`` (``PdeFamily.reference_resolution``: for burgers, points per
row by the shock width, rows of equal points solved together).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fastlrnr.numerics.family import PdeFamily, params_to_array
from fastlrnr.numerics.grid import X_PERIOD, standard_grid
from fastlrnr.numerics.spectral import trig_interpolate
from fastlrnr.numerics.stopping import Stop
from fastlrnr.numerics.strang import DEFAULT_SUBSTEPS, NX_INTERNAL, Emit  # noqa: F401 (re-exported)


def solve_reference(
    mu: Mapping[str, float] | np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    *,
    substeps: int | None = None,
    nx_internal: int | None = None,
    family: PdeFamily,
) -> np.ndarray:
    """Reference solution u(x_j, t_i) for one parameter set.

    mu: (p,) array in ``family.params`` order ((beta, nu, rho) for CDR) or a mapping with
    those names (missing → 0);
    x: (nx,) positions in radians (any real value; periodic);
    t: (nt,) times, non-decreasing, ≥ 0;
    substeps: splitting steps per unit time (see module docstring); None: the family's
    default (``DEFAULT_SUBSTEPS`` for CDR);
    nx_internal: even number of internal Fourier grid points; None: the family's default
    (``NX_INTERNAL`` for CDR, per row for burgers);
    family: the PDE family.
    Returns (nt, nx) float64. Raises ValueError (ParameterError for mu) on bad input.
    """
    mu = params_to_array(mu, family.params)[None, :]
    return solve_reference_batch(mu, x, t, substeps=substeps, nx_internal=nx_internal, family=family)[0]


def reference_on_standard_grid(
    mu: Mapping[str, float] | np.ndarray, *, family: PdeFamily, substeps: int | None = None
) -> np.ndarray:
    """(100, 256) reference on ``fastlrnr.numerics.grid.standard_grid()`` (rows t, columns x)."""
    x, t = standard_grid()
    return solve_reference(mu, x, t, substeps=substeps, family=family)


def solve_reference_batch(
    mu: np.ndarray,
    x: np.ndarray,
    t: np.ndarray,
    *,
    substeps: int | None = None,
    nx_internal: int | None = None,
    family: PdeFamily,
    stop: Stop | None = None,
    tolerance: float | None = None,
) -> np.ndarray:
    """Reference solutions for B parameter sets at once: mu (B, p) → (B, nt, nx) float64
    (p = len(family.params), 3 for CDR).

    Every row shares x and t; rows of equal internal points are marched together (with the
    family's default ``nx_internal``, rows may differ in points); see ``solve_reference`` for
    the arguments. ``stop`` is polled every few steps (``fastlrnr.numerics.stopping``: Stopped
    when it says so). ``tolerance``: the accuracy the family's default resolution is chosen for
    (``PdeFamily.reference_resolution``; None: the family's default; only a family whose solver
    chooses its resolution by a tolerance reads it, burgers)."""
    mu, x, t, substeps, points = _checked(mu, x, t, substeps, nx_internal, family, tolerance)
    out = None
    for n in np.unique(points):
        rows = points == n
        states = family.march(mu[rows], t, substeps, int(n), stop=stop)  # (R, nt, n)
        grid = X_PERIOD * np.arange(n) / n
        if not (x.shape == grid.shape and np.allclose(x, grid, rtol=0.0, atol=1e-13)):
            states = trig_interpolate(states, x)
        if rows.all():
            return states
        if out is None:
            out = np.empty((mu.shape[0], t.size, x.size))
        out[rows] = states
    return out


def march(
    mu: np.ndarray,
    t: np.ndarray,
    emit: Emit,
    *,
    substeps: int | None = None,
    nx_internal: int,
    family: PdeFamily,
    stop: Stop | None = None,
) -> None:
    """The march of ``solve_reference_batch`` without keeping its states: the grid values
    (B, nx_internal) on x_j = 2πj/nx_internal at each time t_i are handed to ``emit(i, u)``
    (a view, valid during the call) as the march reaches them, so memory stays that of one
    state whatever the number of times (for a family whose march streams; see
    ``PdeFamily.march``). Same checks, same steps, same values."""
    mu, _, t, substeps, _ = _checked(mu, np.zeros(1), t, substeps, nx_internal, family)
    family.march(mu, t, substeps, int(nx_internal), emit=emit, stop=stop)


def _checked(
    mu, x, t, substeps, nx_internal, family: PdeFamily, tolerance: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray]:
    """The arguments of the solver checked (ValueError, ParameterError): (mu, x, t) as float64,
    the substeps and the internal points per row (the family's defaults for None, chosen for
    ``tolerance``)."""
    mu = family.check_params(mu)
    x = _check_vector(x, "x")
    t = _check_vector(t, "t")
    if t[0] < 0.0:
        raise ValueError(f"t must be ≥ 0, got t[0] = {t[0]:g}")
    if np.any(np.diff(t) < 0.0):
        i = int(np.argmax(np.diff(t) < 0.0))
        raise ValueError(f"t must be sorted (non-decreasing), got t[{i}] = {t[i]:g} > t[{i + 1}] = {t[i + 1]:g}")
    default_substeps, default_points = family.reference_resolution(mu, tolerance)
    substeps = default_substeps if substeps is None else substeps
    if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValueError(f"substeps must be a positive integer, got {substeps!r}")
    if nx_internal is not None and (
        isinstance(nx_internal, bool)
        or not isinstance(nx_internal, (int, np.integer))
        or nx_internal < 8
        or nx_internal % 2
    ):
        raise ValueError(f"nx_internal must be an even integer ≥ 8, got {nx_internal!r}")
    points = default_points if nx_internal is None else np.full(mu.shape[0], int(nx_internal))
    return mu, x, t, int(substeps), points


def _check_vector(v, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] < 1:
        raise ValueError(f"expected shape (n{name},) with n{name} ≥ 1 for {name}, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v[~np.isfinite(v)][0]}")
    return v
