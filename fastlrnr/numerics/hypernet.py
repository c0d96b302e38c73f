"""The hypernetwork μ ↦ s(μ) in numpy (docs/method.md, “The hypernetwork”).

μ̃   = 2 (μ − low) / (high − low) − 1 on active parameters, 0 on fixed ones
m   = tanh(W3 tanh(W2 tanh(W1 μ̃ + c1) + c2) + c3)      W1 (K, p), W2, W3 (K, K)

with p the family's number of parameters (3 for CDR: β, ν, ρ).
s_l = ReLU(H_l m + e_l)                                 H_l (k_l, K), e_l (k_l,)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import as_param_array


@dataclass(frozen=True)
class HyperWeights:
    """Hypernetwork parameters; ``low``/``high`` (p,) are the training domain's bounds."""

    W: tuple[np.ndarray, np.ndarray, np.ndarray]
    c: tuple[np.ndarray, np.ndarray, np.ndarray]
    H: tuple[np.ndarray, ...]
    e: tuple[np.ndarray, ...]
    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        K, p = self.W[0].shape[0], len(self.low)
        if self.W[0].shape != (K, p) or self.W[1].shape != (K, K) or self.W[2].shape != (K, K):
            raise ValueError(f"expected W1 (K, {p}), W2 and W3 (K, K); got {[w.shape for w in self.W]}")
        for l, (H, e) in enumerate(zip(self.H, self.e), start=1):
            if H.ndim != 2 or H.shape[1] != K or e.shape != (H.shape[0],):
                raise ValueError(f"head {l}: expected H (k, {K}) and e (k,), got {H.shape}, {e.shape}")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict for npz: W1..W3, c1..c3, H1..HL, e1..eL, low, high."""
        out = {"low": self.low, "high": self.high}
        for i, (W, c) in enumerate(zip(self.W, self.c), start=1):
            out[f"W{i}"], out[f"c{i}"] = W, c
        for l, (H, e) in enumerate(zip(self.H, self.e), start=1):
            out[f"H{l}"], out[f"e{l}"] = H, e
        return out

    @classmethod
    def from_arrays(cls, d) -> HyperWeights:
        """Inverse of ``to_arrays``; raises KeyError/ValueError on a malformed dict."""
        L = sum(1 for k in d if re.fullmatch(r"H\d+", k))
        g = lambda k: np.asarray(d[k])
        return cls(
            tuple(g(f"W{i}") for i in (1, 2, 3)),
            tuple(g(f"c{i}") for i in (1, 2, 3)),
            tuple(g(f"H{l}") for l in range(1, L + 1)),
            tuple(g(f"e{l}") for l in range(1, L + 1)),
            g("low"),
            g("high"),
        )


def normalise_params(mu: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(B, p) → (B, p) in [−1, 1] on active parameters; fixed parameters map to 0."""
    span = high - low
    active = span > 0
    return np.where(active, 2.0 * (mu - low) / np.where(active, span, 1.0) - 1.0, 0.0)


def hyper_forward(hw: HyperWeights, mu: np.ndarray) -> list[np.ndarray]:
    """Coefficients s(μ): mu (B, p) or (p,) → list of (B, k_l) (or (k_l,) for one row), float64."""
    single = np.ndim(mu) == 1
    m = normalise_params(as_param_array(mu, len(hw.low)), hw.low, hw.high)
    for W, c in zip(hw.W, hw.c):
        m = np.tanh(m @ W.T + c)
    s = [np.maximum(m @ H.T + e, 0.0) for H, e in zip(hw.H, hw.e)]
    return [sl[0] for sl in s] if single else s


def hyper_rows(hw: HyperWeights, mu: np.ndarray) -> np.ndarray:
    """Coefficient rows s(μ): mu (B, p) → (B, P), every layer's coefficients in one row (the one
    form coefficients keep from the hypernetwork to the answer; ``lrnr.split_layers`` splits)."""
    return np.concatenate(hyper_forward(hw, as_param_array(mu, len(hw.low))), axis=1)
