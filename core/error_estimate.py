"""An estimate of an answer's relative L2 error from its a-posteriori residual.

For the served coefficients the full LRNR's linearised-error proxy ê on the check grid is
known (``core.error_proxy``, computed by the fast phase's acceptance). ê is already close
to the true error; a per-model log-linear model, fitted at build time on a sweep of the
served domain against the reference solver, calibrates it into an error estimate:

    log e_est = c_0 + c_1 log ê + Σ_i c_{1+i} μ̃_i + q

with μ̃ the parameters scaled to [−1, 1] over the model's domain (0 for fixed ones): what
the coarse grid misses depends on the regime. The offset q is the ``coverage`` quantile of
the fit's log-residuals, so that on the calibration sweep the estimate is at least the true
error for that fraction of answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.hypernet import normalise_params
from core.pde import Domain, as_param_array


@dataclass(frozen=True)
class ErrorModel:
    """coef (5,): c_0, c_1 and one weight per parameter (β, ν, ρ); offset q; low, high (3,):
    the parameter scaling; coverage: the quantile q was chosen at."""

    coef: np.ndarray
    offset: float
    low: np.ndarray
    high: np.ndarray
    coverage: float

    def predict(self, proxy: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Estimated relative L2 errors (B,) for error proxies ê (B,) (> 0) and mu (B, 3)."""
        X = _features(np.asarray(proxy, dtype=np.float64), as_param_array(mu), self.low, self.high)
        return np.exp(X @ self.coef + self.offset)

    def to_dict(self) -> dict:
        return {
            "form": "log e = c0 + c1 log(proxy) + c·mu_scaled + offset",
            "coef": [float(c) for c in self.coef],
            "offset": float(self.offset),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "coverage": float(self.coverage),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ErrorModel:
        coef = np.asarray(d["coef"], dtype=np.float64)
        if coef.shape != (5,) or not np.all(np.isfinite(coef)) or not np.isfinite(d["offset"]):
            raise ValueError(f"error model: expected 5 finite coefficients and a finite offset, got {d!r}")
        return cls(
            coef,
            float(d["offset"]),
            np.asarray(d["low"], dtype=np.float64),
            np.asarray(d["high"], dtype=np.float64),
            float(d["coverage"]),
        )


def _features(proxy: np.ndarray, mu: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    if proxy.shape != (mu.shape[0],):
        raise ValueError(f"expected one proxy value per parameter row, got {proxy.shape} and {mu.shape}")
    logr = np.log(np.maximum(proxy, 1e-300))
    return np.column_stack([np.ones_like(logr), logr, normalise_params(mu, low, high)])


def fit_error_model(
    proxy: np.ndarray, mu: np.ndarray, error: np.ndarray, domain: Domain, coverage: float = 0.95
) -> ErrorModel:
    """Least-squares fit of log error on the features, then the offset at ``coverage``."""
    if not (0 < coverage < 1):
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    mu = as_param_array(mu)
    X = _features(np.asarray(proxy, dtype=np.float64), mu, domain.low, domain.high)
    y = np.log(np.asarray(error, dtype=np.float64))
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    offset = float(np.quantile(y - X @ coef, coverage))
    return ErrorModel(coef, offset, domain.low.copy(), domain.high.copy(), coverage)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (n,) samples (average ranks for ties); NaN when
    either sample is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt((ra @ ra) * (rb @ rb))
    return float((ra @ rb) / norm) if norm > 0 else float("nan")


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 0..n−1 of v, tied values sharing their average rank."""
    ranks = np.empty(len(v))
    ranks[np.argsort(v, kind="mergesort")] = np.arange(len(v), dtype=np.float64)
    _, group = np.unique(v, return_inverse=True)
    return (np.bincount(group, weights=ranks) / np.bincount(group))[group]


def estimate_quality(estimate: np.ndarray, error: np.ndarray, factor: float = 5.0) -> dict:
    """How an estimate fares against true errors: Spearman, the share with
    error ≤ estimate (coverage) and with error ≤ estimate ≤ factor · error."""
    estimate, error = np.asarray(estimate, dtype=np.float64), np.asarray(error, dtype=np.float64)
    covered = estimate >= error
    return {
        "n": int(error.size),
        "spearman": spearman(estimate, error),
        "covered": float(covered.mean()),
        f"within_1_to_{factor:g}x": float(np.mean(covered & (estimate <= factor * error))),
        "median_ratio": float(np.median(estimate / error)),
    }
