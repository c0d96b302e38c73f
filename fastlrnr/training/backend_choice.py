"""Measure the fast-phase backends of a model on held-out queries and choose its default.

Each candidate (a backend with its settings, and for ``reduced`` the EIM rank n) runs on
the same held-out queries — uniform ones over the domain plus ones from its hardest part
(``hard_part``: low viscosity where ν varies, the upper end of β otherwise). Measured per candidate: the
median ratio of its error to the hypernetwork's, the share of queries it improved, its
worst ratio, and its wall time per query (one query at a time, as the service runs them).
The default is the fastest candidate that meets all three accuracy targets, or else the
candidate with the lowest median ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseModel, FastPhaseSettings, run_fast_phase
from fastlrnr.numerics.hypernet import HyperWeights, hyper_rows
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.training.row_answers import fields, reference_fields, relative_l2

MEDIAN_RATIO = 0.65  # median error ratio fast / hypernetwork at most this
IMPROVED = 0.80  # at least this share of queries improved
WORST_RATIO = 1.05  # no query worse than this ratio


def hard_part(domain: Domain, family: PdeFamily) -> tuple[Domain, str]:
    """The hardest part of a domain and its description: the family's hard-band parameter
    (ν) in the lowest 15% of its range when the domain varies it (little diffusion to damp
    errors), else the upper 40% of the first active parameter (fast convection)."""
    bounds = dict(domain.bounds)
    key = family.hard_band.param if family.hard_band is not None else None
    if key in domain.active:
        lo, hi = bounds[key]
        bounds[key] = (lo, lo + 0.15 * (hi - lo))
        label = f"{family.hard_band.name} ≤ {bounds[key][1]:g}"
    else:
        key = domain.active[0]
        lo, hi = bounds[key]
        bounds[key] = (hi - 0.4 * (hi - lo), hi)
        label = f"{key} ∈ [{bounds[key][0]:g}, {hi:g}]"
    return Domain(domain.name, bounds, params=domain.params), label


def heldout_queries(
    domain: Domain, family: PdeFamily, n_uniform: int = 16, n_hard: int = 8, seed: int = 7
) -> np.ndarray:
    """(n_uniform + n_hard, p) seeded queries: uniform over ``domain``, then from its
    ``hard_part``."""
    rng = np.random.default_rng(seed)
    uniform = domain.sample(n_uniform, rng)
    return np.concatenate([uniform, hard_part(domain, family)[0].sample(n_hard, rng)])


def measure(
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    candidates: list[tuple[dict, FastPhaseModel, FastPhaseSettings]],
    mus: np.ndarray,
    family: PdeFamily,
    references: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[dict]:
    """One row per candidate ``(label, model, settings)``: accuracy against the hypernetwork
    and time per query on the queries ``mus`` (rows of ``family``'s parameters); their
    reference fields from ``references`` (None: ``reference_fields``)."""
    refs = references(mus) if references is not None else reference_fields(mus, family)
    S_hat = hyper_rows(hyper, mus)
    e_hat = relative_l2(fields(lrnr, S_hat, family=family), refs)
    rows = []
    for label, model, settings in candidates:
        served, ms, accepted = [], [], []
        for b in range(len(mus)):
            t0 = time.perf_counter()
            res = run_fast_phase(model, S_hat[b : b + 1], mus[b : b + 1], settings)[0]
            ms.append(1e3 * (time.perf_counter() - t0))
            served.append(np.concatenate(res.s))
            accepted.append(res.accepted)
        ratio = relative_l2(fields(lrnr, np.array(served), family=family), refs) / e_hat
        rows.append(
            {
                **label,
                "settings": settings.to_dict(),
                "median_ratio": float(np.median(ratio)),
                "improved": float(np.mean(ratio < 1.0)),
                "worst_ratio": float(ratio.max()),
                "accepted": float(np.mean(accepted)),
                "ms_median": float(np.median(ms)),
                "meets_targets": bool(
                    np.median(ratio) <= MEDIAN_RATIO and np.mean(ratio < 1.0) >= IMPROVED and ratio.max() <= WORST_RATIO
                ),
            }
        )
    return rows


def choose(rows: list[dict]) -> tuple[int, str]:
    """Index of the default candidate and why it was chosen."""
    meeting = [i for i, r in enumerate(rows) if r["meets_targets"]]
    if meeting:
        i = min(meeting, key=lambda k: rows[k]["ms_median"])
        return i, "fastest candidate meeting the accuracy targets"
    i = min(range(len(rows)), key=lambda k: rows[k]["median_ratio"])
    return i, "no candidate meets the accuracy targets; lowest median error ratio"
