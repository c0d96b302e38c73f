"""The SPInProp fast phase (method.md §5): adapt the coefficients s to one query μ
using only the FastLRNR, then judge the result with the full LRNR.

Objective, per query (row), on the FastLRNR sample points (x_i, t_i):

    J(s) = Σ_{t_i > 0} |R[u_fast](x_i, t_i)| + Σ_{t_i = 0} |u_fast(x_i, 0) − u_0(x_i)|
           + λ_loc Σ_l ‖s_l − ŝ_l‖₁,          R[u] = u_t + β u_x − ν u_xx − ρ u (1 − u)

with the subgradient sign(0) = 0. (With this project's ansatz the t = 0 term is
identically zero; it is kept for generality.) The gradient is a hand-written reverse
pass through the forward-mode jets of the FastLRNR: cost O(n K L) per point,
independent of the LRNR width N.

``run_fast_phase`` runs Adam (coefficients projected onto s ≥ 0 after each step, as
s = ReLU(·) in the model) for every λ_loc candidate and every query in ONE batch of
B·C rows, then evaluates the candidates' coefficients — and ŝ — in the full LRNR on a
fixed, seeded set of interior check points and keeps, per query, the candidate with
the smallest mean |PDE residual|, or ŝ when none beats it. So λ_loc is chosen
automatically and the result is never worse than the hypernetwork in that a-posteriori
measure.

Speed (benchmarks/fast_phase_step.py): a step is ~100 numpy calls on tiny arrays, so
its cost is call overhead more than arithmetic — batching rows (λ candidates, queries)
is nearly free up to a few dozen rows. The check, ∝ (judged sets) · check_points · N,
dominates for wide LRNRs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Sequence

import numpy as np

from core.fastlrnr import ReducedOperators, check_reduced_coefficients
from core.lrnr import LRNRWeights, _tanh_jet, embed, lrnr_jets
from core.pde import T_END, X_PERIOD, as_param_array, initial_condition, residual


@dataclass(frozen=True)
class FastPhaseSettings:
    """Fast-phase settings.

    epochs: Adam steps per candidate (paper: 400).
    lr: RELATIVE Adam step size: coefficients of layer l of a query move by about
        lr · max(max_i ŝ_{l,i}, lr_floor · max over all layers of ŝ) per step (lr ·
        lr_floor when ŝ is all zero), so one default fits models whose coefficient
        scales differ. 1e-2 lets a coefficient travel up to ~4× its layer's largest
        coefficient in 400 steps.
    betas, eps: Adam's (eps in units of the gradient, as usual).
    lambdas: λ_loc candidates, all run in one batch: 1, 3, 10, 30 (the paper hand-picked
        values from ~0.1 to 18 per query). On the shipped models no candidate below 10 was
        ever accepted (docs/evaluation.md); the former grid 0.03 … 30 of 7 values gave the
        same answers on the 20 evaluation sets at ~25% more time per query.
    check_epochs: after which Adam steps the iterates are judged (each entry multiplies
        the check cost). Default: the final iterate only — a large λ_loc acts like an
        early stop, so the λ grid already spans "how far from ŝ".
    check_points: interior points (x ~ U[0, 2π), t ~ U(0, 1], drawn with ``seed``) on
        which the full LRNR residual is measured; the check costs ∝ check_points · N ·
        (C·len(check_epochs) + 1) per query.
    min_improvement: a candidate must lower the mean |residual| of ŝ by this relative
        amount to be accepted.
    """

    epochs: int = 400
    lr: float = 1e-2
    lr_floor: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lambdas: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
    check_epochs: tuple[int, ...] | None = None
    check_points: int = 64
    min_improvement: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.lr <= 0 or self.lr_floor <= 0 or self.eps <= 0 or self.check_points < 1:
            raise ValueError(f"FastPhaseSettings: epochs, lr, lr_floor, eps, check_points must be positive: {self}")
        if not (0 <= self.betas[0] < 1 and 0 <= self.betas[1] < 1):
            raise ValueError(f"FastPhaseSettings: betas must lie in [0, 1), got {self.betas}")
        if len(self.lambdas) == 0 or min(self.lambdas) < 0:
            raise ValueError(f"FastPhaseSettings: need at least one λ ≥ 0, got {self.lambdas}")
        if any(not (1 <= e <= self.epochs) for e in self.epochs_checked):
            raise ValueError(f"FastPhaseSettings: check_epochs must lie in [1, epochs], got {self.check_epochs}")
        if not (0 <= self.min_improvement < 1):
            raise ValueError(f"FastPhaseSettings: min_improvement must lie in [0, 1), got {self.min_improvement}")

    @property
    def epochs_checked(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.check_epochs))) if self.check_epochs else (self.epochs,)


@dataclass(frozen=True)
class FastPhaseResult:
    """One query's outcome.

    s: coefficients to use (list of (k_l,)); lam, epoch: the winning candidate (None
    when ŝ was kept); J_before/J_after: FastLRNR objective at ŝ and at s, both with the
    chosen λ (J_after == J_before when ŝ was kept); residual_before/after: mean |R| of
    the full LRNR on the check points for ŝ and s; candidates: (λ, epoch, residual)
    for every candidate judged; fast_ms/check_ms: wall time of the batched Adam loop
    and of the batched check (shared by all queries of one call).
    """

    s: list[np.ndarray]
    lam: float | None
    epoch: int | None
    J_before: float
    J_after: float
    residual_before: float
    residual_after: float
    accepted: bool
    candidates: tuple[tuple[float, int, float], ...]
    fast_ms: float
    check_ms: float


class _Kernel:
    """J and ∂J/∂s for R independent rows (own μ, λ_loc, ŝ): forward-mode jets of the
    FastLRNR and a hand-written reverse pass.

    Built for many small steps: everything that does not depend on s is precomputed,
    every array is preallocated, and a step is a fixed *tape* of numpy calls on
    pre-sliced views (no allocation, no attribute lookups, no autograd).

    Layout: jets outermost, rows innermost — a jet array is (J, n, M), M = m·R columns
    (point p, row r) — so the linear maps are matmuls with shared weights and the jet
    algebra runs on contiguous blocks. J = 4 jets (u, ∂x, ∂t, ∂xx), or 3 when ν = 0 in
    every row (no u_xx needed). Coefficients are columns: ``S`` (1 + Σk, R), whose first
    row is the constant 1 that carries layer 1's bias; ``s`` = S[1:] is the live view.

    Layer 1 is linear in s_1 (its input does not depend on s): Y_1 = T1 S[:1 + k1].
    Layer l ≥ 2: Y_l = Vp_l (s_l ⊙ (Gt_l Q_{l−1})) + b_l, Gt_l = G_l M_{l−1}: the EIM
    maps M are folded into the next layer, so Q_l are the jets of the sampled hidden
    states q_l = tanh(·) (c_l = M_l q_l), and the output is wt·q_L + c, wt = M_Lᵀ wr.
    The loss e (M,) is linear in the output jets G plus ρ t² G_0² (the reaction term
    expanded), so e = Σ_rows Kaug ⊙ [G; 1; G_0²].
    """

    def __init__(self, ops: ReducedOperators, x: np.ndarray, t: np.ndarray, mu: np.ndarray,
                 lam: np.ndarray, s_hat: np.ndarray):
        R, m, n = mu.shape[0], x.size, ops.n
        M = m * R
        ranks = ops.ranks
        L, ktot, k1 = len(ranks), int(sum(ranks)), ranks[0]
        J = 4 if np.any(mu[:, 1] != 0) else 3
        reaction = bool(np.any(mu[:, 2] != 0))
        self.R, self.m, self.n, self.M, self.J, self.ranks = R, m, n, M, J, ranks
        Gt, wt = ops.folded
        f64 = np.float64
        # ---- s-independent precomputation -------------------------------------------
        zero = np.zeros_like(x)
        z_x = np.stack([-np.sin(x), np.cos(x), zero], axis=-1)
        z_xx = np.stack([-np.cos(x), -np.sin(x), zero], axis=-1)
        y0 = embed(x, t) @ ops.A0.T + ops.a0
        q0 = np.stack(_tanh_jet(y0, z_x @ ops.A0.T, np.broadcast_to(ops.A0[:, 2], y0.shape), z_xx @ ops.A0.T))
        r1 = q0[:J] @ Gt[0].T                                                 # (J, m, k1)
        T1 = np.zeros((J, n, m, 1 + k1))
        T1[0, :, :, 0] = ops.bp[0][:, None]
        T1[..., 1:] = np.einsum("jpk,ik->jipk", r1, ops.Vp[0])
        T1 = T1.reshape(-1, 1 + k1)
        T1T = np.ascontiguousarray(T1[:, 1:].T)
        # loss: interior e = R[u] = Σ_j κ_j U_j + ρ u², t = 0 points e = u − u0, with jets
        # U_j = base_j + t G_j (+ G_0 for u_t), base = jets of u0 + t c
        beta, nu, rho = (np.broadcast_to(mu[:, i], (m, R)) for i in range(3))
        ic = np.broadcast_to((t == 0.0)[:, None], (m, R))
        kappa = np.stack([np.where(ic, 1.0, -rho), np.where(ic, 0.0, beta),
                          np.where(ic, 0.0, 1.0), np.where(ic, 0.0, -nu)])        # (4, m, R)
        rho_p = np.where(ic, 0.0, rho)
        u0 = initial_condition(x)[:, None]
        tc = t[:, None]
        base = np.stack([u0 + tc * ops.c, np.cos(x)[:, None], np.full_like(u0, ops.c), -np.sin(x)[:, None]])
        rows = J + 1 + int(reaction)
        Kaug = np.empty((rows, m, R))
        Kaug[:J] = kappa[:J] * tc
        Kaug[0] += kappa[2] + 2.0 * rho_p * base[0] * tc
        Kaug[J] = (kappa * base).sum(axis=0) - np.where(ic, u0, 0.0) + rho_p * base[0] ** 2
        if reaction:
            Kaug[J + 1] = rho_p * tc * tc
        Kaug = Kaug.reshape(rows, M)
        self.s_hat = np.ascontiguousarray(s_hat.T, dtype=f64)                   # (Σk, R)
        lam_full = np.ascontiguousarray(np.broadcast_to(np.asarray(lam, dtype=f64), (ktot, R)))
        # ---- buffers ----------------------------------------------------------------
        self.S = S = np.ones((1 + ktot, R))
        self.s = s = S[1:]
        s_t = np.empty((ktot, M))                                               # s tiled over points
        jet = (J, n, M)
        Y, Q, C = ([np.empty(jet) for _ in range(L)] for _ in range(3))        # C = ∂Q/∂y, C[0] = D
        P = [np.empty((n, M)) for _ in range(L)]                                # −2 h y_x
        r = [np.empty((J, k, M)) for k in ranks]
        rs = [np.empty((J, k, M)) for k in ranks]
        Ks = [np.empty((k, m, R)) for k in ranks]
        m2h, tmp = np.empty((n, M)), np.empty((n, M))
        prod, Ybar, Qbar = np.empty(jet), np.empty(jet), np.empty(jet)
        Gaug = np.ones((rows, M))
        KG = np.empty((rows, M))
        self.e = e = np.empty(M)
        ebar, em = np.empty(M), np.empty(M)
        Gbar = np.empty((J, M))
        self.grad = grad = np.empty((ktot, R))
        sdiff = np.empty((ktot, R))
        ones_m = np.ones((1, m))
        off = np.concatenate([[0], np.cumsum(ranks)]).astype(int)
        blk = [slice(off[l], off[l + 1]) for l in range(L)]
        mul, add, sub, mm, red = np.multiply, np.add, np.subtract, np.matmul, np.add.reduce

        def tanh_fwd(l):
            y, q, c, p, h, D = Y[l], Q[l], C[l], P[l], Q[l][0], C[l][0]
            tape = [(np.tanh, (y[0], h)), (mul, (h, h, D)), (sub, (1.0, D, D)),
                    (mul, (D, y[1:], q[1:])), (mul, (h, -2.0, m2h))]
            if J == 4:   # h_xx = D y_xx − 2h h_x y_x
                tape += [(mul, (m2h, y[1], p)), (mul, (p, q[1], tmp)), (add, (q[3], tmp, q[3]))]
            tape += [(mul, (m2h, q[1:], c[1:]))]                                # ∂h_j/∂y = −2h h_j
            if J == 4:   # ∂h_xx/∂y = −2h h_xx − 2 h_x²
                tape += [(mul, (q[1], q[1], tmp)), (sub, (c[3], tmp, c[3])), (sub, (c[3], tmp, c[3]))]
            return tape

        def tanh_bwd(l):   # Ybar ← ∂J/∂Y_l from Qbar = ∂J/∂Q_l
            c, p = C[l], P[l]
            tape = [(mul, (c[0], Qbar[1:], Ybar[1:]))]
            if J == 4:   # ∂h_xx/∂y_x = 2 P D
                tape += [(mul, (p, Ybar[3], tmp)), (add, (Ybar[1], tmp, Ybar[1])), (add, (Ybar[1], tmp, Ybar[1]))]
            return tape + [(mul, (Qbar, c, prod)), (red, (prod, 0, None, Ybar[0]))]

        fwd = [(np.copyto, (s_t.reshape(ktot, m, R), s[:, None, :])),
               (mm, (T1, S[:1 + k1], Y[0].reshape(-1, R)))] + tanh_fwd(0)
        for l in range(1, L):
            fwd += [(mm, (Gt[l], Q[l - 1], r[l])), (mul, (r[l], s_t[blk[l]], rs[l])),
                    (mm, (ops.Vp[l], rs[l], Y[l])), (add, (Y[l][0], ops.bp[l][:, None], Y[l][0]))] + tanh_fwd(l)
        fwd += [(mm, (wt, Q[-1], Gaug[:J]))]
        if reaction:
            fwd += [(mul, (Gaug[0], Gaug[0], Gaug[J + 1]))]
        fwd += [(mul, (Kaug, Gaug, KG)), (red, (KG, 0, None, e))]

        bwd = [(np.sign, (e, ebar)), (mul, (Kaug[:J], ebar, Gbar))]
        if reaction:
            bwd += [(mul, (Gaug[0], ebar, em)), (mul, (em, 2.0 * Kaug[J + 1], em)), (add, (Gbar[0], em, Gbar[0]))]
        bwd += [(mul, (wt[None, :, None], Gbar[:, None, :], Qbar))]
        for l in range(L - 1, 0, -1):
            Z = rs[l]                                                           # ∂J/∂(s ⊙ r)
            bwd += tanh_bwd(l) + [
                (mm, (np.ascontiguousarray(ops.Vp[l].T), Ybar, Z)), (mul, (Z, r[l], r[l])),
                (red, (r[l].reshape(J, -1, m, R), 0, None, Ks[l])), (mm, (ones_m, Ks[l], grad[blk[l], None, :])),
                (mul, (Z, s_t[blk[l]], Z)), (mm, (np.ascontiguousarray(Gt[l].T), Z, Qbar))]
        bwd += tanh_bwd(0) + [(mm, (T1T, Ybar.reshape(-1, R), grad[blk[0]]))]
        bwd += [(sub, (s, self.s_hat, sdiff)), (np.sign, (sdiff, sdiff)), (mul, (sdiff, lam_full, sdiff)),
                (add, (grad, sdiff, grad))]                                     # λ sign(s − ŝ)
        self.fwd_tape, self.bwd_tape = fwd, bwd
        self._lam = lam_full[0]

    def set_s(self, s_rows: np.ndarray) -> None:
        """Load coefficients given as rows (R, Σk)."""
        self.s[...] = s_rows.T

    def forward(self) -> None:
        """Jets of every layer and the loss vector e (M,) at the coefficients in S."""
        for f, a in self.fwd_tape:
            f(*a)

    def backward(self) -> np.ndarray:
        """∂J/∂s (Σk, R) into ``grad``, after ``forward()``."""
        for f, a in self.bwd_tape:
            f(*a)
        return self.grad

    def objective(self) -> np.ndarray:
        """J (R,) at S, after ``forward()``."""
        fit = np.abs(self.e).reshape(self.m, self.R).sum(axis=0)
        return fit + self._lam * np.abs(self.s - self.s_hat).sum(axis=0)


def _flatten(s: Sequence[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate([np.atleast_2d(sl) for sl in s], axis=1), dtype=np.float64)


def _split(flat: np.ndarray, ranks: Sequence[int]) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(ranks)[:-1], axis=-1)


def _batch_inputs(ops: ReducedOperators, s: Sequence[np.ndarray], name: str) -> np.ndarray:
    s = check_reduced_coefficients(ops, s)
    if not all(np.all(np.isfinite(sl)) for sl in s):
        raise ValueError(f"{name}: coefficients must be finite")
    return _flatten(s)


def objective_and_grad(ops: ReducedOperators, s_batch: Sequence[np.ndarray], s_hat: Sequence[np.ndarray],
                       mu: np.ndarray, lam, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """J and ∂J/∂s for B coefficient sets (module docstring), float64.

    s_batch, s_hat: lists of (B, k_l) (or (k_l,) for B = 1); mu (B, 3) as (β, ν, ρ);
    lam: (B,) or a scalar λ_loc; x, t (m,): the sample points (t = 0 points carry the
    initial-condition term). Returns J (B,) and grads, a list of (B, k_l).
    """
    S, S_hat = _batch_inputs(ops, s_batch, "s_batch"), _batch_inputs(ops, s_hat, "s_hat")
    mu = _finite_params(mu)
    B = S.shape[0]
    lam = np.asarray(lam, dtype=np.float64)
    if lam.shape not in ((), (B,)) or not np.all(np.isfinite(lam) & (lam >= 0)):
        raise ValueError(f"lam: expected a finite λ ≥ 0 or shape ({B},), got {lam!r}")
    lam = np.broadcast_to(lam, (B,))
    if S_hat.shape != S.shape or mu.shape != (B, 3):
        raise ValueError(f"expected s_hat of shape {S.shape} and mu of shape ({B}, 3), got {S_hat.shape}, {mu.shape}")
    x, t = _sample(x, t)
    kern = _Kernel(ops, x, t, mu, lam, S_hat)
    kern.set_s(S)
    kern.forward()
    grad = kern.backward().T.copy()
    return kern.objective(), _split(grad, ops.ranks)


def _finite_params(mu) -> np.ndarray:
    mu = as_param_array(mu)
    if not np.all(np.isfinite(mu)):
        raise ValueError("mu: parameters must be finite")
    return mu


def _sample(x, t) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim != 1 or x.shape != t.shape or x.size == 0:
        raise ValueError(f"expected sample points x and t of the same shape (m,), got {x.shape} and {t.shape}")
    return x, t


@lru_cache(maxsize=8)
def check_set(points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed interior check points: x ~ U[0, 2π), t ~ U(0, 1], each (points,), read-only."""
    rng = np.random.default_rng(seed)
    x = X_PERIOD * rng.random(points)
    t = T_END * (1.0 - rng.random(points))
    x.flags.writeable = False
    t.flags.writeable = False
    return x, t


def full_residual(weights: LRNRWeights, s: np.ndarray, mu: np.ndarray, x: np.ndarray, t: np.ndarray,
                  max_elements: int = 1 << 23) -> np.ndarray:
    """Mean |R[u]| of the full LRNR at points x, t (P,) for rows of s (rows, Σk) and mu
    (rows, 3) → (rows,). Batched ``lrnr_jets`` calls of at most ~max_elements hidden
    values each (memory bound), in the weights' dtype."""
    rows = s.shape[0]
    if s.ndim != 2 or s.shape[1] != sum(weights.ranks) or np.shape(mu) != (rows, 3):
        raise ValueError(f"expected s ({rows}, {sum(weights.ranks)}) and mu ({rows}, 3), got {s.shape}, {np.shape(mu)}")
    x, t = _sample(x, t)
    chunk = max(1, max_elements // (4 * x.size * weights.width))
    out = np.empty(rows)
    for lo in range(0, rows, chunk):
        hi = min(rows, lo + chunk)
        u, u_x, u_t, u_xx = lrnr_jets(weights, _split(s[lo:hi], weights.ranks), x, t)
        b, n, r = (mu[lo:hi, i:i + 1] for i in range(3))
        res = residual(u.astype(np.float64), u_t.astype(np.float64), u_x.astype(np.float64),
                       u_xx.astype(np.float64), b, n, r)
        out[lo:hi] = np.abs(res).mean(axis=1)
    return out


def _adam(kern: _Kernel, s0: np.ndarray, scale: np.ndarray, settings: FastPhaseSettings) -> dict[int, np.ndarray]:
    """Projected Adam from s0 (R, Σk) with step sizes scale (R, Σk); returns
    {epoch: iterate (R, Σk)} for the checked epochs.

    The moments are kept unnormalised (m' = m/(1−β1), v' = v/(1−β2)) and the constants
    and bias corrections folded into two per-step scalars:
    s ← max(0, s − a_t · scale ⊙ m' / (√v' + ε_t)). The step is one tape of numpy calls.
    """
    b1, b2 = settings.betas
    keep = set(settings.epochs_checked)
    kern.set_s(s0)
    s, g = kern.s, kern.grad                               # (Σk, R), updated in place
    scale = np.ascontiguousarray(scale.T)
    m1, v1, tmp = np.zeros_like(s), np.zeros_like(s), np.empty_like(s)
    it = np.arange(1, settings.epochs + 1, dtype=np.float64)
    c2 = np.sqrt((1.0 - b2) / (1.0 - b2 ** it))
    a_all = (1.0 - b1) / (1.0 - b1 ** it) / c2
    eps_all = settings.eps / c2
    a_t, eps_t = np.zeros(()), np.zeros(())
    mul, add = np.multiply, np.add
    adam = [(mul, (m1, b1, m1)), (add, (m1, g, m1)), (mul, (v1, b2, v1)), (mul, (g, g, tmp)), (add, (v1, tmp, v1)),
            (np.sqrt, (v1, tmp)), (add, (tmp, eps_t, tmp)), (np.divide, (m1, tmp, tmp)), (mul, (tmp, scale, tmp)),
            (mul, (tmp, a_t, tmp)), (np.subtract, (s, tmp, s)), (partial(np.maximum, out=s), (s, 0.0))]
    tape = kern.fwd_tape + kern.bwd_tape + adam
    out = {}
    for i in range(settings.epochs):
        a_t[()] = a_all[i]
        eps_t[()] = eps_all[i]
        for f, args in tape:
            f(*args)
        if i + 1 in keep:
            out[i + 1] = s.T.copy()
    return out


def _step_scale(S_hat: np.ndarray, ranks: Sequence[int], settings: FastPhaseSettings) -> np.ndarray:
    """Per-row, per-layer Adam step sizes lr · max_i ŝ_{l,i} (floored), broadcast to (R, Σk)."""
    scale = np.empty_like(S_hat)
    top = np.abs(S_hat).max(axis=1, keepdims=True)
    top = np.where(top > 0, top, 1.0)
    for sl, out in zip(_split(S_hat, ranks), _split(scale, ranks)):
        out[...] = np.maximum(np.abs(sl).max(axis=1, keepdims=True), settings.lr_floor * top)
    return settings.lr * scale


def _queries(ops: ReducedOperators, s_hat: Sequence[np.ndarray], mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    S_hat = _batch_inputs(ops, s_hat, "s_hat")
    if np.any(S_hat < 0):
        raise ValueError("s_hat: coefficients must be ≥ 0 (they are ReLU outputs)")
    mu = _finite_params(mu)
    if mu.shape != (S_hat.shape[0], 3):
        raise ValueError(f"expected mu of shape ({S_hat.shape[0]}, 3) for {S_hat.shape[0]} coefficient sets, got {mu.shape}")
    return S_hat, mu


def optimise_candidates(ops: ReducedOperators, s_hat: Sequence[np.ndarray], mu: np.ndarray,
                        settings: FastPhaseSettings = FastPhaseSettings()) -> dict[int, np.ndarray]:
    """Projected Adam on J for every λ candidate of every query, as one batch of B·C rows.

    s_hat: list of (B, k_l) (or (k_l,)), ≥ 0; mu (B, 3). Returns {epoch: (B, C, Σk)}
    for the epochs in ``settings.epochs_checked`` (coefficients of all layers
    concatenated; candidate c uses ``settings.lambdas[c]``). Needs only the FastLRNR.
    """
    S_hat, mu = _queries(ops, s_hat, mu)
    return _optimise(ops, S_hat, mu, settings)


def _optimise(ops: ReducedOperators, S_hat: np.ndarray, mu: np.ndarray,
              settings: FastPhaseSettings) -> dict[int, np.ndarray]:
    B, C = S_hat.shape[0], len(settings.lambdas)
    rows_hat = np.repeat(S_hat, C, axis=0)                     # row b·C + c
    kern = _Kernel(ops, *ops.points, np.repeat(mu, C, axis=0),
                   np.tile(np.asarray(settings.lambdas, dtype=np.float64), B), rows_hat)
    iterates = _adam(kern, rows_hat, _step_scale(rows_hat, ops.ranks, settings), settings)
    return {e: it.reshape(B, C, -1) for e, it in iterates.items()}


def run_fast_phase(ops: ReducedOperators, weights: LRNRWeights, s_hat: Sequence[np.ndarray], mu: np.ndarray,
                   settings: FastPhaseSettings = FastPhaseSettings()) -> list[FastPhaseResult]:
    """The fast phase for B queries: s_hat list of (B, k_l) (or (k_l,) for one query),
    mu (B, 3). All λ candidates of all queries run as one batch (``optimise_candidates``);
    the candidates and ŝ are then judged in the full LRNR (``weights``; float32 is fine)
    on ``check_set(settings.check_points, settings.seed)`` in one batched evaluation,
    and per query the candidate of least mean |R| is kept if it beats ŝ by the relative
    margin ``min_improvement`` (else ŝ). Returns one result per query.
    """
    if weights.ranks != ops.ranks:
        raise ValueError(f"LRNR ranks {weights.ranks} do not match the FastLRNR's {ops.ranks}")
    S_hat, mu = _queries(ops, s_hat, mu)
    B = S_hat.shape[0]
    epochs = settings.epochs_checked
    labels = [(float(lam), int(e)) for lam in settings.lambdas for e in epochs]   # λ-major, epoch-minor
    E = len(labels)

    t0 = time.perf_counter()
    iterates = _optimise(ops, S_hat, mu, settings)
    fast_ms = 1e3 * (time.perf_counter() - t0)

    t0 = time.perf_counter()
    cand = np.stack([iterates[e] for e in epochs], axis=2).reshape(B, E, -1)
    judged = np.concatenate([S_hat, cand.reshape(B * E, -1)])         # ŝ of every query, then candidates
    mu_rows = np.concatenate([mu, np.repeat(mu, E, axis=0)])
    res = full_residual(weights, judged, mu_rows, *check_set(settings.check_points, settings.seed))
    check_ms = 1e3 * (time.perf_counter() - t0)

    res_hat, res_cand = res[:B], res[B:].reshape(B, E)
    res_cand = np.where(np.isfinite(res_cand), res_cand, np.inf)   # a diverged candidate never wins
    best = np.argmin(res_cand, axis=1)
    accepted = res_cand[np.arange(B), best] < (1.0 - settings.min_improvement) * res_hat
    s_new = np.where(accepted[:, None], cand[np.arange(B), best], S_hat)
    lam_used = np.where(accepted, [labels[i][0] for i in best], 0.0)
    J, _ = objective_and_grad(ops, _split(np.concatenate([S_hat, s_new]), ops.ranks),
                              _split(np.concatenate([S_hat, S_hat]), ops.ranks),
                              np.concatenate([mu, mu]), np.concatenate([lam_used, lam_used]), *ops.points)
    results = []
    for b in range(B):
        ok, i = bool(accepted[b]), int(best[b])
        results.append(FastPhaseResult(
            s=[np.array(sl) for sl in _split(s_new[b], ops.ranks)],
            lam=labels[i][0] if ok else None, epoch=labels[i][1] if ok else None,
            J_before=float(J[b]), J_after=float(J[B + b]),
            residual_before=float(res_hat[b]), residual_after=float(res_cand[b, i] if ok else res_hat[b]),
            accepted=ok, candidates=tuple((lb[0], lb[1], float(r)) for lb, r in zip(labels, res_cand[b])),
            fast_ms=fast_ms, check_ms=check_ms))
    return results
