"""The LRNR at fixed points with jets and the per-point residual Jacobian (fastlrnr/numerics/jet_chain.py)."""

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.jet_chain import exact_chain
from fastlrnr.numerics.lrnr import layer0_jets, lrnr_hidden_states, lrnr_jets
from fastlrnr.numerics.random_model import random_lrnr

RANKS = (5, 4, 3)
MU = np.array([[2.0, 0.5, 1.0], [6.0, 0.0, 0.0], [1.0, 0.0, 2.0], [3.0, 1.5, 0.0]])


@pytest.fixture(scope="module")
def weights():
    return random_lrnr(40, RANKS, seed=3)


def rows(R, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.5, size=(R, sum(RANKS)))


def split(S):
    return np.split(S, np.cumsum(RANKS)[:-1], axis=1)


def central_differences(chain, S, mu, h=1e-6):
    out = np.empty(chain.residual(S, mu).shape + (S.shape[1],))
    for p in range(S.shape[1]):
        Sp, Sm = S.copy(), S.copy()
        Sp[:, p] += h
        Sm[:, p] -= h
        out[..., p] = (chain.residual(Sp, mu) - chain.residual(Sm, mu)) / (2 * h)
    return out


def test_residual_is_the_pde_residual_of_the_lrnr(weights):
    x, t = interior_points(30, 0)
    S = rows(4)
    r = exact_chain(weights, x, t, np.float64, family=CDR_FAMILY).residual(S, MU)
    u, u_x, u_t, u_xx = lrnr_jets(weights, split(S), x, t, family=CDR_FAMILY)
    expected = CDR_FAMILY.residual(u, u_t, u_x, u_xx, MU[:, :1], MU[:, 1:2], MU[:, 2:])
    np.testing.assert_allclose(r, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("mu", [MU, MU * np.array([1.0, 0.0, 1.0])], ids=["with_diffusion", "diffusion_free"])
def test_jacobian_matches_central_differences(weights, mu):
    x, t = interior_points(25, 1)
    chain = exact_chain(weights, x, t, np.float64, family=CDR_FAMILY)
    S = rows(4, seed=2)
    r, jac = chain.residual_and_jacobian(S, mu)
    fd = central_differences(chain, S, mu)
    assert jac.shape == (4, 25, sum(RANKS))
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_rows_are_independent(weights):
    x, t = interior_points(20, 2)
    chain = exact_chain(weights, x, t, np.float64, family=CDR_FAMILY)
    S = rows(4, seed=4)
    r, jac = chain.residual_and_jacobian(S, MU)
    for i in range(4):
        ri, ji = chain.residual_and_jacobian(S[i : i + 1], MU[i : i + 1])
        np.testing.assert_allclose(ri[0], r[i], rtol=0, atol=1e-13)
        np.testing.assert_allclose(ji[0], jac[i], rtol=0, atol=1e-12)


def test_jacobian_of_a_row_subset_of_a_forward_state(weights):
    x, t = interior_points(20, 2)
    chain = exact_chain(weights, x, t, np.float64, family=CDR_FAMILY)
    S = rows(4, seed=5)
    state = chain.forward(S, MU)
    keep = np.array([True, False, True, True])
    np.testing.assert_allclose(
        chain.jacobian(state.rows(keep)), chain.residual_and_jacobian(S[keep], MU[keep])[1], rtol=0, atol=1e-13
    )


def test_float32_chain_agrees_with_float64(weights):
    x, t = interior_points(64, 3)
    S = rows(3, seed=6)
    r64, j64 = exact_chain(weights, x, t, np.float64, family=CDR_FAMILY).residual_and_jacobian(S, MU[:3])
    r32, j32 = exact_chain(weights, x, t, np.float32, family=CDR_FAMILY).residual_and_jacobian(S, MU[:3])
    assert j32.dtype == np.float32
    assert np.abs(r32 - r64).max() < 1e-4 * np.abs(r64).max()
    assert np.abs(j32 - j64).max() < 1e-4 * np.abs(j64).max()


def test_hidden_states_are_the_lrnr_states_with_their_jets(weights):
    x, t = interior_points(15, 4)
    S = rows(1, seed=7)
    states = exact_chain(weights, x, t, np.float64, family=CDR_FAMILY).hidden_states(S)
    expected = lrnr_hidden_states(weights, [sl[0] for sl in split(S)], x, t)[1:]
    for h, e in zip(states, expected):
        assert h.shape == (4, 1, 15, weights.width)
        np.testing.assert_allclose(h[0, 0], e, rtol=0, atol=1e-14)
    # the t jet of the first hidden layer against a difference quotient
    d = 1e-6
    hp = exact_chain(weights, x, t + d, np.float64, family=CDR_FAMILY).hidden_states(S)[0][0, 0]
    hm = exact_chain(weights, x, t - d, np.float64, family=CDR_FAMILY).hidden_states(S)[0][0, 0]
    np.testing.assert_allclose(states[0][2, 0], (hp - hm) / (2 * d), rtol=0, atol=1e-7)


def test_layer0_jets_match_differences(weights):
    x, t = interior_points(10, 5)
    j = layer0_jets(weights, x, t)
    d = 1e-5
    f = lambda xx, tt: layer0_jets(weights, xx, tt)[0]
    np.testing.assert_allclose(j[1], (f(x + d, t) - f(x - d, t)) / (2 * d), atol=1e-8)
    np.testing.assert_allclose(j[3], (f(x + d, t) - 2 * f(x, t) + f(x - d, t)) / d**2, atol=1e-4)


def test_shapes_are_checked(weights):
    chain = exact_chain(weights, *interior_points(5, 0), family=CDR_FAMILY)
    with pytest.raises(ValueError, match="expected coefficient rows"):
        chain.residual(np.zeros((2, 3)), MU[:2])
    with pytest.raises(ValueError, match="mu"):
        chain.residual(rows(2), MU[:3])
