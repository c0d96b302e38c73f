"""What a reference-rung attempt is predicted to cost (fastlrnr/numerics/reference_cost.py), and the
memory an attempt really takes against that prediction."""

from __future__ import annotations

import tracemalloc

import numpy as np

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.reference_cost import (
    ReferenceRates,
    attempt_bytes,
    attempt_seconds,
    check_substeps,
    march_steps,
)
from fastlrnr.numerics.reference_rung import NX_INTERNAL, solve_to_tolerance


def test_every_distinct_time_is_at_least_one_step():
    scattered = np.linspace(0.0, 1.0, 40_001)[1:]
    assert march_steps(scattered, 32) == 40_000  # not 32: one step per distinct time at least
    assert march_steps(scattered, 32, uniform=True) == 32  # the check's uniform march does not care
    assert march_steps(np.array([0.0, 0.5]), 32) == 16 and march_steps(np.array([0.0]), 32) == 0
    assert march_steps(np.array([0.25, 1.0]), 8) == 2 + 6


def test_the_prediction_grows_with_the_distinct_times_not_the_sites():
    rates = ReferenceRates()
    few = np.linspace(0.0, 1.0, 17)[1:]
    many = np.linspace(0.0, 1.0, 40_001)[1:]
    one_time = attempt_seconds(rates, 48, few, 40_000, 32, 128)  # 40 000 sites at 16 times
    distinct = attempt_seconds(rates, 48, many, 40_000, 32, 128)  # 40 000 sites at 40 000 times
    assert distinct > 100 * attempt_seconds(rates, 48, few, 16, 32, 128)
    assert distinct > 4 * one_time
    assert attempt_seconds(rates, 48, few, 40_000, 64, 128) > one_time  # the next attempt costs more
    # ... unless the times already force its steps: its check's steps are then the same too
    assert attempt_seconds(rates, 48, many, 40_000, 64, 128) == distinct


def test_the_check_steps_twice_as_long_as_the_served_solve():
    assert check_substeps(np.linspace(0.0, 1.0, 17)[1:], 32) == 16  # s/2 when s sets the steps
    assert check_substeps(np.linspace(0.0, 1.0, 100), 32) == 49  # 99 intervals force 99 steps: 49
    assert check_substeps(np.linspace(0.0, 1.0, 100), 512) == 297  # 6 steps per interval: 594, half


def test_an_attempts_memory_stays_within_its_prediction():
    """8 rows at 20 000 scattered points: the old march kept every state (8 × 20 000 × 128 float64,
    164 MB); now the states go to the sites as the march reaches them."""
    rng = np.random.default_rng(0)
    mu = np.c_[rng.uniform(1, 3, 8), rng.uniform(0, 2, 8), rng.uniform(0, 2, 8)]
    x, t = rng.uniform(0, 2 * np.pi, 20_000), rng.uniform(0, 1, 20_000)
    tracemalloc.start()
    try:
        ans = solve_to_tolerance(mu, x, t, True, 1.0, family=CDR_FAMILY)  # one attempt meets 1.0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ans.attempts == (32,) and np.all(np.isfinite(ans.u))
    kept_states = 8 * 20_000 * NX_INTERNAL * 8
    assert peak <= attempt_bytes(8, 8, 20_000), (peak, attempt_bytes(8, 8, 20_000))
    assert peak < kept_states / 2, (peak, kept_states)
