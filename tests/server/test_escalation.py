"""Tolerances the service meets: the ladder (fastlrnr/numerics/ladder.py) on the bundled cdr model, and
its contract over HTTP on the synthetic models."""

from __future__ import annotations

import time

import numpy as np
import pytest
from service_testkit import TEST_STEPS

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.reference import solve_reference_batch
from fastlrnr.server.api.grids import grid_arrays
from fastlrnr.server.api.schemas import Grid
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.settings import DEFAULT_ARTIFACT_DIR

HARD = np.array([[3.0, 0.0, 2.0]])  # the cdr model's hardest corner


@pytest.fixture(scope="module")
def cdr():
    rt = ModelRuntime.load(DEFAULT_ARTIFACT_DIR / "cdr")
    rt.warm()
    yield rt
    rt.close()


def rel_err(u: np.ndarray, mu: np.ndarray) -> float:
    x, t = standard_grid()
    ref = solve_reference_batch(mu, x, t, family=CDR_FAMILY)[0]
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def test_escalation_picks_the_cheapest_rung_that_meets_a_tolerance(cdr):
    grid = grid_arrays(Grid(nx=256, nt=100))
    base = cdr.solve(HARD, grid, None)
    est = float(base.estimate[0])
    assert base.rows[0].answer.rung == "corrected" and base.rows[0].answer.escalation is None
    met = cdr.solve(HARD, grid, None, tolerance=2 * est)  # the cheapest answer meets it: unchanged
    assert met.rows[0].answer.rung == "corrected" and np.array_equal(met.u, base.u)
    tight = est / 20
    up = cdr.solve(HARD, grid, None, tolerance=tight, deadline=time.perf_counter() + 30)
    info = up.rows[0].answer
    assert info.rung == "reference" and info.escalation.tried == ["reference"]
    assert up.estimate[0] <= tight and not info.escalation.time_budget_exhausted
    assert rel_err(up.u[0], HARD) <= up.estimate[0]  # the promise is kept
    assert rel_err(up.u[0], HARD) < rel_err(base.u[0], HARD)


def test_an_uncorrected_request_escalates_straight_to_the_reference(cdr):
    grid = grid_arrays(Grid(points=[(0.5, 0.2), (3.0, 0.9), (6.0, 1.0)]))
    mu = np.array([[3.0, 0.0, 2.0], [2.0, 1.0, 1.0]])
    surrogate = cdr.solve(mu, grid, None, correct=False)
    assert [r.answer.rung for r in surrogate.rows] == ["surrogate"] * 2
    assert all(r.answer.estimate == "site_envelope" for r in surrogate.rows)  # 3 points: the envelope bounds them
    tol = float(surrogate.estimate.min()) / 10
    up = cdr.solve(mu, grid, None, correct=False, tolerance=tol, deadline=time.perf_counter() + 30)
    assert [r.answer.rung for r in up.rows] == ["reference"] * 2 and np.all(up.estimate <= tol)
    assert all(r.answer.estimate is None for r in up.rows)  # the reference's own estimate, not the envelope's


def test_a_budget_that_runs_out_gives_a_flagged_answer_not_a_late_one(cdr):
    grid = grid_arrays(Grid(nx=256, nt=100))
    t0 = time.perf_counter()
    res = cdr.solve(HARD, grid, None, tolerance=1e-13, deadline=t0 + 0.005)
    assert time.perf_counter() - t0 < 1.0
    info = res.rows[0].answer
    assert info.escalation.time_budget_exhausted and res.estimate[0] > 1e-13


def test_the_http_contract_of_escalation(client):
    body = {"params": {"beta": 2.0, "nu": 0.5, "rho": 1.0}, "grid": {"nx": 16, "nt": 5}}
    d = client.post("/solve", json=body).json()
    assert "route" not in d["diagnostics"]["answer"]  # without a tolerance: the default route, as always
    tight = client.post("/solve", json={**body, "tolerance": d["error_estimate"] / 10}).json()
    assert tight["rung"] == "reference" and tight["within_tolerance"] is True and tight["flags"] == []
    answer = tight["diagnostics"]["answer"]  # routed there directly: nothing was tried first
    assert answer["route"].startswith("reference:") and "escalation" not in answer
    assert "cheapest route predicted to meet the tolerance" in answer["reason"]
    assert "escalation" in tight["diagnostics"]["timings_ms"]
    late = client.post("/solve", json={**body, "tolerance": 1e-12, "time_budget_ms": 1}).json()
    assert late["within_tolerance"] is False and late["u"] == d["u"]
    assert [f["code"] for f in late["flags"]] == ["estimate_above_tolerance", "time_budget_exhausted"]
    for bad in (0, 600_001, 1.5, "1"):
        r = client.post("/solve", json={**body, "tolerance": 0.1, "time_budget_ms": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "time_budget_ms"], bad


def test_the_fast_phase_runs_by_default_only_where_it_changes_the_answer(client):
    body = {"params": {"beta": 2.0, "nu": 0.5, "rho": 1.0}, "grid": {"nx": 16, "nt": 5}}
    corrected = client.post("/solve", json=body).json()["diagnostics"]
    assert corrected["fast_phase"]["enabled"] is False and corrected["answer"]["coefficients"] == "hypernetwork"
    assert "fast_phase" in corrected["timings_ms"]
    plain = client.post("/solve", json={**body, "correction": False}).json()["diagnostics"]
    assert plain["fast_phase"]["enabled"] is True
    asked = client.post("/solve", json={**body, "fast_phase": {"steps": TEST_STEPS}}).json()["diagnostics"]
    assert asked["fast_phase"]["enabled"] is True and asked["correction"]["applied"] is True
