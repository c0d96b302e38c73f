"""The linearised error equation of a family with a transport term b u u_x (Burgers), on a
regular periodic grid:

    e_t + a_x e_x + a_xx e_xx + b (u e)_x − c(u) e = −r,    e(x, 0) = 0,

whose variable-coefficient transport b (u e)_x the exponential integrator of
``fastlrnr.numerics.error_proxy.error_field`` (constant coefficients per Fourier mode) cannot
take exactly. Here every term is explicit: classical RK4 in time with spectral x-derivatives,
the residual r and the field u linear in time between the grid's times, and as many RK4 steps
per grid interval as its stability asks (step h with h·(max|a_x + b u|·k_max + |a_xx|·k_max²
+ max|c(u)|) ≤ ``COURANT``, inside RK4's stability region on both axes). On the coarse grids the
correction uses (nx ≤ 128) this costs a few hundred length-nx FFTs per row (three per stage:
e and u e forward, their derivatives' sum back).
"""

from __future__ import annotations

import math

import numpy as np

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.grid import X_PERIOD

COURANT = 1.5
"""h times the largest rate of the right-hand side (RK4 is stable to 2.8 on the imaginary axis)."""


def has_transport(mu: np.ndarray, family: PdeFamily) -> bool:
    """Whether some row of mu (R, p) has a transport term b u u_x (b ≠ 0)."""
    b = family.burgers_coefficient(*family.columns(np.asarray(mu, dtype=np.float64)))
    return bool(np.any(np.asarray(b) != 0))


def transport_error_field(r: np.ndarray, u: np.ndarray, mu: np.ndarray, t_end: float, family: PdeFamily) -> np.ndarray:
    """The linearised error e (R, nt, nx) for residuals r and fields u (R, nt, nx) on the grid
    ``uniform_grid(nx, nt)`` scaled to [0, t_end], parameters mu (R, p) of ``family``."""
    R, nt, nx = r.shape
    h = t_end / (nt - 1)
    k = 2.0 * np.pi * np.fft.rfftfreq(nx, X_PERIOD / nx)  # (modes,)
    if nx % 2 == 0:
        k_odd = k.copy()
        k_odd[-1] = 0.0  # the Nyquist mode has no real derivative on the grid
    else:
        k_odd = k
    params = family.columns(mu, 3)  # (R, 1, 1) each
    a_x, a_xx = (
        np.broadcast_to(np.asarray(c, dtype=np.float64), (R, 1, 1)) for c in family.linear_coefficients(*params)
    )
    b = np.broadcast_to(np.asarray(family.burgers_coefficient(*params), dtype=np.float64), (R, 1, 1))
    c_u = family.reaction_coefficient(u, *params)  # (R, nt, nx)
    rate = np.max(
        np.abs(a_x[:, 0, 0] + b[:, 0, 0] * np.max(np.abs(u), axis=(1, 2))) * k.max()
        + np.abs(a_xx[:, 0, 0]) * k.max() ** 2
    )
    rate = max(float(np.max(rate)), 0.0) + float(np.max(np.abs(c_u)))
    sub = max(1, math.ceil(h * rate / COURANT))
    dt = h / sub
    ax, axx, bb = a_x[:, 0], a_xx[:, 0], b[:, 0]  # (R, 1)

    # the derivatives act per mode: a_x e_x + a_xx e_xx + b (u e)_x in one inverse transform
    linear = ax * (1j * k_odd) - axx * (k * k)  # (R, modes)
    transport = bb * (1j * k_odd)

    def rhs(e: np.ndarray, uu: np.ndarray, cc: np.ndarray, rr: np.ndarray) -> np.ndarray:
        spectral = linear * np.fft.rfft(e, axis=-1) + transport * np.fft.rfft(uu * e, axis=-1)
        return -np.fft.irfft(spectral, nx, axis=-1) + cc * e - rr

    e = np.zeros((R, nt, nx))
    state = np.zeros((R, nx))
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(nt - 1):
            ends = [(f[:, n], f[:, n + 1]) for f in (u, c_u, r)]
            for j in range(sub):
                (u0, um, u1), (c0, cm, c1), (r0, rm, r1) = (
                    [(1.0 - w) * lo + w * hi for w in (j / sub, (j + 0.5) / sub, (j + 1.0) / sub)] for lo, hi in ends
                )
                k1 = rhs(state, u0, c0, r0)
                k2 = rhs(state + 0.5 * dt * k1, um, cm, rm)
                k3 = rhs(state + 0.5 * dt * k2, um, cm, rm)
                k4 = rhs(state + dt * k3, u1, c1, r1)
                state = state + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            e[:, n + 1] = state
    return e


def transport_shift(e: np.ndarray, mu: np.ndarray, family: PdeFamily) -> np.ndarray:
    """b e e_x for errors e (R, nt, nx) on a periodic grid: the transport's part of the Newton
    shift (the remainder of a quadratic term is its own shift)."""
    nx = e.shape[-1]
    k = 2.0 * np.pi * np.fft.rfftfreq(nx, X_PERIOD / nx)
    if nx % 2 == 0:
        k = k.copy()
        k[-1] = 0.0
    e_x = np.fft.irfft(1j * k * np.fft.rfft(e, axis=-1), nx, axis=-1)
    b = np.asarray(family.burgers_coefficient(*family.columns(np.asarray(mu, dtype=np.float64), 3)), dtype=np.float64)
    return b * e * e_x
