"""Whether a fast-phase update is kept: judged by the full LRNR on held-out points.

The optimised coefficients are put into the full LRNR and its RMS PDE residual is measured
on ``check`` points that the optimiser never saw (seeded, interior). Per query, among its
candidates (one per locality weight), the one with the smallest check residual is kept if it
is at least ``margin`` (relative) below the hypernetwork's; otherwise ŝ is returned. So the
served coefficients never have a higher check residual than ŝ, whatever the backend did.
"""

from __future__ import annotations

import numpy as np

from core.jet_chain import JetChain


def check_residual(check: JetChain, S: np.ndarray, mu: np.ndarray, chunk: int = 8) -> np.ndarray:
    """RMS of R[u] (R,) of the full LRNR (``check`` = its chain at the check points) for
    coefficient rows S (R, P) and parameters mu (R, 3), ``chunk`` rows at a time (memory).
    Non-finite values give inf."""
    rms = np.empty(len(S))
    for lo in range(0, len(S), chunk):
        r = check.residual(S[lo : lo + chunk], mu[lo : lo + chunk])
        rms[lo : lo + chunk] = np.sqrt(np.mean(r * r, axis=1))
    return np.where(np.isfinite(rms), rms, np.inf)


def choose(rms_hat: np.ndarray, rms_candidates: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (best (B,) candidate index, accepted (B,) bool) from the check residuals of
    ŝ (B,) and of the candidates (B, C). A candidate is accepted only when its residual is
    ≤ (1 − margin) · ŝ's."""
    best = np.argmin(rms_candidates, axis=1)
    best_rms = rms_candidates[np.arange(len(best)), best]
    return best, np.isfinite(best_rms) & (best_rms <= (1.0 - margin) * rms_hat)
