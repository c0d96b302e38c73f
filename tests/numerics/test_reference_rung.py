"""The reference solver as the escalation's last rung (fastlrnr/numerics/reference_rung.py): its sites, its
two-resolution estimate, and its deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import solve_reference_batch
from fastlrnr.numerics.reference_cost import ReferenceRates
from fastlrnr.numerics.reference_rung import solve_at_sites, solve_to_tolerance

MUS = np.array([[3.0, 0.0, 2.0], [2.0, 0.5, 1.0], [1.0, 2.0, 2.0], [20.0, 0.0, 0.0], [1.0, 0.05, 0.0]])


def test_points_and_unsorted_axes_match_the_reference():
    rng = np.random.default_rng(0)
    x, t = rng.uniform(-2, 9, 12), rng.uniform(0, 1, 12)
    pts = solve_at_sites(MUS, x, t, True, 4000, 64, family=CDR_FAMILY)
    for p in range(12):  # each point against a solve at exactly its time
        want = solve_reference_batch(MUS, x[p : p + 1], t[p : p + 1], substeps=4000, nx_internal=64, family=CDR_FAMILY)[
            :, 0, 0
        ]
        np.testing.assert_allclose(pts[:, p], want, atol=1e-12)
    axes = solve_at_sites(MUS, x, t, False, 4000, 64, family=CDR_FAMILY)
    order = np.argsort(t)
    want = solve_reference_batch(MUS, x, t[order], substeps=4000, nx_internal=64, family=CDR_FAMILY)
    np.testing.assert_allclose(axes[:, order], want, atol=1e-12)


@pytest.mark.parametrize("tolerance", [1e-3, 1e-5])
@pytest.mark.parametrize("points", [False, True])
def test_the_estimate_bounds_the_true_error_and_meets_the_tolerance(tolerance, points):
    x, t = standard_grid()
    if points:
        rng = np.random.default_rng(1)
        x, t = rng.uniform(0, 2 * np.pi, 16), rng.uniform(0, 1, 16)
        truth = np.stack([solve_at_sites(MUS, x, t, True, 16000, 256, family=CDR_FAMILY)])[0]
    else:
        truth = solve_reference_batch(MUS, x, t, substeps=16000, family=CDR_FAMILY)
    ans = solve_to_tolerance(MUS, x, t, points, tolerance, family=CDR_FAMILY)
    err = np.linalg.norm((ans.u - truth).reshape(len(MUS), -1), axis=1) / np.linalg.norm(
        truth.reshape(len(MUS), -1), axis=1
    )
    assert np.all(ans.estimate <= tolerance) and not ans.exhausted, (ans.estimate, ans.attempts)
    assert np.all(err <= ans.estimate), np.c_[err, ans.estimate]
    assert ans.attempts[0] == 32 and all(a in {32 * 2**k for k in range(9)} for a in ans.attempts)  # doubling


def test_a_deadline_stops_the_doubling_and_says_so():
    x, t = standard_grid()
    t0 = time.perf_counter()
    ans = solve_to_tolerance(MUS, x, t, False, 1e-14, deadline=time.perf_counter() + 0.05, family=CDR_FAMILY)
    assert time.perf_counter() - t0 < 1.0
    assert ans.exhausted
    if ans.attempts:  # an attempt that fitted ran whole; none that did not was started
        assert np.all(np.isfinite(ans.u))
    else:
        assert ans.u is None and np.all(np.isinf(ans.estimate))


def test_an_attempt_that_cannot_fit_is_not_started():
    """Predicted before it starts: too slow for the deadline (rates of a machine a million times
    slower), too large for max_bytes, or stopped at the first poll: nothing is computed."""
    x, t = standard_grid()
    slow = ReferenceRates(step_s=1.0)
    for kwargs in (
        {"deadline": time.perf_counter() + 60.0, "rates": slow},
        {"max_bytes": 1 << 20},
        {"stop": lambda: True},
    ):
        t0 = time.perf_counter()
        ans = solve_to_tolerance(MUS, x, t, False, 1e-6, family=CDR_FAMILY, **kwargs)
        assert ans.exhausted and ans.attempts == () and ans.u is None, kwargs
        assert np.all(np.isinf(ans.estimate)) and time.perf_counter() - t0 < 5.0


def test_a_stop_inside_an_attempt_keeps_the_earlier_ones():
    x, t = standard_grid()
    first: list[int] = []
    one = solve_to_tolerance(
        MUS[:2], x, t, False, 1.0, family=CDR_FAMILY, stop=lambda: bool(first.append(1))
    )  # one attempt meets 1.0
    assert one.attempts == (32,)
    polls: list[int] = []

    def stop() -> bool:  # the first attempt's polls pass, the second attempt is stopped at its third
        polls.append(1)
        return len(polls) > len(first) + 2

    ans = solve_to_tolerance(MUS[:2], x, t, False, 1e-14, family=CDR_FAMILY, stop=stop)
    assert ans.exhausted and ans.attempts == (32,) and np.all(np.isfinite(ans.u))
    np.testing.assert_array_equal(ans.u, one.u)


def test_the_uniform_march_is_chunked_without_changing_a_value(monkeypatch):
    """Rows marched in groups and times written in blocks change nothing but the rounding of the
    products that combine them (a group's interpolation is one matrix product)."""
    import fastlrnr.numerics.reference_cost as rc
    import fastlrnr.numerics.reference_rung as rr

    rng = np.random.default_rng(2)
    x, t = rng.uniform(0, 6, 9), rng.uniform(0, 1, 9)
    whole = solve_at_sites(MUS, x, t, True, 64, 32, uniform=True, family=CDR_FAMILY)
    monkeypatch.setattr(rc, "CHECK_STATE_BYTES", 1)  # one row at a time
    same = {"rtol": 0.0, "atol": 1e-14}
    np.testing.assert_allclose(solve_at_sites(MUS, x, t, True, 64, 32, uniform=True, family=CDR_FAMILY), whole, **same)
    monkeypatch.setattr(rr, "CHUNK_VALUES", 1)  # and one time at a time to the sites
    np.testing.assert_allclose(solve_at_sites(MUS, x, t, True, 64, 32, uniform=True, family=CDR_FAMILY), whole, **same)
