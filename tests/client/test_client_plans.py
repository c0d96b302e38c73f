"""The client's sans-I/O core: plans driven by hand (no HTTP), options, and the copies of core's
grid and parameter names (fastlrnr/client/plans.py, client_requests.py, sweep_client.py)."""

from __future__ import annotations

import inspect
import io
import random
import typing

import httpx
import numpy as np
import pytest
from client_testkit import solve_body

from fastlrnr.client import answers, plans
from fastlrnr.client import options as client_requests
from fastlrnr.client import sweeps as sweep_client
from fastlrnr.client.clients import AsyncSolveClient, SolveClient, SolveError, SolveOptions, SolveResult, SweepOptions
from fastlrnr.client.options import Request, Sleep
from fastlrnr.client.plans import ClientConfig
from fastlrnr.numerics import grid

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
REFUSED = {"error": "overloaded", "message": "full", "request_id": "x", "errors": []}


def drive(plan, answer):
    """Carry a plan out by hand: ``answer(request)`` is a response or an exception to throw;
    returns (the plan's value, the steps it yielded)."""
    steps, reply, error = [], None, None
    try:
        while True:
            step = plan.throw(error) if error is not None else plan.send(reply)
            steps.append(step)
            reply, error = None, None
            if isinstance(step, Request):
                got = answer(step)
                reply, error = (None, got) if isinstance(got, Exception) else (got, None)
    except StopIteration as stop:
        return stop.value, steps


def test_the_client_uses_the_one_grid_module_and_parameters_by_name():
    assert answers.uniform_grid is grid.uniform_grid
    assert client_requests.params_dict({"nu": 1, "rho": 0.5}) == {"nu": 1.0, "rho": 0.5}
    with pytest.raises(TypeError, match="mapping by name"):
        client_requests.params_dict((2.0, 0.5, 1.0))


def test_solve_plan_retries_503_then_answers():
    cfg = ClientConfig(retries=2, transport="npy", model="cdr", time_budget_ms=500)
    full = httpx.Response(503, json=REFUSED, headers={"Retry-After": "2"})
    replies = iter([full, httpx.Response(200, json=solve_body())])
    plan = plans.solve(cfg, {"beta": 2.0, "nu": 0.5, "rho": 1.0}, SolveOptions(tolerance=0.1, transport="json"))
    res, steps = drive(plan, lambda r: next(replies))
    assert isinstance(res, SolveResult) and res.u.shape == (1, 1)
    first, pause, again = steps
    assert first == again and pause == Sleep(2.0)
    assert (first.method, first.url) == ("POST", "/solve")
    assert first.options["headers"] == {"Accept": "application/json"}  # the call's transport wins
    assert first.options["json"] == {"params": MU, "model": "cdr", "tolerance": 0.1, "time_budget_ms": 500}


def test_send_backs_off_on_connection_errors_then_gives_up():
    cfg = ClientConfig(retries=2, backoff=0.1, rng=random.Random(0))
    with pytest.raises(httpx.ConnectError):
        drive(plans.send(cfg, Request("GET", "/models")), lambda r: httpx.ConnectError("refused"))
    cfg = ClientConfig(retries=2, backoff=0.1)
    failures = iter([httpx.ConnectError("refused"), httpx.Response(200, json={"models": []})])
    value, steps = drive(plans.models(cfg), lambda r: next(failures))
    assert value == {"models": []} and [type(s) for s in steps] == [Request, Sleep, Request]
    assert 0.05 <= steps[1].seconds <= 0.1


def test_batch_plan_learns_the_limits_from_413_and_joins_in_order():
    cfg = ClientConfig(retries=0)
    sent = []

    def answer(request):
        rows = request.options["json"]["params"]
        sent.append(len(rows))
        if len(rows) > 2:
            err = {"loc": ["body", "params"], "msg": "at most 2 rows", "type": "too_large"}
            return httpx.Response(413, json={"error": "batch_too_large", "message": "m", "errors": [err]})
        body = solve_body()
        body["results"] = [dict(solve_body(r), u=[[r["beta"]]]) for r in rows]
        body["request_id"] = f"r{len(sent)}"
        return httpx.Response(200, json=body)

    rows = [{"beta": float(i)} for i in range(5)]
    res, _ = drive(plans.batch(cfg, rows, SolveOptions(grid={"nx": 1, "nt": 1})), answer)
    assert sent == [5, 2, 2, 1] and cfg.max_batch_size == 2
    np.testing.assert_array_equal(res.u[:, 0, 0], np.arange(5.0))
    assert res.request_ids == ["r2", "r3", "r4"] and [r.params for r in res.results] == rows
    with pytest.raises(ValueError, match="at least one"):
        drive(plans.batch(cfg, [], SolveOptions()), answer)


def test_sweep_plan_sends_npz_parts_and_joins_them():
    cfg = ClientConfig(model="cdr")
    mu = np.c_[np.linspace(1, 3, 5), np.zeros(5), np.ones(5)]
    pts = np.array([[0.5, 0.1], [3.0, 0.5]])
    sent = []

    def answer(request):
        with np.load(io.BytesIO(request.options["content"])) as z:
            rows = z["params"]
            np.testing.assert_array_equal(z["points"], pts)
        sent.append((len(rows), request.options["params"]))
        n = len(rows)
        buf = io.BytesIO()
        np.savez(
            buf,
            u=np.repeat(rows[:, :1], 2, axis=1),
            error_estimate=np.full(n, 0.01),
            within_tolerance=np.ones(n, np.int8),
            rung=np.array(["surrogate"] * n),
            extrapolated=np.zeros(n, bool),
            time_budget_exhausted=np.zeros(n, bool),
        )
        return httpx.Response(200, content=buf.getvalue(), headers={"x-model-sha256": "0" * 64})

    rows_per_body = 2 * 24 + pts.nbytes + 1024  # two rows fit
    o = SweepOptions(points=pts, tolerance=0.05, body_bytes=rows_per_body)
    res, steps = drive(sweep_client.sweep(cfg, mu, o), answer)
    assert [n for n, _ in sent] == [2, 2, 1] and res.requests == 3
    assert sent[0][1] == {"model": "cdr", "tolerance": 0.05}
    assert all(s.options["headers"] == {"Content-Type": "application/x-npz"} for s in steps)
    np.testing.assert_array_equal(res.u[:, 0], mu[:, 0])
    assert res.within_tolerance.all() and res.u.shape == (5, 2)


def sweep_answer(rows: np.ndarray, solved: int | None = None) -> httpx.Response:
    """A /solve/sweep answer to ``rows`` whose first ``solved`` rows were solved (None: all)."""
    n = len(rows)
    done = np.arange(n) < (n if solved is None else solved)
    buf = io.BytesIO()
    np.savez(
        buf,
        u=np.where(done[:, None], np.repeat(rows[:, :1], 2, axis=1), np.nan),
        error_estimate=np.where(done, 0.01, np.inf),
        within_tolerance=done.astype(np.int8),
        rung=np.where(done, "surrogate", "unsolved"),
        extrapolated=np.zeros(n, bool),
        time_budget_exhausted=~done,
        solved=done,
    )
    return httpx.Response(200, content=buf.getvalue(), headers={"x-model-sha256": "0" * 64})


def test_sweep_plan_halves_a_part_over_the_time_budget_and_resends_unsolved_rows():
    """Issue #25: the server refuses a part predicted past its time budget (422 over_time_budget)
    and answers only the rows it reached when its budget ran out; the client sends the rest."""
    mu = np.c_[np.linspace(1, 3, 8), np.zeros(8), np.ones(8)]
    pts = np.array([[0.5, 0.1], [3.0, 0.5]])
    sent: list[int] = []
    over = {"error": "over_time_budget", "message": "predicted 9000 ms", "request_id": "r", "errors": []}

    def answer(request):
        with np.load(io.BytesIO(request.options["content"])) as z:
            rows = z["params"]
        sent.append(len(rows))
        if len(rows) > 4:
            return httpx.Response(422, json=over)
        return sweep_answer(rows, solved=3 if len(sent) == 2 else None)  # the first accepted part: 3 of 4

    res, _ = drive(sweep_client.sweep(ClientConfig(), mu, SweepOptions(points=pts, tolerance=0.05)), answer)
    assert sent == [8, 4, 3, 2]  # refused, halved; 3 of 4 answered; the 5 left in parts of 3
    np.testing.assert_array_equal(res.u[:, 0], mu[:, 0])
    assert res.solved.all() and not res.time_budget_exhausted.any() and res.requests == 3
    with pytest.raises(SolveError, match="over_time_budget"):  # one row still refused: raised
        drive(
            sweep_client.sweep(ClientConfig(), mu[:1], SweepOptions(points=pts)),
            lambda r: httpx.Response(422, json=over),
        )


def test_ready_and_wait_ready_plans():
    assert drive(plans.ready(1.0), lambda r: httpx.ConnectError("refused"))[0] is False
    value, steps = drive(plans.ready(None), lambda r: httpx.Response(200))
    assert value is True and steps == [Request("GET", "/readyz")]
    answers = iter([httpx.Response(503), httpx.Response(200)])
    _, steps = drive(plans.wait_ready(ClientConfig(), timeout=5, interval=0.01), lambda r: next(answers))
    assert [type(s) for s in steps] == [Request, Sleep, Request] and steps[1].seconds <= 0.01
    with pytest.raises(TimeoutError, match="not ready after"):
        drive(plans.wait_ready(ClientConfig(), timeout=0.0, interval=0.01), lambda r: httpx.Response(503))


SOLVE_KEYWORDS = [
    ("grid", None),
    ("model", None),
    ("fast_phase", None),
    ("tolerance", None),
    ("allow_extrapolation", False),
    ("correction", None),
    ("transport", None),
]
SWEEP_KEYWORDS = [
    ("points", None),
    ("x", None),
    ("t", None),
    ("model", None),
    ("tolerance", None),
    ("time_budget_ms", None),
    ("correction", False),
    ("allow_extrapolation", False),
    ("body_bytes", 1 << 20),
]


@pytest.mark.parametrize("cls", [SolveClient, AsyncSolveClient])
def test_the_public_signatures_are_as_before(cls):
    """The keyword options come from SolveOptions / SweepOptions but the methods show (and
    take) them as before: keyword-only, same names, same order, same defaults."""
    want = {
        "solve": [("params", inspect.Parameter.empty)] + SOLVE_KEYWORDS,
        "solve_batch": [("params", inspect.Parameter.empty)] + SOLVE_KEYWORDS,
        "solve_many": [("params", inspect.Parameter.empty), ("concurrency", 4), ("return_exceptions", False)]
        + SOLVE_KEYWORDS,
        "solve_sweep": [("params", inspect.Parameter.empty)] + SWEEP_KEYWORDS,
    }
    for name, params in want.items():
        method = getattr(cls, name)
        sig = list(inspect.signature(method).parameters.values())[1:]
        assert [(p.name, p.default) for p in sig] == params, name
        assert [p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig] == [False] + [True] * (len(sig) - 1)
        assert inspect.iscoroutinefunction(method) == (cls is AsyncSolveClient)


def test_option_types_agree_and_unknown_options_are_refused():
    for options, kwargs in [(SolveOptions, client_requests.SolveKwargs), (SweepOptions, sweep_client.SweepKwargs)]:
        assert list(typing.get_type_hints(kwargs)) == [f.name for f in options.__dataclass_fields__.values()]
    calls = []
    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(lambda r: calls.append(r)))
    c = SolveClient("http://s", http_client=http)
    for call in (c.solve, c.solve_batch, c.solve_many, c.solve_sweep):
        with pytest.raises(TypeError, match="tolerence"):
            call([MU], tolerence=0.1)
    assert calls == []


def test_a_client_error_is_raised_with_the_servers_fields():
    err = {"error": "out_of_domain", "message": "beta", "request_id": "q", "errors": [{"loc": ["beta"]}]}
    with pytest.raises(SolveError, match="422 out_of_domain") as info:
        drive(plans.solve(ClientConfig(), MU, SolveOptions()), lambda r: httpx.Response(422, json=err))
    assert info.value.request_id == "q" and info.value.errors == [{"loc": ["beta"]}]
