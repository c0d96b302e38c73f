"""SPInProp fast phase (core/fast_phase.py): objective, gradient, λ selection."""
import numpy as np
import pytest

from core.fast_phase import (FastPhaseResult, FastPhaseSettings, check_set, full_residual, objective_and_grad,
                             optimise_candidates, run_fast_phase)
from core.fastlrnr import FastLRNRSettings, build_fastlrnr, fast_jets
from core.lrnr import LRNRWeights, lrnr_jets
from core.pde import initial_condition, residual

RANKS = (6, 5, 4)
MU = np.array([[2.0, 0.5, 1.0], [6.0, 0.0, 0.0], [1.0, 0.0, 2.0], [3.0, 1.5, 0.0]])


def random_lrnr(N=64, ranks=RANKS, seed=0) -> LRNRWeights:
    rng = np.random.default_rng(seed)
    orth = lambda k: np.linalg.qr(rng.normal(size=(N, k)))[0]
    return LRNRWeights(rng.normal(size=(N, 3)), 0.5 * rng.normal(size=N), tuple(2 * orth(k) for k in ranks),
                       tuple(2 * orth(k) for k in ranks), tuple(0.3 * rng.normal(size=N) for _ in ranks),
                       rng.normal(size=N) / np.sqrt(N), 0.2)


@pytest.fixture(scope="module")
def model():
    w = random_lrnr()
    rng = np.random.default_rng(1)
    sets = lambda count: [[rng.uniform(0.2, 1.5, size=k) for k in RANKS] for _ in range(count)]
    ops, _ = build_fastlrnr(w, sets(4), [], FastLRNRSettings())
    return w, ops


def coefficients(B, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.2, 1.5, size=(B, k)) for k in RANKS]


def reference_objective(ops, s, s_hat, mu, lam, x, t):
    """J straight from the definition, through the FastLRNR jets."""
    u, u_x, u_t, u_xx = fast_jets(ops, s, x, t)
    res = residual(u, u_t, u_x, u_xx, mu[:, :1], mu[:, 1:2], mu[:, 2:])
    fit = np.where(t > 0, np.abs(res), np.abs(u - initial_condition(x))).sum(axis=1)
    return fit + lam * sum(np.abs(a - b).sum(axis=1) for a, b in zip(s, s_hat))


def test_objective_matches_its_definition(model):
    _, ops = model
    s, s_hat = coefficients(4, 2), coefficients(4, 3)
    lam = np.array([0.0, 0.3, 1.0, 10.0])
    J, grads = objective_and_grad(ops, s, s_hat, MU, lam, *ops.points)
    np.testing.assert_allclose(J, reference_objective(ops, s, s_hat, MU, lam, *ops.points), rtol=1e-13)
    assert [g.shape for g in grads] == [(4, k) for k in RANKS]


@pytest.mark.parametrize("rows", [slice(0, 4), slice(1, 3)], ids=["with-diffusion", "no-diffusion"])
def test_gradient_matches_central_differences(model, rows):
    _, ops = model
    s, s_hat = [sl[rows] for sl in coefficients(4, 2)], [sl[rows] for sl in coefficients(4, 3)]
    mu, lam = MU[rows], np.array([0.0, 0.3, 1.0, 10.0])[rows]
    x, t = ops.points
    J, grads = objective_and_grad(ops, s, s_hat, mu, lam, x, t)
    # away from every kink: no residual and no s − ŝ is near zero
    u, u_x, u_t, u_xx = fast_jets(ops, s, x, t)
    assert np.abs(residual(u, u_t, u_x, u_xx, mu[:, :1], mu[:, 1:2], mu[:, 2:])[:, t > 0]).min() > 1e-4
    assert min(np.abs(a - b).min() for a, b in zip(s, s_hat)) > 1e-4
    h = 1e-6
    for l, k in [(0, 0), (0, 5), (1, 2), (2, 3), (2, 0)]:
        plus, minus = [sl.copy() for sl in s], [sl.copy() for sl in s]
        plus[l][:, k] += h
        minus[l][:, k] -= h
        fd = (objective_and_grad(ops, plus, s_hat, mu, lam, x, t)[0]
              - objective_and_grad(ops, minus, s_hat, mu, lam, x, t)[0]) / (2 * h)
        np.testing.assert_allclose(grads[l][:, k], fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(J).max()))


def test_rows_are_independent_and_the_diffusion_free_path_agrees(model):
    _, ops = model
    s, s_hat = coefficients(4, 2), coefficients(4, 3)
    lam = np.array([0.1, 0.3, 1.0, 3.0])
    J, grads = objective_and_grad(ops, s, s_hat, MU, lam, *ops.points)
    for b in (1, 2, 3):   # alone: 3 jets without diffusion, and without reaction
        Jb, gb = objective_and_grad(ops, [sl[b] for sl in s], [sl[b] for sl in s_hat], MU[b], lam[b], *ops.points)
        assert Jb[0] == pytest.approx(J[b], rel=1e-13)
        for g_all, g_one in zip(grads, gb):
            np.testing.assert_allclose(g_one[0], g_all[b], rtol=1e-12, atol=1e-12)


def test_subgradient_of_the_locality_term_is_zero_at_s_hat(model):
    _, ops = model
    s = coefficients(1, 2)
    _, g0 = objective_and_grad(ops, s, s, MU[:1], 0.0, *ops.points)
    _, g1 = objective_and_grad(ops, s, s, MU[:1], 100.0, *ops.points)
    for a, b in zip(g0, g1):
        np.testing.assert_array_equal(a, b)


SMALL = FastPhaseSettings(epochs=40, lambdas=(0.1, 1.0, 10.0), check_epochs=(20, 40), check_points=32)


def test_run_fast_phase_shapes_and_bookkeeping(model):
    w, ops = model
    s_hat = coefficients(3, 4)
    s_hat[1][0, :2] = 0.0                      # dead coefficients stay admissible
    results = run_fast_phase(ops, w, s_hat, MU[:3], SMALL)
    assert len(results) == 3 and all(isinstance(r, FastPhaseResult) for r in results)
    for b, r in enumerate(results):
        assert [sl.shape for sl in r.s] == [(k,) for k in RANKS]
        assert all(np.all(sl >= 0) for sl in r.s)
        assert len(r.candidates) == 6 and {c[:2] for c in r.candidates} == {(l, e) for l in (0.1, 1.0, 10.0)
                                                                             for e in (20, 40)}
        assert r.accepted == (r.lam is not None) == (r.epoch is not None)
        assert r.fast_ms > 0 and r.check_ms > 0
        if not r.accepted:
            assert all(np.array_equal(a, sh[b]) for a, sh in zip(r.s, s_hat)) and r.J_after == r.J_before


def test_selection_never_worse_than_the_hypernetwork(model):
    w, ops = model
    s_hat = coefficients(4, 5)
    results = run_fast_phase(ops, w, s_hat, MU, SMALL)
    xc, tc = check_set(SMALL.check_points, SMALL.seed)
    assert np.all(tc > 0) and np.all((xc >= 0) & (xc < 2 * np.pi))
    for b, r in enumerate(results):
        # recompute both residuals independently, in float64, with the full LRNR
        u, u_x, u_t, u_xx = lrnr_jets(w, [np.stack([sh[b], sl]) for sh, sl in zip(s_hat, r.s)], xc, tc)
        before, after = np.abs(residual(u, u_t, u_x, u_xx, *MU[b])).mean(axis=1)
        assert before == pytest.approx(r.residual_before, rel=1e-12)
        assert after == pytest.approx(r.residual_after, rel=1e-12)
        assert after <= before
        assert r.residual_after == min([r.residual_before] + [c[2] for c in r.candidates])
    assert any(r.accepted for r in results)


def test_hypernetwork_kept_when_nothing_beats_it_by_the_margin(model):
    w, ops = model
    s_hat = coefficients(2, 6)
    settings = FastPhaseSettings(epochs=10, lambdas=(1.0,), check_points=16, min_improvement=0.999)
    for b, r in enumerate(run_fast_phase(ops, w, s_hat, MU[:2], settings)):
        assert not r.accepted and r.lam is None and r.residual_after == r.residual_before
        assert all(np.array_equal(a, sh[b]) for a, sh in zip(r.s, s_hat))


def test_iterates_stay_nonnegative_and_float32_check_agrees(model):
    w, ops = model
    s_hat = [np.full((1, k), 1e-4) for k in RANKS]      # near the boundary: steps would cross it
    for sl in s_hat:
        sl[0, 0] = 1.0                                   # sets the step size scale
    iterates = optimise_candidates(ops, s_hat, MU[:1], SMALL)
    assert set(iterates) == {20, 40} and iterates[40].shape == (1, 3, sum(RANKS))
    assert all(np.all(it >= 0) for it in iterates.values())
    assert np.any(iterates[40] == 0.0)                   # the projection was active
    judged = iterates[40][0]
    r64 = full_residual(w, judged, np.repeat(MU[:1], 3, axis=0), *check_set(32, 0))
    r32 = full_residual(w.astype(np.float32), judged, np.repeat(MU[:1], 3, axis=0), *check_set(32, 0))
    np.testing.assert_allclose(r32, r64, rtol=1e-4)


def test_inputs_are_validated(model):
    w, ops = model
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        run_fast_phase(ops, w, coefficients(2, 1), MU[:3], SMALL)
    with pytest.raises(ValueError, match="≥ 0"):
        run_fast_phase(ops, w, [-sl for sl in coefficients(1, 1)], MU[:1], SMALL)
    with pytest.raises(ValueError, match="ranks"):
        run_fast_phase(ops, random_lrnr(ranks=(6, 5, 3)), coefficients(1, 1), MU[:1], SMALL)
    with pytest.raises(ValueError, match="layer 3"):
        objective_and_grad(ops, [np.ones((1, 6)), np.ones((1, 5)), np.ones((1, 5))], coefficients(1, 1),
                           MU[:1], 1.0, *ops.points)
    with pytest.raises(ValueError, match="lam"):
        objective_and_grad(ops, coefficients(1, 1), coefficients(1, 1), MU[:1], -1.0, *ops.points)
    with pytest.raises(ValueError, match="finite"):
        run_fast_phase(ops, w, coefficients(1, 1), np.array([[np.nan, 0.0, 0.0]]), SMALL)
    with pytest.raises(ValueError, match="check_epochs"):
        FastPhaseSettings(epochs=10, check_epochs=(20,))
    with pytest.raises(ValueError, match="λ"):
        FastPhaseSettings(lambdas=())
