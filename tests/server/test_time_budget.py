"""Issue #25: one time budget that every path honours — predicted up front from the model's
measured rates (the reference rung from its distinct times), checked between passes and inside
long rungs, a server-wide cap — and the sweeps it cuts. Assertions are on predictions, refusals,
flags and counts, not on how long a loaded machine took."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from service_testkit import make_client, make_settings

import fastlrnr.server.api.sweep_plan
from fastlrnr.numerics import ladder
from fastlrnr.numerics.reference_cost import ReferenceRates
from fastlrnr.server.app import create_app
from fastlrnr.server.engine.costs import PassRates
from fastlrnr.server.engine.jobs import Sites

NPZ = {"content-type": "application/x-npz"}
MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture
def app_client(artifact_root):
    app = create_app(make_settings(artifact_root, warmup=False))
    with make_client(app) as c:
        yield app, c


def test_a_first_answer_predicted_past_its_budget_is_refused_up_front(app_client):
    app, c = app_client
    app.state.service.models["cdr"].rates = PassRates(value_s=1e-4)  # a machine where 64 × 2048 values take 15 s
    body = {"params": [MU] * 64, "grid": {"nx": 64, "nt": 32}, "time_budget_ms": 2000}
    t0 = time.perf_counter()
    r = c.post("/solve/batch", json=body)
    assert r.status_code == 422 and r.json()["error"] == "over_time_budget", r.text
    predicted = PassRates(value_s=1e-4).pass_seconds(64, 2048, True, False)  # 15 s (the correction's default)
    assert f"predicted to take {predicted * 1e3:.0f} ms" in r.json()["message"] and time.perf_counter() - t0 < 5
    assert r.json()["errors"][0]["loc"] == ["body", "time_budget_ms"]
    # without a budget the server's cap (60 s) applies; a first pass shorter than the grace always runs
    assert c.post("/solve/batch", json={**body, "time_budget_ms": None}).status_code == 200
    small = {"params": [MU], "grid": {"nx": 8, "nt": 4}, "time_budget_ms": 1}
    assert c.post("/solve/batch", json=small).status_code == 200


def test_the_server_caps_every_budget_and_v2_takes_one(app_client):
    _, c = app_client
    r = c.post("/solve", json={"params": MU, "time_budget_ms": 60_001})
    assert r.status_code == 422 and "max_time_budget_ms" in r.json()["message"]
    infer = {
        "inputs": [{"name": "params", "shape": [1, 3], "datatype": "FP64", "data": [2.0, 0.5, 1.0]}],
        "parameters": {"nx": 8, "nt": 4, "tolerance": 1e-12, "time_budget_ms": 1},
    }
    r = c.post("/v2/models/cdr/infer", json=infer)
    assert r.status_code == 200, r.text
    diag = r.json()["outputs"][-1]["data"][0]
    assert "time_budget_exhausted" in diag
    infer["parameters"]["time_budget_ms"] = 600_000
    assert c.post("/v2/models/cdr/infer", json=infer).status_code == 422


def test_the_reference_rung_is_predicted_from_its_distinct_times(app_client):
    """Same sites, same rows: 4 000 distinct times cost 4 000 steps, 16 distinct times 16 × s. On
    a machine where a step costs 1 ms, the first does not fit 0.5 s and is not started; the second
    is."""
    app, _ = app_client
    rt = app.state.service.models["cdr"]
    rt.rates = PassRates(reference=ReferenceRates(step_s=1e-3))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2 * np.pi, 4000)
    for times, started in ((rng.uniform(0, 1, 4000), False), (np.repeat(np.linspace(0.1, 1, 16), 250), True)):
        grid = Sites("points", x, times, ("t", started))
        t0 = time.perf_counter()
        res = rt.solve(np.array([[2.0, 0.05, 2.0]]), grid, None, correct=False, tolerance=1e-12, deadline=t0 + 0.5)
        escalation = res.rows[0].answer.escalation
        assert ("reference" in escalation.tried) is started, escalation
        if not started:
            assert escalation.time_budget_exhausted and time.perf_counter() - t0 < 0.5


def test_a_stop_ends_the_climb_inside_the_reference_rung(app_client):
    app, _ = app_client
    rt = app.state.service.models["cdr"]
    grid = Sites("points", np.linspace(0, 6, 64), np.linspace(0.01, 1, 64), ("stop",))
    polls: list[int] = []
    stop = lambda: len(polls.append(1) or polls) > 3  # noqa: E731 - the client leaves a few polls in
    res = rt.solve(
        np.array([[2.0, 0.05, 2.0]]), grid, None, correct=False, tolerance=1e-13, limits=ladder.Limits(stop=stop)
    )
    assert res.rows[0].answer.escalation.time_budget_exhausted and len(polls) <= 8


def test_a_corrected_sweep_over_its_budget_is_refused_with_what_fits(app_client):
    app, c = app_client
    app.state.service.models["cdr"].rates = PassRates(corrected_row_s=0.01)
    body = npz(params=np.tile([[2.0, 0.5, 1.0]], (2560, 1)), points=np.zeros((16, 2)))
    r = c.post("/solve/sweep", content=body, headers=NPZ, params={"correction": "true", "time_budget_ms": 1000})
    assert r.status_code == 422 and r.json()["error"] == "over_time_budget", r.text
    assert "about 99 rows would fit" in r.json()["message"] or "rows would fit" in r.json()["message"]
    assert r.json()["errors"][0]["loc"] == ["query", "time_budget_ms"]
    r = c.post("/solve/sweep", content=body, headers=NPZ, params={"correction": "true"})  # 25.6 s: under the cap
    assert r.status_code == 200 or r.json()["error"] != "over_time_budget"


def test_a_sweep_cut_by_its_deadline_answers_the_rows_it_finished(app_client, monkeypatch):
    """Predicted to fit, slower than predicted (every pass 0.2 s): passes stop at the deadline;
    the rows done are answered, the others flagged unsolved."""
    app, c = app_client
    rt = app.state.service.models["cdr"]
    real = rt.first_pass

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)

    rt.first_pass = slow
    monkeypatch.setattr(fastlrnr.server.api.sweep_plan, "SWEEP_CHUNK_ROWS", 1)
    mu = np.c_[np.linspace(1, 3, 12), np.full(12, 0.5), np.ones(12)]
    r = c.post(
        "/solve/sweep", content=npz(params=mu, points=np.zeros((3, 2))), headers=NPZ, params={"time_budget_ms": 500}
    )
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content)) as z:
        solved = z["solved"]
        done = int(solved.sum())
        assert 1 <= done < 12 and solved[:done].all() and not solved[done:].any()  # in order, cut short
        assert np.isnan(z["u"][done:]).all() and np.isfinite(z["u"][:done]).all()
        assert set(z["rung"][done:]) == {"unsolved"} and z["time_budget_exhausted"][done:].all()
        assert np.isinf(z["error_estimate"][done:]).all()
    assert r.headers["x-rows-solved"] == str(done) and int(r.headers["x-request-passes"]) == done


def test_a_first_pass_that_waited_past_its_budget_is_shed(artifact_root):
    """One worker, busy for 0.6 s: a /solve with a 1 ms budget waits past its budget and the grace
    for a worker, and is answered 503 + Retry-After, not late."""
    app = create_app(make_settings(artifact_root, warmup=False, solver_threads=1, microbatch=False, retry_after_s=2))
    with make_client(app) as c:
        rt = app.state.service.models["cdr"]
        real, entered = rt.first_pass, threading.Event()

        def slow(*args, **kwargs):
            entered.set()
            time.sleep(0.6)
            return real(*args, **kwargs)

        rt.first_pass = slow
        body = {"params": MU, "grid": {"nx": 8, "nt": 4}}
        first: list = []
        worker = threading.Thread(target=lambda: first.append(c.post("/solve", json=body)))
        worker.start()
        assert entered.wait(10)
        rt.first_pass = real
        r = c.post("/solve", json={**body, "time_budget_ms": 1})
        worker.join(10)
        assert r.status_code == 503 and r.json()["error"] == "overloaded" and r.headers["retry-after"] == "2"
        assert "past its time budget" in r.json()["message"]
        assert first[0].status_code == 200
        assert c.post("/solve", json=body).status_code == 200  # no budget: never shed


def test_predictions_follow_how_the_passes_ran(app_client):
    """Rates are measured once; a machine that became four times slower makes the passes run four
    times their prediction, and the next prediction says so."""
    from fastlrnr.server.engine.costs import LOAD_MAX, Load

    load = Load()
    assert load.factor == 1.0
    for _ in range(30):
        load.observe(0.1, 0.4)
    assert load.factor == pytest.approx(4.0)
    load.observe(1e-9, 1e9)
    assert load.factor == LOAD_MAX
    app, c = app_client
    rt = app.state.service.models["cdr"]
    rt.rates = PassRates(value_s=1e-5)  # 64 × 2048 values: 1.3 s + the correction, 3.2 s: fits 5 s
    body = {"params": [MU] * 64, "grid": {"nx": 64, "nt": 32}, "time_budget_ms": 5000, "correction": False}
    assert rt.current_rates().pass_seconds(64, 2048, False, False) < 5.0
    rt.load = load  # ... on a machine 8 times slower than measured: 10.5 s
    r = c.post("/solve/batch", json=body)
    assert r.status_code == 422 and r.json()["error"] == "over_time_budget", r.text
