"""Reference solver for the burgers family: Fourier pseudo-spectral in x, ETDRK4 in t.

    u_t + β u u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic,   u(x, 0) = 1 + sin x,

β ≥ 0, ν > 0, ρ ≥ 0 (x in radians, t in the equation's unit time). Written for the deviation
ũ = u − 1 (ũ0 = sin x), whose equation is a linear part with constant coefficients plus one
quadratic term:

    ũ_t = L ũ + N(ũ),     L = −β ∂x + ν ∂xx − ρ,     N(ũ) = −(β/2) ∂x(ũ²) − ρ ũ²,

so per Fourier mode k: L_k = −iβk − νk² − ρ and N̂_k = −(iβk/2 + ρ) (ũ²)^_k. The mean
transport (speed β) and the diffusion are integrated exactly; the explicit part carries only
the transport at speed β ũ with |ũ| ≤ 1 (0 ≤ u ≤ 2 is invariant for every ρ ≥ 0).

Space: n points x_j = 2πj/n, the state kept as the n/2 + 1 coefficients of ``numpy.fft.rfft``;
ũ² is formed on the grid and its modes weighted by ``spectral_mask`` before they enter: by
default the 36th-order exponential filter of Hou & Li (``"houli"``: it leaves the lower 40 % of
the modes untouched to 1e-12 and damps the aliased top tenth), or Orszag's 2/3 rule (``"two_thirds"``:
no aliasing at all, but only a third of the points carry modes). Measured at β = 3, ν = 1e-3
against Cole–Hopf, the filter is 3× more accurate at equal n and cost (1.9e-4 against 6.6e-4
at n = 8192), since a resolved solve does not need the rule's protection. What the protection
buys, measured far outside the domain: without either treatment the solve overflowed at
ν = 1e-4 on 256 and 1024 points and at β = 10, ν = 1e-3 on 256; with the filter only at
ν = 1e-5 on 256 points (a shock 300 times narrower than the grid), which ``etdrk4_march``
reports as a ``FloatingPointError``; with the 2/3 rule never. Inside the domain the filtered
solve stays bounded from n = 8 up. ``benchmarks/burgers_reference_convergence.py`` prints the
comparison.

Time: ETDRK4 of Cox & Matthews, its φ-function coefficients computed as Kassam & Trefethen do,
as means over ``CONTOUR_POINTS`` points of the unit circle around each hL_k in the complex
plane (``etd_coefficients``: no cancellation at small |hL_k|). The march hits every requested
time exactly: an interval [t_{j−1}, t_j] is cut into

    max(1, ⌈substeps · span⌉, ⌈span · β_max · k_max / COURANT⌉)

equal steps (``steps_for``; k_max = n/2 with the filter, n/3 with the 2/3 rule) — at most
1/substeps each, and never above the transport CFL limit whatever ``substeps`` asks; rows
marched together share the steps of their largest β. The coefficients of the last step length
are kept (consecutive intervals of a uniform output grid share them).

Resolution: ``points_for`` (n by the shock width ν/β, for a tolerance; measured). Cost: 4
stages a step, each an ``irfft`` and an ``rfft`` of length n per row; steps ∝ β n, so a solve
costs ∝ β n² log n — about 10 s at β = 3, ν = 1e-3 (n = 16384), 0.01 s at β = 1, ν = 1e-2
(n = 256), one thread. Accuracy, cost and the Cole–Hopf check: docs/method.md (“The burgers
reference solver”), ``benchmarks/burgers_reference_convergence.py``.
"""

from __future__ import annotations

import math

import numpy as np

from fastlrnr.numerics.family import ParameterError

X_PERIOD = 2.0 * math.pi

COURANT: float = 2.0
"""Largest β · k_max · h of a step: the transport CFL number of the explicit part (RK4's stability
limit on the imaginary axis is 2.8). At 2 the time error stays below the space error of the n
that ``points_for`` gives (measured: benchmarks/burgers_reference_convergence.py)."""
CONTOUR_POINTS: int = 32
"""Points on the circle of the Kassam–Trefethen contour mean."""
DEFAULT_SUBSTEPS: int = 200
"""Default time steps per unit time: a floor, the CFL rule takes over from β n ≥ 800."""
REFERENCE_TOLERANCE: float = 1e-5
"""The relative L2 error (standard grid) the default resolution is chosen for (``points_for``)."""
MIN_POINTS: int = 256
"""The fewest points ``points_for`` gives."""
RUNG_MAX_POINTS: int = 32768
"""The finest attempt of the reference rung (about a minute a row at β = 3)."""

# The resolution rule (``points_for``), measured against Cole–Hopf at ρ = 0 on the standard grid
# (benchmarks/burgers_reference_convergence.py --rule): the points per unit shock width,
# s = n ν / β, that the relative L2 error needs for each tolerance, as a + b log10(ν / 1e-3) —
# a the largest s at ν = 1e-3, b the slope through the largest s at ν = 1e-2, over
# β ∈ {1.25, 1.5, 1.75, 2, 2.5, 3} for RULE_SHOCK (a shock forms at t = 1/β < 1 and lives on) and
# at β = 1 for RULE_BREAKING (the front steepens to a shock only at t = 1; b there envelops the
# measured ν, a little above). Every measured s lies at most 4 % above its line (the margin covers
# it); at 1e-6, β ≥ 2.5, ν = 1e-3 the ladder's 16384 points did not reach the tolerance.
RULE_TOLERANCES = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
RULE_SHOCK = (np.array([0.44, 1.89, 3.45, 4.94, 6.88]), np.array([0.54, 0.63, 0.63, 0.95, 1.82]))
RULE_BREAKING = (np.array([0.26, 0.26, 0.44, 0.73, 1.00]), np.array([0.95, 0.95, 0.95, 0.95, 1.30]))
RULE_MARGIN: float = 1.1
"""Factor on the measured s (the rule interpolates between measured sizes)."""


DEALIAS = ("houli", "two_thirds")


def spectral_mask(n: int, dealias: str = "houli") -> np.ndarray:
    """(n/2 + 1,) float64 weights of the modes k = 0..n/2 in the quadratic term: ``"houli"``, the
    36th-order exponential filter exp(−36 (2k/n)^36) of Hou & Li (1 to 1e-12 for k < 0.42·n/2,
    0.44 at 0.9·n/2, 2e-16 at n/2); ``"two_thirds"``, Orszag's rule (1 for k < n/3, else 0)."""
    k = np.arange(n // 2 + 1, dtype=np.float64)
    if dealias == "houli":
        return np.exp(-36.0 * (k / (n // 2)) ** 36)
    if dealias == "two_thirds":
        return (3 * np.arange(n // 2 + 1) < n).astype(np.float64)
    raise ValueError(f"dealias must be one of {DEALIAS}, got {dealias!r}")


def max_wavenumber(n: int, dealias: str = "houli") -> int:
    """The largest wavenumber the quadratic term feeds on n points (``spectral_mask``)."""
    return n // 2 if dealias == "houli" else (n - 1) // 3


def steps_for(span: float, substeps: int, k_max: int, beta_max: float, courant: float = COURANT) -> int:
    """Time steps over an interval of length ``span`` (unit time): at most 1/substeps each and
    within the CFL limit β_max · k_max · h ≤ ``courant``; at least one."""
    cfl = span * beta_max * k_max / courant
    return max(1, math.ceil(substeps * span - 1e-9), math.ceil(cfl - 1e-9))


def etd_coefficients(lin: np.ndarray, h: float, points: int = CONTOUR_POINTS) -> tuple[np.ndarray, ...]:
    """ETDRK4 coefficients for the diagonal linear part ``lin`` (any shape, complex, per unit
    time) and the step h (unit time): (E, E2, Q, f1, f2, f3), each shaped like ``lin``, with
    z = h L and φ-function means over the circle z + e^{iθ} (θ_j = 2π(j + ½)/points):

        E = e^z,  E2 = e^{z/2},  Q = h ⟨(e^{r/2} − 1)/r⟩,
        f1 = h ⟨(−4 − r + e^r (4 − 3r + r²)) / r³⟩,  f2 = h ⟨(2 + r + e^r (r − 2)) / r³⟩,
        f3 = h ⟨(−4 − 3r − r² + e^r (4 − r)) / r³⟩,

    ⟨·⟩ the mean over r = z + e^{iθ_j} (Kassam & Trefethen 2005; exact for analytic integrands up
    to a term of order 1/points!, and free of the closed forms' cancellation at small |z|).
    The loop runs over the contour points, so memory stays that of a few ``lin``-sized arrays."""
    z = np.asarray(lin, dtype=np.complex128) * h
    q = np.zeros_like(z)
    f1 = np.zeros_like(z)
    f2 = np.zeros_like(z)
    f3 = np.zeros_like(z)
    for j in range(points):
        r = z + np.exp(2j * np.pi * (j + 0.5) / points)
        er = np.exp(r)
        r2 = r * r
        r3 = r2 * r
        q += (np.exp(0.5 * r) - 1.0) / r
        f1 += (-4.0 - r + er * (4.0 - 3.0 * r + r2)) / r3
        f2 += (2.0 + r + er * (r - 2.0)) / r3
        f3 += (-4.0 - 3.0 * r - r2 + er * (4.0 - r)) / r3
    scale = h / points
    return np.exp(z), np.exp(0.5 * z), q * scale, f1 * scale, f2 * scale, f3 * scale


def fft_size(m: float) -> int:
    """The smallest n = c · 2^k ≥ m with c ∈ {4, 5, 6}, n ≥ 8: lengths at most a third apart whose
    FFTs are fast (measured: 7 · 2^k is slower than the next power of two)."""
    k = max(0, math.floor(math.log2(max(m, 8.0) / 4.0)))
    while True:
        for c in (4, 5, 6):
            if c * 2**k >= m:
                return max(8, c * 2**k)
        k += 1


def points_for(beta: np.ndarray | float, nu: np.ndarray | float, tolerance: float = REFERENCE_TOLERANCE) -> np.ndarray:
    """The resolution rule: points n per row (same shape as beta, nu broadcast; ints) for a
    relative L2 error ≤ ``tolerance`` on the standard grid, with CFL-limited steps (``COURANT``).

    n = fft_size(max(MIN_POINTS, RULE_MARGIN · s · β / ν)), s the measured points per unit shock
    width (ν/β: the viscous shock is 4ν / (β Δu) wide), interpolated in log10 of the tolerance
    and of ν between the measured ones (s is held at its ν = 1e-3 value below; a tolerance
    outside [1e-6, 1e-2] takes the nearest measured one). For 1 < β < 1.25 the rule blends
    linearly from β = 1's (``RULE_BREAKING``: no shock before t = 1) to ``RULE_SHOCK``; β ≤ 1
    takes β = 1's. β = 3, ν = 1e-3 at 1e-5: 16384 points (measured error 3e-6)."""
    beta = np.asarray(beta, dtype=np.float64)
    nu = np.asarray(nu, dtype=np.float64)
    if np.any(~np.isfinite(nu) | (nu <= 0.0)):
        raise ParameterError("nu must be > 0 for the burgers reference solver", param="nu")
    if np.any(~np.isfinite(beta) | (beta < 0.0)):
        raise ParameterError("beta must be a finite number ≥ 0", param="beta")
    if not (tolerance > 0.0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number > 0, got {tolerance!r}")
    where = -np.log10(np.clip(tolerance, RULE_TOLERANCES[-1], RULE_TOLERANCES[0]))  # 2 … 6
    decades = np.log10(RULE_TOLERANCES) * -1.0

    def width_points(rule: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        a, b = (float(np.interp(where, decades, c)) for c in rule)
        return a + b * np.maximum(np.log10(nu / 1e-3), 0.0)

    blend = np.clip((beta - 1.0) / 0.25, 0.0, 1.0)
    s = width_points(RULE_BREAKING) + blend * (width_points(RULE_SHOCK) - width_points(RULE_BREAKING))
    want = np.maximum(MIN_POINTS, RULE_MARGIN * s * beta / nu)
    return np.vectorize(fft_size, otypes=[int])(want)


def check_rows(mu: np.ndarray) -> np.ndarray:
    """(B, 3) float64 rows of (β, ν, ρ) with β ≥ 0, ν > 0, ρ ≥ 0, finite; else ParameterError."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] != 3 or mu.shape[0] < 1:
        raise ParameterError(f"expected shape (B, 3) for (beta, nu, rho) with B ≥ 1, got {mu.shape}")
    for i, key in enumerate(("beta", "nu", "rho")):
        col = mu[:, i]
        if not np.all(np.isfinite(col)):
            raise ParameterError(f"{key} must be a finite number, got {col[~np.isfinite(col)][0]}", param=key)
        if np.any(col < 0.0):
            raise ParameterError(f"{key} must be ≥ 0, got {col[col < 0.0][0]:g}", param=key)
    if np.any(mu[:, 1] <= 0.0):
        raise ParameterError(
            "nu must be > 0 for the burgers reference solver (an inviscid shock has no resolved solution)",
            param="nu",
        )
    return mu


def etdrk4_march(
    mu: np.ndarray,
    t: np.ndarray,
    substeps: int,
    n: int,
    *,
    courant: float = COURANT,
    points: int = CONTOUR_POINTS,
    dealias: str = "houli",
) -> np.ndarray:
    """Grid values u (B, nt, n) at x_j = 2πj/n and the sorted times t (nt,) ≥ 0 (unit time), for
    rows mu (B, 3) of (β, ν, ρ); all rows share the steps (the CFL limit of the largest β).

    substeps: time steps per unit time (a floor; see the module docstring); n: even number of
    points ≥ 8; courant, points: the CFL number and the contour points of ``etd_coefficients``;
    dealias: ``"houli"`` (default) or ``"two_thirds"`` (``spectral_mask``).
    Raises ParameterError for bad rows, ValueError for bad t, n, substeps or dealias, and
    FloatingPointError when a row blows up (only seen far below the resolution ``points_for`` asks)."""
    mu = check_rows(mu)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or t[0] < 0.0 or np.any(np.diff(t) < 0.0):
        raise ValueError(f"t must be a non-empty, sorted, finite vector of times ≥ 0, got shape {t.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 8 or n % 2:
        raise ValueError(f"n must be an even integer ≥ 8, got {n!r}")
    if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValueError(f"substeps must be a positive integer, got {substeps!r}")
    if not (courant > 0.0 and isinstance(points, (int, np.integer)) and points >= 8):
        raise ValueError(f"courant must be > 0 and points an integer ≥ 8, got {courant!r}, {points!r}")
    n = int(n)
    B = mu.shape[0]
    beta, nu, rho = (mu[:, i : i + 1] for i in range(3))  # (B, 1)
    k = np.arange(n // 2 + 1, dtype=np.float64)
    mask = spectral_mask(n, dealias)  # (modes,)
    lin = -1j * beta * k - nu * k * k - rho  # (B, modes): L_k
    gain = mask * -(0.5j * beta * k + rho)  # (B, modes): N̂_k = gain_k (ũ²)^_k
    beta_max = float(beta.max())
    k_max = max_wavenumber(n, dealias)

    def nonlinear(v: np.ndarray) -> np.ndarray:
        w = np.fft.irfft(v, n)
        w *= w
        return gain * np.fft.rfft(w)

    grid = X_PERIOD * np.arange(n) / n
    v = np.broadcast_to(mask * np.fft.rfft(np.sin(grid)), (B, n // 2 + 1)).copy()
    key, coefficients = None, ()
    out = np.empty((B, t.size, n))
    t_now = 0.0
    for j, t_next in enumerate(t):
        span = float(t_next - t_now)
        if span > 0.0:
            steps = steps_for(span, int(substeps), k_max, beta_max, courant)
            step_key = float(f"{span / steps:.12e}")  # equal spans of a uniform grid differ in the last bits only
            if step_key != key:  # only the last step's coefficients are kept: 6 arrays of (B, n/2 + 1)
                key, coefficients = step_key, etd_coefficients(lin, span / steps, points)
            e, e2, q, f1, f2, f3 = coefficients
            with np.errstate(over="ignore", invalid="ignore"):
                for _ in range(steps):
                    nv = nonlinear(v)
                    e2v = e2 * v
                    a = e2v + q * nv
                    na = nonlinear(a)
                    nb = nonlinear(e2v + q * na)
                    nc = nonlinear(e2 * a + q * (2.0 * nb - nv))
                    v = e * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nc
            if not np.all(np.isfinite(v)):
                bad = mu[~np.all(np.isfinite(v), axis=1)][0]
                raise FloatingPointError(
                    f"the burgers reference blew up at t ≤ {t_next:g} for (beta, nu, rho) = {tuple(bad.tolist())}"
                    f" on n = {n} points: far too coarse (points_for asks {points_for(bad[0], bad[1])})"
                )
        out[:, j] = np.fft.irfft(v, n)
        t_now = float(t_next)
    out += 1.0
    return out
