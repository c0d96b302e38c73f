"""The exact solution of the burgers family without reaction (ρ = 0), by the Cole–Hopf transform.

    u_t + β u u_x − ν u_xx = 0,   x ∈ [0, 2π) periodic, t ≥ 0,   u(x, 0) = 1 + sin x,   β ≥ 0, ν > 0.

An independent check of the burgers reference solver (``fastlrnr.numerics.shock_reference``) and a
test oracle. How it is computed:

1. v = β u solves v_t + v v_x = ν v_xx with v(x, 0) = β + β sin x.
2. Galilean shift: w(ξ, t) = v(ξ + βt, t) − β solves the same equation with w(ξ, 0) = β sin ξ
   (zero mean, so the potential below is periodic).
3. Cole–Hopf: w = −2ν ∂_ξ log φ with φ_t = ν φ_ξξ and φ(y, 0) = exp(−(β / 2ν)(1 − cos y)), so

       w(ξ, t) = ∫ (s / t) exp(E(s)) ds / ∫ exp(E(s)) ds,
       E(s) = −s² / (4νt) − (β / 2ν) (1 − cos(ξ − s))            (y = ξ − s ∈ ℝ)

   — the heat kernel against the periodic initial potential, over the whole line.
4. u(x, t) = 1 + w(x − βt, t) / β.

Quadrature (``_heat_ratio``): E is of order −β/ν (−3000 at β = 3, ν = 1e-3), so both integrals
are taken relative to max_s E (log-sum-exp); the ratio is then well conditioned. The trapezoidal
rule on a uniform s grid converges exponentially for these Gaussian-like integrands; its step is
a fraction ``1 / STEP_DIVISOR`` of the narrowest local width σ = sqrt(2νt / (1 + βt)) (E's
curvature is at most 1/(2νt) + β/(2ν)), and the window |s| ≤ sqrt(4t (β + TAIL ν)) drops only
terms below e^{−TAIL} of the largest (E ≤ −s²/(4νt) and max E ≥ E(0) ≥ −β/ν). With the defaults
the result is converged to rounding: halving the step or widening the window changes it by
< 1e-12 (``tests/numerics/test_cole_hopf.py``).
"""

from __future__ import annotations

import math

import numpy as np

STEP_DIVISOR: float = 3.0
"""Quadrature points per narrowest local width σ of the integrand."""
TAIL: float = 50.0
"""The window keeps every term above e^{−TAIL} times the largest."""
CHUNK_VALUES: int = 1 << 21
"""Integrand values evaluated at once (bounds memory to a few tens of MiB)."""


def cole_hopf_burgers(
    beta: float,
    nu: float,
    x: np.ndarray,
    t: np.ndarray,
    *,
    step_divisor: float = STEP_DIVISOR,
    tail: float = TAIL,
) -> np.ndarray:
    """Exact u(x_j, t_i) of u_t + β u u_x − ν u_xx = 0 with u(x, 0) = 1 + sin x.

    beta: β ≥ 0 (dimensionless speed factor); nu: ν > 0 (viscosity, units of x² per unit t);
    x: (nx,) positions in radians (any real values; periodic in 2π); t: (nt,) times ≥ 0 (any order).
    step_divisor, tail: the quadrature's settings (see the module docstring).
    Returns (nt, nx) float64. Raises ValueError on bad shapes or values.
    """
    beta, nu = float(beta), float(nu)
    if not (math.isfinite(beta) and beta >= 0.0):
        raise ValueError(f"beta must be a finite number ≥ 0, got {beta!r}")
    if not (math.isfinite(nu) and nu > 0.0):
        raise ValueError(f"nu must be a finite number > 0 (Cole–Hopf needs viscosity), got {nu!r}")
    if not (step_divisor > 0.0 and tail > 0.0):
        raise ValueError(f"step_divisor and tail must be > 0, got {step_divisor!r}, {tail!r}")
    x = _vector(x, "x")
    t = _vector(t, "t")
    if np.any(t < 0.0):
        raise ValueError(f"t must be ≥ 0, got {t[t < 0.0][0]:g}")

    out = np.empty((t.size, x.size))
    for i, ti in enumerate(t):
        if beta == 0.0:  # no transport: the heat equation, u = 1 + e^{−νt} sin x
            out[i] = 1.0 + np.exp(-nu * ti) * np.sin(x)
            continue
        if ti == 0.0:
            out[i] = 1.0 + np.sin(x)
            continue
        w = _heat_ratio(beta, nu, x - beta * ti, ti, step_divisor, tail)
        out[i] = 1.0 + w / beta
    return out


def _heat_ratio(beta: float, nu: float, xi: np.ndarray, t: float, step_divisor: float, tail: float) -> np.ndarray:
    """w(ξ, t) of step 3 at the points xi (m,) for one time t > 0 → (m,)."""
    sigma = math.sqrt(2.0 * nu * t / (1.0 + beta * t))
    h = sigma / step_divisor
    half = math.sqrt(4.0 * t * (beta + tail * nu))
    count = int(math.ceil(half / h))
    s = h * np.arange(-count, count + 1)  # (q,) symmetric trapezoid nodes (the ends are negligible)
    gauss = -(s * s) / (4.0 * nu * t)
    scale = beta / (2.0 * nu)
    xi = np.mod(xi, 2.0 * np.pi)  # φ0 is 2π-periodic: reduce the argument for an accurate cosine
    out = np.empty(xi.size)
    rows = max(1, CHUNK_VALUES // s.size)
    for lo in range(0, xi.size, rows):
        half_angle = np.sin(0.5 * (xi[lo : lo + rows, None] - s))
        e = gauss - 2.0 * scale * half_angle * half_angle  # (r, q); 1 − cos z = 2 sin²(z/2), no cancellation
        e -= e.max(axis=1, keepdims=True)
        weight = np.exp(e)
        out[lo : lo + rows] = (weight @ s) / (t * weight.sum(axis=1))
    return out


def _vector(v, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.size < 1:
        raise ValueError(f"expected shape (n{name},) with n{name} ≥ 1 for {name}, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v[~np.isfinite(v)][0]}")
    return v
