"""fastlrnr/server/engine/field.py: onnxruntime evaluators against the numpy fallback; shapes, chunks, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.lrnr import LRNRWeights, lrnr_forward
from fastlrnr.numerics.random_model import random_lrnr
from fastlrnr.server.engine.field import FieldEvaluator, JetsEvaluator, NumpyFieldEvaluator, NumpyJetsEvaluator
from fastlrnr.training.onnx_export import lrnr_onnx

N, RANKS = 48, (5, 4, 3)


@pytest.fixture(scope="module")
def weights() -> LRNRWeights:
    return random_lrnr(N, RANKS, seed=11)


@pytest.fixture(scope="module")
def paths(tmp_path_factory, weights):
    d = tmp_path_factory.mktemp("onnx")
    (d / "lrnr.onnx").write_bytes(lrnr_onnx(weights, family=CDR_FAMILY))
    (d / "lrnr_jets.onnx").write_bytes(lrnr_onnx(weights, jets=True, family=CDR_FAMILY))
    return d / "lrnr.onnx", d / "lrnr_jets.onnx"


def coeffs(B: int | None, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.0, 1.5, (k,) if B is None else (B, k)) for k in RANKS]


GRID = (2 * np.pi * np.arange(32) / 32, np.linspace(0.0, 1.0, 10))


def test_grid_matches_numpy_fallback(weights, paths):
    onnx_ev, np_ev = FieldEvaluator(paths[0]), NumpyFieldEvaluator(weights, family=CDR_FAMILY)
    assert onnx_ev.ranks == np_ev.ranks == RANKS
    for B in (None, 1, 3):
        s = coeffs(B)
        got, want = onnx_ev.evaluate_grid(s, *GRID), np_ev.evaluate_grid(s, *GRID)
        shape = (10, 32) if B is None else (B, 10, 32)
        assert got.shape == want.shape == shape and got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_grid_layout_is_t_major(weights, paths):
    x_axis, t_axis = GRID
    s = coeffs(2)
    grid = FieldEvaluator(paths[0]).evaluate_grid(s, x_axis, t_axis)
    ref = lrnr_forward(weights, s, x_axis, np.full_like(x_axis, t_axis[7]), family=CDR_FAMILY)
    np.testing.assert_allclose(grid[:, 7, :], ref, rtol=1e-5, atol=1e-5)


def test_points_and_chunking(weights, paths):
    rng = np.random.default_rng(5)
    x, t = rng.uniform(0, 2 * np.pi, 1000), rng.uniform(0, 1, 1000)
    s = coeffs(3)
    whole = FieldEvaluator(paths[0]).evaluate(s, x, t)
    chunked_ev = FieldEvaluator(paths[0], block_elements=1)  # forces 256-point chunks
    assert chunked_ev.chunk_points(3) == 256
    np.testing.assert_allclose(chunked_ev.evaluate(s, x, t), whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(whole, lrnr_forward(weights, s, x, t, family=CDR_FAMILY), rtol=1e-5, atol=1e-5)
    single = FieldEvaluator(paths[0].read_bytes(), threads=2).evaluate([sl[1] for sl in s], x, t)
    assert single.shape == (1000,)
    np.testing.assert_allclose(single, whole[1], rtol=1e-6, atol=1e-6)
    assert FieldEvaluator(paths[0]).evaluate(s, x[:0], t[:0]).shape == (3, 0)


def test_jets_match_numpy_fallback(weights, paths):
    s = coeffs(2, seed=1)
    got = JetsEvaluator(paths[1], block_elements=1).evaluate_grid(s, *GRID)
    want = NumpyJetsEvaluator(weights, family=CDR_FAMILY).evaluate_grid(s, *GRID)
    assert len(got) == len(want) == 4
    for g, w in zip(got, want):
        assert g.shape == (2, 10, 32)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(w).max())))


def test_wrong_graph_for_the_evaluator(paths):
    with pytest.raises(ValueError, match="outputs"):
        FieldEvaluator(paths[1])
    with pytest.raises(ValueError, match="outputs"):
        JetsEvaluator(paths[0])


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda s: s[:2], "list of 3"),
        (lambda s: [s[0], s[1][:, :2], s[2]], r"layer 2: expected coefficients of shape \(2, 4\)"),
        (lambda s: [s[0], s[1][0], s[2]], "layer 2"),
        (lambda s: [s[0][None], s[1], s[2]], "layer 1"),
        (lambda s: [s[0], s[1], np.full_like(s[2], np.nan)], "finite"),
    ],
)
def test_bad_coefficients_are_refused(weights, paths, bad, match):
    s = coeffs(2)
    for ev in (FieldEvaluator(paths[0]), NumpyFieldEvaluator(weights, family=CDR_FAMILY)):
        with pytest.raises(ValueError, match=match):
            ev.evaluate_grid(bad(s), *GRID)


def test_bad_points_are_refused(paths):
    ev, s = FieldEvaluator(paths[0]), coeffs(None)
    with pytest.raises(ValueError, match="same shape"):
        ev.evaluate(s, np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        ev.evaluate(s, np.array([0.0, np.inf]), np.zeros(2))
    with pytest.raises(ValueError, match="x_axis"):
        ev.evaluate_grid(s, np.zeros((2, 2)), np.zeros(3))


def test_large_batches_are_split_into_groups(weights, paths, monkeypatch):
    import fastlrnr.server.engine.field as field

    ev = FieldEvaluator(paths[0])
    monkeypatch.setattr(field, "MAX_BLOCK_ELEMENTS", 2 * field.MIN_CHUNK * N)
    assert ev.max_batch() == 2
    s = coeffs(5)
    calls = []
    run = ev._run
    monkeypatch.setattr(ev, "_run", lambda s32, x, t: calls.append(s32[0].shape[0]) or run(s32, x, t))
    got = ev.evaluate_grid(s, *GRID)
    assert calls == [2, 2, 1]
    np.testing.assert_allclose(
        got, NumpyFieldEvaluator(weights, family=CDR_FAMILY).evaluate_grid(s, *GRID), rtol=1e-5, atol=1e-5
    )
    assert ev.evaluate_grid([sl[:0] for sl in s], *GRID).shape == (0, 10, 32)


@pytest.mark.parametrize("block, threads", [(1, 1), (1 << 12, 1), (1 << 22, 1), (1 << 18, 2)])
def test_grid_values_do_not_depend_on_chunks_or_threads(paths, block, threads):
    """What benchmarks/field_floor.py's candidates change (chunk size, intra-op threads) leaves the
    values as they are, to float32 roundoff (rtol 1e-6)."""
    x_axis, t_axis = 2 * np.pi * np.arange(64) / 64, np.linspace(0.0, 1.0, 40)  # 2 560 points
    s = coeffs(3, seed=4)
    want = FieldEvaluator(paths[0]).evaluate_grid(s, x_axis, t_axis)
    ev = FieldEvaluator(paths[0], threads=threads, block_elements=block)
    np.testing.assert_allclose(ev.evaluate_grid(s, x_axis, t_axis), want, rtol=1e-6, atol=1e-6)
