"""Exact ∂u/∂μ through the hypernetwork and the LRNR (fastlrnr/numerics/sensitivity.py), against
central differences in float64."""

from pathlib import Path

import numpy as np
import pytest

import fastlrnr.numerics.sensitivity as sensitivity
from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.families.allen_cahn import ALLEN_CAHN, ALLEN_CAHN_FAMILY
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.hypernet import HyperWeights, hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward
from fastlrnr.numerics.random_model import random_lrnr
from fastlrnr.numerics.sensitivity import ParameterSensitivity, PointSensitivity, hyper_jacobian

ROOT = Path(__file__).resolve().parents[2]
RANKS = (5, 4, 3)


def random_hyper(ranks, domain, seed=0, width=8):
    """A hypernetwork over ``domain`` (any number of parameters) with coefficients of order one."""
    rng = np.random.default_rng(seed)
    p = len(domain.params)
    return HyperWeights(
        (rng.normal(size=(width, p)), rng.normal(size=(width, width)) / 3, rng.normal(size=(width, width)) / 3),
        tuple(0.1 * rng.normal(size=width) for _ in range(3)),
        tuple(0.5 * rng.normal(size=(k, width)) for k in ranks),
        tuple(np.full(k, 0.6) for k in ranks),
        domain.low,
        domain.high,
    )


def central(f, mu, h=1e-6):
    """Central differences of f (rows mu (R, p) → (R, M)) → (R, M, p)."""
    out = []
    for k in range(mu.shape[1]):
        up, down = mu.copy(), mu.copy()
        up[:, k] += h
        down[:, k] -= h
        out.append((f(up) - f(down)) / (2 * h))
    return np.stack(out, axis=-1)


@pytest.mark.parametrize("domain", [CDR, ALLEN_CAHN], ids=["three_params", "two_params"])
def test_hyper_jacobian_matches_central_differences(domain):
    hw = random_hyper(RANKS, domain, seed=1)
    mu = domain.sample(5, np.random.default_rng(2))
    S, dS = hyper_jacobian(hw, mu)
    np.testing.assert_array_equal(S, np.concatenate(hyper_forward(hw, mu), axis=1))
    fd = central(lambda m: np.concatenate(hyper_forward(hw, m), axis=1), mu)
    assert dS.shape == (5, sum(RANKS), len(domain.params))
    np.testing.assert_allclose(dS, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_a_fixed_parameter_has_no_derivative():
    from fastlrnr.numerics.families.cdr import CONVECTION

    hw = random_hyper(RANKS, CONVECTION, seed=3)
    _, dS = hyper_jacobian(hw, CONVECTION.sample(3, np.random.default_rng(0)))
    assert np.all(dS[:, :, 1:] == 0.0) and np.any(dS[:, :, 0] != 0.0)


@pytest.mark.parametrize("family,domain", [(CDR_FAMILY, CDR), (ALLEN_CAHN_FAMILY, ALLEN_CAHN)])
def test_parameter_jacobian_matches_central_differences(family, domain):
    weights, hw = random_lrnr(24, RANKS, seed=5), random_hyper(RANKS, domain, seed=6)
    x, t = interior_points(40, 3)
    ps = ParameterSensitivity(weights, hw, x, t, family=family)
    mu = domain.sample(4, np.random.default_rng(7))
    u, J = ps.values_and_jacobian(mu)
    S = np.concatenate(hyper_forward(hw, mu), axis=1)
    want = np.stack([lrnr_forward(weights, S[i], x, t, family=family) for i in range(4)])
    np.testing.assert_allclose(u, want, rtol=0, atol=1e-13)
    fd = central(ps.values, mu)
    np.testing.assert_allclose(J, fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_coefficient_jacobian_matches_central_differences():
    weights = random_lrnr(24, RANKS, seed=8)
    x, t = interior_points(30, 4)
    ps = PointSensitivity(weights, x, t, family=CDR_FAMILY)
    S = np.random.default_rng(9).uniform(0.1, 1.2, size=(3, sum(RANKS)))
    u, J = ps.values_and_jacobian(S)
    fd = central(ps.values, S)
    np.testing.assert_allclose(J, fd, rtol=0, atol=1e-7 * np.abs(fd).max())
    tangents = np.random.default_rng(10).normal(size=(3, sum(RANKS), 2))
    _, Jt = ps.values_and_jacobian(S, tangents)
    np.testing.assert_allclose(Jt, J @ tangents, rtol=0, atol=1e-12)


def test_chunks_of_points_give_the_same_numbers(monkeypatch):
    weights, hw = random_lrnr(24, RANKS, seed=11), random_hyper(RANKS, CDR, seed=12)
    x, t = interior_points(50, 5)
    mu = CDR.sample(3, np.random.default_rng(13))
    whole = ParameterSensitivity(weights, hw, x, t, family=CDR_FAMILY).values_and_jacobian(mu)
    monkeypatch.setattr(sensitivity, "CHUNK_VALUES", 3 * 24 * 7)  # 7 points at a time
    chunked = ParameterSensitivity(weights, hw, x, t, family=CDR_FAMILY).values_and_jacobian(mu)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["cdr", "allen_cahn", "convection"])
def test_shipped_models_jacobian(name):
    """The shipped models' ∂u/∂μ against central differences (float64) at random parameters."""
    art = load_artifact(ROOT / "artifacts" / name)
    x, t = interior_points(32, 6)
    ps = ParameterSensitivity(art.lrnr, art.hyper, x, t, family=art.family)
    mu = art.served_domain.sample(3, np.random.default_rng(14))
    _, J = ps.values_and_jacobian(mu)
    fd = central(ps.values, mu)
    np.testing.assert_allclose(J, fd, rtol=0, atol=1e-6 * np.abs(fd).max())
