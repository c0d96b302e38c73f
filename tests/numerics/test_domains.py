"""The PDE family as data: domains, parameter validation, residual, grids."""

from __future__ import annotations

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY, CONVECTION, DOMAINS, PARAM_NAMES, TEST_DOMAINS
from fastlrnr.numerics.family import Domain, ParameterError, as_param_array, params_to_array
from fastlrnr.numerics.grid import standard_grid, uniform_grid


def test_validate_accepts_points_inside_and_fills_missing_names_with_zero():
    np.testing.assert_array_equal(CONVECTION.validate({"beta": 6.0}), [6.0, 0.0, 0.0])
    np.testing.assert_array_equal(CDR.validate(np.array([1.0, 2.0, 0.0])), [1.0, 2.0, 0.0])
    assert CDR.validate({"beta": 3.0, "nu": 0.0, "rho": 2.0}).dtype == np.float64


@pytest.mark.parametrize(
    "domain, params, param, allowed",
    [
        (CONVECTION, {"beta": 25.0}, "beta", "∈ [1, 20]"),
        (CONVECTION, {"beta": 5.0, "nu": 0.1}, "nu", "= 0"),
        (CDR, {"beta": 2.0, "nu": 1.0, "rho": -0.5}, "rho", "∈ [0, 2]"),
        (CDR, np.array([0.5, 1.0, 1.0]), "beta", "∈ [1, 3]"),
    ],
)
def test_validate_names_the_parameter_and_the_range(domain, params, param, allowed):
    with pytest.raises(ParameterError) as info:
        domain.validate(params)
    assert info.value.param == param
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert message.startswith(param) and allowed in message and domain.name in message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ParameterError, match="finite") as info:
        CDR.validate({"beta": 2.0, "nu": bad})
    assert info.value.param == "nu"
    with pytest.raises(ParameterError, match="finite"):
        CDR.validate(np.array([bad, 1.0, 1.0]))


def test_unknown_names_and_bad_values_are_refused():
    with pytest.raises(ParameterError, match="unknown parameter 'gamma'") as info:
        CDR.validate({"beta": 2.0, "gamma": 1.0})
    assert info.value.param == "gamma"
    with pytest.raises(ParameterError, match="must be numbers"):
        CDR.validate({"beta": "fast"})
    with pytest.raises(ParameterError, match=r"expected shape \(3,\)"):
        CDR.validate(np.ones(4))
    with pytest.raises(ValueError, match=r"expected shape \(B, 3\)"):
        as_param_array(np.ones((2, 2)), PARAM_NAMES)


def test_params_to_array_orders_columns():
    np.testing.assert_array_equal(params_to_array({"rho": 3.0, "beta": 1.0}, PARAM_NAMES), [1.0, 0.0, 3.0])
    assert PARAM_NAMES == ("beta", "nu", "rho")


def test_domain_construction_checks_bounds():
    with pytest.raises(ValueError, match="must bound exactly"):
        Domain("x", {"beta": (0.0, 1.0), "nu": (0.0, 1.0)}, PARAM_NAMES)
    with pytest.raises(ValueError, match="bad range for nu"):
        Domain("x", {"beta": (0.0, 1.0), "nu": (2.0, 1.0), "rho": (0.0, 0.0)}, PARAM_NAMES)
    with pytest.raises(ValueError, match="bad range for rho"):
        Domain("x", {"beta": (0.0, 1.0), "nu": (0.0, 1.0), "rho": (0.0, np.inf)}, PARAM_NAMES)


@pytest.mark.parametrize("domain", list(DOMAINS.values()), ids=list(DOMAINS))
def test_sample_and_grid_stay_inside(domain):
    samples = domain.sample(200, np.random.default_rng(0))
    assert samples.shape == (200, 3)
    assert domain.contains(samples).all()
    np.testing.assert_array_equal(samples, domain.sample(200, np.random.default_rng(0)))
    grid = domain.grid(4)
    assert grid.shape == (4 ** len(domain.active), 3)
    assert domain.contains(grid).all()
    for i in range(3):  # both ends of every axis are in the grid
        assert grid[:, i].min() == domain.low[i] and grid[:, i].max() == domain.high[i]
    for row in grid:
        domain.validate(row)


def test_contains_flags_rows_outside():
    inside = CDR.contains(np.array([[2.0, 1.0, 1.0], [3.5, 1.0, 1.0], [1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(inside, [True, False, True])
    assert CDR.contains(np.array([2.0, 1.0, 1.0])).shape == (1,)


def test_domain_dict_round_trip_and_registries():
    for domain in DOMAINS.values():
        assert Domain.from_dict(domain.to_dict()) == domain
    assert set(TEST_DOMAINS) <= set(DOMAINS)
    assert CONVECTION.active == ("beta",) and CDR.active == PARAM_NAMES
    for name, test_domain in TEST_DOMAINS.items():  # test ranges lie inside the training ranges
        assert np.all(test_domain.low >= DOMAINS[name].low) and np.all(test_domain.high <= DOMAINS[name].high)


def test_standard_grid():
    x, t = standard_grid()
    assert x.shape == (256,) and t.shape == (100,)
    np.testing.assert_allclose(np.diff(x), 2.0 * np.pi / 256.0, rtol=1e-12)
    assert x[0] == 0.0 and x[-1] < 2.0 * np.pi
    assert t[0] == 0.0 and t[-1] == 1.0
    np.testing.assert_allclose(np.diff(t), 1.0 / 99.0, rtol=1e-12)


@pytest.mark.parametrize("nx, nt", [(1, 1), (3, 2), (256, 100), (7, 11)])
def test_uniform_grid(nx, nt):
    x, t = uniform_grid(nx, nt)
    assert x.shape == (nx,) and t.shape == (nt,) and x.dtype == t.dtype == np.float64
    np.testing.assert_array_equal(x, [2.0 * np.pi * j / nx for j in range(nx)])  # periodic: 2π left out
    np.testing.assert_array_equal(t, np.linspace(0.0, 1.0, nt))
    assert t[0] == 0.0 and (nt == 1 or t[-1] == 1.0)


def test_uniform_grid_is_the_standard_grid_and_refuses_bad_sizes():
    for a, b in zip(uniform_grid(256, 100), standard_grid()):
        np.testing.assert_array_equal(a, b)
    for nx, nt in [(0, 5), (5, 0), (-1, 3), (2.5, 3)]:
        with pytest.raises(ValueError, match="positive integers"):
            uniform_grid(nx, nt)


def test_residual_vanishes_on_closed_form_solutions():
    x, t = np.meshgrid(np.linspace(0.0, 2.0 * np.pi, 33), np.linspace(0.0, 1.0, 11))
    beta = 7.3  # pure convection: u = 1 + sin(x − βt)
    u, u_x = 1.0 + np.sin(x - beta * t), np.cos(x - beta * t)
    u_t, u_xx = -beta * np.cos(x - beta * t), -np.sin(x - beta * t)
    np.testing.assert_allclose(CDR_FAMILY.residual(u, u_t, u_x, u_xx, beta, 0.0, 0.0), 0.0, atol=1e-13)
    assert np.abs(CDR_FAMILY.residual(u, u_t, u_x, u_xx, beta + 0.1, 0.0, 0.0)).max() > 0.05
    nu = 0.8  # pure diffusion: u = 1 + e^{−νt} sin x
    decay = np.exp(-nu * t)
    u, u_t = 1.0 + decay * np.sin(x), -nu * decay * np.sin(x)
    u_x, u_xx = decay * np.cos(x), -decay * np.sin(x)
    np.testing.assert_allclose(CDR_FAMILY.residual(u, u_t, u_x, u_xx, 0.0, nu, 0.0), 0.0, atol=1e-13)
    rho = 1.3  # pure reaction, constant in x: logistic u = u0 g / (1 + u0 (g − 1)), g = e^{ρt}
    u0, g = 0.4, np.exp(rho * t)
    u = u0 * g / (1.0 + u0 * (g - 1.0))
    u_t = rho * u0 * (1.0 - u0) * g / (1.0 + u0 * (g - 1.0)) ** 2  # d/dt of the closed form
    np.testing.assert_allclose(CDR_FAMILY.residual(u, u_t, 0.0, 0.0, 0.0, 0.0, rho), 0.0, atol=1e-13)


def test_initial_condition():
    x = np.array([0.0, np.pi / 2.0, 3.0 * np.pi / 2.0])
    np.testing.assert_allclose(CDR_FAMILY.initial_condition(x), [1.0, 2.0, 0.0], atol=1e-15)
