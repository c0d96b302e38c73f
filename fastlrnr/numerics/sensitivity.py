"""Exact derivatives of the surrogate's value with respect to the PDE parameters:
∂u(x_i, t_i; s(μ))/∂μ through the hypernetwork and the LRNR (docs/method.md, "Parameter
estimation").

The hypernetwork (``fastlrnr.numerics.hypernet``) is differentiated forward, one tangent per
parameter (there are at most a few):

    μ̃ = 2 (μ − low)/(high − low) − 1     ∂μ̃/∂μ = diag(2/(high − low)) on active parameters, 0 on fixed
    m_1 = tanh(W_1 μ̃ + c_1)              ∂m_1 = (1 − m_1²) ⊙ W_1 ∂μ̃       (and so on for m_2, m_3)
    s_l = ReLU(H_l m_3 + e_l)            ∂s_l = 1[H_l m_3 + e_l > 0] ⊙ H_l ∂m_3

The LRNR's value at M fixed points is differentiated in reverse, one adjoint per point (the
point index is kept, as in ``fastlrnr.numerics.jet_chain``, but without jets: only u is observed):

    a_1 = U_1ᵀ h_0 (fixed),  y_l = V_l (s_l ⊙ a_l) + b_l,  h_l = tanh y_l,  a_{l+1} = U_{l+1}ᵀ h_l
    u = u_0(x) + t (wᵀ h_L + c)
    ū = 1:  h̄_L = t w,   ȳ_l = (1 − h_l²) ⊙ h̄_l,   z̄_l = V_lᵀ ȳ_l,
            ∂u/∂s_l = a_l ⊙ z̄_l,   h̄_{l−1} = U_l (s_l ⊙ z̄_l)

and ∂u/∂μ = Σ_l ∂u/∂s_l · ∂s_l/∂μ. A forward and a reverse pass cost about three forward
passes whatever the number of parameters. Points are taken in chunks so that memory stays
bounded for many rows and points.
"""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.family import PdeFamily, as_param_array
from fastlrnr.numerics.hypernet import HyperWeights, normalise_params
from fastlrnr.numerics.lrnr import LRNRWeights, embed

CHUNK_VALUES = 1 << 20  # rows × points × width held at once per hidden state (8 MiB of float64)


def hyper_jacobian(hw: HyperWeights, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient rows S (R, P) = s(μ) and their derivative dS (R, P, p) = ∂s/∂μ for parameter
    rows mu (R, p), in float64. Where a ReLU is exactly at its kink the derivative taken is 0."""
    mu = as_param_array(mu, len(hw.low))
    span = hw.high - hw.low
    active = span > 0
    scale = np.where(active, 2.0 / np.where(active, span, 1.0), 0.0)  # ∂μ̃/∂μ (diagonal)
    m = normalise_params(mu, hw.low, hw.high)
    dm = np.broadcast_to(np.diag(scale), (len(mu),) + (len(scale),) * 2)  # (R, p, p): ∂μ̃/∂μ
    for W, c in zip(hw.W, hw.c):
        m = np.tanh(m @ W.T + c)
        dm = (1.0 - m * m)[:, :, None] * (W @ dm)  # (R, K, p)
    S, dS = [], []
    for H, e in zip(hw.H, hw.e):
        pre = m @ H.T + e
        S.append(np.maximum(pre, 0.0))
        dS.append((pre > 0.0)[:, :, None] * (H @ dm))
    return np.concatenate(S, axis=1), np.concatenate(dS, axis=1)


class PointSensitivity:
    """The LRNR's value at M fixed points (x, t) and its derivative with respect to the
    coefficients, by one reverse pass that keeps the point index (module docstring).

    Everything is float64; the first layer, which does not depend on the coefficients, is
    computed once here."""

    def __init__(self, weights: LRNRWeights, x: np.ndarray, t: np.ndarray, *, family: PdeFamily):
        w = weights if weights.A.dtype == np.float64 else weights.astype(np.float64)
        self.weights = w
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.t = np.ascontiguousarray(t, dtype=np.float64)
        if self.x.ndim != 1 or self.x.shape != self.t.shape:
            raise ValueError(f"expected points x, t of the same shape (M,), got {self.x.shape}, {self.t.shape}")
        self.family = family
        h0 = np.tanh(embed(self.x, self.t) @ w.A.T + w.a)
        self.a1 = h0 @ w.U[0]  # (M, k_1)
        self.u0 = family.initial_condition(self.x)
        self.ranks = w.ranks
        self.offsets = np.concatenate([[0], np.cumsum(self.ranks)]).astype(int)

    @property
    def points(self) -> int:
        return int(self.x.size)

    def _chunks(self, rows: int):
        size = max(1, CHUNK_VALUES // max(1, rows * self.weights.width))
        for lo in range(0, self.points, size):
            yield slice(lo, min(self.points, lo + size))

    def values(self, S: np.ndarray) -> np.ndarray:
        """u (R, M) for coefficient rows S (R, P)."""
        S = self._rows(S)
        out = np.empty((len(S), self.points))
        for sl in self._chunks(len(S)):
            out[:, sl] = self._forward(S, sl)[0]
        return out

    def values_and_jacobian(self, S: np.ndarray, tangents: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """u (R, M) and ∂u/∂s (R, M, P) for coefficient rows S (R, P); with ``tangents`` (R, P, q)
        the product ∂u/∂s · tangents (R, M, q) instead (the full ∂u/∂s is then never stored)."""
        S = self._rows(S)
        R, P = S.shape
        q = P if tangents is None else tangents.shape[2]
        if tangents is not None and tangents.shape[:2] != (R, P):
            raise ValueError(f"expected tangents of shape ({R}, {P}, q), got {tangents.shape}")
        u = np.empty((R, self.points))
        jac = np.empty((R, self.points, q))
        w = self.weights
        off = self.offsets
        for sl in self._chunks(R):
            u[:, sl], a_list, h_list = self._forward(S, sl)
            hbar = (self.t[sl, None] * w.w)[None]  # (1, m, N): ∂u/∂h_L
            blocks = [None] * len(self.ranks)
            for l in range(len(self.ranks) - 1, -1, -1):
                h = h_list[l]
                zbar = ((1.0 - h * h) * hbar) @ w.V[l]  # (R, m, k_l): ∂u/∂(s_l ⊙ a_l)
                blocks[l] = a_list[l] * zbar
                if l > 0:
                    hbar = (zbar * S[:, None, off[l] : off[l + 1]]) @ w.U[l].T
            dS = np.concatenate(blocks, axis=2)  # (R, m, P)
            jac[:, sl] = dS if tangents is None else dS @ tangents
        return u, jac

    def _forward(self, S: np.ndarray, sl: slice) -> tuple[np.ndarray, list, list]:
        w = self.weights
        off = self.offsets
        a = np.broadcast_to(self.a1[sl], (len(S),) + self.a1[sl].shape)
        a_list, h_list = [], []
        h = None
        for l in range(len(self.ranks)):
            if l > 0:
                a = h @ w.U[l]
            a_list.append(a)
            h = np.tanh((a * S[:, None, off[l] : off[l + 1]]) @ w.V[l].T + w.b[l])
            h_list.append(h)
        u = self.u0[sl] + self.t[sl] * (h @ w.w + w.c)
        return u, a_list, h_list

    def _rows(self, S) -> np.ndarray:
        S = np.asarray(S, dtype=np.float64)
        if S.ndim != 2 or S.shape[1] != self.offsets[-1]:
            raise ValueError(f"expected coefficient rows (R, {self.offsets[-1]}), got {S.shape}")
        return S


class ParameterSensitivity:
    """u(x_i, t_i; s(μ)) at fixed points and its exact Jacobian ∂u/∂μ, through the hypernetwork
    ``hyper`` and the LRNR ``weights`` of ``family``."""

    def __init__(self, weights: LRNRWeights, hyper: HyperWeights, x: np.ndarray, t: np.ndarray, *, family: PdeFamily):
        self.hyper = hyper
        self.points = PointSensitivity(weights, x, t, family=family)

    def values(self, mu: np.ndarray) -> np.ndarray:
        """u (R, M) for parameter rows mu (R, p)."""
        S, _ = hyper_jacobian(self.hyper, mu)
        return self.points.values(S)

    def values_and_jacobian(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """u (R, M) and ∂u/∂μ (R, M, p) for parameter rows mu (R, p)."""
        S, dS = hyper_jacobian(self.hyper, mu)
        return self.points.values_and_jacobian(S, dS)
