"""Truncation (docs/method.md, “Truncation”): drop coefficient indices that are zero over the whole domain."""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.family import Domain
from fastlrnr.numerics.hypernet import HyperWeights, hyper_forward


def surviving_indices(hyper: HyperWeights, domain: Domain, per_axis: int) -> list[np.ndarray]:
    """Per layer, the indices i with s_{l,i}(μ) > 0 for some μ of a grid over the domain
    (per_axis points on each active parameter, ends included)."""
    s = hyper_forward(hyper, domain.grid(per_axis))
    return [np.flatnonzero((sl > 0).any(axis=0)) for sl in s]
