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


DENSE_ROWS = 16  # up to this many rows (and DENSE_POINTS points) a dense step may replace the FFTs
DENSE_POINTS = 64
CACHED_LENGTHS = 16  # step lengths whose operators a march keeps at once


def strang_march(
    mu: np.ndarray,
    t: np.ndarray,
    substeps: int,
    n: int,
    family: PdeFamily,
    emit: Emit | None = None,
    stop: Stop | None = None,
    dense: bool = False,
) -> np.ndarray | None:
    """Grid values (B, nt, n) at the times t by Strang splitting of ``family``'s sub-flows
    (``PdeFamily.march``'s default); with ``emit``, each time's values (B, n) are handed to
    ``emit(j, u)`` instead (a view, valid during the call) and None is returned, so memory stays
    that of one state. ``stop`` is polled every POLL_STEPS steps (``Stopped`` when it fires).

    The operators of a step length are built once (a march over many output times has a few
    step lengths). ``dense``: for at most DENSE_ROWS rows of at most DENSE_POINTS points, the
    linear sub-flow is one real (n, n) matrix per row instead of two FFTs per step — the same
    flow, rounded differently (~1e-16 per step); the reference rung asks for it, the reference
    solver does not (its values stay those of the FFT march, bit for bit)."""
    params = family.columns(mu)  # (B, 1) each
    k = np.fft.rfftfreq(n, d=1.0 / n)  # 0, 1, ..., n/2
    symbol = family.symbol(k, *params)  # (B, n/2 + 1)
    reacting = bool(np.any(family.reacting(mu)))
    B = mu.shape[0]
    dense = dense and B <= DENSE_ROWS and n <= DENSE_POINTS
    eye_hat = np.fft.rfft(np.eye(n), axis=-1) if dense else None
    # per interval between requested times: its steps and its step length's operators, built
    # once per length while a few lengths recur (the FFT march keys a length exactly, so its
    # values stay the reference's bit for bit; the dense one lets lengths equal but for rounding
    # share their matrices); scattered times, each its own length, keep only the last few
    spans = np.diff(np.asarray(t, dtype=np.float64), prepend=0.0).tolist()
    counts = [max(1, math.ceil(substeps * span - 1e-9)) if reacting else 1 for span in spans]
    cache: dict[float, tuple] = {}

    def operators(h: float) -> tuple:
        key = round(h, 15) if dense else h
        if key not in cache:
            if len(cache) >= CACHED_LENGTHS:
                cache.clear()
            propagator = np.exp(symbol * h)
            if dense:  # u ← u @ M_b: the flow of each row as a real matrix
                M = np.fft.irfft(eye_hat[None] * propagator[:, None, :], n, axis=-1)  # (B, n, n)
                propagator = M[0] if B == 1 else M
            flows = (family.reaction_flow(0.5 * h, *params), family.reaction_flow(h, *params)) if reacting else None
            cache[key] = (propagator, flows)
        return cache[key]

    def linear(u: np.ndarray, propagator: np.ndarray) -> np.ndarray:
        if not dense:
            return np.fft.irfft(np.fft.rfft(u) * propagator, n)
        return u @ propagator if propagator.ndim == 2 else np.matmul(u[:, None, :], propagator)[:, 0]

    u = np.broadcast_to(family.initial_condition(X_PERIOD * np.arange(n) / n), (B, n)).copy()
    out = np.empty((B, t.shape[0], n)) if emit is None else None
    done = 0
    for j, (span, steps) in enumerate(zip(spans, counts)):
        if span > 0.0:
            propagator, flows = operators(span / steps)
            if reacting:
                half, full = flows
                u = half(u)
                for step in range(steps):
                    u = linear(u, propagator)
                    u = full(u) if step < steps - 1 else half(u)
                    done += 1
                    if done % POLL_STEPS == 0:
                        check(stop)
            else:
                u = linear(u, propagator)
                done += 1
        if out is not None:
            out[:, j] = u
        else:
            emit(j, u)
        if j % POLL_STEPS == 0:
            check(stop)
    return out
