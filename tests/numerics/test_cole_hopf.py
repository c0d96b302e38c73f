"""The Cole–Hopf solution of viscous Burgers (fastlrnr/numerics/cole_hopf.py), the burgers reference
solver's oracle: its quadrature is converged, it tends to the inviscid solution at first order in ν,
it solves the PDE (finite differences), conserves the mean and starts from 1 + sin x."""

from __future__ import annotations

import numpy as np
import pytest

from fastlrnr.numerics.cole_hopf import cole_hopf_burgers

X = 2.0 * np.pi * np.arange(64) / 64.0


def characteristics(beta: float, x: np.ndarray, t: float) -> np.ndarray:
    """The inviscid solution before the front breaks (β t < 1): u = 1 + sin x0 on the
    characteristic x = x0 + β (1 + sin x0) t, x0 found by Newton's method (unique root)."""
    x0 = x.copy()
    for _ in range(60):
        x0 -= (x0 + beta * (1.0 + np.sin(x0)) * t - x) / (1.0 + beta * t * np.cos(x0))
    return 1.0 + np.sin(x0)


def test_the_quadrature_is_converged_at_the_sharpest_corner():
    t = np.array([0.01, 0.2, 0.5, 1.0])
    u = cole_hopf_burgers(3.0, 1e-3, X, t)
    finer = cole_hopf_burgers(3.0, 1e-3, X, t, step_divisor=6.0, tail=80.0)
    np.testing.assert_allclose(u, finer, rtol=0, atol=1e-12)
    # a too coarse quadrature is visibly wrong: the check above can fail
    assert np.abs(cole_hopf_burgers(3.0, 1e-3, X, t, step_divisor=0.3) - u).max() > 1e-6


def test_it_tends_to_the_inviscid_solution_at_first_order_in_nu():
    """Before breaking (t < 1/β) the viscous solution differs from the characteristics' by O(ν):
    halving ν halves the difference."""
    beta, t = 3.0, np.array([0.1, 0.2, 0.3])
    exact = np.stack([characteristics(beta, X, ti) for ti in t])
    diffs = [np.abs(cole_hopf_burgers(beta, nu, X, t) - exact).max(axis=1) for nu in (2e-4, 1e-4)]
    np.testing.assert_allclose(diffs[0] / diffs[1], 2.0, rtol=0.02)
    assert np.all(diffs[1] < 5e-3)


def test_it_solves_the_pde():
    """Centred differences of the Cole–Hopf field leave a residual of u_t + β u u_x − ν u_xx that
    is their own truncation error (a quarter when the steps halve); with another ν it is not."""
    beta, nu = 2.0, 0.05
    x = np.linspace(0.0, 2.0 * np.pi, 50, endpoint=False)

    def residuals(h: float, k: float) -> tuple[float, float, float]:
        t = np.array([0.4 - k, 0.4, 0.4 + k])
        at = {dx: cole_hopf_burgers(beta, nu, x + dx, t) for dx in (-h, 0.0, h)}
        u = at[0.0][1]
        u_t = (at[0.0][2] - at[0.0][0]) / (2.0 * k)
        u_x = (at[h][1] - at[-h][1]) / (2.0 * h)
        u_xx = (at[h][1] - 2.0 * u + at[-h][1]) / (h * h)
        r = u_t + beta * u * u_x
        return np.abs(r - nu * u_xx).max(), np.abs(r - 1.2 * nu * u_xx).max(), np.abs(u_t).max()

    coarse, _, _ = residuals(2e-3, 1e-4)
    fine, wrong_nu, scale = residuals(1e-3, 5e-5)
    assert 3.8 < coarse / fine < 4.2, (coarse, fine)
    assert fine < 1e-5 * scale and wrong_nu > 1e-2 * scale


def test_mean_is_conserved_and_the_start_is_the_initial_condition():
    x = 2.0 * np.pi * np.arange(2048) / 2048.0  # resolves the shock at ν = 1e-2
    u = cole_hopf_burgers(2.0, 1e-2, x, np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(u.mean(axis=1), 1.0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(u[0], 1.0 + np.sin(x), rtol=0, atol=1e-15)
    assert np.abs(np.diff(u[2])).max() > 0.05  # a front has formed
    # β = 0: the heat equation
    np.testing.assert_allclose(
        cole_hopf_burgers(0.0, 0.3, X, np.array([0.7]))[0], 1.0 + np.exp(-0.21) * np.sin(X), rtol=0, atol=1e-15
    )


def test_periodic_in_x_and_times_in_any_order():
    t = np.array([0.9, 0.1, 0.5])
    u = cole_hopf_burgers(2.5, 3e-3, X, t)
    np.testing.assert_allclose(cole_hopf_burgers(2.5, 3e-3, X + 2.0 * np.pi, t), u, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(cole_hopf_burgers(2.5, 3e-3, X, t[[1]])[0], u[1])


@pytest.mark.parametrize(
    "beta, nu, x, t, match",
    [
        (1.0, 0.0, X, [0.5], "nu must be a finite number > 0"),
        (1.0, -1e-3, X, [0.5], "nu must be a finite number > 0"),
        (-1.0, 1e-3, X, [0.5], "beta must be a finite number ≥ 0"),
        (np.nan, 1e-3, X, [0.5], "beta must be a finite number ≥ 0"),
        (1.0, 1e-3, X.reshape(8, 8), [0.5], r"expected shape \(nx,\)"),
        (1.0, 1e-3, X, [], r"expected shape \(nt,\)"),
        (1.0, 1e-3, X, [-0.1], "t must be ≥ 0"),
        (1.0, 1e-3, X, [np.inf], "t must be finite"),
    ],
)
def test_bad_input_raises(beta, nu, x, t, match):
    with pytest.raises(ValueError, match=match):
        cole_hopf_burgers(beta, nu, x, np.asarray(t, dtype=float))
