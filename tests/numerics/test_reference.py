"""The classical reference solver against closed forms, its own refinements and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.family import ParameterError
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import (
    DEFAULT_SUBSTEPS,
    reference_on_standard_grid,
    solve_reference,
    solve_reference_batch,
)

X_GRID = 2.0 * np.pi * np.arange(256) / 256.0
T_UNEVEN = np.array([0.0, 0.013, 0.2, 0.2, 0.21, 0.5, 0.77, 1.0])
X_ANY = np.array([-3.0, 0.0, 0.1, 1.0, np.pi, 4.4, 2.0 * np.pi, 7.5, 20.0])


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def logistic(u0: np.ndarray, rho: float, t: np.ndarray) -> np.ndarray:
    """Pointwise solution of u' = ρ u (1 − u): rows t, columns u0."""
    g = np.exp(rho * t)[:, None]
    return u0 * g / (1.0 + u0 * (g - 1.0))


@pytest.mark.parametrize("x", [X_GRID, X_ANY], ids=["grid", "arbitrary-x"])
def test_pure_convection_is_a_shift(x):
    beta = 7.3
    u = solve_reference([beta, 0.0, 0.0], x, T_UNEVEN, substeps=10, family=CDR_FAMILY)
    exact = 1.0 + np.sin(x[None, :] - beta * T_UNEVEN[:, None])
    np.testing.assert_allclose(u, exact, rtol=0, atol=1e-12)


def test_pure_diffusion_decays_the_sine():
    nu = 0.9
    u = solve_reference({"nu": nu}, X_ANY, T_UNEVEN, substeps=10, family=CDR_FAMILY)
    exact = 1.0 + np.exp(-nu * T_UNEVEN)[:, None] * np.sin(X_ANY)[None, :]
    np.testing.assert_allclose(u, exact, rtol=0, atol=1e-12)


def test_pure_reaction_is_the_pointwise_logistic_flow():
    rho = 1.7
    u = solve_reference({"rho": rho}, X_GRID, T_UNEVEN, substeps=7, family=CDR_FAMILY)
    np.testing.assert_allclose(u, logistic(CDR_FAMILY.initial_condition(X_GRID), rho, T_UNEVEN), rtol=0, atol=1e-12)


def test_convection_and_reaction_commute_so_splitting_is_exact():
    beta, rho = 5.0, 2.0
    u = solve_reference([beta, 0.0, rho], X_ANY, T_UNEVEN, substeps=3, family=CDR_FAMILY)
    shifted = CDR_FAMILY.initial_condition(X_ANY[None, :] - beta * T_UNEVEN[:, None])
    g = np.exp(rho * T_UNEVEN)[:, None]
    np.testing.assert_allclose(u, shifted * g / (1.0 + shifted * (g - 1.0)), rtol=0, atol=1e-11)


def test_strang_splitting_is_second_order():
    mu, x, t = [2.0, 0.7, 1.5], X_GRID[::4], np.linspace(0.0, 1.0, 11)  # 64-point internal grid
    fine = solve_reference(mu, x, t, substeps=20480, nx_internal=64, family=CDR_FAMILY)
    counts = np.array([40, 80, 160, 320])
    errors = np.array(
        [rel_l2(solve_reference(mu, x, t, substeps=int(n), nx_internal=64, family=CDR_FAMILY), fine) for n in counts]
    )
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all((orders > 1.8) & (orders < 2.2)), (errors, orders)


def test_default_substeps_are_converged():
    x, t = standard_grid()
    mu = np.array([2.0, 0.7, 1.5])
    default = solve_reference(mu, x, t, family=CDR_FAMILY)
    finer = solve_reference(mu, x, t, substeps=4 * DEFAULT_SUBSTEPS, family=CDR_FAMILY)
    assert rel_l2(default, finer) < 1e-6


def test_spectral_interpolation_matches_a_finer_grid():
    mu, t = [2.5, 0.3, 1.8], np.array([0.25, 1.0])
    midpoints = X_GRID + np.pi / 256.0  # not on the 256-point grid, on the 512-point one
    interpolated = solve_reference(mu, midpoints, t, substeps=400, family=CDR_FAMILY)
    direct = solve_reference(mu, midpoints, t, substeps=400, nx_internal=512, family=CDR_FAMILY)
    np.testing.assert_allclose(interpolated, direct, rtol=0, atol=1e-12)
    # periodic in x, and the grid fast path agrees with the general evaluation
    np.testing.assert_allclose(
        solve_reference(mu, midpoints + 2.0 * np.pi, t, substeps=400, family=CDR_FAMILY),
        interpolated,
        rtol=0,
        atol=1e-12,
    )
    on_grid = solve_reference(mu, X_GRID, t, substeps=400, family=CDR_FAMILY)
    np.testing.assert_allclose(
        solve_reference(mu, X_GRID[:-1] + 0.0, t, substeps=400, family=CDR_FAMILY), on_grid[:, :-1], rtol=0, atol=1e-12
    )


def test_output_times_are_exact_and_t0_is_the_initial_condition():
    x = X_ANY
    u = solve_reference([1.5, 0.4, 1.0], x, np.array([0.0, 0.0, 0.3]), substeps=100, family=CDR_FAMILY)
    np.testing.assert_allclose(u[0], CDR_FAMILY.initial_condition(x), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(u[0], u[1])
    # starting the output at 0.3 directly or after an intermediate stop gives the same answer
    alone = solve_reference([1.5, 0.4, 1.0], x, np.array([0.3]), substeps=100, family=CDR_FAMILY)
    np.testing.assert_allclose(alone[0], u[2], rtol=0, atol=1e-12)


def test_batch_equals_loop():
    mus = np.array([[1.0, 0.0, 0.0], [2.0, 0.7, 1.5], [3.0, 2.0, 0.0]])
    t = np.array([0.1, 0.6])
    batch = solve_reference_batch(mus, X_ANY, t, substeps=200, family=CDR_FAMILY)
    assert batch.shape == (3, 2, X_ANY.size)
    for mu, row in zip(mus, batch):
        np.testing.assert_allclose(
            row, solve_reference(mu, X_ANY, t, substeps=200, family=CDR_FAMILY), rtol=0, atol=1e-13
        )


def test_standard_grid_is_fast_and_shaped():
    start = time.perf_counter()
    u = reference_on_standard_grid({"beta": 3.0, "nu": 2.0, "rho": 2.0}, family=CDR_FAMILY)
    elapsed = time.perf_counter() - start
    assert u.shape == (100, 256)
    np.testing.assert_allclose(u[0], CDR_FAMILY.initial_condition(standard_grid()[0]), rtol=0, atol=1e-13)
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "mu, match",
    [
        (np.zeros(2), r"expected shape \(3,\)"),
        (np.zeros((1, 3)), r"expected shape \(3,\)"),
        ([1.0, np.nan, 0.0], "nu must be a finite number"),
        ([np.inf, 0.0, 0.0], "beta must be a finite number"),
        ({"beta": 1.0, "gamma": 2.0}, "unknown parameter 'gamma'"),
        ([1.0, -0.1, 0.0], "nu must be ≥ 0"),
        ([1.0, 0.0, -1.0], "rho must be ≥ 0"),
    ],
)
def test_bad_parameters_raise(mu, match):
    with pytest.raises(ParameterError, match=match):
        solve_reference(mu, X_ANY, T_UNEVEN, substeps=4, family=CDR_FAMILY)


@pytest.mark.parametrize(
    "x, t, kwargs, match",
    [
        (np.zeros((2, 3)), T_UNEVEN, {}, r"expected shape \(nx,\)"),
        (np.array([]), T_UNEVEN, {}, r"expected shape \(nx,\)"),
        (X_ANY, np.array([[0.5]]), {}, r"expected shape \(nt,\)"),
        (np.array([0.0, np.nan]), T_UNEVEN, {}, "x must be finite"),
        (X_ANY, np.array([0.1, np.inf]), {}, "t must be finite"),
        (X_ANY, np.array([-0.1, 0.5]), {}, "t must be ≥ 0"),
        (X_ANY, np.array([0.5, 0.2]), {}, "t must be sorted"),
        (X_ANY, T_UNEVEN, {"substeps": 0}, "substeps must be a positive integer"),
        (X_ANY, T_UNEVEN, {"substeps": 2.5}, "substeps must be a positive integer"),
        (X_ANY, T_UNEVEN, {"nx_internal": 255}, "nx_internal must be an even integer"),
    ],
)
def test_bad_grids_and_settings_raise(x, t, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_reference([1.0, 0.5, 0.5], x, t, family=CDR_FAMILY, **kwargs)


def test_batch_rejects_a_single_row():
    with pytest.raises(ValueError, match=r"expected shape \(B, 3\)"):
        solve_reference_batch(np.zeros(3), X_ANY, T_UNEVEN, substeps=4, family=CDR_FAMILY)
