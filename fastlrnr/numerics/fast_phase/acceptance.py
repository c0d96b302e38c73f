"""Whether a fast-phase update is kept: judged by the full LRNR on a grid the optimiser never saw.

The optimised coefficients are put into the full LRNR and their linearised-error proxy ê
(``fastlrnr.numerics.error_proxy``: the error the residual implies, propagated by the linearised PDE)
is computed on the model's check grid. Per query, among its candidates (one per locality
weight), the one with the smallest ê is kept if it is at least ``margin`` (relative) below
the hypernetwork's; otherwise ŝ is returned. So the served coefficients never have a
higher proxy than ŝ, whatever the backend did.
"""

from __future__ import annotations

import numpy as np


def choose(proxy_hat: np.ndarray, proxy_candidates: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Per query: (best (B,) candidate index, accepted (B,) bool) from the error proxies of
    ŝ (B,) and of the candidates (B, C). A candidate is accepted only when its proxy is
    ≤ (1 − margin) · ŝ's (non-finite proxies are never accepted)."""
    best = np.argmin(proxy_candidates, axis=1)
    best_proxy = proxy_candidates[np.arange(len(best)), best]
    return best, np.isfinite(best_proxy) & (best_proxy <= (1.0 - margin) * proxy_hat)
