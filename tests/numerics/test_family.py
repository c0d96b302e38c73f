"""fastlrnr/numerics/family.py and fastlrnr/numerics/families/: what a PDE family declares is consistent with its
residual, and the numerics (reference solver, error equation, jet chain) work for a second
family, Allen–Cahn."""

import numpy as np
import pytest

from fastlrnr.numerics.correction import newton_error_field
from fastlrnr.numerics.families import ALLEN_CAHN_FAMILY, CDR_FAMILY, FAMILIES, family_named
from fastlrnr.numerics.families.allen_cahn import ALLEN_CAHN
from fastlrnr.numerics.families.cdr import CDR
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.grid import interior_points, uniform_grid
from fastlrnr.numerics.jet_chain import exact_chain
from fastlrnr.numerics.lrnr import lrnr_forward
from fastlrnr.numerics.random_model import random_lrnr
from fastlrnr.numerics.reference import solve_reference, solve_reference_batch

AC = ALLEN_CAHN_FAMILY
# rows of parameters per family, in its columns
MUS = {
    "cdr": np.array([[2.0, 0.3, 1.5], [1.0, 0.0, 2.0], [3.0, 1.0, 0.0]]),
    "allen_cahn": np.array([[0.1, 2.0], [0.5, 1.0], [0.0, 3.0]]),
    "burgers": np.array([[2.0, 1e-3, 0.5], [1.0, 1e-2, 1.0], [3.0, 5e-3, 0.0]]),
}


def test_registry_names_the_families():
    assert set(FAMILIES) == {"cdr", "allen_cahn", "burgers"}
    assert family_named("cdr") is CDR_FAMILY
    with pytest.raises(KeyError, match="known"):
        family_named("heat")


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_error_equation_is_the_residual_expanded_about_u(family: PdeFamily):
    """R[u + e] = R[u] + L_u e + N_u(e) with L_u e = e_t + a_x e_x + a_xx e_xx + b (u e)_x − c(u) e
    and N_u(e) = remainder + b e e_x: an algebraic identity, checked on random values
    (derivatives need not be consistent)."""
    rng = np.random.default_rng(0)
    shape = (3, 50)
    u, u_t, u_x, u_xx, e, e_t, e_x, e_xx = rng.normal(size=(8,) + shape)
    params = family.columns(rng.uniform(0.1, 2.0, size=(3, len(family.params))))
    a_x, a_xx = family.linear_coefficients(*params)
    b = family.burgers_coefficient(*params)
    L = e_t + a_x * e_x + a_xx * e_xx + b * (u_x * e + u * e_x) - family.reaction_coefficient(u, *params) * e
    lhs = family.residual(u + e, u_t + e_t, u_x + e_x, u_xx + e_xx, *params)
    rhs = family.residual(u, u_t, u_x, u_xx, *params) + L + family.remainder(u, e, *params) + b * e * e_x
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12 * np.abs(lhs).max())


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_newton_shift_is_the_general_formula(family: PdeFamily):
    """A family's closed-form Newton shift (CDR: ρe²) equals −N_u(e) − (c(u + e) − c(u)) e."""
    rng = np.random.default_rng(1)
    u, e = rng.normal(size=(2, 3, 40))
    params = family.columns(rng.uniform(0.1, 2.0, size=(3, len(family.params))))
    general = PdeFamily.newton_shift(family, u, e, *params)
    np.testing.assert_allclose(family.newton_shift(u, e, *params), general, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_reaction_flow_solves_the_residuals_ode(family: PdeFamily):
    """The reference solver's exact reaction flow agrees with RK4 on u' = −R[u] at u_t = u_x = u_xx = 0."""
    mu = MUS[family.name]
    params = family.columns(mu)
    u0 = np.linspace(-0.9, 1.9, 15)[None, :].repeat(len(mu), 0)
    if family is AC:
        u0 = np.clip(u0, -0.9, 0.9)

    def f(u):  # the pointwise part: u_x = 0 switches off any transport term
        return -family.residual(u, 0.0, 0.0, 0.0, *params)

    h, n = 0.3, 3000
    u = u0.copy()
    for _ in range(n):
        k1 = f(u)
        k2 = f(u + 0.5 * h / n * k1)
        k3 = f(u + 0.5 * h / n * k2)
        k4 = f(u + h / n * k3)
        u = u + h / n / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(family.reaction_flow(h, *params)(u0), u, rtol=1e-10, atol=1e-12)


def test_cdr_symbol_and_ansatz():
    k = np.arange(5.0)
    mu = MUS["cdr"]
    beta, nu, rho = CDR_FAMILY.columns(mu)
    np.testing.assert_array_equal(CDR_FAMILY.symbol(k, beta, nu, rho), -1j * beta * k - nu * k * k)
    x, t, g = np.linspace(0, 6, 7), 0.5, np.arange(7.0)
    u, u_x, u_t, u_xx = CDR_FAMILY.ansatz_jets(x, t, g, g, g, None)
    np.testing.assert_array_equal(u, 1.0 + np.sin(x) + t * g)
    assert u_xx is None


def test_domains_keep_their_parameter_names():
    assert CDR.to_dict()["params"] == ["beta", "nu", "rho"]  # written always: no family is the default
    assert Domain.from_dict(CDR.to_dict()) == CDR
    legacy = {k: v for k, v in CDR.to_dict().items() if k != "params"}  # a record from before
    assert Domain.from_dict(legacy, params=CDR.params) == CDR
    with pytest.raises(ValueError, match="names no parameters"):
        Domain.from_dict(legacy)
    assert Domain.from_dict(ALLEN_CAHN.to_dict()) == ALLEN_CAHN
    assert ALLEN_CAHN.sample(4, np.random.default_rng(0)).shape == (4, 2)
    np.testing.assert_array_equal(ALLEN_CAHN.validate({"rho": 1.0}), [0.0, 1.0])
    with pytest.raises(ValueError, match="beta"):
        ALLEN_CAHN.validate({"beta": 1.0})


# ---------------------------------------------------------------- Allen–Cahn numerics
def test_allen_cahn_reference_is_second_order_and_matches_a_fine_solve():
    mu = np.array([[0.1, 3.0], [0.5, 1.0]])
    x, t = uniform_grid(64, 5)
    fine = solve_reference_batch(mu, x, t, substeps=6400, nx_internal=128, family=AC)
    finer = solve_reference_batch(mu, x, t, substeps=12800, nx_internal=256, family=AC)
    assert np.abs(fine - finer).max() < 2e-8  # (64 points in x would leave 2e-7 at ν = 0.1, ρ = 3)
    errs = []
    for s in (100, 200, 400):
        u = solve_reference_batch(mu, x, t, substeps=s, nx_internal=128, family=AC)
        errs.append(np.sqrt(np.sum((u - fine) ** 2, axis=(1, 2)) / np.sum(fine**2, axis=(1, 2))))
    errs = np.array(errs)
    ratios = errs[:-1] / errs[1:]
    assert np.all((ratios > 3.7) & (ratios < 4.3)), ratios  # second order
    # the initial condition, and |u| < 1 (the reaction's stable states are ±1)
    np.testing.assert_allclose(fine[:, 0], np.broadcast_to(0.5 * np.sin(x), (2, 64)), atol=1e-14)
    assert np.abs(fine).max() < 1.0


def test_allen_cahn_reference_single_row_and_linear_rows():
    x, t = uniform_grid(32, 3)
    u = solve_reference({"nu": 0.2, "rho": 0.0}, x, t, nx_internal=32, family=AC)
    # ρ = 0: pure diffusion, 0.5 sin x e^{−νt} exactly
    np.testing.assert_allclose(u, 0.5 * np.sin(x)[None] * np.exp(-0.2 * t)[:, None], atol=1e-14)
    with pytest.raises(ValueError, match="rho"):
        solve_reference_batch(np.array([[0.1, -1.0]]), x, t, family=AC)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        solve_reference_batch(np.array([[1.0, 0.1, 1.0]]), x, t, family=AC)


def _manufactured_ac(mu: np.ndarray, nx: int = 32, nt: int = 33):
    """(r − r̄, u, e*) for u = ū − e* with e* known, on uniform_grid(nx, nt): the error equation
    R[u + e] − R[u] = r̄ − r with source r − r̄ (mirrors tests/numerics/test_correction.py)."""
    x, t = uniform_grid(nx, nt)
    X, T = np.meshgrid(x, t)
    a = 0.3
    ub = 0.5 * np.sin(X) * np.exp(-T)  # not a solution: its own residual is part of the source
    ub_t, ub_x, ub_xx = -ub, 0.5 * np.cos(X) * np.exp(-T), -ub
    es = a * T * (1 + np.cos(X - T))
    es_t = a * (1 + np.cos(X - T)) + a * T * np.sin(X - T)
    es_x, es_xx = -a * T * np.sin(X - T), -a * T * np.cos(X - T)
    u, u_t, u_x, u_xx = ub - es, ub_t - es_t, ub_x - es_x, ub_xx - es_xx
    r = AC.residual(u, u_t, u_x, u_xx, *mu)
    rb = AC.residual(ub, ub_t, ub_x, ub_xx, *mu)
    return r - rb, u, es


def test_allen_cahn_newton_finds_the_exact_error_of_a_manufactured_case_and_never_makes_it_worse():
    mu = np.array([[0.1, 3.0], [0.5, 1.5], [0.3, 0.0]])
    r, u, es = (np.stack(a) for a in zip(*(_manufactured_ac(m, 32, 129) for m in mu)))

    def rel(e, ref):
        return np.sqrt(np.sum((e - ref) ** 2, axis=(1, 2)) / np.sum(ref**2, axis=(1, 2)) + 1e-300)

    errs = []
    for k in range(5):
        e, e_lin, steps, inc = newton_error_field(r, u, mu, 1.0, k, 0.0, AC)
        errs.append(rel(e, es))
        if k == 0:
            assert np.all(steps == 0) and np.isnan(inc[:2]).all() and inc[2] == 0.0  # ρ = 0: linear
    errs = np.array(errs)
    assert errs[0, 0] > 0.05  # the linearised error misses the cubic part at ρ = 3
    assert np.all(errs[1:] <= errs[:-1] * 1.05), errs
    assert errs[-1, 0] < errs[0, 0] / 10, errs[:, 0]
    np.testing.assert_allclose(errs[:, 2], errs[0, 2])  # ρ = 0: nothing to iterate
    _, _, steps, inc = newton_error_field(r, u, mu, 1.0, 10, 1e-12, AC)
    assert np.all(steps[:2] <= 6) and np.all(inc[:2] <= 1e-12), (steps, inc)
    # what remains is the grid's error: second order in the time step
    coarse, _, _, _ = newton_error_field(r[:, ::2], u[:, ::2], mu, 1.0, 6, 0.0, AC)
    assert np.all(errs[-1, :2] < rel(coarse, es[:, ::2])[:2] / 3), (errs[-1], rel(coarse, es[:, ::2]))


RANKS = (5, 4, 3)


@pytest.fixture(scope="module")
def weights():
    return random_lrnr(40, RANKS, seed=3)


def _ac_field(weights, S, x, t):
    """u = 0.5 sin x + t g for the LRNR's g (lrnr_forward is the CDR ansatz 1 + sin x + t g)."""
    s = np.split(S, np.cumsum(RANKS)[:-1], axis=1)
    return lrnr_forward(weights, s, x, t, family=CDR_FAMILY) - (1.0 + np.sin(x)) + 0.5 * np.sin(x)


def test_allen_cahn_jet_chain_residual_is_the_family_residual_of_finite_differences(weights):
    x, t = interior_points(30, 0)
    S = np.random.default_rng(0).uniform(0.0, 1.5, size=(3, sum(RANKS)))
    mu = MUS["allen_cahn"]
    r = exact_chain(weights, x, t, np.float64, family=AC).residual(S, mu)
    h = 1e-4
    f = lambda dx, dt: _ac_field(weights, S, x + dx, t + dt)  # noqa: E731
    u = f(0, 0)
    u_t = (f(0, h) - f(0, -h)) / (2 * h)
    u_x = (f(h, 0) - f(-h, 0)) / (2 * h)
    u_xx = (f(h, 0) - 2 * u + f(-h, 0)) / (h * h)
    expected = AC.residual(u, u_t, u_x, u_xx, *AC.columns(mu))
    np.testing.assert_allclose(r, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("nu", [1.0, 0.0], ids=["with_diffusion", "diffusion_free"])
def test_allen_cahn_jet_chain_jacobian_matches_central_differences(weights, nu):
    x, t = interior_points(25, 1)
    chain = exact_chain(weights, x, t, np.float64, family=AC)
    S = np.random.default_rng(2).uniform(0.0, 1.5, size=(3, sum(RANKS)))
    mu = MUS["allen_cahn"] * np.array([nu, 1.0])
    _, jac = chain.residual_and_jacobian(S, mu)
    fd = np.empty_like(jac)
    for p in range(S.shape[1]):
        Sp, Sm = S.copy(), S.copy()
        Sp[:, p] += 1e-6
        Sm[:, p] -= 1e-6
        fd[..., p] = (chain.residual(Sp, mu) - chain.residual(Sm, mu)) / 2e-6
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-7 * np.abs(fd).max())
    assert len(chain.hidden_states(S)) == len(RANKS)
    with pytest.raises(ValueError, match=r"mu \(R, 2\)"):
        chain.residual(S, np.ones((3, 3)))


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_every_familys_jet_chain_jacobian_matches_central_differences(weights, family):
    """∂R/∂s from the chain's reverse pass (seeded by the family's residual partials, a transport
    term b u u_x included) against central differences of the chain's own residual, float64."""
    x, t = interior_points(25, 4)
    chain = exact_chain(weights, x, t, np.float64, family=family)
    S = np.random.default_rng(5).uniform(0.0, 1.5, size=(3, sum(RANKS)))
    mu = MUS[family.name]
    _, jac = chain.residual_and_jacobian(S, mu)
    fd = np.empty_like(jac)
    for p in range(S.shape[1]):
        Sp, Sm = S.copy(), S.copy()
        Sp[:, p] += 1e-6
        Sm[:, p] -= 1e-6
        fd[..., p] = (chain.residual(Sp, mu) - chain.residual(Sm, mu)) / 2e-6
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_residual_partials_are_the_residuals_derivatives(family):
    rng = np.random.default_rng(6)
    u, u_t, u_x, u_xx = rng.normal(size=(4, 3, 30))
    params = family.columns(MUS[family.name])
    R_u, R_ux, R_uxx = family.residual_partials(u, u_x, *params)
    h = 1e-6
    R = lambda du=0.0, dux=0.0, duxx=0.0: family.residual(u + du, u_t, u_x + dux, u_xx + duxx, *params)  # noqa: E731
    np.testing.assert_allclose(R_u, (R(du=h) - R(du=-h)) / (2 * h), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(R_ux, (R(dux=h) - R(dux=-h)) / (2 * h), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(R_uxx, (R(duxx=h) - R(duxx=-h)) / (2 * h), rtol=1e-6, atol=1e-8)
