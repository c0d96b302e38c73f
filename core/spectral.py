"""Trigonometric interpolation of periodic grid values in x, shared by the reference solver
and the linearised correction."""

from __future__ import annotations

import numpy as np

from core.pde import X_PERIOD

SITES_CHUNK = 8192  # sites evaluated at once: bounds the basis matrix to a few MiB


def trig_interpolate(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The trigonometric interpolant of values (..., n) at x_j = 2πj/n, evaluated at x (m,)
    → (..., m). Exact for every mode the grid resolves; for even n the Nyquist mode enters
    as a cosine. The basis e^{ikx} is built by recurrence, ``SITES_CHUNK`` sites at a time."""
    values = np.asarray(values, dtype=np.float64)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    n = values.shape[-1]
    coef = np.fft.rfft(values, axis=-1) / n  # (..., n//2 + 1)
    weight = np.full(coef.shape[-1], 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
        coef[..., -1] = coef[..., -1].real
    coef = coef * weight
    out = np.empty(values.shape[:-1] + (x.size,))
    for lo in range(0, x.size, SITES_CHUNK):
        z = np.exp(2j * np.pi * x[lo : lo + SITES_CHUNK] / X_PERIOD)
        basis = np.empty((coef.shape[-1], z.size), dtype=np.complex128)  # (modes, m): e^{ikx}
        basis[0] = 1.0
        for k in range(1, coef.shape[-1]):
            basis[k] = basis[k - 1] * z
        out[..., lo : lo + SITES_CHUNK] = (coef @ basis).real
    return out


def cubic_in_time(values: np.ndarray, t_grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cubic (Catmull–Rom) interpolation along axis 1 of values (R, n, ...) given on the
    uniform times t_grid (n ≥ 3) → (R, len(t), ...). Third-order accurate for smooth data;
    at the two end intervals the missing neighbour is the quadratic extrapolation of the
    first (last) three values. t is clamped to the grid's range."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    if n < 3:
        raise ValueError(f"cubic interpolation needs at least 3 times, got {n}")
    h = (t_grid[-1] - t_grid[0]) / (n - 1)
    t = np.clip(np.asarray(t, dtype=np.float64), t_grid[0], t_grid[-1])
    j = np.clip(np.floor((t - t_grid[0]) / h).astype(int), 0, n - 2)
    s = (t - t_grid[0]) / h - j
    first = 3.0 * values[:, 0] - 3.0 * values[:, 1] + values[:, 2]  # ghost value before t_0
    last = 3.0 * values[:, -1] - 3.0 * values[:, -2] + values[:, -3]  # ghost value after t_{n-1}
    padded = np.concatenate([first[:, None], values, last[:, None]], axis=1)  # index i + 1 is time i
    p0, p1, p2, p3 = (padded[:, j + k] for k in range(4))
    s = s.reshape((1, -1) + (1,) * (values.ndim - 2))
    return p1 + 0.5 * s * ((p2 - p0) + s * ((2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) + s * (3.0 * (p1 - p2) + p3 - p0)))
