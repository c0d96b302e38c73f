"""FastLRNR for a set of collocation points: EIM/DEIM on layers 1..L, layer 0 exact (fastlrnr/numerics/fastlrnr.py)."""

import io
import json

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.fastlrnr import ReducedOperators, build_fastlrnr, identity_operators
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.jet_chain import exact_chain
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.numerics.random_model import random_lrnr

RANKS = (6, 5, 4)
MU = np.array([[2.0, 0.5, 1.0], [6.0, 0.0, 0.0], [1.0, 0.3, 2.0]])


def coefficient_rows(count, seed=1):
    return np.random.default_rng(seed).uniform(0.2, 1.5, size=(count, sum(RANKS)))


def lifted_lrnr(N=48, r=5, seed=0) -> LRNRWeights:
    """A width-r network copied onto N neurons in r groups: every hidden state (and each of
    its jets) lies in the r-dimensional span of the group map."""
    rng = np.random.default_rng(seed)
    E = np.eye(r)[np.arange(N) % r]
    small = random_lrnr(r, RANKS, seed)
    U = tuple(3 * rng.normal(size=(N, k)) / np.sqrt(N) for k in RANKS)
    return LRNRWeights(
        E @ small.A,
        E @ small.a,
        U,
        tuple(E @ V for V in small.V),
        tuple(E @ b for b in small.b),
        E @ small.w / (N / r),
        0.2,
    )


def test_identity_operators_are_the_lrnr():
    w = random_lrnr(32, RANKS, seed=0)
    x, t = interior_points(20, 0)
    S = coefficient_rows(3)
    r_full, j_full = exact_chain(w, x, t, np.float64, family=CDR_FAMILY).residual_and_jacobian(S, MU)
    r_id, j_id = identity_operators(w, x, t).chain(family=CDR_FAMILY).residual_and_jacobian(S, MU)
    np.testing.assert_array_equal(r_full, r_id)
    np.testing.assert_array_equal(j_full, j_id)


def test_full_rank_fastlrnr_is_the_lrnr():
    w = random_lrnr(24, RANKS, seed=1)
    x, t = interior_points(30, 1)
    ops, quality = build_fastlrnr(
        w, x, t, coefficient_rows(12), rank=24, heldout_rows=coefficient_rows(3, 2), family=CDR_FAMILY
    )
    S = coefficient_rows(3, seed=3)
    r_full, j_full = exact_chain(w, x, t, np.float64, family=CDR_FAMILY).residual_and_jacobian(S, MU)
    r_red, j_red = ops.chain(family=CDR_FAMILY).residual_and_jacobian(S, MU)
    np.testing.assert_allclose(r_red, r_full, rtol=0, atol=1e-10)
    np.testing.assert_allclose(j_red, j_full, rtol=0, atol=1e-9)
    assert all(layer["eim_error_heldout"] < 1e-10 for layer in quality["layers"])


def test_states_of_rank_n_are_reproduced_with_n_equal_to_that_rank():
    w = lifted_lrnr(N=48, r=5)
    x, t = interior_points(40, 2)
    ops, quality = build_fastlrnr(
        w, x, t, coefficient_rows(6), rank=5, heldout_rows=coefficient_rows(2, 9), family=CDR_FAMILY
    )
    assert ops.n == 5 and ops.ranks == RANKS
    S = coefficient_rows(3, seed=4)
    r_full, j_full = exact_chain(w, x, t, np.float64, family=CDR_FAMILY).residual_and_jacobian(S, MU)
    r_red, j_red = ops.chain(family=CDR_FAMILY).residual_and_jacobian(S, MU)
    np.testing.assert_allclose(r_red, r_full, rtol=0, atol=1e-9 * np.abs(r_full).max())
    np.testing.assert_allclose(j_red, j_full, rtol=0, atol=1e-8 * np.abs(j_full).max())
    assert max(layer["eim_error_heldout"] for layer in quality["layers"]) < 1e-10


def test_reduced_jacobian_matches_central_differences():
    w = random_lrnr(40, RANKS, seed=5)
    x, t = interior_points(30, 3)
    ops, _ = build_fastlrnr(w, x, t, coefficient_rows(10), rank=12, family=CDR_FAMILY)
    chain = ops.chain(family=CDR_FAMILY)
    S = coefficient_rows(3, seed=6)
    r, jac = chain.residual_and_jacobian(S, MU)
    h = 1e-6
    for p in range(S.shape[1]):
        Sp, Sm = S.copy(), S.copy()
        Sp[:, p] += h
        Sm[:, p] -= h
        fd = (chain.residual(Sp, MU) - chain.residual(Sm, MU)) / (2 * h)
        np.testing.assert_allclose(jac[..., p], fd, rtol=0, atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_eim_error_falls_with_the_rank_and_the_report_is_json():
    w = random_lrnr(40, RANKS, seed=7)
    x, t = interior_points(30, 4)
    train, held = coefficient_rows(16), coefficient_rows(4, seed=8)
    errors = []
    for n in (4, 10, 20):
        _, quality = build_fastlrnr(w, x, t, train, rank=n, heldout_rows=held, family=CDR_FAMILY)
        json.dumps(quality, allow_nan=False)
        assert quality["n"] == n and quality["points"] == 30 and quality["snapshot_sets"] == 16
        errors.append([layer["eim_error_heldout"] for layer in quality["layers"]])
        assert all(len(layer["singular_values"]) == 20 for layer in quality["layers"])
    errors = np.array(errors)
    assert np.all(errors[1:] <= errors[:-1] + 1e-12) and np.all(errors[-1] < errors[0])


def test_to_arrays_round_trip_through_npz():
    w = random_lrnr(30, RANKS, seed=9)
    ops, _ = build_fastlrnr(w, *interior_points(12, 5), coefficient_rows(5), rank=6, family=CDR_FAMILY)
    buf = io.BytesIO()
    np.savez(buf, **ops.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        back = ReducedOperators.from_arrays(dict(z))
    S = coefficient_rows(2, seed=10)
    np.testing.assert_array_equal(
        back.chain(family=CDR_FAMILY).residual(S, MU[:2]), ops.chain(family=CDR_FAMILY).residual(S, MU[:2])
    )
    assert [p.tolist() for p in back.p] == [p.tolist() for p in ops.p]


def test_inputs_are_validated():
    w = random_lrnr(16, RANKS, seed=11)
    x, t = interior_points(8, 6)
    with pytest.raises(ValueError, match="rank"):
        build_fastlrnr(w, x, t, coefficient_rows(2), rank=17, family=CDR_FAMILY)
    ops, _ = build_fastlrnr(w, x, t, coefficient_rows(4), rank=4, family=CDR_FAMILY)
    arrays = ops.to_arrays()
    arrays["bias2"] = arrays["bias2"][:-1]
    with pytest.raises(ValueError, match="layer 2"):
        ReducedOperators.from_arrays(arrays)
