"""FastLRNR: the reduced network built by EIM/DEIM on the LRNR hidden states (method.md §4).

With POD bases Φ_l (N, n), DEIM rows p_l (n,) and M_l = (Φ_l[p_l])⁻¹ (n, n), the
reduced states c_l ∈ R^n (coordinates of h_l ≈ Φ_l c_l) follow the LRNR variant of
``core.lrnr`` exactly:

    c_0 = M_0 tanh(A[p_0] z + a[p_0])                                z = (cos x, sin x, t)
    c_l = M_l tanh(V_l[p_l] diag(s_l) (U_lᵀ Φ_{l−1}) c_{l−1} + b_l[p_l])     l = 1..L
    u   = 1 + sin x + t · ((wᵀ Φ_L) c_L + c)

Nothing has size N. With Φ_l a full basis of R^N (n = N) the FastLRNR is the LRNR.
The hidden states are sampled at space-time *sample points* and at their ±δ shifts in
x and t, so the bases also carry derivative information.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, asdict
from functools import cached_property
from typing import Sequence

import numpy as np

from core.eim import deim_indices, eim_interpolation_error, pod_basis
from core.lrnr import LRNRWeights, _tanh_jet, embed, lrnr_hidden_states, lrnr_jets
from core.pde import T_END, X_PERIOD


@dataclass(frozen=True)
class FastLRNRSettings:
    """How the FastLRNR is built.

    nx_s × nt_s sample points on [0, 2π] × [0, 1] (ends included); delta: the x/t shift
    of the derivative snapshots; rank: n, the EIM dimension of every layer;
    params_per_axis: the μ grid per active parameter used for the training snapshots
    (``Domain.grid``); heldout: number of random μ (drawn with ``seed``) for the
    held-out quality report.
    """

    nx_s: int = 4
    nt_s: int = 3
    delta: float = 1e-4
    rank: int = 5
    params_per_axis: int = 4
    heldout: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nx_s < 1 or self.nt_s < 1 or self.rank < 1 or self.params_per_axis < 1 or self.heldout < 0:
            raise ValueError(f"FastLRNRSettings: sizes must be positive, got {self}")
        if not (0.0 < self.delta < 0.1):
            raise ValueError(f"FastLRNRSettings: delta must lie in (0, 0.1), got {self.delta}")

    def to_dict(self) -> dict:
        return asdict(self)


def sample_points(settings: FastLRNRSettings) -> tuple[np.ndarray, np.ndarray]:
    """The nx_s × nt_s tensor grid as point lists x, t (m,), t-major (the first nx_s
    points are the t = 0 row)."""
    xs = np.linspace(0.0, X_PERIOD, settings.nx_s)
    ts = np.linspace(0.0, T_END, settings.nt_s)
    tt, xx = np.meshgrid(ts, xs, indexing="ij")
    return xx.ravel(), tt.ravel()


def parameter_sets(domain, settings: FastLRNRSettings) -> tuple[np.ndarray, np.ndarray]:
    """(mu_train (G, 3), mu_heldout (H, 3)): the snapshot grid over ``domain`` and
    ``settings.heldout`` uniform random sets drawn with ``settings.seed``."""
    rng = np.random.default_rng(settings.seed)
    return domain.grid(settings.params_per_axis), domain.sample(settings.heldout, rng)


def _check_points(x, t) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim != 1 or x.shape != t.shape:
        raise ValueError(f"expected x and t of the same shape (P,), got {x.shape} and {t.shape}")
    return x, t


def collect_snapshots(weights: LRNRWeights, coeff_sets: Sequence[Sequence[np.ndarray]],
                      x: np.ndarray, t: np.ndarray, delta: float) -> list[np.ndarray]:
    """Hidden-state snapshot matrices [H_0, ..., H_L], each (N, 5·m·len(coeff_sets)).

    For every coefficient set (a list of (k_l,)), the states at the m points (x, t),
    then at x + δ, x − δ, t + δ, t − δ, are appended as columns. Computed in float64.
    """
    if len(coeff_sets) == 0:
        raise ValueError("collect_snapshots: expected at least one coefficient set")
    x, t = _check_points(x, t)
    w64 = weights if weights.A.dtype == np.float64 else weights.astype(np.float64)
    xs = np.concatenate([x, x + delta, x - delta, x, x])
    ts = np.concatenate([t, t, t, t + delta, t - delta])
    per_layer: list[list[np.ndarray]] = [[] for _ in range(len(weights.U) + 1)]
    for s in coeff_sets:
        s = [np.asarray(sl, dtype=np.float64) for sl in s]
        for l, h in enumerate(lrnr_hidden_states(w64, s, xs, ts)):
            per_layer[l].append(h.T)
    return [np.ascontiguousarray(np.concatenate(cols, axis=1)) for cols in per_layer]


def _tup(arrs, dtype=np.float64):
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in arrs)


@dataclass(frozen=True)
class ReducedOperators:
    """The FastLRNR operators (method.md §4), all tiny (n ≈ 5, k_l ≈ 10).

    A0 (n, 3), a0 (n,): the sampled input layer;  M[l] (n, n), l = 0..L: (Φ_l[p_l])⁻¹;
    G[l−1] = U_lᵀ Φ_{l−1} (k_l, n), Vp[l−1] = V_l[p_l] (n, k_l), bp[l−1] = b_l[p_l] (n,),
    l = 1..L;  wr = wᵀ Φ_L (n,), c: output bias;  p[l] (n,): the DEIM rows (provenance);
    x_s, t_s (m,): the sample points the operators were built on (the fast phase's
    collocation points; t_s = 0 marks initial-condition points).
    """

    A0: np.ndarray
    a0: np.ndarray
    M: tuple[np.ndarray, ...]
    G: tuple[np.ndarray, ...]
    Vp: tuple[np.ndarray, ...]
    bp: tuple[np.ndarray, ...]
    wr: np.ndarray
    c: float
    p: tuple[np.ndarray, ...]
    x_s: np.ndarray
    t_s: np.ndarray

    def __post_init__(self) -> None:
        n = self.A0.shape[0]
        if self.x_s.ndim != 1 or self.x_s.shape != self.t_s.shape or self.x_s.size == 0:
            raise ValueError(f"expected sample points x_s, t_s of shape (m,), got {self.x_s.shape}, {self.t_s.shape}")
        L = len(self.G)
        if self.A0.shape != (n, 3) or self.a0.shape != (n,) or self.wr.shape != (n,):
            raise ValueError(f"expected A0 (n, 3), a0 (n,), wr (n,); got {self.A0.shape}, {self.a0.shape}, {self.wr.shape}")
        if L < 1 or len(self.M) != L + 1 or len(self.Vp) != L or len(self.bp) != L or len(self.p) != L + 1:
            raise ValueError(f"expected L ≥ 1 layers with M, p of length L + 1 and G, Vp, bp of length L; got "
                             f"{len(self.M)}, {len(self.p)}, {len(self.G)}, {len(self.Vp)}, {len(self.bp)}")
        for l, (M, p) in enumerate(zip(self.M, self.p)):
            if M.shape != (n, n) or p.shape != (n,):
                raise ValueError(f"layer {l}: expected M ({n}, {n}) and p ({n},), got {M.shape}, {p.shape}")
        for l, (G, Vp, bp) in enumerate(zip(self.G, self.Vp, self.bp), start=1):
            if G.ndim != 2 or G.shape[1] != n or Vp.shape != (n, G.shape[0]) or bp.shape != (n,):
                raise ValueError(f"layer {l}: expected G (k, {n}), Vp ({n}, k), bp ({n},); "
                                 f"got {G.shape}, {Vp.shape}, {bp.shape}")

    @property
    def n(self) -> int:
        return int(self.A0.shape[0])

    @property
    def ranks(self) -> tuple[int, ...]:
        """(k_1, ..., k_L), as in ``LRNRWeights.ranks``."""
        return tuple(int(G.shape[0]) for G in self.G)

    @property
    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(x_s, t_s): the sample points."""
        return self.x_s, self.t_s

    @cached_property
    def folded(self) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """(Gt, wt): Gt[l−1] = G_l M_{l−1} (k_l, n) and wt = M_Lᵀ wr (n,), the operators
        acting on the sampled states q_l = tanh(·) instead of on c_l = M_l q_l."""
        Gt = tuple(np.ascontiguousarray(G @ M) for G, M in zip(self.G, self.M[:-1]))
        return Gt, np.ascontiguousarray(self.M[-1].T @ self.wr)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict for npz: A0, a0, M0..ML, p0..pL, G1..GL, Vp1..VpL, bp1..bpL, wr, c (0-d), x_s, t_s."""
        out = {"A0": self.A0, "a0": self.a0, "wr": self.wr, "c": np.asarray(float(self.c)),
               "x_s": self.x_s, "t_s": self.t_s}
        for l, (M, p) in enumerate(zip(self.M, self.p)):
            out[f"M{l}"], out[f"p{l}"] = M, p
        for l, (G, Vp, bp) in enumerate(zip(self.G, self.Vp, self.bp), start=1):
            out[f"G{l}"], out[f"Vp{l}"], out[f"bp{l}"] = G, Vp, bp
        return out

    @classmethod
    def from_arrays(cls, d) -> "ReducedOperators":
        """Inverse of ``to_arrays``; raises KeyError/ValueError on a malformed dict."""
        L = sum(1 for k in d if re.fullmatch(r"G\d+", k))
        g = lambda k: np.asarray(d[k])
        return cls(g("A0").astype(np.float64), g("a0").astype(np.float64),
                   _tup(g(f"M{l}") for l in range(L + 1)), _tup(g(f"G{l}") for l in range(1, L + 1)),
                   _tup(g(f"Vp{l}") for l in range(1, L + 1)), _tup(g(f"bp{l}") for l in range(1, L + 1)),
                   g("wr").astype(np.float64), float(g("c")), _tup((g(f"p{l}") for l in range(L + 1)), np.int64),
                   g("x_s").astype(np.float64), g("t_s").astype(np.float64))


def build_reduced_operators(weights: LRNRWeights, Phis: Sequence[np.ndarray], ps: Sequence[np.ndarray],
                            points: tuple[np.ndarray, np.ndarray] | None = None) -> ReducedOperators:
    """Operators from bases Phis[l] (N, n) and DEIM rows ps[l] (n,), l = 0..L (float64).

    points: the sample points (x, t) the bases were built on; default: the grid of
    ``FastLRNRSettings()``."""
    x_s, t_s = _check_points(*(points if points is not None else sample_points(FastLRNRSettings())))
    L = len(weights.U)
    N = weights.width
    if len(Phis) != L + 1 or len(ps) != L + 1:
        raise ValueError(f"expected {L + 1} bases and index sets (layers 0..{L}), got {len(Phis)} and {len(ps)}")
    Phis = [np.asarray(P, dtype=np.float64) for P in Phis]
    ps = [np.asarray(p) for p in ps]
    n = Phis[0].shape[1] if Phis[0].ndim == 2 else -1
    for l, (Phi, p) in enumerate(zip(Phis, ps)):
        if Phi.shape != (N, n) or p.shape != (n,) or not np.issubdtype(p.dtype, np.integer):
            raise ValueError(f"layer {l}: expected Phi ({N}, {n}) and integer p ({n},), got {Phi.shape}, {p.dtype} {p.shape}")
        if len(np.unique(p)) != n or p.min() < 0 or p.max() >= N:
            raise ValueError(f"layer {l}: expected {n} distinct rows in [0, {N}), got {p.tolist()}")
    f64 = lambda a: np.asarray(a, dtype=np.float64)
    A, a, w = f64(weights.A), f64(weights.a), f64(weights.w)
    M = tuple(np.linalg.inv(Phi[p]) for Phi, p in zip(Phis, ps))
    G = tuple(f64(U).T @ Phi for U, Phi in zip(weights.U, Phis[:-1]))
    Vp = tuple(f64(V)[p] for V, p in zip(weights.V, ps[1:]))
    bp = tuple(f64(b)[p] for b, p in zip(weights.b, ps[1:]))
    return ReducedOperators(A[ps[0]], a[ps[0]], _tup(M), _tup(G), _tup(Vp), _tup(bp), w @ Phis[-1],
                            float(weights.c), _tup(ps, np.int64), x_s.copy(), t_s.copy())


def check_reduced_coefficients(ops: ReducedOperators, s: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate s[l] of shape (k_l,) or (B, k_l) (same leading shape); float64 copies."""
    if len(s) != len(ops.ranks):
        raise ValueError(f"expected {len(ops.ranks)} coefficient vectors, got {len(s)}")
    out = [np.asarray(sl, dtype=np.float64) for sl in s]
    lead = out[0].shape[:-1]
    for l, (sl, k) in enumerate(zip(out, ops.ranks), start=1):
        if sl.ndim not in (1, 2) or sl.shape[-1] != k or sl.shape[:-1] != lead:
            raise ValueError(f"layer {l}: expected coefficients of shape {lead + (k,)}, got {sl.shape}")
    return out


def fast_jets(ops: ReducedOperators, s: Sequence[np.ndarray], x: np.ndarray, t: np.ndarray):
    """Exact (u, u_x, u_t, u_xx) of the FastLRNR at points x, t (P,): each (P,), or (B, P)
    when every s[l] is (B, k_l). Forward-mode jets, float64."""
    s = check_reduced_coefficients(ops, s)
    x, t = _check_points(x, t)
    zero = np.zeros_like(x)
    z = embed(x, t)
    z_x = np.stack([-np.sin(x), np.cos(x), zero], axis=-1)
    z_xx = np.stack([-np.cos(x), -np.sin(x), zero], axis=-1)
    y = z @ ops.A0.T + ops.a0
    jets = np.stack(_tanh_jet(y, z_x @ ops.A0.T, np.broadcast_to(ops.A0[:, 2], y.shape), z_xx @ ops.A0.T))
    if s[0].ndim == 2:  # (4, P, n) → (4, B, P, n)
        jets = np.broadcast_to(jets[:, None], (4, s[0].shape[0]) + y.shape)
    c = jets @ ops.M[0].T
    for G, Vp, bp, M, sl in zip(ops.G, ops.Vp, ops.bp, ops.M[1:], s):
        r = (c @ G.T) * (sl[:, None, :] if sl.ndim == 2 else sl)
        lin = r @ Vp.T
        c = np.stack(_tanh_jet(lin[0] + bp, lin[1], lin[2], lin[3])) @ M.T
    g = c @ ops.wr
    g[0] += ops.c
    u = 1.0 + np.sin(x) + t * g[0]
    u_x = np.cos(x) + t * g[1]
    u_t = g[0] + t * g[2]
    u_xx = -np.sin(x) + t * g[3]
    return u, u_x, u_t, u_xx


def _agreement(ref, approx) -> dict:
    names = ("u", "u_x", "u_t", "u_xx")
    out = {}
    for name, r, a in zip(names, ref, approx):
        diff = np.abs(np.asarray(a, dtype=np.float64) - r)
        norm = float(np.linalg.norm(r))
        out[name] = {"max_abs": float(diff.max()), "max_ref": float(np.abs(r).max()),
                     "rel_l2": float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))}
    return out


def build_fastlrnr(weights: LRNRWeights, coeff_sets_train: Sequence[Sequence[np.ndarray]],
                   coeff_sets_heldout: Sequence[Sequence[np.ndarray]],
                   settings: FastLRNRSettings = FastLRNRSettings()) -> tuple[ReducedOperators, dict]:
    """POD + DEIM per layer on training snapshots, then a quality report.

    coeff_sets_*: lists of coefficient sets, each a list of (k_l,). Returns
    (ops, quality); quality (JSON-serialisable) holds the settings, per layer the first
    20 singular values and the EIM error on training and held-out snapshots, and the
    agreement of u, u_x, u_t, u_xx between FastLRNR and LRNR at the sample points for
    the held-out sets (max_abs, max_ref, rel_l2); held-out entries are None when there
    are no held-out sets.
    """
    x, t = sample_points(settings)
    train = collect_snapshots(weights, coeff_sets_train, x, t, settings.delta)
    heldout = (collect_snapshots(weights, coeff_sets_heldout, x, t, settings.delta)
               if len(coeff_sets_heldout) else None)
    Phis, ps, layers = [], [], []
    for l, H in enumerate(train):
        Phi, sing = pod_basis(H, settings.rank)
        p = deim_indices(Phi)
        Phis.append(Phi)
        ps.append(p)
        layers.append({
            "layer": l,
            "singular_values": [float(v) for v in sing[:20]],
            "eim_error_train": eim_interpolation_error(Phi, p, H),
            "eim_error_heldout": None if heldout is None else eim_interpolation_error(Phi, p, heldout[l]),
        })
    ops = build_reduced_operators(weights, Phis, ps, (x, t))
    agreement = None
    if heldout is not None:
        s_batch = [np.stack([np.asarray(cs[l], dtype=np.float64) for cs in coeff_sets_heldout])
                   for l in range(len(weights.U))]
        w64 = weights if weights.A.dtype == np.float64 else weights.astype(np.float64)
        agreement = _agreement(lrnr_jets(w64, s_batch, x, t), fast_jets(ops, s_batch, x, t))
    quality = {"settings": settings.to_dict(), "n": settings.rank, "sample_points": int(x.size),
               "snapshots_train": int(train[0].shape[1]),
               "snapshots_heldout": None if heldout is None else int(heldout[0].shape[1]),
               "layers": layers, "heldout_agreement": agreement}
    return ops, quality
