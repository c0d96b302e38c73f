"""The linearised-error proxy: how far an answer is from the true solution, from its residual.

If the LRNR's field u leaves the residual r = R[u] = u_t + βu_x − νu_xx − ρu(1 − u), the
error e = ū − u against the true solution ū obeys, to first order in e,

    e_t + βe_x − νe_xx − ρ(1 − 2u) e = −r,    e(x, 0) = 0,    e periodic in x,

(for any family: L_u e = e_t + a_x e_x + a_xx e_xx − c(u) e = −r, with the symbol of the
linear part and the reaction coefficient c(u) from ``fastlrnr.numerics.family.PdeFamily``)
(the ansatz makes the initial condition exact). Solving this *linear* equation on a coarse
regular grid turns the residual into an estimate of the error itself: the proxy

    ê = ‖e‖ / ‖u‖    (discrete L2 over the grid's times t_1..t_{nt−1})

tracks the relative L2 error far better than any norm of r, because it weighs each part of
the residual by how the PDE propagates it (a residual early in time, or in a slowly damped
Fourier mode, costs more than one that diffusion removes at once).

The equation is integrated in Fourier space with a second-order splitting: the reaction
factor exp(ρ(1 − 2u) h / 2) pointwise on both sides of an exponential-time-differencing
step for the linear part (advection and diffusion exact per mode, the source linear in time
over the step). On nt = 17..33 times and nx = 32 points this costs a few FFTs of length 32
per row and time step; the dominant cost is evaluating the LRNR's residual on the grid.
"""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.allocator import retain_freed_memory
from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.grid import X_PERIOD, uniform_grid
from fastlrnr.numerics.jet_chain import JetChain, exact_chain
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.numerics.transport_error import has_transport, transport_error_field

SMALL_Z = 1e-6  # below |z| the φ-functions use their Taylor series


def error_field(r: np.ndarray, u: np.ndarray, mu: np.ndarray, t_end: float, family: PdeFamily) -> np.ndarray:
    """The linearised error e (R, nt, nx) for residuals r and fields u (R, nt, nx) on the
    grid ``uniform_grid(nx, nt)`` scaled to [0, t_end] in time, parameters mu (R, p) of
    ``family`` ((β, ν, ρ) for CDR)."""
    r = np.asarray(r, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    R, nt, nx = r.shape
    p = len(family.params)
    if u.shape != r.shape or mu.shape != (R, p) or nt < 2:
        raise ValueError(
            f"expected r, u of one shape (R, nt ≥ 2, nx) and mu (R, {p}), got {r.shape}, {u.shape}, {mu.shape}"
        )
    if has_transport(mu, family):  # b (u e)_x has variable coefficients: integrated explicitly
        return transport_error_field(r, u, mu, t_end, family)
    h = t_end / (nt - 1)
    k = 2.0 * np.pi * np.fft.rfftfreq(nx, X_PERIOD / nx)  # (nx//2 + 1,) wavenumbers
    z = family.symbol(k, *family.columns(mu)) * h  # (R, modes) the linear operator times h
    ez = np.exp(z)
    small = np.abs(z) < SMALL_Z
    zs = np.where(small, 1.0, z)
    phi1 = np.where(small, 1.0 + z / 2.0, (ez - 1.0) / zs)
    phi2 = np.where(small, 0.5 + z / 6.0, (ez - 1.0 - zs) / (zs * zs))
    w_start, w_end = h * (phi1 - phi2), h * phi2  # weights of the source at t_n and t_{n+1}
    source = -np.fft.rfft(r, axis=2)  # (R, nt, modes)
    with np.errstate(over="ignore", invalid="ignore"):
        # the source's contribution to every step at once: (R, nt − 1, modes)
        forcing = w_start[:, None] * source[:, :-1] + w_end[:, None] * source[:, 1:]
        # (R, nt, nx) reaction over h/2
        half = np.exp(0.5 * h * family.reaction_coefficient(u, *family.columns(mu, 3)))
        e = np.zeros((R, nt, nx))
        for n in range(nt - 1):
            E = ez * np.fft.rfft(half[:, n] * e[:, n], axis=1) + forcing[:, n]
            e[:, n + 1] = half[:, n + 1] * np.fft.irfft(E, nx, axis=1)
    return e


def linearised_error(r: np.ndarray, u: np.ndarray, mu: np.ndarray, t_end: float, family: PdeFamily) -> np.ndarray:
    """The proxy ê = ‖e‖ / ‖u‖ (R,) over the times t_1..t_{nt−1} (arguments as for
    :func:`error_field`). Non-finite inputs give inf for that row."""
    e = error_field(r, u, mu, t_end, family)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.sqrt(np.sum(e[:, 1:] ** 2, axis=(1, 2)) / np.sum(np.asarray(u, np.float64)[:, 1:] ** 2, axis=(1, 2)))
    return np.where(np.isfinite(out), out, np.inf)


class ErrorProxy:
    """The full LRNR's linearised-error proxy on an nx × nt regular grid, built once per model.

    ``__call__(S, mu)`` returns (proxy ê (R,), RMS residual on the grid (R,)) for coefficient
    rows S (R, P) and parameters mu (R, p) of ``family`` (CDR: (β, ν, ρ)), ``chunk`` rows at a
    time (memory)."""

    def __init__(
        self,
        weights: LRNRWeights,
        nx: int = 32,
        nt: int = 17,
        dtype=np.float32,
        chunk: int = 8,
        *,
        family: PdeFamily,
    ):
        if nx < 4 or nt < 2:
            raise ValueError(f"the proxy grid needs nx ≥ 4 and nt ≥ 2, got {nx} × {nt}")
        x, t = uniform_grid(nx, nt)
        X, T = np.meshgrid(x, t)  # (nt, nx)
        self.nx, self.nt, self.t_end, self.chunk = int(nx), int(nt), float(t[-1]), int(chunk)
        self.family = family
        self.chain: JetChain = exact_chain(weights, X.ravel(), T.ravel(), dtype, family=family)
        retain_freed_memory()  # a pass allocates MiB-sized jets: reuse them (fastlrnr/numerics/allocator.py)

    def __call__(self, S: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S = np.asarray(S)
        mu = np.asarray(mu, dtype=np.float64)
        proxy, rms = np.empty(len(S)), np.empty(len(S))
        for lo in range(0, len(S), self.chunk):
            state = self.chain.forward(S[lo : lo + self.chunk], mu[lo : lo + self.chunk])
            shape = (-1, self.nt, self.nx)
            r = state.r.reshape(shape)
            proxy[lo : lo + self.chunk] = linearised_error(r, state.u.reshape(shape), state.mu, self.t_end, self.family)
            rms[lo : lo + self.chunk] = np.sqrt(np.mean(r.reshape(len(r), -1) ** 2, axis=1))
        return proxy, np.where(np.isfinite(rms), rms, np.inf)

    def residual_and_field(self, S: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r, u), both (R, nt, nx) float64: the LRNR's residual and field on the grid."""
        S = np.asarray(S)
        mu = np.asarray(mu, dtype=np.float64)
        r = np.empty((len(S), self.nt, self.nx))
        u = np.empty_like(r)
        for lo in range(0, len(S), self.chunk):
            state = self.chain.forward(S[lo : lo + self.chunk], mu[lo : lo + self.chunk])
            r[lo : lo + self.chunk] = state.r.reshape(-1, self.nt, self.nx)
            u[lo : lo + self.chunk] = state.u.reshape(-1, self.nt, self.nx)
        return r, u

    def error_field(self, S: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(e, u), both (R, nt, nx) float64: the linearised error and the LRNR's field on the grid."""
        r, u = self.residual_and_field(S, mu)
        return error_field(r, u, np.asarray(mu, dtype=np.float64), self.t_end, self.family), u

    def to_dict(self) -> dict:
        return {"nx": self.nx, "nt": self.nt}
