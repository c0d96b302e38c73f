"""POD bases and (discrete) empirical interpolation (docs/method.md, “The FastLRNR (EIM/DEIM)”).

A hidden state ``h ∈ R^N`` of one LRNR layer is approximated from ``n`` of its
entries by

    h ≈ Φ (PᵀΦ)⁻¹ Pᵀ h,        Φ: (N, n) POD basis,  P: the DEIM rows p (n,)

Snapshots are columns: a snapshot matrix is ``(N, S)``.
"""

from __future__ import annotations

import numpy as np


def _as_matrix(name: str, arr, rows: int | None = None) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or (rows is not None and arr.shape[0] != rows):
        want = f"({rows}, S)" if rows is not None else "(N, S)"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def pod_basis(snapshots: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``n`` left singular vectors of the snapshot matrix.

    snapshots (N, S) → (Phi (N, n) with orthonormal columns, singular values (min(N, S),)
    in decreasing order). Requires 1 ≤ n ≤ min(N, S).
    """
    snaps = _as_matrix("snapshots", snapshots)
    N, S = snaps.shape
    if not (isinstance(n, (int, np.integer)) and 1 <= n <= min(N, S)):
        raise ValueError(f"rank n must be an integer in [1, min(N, S) = {min(N, S)}], got {n!r}")
    left, sing, _ = np.linalg.svd(snaps, full_matrices=False)
    return np.ascontiguousarray(left[:, :n]), sing


def deim_indices(Phi: np.ndarray) -> np.ndarray:
    """Greedy DEIM rows for the basis Phi (N, n) → (n,) int64, all distinct.

    Row of the largest |entry| of the first vector; then, for each next vector,
    interpolate it on the rows chosen so far, and take the row of the largest
    |residual|. Raises ValueError when the basis is (numerically) rank deficient.
    """
    Phi = _as_matrix("Phi", Phi)
    N, n = Phi.shape
    if n < 1 or n > N:
        raise ValueError(f"Phi: expected shape (N, n) with 1 ≤ n ≤ N, got {Phi.shape}")
    p = np.empty(n, dtype=np.int64)
    p[0] = int(np.argmax(np.abs(Phi[:, 0])))
    for j in range(1, n):
        coef = np.linalg.solve(Phi[p[:j], :j], Phi[p[:j], j])
        res = Phi[:, j] - Phi[:, :j] @ coef
        p[j] = int(np.argmax(np.abs(res)))
        if np.abs(res[p[j]]) <= 1e-14 * max(1.0, np.abs(Phi[:, j]).max()):
            raise ValueError(f"Phi: column {j} is (numerically) in the span of the previous ones")
    return p


def eim_interpolation_error(Phi: np.ndarray, p: np.ndarray, snapshots: np.ndarray) -> float:
    """Relative Frobenius error ‖H − Φ(PᵀΦ)⁻¹PᵀH‖_F / ‖H‖_F on snapshots H (N, S).

    Phi (N, n), p (n,) distinct row indices. Returns 0.0 for an all-zero H.
    """
    Phi = _as_matrix("Phi", Phi)
    N, n = Phi.shape
    p = np.asarray(p)
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"p: expected integer indices of shape ({n},), got {p.dtype} {p.shape}")
    if p.min() < 0 or p.max() >= N or len(np.unique(p)) != n:
        raise ValueError(f"p: expected {n} distinct indices in [0, {N}), got {p.tolist()}")
    H = _as_matrix("snapshots", snapshots, rows=N)
    approx = Phi @ np.linalg.solve(Phi[p], H[p])
    norm = np.linalg.norm(H)
    return float(np.linalg.norm(H - approx) / norm) if norm > 0 else 0.0
