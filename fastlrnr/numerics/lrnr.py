"""The full LRNR in numpy: forward pass and exact input jets (docs/method.md, “The LRNR”).

Variant used everywhere in this project (recorded in artifacts as ``ANSATZ``):

    z   = (cos x, sin x, t)                        periodicity in x is exact
    h_0 = tanh(A z + a)                            A: (N, 3), a: (N,)
    h_l = tanh(V_l diag(s_l) U_lᵀ h_{l−1} + b_l)   U_l, V_l: (N, k_l), b_l: (N,)
    g   = wᵀ h_L + c
    u   = u_0(x) + t · g                           the initial condition is exact

Row convention: points are rows, so a hidden state batch is (..., P, N).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import PdeFamily


@dataclass(frozen=True)
class LRNRWeights:
    """Fixed LRNR parameters after meta-learning (and truncation).

    A (N, 3), a (N,), U[l] (N, k_l), V[l] (N, k_l), b[l] (N,), w (N,), c scalar.
    """

    A: np.ndarray
    a: np.ndarray
    U: tuple[np.ndarray, ...]
    V: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]
    w: np.ndarray
    c: float

    def __post_init__(self) -> None:
        N = self.A.shape[0]
        if self.A.shape != (N, 3) or self.a.shape != (N,) or self.w.shape != (N,):
            raise ValueError(f"expected A (N, 3), a (N,), w (N,); got {self.A.shape}, {self.a.shape}, {self.w.shape}")
        if not (len(self.U) == len(self.V) == len(self.b)):
            raise ValueError("U, V, b must have one entry per hidden layer")
        for l, (U, V, b) in enumerate(zip(self.U, self.V, self.b), start=1):
            if U.ndim != 2 or U.shape[0] != N or V.shape != U.shape or b.shape != (N,):
                raise ValueError(f"layer {l}: expected U, V (N={N}, k) and b (N,), got {U.shape}, {V.shape}, {b.shape}")

    @property
    def width(self) -> int:
        return int(self.A.shape[0])

    @property
    def ranks(self) -> tuple[int, ...]:
        """(k_1, ..., k_L): surviving coefficient dimension per layer."""
        return tuple(int(U.shape[1]) for U in self.U)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict for npz: A, a, U1..UL, V1..VL, b1..bL, w, c (0-d)."""
        out = {"A": self.A, "a": self.a, "w": self.w, "c": np.asarray(self.c)}
        for l, (U, V, b) in enumerate(zip(self.U, self.V, self.b), start=1):
            out[f"U{l}"], out[f"V{l}"], out[f"b{l}"] = U, V, b
        return out

    @classmethod
    def from_arrays(cls, d) -> LRNRWeights:
        """Inverse of ``to_arrays``; raises KeyError/ValueError on a malformed dict."""
        L = sum(1 for k in d if re.fullmatch(r"U\d+", k))
        return cls(
            np.asarray(d["A"]),
            np.asarray(d["a"]),
            tuple(np.asarray(d[f"U{l}"]) for l in range(1, L + 1)),
            tuple(np.asarray(d[f"V{l}"]) for l in range(1, L + 1)),
            tuple(np.asarray(d[f"b{l}"]) for l in range(1, L + 1)),
            np.asarray(d["w"]),
            float(d["c"]),
        )

    def astype(self, dtype) -> LRNRWeights:
        cast = lambda arr: np.ascontiguousarray(arr, dtype=dtype)
        return LRNRWeights(
            cast(self.A),
            cast(self.a),
            tuple(map(cast, self.U)),
            tuple(map(cast, self.V)),
            tuple(map(cast, self.b)),
            cast(self.w),
            float(self.c),
        )


def coefficient_rows(
    ranks: Sequence[int], s, dtype=np.float64, require_finite: bool = False
) -> tuple[np.ndarray, bool]:
    """Coefficients in either of the project's forms → rows (R, P) in ``dtype`` (P = Σ k_l),
    and whether they were one set.

    ``s`` is rows (R, P) or one row (P,) as an array, or a list with one array per hidden layer,
    s[l] of shape (k_l,) or (R, k_l) with the same R for every layer. Raises ValueError naming
    the layer at fault (and, with ``require_finite``, for a value that is not finite)."""
    ranks = tuple(int(k) for k in ranks)
    L, P = len(ranks), sum(ranks)
    if isinstance(s, np.ndarray):
        if s.ndim not in (1, 2) or s.shape[-1] != P:
            raise ValueError(f"expected coefficient rows of shape (R, {P}) or ({P},), got {s.shape}")
        single = s.ndim == 1
        S = np.asarray(s, dtype=dtype).reshape(-1, P)
    else:
        if len(s) != L:
            raise ValueError(
                f"expected {L} coefficient vectors (a list of {L} arrays, one per layer, ranks {ranks}), got {len(s)}"
            )
        parts = [np.asarray(sl) for sl in s]
        lead = parts[0].shape[:-1] if parts[0].ndim in (1, 2) else None
        for l, (sl, k) in enumerate(zip(parts, ranks), start=1):
            if lead is None or sl.ndim not in (1, 2) or sl.shape != lead + (k,):
                want = (("R",) if lead is None else lead) + (k,)
                raise ValueError(f"layer {l}: expected coefficients of shape {want} ((k,) or (R, k)), got {sl.shape}")
        single = not lead
        S = np.concatenate([sl.reshape(-1, k).astype(dtype, copy=False) for sl, k in zip(parts, ranks)], axis=1)
    if require_finite and not np.all(np.isfinite(S)):
        raise ValueError("coefficients must be finite")
    return S, single


def split_layers(S: np.ndarray, ranks: Sequence[int]) -> list[np.ndarray]:
    """Coefficient rows (R, P) or one row (P,) → per layer (R, k_l) or (k_l,) (views)."""
    return np.split(S, np.cumsum(ranks)[:-1], axis=-1)


def _layer_coefficients(weights: LRNRWeights, s) -> list[np.ndarray]:
    """``s`` (either form) per layer in the weights' dtype: (k_l,) for one set, else (R, k_l)."""
    S, single = coefficient_rows(weights.ranks, s, weights.A.dtype)
    return split_layers(S[0] if single else S, weights.ranks)


def embed(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(P,), (P,) → (P, 3) embedding (cos x, sin x, t)."""
    return np.stack([np.cos(x), np.sin(x), t], axis=-1)


def _low_rank(h: np.ndarray, U: np.ndarray, V: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(..., P, N) → (..., P, N): rows of h mapped by V diag(s) Uᵀ; s (k,) or (B, k)."""
    r = h @ U
    r = r * (s[..., None, :] if s.ndim == 2 else s)
    return r @ V.T


def _points(x, t, dtype):
    x = np.asarray(x, dtype=dtype)
    t = np.asarray(t, dtype=dtype)
    if x.ndim != 1 or x.shape != t.shape:
        raise ValueError(f"expected x and t of the same shape (P,), got {x.shape} and {t.shape}")
    return x, t


def lrnr_forward(
    weights: LRNRWeights, s: Sequence[np.ndarray], x: np.ndarray, t: np.ndarray, family: PdeFamily
) -> np.ndarray:
    """u at points (x_p, t_p): x, t (P,) → (P,), or (B, P) when each s[l] is (B, k_l); u0 is
    ``family``'s initial condition.

    Computed in the weights' dtype (cast them once with ``astype``)."""
    s = _layer_coefficients(weights, s)
    x, t = _points(x, t, weights.A.dtype)
    h = np.tanh(embed(x, t) @ weights.A.T + weights.a)
    for U, V, b, sl in zip(weights.U, weights.V, weights.b, s):
        h = np.tanh(_low_rank(h, U, V, sl) + b)
    g = h @ weights.w + weights.c
    return family.initial_condition(x) + t * g


def lrnr_jets(weights: LRNRWeights, s: Sequence[np.ndarray], x: np.ndarray, t: np.ndarray, family: PdeFamily):
    """Exact (u, u_x, u_t, u_xx) at points, each (P,) or (B, P); forward-mode jets of
    ``family``'s ansatz u = u0(x) + t g.

    Derivatives of tanh: h' = (1 − h²) y', h'' = (1 − h²)(y'' − 2 h y'²)."""
    s = _layer_coefficients(weights, s)
    x, t = _points(x, t, weights.A.dtype)
    h, h_x, h_t, h_xx = layer0_jets(weights, x, t)
    if s[0].ndim == 2:  # one coefficient set per batch row: give the states a batch axis
        lead = (s[0].shape[0],) + h.shape
        h, h_x, h_t, h_xx = (np.broadcast_to(v, lead) for v in (h, h_x, h_t, h_xx))
    for U, V, b, sl in zip(weights.U, weights.V, weights.b, s):
        stacked = np.stack(np.broadcast_arrays(h, h_x, h_t, h_xx))  # (4, ..., P, N)
        lin = _low_rank(stacked, U, V, sl)
        h, h_x, h_t, h_xx = _tanh_jet(lin[0] + b, lin[1], lin[2], lin[3])
    w, c = weights.w, weights.c
    g, g_x, g_t, g_xx = h @ w + c, h_x @ w, h_t @ w, h_xx @ w
    return family.ansatz_jets(x, t, g, g_x, g_t, g_xx)


def layer0_jets(weights: LRNRWeights, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """h_0 = tanh(A z + a) and its x, t, xx derivatives at points x, t (P,) (already in the
    weights' dtype): four (P, N) arrays. Independent of the coefficients."""
    zero = np.zeros_like(x)
    z_x = np.stack([-np.sin(x), np.cos(x), zero], axis=-1)
    z_xx = np.stack([-np.cos(x), -np.sin(x), zero], axis=-1)
    A = weights.A
    y = embed(x, t) @ A.T + weights.a
    return _tanh_jet(y, z_x @ A.T, np.broadcast_to(A[:, 2], y.shape), z_xx @ A.T)


def _tanh_jet(y, y_x, y_t, y_xx):
    h = np.tanh(y)
    d = 1.0 - h * h
    return h, d * y_x, d * y_t, d * (y_xx - 2.0 * h * y_x * y_x)


def lrnr_hidden_states(weights: LRNRWeights, s: Sequence[np.ndarray], x: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """[h_0, ..., h_L], each (P, N) (single coefficient set): the EIM snapshots."""
    s = _layer_coefficients(weights, s)
    if s[0].ndim != 1:
        raise ValueError("lrnr_hidden_states takes one coefficient set (each s[l] of shape (k_l,))")
    x, t = _points(x, t, weights.A.dtype)
    h = np.tanh(embed(x, t) @ weights.A.T + weights.a)
    states = [h]
    for U, V, b, sl in zip(weights.U, weights.V, weights.b, s):
        h = np.tanh(_low_rank(h, U, V, sl) + b)
        states.append(h)
    return states
