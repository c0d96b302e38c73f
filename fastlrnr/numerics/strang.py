"""The Strang-splitting march of the reference solver (``fastlrnr.numerics.reference``): the
default ``PdeFamily.march`` of every family whose equation its two exact sub-flows cover (a
linear constant-coefficient part per Fourier mode and a pointwise reaction). This module
imports nothing of the family module, so that the family can call it without an import circle.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fastlrnr.numerics.grid import X_PERIOD

if TYPE_CHECKING:
    from fastlrnr.numerics.family import PdeFamily

NX_INTERNAL: int = 256
"""Default number of internal grid points in x (even)."""

DEFAULT_SUBSTEPS: int = 8000
"""Default splitting steps per unit time: relative L2 error ≤ 2e-9 over the cdr domain
(5e-10 at (2, 0.7, 1.5)), about 0.15 s on the standard grid; see
``benchmarks/reference_convergence.py``."""


def strang_march(mu: np.ndarray, t: np.ndarray, substeps: int, n: int, family: PdeFamily) -> np.ndarray:
    """Grid values (B, nt, n) at the times t by Strang splitting of ``family``'s sub-flows
    (``PdeFamily.march``'s default)."""
    params = family.columns(mu)  # (B, 1) each
    k = np.fft.rfftfreq(n, d=1.0 / n)  # 0, 1, ..., n/2
    symbol = family.symbol(k, *params)  # (B, n/2 + 1)
    reacting = bool(np.any(family.reacting(mu)))

    u = np.broadcast_to(family.initial_condition(X_PERIOD * np.arange(n) / n), (mu.shape[0], n)).copy()
    out = np.empty((mu.shape[0], t.shape[0], n))
    t_now = 0.0
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
            else:
                u = np.fft.irfft(np.fft.rfft(u) * propagator, n)
        out[:, j] = u
        t_now = t_next
    return out
