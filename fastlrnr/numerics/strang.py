"""The Strang-splitting march of the reference solver (``fastlrnr.numerics.reference``): the
default ``PdeFamily.march`` of every family whose equation its two exact sub-flows cover (a
linear constant-coefficient part per Fourier mode and a pointwise reaction). This module
imports nothing of the family module, so that the family can call it without an import circle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.stopping import POLL_STEPS, Stop, check

if TYPE_CHECKING:
    from fastlrnr.numerics.family import PdeFamily

Emit = Callable[[int, np.ndarray], None]  # (time index j, grid values (B, n) at t_j)

NX_INTERNAL: int = 256
"""Default number of internal grid points in x (even)."""

DEFAULT_SUBSTEPS: int = 8000
"""Default splitting steps per unit time: relative L2 error ≤ 2e-9 over the cdr domain
(5e-10 at (2, 0.7, 1.5)), about 0.15 s on the standard grid; see
``benchmarks/reference_convergence.py``."""


def strang_march(
    mu: np.ndarray,
    t: np.ndarray,
    substeps: int,
    n: int,
    family: PdeFamily,
    emit: Emit | None = None,
    stop: Stop | None = None,
) -> np.ndarray | None:
    """Grid values (B, nt, n) at the times t by Strang splitting of ``family``'s sub-flows
    (``PdeFamily.march``'s default); with ``emit``, each time's values (B, n) are handed to
    ``emit(j, u)`` instead (a view, valid during the call) and None is returned, so memory stays
    that of one state. ``stop`` is polled every POLL_STEPS steps (``Stopped`` when it fires)."""
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
