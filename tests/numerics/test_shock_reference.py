"""The burgers family's reference solver (fastlrnr/numerics/shock_reference.py) through its own entry
point, ``solve_reference_batch`` and the reference rung: against Cole–Hopf at shocked settings,
its orders, its CFL rule, its resolution rule, and bad input."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fastlrnr.numerics import shock_reference as sr
from fastlrnr.numerics.cole_hopf import cole_hopf_burgers
from fastlrnr.numerics.families import BURGERS_FAMILY
from fastlrnr.numerics.family import ParameterError
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import solve_reference, solve_reference_batch
from fastlrnr.numerics.reference_rung import points_for, solve_to_tolerance

X, T = standard_grid()


def rel_l2(u: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def series(coef, z: np.ndarray, terms: int = 30) -> np.ndarray:
    return sum(coef(m) * z**m for m in range(terms))


# the ETDRK4 coefficients (h = 1) as power series in z: exact rational coefficients, no cancellation
F = math.factorial
SERIES = {
    "Q": lambda m: 0.5 ** (m + 1) / F(m + 1),
    "f1": lambda m: 4.0 / F(m + 3) - 3.0 / F(m + 2) + 1.0 / F(m + 1),
    "f2": lambda m: -2.0 / F(m + 3) + 1.0 / F(m + 2),
    "f3": lambda m: 4.0 / F(m + 3) - 1.0 / F(m + 2),
}


def closed(z: np.ndarray) -> dict[str, np.ndarray]:
    ez = np.exp(z)
    return {
        "Q": (np.exp(0.5 * z) - 1.0) / z,
        "f1": (-4.0 - z + ez * (4.0 - 3.0 * z + z * z)) / z**3,
        "f2": (2.0 + z + ez * (z - 2.0)) / z**3,
        "f3": (-4.0 - 3.0 * z - z * z + ez * (4.0 - z)) / z**3,
    }


def test_etd_coefficients_match_series_near_zero_and_closed_forms_far_from_it():
    angles = np.exp(1j * np.linspace(0.0, 2.0 * np.pi, 13))
    small = np.concatenate([[0.0], 1e-8 * angles, 0.3 * angles])
    big = np.concatenate([-np.logspace(0.5, 3, 9), 3.0 * angles, -20.0 + 5j * np.arange(-3, 4)])
    e, e2, q, f1, f2, f3 = sr.etd_coefficients(small, 1.0)
    got = {"Q": q, "f1": f1, "f2": f2, "f3": f3}
    for name, coef in SERIES.items():
        np.testing.assert_allclose(got[name], series(coef, small), rtol=1e-13, atol=0, err_msg=name)
    np.testing.assert_allclose(e, np.exp(small), rtol=1e-15)
    np.testing.assert_allclose(e2, np.exp(0.5 * small), rtol=1e-15)
    e, _, q, f1, f2, f3 = sr.etd_coefficients(big, 1.0)
    want = closed(big)
    for name, value in {"Q": q, "f1": f1, "f2": f2, "f3": f3}.items():
        np.testing.assert_allclose(value, want[name], rtol=1e-12, atol=0, err_msg=name)
    # the step scales them: coefficients of (lin, h) are h times those of (h·lin, 1)
    np.testing.assert_allclose(sr.etd_coefficients(big / 0.01, 0.01)[3], 0.01 * f1, rtol=1e-13)


@pytest.mark.parametrize(
    "beta, nu, tolerance",
    [(2.0, 1e-2, 1e-5), (3.0, 5e-3, 1e-5), (1.1, 2e-3, 1e-5), (1.0, 1e-3, 1e-5), (3.0, 1e-3, 1e-3)],
)
def test_matches_cole_hopf_at_shocked_settings_with_the_rules_points(beta, nu, tolerance):
    """ρ = 0: the solve at ``points_for``'s resolution meets the rule's tolerance against the exact
    solution, and half the points do not (the rule is not wasteful by a factor of two)."""
    exact = cole_hopf_burgers(beta, nu, X, T)
    n = int(sr.points_for(beta, nu, tolerance))
    mu = np.array([[beta, nu, 0.0]])
    u = solve_reference_batch(mu, X, T, nx_internal=n, family=BURGERS_FAMILY)[0]
    assert rel_l2(u, exact) <= tolerance, (n, rel_l2(u, exact))
    if n // 2 >= sr.MIN_POINTS:
        half = solve_reference_batch(mu, X, T, nx_internal=n // 2, family=BURGERS_FAMILY)[0]
        assert rel_l2(half, exact) > tolerance / 10


def test_default_resolution_is_the_rule_per_row_and_rows_with_other_points_are_solved_apart():
    mu = np.array([[2.0, 1e-2, 0.0], [1.0, 1e-2, 0.7], [2.0, 1e-2, 0.5], [3.0, 5e-3, 0.0]])
    substeps, points = BURGERS_FAMILY.reference_resolution(mu)
    assert substeps == sr.DEFAULT_SUBSTEPS
    np.testing.assert_array_equal(points, sr.points_for(mu[:, 0], mu[:, 1]))
    assert len(set(points.tolist())) == 3
    t = T[::11]
    u = solve_reference_batch(mu, X, t, family=BURGERS_FAMILY)
    assert u.shape == (4, t.size, X.size)
    for i in (1, 3):  # a row alone at its own points: its group's steps are its own
        alone = solve_reference(mu[i], X, t, nx_internal=int(points[i]), family=BURGERS_FAMILY)
        np.testing.assert_allclose(u[i], alone, rtol=0, atol=1e-13)
    for i in (0, 3):
        assert rel_l2(u[i], cole_hopf_burgers(mu[i, 0], mu[i, 1], X, t)) < sr.REFERENCE_TOLERANCE


def test_fourth_order_in_time_at_rho_one():
    """At fixed points the step floor ``substeps`` (the CFL rule switched off by a huge Courant
    number) converges at fourth order against a sixteen times finer march."""
    mu, t = np.array([[2.0, 1e-2, 1.0]]), np.linspace(0.0, 1.0, 11)
    ref = sr.etdrk4_march(mu, t, 12800, 512, courant=1e9)
    counts = [200, 400, 800]
    errors = np.array([rel_l2(sr.etdrk4_march(mu, t, s, 512, courant=1e9), ref) for s in counts])
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(orders > 3.4) and orders[-1] > 3.7 and np.all(orders < 4.3), (errors, orders)


def test_spectral_self_convergence_in_the_points_at_rho_one():
    """ρ = 1 (no closed form): the error against a finer solve falls by more than ten at every
    doubling of the points (geometric, not algebraic: the shock is resolved)."""
    mu, t = np.array([[2.0, 1e-2, 1.0]]), T[::9]
    fine = solve_reference_batch(mu, X, t, nx_internal=2048, family=BURGERS_FAMILY)
    errors = np.array(
        [rel_l2(solve_reference_batch(mu, X, t, nx_internal=n, family=BURGERS_FAMILY), fine) for n in (256, 512, 1024)]
    )
    assert np.all(errors[:-1] / errors[1:] > 10.0), errors
    assert errors[-1] < 1e-5


def test_the_cfl_rule_sets_the_steps_whatever_substeps_asks():
    mu, t, n = np.array([[2.0, 3e-3, 0.5]]), np.linspace(0.0, 1.0, 11), 512
    per_unit = 2.0 * (n // 2) / sr.COURANT  # 512 steps per unit time by the CFL limit
    assert sr.steps_for(0.1, 1, n // 2, 2.0) == math.ceil(0.1 * per_unit)
    assert sr.steps_for(0.1, 10_000, n // 2, 2.0) == 1000
    low = sr.etdrk4_march(mu, t, 1, n)
    np.testing.assert_array_equal(low, sr.etdrk4_march(mu, t, int(per_unit), n))  # the same steps
    assert np.abs(sr.etdrk4_march(mu, t, 4 * int(per_unit), n) - low).max() > 1e-12  # more steps: another answer


def test_exact_without_transport_and_the_logistic_limit():
    x = 2.0 * np.pi * np.arange(64) / 64.0
    t = np.array([0.0, 0.3, 0.3, 1.0])
    u = sr.etdrk4_march(np.array([[0.0, 0.4, 0.0]]), t, 10, 64)[0]  # heat equation: linear part only, exact
    np.testing.assert_allclose(u, 1.0 + np.exp(-0.4 * t)[:, None] * np.sin(x), rtol=0, atol=1e-13)
    u = sr.etdrk4_march(np.array([[0.0, 1e-14, 1.0]]), t, 200, 64)[0]  # the pointwise logistic flow
    g = np.exp(t)[:, None]
    np.testing.assert_allclose(u, (1.0 + np.sin(x)) * g / (1.0 + (1.0 + np.sin(x)) * (g - 1.0)), atol=1e-10)


def test_filter_against_the_two_thirds_rule():
    """Both quadratic-term treatments converge to the same solution; at equal points the filter
    keeps more modes and is the more accurate (the reason it is the default)."""
    mu, t = np.array([[3.0, 5e-3, 0.0]]), T[::9]
    exact = cole_hopf_burgers(3.0, 5e-3, X, t)
    houli = rel_l2(sr.etdrk4_march(mu, t, 200, 2048)[0][:, ::8], exact)
    thirds = rel_l2(sr.etdrk4_march(mu, t, 200, 2048, dealias="two_thirds")[0][:, ::8], exact)
    assert houli < 2e-4 and thirds < 1e-3 and houli < thirds / 3, (houli, thirds)
    mask = sr.spectral_mask(2048, "two_thirds")
    assert mask[682] == 1.0 and mask[683] == 0.0 and sr.max_wavenumber(2048, "two_thirds") == 682


def test_points_for_grows_with_beta_over_nu_and_tightening():
    assert int(sr.points_for(3.0, 1e-3)) == 16384
    assert int(sr.points_for(1.0, 1e-2)) == sr.MIN_POINTS
    betas = np.linspace(0.5, 3.0, 11)
    for tol in (1e-2, 1e-4, 1e-6):
        n = sr.points_for(betas, 2e-3, tol)
        assert np.all(np.diff(n) >= 0)
    n = [int(sr.points_for(2.0, 2e-3, tol)) for tol in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-9)]
    assert n == sorted(n) and n[0] == n[1] and n[-1] == n[-2]  # held at the measured ends
    assert [sr.fft_size(m) for m in (1, 9, 257, 321, 16383)] == [8, 10, 320, 384, 16384]


@pytest.mark.parametrize("points", [False, True])
def test_the_rung_meets_a_tolerance_for_burgers(points):
    mu = np.array([[2.0, 1e-2, 0.0], [3.0, 1e-2, 0.0], [1.5, 5e-3, 0.0]])
    x, t = X, T
    if points:
        rng = np.random.default_rng(3)
        x, t = rng.uniform(0.0, 2.0 * np.pi, 16), rng.uniform(0.0, 1.0, 16)
        exact = np.array(
            [[cole_hopf_burgers(b, nu, x[p : p + 1], t[p : p + 1])[0, 0] for p in range(16)] for b, nu, _ in mu]
        )
    else:
        exact = np.stack([cole_hopf_burgers(b, nu, x, t) for b, nu, _ in mu])
    tolerance = 1e-4
    first = points_for(tolerance, BURGERS_FAMILY, mu)
    assert first == 2 * int(sr.points_for(mu[:, 0], mu[:, 1], tolerance).max())
    ans = solve_to_tolerance(mu, x, t, points, tolerance, family=BURGERS_FAMILY)
    err = np.array([rel_l2(ans.u[i], exact[i]) for i in range(3)])
    assert np.all(ans.estimate <= tolerance) and not ans.exhausted, (ans.estimate, ans.attempts)
    assert np.all(err <= ans.estimate), np.c_[err, ans.estimate]
    assert ans.attempts == (sr.DEFAULT_SUBSTEPS,) and np.all(ans.points == first)


def test_the_rung_refines_the_points_every_attempt_and_ends_at_its_finest(monkeypatch):
    mu = np.array([[3.0, 1e-3, 1.0]])
    rng = np.random.default_rng(4)
    x, t = rng.uniform(0.0, 2.0 * np.pi, 8), rng.uniform(0.3, 1.0, 8)
    monkeypatch.setattr(BURGERS_FAMILY, "rung", dataclasses.replace(BURGERS_FAMILY.rung, max_points=1024))
    ans = solve_to_tolerance(mu, x, t, True, 1e-9, n=256, family=BURGERS_FAMILY)
    assert ans.attempts == (200, 400, 800) and ans.n == 1024 and int(ans.points[0]) == 1024
    assert not ans.exhausted and ans.estimate[0] > 1e-9  # the plan ended, not the deadline


@pytest.mark.parametrize(
    "mu, kwargs, error, match",
    [
        (np.zeros((2, 2)), {}, ParameterError, r"expected shape \(B, 3\)"),
        (np.array([[3.0, 0.0, 0.0]]), {}, ParameterError, "nu must be > 0"),
        (np.array([[-1.0, 1e-3, 0.0]]), {}, ParameterError, "beta must be ≥ 0"),
        (np.array([[1.0, 1e-3, np.nan]]), {}, ParameterError, "rho must be a finite number"),
        (np.array([[1.0, 1e-3, 0.0]]), {"nx_internal": 255}, ValueError, "nx_internal must be an even integer"),
        (np.array([[1.0, 1e-3, 0.0]]), {"substeps": 0}, ValueError, "substeps must be a positive integer"),
    ],
)
def test_bad_input_through_the_reference_entry_point(mu, kwargs, error, match):
    with pytest.raises(error, match=match):
        solve_reference_batch(mu, X, T[:3], family=BURGERS_FAMILY, **kwargs)


@pytest.mark.parametrize(
    "t, n, kwargs, match",
    [
        (np.array([0.5, 0.2]), 64, {}, "t must be a non-empty, sorted"),
        (np.array([-0.1]), 64, {}, "t must be a non-empty, sorted"),
        (np.array([0.5]), 63, {}, "n must be an even integer"),
        (np.array([0.5]), 64, {"dealias": "none"}, "dealias must be one of"),
        (np.array([0.5]), 64, {"courant": 0.0}, "courant must be > 0"),
    ],
)
def test_bad_march_settings_raise(t, n, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sr.etdrk4_march(np.array([[1.0, 1e-2, 0.0]]), t, 10, n, **kwargs)


def test_a_blow_up_far_below_the_rules_points_is_an_error_not_nan():
    with pytest.raises(FloatingPointError, match="far too coarse"):
        sr.etdrk4_march(np.array([[3.0, 1e-5, 1.0]]), np.linspace(0.0, 1.0, 11), 1, 256)
