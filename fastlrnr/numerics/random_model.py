"""Random LRNR and hypernetwork weights with sensible scales, for tests and benchmarks.

The numbers mean nothing physically: they give hidden states in tanh's working range
(U, V columns of unit scale, coefficients of order one), so timings and numerical checks
behave like those of a trained model of the same size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fastlrnr.numerics.family import Domain
from fastlrnr.numerics.hypernet import HyperWeights
from fastlrnr.numerics.lrnr import LRNRWeights


def random_lrnr(width: int, ranks: Sequence[int], seed: int = 0) -> LRNRWeights:
    """An LRNR of width N = ``width`` with hidden ranks ``ranks`` (float64)."""
    rng = np.random.default_rng(seed)
    N = width
    return LRNRWeights(
        rng.normal(size=(N, 3)),
        0.5 * rng.normal(size=N),
        tuple(rng.normal(size=(N, k)) / np.sqrt(N) for k in ranks),
        tuple(rng.normal(size=(N, k)) for k in ranks),
        tuple(0.1 * rng.normal(size=N) for _ in ranks),
        rng.normal(size=N) / np.sqrt(N),
        0.1,
    )


def random_hyper(
    ranks: Sequence[int], domain: Domain, width: int = 8, seed: int = 0, head_bias: float = 0.8
) -> HyperWeights:
    """A hypernetwork of body width ``width`` for ``domain`` whose heads give coefficients
    around ``head_bias`` (ReLU keeps them ≥ 0)."""
    rng = np.random.default_rng(seed + 1_000_003)
    K = width
    return HyperWeights(
        (rng.normal(size=(K, 3)), rng.normal(size=(K, K)) / np.sqrt(K), rng.normal(size=(K, K)) / np.sqrt(K)),
        tuple(0.1 * rng.normal(size=K) for _ in range(3)),
        tuple(0.3 * rng.normal(size=(k, K)) for k in ranks),
        tuple(np.full(k, head_bias) for k in ranks),
        domain.low,
        domain.high,
    )


def random_model(width: int, ranks: Sequence[int], domain: Domain, seed: int = 0) -> tuple[LRNRWeights, HyperWeights]:
    """(random_lrnr, random_hyper) with one seed."""
    return random_lrnr(width, ranks, seed), random_hyper(ranks, domain, seed=seed)
