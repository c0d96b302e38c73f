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
