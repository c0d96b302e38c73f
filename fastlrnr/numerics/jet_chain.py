"""The coefficient-dependent part of an LRNR at fixed points, with forward jets and the
per-point Jacobian of the PDE residual. Both fast-phase backends are this one class with
different operators: ``exact_chain`` (the full LRNR, here) and the FastLRNR
(``fastlrnr.numerics.fastlrnr``).

At M fixed points (x_m, t_m), for coefficient rows s = (s_1, …, s_L):

    a_1      = U_1ᵀ h_0                      (given: h_0 does not depend on s)
    y_l      = Wout_l (s_l ⊙ a_l) + bias_l   l = 1..L,   width d_l
    h_l      = tanh(y_l)
    a_{l+1}  = Win_{l+1}ᵀ h_l                 l = 1..L−1
    g        = wᵀ h_L + c,    u = 1 + sin x + t g

everything carried as jets (value, ∂x, ∂t[, ∂xx]), and the residual of the chain's PDE
family (``fastlrnr.numerics.family``; by default CDR, R = u_t + β u_x − ν u_xx − ρ u (1 − u), and
u = u0(x) + t g with the family's initial condition u0) at every point.

The Jacobian ∂R_m/∂s comes from ONE batched reverse pass that does not sum over points:
with ȳ_l the adjoint of y_l's jets for point m's own residual, row m of layer l's block is
Σ_jets a_l ⊙ (Wout_lᵀ ȳ_l). Cost O(M · Σ_l d_l k_l) per row — independent of the LRNR
width N when every d_l is small (the reduced backend).

Shapes: coefficient rows S (R, P), P = Σ k_l; residuals (R, M); Jacobian (R, M, P).
Jet arrays are (J, R, M, d) with J = 4 jets, or 3 when ν = 0 in every row (no ∂xx). For a
family other than CDR, mu is (R, p) in that family's parameter columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.lrnr import LRNRWeights, layer0_jets


@dataclass(frozen=True)
class JetChain:
    """Operators of the chain at M points (see the module docstring); ``dtype`` is the
    working precision of every array.

    x, t (M,); a1 (4, M, k_1); Wout[l] (d_l, k_l), bias[l] (d_l,) for l = 1..L;
    Win[l] (d_{l−1}, k_l) for l = 2..L (Win[0] is None); w (d_L,); c: output bias;
    family: the PDE whose residual the chain evaluates ."""

    x: np.ndarray
    t: np.ndarray
    a1: np.ndarray
    Wout: tuple[np.ndarray, ...]
    bias: tuple[np.ndarray, ...]
    Win: tuple[np.ndarray | None, ...]
    w: np.ndarray
    c: float
    family: PdeFamily

    def __post_init__(self) -> None:
        check_layers(self.x, self.t, self.a1, self.Wout, self.bias, self.Win, self.w)

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(int(W.shape[1]) for W in self.Wout)

    @property
    def points(self) -> int:
        return int(self.x.shape[0])

    @property
    def dtype(self) -> np.dtype:
        return self.a1.dtype

    # ------------------------------------------------------------------ forward
    def forward(self, S: np.ndarray, mu: np.ndarray) -> ChainState:
        """Forward jets for coefficient rows S (R, P) and parameters mu (R, p); the returned
        state holds the residual ``r`` (R, M) (float64) and what ``jacobian`` needs."""
        S, mu = self._check(S, mu)
        return self._forward(S, mu, 4 if self.family.needs_uxx(mu) else 3)

    def _forward(self, S: np.ndarray, mu: np.ndarray, J: int) -> ChainState:
        Sd = S.astype(self.dtype, copy=False)
        R = S.shape[0]
        off = self.offsets
        a_list, h_list = [], []
        a = np.broadcast_to(self.a1[:J, None], (J, R) + self.a1.shape[1:])
        h = None
        for l, (Wout, b) in enumerate(zip(self.Wout, self.bias)):
            if l > 0:
                a = h @ self.Win[l]
            a_list.append(a)
            y = (a * Sd[:, None, off[l] : off[l + 1]]) @ Wout.T
            y[0] += b
            h = _tanh_jets(y)
            h_list.append(h)
        g = (h @ self.w).astype(np.float64)
        g[0] += self.c
        fam = self.family
        u, u_x, u_t, u_xx = fam.ansatz_jets(self.x, self.t, g[0], g[1], g[2], g[3] if J == 4 else None)
        u_xx = np.zeros_like(u) if u_xx is None else u_xx
        return ChainState(Sd, mu, a_list, h_list, u, fam.residual(u, u_t, u_x, u_xx, *fam.columns(mu)), u_x)

    @property
    def offsets(self) -> np.ndarray:
        """(L + 1,) start of each layer's block in a coefficient row."""
        return np.concatenate([[0], np.cumsum(self.ranks)]).astype(int)

    def hidden_states(self, S: np.ndarray) -> list[np.ndarray]:
        """State jets h_l (4, R, M, d_l), l = 1..L, for coefficient rows S (R, P)."""
        S, mu = self._check(S, np.zeros((np.shape(S)[0], len(self.family.params))))
        return self._forward(S, mu, 4).h

    def residual(self, S: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """R[u] (R, M) float64 for coefficient rows S (R, P) and parameters mu (R, 3)."""
        return self.forward(S, mu).r

    def residual_and_jacobian(self, S: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R[u] (R, M) float64 and ∂R/∂s (R, M, P) in the chain's dtype."""
        state = self.forward(S, mu)
        return state.r, self.jacobian(state)

    def jacobian(self, state: ChainState) -> np.ndarray:
        """∂R/∂s (R, M, P) in the chain's dtype, by one reverse pass from a forward ``state``."""
        a_list, h_list, mu, S = state.a, state.h, state.mu, state.S
        J = h_list[0].shape[0]
        # seeds ∂R/∂g per jet: u = u0 + t g0, u_x = … + t g_x, u_t = g0 + t g_t, u_xx = … + t g_xx,
        # with the residual's partials (∂R/∂u, ∂R/∂u_x, ∂R/∂u_xx) at the state (∂R/∂u_t = 1)
        R_u, R_ux, R_uxx = self.family.residual_partials(state.u, state.u_x, *self.family.columns(mu))
        t = self.t
        gbar = np.empty((J,) + state.r.shape, dtype=self.dtype)
        gbar[0] = 1.0 + t * R_u
        gbar[1] = R_ux * t
        gbar[2] = t
        if J == 4:
            gbar[3] = R_uxx * t
        hbar = gbar[..., None] * self.w
        off = self.offsets
        jac = np.empty(state.r.shape + (int(off[-1]),), dtype=self.dtype)
        for l in range(len(self.Wout) - 1, -1, -1):
            ybar = _tanh_jets_adjoint(h_list[l], hbar)
            zbar = ybar @ self.Wout[l]  # ∂R/∂(s_l ⊙ a_l)
            np.einsum("jrmk,jrmk->rmk", a_list[l], zbar, out=jac[..., off[l] : off[l + 1]])
            if l > 0:
                hbar = (zbar * S[:, None, off[l] : off[l + 1]]) @ self.Win[l].T
        return jac

    def _check(self, S, mu) -> tuple[np.ndarray, np.ndarray]:
        S = np.asarray(S)
        mu = np.asarray(mu, dtype=np.float64)
        P = sum(self.ranks)
        p = len(self.family.params)
        if S.ndim != 2 or S.shape[1] != P or mu.shape != (S.shape[0], p):
            raise ValueError(f"expected coefficient rows (R, {P}) and mu (R, {p}), got {S.shape} and {mu.shape}")
        return S, mu


def check_layers(x, t, a1, Wout, bias, Win, w) -> None:
    """Raise ValueError unless the chain's arrays fit together: points x, t (M,), a1 (4, M, k_1),
    Wout[l] (d_l, k_l), bias[l] (d_l,), Win[l] (d_{l−1}, k_l) for l ≥ 1 (Win[0] None), w (d_L,)."""
    M = x.shape[0]
    L = len(Wout)
    if x.shape != (M,) or t.shape != (M,):
        raise ValueError(f"expected points x, t of shape (M,), got {x.shape}, {t.shape}")
    if a1.shape != (4, M, Wout[0].shape[1]):
        raise ValueError(f"expected a1 of shape (4, {M}, k_1), got {a1.shape}")
    if len(bias) != L or len(Win) != L or Win[0] is not None:
        raise ValueError("expected L entries of Wout, bias and Win, with Win[0] None")
    for l in range(L):
        d, k = Wout[l].shape
        if bias[l].shape != (d,):
            raise ValueError(f"layer {l + 1}: expected bias ({d},), got {bias[l].shape}")
        if l > 0 and Win[l].shape != (Wout[l - 1].shape[0], k):
            raise ValueError(f"layer {l + 1}: expected Win ({Wout[l - 1].shape[0]}, {k}), got {Win[l].shape}")
    if w.shape != (Wout[-1].shape[0],):
        raise ValueError(f"expected w of shape ({Wout[-1].shape[0]},), got {w.shape}")


@dataclass(frozen=True)
class ChainState:
    """A forward pass: S (R, P) in the chain's dtype, mu (R, p), per layer the input jets a_l
    (J, R, M, k_l) and state jets h_l (J, R, M, d_l), u and the residual r (R, M) (float64)."""

    S: np.ndarray
    mu: np.ndarray
    a: list
    h: list
    u: np.ndarray
    r: np.ndarray
    u_x: np.ndarray

    def rows(self, keep: np.ndarray) -> ChainState:
        """The state of a subset of rows (boolean mask or indices)."""
        return ChainState(
            self.S[keep],
            self.mu[keep],
            [a[:, keep] for a in self.a],
            [h[:, keep] for h in self.h],
            self.u[keep],
            self.r[keep],
            self.u_x[keep],
        )


def _tanh_jets(y: np.ndarray) -> np.ndarray:
    """Jets of tanh: y (J, …) with y[0] the value and y[1:] its x, t[, xx] derivatives.

    h' = (1 − h²) y',  h'' = (1 − h²) y'' − 2 h h' y'  (for the xx jet)."""
    h = np.empty_like(y)
    np.tanh(y[0], out=h[0])
    D = 1.0 - h[0] * h[0]
    np.multiply(D, y[1:], out=h[1:])
    if y.shape[0] == 4:
        h[3] -= 2.0 * h[0] * h[1] * y[1]
    return h


def _tanh_jets_adjoint(h: np.ndarray, hbar: np.ndarray) -> np.ndarray:
    """∂R/∂y jets from ∂R/∂h jets ``hbar``, given the state jets ``h`` (both (J, …)).

    With D = 1 − h²: ȳ_t = D h̄_t, ȳ_xx = D h̄_xx, ȳ_x = D h̄_x − 4 h h_x h̄_xx and
    ȳ = D h̄ − 2h (h_x h̄_x + h_t h̄_t + h_xx h̄_xx) − 2 h_x² h̄_xx."""
    h0 = h[0]
    D = 1.0 - h0 * h0
    ybar = np.empty_like(hbar)
    np.multiply(D, hbar[1:], out=ybar[1:])
    acc = (h[1:] * hbar[1:]).sum(axis=0)
    ybar[0] = D * hbar[0] - 2.0 * h0 * acc
    if h.shape[0] == 4:
        hx_hxx = h[1] * hbar[3]
        ybar[1] -= 4.0 * h0 * hx_hxx
        ybar[0] -= 2.0 * h[1] * hx_hxx
    return ybar


def layer1_inputs(weights: LRNRWeights, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a_1 = U_1ᵀ h_0 with its jets (``fastlrnr.numerics.lrnr.layer0_jets``) at points x, t (M,):
    (4, M, k_1), float64. Exact, and independent of the coefficients."""
    w64 = weights if weights.A.dtype == np.float64 else weights.astype(np.float64)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.stack(layer0_jets(w64, x, t)) @ w64.U[0]


def exact_chain(weights: LRNRWeights, x: np.ndarray, t: np.ndarray, dtype=np.float32, *, family: PdeFamily) -> JetChain:
    """The full LRNR as a JetChain at points x, t (M,): Wout_l = V_l, Win_l = U_l, w = w
    (every state has width N), in ``dtype``, for the residual of ``family``."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)
    L = len(weights.U)
    return JetChain(
        x,
        t,
        cast(layer1_inputs(weights, x, t)),
        tuple(cast(V) for V in weights.V),
        tuple(cast(b) for b in weights.b),
        (None,) + tuple(cast(weights.U[l]) for l in range(1, L)),
        cast(weights.w),
        float(weights.c),
        family,
    )
