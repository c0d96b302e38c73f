"""Projected Adam on a fast-phase objective: the paper's optimiser (ℓ1 objective, many
small steps), kept to reproduce its experiment (Figure 3) on the same backends.

    m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
    s ← max(0, s − lr_t · scale ⊙ m̂ / (√v̂ + ε))

with bias-corrected m̂, v̂ and a per-coefficient step ``scale`` (R, P) given by the caller
(the fast phase uses the largest coefficient of each layer of ŝ, so one learning rate fits
models whose coefficient scales differ). One step costs one forward and one Jacobian pass.
"""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.fast_phase.lm import Problem
from fastlrnr.numerics.fast_phase.objective import objective_gradient, objective_value


def adam(
    problem: Problem,
    S0: np.ndarray,
    s_hat: np.ndarray,
    locality: np.ndarray,
    steps: int,
    scale: np.ndarray,
    objective: str = "l1",
    lr: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    record: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Run ``steps`` projected Adam steps from S0 (R, P). Returns (S, F0, F, iterates): the
    final coefficients, the objective at S0 and at S (R,), and, when ``record``, S after
    every step (steps, R, P)."""
    S = np.array(S0, dtype=np.float64)
    R, P = S.shape
    lam = np.broadcast_to(np.asarray(locality, dtype=np.float64), (R,))
    every = np.arange(R)
    m = np.zeros_like(S)
    v = np.zeros_like(S)
    b1, b2 = betas
    iterates = np.empty((steps, R, P)) if record else None
    F0 = None
    for k in range(1, steps + 1):
        state = problem.forward(S, every)
        r, jac = state.r, problem.jacobian(state)
        if F0 is None:
            F0 = objective_value(objective, r, S, s_hat, lam)
        g = objective_gradient(objective, r, jac, S, s_hat, lam)
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        step = lr * scale * (m / (1.0 - b1**k)) / (np.sqrt(v / (1.0 - b2**k)) + eps)
        S = np.maximum(S - step, 0.0)
        if record:
            iterates[k - 1] = S
    r = problem.forward(S, every).r
    F = objective_value(objective, r, S, s_hat, lam)
    if F0 is None:
        F0 = F.copy()
    return S, F0, F, iterates
