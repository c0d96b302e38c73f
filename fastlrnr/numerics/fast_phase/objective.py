"""The fast-phase objectives, as functions of the residuals and their Jacobian.

Per coefficient row (one query, or one locality candidate of a query), at M collocation
points with residuals r = R[u](x_m, t_m) and Jacobian Jac = ∂r/∂s:

- ``lsq`` (the default, solved by Levenberg–Marquardt):
      F(s) = (1/M) Σ_m r_m² + λ ‖s − ŝ‖²
- ``l1`` (the paper's, solved by Adam):
      F(s) = (1/M) Σ_m |r_m| + λ ‖s − ŝ‖₁      (subgradient sign(0) = 0)

λ is the locality weight. Shapes: r (R, M), Jac (R, M, P), s and ŝ (R, P), λ (R,) or scalar.
"""

from __future__ import annotations

import numpy as np

OBJECTIVES = ("lsq", "l1")


def objective_value(kind: str, r: np.ndarray, s: np.ndarray, s_hat: np.ndarray, locality) -> np.ndarray:
    """F (R,) in float64."""
    r = np.asarray(r, dtype=np.float64)
    d = np.asarray(s, dtype=np.float64) - s_hat
    lam = np.asarray(locality, dtype=np.float64)
    if kind == "lsq":
        return np.mean(r * r, axis=1) + lam * np.sum(d * d, axis=1)
    if kind == "l1":
        return np.mean(np.abs(r), axis=1) + lam * np.sum(np.abs(d), axis=1)
    raise ValueError(f"unknown objective {kind!r}; expected one of {OBJECTIVES}")


def objective_gradient(
    kind: str, r: np.ndarray, jac: np.ndarray, s: np.ndarray, s_hat: np.ndarray, locality
) -> np.ndarray:
    """∂F/∂s (R, P) in float64."""
    M = r.shape[1]
    r = np.asarray(r, dtype=np.float64)
    lam = np.asarray(locality, dtype=np.float64).reshape(-1, 1) if np.ndim(locality) else float(locality)
    d = np.asarray(s, dtype=np.float64) - s_hat
    if kind == "lsq":
        weights, local = (2.0 / M) * r, 2.0 * lam * d
    elif kind == "l1":
        weights, local = np.sign(r) / M, lam * np.sign(d)
    else:
        raise ValueError(f"unknown objective {kind!r}; expected one of {OBJECTIVES}")
    return np.einsum("rm,rmp->rp", weights, jac.astype(np.float64, copy=False)) + local
