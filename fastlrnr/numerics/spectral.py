"""Interpolation shared by the reference solver, its escalation rung and the correction:
trigonometric in x (periodic grid values), cubic (Catmull–Rom) in t."""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.grid import X_PERIOD

SITES_CHUNK = 8192  # sites evaluated at once (at most): bounds the basis matrix to a few MiB
CHUNK_COMPLEX = 1 << 20  # complex values a chunk's basis or gathered coefficients may hold (16 MiB)


def _site_chunk(modes: int, rows: int = 1) -> int:
    """Sites per chunk: SITES_CHUNK, fewer when ``rows`` × ``modes`` complex values per site
    would take more than CHUNK_COMPLEX (many modes, many rows)."""
    return max(16, min(SITES_CHUNK, CHUNK_COMPLEX // max(1, modes * rows)))


def trig_coefficients(values: np.ndarray) -> np.ndarray:
    """Coefficients c (..., n//2 + 1) of the trigonometric interpolant of values (..., n) at
    x_j = 2πj/n: f(x) = Re Σ_k c_k e^{ikx}. For even n the Nyquist mode enters as a cosine."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[-1]
    coef = np.fft.rfft(values, axis=-1) / n  # (..., n//2 + 1)
    weight = np.full(coef.shape[-1], 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
        coef[..., -1] = coef[..., -1].real
    return coef * weight


def trig_interpolate(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The trigonometric interpolant of values (..., n) at x_j = 2πj/n, evaluated at x (m,)
    → (..., m). Exact for every mode the grid resolves. The basis e^{ikx} is built by
    recurrence, at most ``SITES_CHUNK`` sites at a time."""
    coef = trig_coefficients(values)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    out = np.empty(coef.shape[:-1] + (x.size,))
    chunk = _site_chunk(coef.shape[-1])
    for lo in range(0, x.size, chunk):
        z = np.exp(2j * np.pi * x[lo : lo + chunk] / X_PERIOD)
        basis = np.empty((coef.shape[-1], z.size), dtype=np.complex128)  # (modes, m): e^{ikx}
        basis[0] = 1.0
        for k in range(1, coef.shape[-1]):
            basis[k] = basis[k - 1] * z
        out[..., lo : lo + chunk] = (coef @ basis).real
    return out


def trig_matrix(n: int, x: np.ndarray) -> np.ndarray:
    """(n, m) real: values (..., n) at x_j = 2πj/n times it are their trigonometric interpolant
    at x (m,) (``trig_interpolate`` as one matrix: it is linear in the values)."""
    return trig_interpolate(np.eye(n), x)


def trig_at_points(values: np.ndarray, row: np.ndarray, x: np.ndarray) -> np.ndarray:
    """For values (R, m, n) on x_j = 2πj/n: point p's value is the interpolant of
    values[:, row[p]] at x[p] → (R, P). At most ``SITES_CHUNK`` points at a time."""
    coef = trig_coefficients(values)  # (R, m, modes)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    k = np.arange(coef.shape[-1])
    out = np.empty((coef.shape[0], x.size))
    chunk = _site_chunk(coef.shape[-1], coef.shape[0])
    for lo in range(0, x.size, chunk):
        basis = np.exp(1j * np.outer(2 * np.pi * x[lo : lo + chunk] / X_PERIOD, k))  # (p, modes)
        out[:, lo : lo + chunk] = np.einsum("rpk,pk->rp", coef[:, row[lo : lo + chunk]], basis).real
    return out


def cubic_stencil(values: np.ndarray, t_grid: np.ndarray, t: np.ndarray):
    """(padded, j, s): values (R, n, ...) with a ghost value at each end (index i + 1 is time
    i: the quadratic extrapolation of the first / last three values), the interval j of each t
    (clamped to the grid) and its position s ∈ [0, 1] in it."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    if n < 3:
        raise ValueError(f"cubic interpolation needs at least 3 times, got {n}")
    h = (t_grid[-1] - t_grid[0]) / (n - 1)
    t = np.clip(np.asarray(t, dtype=np.float64), t_grid[0], t_grid[-1])
    j = np.clip(np.floor((t - t_grid[0]) / h).astype(int), 0, n - 2)
    first = 3.0 * values[:, 0] - 3.0 * values[:, 1] + values[:, 2]
    last = 3.0 * values[:, -1] - 3.0 * values[:, -2] + values[:, -3]
    padded = np.concatenate([first[:, None], values, last[:, None]], axis=1)
    return padded, j, (t - t_grid[0]) / h - j


def _catmull_rom(p0, p1, p2, p3, s):
    return p1 + 0.5 * s * ((p2 - p0) + s * ((2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) + s * (3.0 * (p1 - p2) + p3 - p0)))


def cubic_in_time(values: np.ndarray, t_grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cubic (Catmull–Rom) interpolation along axis 1 of values (R, n, ...) given on the
    uniform times t_grid (n ≥ 3) → (R, len(t), ...). Third-order accurate for smooth data;
    at the two end intervals the missing neighbour is the quadratic extrapolation of the
    first (last) three values. t is clamped to the grid's range."""
    padded, j, s = cubic_stencil(values, t_grid, t)
    s = s.reshape((1, -1) + (1,) * (padded.ndim - 2))
    return _catmull_rom(*(padded[:, j + k] for k in range(4)), s)


def cubic_rows(stencil: tuple, sel: np.ndarray | slice) -> np.ndarray:
    """``cubic_in_time`` at the times ``sel`` only, from their ``cubic_stencil`` (computed once
    for every time): (R, len(sel), ...). The same values, a block of times at a time."""
    padded, j, s = stencil
    jj = j[sel]
    s = s[sel].reshape((1, -1) + (1,) * (padded.ndim - 2))
    return _catmull_rom(*(padded[:, jj + k] for k in range(4)), s)


def hermite_weights(t_grid: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(j, w): the cubic Hermite interpolant in time of values u_j and time derivatives u'_j
    given on the uniform times t_grid (n ≥ 2) at each t is
    ``w[:, 0] u_j + w[:, 1] u_{j+1} + w[:, 2] u'_j + w[:, 3] u'_{j+1}`` (fourth order: error
    h⁴ max|∂⁴u| / 384); j (len(t),) int, w (len(t), 4). t is clamped to the grid's range."""
    t_grid = np.asarray(t_grid, dtype=np.float64)
    n = t_grid.size
    h = (t_grid[-1] - t_grid[0]) / (n - 1)
    t = np.clip(np.asarray(t, dtype=np.float64), t_grid[0], t_grid[-1])
    j = np.clip(np.floor((t - t_grid[0]) / h).astype(int), 0, n - 2)
    s = (t - t_grid[0]) / h - j
    s2, s3 = s * s, s * s * s
    w = np.stack([2 * s3 - 3 * s2 + 1, -2 * s3 + 3 * s2, h * (s3 - 2 * s2 + s), h * (s3 - s2)], axis=1)
    return j, w


def cubic_at_points(values: np.ndarray, t_grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """values (R, n, P), column p interpolated (as ``cubic_in_time``) at its own time t[p] →
    (R, P)."""
    padded, j, s = cubic_stencil(values, t_grid, t)
    p = np.arange(j.size)
    return _catmull_rom(*(padded[:, j + k, p] for k in range(4)), s)
