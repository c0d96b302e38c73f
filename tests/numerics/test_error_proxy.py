"""The linearised-error proxy (fastlrnr/numerics/error_proxy.py): the error equation it integrates, its
order of convergence, and how well it tracks the true error of a shipped model."""

from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.error_estimate import spearman
from fastlrnr.numerics.error_proxy import ErrorProxy, error_field, linearised_error
from fastlrnr.numerics.families import BURGERS_FAMILY
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.grid import uniform_grid
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.numerics.random_model import random_model
from fastlrnr.training.row_answers import fields, reference_fields, relative_l2

ROOT = Path(__file__).resolve().parents[2]


def manufactured(nx: int, nt: int, mu, u_of):
    """A known error δ(x, t) (δ(x, 0) = 0), a field u, and the residual r = −L_u δ that makes
    δ the exact solution of the error equation: r, u, δ (1, nt, nx)."""
    beta, nu, rho = mu
    x, t = uniform_grid(nx, nt)
    X, T = np.meshgrid(x, t)
    d = T**2 * np.cos(X - 1.0) + 0.5 * T * np.sin(2 * X)
    d_t = 2 * T * np.cos(X - 1.0) + 0.5 * np.sin(2 * X)
    d_x = -(T**2) * np.sin(X - 1.0) + T * np.cos(2 * X)
    d_xx = -(T**2) * np.cos(X - 1.0) - 2 * T * np.sin(2 * X)
    u = u_of(X, T)
    r = -(d_t + beta * d_x - nu * d_xx - rho * (1 - 2 * u) * d)
    return r[None], u[None], d[None]


@pytest.mark.parametrize("mu", [(5.0, 0.0, 0.0), (2.0, 1.0, 0.0), (1.0, 0.5, 2.0), (3.0, 0.0, 1.5)])
def test_second_order_in_time_on_a_manufactured_error(mu):
    u_of = lambda X, T: 0.4 + 0.3 * np.sin(X + T)
    gaps = []
    for nt in (9, 17, 33, 65):
        r, u, d = manufactured(16, nt, mu, u_of)
        gaps.append(np.abs(error_field(r, u, np.array([mu]), 1.0, family=CDR_FAMILY) - d).max() / np.abs(d).max())
    assert gaps[-1] < 1e-3
    orders = np.log2(np.array(gaps[:-1]) / np.array(gaps[1:]))
    assert np.all(orders > 1.8), (gaps, orders)  # second order (Strang splitting + ETD)
    r, u, d = manufactured(16, 65, mu, u_of)
    want = np.sqrt(np.sum(d[:, 1:] ** 2) / np.sum(u[:, 1:] ** 2))
    assert linearised_error(r, u, np.array([mu]), 1.0, family=CDR_FAMILY)[0] == pytest.approx(want, rel=1e-3)


def test_exact_for_a_source_linear_in_time_without_advection_or_reaction():
    r, u, d = manufactured(16, 5, (0.0, 0.0, 0.0), lambda X, T: 0.5 + 0 * X)
    np.testing.assert_allclose(error_field(r, u, np.zeros((1, 3)), 1.0, family=CDR_FAMILY), d, atol=1e-13)


def test_rows_are_independent_and_bad_rows_give_inf():
    mus = [(1.0, 0.5, 0.0), (4.0, 0.1, 1.0)]
    parts = [manufactured(16, 17, mu, lambda X, T: 0.5 + 0 * X) for mu in mus]
    r = np.concatenate([p[0] for p in parts])
    u = np.concatenate([p[1] for p in parts])
    both = linearised_error(r, u, np.array(mus), 1.0, family=CDR_FAMILY)
    for i in range(2):
        assert both[i] == pytest.approx(
            linearised_error(r[i : i + 1], u[i : i + 1], np.array(mus[i : i + 1]), 1.0, family=CDR_FAMILY)[0]
        )
    r[1, 3, 2] = np.nan
    out = linearised_error(r, u, np.array(mus), 1.0, family=CDR_FAMILY)
    assert np.isfinite(out[0]) and out[1] == np.inf
    with pytest.raises(ValueError, match="expected r, u"):
        linearised_error(r[:, :1], u[:, :1], np.array(mus), 1.0, family=CDR_FAMILY)


def test_error_proxy_of_a_model_uses_its_residual_on_the_grid():
    w, hyper = random_model(24, (4, 3), CDR, seed=3)
    proxy = ErrorProxy(w, nx=8, nt=5, dtype=np.float64, chunk=2, family=CDR_FAMILY)
    S = np.abs(np.random.default_rng(0).normal(size=(3, 7)))
    mu = np.array([[1.0, 0.5, 1.0], [2.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    p, rms = proxy(S, mu)
    state = proxy.chain.forward(S, mu)
    np.testing.assert_allclose(rms, np.sqrt(np.mean(state.r**2, axis=1)), rtol=1e-12)
    want = linearised_error(state.r.reshape(3, 5, 8), state.u.reshape(3, 5, 8), mu, 1.0, family=CDR_FAMILY)
    np.testing.assert_allclose(p, want, rtol=1e-12)
    assert proxy.to_dict() == {"nx": 8, "nt": 5}
    with pytest.raises(ValueError, match="proxy grid"):
        ErrorProxy(w, nx=2, nt=5, family=CDR_FAMILY)


def test_proxy_tracks_the_true_error_of_the_shipped_cdr_model():
    """Against the reference solver, on the faces and corners of the trained domain: the
    proxy on a 16 × 17 grid ranks the hypernetwork's errors and stays within 2× of each."""
    art = load_artifact(ROOT / "artifacts" / "cdr")
    mus = art.domain.grid(3)  # 27 sets: corners, edge and face centres, the centre
    S = hyper_rows(art.hyper, mus)
    err = relative_l2(fields(art.lrnr, S, family=art.family), reference_fields(mus, family=art.family))
    p, _ = ErrorProxy(art.lrnr, 16, 17, family=CDR_FAMILY)(S, mus)
    assert spearman(p, err) > 0.95
    ratio = err / p
    assert np.all((ratio > 0.5) & (ratio < 2.0)), np.c_[mus, err, p]


def manufactured_transport(nx: int, nt: int, mu):
    """As ``manufactured`` for the Burgers family: L_u δ = δ_t + β (u δ)_x − ν δ_xx − ρ(1 − 2u) δ."""
    beta, nu, rho = mu
    x, t = uniform_grid(nx, nt)
    X, T = np.meshgrid(x, t)
    d = T**2 * np.cos(X - 1.0) + 0.5 * T * np.sin(2 * X)
    d_t = 2 * T * np.cos(X - 1.0) + 0.5 * np.sin(2 * X)
    d_x = -(T**2) * np.sin(X - 1.0) + T * np.cos(2 * X)
    d_xx = -(T**2) * np.cos(X - 1.0) - 2 * T * np.sin(2 * X)
    u, u_x = 1.0 + 0.6 * np.sin(X - T), 0.6 * np.cos(X - T)
    r = -(d_t + beta * (u_x * d + u * d_x) - nu * d_xx - rho * (1 - 2 * u) * d)
    return r[None], u[None], d[None]


@pytest.mark.parametrize("mu", [(3.0, 1e-3, 0.0), (1.0, 1e-2, 1.0), (2.0, 5e-3, 0.5)])
def test_the_transport_error_equation_converges_on_a_manufactured_error(mu):
    """Burgers: the variable-coefficient transport β (u e)_x is integrated explicitly (RK4 with the
    residual linear in time between grid times): second order in the grid's time step."""
    gaps = []
    for nt in (9, 17, 33, 65):
        r, u, d = manufactured_transport(16, nt, mu)
        got = error_field(r, u, np.array([mu]), 1.0, family=BURGERS_FAMILY)
        gaps.append(np.abs(got - d).max() / np.abs(d).max())
    assert gaps[-1] < 1e-3, gaps
    orders = np.log2(np.array(gaps[:-1]) / np.array(gaps[1:]))
    assert np.all(orders > 1.8), (gaps, orders)


def test_newtons_iteration_solves_the_burgers_error_equation_with_its_transport_remainder():
    """r = −(L_u δ + β δ δ_x + ρ δ²) makes δ the exact error; the linearised solve misses the
    quadratic terms and Newton's iteration (whose shift is the remainder, β e e_x included)
    recovers δ to the grid's accuracy."""
    from fastlrnr.numerics.correction import newton_error_field

    mu = (3.0, 2e-3, 1.0)
    beta, nu, rho = mu
    x, t = uniform_grid(32, 65)
    X, T = np.meshgrid(x, t)
    d = 0.4 * T * np.sin(X) + 0.3 * T**2 * np.cos(2 * X)
    d_t = 0.4 * np.sin(X) + 0.6 * T * np.cos(2 * X)
    d_x = 0.4 * T * np.cos(X) - 0.6 * T**2 * np.sin(2 * X)
    d_xx = -0.4 * T * np.sin(X) - 1.2 * T**2 * np.cos(2 * X)
    u, u_x = 1.0 + 0.5 * np.sin(X - T), 0.5 * np.cos(X - T)
    linear = d_t + beta * (u_x * d + u * d_x) - nu * d_xx - rho * (1 - 2 * u) * d
    r = -(linear + beta * d * d_x + rho * d * d)
    e, e_lin, steps, inc = newton_error_field(r[None], u[None], np.array([mu]), 1.0, 8, 1e-10, BURGERS_FAMILY)
    err = lambda f: np.abs(f[0] - d).max() / np.abs(d).max()  # noqa: E731
    assert err(e_lin) > 0.05 and err(e) < 2e-3 and err(e) < err(e_lin) / 30, (err(e_lin), err(e))
    assert 1 <= steps[0] <= 8 and inc[0] < 1e-4  # converging (the RK4 solve is not the exact discrete Jacobian)
