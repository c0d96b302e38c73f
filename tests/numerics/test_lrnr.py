"""The numpy LRNR and hypernetwork: exact jets, batching, ansatz, serialisation, shapes."""

from __future__ import annotations

import io

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.hypernet import HyperWeights, hyper_forward, normalise_params
from fastlrnr.numerics.lrnr import LRNRWeights, coefficient_rows, lrnr_forward, lrnr_hidden_states, lrnr_jets

N, RANKS, K_HYPER = 48, (5, 4, 3), 7


def make_weights(seed: int = 0) -> LRNRWeights:
    rng = np.random.default_rng(seed)
    gauss = lambda *shape, scale=1.0: scale * rng.standard_normal(shape)
    return LRNRWeights(
        A=gauss(N, 3),
        a=gauss(N, scale=0.5),
        U=tuple(gauss(N, k, scale=N**-0.5) for k in RANKS),
        V=tuple(gauss(N, k) for k in RANKS),
        b=tuple(gauss(N, scale=0.3) for _ in RANKS),
        w=gauss(N, scale=N**-0.5),
        c=0.2,
    )


def make_coefficients(rng: np.random.Generator, batch: tuple[int, ...] = ()) -> list[np.ndarray]:
    return [rng.uniform(0.2, 1.5, batch + (k,)) for k in RANKS]


def make_hyper(seed: int = 1) -> HyperWeights:
    rng = np.random.default_rng(seed)
    gauss = lambda *shape: rng.standard_normal(shape)
    return HyperWeights(
        W=(gauss(K_HYPER, 3), gauss(K_HYPER, K_HYPER), gauss(K_HYPER, K_HYPER)),
        c=(gauss(K_HYPER), gauss(K_HYPER), gauss(K_HYPER)),
        H=tuple(gauss(k, K_HYPER) for k in RANKS),
        e=tuple(gauss(k) for k in RANKS),
        low=CDR.low,
        high=CDR.high,
    )


@pytest.fixture
def weights() -> LRNRWeights:
    return make_weights()


@pytest.fixture
def points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    return rng.uniform(0.0, 2.0 * np.pi, 25), rng.uniform(0.0, 1.0, 25)


def test_jets_match_central_differences(weights, points):
    x, t = points
    s = make_coefficients(np.random.default_rng(3))
    u, u_x, u_t, u_xx = lrnr_jets(weights, s, x, t, family=CDR_FAMILY)
    np.testing.assert_allclose(u, lrnr_forward(weights, s, x, t, family=CDR_FAMILY), rtol=0, atol=1e-14)
    f = lambda xx, tt: lrnr_forward(weights, s, xx, tt, family=CDR_FAMILY)
    h = 1e-5
    np.testing.assert_allclose(u_x, (f(x + h, t) - f(x - h, t)) / (2 * h), rtol=0, atol=1e-7)
    np.testing.assert_allclose(u_t, (f(x, t + h) - f(x, t - h)) / (2 * h), rtol=0, atol=1e-7)
    h = 1e-4
    np.testing.assert_allclose(u_xx, (f(x + h, t) - 2 * u + f(x - h, t)) / h**2, rtol=0, atol=1e-5)
    # the derivatives are not trivially small, so the comparison means something
    assert min(np.abs(v).max() for v in (u_x, u_t, u_xx)) > 0.1


def test_batched_coefficient_sets_equal_the_loop(weights, points):
    x, t = points
    s = make_coefficients(np.random.default_rng(4), batch=(3,))
    forward = lrnr_forward(weights, s, x, t, family=CDR_FAMILY)
    jets = lrnr_jets(weights, s, x, t, family=CDR_FAMILY)
    assert forward.shape == (3, x.size) and all(j.shape == (3, x.size) for j in jets)
    for i in range(3):
        one = [sl[i] for sl in s]
        np.testing.assert_allclose(forward[i], lrnr_forward(weights, one, x, t, family=CDR_FAMILY), rtol=0, atol=1e-13)
        for batched, single in zip(jets, lrnr_jets(weights, one, x, t, family=CDR_FAMILY)):
            np.testing.assert_allclose(batched[i], single, rtol=0, atol=1e-13)


def test_initial_condition_is_exact(weights):
    x = np.linspace(-1.0, 8.0, 40)
    t = np.zeros_like(x)
    for s in (make_coefficients(np.random.default_rng(5)), make_coefficients(np.random.default_rng(6), (2,))):
        u = lrnr_forward(weights, s, x, t, family=CDR_FAMILY)
        np.testing.assert_array_equal(u, np.broadcast_to(1.0 + np.sin(x), u.shape))
        u_j, u_x, _, u_xx = lrnr_jets(weights, s, x, t, family=CDR_FAMILY)
        np.testing.assert_array_equal(u_j, np.broadcast_to(1.0 + np.sin(x), u.shape))
        np.testing.assert_array_equal(u_x, np.broadcast_to(np.cos(x), u.shape))
        np.testing.assert_array_equal(u_xx, np.broadcast_to(-np.sin(x), u.shape))


def test_periodic_in_x(weights, points):
    x, t = points
    s = make_coefficients(np.random.default_rng(7))
    for shift in (2.0 * np.pi, -4.0 * np.pi):
        for a, b in zip(
            lrnr_jets(weights, s, x, t, family=CDR_FAMILY), lrnr_jets(weights, s, x + shift, t, family=CDR_FAMILY)
        ):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_hidden_states_rebuild_the_output(weights, points):
    x, t = points
    s = make_coefficients(np.random.default_rng(8))
    states = lrnr_hidden_states(weights, s, x, t)
    assert len(states) == len(RANKS) + 1 and all(h.shape == (x.size, N) for h in states)
    g = states[-1] @ weights.w + weights.c
    np.testing.assert_allclose(
        lrnr_forward(weights, s, x, t, family=CDR_FAMILY), 1.0 + np.sin(x) + t * g, rtol=0, atol=1e-14
    )
    with pytest.raises(ValueError, match="one coefficient set"):
        lrnr_hidden_states(weights, make_coefficients(np.random.default_rng(8), (2,)), x, t)


def npz_round_trip(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_lrnr_weights_round_trip(weights, points):
    back = LRNRWeights.from_arrays(npz_round_trip(weights.to_arrays()))
    assert back.width == N and back.ranks == RANKS and back.c == weights.c
    for key, value in weights.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[key], value)
    x, t = points
    s = make_coefficients(np.random.default_rng(9))
    np.testing.assert_array_equal(
        lrnr_forward(back, s, x, t, family=CDR_FAMILY), lrnr_forward(weights, s, x, t, family=CDR_FAMILY)
    )
    single = weights.astype(np.float32)
    assert single.A.dtype == np.float32 and single.U[0].flags.c_contiguous
    assert lrnr_forward(single, s, x, t, family=CDR_FAMILY).dtype == np.float32
    assert isinstance(CDR_FAMILY.ansatz, str) and CDR_FAMILY.ansatz


def test_hyper_weights_round_trip():
    hw = make_hyper()
    back = HyperWeights.from_arrays(npz_round_trip(hw.to_arrays()))
    for key, value in hw.to_arrays().items():
        np.testing.assert_array_equal(back.to_arrays()[key], value)
    mu = CDR.sample(6, np.random.default_rng(10))
    for a, b in zip(hyper_forward(hw, mu), hyper_forward(back, mu)):
        np.testing.assert_array_equal(a, b)


def test_hyper_forward_shapes_and_sign():
    hw = make_hyper()
    mu = CDR.sample(50, np.random.default_rng(11))
    s = hyper_forward(hw, mu)
    assert [sl.shape for sl in s] == [(50, k) for k in RANKS]
    assert all(sl.dtype == np.float64 and np.all(sl >= 0.0) for sl in s)
    assert any(np.any(sl == 0.0) for sl in s) and any(np.any(sl > 0.0) for sl in s)  # ReLU both ways
    single = hyper_forward(hw, mu[3])
    assert [sl.shape for sl in single] == [(k,) for k in RANKS]
    for a, b in zip(single, s):
        np.testing.assert_allclose(a, b[3], rtol=0, atol=1e-15)
    assert coefficient_rows(make_weights().ranks, s)[0].shape == (50, sum(RANKS))  # fits the LRNR as a batch of sets


def test_normalise_params_maps_the_box_to_minus_one_one():
    corners = np.stack([CDR.low, CDR.high])
    np.testing.assert_allclose(normalise_params(corners, CDR.low, CDR.high), [[-1.0] * 3, [1.0] * 3])
    low, high = np.array([1.0, 0.0, 0.0]), np.array([20.0, 0.0, 0.0])  # fixed ν, ρ map to 0
    np.testing.assert_allclose(normalise_params(np.array([[20.0, 0.0, 0.0]]), low, high), [[1.0, 0.0, 0.0]])


def test_shape_errors(weights, points):
    x, t = points
    rng = np.random.default_rng(12)
    s = make_coefficients(rng)
    with pytest.raises(ValueError, match="expected 3 coefficient vectors"):
        lrnr_forward(weights, s[:2], x, t, family=CDR_FAMILY)
    with pytest.raises(ValueError, match=r"layer 2: expected coefficients of shape \(4,\)"):
        lrnr_forward(weights, [s[0], np.ones(5), s[2]], x, t, family=CDR_FAMILY)
    with pytest.raises(ValueError, match=r"layer 2: expected coefficients of shape \(2, 4\)"):
        lrnr_jets(weights, [np.ones((2, 5)), np.ones((3, 4)), np.ones((2, 3))], x, t, family=CDR_FAMILY)
    with pytest.raises(ValueError, match="layer 1"):
        lrnr_forward(weights, [np.ones((1, 2, 5)), np.ones((1, 2, 4)), np.ones((1, 2, 3))], x, t, family=CDR_FAMILY)
    with pytest.raises(ValueError, match=r"expected x and t of the same shape \(P,\)"):
        lrnr_jets(weights, s, x, t[:-1], family=CDR_FAMILY)
    with pytest.raises(ValueError, match=r"expected x and t of the same shape \(P,\)"):
        lrnr_forward(weights, s, x.reshape(5, 5), t.reshape(5, 5), family=CDR_FAMILY)
    d = weights.to_arrays()
    with pytest.raises(ValueError, match=r"expected A \(N, 3\)"):
        LRNRWeights.from_arrays({**d, "A": np.ones((N, 2))})
    with pytest.raises(ValueError, match="layer 2"):
        LRNRWeights.from_arrays({**d, "V2": np.ones((N, 5))})
    with pytest.raises(KeyError):
        LRNRWeights.from_arrays({k: v for k, v in d.items() if k != "b3"})
    h = make_hyper().to_arrays()
    with pytest.raises(ValueError, match=r"expected W1 \(K, 3\)"):
        HyperWeights.from_arrays({**h, "W2": np.ones((K_HYPER, K_HYPER + 1))})
    with pytest.raises(ValueError, match="head 1"):
        HyperWeights.from_arrays({**h, "e1": np.ones(4)})
    with pytest.raises(ValueError, match=r"expected shape \(B, 3\)"):
        hyper_forward(make_hyper(), np.ones((2, 4)))
