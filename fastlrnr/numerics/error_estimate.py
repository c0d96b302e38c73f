"""An estimate of an answer's relative L2 error from its a-posteriori residual.

For the served coefficients the full LRNR's linearised-error proxy ê on the check grid is
known (``fastlrnr.numerics.error_proxy``, computed by the fast phase's acceptance). ê is already close
to the true error; a per-model log-linear model, fitted at build time on a sweep of the
served domain against the reference solver, calibrates it into an error estimate:

    log e_est = c_0 + c_1 log ê + Σ_i c_{1+i} μ̃_i + q

with μ̃ the parameters scaled to [−1, 1] over the model's domain (0 for fixed ones): what
the coarse grid misses depends on the regime. The offset q is the ``coverage`` quantile of
the fit's log-residuals, so that on the calibration sweep the estimate is at least the true
error for that fraction of answers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import Domain, as_param_array
from fastlrnr.numerics.hypernet import normalise_params


@dataclass(frozen=True)
class ErrorModel:
    """coef (2 + p,): c_0, c_1 and one weight per parameter (p = 3 for CDR: β, ν, ρ); offset
    q; low, high (p,): the parameter scaling; coverage: the quantile q was chosen at."""

    coef: np.ndarray
    offset: float
    low: np.ndarray
    high: np.ndarray
    coverage: float

    def predict(self, proxy: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Estimated relative L2 errors (B,) for error proxies ê (B,) (> 0) and mu (B, p)."""
        X = _features(np.asarray(proxy, dtype=np.float64), as_param_array(mu, len(self.low)), self.low, self.high)
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
        p = len(d["low"])
        if coef.shape != (2 + p,) or not np.all(np.isfinite(coef)) or not np.isfinite(d["offset"]):
            raise ValueError(f"error model: expected {2 + p} finite coefficients and a finite offset, got {d!r}")
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
    """Least-squares fit of log error on the features, then the offset at ``coverage`` (the
    next larger residual: at least that share of the fit's answers is covered)."""
    if not (0 < coverage < 1):
        raise ValueError(f"coverage must lie in (0, 1), got {coverage}")
    mu = as_param_array(mu, domain.params)
    X = _features(np.asarray(proxy, dtype=np.float64), mu, domain.low, domain.high)
    y = np.log(np.asarray(error, dtype=np.float64))
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    # the next larger residual (plus roundoff): at least that share of the fit's answers is covered
    offset = float(np.quantile(y - X @ coef, coverage, method="higher")) + 1e-9
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


@dataclass(frozen=True)
class AprioriMap:
    """An a-priori estimate of the uncorrected hypernetwork answer's relative L2 error, from
    the parameters alone (no residual, no check grid): the true errors measured at build time
    on a tensor grid of the domain (``axes`` per parameter, one value for a fixed one), and
    per query the largest of them over the corners of the grid cell that holds μ, times
    exp(``offset``) (the margin that held-out points needed), times ``extrapolation_factor``
    outside the grid's box.

    axes: one (n_i,) increasing array per parameter; log_error: (n_1, …, n_p) log errors at
    the nodes ((n_β, n_ν, n_ρ) for CDR)."""

    axes: tuple[np.ndarray, ...]
    log_error: np.ndarray
    offset: float
    extrapolation_factor: float

    def predict(self, mu: np.ndarray) -> np.ndarray:
        """(B,) estimated relative L2 errors for mu (B, p)."""
        mu = as_param_array(mu, len(self.axes))
        corners = []
        outside = np.zeros(len(mu), dtype=bool)
        for i, axis in enumerate(self.axes):
            v = mu[:, i]
            outside |= (v < axis[0] - 1e-12) | (v > axis[-1] + 1e-12)
            if axis.size == 1:
                corners.append((np.zeros(len(mu), dtype=int),) * 2)
                continue
            j = np.clip(np.searchsorted(axis, v, side="right") - 1, 0, axis.size - 2)
            on_node = np.isclose(v, axis[j], rtol=0, atol=1e-12)  # a node: its own value, no neighbour
            corners.append((j, np.where(on_node, j, j + 1)))
        worst = np.full(len(mu), -np.inf)
        for corner in itertools.product(*corners):
            worst = np.maximum(worst, self.log_error[corner])
        return np.exp(worst + self.offset) * np.where(outside, self.extrapolation_factor, 1.0)

    def to_dict(self) -> dict:
        return {
            "form": "max of the node errors over the cell's corners × exp(offset)",
            "axes": [a.tolist() for a in self.axes],
            "log_error": self.log_error.tolist(),
            "offset": float(self.offset),
            "extrapolation_factor": float(self.extrapolation_factor),
        }

    @classmethod
    def from_dict(cls, d: dict) -> AprioriMap:
        axes = tuple(np.asarray(a, dtype=np.float64) for a in d["axes"])
        log_error = np.asarray(d["log_error"], dtype=np.float64)
        if not axes or log_error.shape != tuple(a.size for a in axes):
            raise ValueError(f"a-priori map: axes and a log_error of their shape expected, got {log_error.shape}")
        if not all(a.size >= 1 and np.all(np.isfinite(a)) and np.all(np.diff(a) > 0) for a in axes):
            raise ValueError("a-priori map: each axis must be finite and increasing")
        if not (np.all(np.isfinite(log_error)) and np.isfinite(d["offset"])):
            raise ValueError("a-priori map: log_error and offset must be finite")
        factor = float(d["extrapolation_factor"])
        if not (np.isfinite(factor) and factor >= 1):
            raise ValueError(f"a-priori map: extrapolation_factor must be ≥ 1, got {factor}")
        return cls(axes, log_error, float(d["offset"]), factor)


def fit_apriori_map(
    domain: Domain,
    per_axis: int,
    node_error: np.ndarray,
    held_out_mu: np.ndarray,
    held_out_error: np.ndarray,
    coverage: float = 0.99,
    extrapolation_factor: float = 10.0,
) -> AprioriMap:
    """The map from true errors at ``domain.grid(per_axis)`` (``node_error`` in that order),
    with the offset that makes the estimate cover ``coverage`` of the held-out points (never
    below 0: the cell maximum alone is the floor)."""
    axes = tuple(
        np.linspace(*domain.bounds[k], per_axis) if k in domain.active else np.array([domain.bounds[k][0]])
        for k in domain.params
    )
    log_error = np.log(np.maximum(np.asarray(node_error, dtype=np.float64), 1e-12)).reshape([a.size for a in axes])
    bare = AprioriMap(axes, log_error, 0.0, extrapolation_factor)
    gap = np.log(np.asarray(held_out_error, dtype=np.float64)) - np.log(bare.predict(held_out_mu))
    offset = max(0.0, float(np.quantile(gap, coverage))) if gap.size else 0.0
    return AprioriMap(axes, log_error, offset, extrapolation_factor)
