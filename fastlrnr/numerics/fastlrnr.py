"""FastLRNR: the reduced network built by EIM/DEIM for a fixed set of collocation points.

Layer 0 does not depend on the coefficients, so its contribution at the points is exact:
a_1 = U_1ᵀ h_0 (with x, t, xx jets) is stored. Each layer l = 1..L is interpolated from
n of its N entries: with a POD basis Φ_l (N, n) of its state jets at the points, DEIM rows
p_l (n,) and M_l = (Φ_l[p_l])⁻¹, the state h_l ≈ Φ_l M_l q_l where q_l = h_l[p_l]. Then

    q_l = tanh(V_l[p_l] (s_l ⊙ a_l) + b_l[p_l]),   a_{l+1} = (U_{l+1}ᵀ Φ_l M_l) q_l,
    g   = (wᵀ Φ_L M_L) q_L + c,                      u = 1 + sin x + t g,

which is ``fastlrnr.numerics.jet_chain.JetChain`` with operators of width n: nothing has size N, and a
fast-phase step costs O(n K M) whatever the LRNR width. With n = N (Φ = I) it is the LRNR.

The snapshots are the state jets (value, ∂x, ∂t, ∂xx) of every layer at the points, for
the coefficient sets the builder is given (the hypernetwork's over a parameter grid, and
where the fast phase takes them), so the bases carry derivative information exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.eim import deim_indices
from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.jet_chain import JetChain, check_layers, exact_chain, layer1_inputs
from fastlrnr.numerics.lrnr import LRNRWeights


@dataclass(frozen=True)
class ReducedOperators:
    """The FastLRNR at its M collocation points (see the module docstring).

    x, t (M,); a1 (4, M, k_1): exact layer-1 inputs; for l = 1..L: Wout[l−1] = V_l[p_l] (n, k_l),
    bias[l−1] = b_l[p_l] (n,), p[l−1] (n,): the DEIM rows; for l = 2..L: Win[l−2] =
    (U_lᵀ Φ_{l−1} M_{l−1})ᵀ (n, k_l); w = (wᵀ Φ_L M_L)ᵀ (n,); c: the output bias."""

    x: np.ndarray
    t: np.ndarray
    a1: np.ndarray
    Wout: tuple[np.ndarray, ...]
    bias: tuple[np.ndarray, ...]
    Win: tuple[np.ndarray, ...]
    w: np.ndarray
    c: float
    p: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        L, n = len(self.Wout), self.w.shape[0]
        if len(self.bias) != L or len(self.p) != L or len(self.Win) != L - 1:
            raise ValueError(
                f"expected L = {L} entries of Wout, bias, p and L − 1 of Win; got "
                f"{len(self.bias)}, {len(self.p)}, {len(self.Win)}"
            )
        for l in range(L):
            if self.Wout[l].shape[0] != n or self.bias[l].shape != (n,) or self.p[l].shape != (n,):
                raise ValueError(
                    f"layer {l + 1}: expected Wout ({n}, k), bias ({n},), p ({n},); got "
                    f"{self.Wout[l].shape}, {self.bias[l].shape}, {self.p[l].shape}"
                )
        check_layers(self.x, self.t, self.a1, self.Wout, self.bias, (None,) + tuple(self.Win), self.w)

    @property
    def n(self) -> int:
        return int(self.w.shape[0])

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(int(W.shape[1]) for W in self.Wout)

    def chain(self, dtype=np.float64, *, family: PdeFamily) -> JetChain:
        """The reduced network as a JetChain in ``dtype``, for the residual of ``family``."""
        cast = lambda a: np.ascontiguousarray(a, dtype=dtype)
        return JetChain(
            self.x,
            self.t,
            cast(self.a1),
            tuple(map(cast, self.Wout)),
            tuple(map(cast, self.bias)),
            (None,) + tuple(map(cast, self.Win)),
            cast(self.w),
            float(self.c),
            family=family,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict for npz: x, t, a1, Wout1..L, bias1..L, p1..L, Win2..L, w, c (0-d)."""
        out = {"x": self.x, "t": self.t, "a1": self.a1, "w": self.w, "c": np.asarray(float(self.c))}
        for l in range(len(self.Wout)):
            out[f"Wout{l + 1}"], out[f"bias{l + 1}"], out[f"p{l + 1}"] = self.Wout[l], self.bias[l], self.p[l]
        for l, Win in enumerate(self.Win, start=2):
            out[f"Win{l}"] = Win
        return out

    @classmethod
    def from_arrays(cls, d) -> ReducedOperators:
        """Inverse of ``to_arrays``; raises KeyError/ValueError on a malformed dict."""
        L = sum(1 for k in d if re.fullmatch(r"Wout\d+", k))
        f = lambda k: np.ascontiguousarray(d[k], dtype=np.float64)
        return cls(
            f("x"),
            f("t"),
            f("a1"),
            tuple(f(f"Wout{l}") for l in range(1, L + 1)),
            tuple(f(f"bias{l}") for l in range(1, L + 1)),
            tuple(f(f"Win{l}") for l in range(2, L + 1)),
            f("w"),
            float(np.asarray(d["c"])),
            tuple(np.asarray(d[f"p{l}"]).astype(np.int64) for l in range(1, L + 1)),
        )


def _pod_from_gram(gram: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """POD basis (N, n) and singular values from the snapshot Gram matrix H Hᵀ (N, N)."""
    vals, vecs = np.linalg.eigh(gram)
    order = np.argsort(vals)[::-1]
    sing = np.sqrt(np.clip(vals[order], 0.0, None))
    return np.ascontiguousarray(vecs[:, order[:n]]), sing


def _state_columns(h: np.ndarray) -> np.ndarray:
    """State jets (4, R, M, N) → snapshot columns (N, 4·R·M)."""
    return h.reshape(-1, h.shape[-1]).T


def build_fastlrnr(
    weights: LRNRWeights,
    x: np.ndarray,
    t: np.ndarray,
    coeff_rows: np.ndarray,
    rank: int,
    heldout_rows: np.ndarray | None = None,
    chunk: int = 8,
    *,
    family: PdeFamily,
) -> tuple[ReducedOperators, dict]:
    """POD + DEIM of the state jets of layers 1..L at points x, t (M,).

    coeff_rows (S, P): the coefficient sets whose states are the snapshots; heldout_rows
    (H, P): sets for the held-out EIM error. Returns (ops, quality) where quality holds,
    per layer, the first 20 singular values and the relative EIM error on the training
    (and held-out) snapshots. Computed in float64 from the snapshot Gram matrices, so the
    memory does not grow with the number of snapshots."""
    w64 = weights if weights.A.dtype == np.float64 else weights.astype(np.float64)
    full = exact_chain(w64, x, t, dtype=np.float64, family=family)
    L, N = len(w64.U), w64.width
    if not (1 <= rank <= N):
        raise ValueError(f"rank must lie in [1, N = {N}], got {rank}")
    coeff_rows = np.atleast_2d(np.asarray(coeff_rows, dtype=np.float64))
    grams = [np.zeros((N, N)) for _ in range(L)]
    for lo in range(0, len(coeff_rows), chunk):
        for l, h in enumerate(full.hidden_states(coeff_rows[lo : lo + chunk])):
            H = _state_columns(h)
            grams[l] += H @ H.T
    Phis, ps, layers = [], [], []
    for l in range(L):
        Phi, sing = _pod_from_gram(grams[l], rank)
        p = deim_indices(Phi)
        Phis.append(Phi)
        ps.append(p)
        layers.append({"layer": l + 1, "singular_values": [float(v) for v in sing[:20]]})
    Ms = [np.linalg.inv(Phi[p]) for Phi, p in zip(Phis, ps)]
    ops = ReducedOperators(
        np.asarray(x, np.float64).copy(),
        np.asarray(t, np.float64).copy(),
        layer1_inputs(w64, x, t),
        tuple(V[p] for V, p in zip(w64.V, ps)),
        tuple(b[p] for b, p in zip(w64.b, ps)),
        tuple((w64.U[l].T @ Phis[l - 1] @ Ms[l - 1]).T for l in range(1, L)),
        Ms[-1].T @ (Phis[-1].T @ w64.w),
        float(w64.c),
        tuple(ps),
    )
    for name, rows in (("eim_error_train", coeff_rows), ("eim_error_heldout", heldout_rows)):
        errs = None if rows is None or len(rows) == 0 else _eim_errors(full, Phis, Ms, ps, np.atleast_2d(rows), chunk)
        for l in range(L):
            layers[l][name] = None if errs is None else errs[l]
    return ops, {"n": rank, "points": int(np.size(x)), "snapshot_sets": int(len(coeff_rows)), "layers": layers}


def _eim_errors(full: JetChain, Phis, Ms, ps, rows: np.ndarray, chunk: int) -> list[float]:
    """Relative Frobenius EIM error per layer over the state jets of ``rows``."""
    num = np.zeros(len(Phis))
    den = np.zeros(len(Phis))
    for lo in range(0, len(rows), chunk):
        for l, h in enumerate(full.hidden_states(rows[lo : lo + chunk])):
            H = _state_columns(h)
            approx = Phis[l] @ (Ms[l] @ H[ps[l]])
            num[l] += float(np.sum((H - approx) ** 2))
            den[l] += float(np.sum(H**2))
    return [float(np.sqrt(a / b)) if b > 0 else 0.0 for a, b in zip(num, den)]


def identity_operators(weights: LRNRWeights, x: np.ndarray, t: np.ndarray) -> ReducedOperators:
    """The FastLRNR with n = N (Φ = I, every row sampled): the LRNR itself, for tests."""
    w64 = weights if weights.A.dtype == np.float64 else weights.astype(np.float64)
    L, N = len(w64.U), w64.width
    rows = tuple(np.arange(N) for _ in range(L))
    return ReducedOperators(
        np.asarray(x, np.float64).copy(),
        np.asarray(t, np.float64).copy(),
        layer1_inputs(w64, x, t),
        tuple(w64.V),
        tuple(w64.b),
        tuple(w64.U[1:]),
        w64.w.copy(),
        float(w64.c),
        rows,
    )
