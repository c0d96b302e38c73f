"""Every request by its cheapest accurate route (issue #28, fastlrnr/numerics/routes.py): with a
tolerance each row takes the cheapest route predicted to meet it (with rates set here), a route
whose own estimate misses climbs, a row beyond the extrapolation box is answered by the reference;
without a tolerance nothing changes; the corrected sweep equals the per-row corrected answers."""

from __future__ import annotations

import io
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.answer import Rung
from fastlrnr.numerics.reference_cost import ReferenceRates, attempt_seconds
from fastlrnr.numerics.reference_rung import points_for
from fastlrnr.numerics.routes import Allowed, RouteRates, plan_routes
from fastlrnr.numerics.sites import Sites
from fastlrnr.server.engine.solver import ModelRuntime

ROOT = Path(__file__).resolve().parents[2]
PTS = Sites.points(np.array([0.4, 2.0, 3.3, 5.9]), np.array([0.1, 0.35, 0.8, 1.0]))
GRID = Sites.uniform(64, 20)


@pytest.fixture(scope="module")
def cdr():
    rt = ModelRuntime.load(ROOT / "artifacts" / "cdr")
    rt.warm()
    yield rt
    rt.close()


def costs(model, rates: RouteRates, grid: Sites, rows: int, n: int) -> dict[str, float]:
    """Per route, seconds per row in a request of ``rows`` rows (the fixed costs shared), by hand."""
    lrnr = rates.pass_s / rows + grid.sites * rates.value_s
    ref = attempt_seconds(rates.reference, rows, np.unique(grid.t), grid.sites, 32, n) / rows
    return {"surrogate": lrnr, "corrected": lrnr + rates.corrected_row_s, "reference": ref}


RATES = {  # machines on which each route in turn is the cheapest
    "reference cheap": RouteRates(1e-5, 0.05, 0.05, 1e-3, ReferenceRates(1e-7, 1e-10, 1e-12)),
    "reference dear": RouteRates(1e-7, 1e-4, 0.05, 1e-4, ReferenceRates(1e-1, 1e-5, 1e-6)),
    "correction dear": RouteRates(1e-7, 10.0, 0.05, 1e-4, ReferenceRates(1e-3, 1e-7, 1e-8)),
}


@pytest.mark.parametrize("machine", RATES)
@pytest.mark.parametrize("tolerance", [3e-2, 3e-3, 3e-4, 3e-5])
@pytest.mark.parametrize("grid", [PTS, GRID], ids=["points", "grid"])
def test_each_row_takes_the_cheapest_route_predicted_to_meet_the_tolerance(cdr, machine, tolerance, grid):
    rates = RATES[machine]
    mu = np.random.default_rng(3).uniform(cdr.served.low, cdr.served.high, (6, 3))
    mu[0] = [3.0, 0.0, 2.0]  # the hardest corner
    plan = plan_routes(cdr, mu, grid, tolerance, Allowed.ANY, rates)
    c = costs(cdr, rates, grid, len(mu), points_for(tolerance, cdr.family))
    predicted = {
        "surrogate": cdr.a_priori.predict(mu),
        "corrected": np.full(len(mu), cdr.corrected_priors[0]),
        "reference": np.zeros(len(mu)),  # it refines until its own estimate meets the tolerance
    }
    for i in range(len(mu)):
        meets = [k for k in c if predicted[k][i] <= tolerance]
        assert plan.kinds[i] == min(meets, key=lambda k: c[k]), (i, plan.reasons[i])
        assert plan.names[i].split(":")[0] == plan.kinds[i] and "cheapest" in plan.reasons[i]
    # what the request allows restricts the choice; the reference is always allowed
    assert set(plan_routes(cdr, mu, grid, tolerance, Allowed.CORRECTED, rates).kinds) <= {"corrected", "reference"}
    assert set(plan_routes(cdr, mu, grid, tolerance, Allowed.UNCORRECTED, rates).kinds) <= {"surrogate", "reference"}


def test_a_route_whose_own_estimate_misses_climbs_the_ladder(cdr, monkeypatch):
    """The corrected route predicted (wrongly, here) to meet 1e-7 answers first; its own estimate
    misses, so the row climbs to the reference, and the answer says so."""
    monkeypatch.setattr(cdr, "corrected_priors", (1e-9,))
    monkeypatch.setattr(cdr, "rates", RATES["reference dear"])
    mu = np.array([[2.0, 1.0, 1.0]])
    res = cdr.solve(mu, PTS, None, tolerance=1e-7, routes=True, deadline=time.perf_counter() + 30)
    answer = res.rows[0].answer
    assert answer.rung == Rung.REFERENCE and answer.route.startswith("reference:")
    assert answer.escalation.from_rung == Rung.CORRECTED and answer.escalation.tried[-1] == "reference"
    assert answer.reason.startswith("corrected:2") and "missed the tolerance, so the answer climbed" in answer.reason


def test_without_a_tolerance_the_default_route_answers_unchanged(cdr):
    mu = np.array([[2.0, 1.0, 1.0], [3.0, 0.0, 2.0]])
    plain = cdr.first_pass(mu, GRID, None)
    again = cdr.solve(mu, GRID, None, routes=True)  # routes change nothing without a tolerance
    np.testing.assert_array_equal(plain.u, again.u)
    np.testing.assert_array_equal(plain.estimate, again.estimate)
    assert all(r.answer.route is None and r.answer.reason is None for r in again.rows)


def test_a_full_field_of_a_smooth_family_goes_straight_to_the_reference(cdr):
    """At this machine's measured rates the reference at 32–64 points is far cheaper than the
    corrected surrogate on a 256 × 100 field (the issue's first finding), and it keeps its promise."""
    from fastlrnr.numerics.reference import solve_reference_batch

    grid = Sites.uniform(256, 100)
    mu = np.array([[3.0, 0.0, 2.0], [2.0, 1.0, 1.0]])
    for tolerance in (1e-2, 1e-3, 1e-4):
        res = cdr.solve(mu, grid, None, tolerance=tolerance, routes=True, deadline=time.perf_counter() + 30)
        assert all(r.answer.rung == Rung.REFERENCE and r.answer.escalation is None for r in res.rows)
        ref = solve_reference_batch(mu, grid.x, grid.t, family=cdr.family)
        err = np.linalg.norm((res.u - ref).reshape(2, -1), axis=1) / np.linalg.norm(ref.reshape(2, -1), axis=1)
        assert np.all(res.estimate <= tolerance) and np.all(err <= res.estimate), (tolerance, err, res.estimate)


def test_the_corrected_sweep_equals_the_per_row_corrected_answers(client):
    rng = np.random.default_rng(5)
    mu = np.column_stack([rng.uniform(1, 3, 24), rng.uniform(0, 2, 24), rng.uniform(0, 2, 24)])
    pts = np.column_stack([rng.uniform(0, 2 * np.pi, 7), rng.uniform(0, 1, 7)])
    buf = io.BytesIO()
    np.savez(buf, params=mu, points=pts)
    r = client.post("/solve/sweep", content=buf.getvalue(), params={"correction": "true"})
    assert r.status_code == 200, r.text
    out = np.load(io.BytesIO(r.content))
    assert set(out["rung"]) == {"corrected"}
    for i in range(len(mu)):
        body = {"params": dict(zip(("beta", "nu", "rho"), mu[i])), "grid": {"points": pts.tolist()}}
        one = client.post("/solve", json={**body, "correction": True}).json()
        np.testing.assert_array_equal(out["u"][i], np.asarray(one["u"], np.float32))
        assert out["error_estimate"][i] == pytest.approx(one["error_estimate"], rel=1e-12)  # rounding


def test_a_sweep_with_a_tolerance_routes_each_row(client):
    rng = np.random.default_rng(6)
    mu = np.column_stack([rng.uniform(1, 3, 40), rng.uniform(0, 2, 40), rng.uniform(0, 2, 40)])
    buf = io.BytesIO()
    np.savez(buf, params=mu, points=np.column_stack([rng.uniform(0, 6, 5), rng.uniform(0, 1, 5)]))
    for tolerance in (1e-1, 1e-4):
        r = client.post("/solve/sweep", content=buf.getvalue(), params={"tolerance": tolerance})
        out = np.load(io.BytesIO(r.content))
        assert r.status_code == 200 and np.all(out["solved"]) and np.all(out["within_tolerance"] == 1)
        assert np.all(out["error_estimate"] <= tolerance)
    assert set(out["rung"]) == {"reference"}  # 1e-4: nothing else is predicted to meet it


def test_get_models_publishes_every_route_and_its_costs(client):
    info = client.get("/models").json()["models"][0]
    routes = {r["route"]: r for r in info["routes"]["routes"]}
    assert {"surrogate", "fast_phase", "corrected:2", "reference:16", "reference:32", "reference:64"} <= set(routes)
    assert set(info["routes"]["rates"]) >= {"value_s", "corrected_row_s", "fast_row_s", "pass_s", "reference"}
    shapes = routes["surrogate"]["predicted_ms"]
    assert len(shapes) >= 3 and all(v > 0 for r in routes.values() for v in r["predicted_ms"].values())
    assert info["extrapolation_domain"]["bounds"] and "stored" in info["extrapolation_domain"]


@pytest.mark.parametrize("name", ["cdr", "convection", "allen_cahn"])
def test_no_broken_promise_beyond_or_inside_the_extrapolation_box(name):
    """Every committed model: parameters beyond its extrapolation box are refused, with or without a
    tolerance (the estimates' widening was not measured there, and an answer the reference could not
    give in time would fall back on it); inside the box (its corners included) every answer within the
    tolerance is within it against a fine reference, even when the budget is spent before the
    reference answers. The issue's case: Allen–Cahn at ν = 1.1, ρ = 0 with tolerance 1e-4 came back
    within it at a true error of 3e-4."""
    from fastlrnr.server.api import checks
    from fastlrnr.server.api.schemas import SolveRequest
    from fastlrnr.server.errors import ApiError
    from fastlrnr.server.settings import ServiceSettings

    rt = ModelRuntime.load(ROOT / "artifacts" / name)
    rt.warm()
    family, box = rt.family, rt.extrapolation
    active = [i for i, k in enumerate(family.params) if k in box.active]
    beyond = box.high.copy()
    beyond[active] = box.high[active] * 1.15 + 0.05
    corners = np.array(
        [
            [box.low[i] if c else box.high[i] for i, c in zip(range(len(family.params)), bits)]
            for bits in itertools.product([0, 1], repeat=len(family.params))
        ]
    )
    corners = np.unique(corners, axis=0)
    corners = corners[~rt.served.contains(corners)][:4]
    rows = np.vstack([beyond[None], corners])
    if name == "allen_cahn":
        rows = np.vstack([rows, [[1.1, 0.0]]])
    limits = ServiceSettings()
    for grid in ({"nx": 64, "nt": 17}, {"points": [[0.3, 0.2], [2.5, 0.5], [4.0, 0.9], [5.5, 1.0]]}):
        for tolerance in (1e-2, 1e-4):
            for mu in rows:
                params = dict(zip(family.params, map(float, mu)))
                body = {"model": name, "params": params, "grid": grid, "allow_extrapolation": True}
                outside_box = not box.contains(mu[None])[0]
                if outside_box:  # refused, with a tolerance or without
                    for extra in ({}, {"tolerance": tolerance}):
                        with pytest.raises(ApiError) as exc:
                            checks.solve_job(
                                rt, SolveRequest.model_validate_json(json.dumps({**body, **extra})), limits
                            )
                        assert exc.value.errors[0]["type"] == "extrapolation_too_far"
                    continue
                truth = _truth(mu, job_grid(rt, body, limits), family)
                for budget_ms in (None, 1):  # 1 ms: the reference cannot answer, the fallback must not lie
                    extra = {"tolerance": tolerance} | ({} if budget_ms is None else {"time_budget_ms": budget_ms})
                    request = SolveRequest.model_validate_json(json.dumps({**body, **extra}))
                    job = checks.solve_job(rt, request, limits)
                    if budget_ms is None:
                        job.budget.escalation_s = 30.0
                    res = rt.solve_jobs([job])[0]
                    answer = res.rows[0].answer
                    err = float(np.linalg.norm(res.u[0] - truth) / np.linalg.norm(truth))
                    within = res.estimate[0] <= tolerance
                    assert np.all(np.isfinite(res.u[0]))
                    assert not within or err <= tolerance, (
                        name,
                        mu,
                        grid,
                        tolerance,
                        budget_ms,
                        err,
                        res.estimate[0],
                        answer,
                    )
    rt.close()


def job_grid(rt, body: dict, limits) -> Sites:
    """The sites a request's body asks for (its job's grid)."""
    from fastlrnr.server.api import checks
    from fastlrnr.server.api.schemas import SolveRequest

    return checks.solve_job(rt, SolveRequest.model_validate_json(json.dumps(body)), limits).grid


def _truth(mu: np.ndarray, grid: Sites, family) -> np.ndarray:
    """A fine reference at the grid's sites (4000 steps per unit time, 512 points)."""
    from fastlrnr.numerics.reference_rung import solve_at_sites

    return solve_at_sites(mu[None], grid.x, grid.t, grid.kind == "points", 4000, 512, family=family)[0]
