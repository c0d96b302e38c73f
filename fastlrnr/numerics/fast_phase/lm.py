"""Projected Levenberg–Marquardt on the least-squares fast-phase objective.

    F(s) = (1/M) ‖r(s)‖² + λ ‖s − ŝ‖²,     s ≥ 0

Each iteration solves, per row, the damped Gauss–Newton system

    (JᵀJ/M + λ I + d · diag(JᵀJ/M + ε)) δ = −(Jᵀr/M + λ (s − ŝ))

(Marquardt's scaling; ε = 1e-9 · mean diag keeps dead directions regular) on the free
coefficients — a coefficient at the bound 0 whose gradient points below it is held fixed —
limits the step to ‖δ‖ ≤ max_step · ‖ŝ‖, projects s + δ onto s ≥ 0 and evaluates the trial
point. A trial that lowers F is taken and d shrunk by Nielsen's rule (by up to 3×, by less
when the gain ratio actual/predicted decrease is poor); a rejected trial grows d by 2, 4,
8, … for consecutive rejections. A row stops early when a taken step lowers F by less than
tol · F.
One iteration costs one forward pass of the backend, plus its Jacobian pass when the trial
is taken (and not the last), so ``steps`` bounds the cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fastlrnr.numerics.fast_phase.objective import objective_value


class Problem(Protocol):
    """Residuals of a batch of rows, each with its own PDE parameters."""

    def forward(self, S: np.ndarray, rows: np.ndarray) -> Any:
        """Forward pass for coefficient rows S (R', P) standing for batch rows ``rows`` (R',);
        the result has the residuals ``.r`` (R', M) and a ``.rows(mask)`` subset."""

    def jacobian(self, state: Any) -> np.ndarray:
        """∂r/∂s (R', M, P) of a forward result."""


@dataclass(frozen=True)
class LMTrace:
    """Outcome per row: S (R, P) final coefficients; F0, F (R,) objective at the start and end;
    steps (R,) iterations run; taken (R,) steps that lowered F; iterates: S after each
    iteration (steps, R, P) when recorded, else None."""

    S: np.ndarray
    F0: np.ndarray
    F: np.ndarray
    steps: np.ndarray
    taken: np.ndarray
    iterates: np.ndarray | None


def levenberg_marquardt(
    problem: Problem,
    S0: np.ndarray,
    s_hat: np.ndarray,
    locality: np.ndarray,
    steps: int,
    damping: float = 1e-2,
    max_step: float = 0.5,
    tol: float = 1e-3,
    record: bool = False,
    hold_bound: bool = True,
) -> LMTrace:
    """Minimise F from S0 (R, P) for every row at once; s_hat (R, P), locality (R,) ≥ 0.

    hold_bound=False solves for every coefficient and only clips the trial at 0 (the plain
    projection, kept to measure why the bound-constrained step is needed)."""
    S = np.array(S0, dtype=np.float64)
    R, P = S.shape
    lam = np.broadcast_to(np.asarray(locality, dtype=np.float64), (R,))
    every = np.arange(R)
    state = problem.forward(S, every)
    r = state.r.copy()
    M = r.shape[1]
    F = objective_value("lsq", r, S, s_hat, lam)
    F0 = F.copy()
    jac = problem.jacobian(state).astype(np.float64) if steps > 0 else None
    d = np.full(R, float(damping))  # relative: the damping term is d · diag(JᵀJ/M)
    grow = np.full(R, 2.0)
    running = np.ones(R, dtype=bool)
    n_steps, taken = np.zeros(R, dtype=int), np.zeros(R, dtype=int)
    cap = max_step * np.maximum(np.linalg.norm(s_hat, axis=1), 1e-12)
    iterates = np.empty((steps, R, P)) if record else None
    eye = np.eye(P)
    for k in range(steps):
        idx = np.flatnonzero(running)
        if idx.size == 0:
            if record:
                iterates[k:] = S
            break
        Jk = jac[idx]
        A = np.einsum("rmp,rmq->rpq", Jk, Jk) / M
        g = np.einsum("rmp,rm->rp", Jk, r[idx]) / M + lam[idx, None] * (S[idx] - s_hat[idx])
        # bound-constrained: a coefficient at 0 whose gradient points below 0 stays fixed
        free = (S[idx] > 0) | (g < 0) | (not hold_bound)
        A *= free[:, :, None] & free[:, None, :]
        g = np.where(free, g, 0.0)
        diag = np.einsum("rpp->rp", A)
        scale = diag + 1e-9 * diag.mean(axis=1, keepdims=True) + 1e-300
        lhs = A + (lam[idx, None, None] + ~free[:, :, None]) * eye + d[idx, None, None] * (scale[:, :, None] * eye)
        delta = -np.linalg.solve(lhs, g[..., None])[..., 0]
        norm = np.linalg.norm(delta, axis=1)
        delta *= np.minimum(1.0, cap[idx] / np.maximum(norm, 1e-300))[:, None]
        trial = np.maximum(S[idx] + delta, 0.0)
        step = trial - S[idx]
        H = A + lam[idx, None, None] * eye
        predicted = -(2.0 * np.einsum("rp,rp->r", g, step) + np.einsum("rp,rpq,rq->r", step, H, step))
        last = k == steps - 1
        trial_state = problem.forward(trial, idx)
        F_t = objective_value("lsq", trial_state.r, trial, s_hat[idx], lam[idx])
        better = np.isfinite(F_t) & (F_t < F[idx])
        ok = idx[better]
        gain = np.where(better, np.clip((F[idx] - F_t) / np.maximum(predicted, 1e-300), 0.0, 1.0), 0.0)
        small = better & (F[idx] - F_t < tol * F[idx])
        S[ok], F[ok] = trial[better], F_t[better]
        r[ok] = trial_state.r[better]
        if ok.size and not last:
            jac[ok] = problem.jacobian(trial_state.rows(better))
        # Nielsen's rule: shrink the damping by up to 3× after a step the model predicted
        # well, grow it by a doubling factor after each rejection in a row
        d[idx] = np.where(better, d[idx] * np.maximum(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3), d[idx] * grow[idx])
        grow[idx] = np.where(better, 2.0, grow[idx] * 2.0)
        n_steps[idx] += 1
        taken[ok] += 1
        running[idx[small]] = False
        if record:
            iterates[k] = S
    return LMTrace(S, F0, F, n_steps, taken, iterates)
