"""FastLRNR reduced network (core/fastlrnr.py)."""
import io
import json

import numpy as np
import pytest

from core.eim import deim_indices, pod_basis
from core.fastlrnr import (FastLRNRSettings, ReducedOperators, build_fastlrnr, build_reduced_operators,
                           collect_snapshots, fast_jets, sample_points)
from core.lrnr import LRNRWeights, lrnr_jets

RANKS = (6, 5, 4)


def random_lrnr(N=64, ranks=RANKS, seed=0) -> LRNRWeights:
    rng = np.random.default_rng(seed)
    orth = lambda k: np.linalg.qr(rng.normal(size=(N, k)))[0] if k <= N else rng.normal(size=(N, k)) / np.sqrt(k)
    return LRNRWeights(rng.normal(size=(N, 3)), 0.5 * rng.normal(size=N), tuple(orth(k) for k in ranks),
                       tuple(orth(k) for k in ranks), tuple(0.3 * rng.normal(size=N) for _ in ranks),
                       rng.normal(size=N) / np.sqrt(N), 0.2)


def lifted_lrnr(N=64, r=5, ranks=RANKS, seed=0, eps=0.0) -> LRNRWeights:
    """A width-r network copied onto N neurons in r groups: every hidden state lies in an
    r-dimensional subspace (exactly when eps = 0; eps perturbs A, V, b off it)."""
    rng = np.random.default_rng(seed)
    E = np.eye(r)[np.arange(N) % r]                                      # (N, r) group map
    small = random_lrnr(r, ranks, seed)
    pert = lambda shape: eps * rng.normal(size=shape)
    U = tuple(rng.normal(size=(N, k)) / np.sqrt(N) * 3 for k in ranks)
    return LRNRWeights(E @ small.A + pert((N, 3)), E @ small.a + pert(N), U,
                       tuple(E @ V + pert((N, V.shape[1])) for V in small.V),
                       tuple(E @ b + pert(N) for b in small.b), E @ small.w / (N / r), 0.2)


def coefficient_sets(count, ranks=RANKS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.uniform(0.2, 1.5, size=k) for k in ranks] for _ in range(count)]


def batch(sets):
    return [np.stack([cs[l] for cs in sets]) for l in range(len(sets[0]))]


def random_points(P=9, seed=3):
    rng = np.random.default_rng(seed)
    return 2 * np.pi * rng.random(P), rng.random(P)


def assert_jets_close(a, b, atol):
    for name, ja, jb in zip(("u", "u_x", "u_t", "u_xx"), a, b):
        np.testing.assert_allclose(ja, jb, atol=atol, rtol=0, err_msg=name)


def test_sample_points_are_the_grid_with_ends_t_major():
    x, t = sample_points(FastLRNRSettings())
    assert x.shape == t.shape == (12,)
    np.testing.assert_allclose(x[:4], np.linspace(0, 2 * np.pi, 4))
    np.testing.assert_allclose(t, np.repeat([0.0, 0.5, 1.0], 4))


def test_collect_snapshots_shapes_and_shifts():
    w = random_lrnr()
    x, t = sample_points(FastLRNRSettings())
    snaps = collect_snapshots(w, coefficient_sets(2), x, t, 1e-4)
    assert len(snaps) == 4 and all(H.shape == (64, 2 * 5 * 12) for H in snaps)
    # the +δ-in-x columns differ from the base columns by about δ·∂h/∂x
    d = snaps[1][:, 12:24] - snaps[1][:, :12]
    assert 0 < np.abs(d).max() < 1e-3


def test_full_rank_fastlrnr_is_the_lrnr():
    w = random_lrnr()
    ops, quality = build_fastlrnr(w, coefficient_sets(2), coefficient_sets(2, seed=5), FastLRNRSettings(rank=64))
    assert max(layer["eim_error_heldout"] for layer in quality["layers"]) < 1e-12
    s = batch(coefficient_sets(3, seed=7))
    x, t = random_points()
    assert_jets_close(fast_jets(ops, s, x, t), lrnr_jets(w, s, x, t), atol=1e-10)


def test_rank_n_states_are_reproduced_exactly_with_n_5():
    w = lifted_lrnr()
    ops, quality = build_fastlrnr(w, coefficient_sets(3), coefficient_sets(2, seed=5), FastLRNRSettings())
    assert ops.n == 5 and ops.ranks == RANKS
    assert all(layer["singular_values"][5] < 1e-10 * layer["singular_values"][0] for layer in quality["layers"])
    assert max(layer["eim_error_heldout"] for layer in quality["layers"]) < 1e-10
    # anywhere, for any coefficients: the hidden states live in the 5-dim subspace
    s = batch(coefficient_sets(4, seed=11))
    x, t = random_points()
    assert_jets_close(fast_jets(ops, s, x, t), lrnr_jets(w, s, x, t), atol=1e-9)


def test_agreement_at_sample_points_is_at_the_eim_error_level():
    w = lifted_lrnr(eps=1e-4)
    ops, quality = build_fastlrnr(w, coefficient_sets(6), coefficient_sets(3, seed=5), FastLRNRSettings())
    eim = max(layer["eim_error_heldout"] for layer in quality["layers"])
    assert 1e-9 < eim < 1e-2
    agreement = quality["heldout_agreement"]
    for name in ("u", "u_x", "u_t", "u_xx"):
        assert agreement[name]["rel_l2"] < 20 * eim, (name, agreement[name], eim)
        assert agreement[name]["max_abs"] < 20 * eim * max(1.0, agreement[name]["max_ref"])


def test_quality_report_is_json_and_complete():
    ops, quality = build_fastlrnr(random_lrnr(), coefficient_sets(2), coefficient_sets(1, seed=5))
    json.dumps(quality)
    assert len(quality["layers"]) == 4 and quality["n"] == 5 and quality["sample_points"] == 12
    assert len(quality["layers"][0]["singular_values"]) == 20
    assert set(quality["heldout_agreement"]) == {"u", "u_x", "u_t", "u_xx"}
    _, no_heldout = build_fastlrnr(random_lrnr(), coefficient_sets(2), [])
    assert no_heldout["heldout_agreement"] is None and no_heldout["layers"][1]["eim_error_heldout"] is None


def test_fast_jets_match_finite_differences():
    ops, _ = build_fastlrnr(random_lrnr(), coefficient_sets(2), [])
    s = coefficient_sets(1, seed=4)[0]
    x, t = random_points(P=6)
    u, u_x, u_t, u_xx = fast_jets(ops, s, x, t)
    h = 1e-5
    f = lambda dx, dt: fast_jets(ops, s, x + dx, t + dt)[0]
    np.testing.assert_allclose(u_x, (f(h, 0) - f(-h, 0)) / (2 * h), atol=1e-8)
    np.testing.assert_allclose(u_t, (f(0, h) - f(0, -h)) / (2 * h), atol=1e-8)
    H = 1e-3
    np.testing.assert_allclose(u_xx, (f(H, 0) - 2 * u + f(-H, 0)) / H ** 2, atol=1e-5)
    # exact initial condition and a batch of one equals the single set
    np.testing.assert_allclose(fast_jets(ops, s, x, 0 * t)[0], 1 + np.sin(x), atol=1e-15)
    assert_jets_close(fast_jets(ops, [sl[None] for sl in s], x, t), [j[None] for j in (u, u_x, u_t, u_xx)], 1e-14)


def test_operators_match_their_definition():
    w = random_lrnr()
    rng = np.random.default_rng(0)
    Phis = [pod_basis(rng.normal(size=(64, 20)), 5)[0] for _ in range(4)]
    ps = [deim_indices(P) for P in Phis]
    ops = build_reduced_operators(w, Phis, ps)
    np.testing.assert_allclose(ops.M[2] @ Phis[2][ps[2]], np.eye(5), atol=1e-10)
    np.testing.assert_allclose(ops.G[1], w.U[1].T @ Phis[1])
    np.testing.assert_allclose(ops.Vp[0], w.V[0][ps[1]])
    np.testing.assert_allclose(ops.bp[2], w.b[2][ps[3]])
    np.testing.assert_allclose(ops.wr, w.w @ Phis[3])
    np.testing.assert_allclose(ops.A0, w.A[ps[0]])
    Gt, wt = ops.folded
    np.testing.assert_allclose(Gt[2], ops.G[2] @ ops.M[2])
    np.testing.assert_allclose(wt, ops.M[3].T @ ops.wr)


def test_to_arrays_round_trip_through_npz():
    ops, _ = build_fastlrnr(random_lrnr(), coefficient_sets(2), [])
    buf = io.BytesIO()
    np.savez(buf, **ops.to_arrays())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        back = ReducedOperators.from_arrays(dict(data))
    for key, value in ops.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[key], value, err_msg=key)
    s = coefficient_sets(1)[0]
    x, t = random_points()
    assert_jets_close(fast_jets(back, s, x, t), fast_jets(ops, s, x, t), 0.0)


def test_inputs_are_validated():
    w = random_lrnr()
    ops, _ = build_fastlrnr(w, coefficient_sets(2), [])
    x, t = random_points()
    with pytest.raises(ValueError, match="layer 2"):
        fast_jets(ops, [np.ones(6), np.ones(4), np.ones(4)], x, t)
    with pytest.raises(ValueError, match="expected 3 coefficient"):
        fast_jets(ops, [np.ones(6)], x, t)
    with pytest.raises(ValueError, match="same shape"):
        fast_jets(ops, coefficient_sets(1)[0], x, t[:-1])
    with pytest.raises(ValueError, match="bases"):
        build_reduced_operators(w, [np.eye(64)[:, :5]] * 3, [np.arange(5)] * 3)
    with pytest.raises(ValueError, match="distinct"):
        build_reduced_operators(w, [np.eye(64)[:, :5]] * 4, [np.array([0, 0, 1, 2, 3])] * 4)
    with pytest.raises(ValueError, match="rank n"):
        build_fastlrnr(w, coefficient_sets(1), [], FastLRNRSettings(rank=61))
    with pytest.raises(ValueError):
        FastLRNRSettings(delta=0.0)
