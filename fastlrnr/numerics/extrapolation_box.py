"""How far a model answers outside its served domain: the extrapolation box, defined once.

Outside the served domain an answer's estimate is widened by a factor measured at calibration
(``fastlrnr.training.calibrate``: twice the largest error / estimate seen on points of this
box). The widening holds only where it was measured, so the box the calibration samples is
the box the service accepts (``allow_extrapolation``); beyond it a request is refused (with a
tolerance too: an answer the reference could not give in time would fall back on the widening).

- :func:`measured_box` is the box: each active parameter's served range widened by its own
  width on each side, never below 0; a parameter the served domain fixes stays fixed, unless
  the trained domain varies it (a served face, burgers' β = 1): then it is widened by its
  trained width. The calibration samples
  it and writes it into the manifest (``error_estimate.extrapolation_domain``).
- :func:`legacy_box` is what a manifest without that entry is served with — the rule the
  service applied before the box was stored: the *training* domain widened by its width, at
  least ``LEGACY_MIN_SPAN``, on each side, never below 0. It is wider than what such an
  artifact's calibration measured wherever the served range is narrower than the training
  range or narrower than ``LEGACY_MIN_SPAN`` (Allen–Cahn's ν: measured to 0.19, served to 1.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from fastlrnr.numerics.family import Domain

LEGACY_MIN_SPAN = 1.0  # the old rule's least widening of an active parameter
KEY = "extrapolation_domain"  # where the manifest stores the box (in ``error_estimate``)


def _widened(domain: Domain, span: np.ndarray, name: str, description: str) -> Domain:
    lo, hi = domain.low, domain.high
    low, high = np.maximum(lo - span, 0.0), hi + span
    bounds = {k: (float(low[i]), float(high[i])) for i, k in enumerate(domain.params)}
    return Domain(name, bounds, domain.params, description)


def _reach(served: Domain, trained: Domain | None) -> np.ndarray:
    """How far beyond each served bound the box goes: the served width of an active parameter;
    for a parameter the trained domain varies but the served one fixes (a served face, as
    burgers' β = 1), the trained width; 0 for a parameter fixed in both."""
    span = served.high - served.low
    if trained is not None:
        for k in trained.active:
            i = served.params.index(k)
            if k not in served.active:
                span[i] = trained.bounds[k][1] - trained.bounds[k][0]
    return span


def measured_box(served: Domain, trained: Domain | None = None) -> Domain:
    """The extrapolation box of a served domain: what the calibration measures the widening on.
    ``trained``: the trained domain, whose parameters the served domain fixes are widened by
    their trained width (see ``_reach``)."""
    return _widened(
        served,
        _reach(served, trained),
        f"{served.name}-extrapolation",
        "extrapolation box: the served range widened by its width on each side (never below 0), "
        "where the estimates' widening outside the served domain was measured",
    )


def legacy_box(domain: Domain) -> Domain:
    """The box served for a manifest that does not store one (the rule before it was stored)."""
    span = np.where(domain.high > domain.low, np.maximum(domain.high - domain.low, LEGACY_MIN_SPAN), 0.0)
    return _widened(
        domain,
        span,
        f"{domain.name}-extrapolation",
        "extrapolation box by the rule of manifests that do not store one: the training domain widened by "
        f"its width (at least {LEGACY_MIN_SPAN:g}) on each side, never below 0",
    )


def read_box(section: Mapping, domain: Domain, served: Domain) -> tuple[Domain, bool]:
    """(the box, whether the manifest stored it) from a manifest's ``error_estimate`` section;
    ValueError when the stored box is malformed, over other parameters, or does not hold the
    served domain."""
    stored = section.get(KEY)
    if stored is None:
        return legacy_box(domain), False
    box = Domain.from_dict(stored, params=served.params)
    if box.params != served.params:
        raise ValueError(f"{KEY} has parameters {list(box.params)}, the served domain {list(served.params)}")
    if not (np.all(box.low <= served.low + 1e-12) and np.all(box.high >= served.high - 1e-12)):
        raise ValueError(f"{KEY} {box.bounds} does not hold the served domain {served.bounds}")
    return box, True


def sample_box(
    served: Domain,
    n: int,
    seed: int,
    admissible: Callable[[np.ndarray], np.ndarray] | None = None,
    trained: Domain | None = None,
) -> np.ndarray:
    """(n, p) points of the extrapolation box outside the served domain: each breaks one bound of
    one parameter the box widens (uniform between the bound and the box's), the others uniform
    over the served range — what the calibration measures the widening on. ``admissible``: rows
    (R, p) → (R,) bool; a drawn row it refuses is drawn again (a row's reference can be out of
    reach: burgers as ν → 0). ``trained``: as in ``measured_box``."""
    rng = np.random.default_rng(seed)
    box = measured_box(served, trained)
    lo, hi = served.low, served.high
    axes = np.flatnonzero(_reach(served, trained) > 0)  # the parameters the box widens
    out, refused = [], 0
    while len(out) < n:
        mu = lo + (hi - lo) * rng.random(len(served.params))
        i = rng.choice(axes)
        below = rng.random() < 0.5 and lo[i] > box.low[i]
        mu[i] = rng.uniform(box.low[i], lo[i]) if below else rng.uniform(hi[i], box.high[i])
        if admissible is not None and not admissible(mu[None])[0]:
            refused += 1
            if refused > 100 * n:
                raise ValueError(f"the extrapolation box {box.bounds} has almost no admissible rows")
            continue
        out.append(mu)
    return np.array(out)
