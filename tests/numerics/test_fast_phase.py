"""The fast phase (fastlrnr/numerics/fast_phase/): objectives, Levenberg–Marquardt, Adam, acceptance, backends."""

import numpy as np
import pytest

from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.fast_phase import (
    FastPhaseModel,
    FastPhaseSettings,
    choose,
    objective_gradient,
    objective_value,
    run_fast_phase,
)
from fastlrnr.numerics.fast_phase.lm import levenberg_marquardt
from fastlrnr.numerics.fast_phase.run import _Rows
from fastlrnr.numerics.fastlrnr import build_fastlrnr, identity_operators
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.jet_chain import exact_chain
from fastlrnr.numerics.random_model import random_model

RANKS = (6, 5, 4)
MU = np.array([[2.0, 0.5, 1.0], [1.2, 0.0, 0.0], [1.0, 0.1, 2.0], [3.0, 1.5, 0.0]])


@pytest.fixture(scope="module")
def model():
    w, hyper = random_model(48, RANKS, CDR, seed=2)
    return w, hyper


def s_hat_of(hyper, mu):
    S = np.concatenate(hyper_forward(hyper, mu), axis=1)
    S[:, [1, 7]] = 0.0  # coefficients at the bound, as the hypernetwork's ReLU gives
    return S


def small_model(w, reduced=None, points=64):
    return FastPhaseModel(w, reduced, collocation=(points, 0), check=(16, 9), dtype=np.float64, family=CDR_FAMILY)


@pytest.mark.parametrize("kind", ["lsq", "l1"])
def test_objective_gradient_matches_differences(model, kind):
    w, hyper = model
    chain = exact_chain(w, *interior_points(30, 0), np.float64, family=CDR_FAMILY)
    rng = np.random.default_rng(0)
    S_hat = s_hat_of(hyper, MU)
    S = S_hat + rng.uniform(0.05, 0.2, size=S_hat.shape)  # away from the ℓ1 kinks
    lam = np.array([1e-3, 0.1, 0.0, 2.0])
    F = lambda S_: objective_value(kind, chain.residual(S_, MU), S_, S_hat, lam)
    r, jac = chain.residual_and_jacobian(S, MU)
    g = objective_gradient(kind, r, jac, S, S_hat, lam)
    h = 1e-6
    for p in range(S.shape[1]):
        Sp, Sm = S.copy(), S.copy()
        Sp[:, p] += h
        Sm[:, p] -= h
        np.testing.assert_allclose(g[:, p], (F(Sp) - F(Sm)) / (2 * h), rtol=1e-5, atol=1e-8)
    assert (
        np.allclose(F(S), np.mean(r**2, 1) + lam * np.sum((S - S_hat) ** 2, 1))
        if kind == "lsq"
        else np.allclose(F(S), np.mean(np.abs(r), 1) + lam * np.sum(np.abs(S - S_hat), 1))
    )


def test_lm_lowers_the_objective_monotonically_and_respects_the_bound(model):
    w, hyper = model
    chain = exact_chain(w, *interior_points(64, 0), np.float64, family=CDR_FAMILY)
    S_hat = s_hat_of(hyper, MU)
    problem = _Rows(chain, MU)
    lam = np.full(len(MU), 1e-5)
    previous = objective_value("lsq", chain.residual(S_hat, MU), S_hat, S_hat, lam)
    trace = levenberg_marquardt(problem, S_hat, S_hat, lam, steps=6, record=True)
    assert np.all(trace.F < trace.F0) and np.all(trace.taken >= 1)
    for k in range(6):
        F_k = objective_value("lsq", chain.residual(trace.iterates[k], MU), trace.iterates[k], S_hat, lam)
        assert np.all(F_k <= previous + 1e-15)
        previous = F_k
    assert np.all(trace.iterates >= 0.0)
    np.testing.assert_allclose(previous, trace.F, rtol=1e-12)


def test_lm_holds_a_coefficient_at_zero_when_its_gradient_points_below(model):
    w, hyper = model
    chain = exact_chain(w, *interior_points(64, 0), np.float64, family=CDR_FAMILY)
    S_hat = s_hat_of(hyper, MU[:1])
    r, jac = chain.residual_and_jacobian(S_hat, MU[:1])
    g = objective_gradient("lsq", r, jac, S_hat, S_hat, 0.0)[0]
    pushed_out = np.flatnonzero((S_hat[0] == 0) & (g > 0))
    assert pushed_out.size, "the fixture should have a coefficient at 0 pushed below it"
    trace = levenberg_marquardt(_Rows(chain, MU[:1]), S_hat, S_hat, np.array([1e-5]), steps=1)
    assert np.all(trace.S[0, pushed_out] == 0.0)


def test_run_fast_phase_bookkeeping_and_acceptance(model):
    w, hyper = model
    fp = small_model(w)
    S_hat = s_hat_of(hyper, MU)
    results = run_fast_phase(fp, S_hat, MU, FastPhaseSettings(steps=6, locality=(1e-5, 1e-2)))
    assert len(results) == len(MU)
    proxy, rms = fp.check(S_hat, MU)
    for b, res in enumerate(results):
        assert [sl.shape for sl in res.s] == [(k,) for k in RANKS]
        assert res.proxy_before == pytest.approx(proxy[b], rel=1e-12)
        assert res.residual_before == pytest.approx(rms[b], rel=1e-12)
        served_proxy, served_rms = fp.check(np.concatenate(res.s)[None], MU[b : b + 1])
        assert res.proxy_after == pytest.approx(served_proxy[0], rel=1e-12)
        assert res.residual_after == pytest.approx(served_rms[0], rel=1e-12)
        assert res.proxy_after <= res.proxy_before  # never worse than ŝ on the check
        assert len(res.candidates) == 2
        if res.accepted:
            assert res.proxy_after <= 0.95 * res.proxy_before
            assert res.locality in (1e-5, 1e-2) and res.steps_run >= 1
            assert res.objective_after < res.objective_before
        else:
            np.testing.assert_array_equal(np.concatenate(res.s), S_hat[b])
            assert res.locality is None and res.steps_run == 0
    assert any(r.accepted for r in results)


def test_nothing_accepted_when_the_margin_cannot_be_met(model):
    w, hyper = model
    S_hat = s_hat_of(hyper, MU)
    results = run_fast_phase(small_model(w), S_hat, MU, FastPhaseSettings(steps=3, margin=0.999))
    for b, res in enumerate(results):
        assert not res.accepted
        np.testing.assert_array_equal(np.concatenate(res.s), S_hat[b])
        assert res.residual_after == res.residual_before and res.proxy_after == res.proxy_before


def test_choose_keeps_the_best_candidate_only_beyond_the_margin():
    rms_hat = np.array([1.0, 1.0, 1.0, np.inf])
    cand = np.array([[0.97, 0.99], [0.5, 0.4], [np.inf, 1.2], [3.0, np.inf]])
    best, accepted = choose(rms_hat, cand, 0.05)
    assert best.tolist() == [0, 1, 1, 0]
    assert accepted.tolist() == [False, True, False, True]


def test_runs_are_deterministic(model):
    w, hyper = model
    S_hat = s_hat_of(hyper, MU)
    fp = small_model(w)
    a = run_fast_phase(fp, S_hat, MU, FastPhaseSettings(steps=4))
    b = run_fast_phase(small_model(w), S_hat, MU, FastPhaseSettings(steps=4))
    for ra, rb in zip(a, b):
        assert ra.accepted == rb.accepted and ra.proxy_after == rb.proxy_after
        for sa, sb in zip(ra.s, rb.s):
            np.testing.assert_array_equal(sa, sb)


def test_reduced_backend_equals_exact_when_n_is_the_full_width(model):
    w, hyper = model
    x, t = interior_points(64, 0)
    S_hat = s_hat_of(hyper, MU)
    fp = small_model(w, reduced=identity_operators(w, x, t))
    exact = run_fast_phase(fp, S_hat, MU, FastPhaseSettings(backend="exact", steps=4))
    reduced = run_fast_phase(fp, S_hat, MU, FastPhaseSettings(backend="reduced", steps=4))
    for e, r in zip(exact, reduced):
        assert e.accepted == r.accepted and e.steps_run == r.steps_run
        np.testing.assert_allclose(np.concatenate(e.s), np.concatenate(r.s), rtol=0, atol=1e-9)


def test_reduced_backend_with_a_built_fastlrnr_improves_the_check(model):
    w, hyper = model
    x, t = interior_points(64, 0)
    S_hat = s_hat_of(hyper, MU)
    snapshots = s_hat_of(hyper, CDR.grid(3))
    ops, _ = build_fastlrnr(w, x, t, snapshots, rank=30, family=CDR_FAMILY)
    results = run_fast_phase(small_model(w, reduced=ops), S_hat, MU, FastPhaseSettings(backend="reduced", steps=6))
    assert all(r.backend == "reduced" and r.proxy_after <= r.proxy_before for r in results)
    assert any(r.accepted for r in results)


def test_adam_path_lowers_the_l1_objective_and_records_iterates(model):
    w, hyper = model
    S_hat = s_hat_of(hyper, MU)
    settings = FastPhaseSettings(optimizer="adam", steps=40, locality=(0.0, 1e-3), margin=0.0)
    results = run_fast_phase(small_model(w), S_hat, MU, settings, record=True)
    for res in results:
        assert res.optimizer == "adam" and res.iterates.shape == (40, sum(RANKS))
        assert np.all(res.iterates >= 0)
        if res.accepted:
            assert res.objective_after < res.objective_before


def test_backend_must_exist_and_inputs_are_checked(model):
    w, hyper = model
    S_hat = s_hat_of(hyper, MU)
    fp = small_model(w)
    with pytest.raises(ValueError, match="not available"):
        run_fast_phase(fp, S_hat, MU, FastPhaseSettings(backend="reduced"))
    with pytest.raises(ValueError, match="≥ 0"):
        run_fast_phase(fp, -S_hat - 1, MU)
    with pytest.raises(ValueError, match="mu"):
        run_fast_phase(fp, S_hat, MU[:2])
    with pytest.raises(ValueError, match="finite"):
        run_fast_phase(fp, S_hat, MU * np.nan)


@pytest.mark.parametrize(
    "bad",
    [
        dict(backend="gpu"),
        dict(optimizer="sgd"),
        dict(steps=-1),
        dict(locality=()),
        dict(locality=(-1.0,)),
        dict(margin=1.0),
        dict(damping=0.0),
        dict(betas=(1.0, 0.9)),
    ],
)
def test_settings_are_validated(bad):
    with pytest.raises(ValueError):
        FastPhaseSettings(**bad)


def test_settings_round_trip_through_a_dict():
    s = FastPhaseSettings(backend="reduced", steps=7, locality=(1e-4, 1e-3))
    assert FastPhaseSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown"):
        FastPhaseSettings.from_dict({"epochs": 3})
