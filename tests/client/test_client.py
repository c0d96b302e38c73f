"""fastlrnr/client/clients.py: typed results, both transports, retries with backoff, errors, readiness."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from client_testkit import solve_body
from service_testkit import RANKS, TEST_STEPS

import fastlrnr.client.clients as client_module
from fastlrnr.client.clients import (
    AsyncSolveClient,
    BatchItem,
    Diagnostics,
    FastPhaseDiagnostics,
    FastPhaseOptions,
    Flag,
    ModelRef,
    SolveClient,
    SolveError,
    SolveResult,
)
from fastlrnr.numerics.grid import uniform_grid
from fastlrnr.server.api.grids import grid_arrays
from fastlrnr.server.api.schemas import Grid

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
FP = {"steps": TEST_STEPS}


@pytest.fixture
def sc(client):
    return SolveClient("http://testserver", http_client=client, retries=0)


@pytest.mark.parametrize("transport", ["json", "npy"])
def test_solve_returns_typed_arrays(sc, transport):
    res = sc.solve(MU, grid={"nx": 16, "nt": 5}, fast_phase=FP, transport=transport)
    assert isinstance(res, SolveResult)
    assert res.u.shape == (5, 16) and res.x.shape == (16,) and res.t.shape == (5,)
    x, t = uniform_grid(16, 5)  # the client, the server and core agree on the uniform axes
    np.testing.assert_array_equal(res.x, x)
    np.testing.assert_array_equal(res.t, t)
    served = grid_arrays(Grid(nx=16, nt=5))
    np.testing.assert_array_equal(served.x, x)
    np.testing.assert_array_equal(served.t, t)
    assert [c.shape for c in res.coefficients] == [(k,) for k in RANKS]
    assert isinstance(res.model, ModelRef) and res.model.name == "cdr" and len(res.model.sha256) == 64
    assert res.params == MU and res.extrapolated is False and res.request_id and res.grid == "uniform"
    assert isinstance(res.error_estimate, float) and res.error_estimate >= 0.0
    assert res.within_tolerance is None and res.flags == []
    d = res.diagnostics
    assert isinstance(d, Diagnostics) and isinstance(d.fast_phase, FastPhaseDiagnostics)
    assert {"queue", "hypernet", "fast_phase", "field", "encode", "total"} <= set(d.timings_ms)
    assert d.batch_size >= 1 and d.extrapolated is False
    fp = d.fast_phase
    assert fp.enabled and fp.steps_requested == TEST_STEPS and 0 <= fp.steps_run <= TEST_STEPS
    assert fp.backend in ("exact", "reduced") and fp.optimizer is not None
    assert isinstance(fp.accepted, bool) and fp.residual_after is not None and fp.residual_before is not None
    assert fp.error_proxy_after is not None and fp.error_proxy_after <= fp.error_proxy_before


def test_transports_agree(sc):
    kw = dict(grid={"x": np.array([0.0, 1.0, 2.0]), "t": [0.0, 0.5]}, fast_phase={"enabled": False})
    mu = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
    a, b = sc.solve(mu, transport="json", **kw), sc.solve(mu, transport="npy", **kw)
    np.testing.assert_allclose(a.u, b.u, rtol=1e-6)
    np.testing.assert_allclose(b.x, [0.0, 1.0, 2.0])
    assert a.error_estimate == b.error_estimate and a.model == b.model and a.flags == b.flags
    assert a.diagnostics.fast_phase == b.diagnostics.fast_phase
    pts = sc.solve(MU, grid={"points": [[0.0, 0.5], [1.0, 0.5]]}, fast_phase={"enabled": False}, transport="npy")
    assert pts.u.shape == (2,) and pts.grid == "points"
    np.testing.assert_allclose(pts.t, [0.5, 0.5])


@pytest.mark.parametrize("transport", ["json", "npy"])
def test_tolerance_within_and_flags(sc, client, transport):
    kw = dict(grid={"nx": 8, "nt": 3}, fast_phase=FP, transport=transport)
    loose = sc.solve(MU, tolerance=10.0, **kw)
    assert loose.within_tolerance is True and loose.flags == []
    # the whole ladder (every step count to the largest) takes ~1 s of CPU: a budget that cannot
    # run out on a loaded machine (the server's most, max_time_budget_ms), so the only flag is the tolerance's
    patient = SolveClient("http://testserver", http_client=client, retries=0, time_budget_ms=60_000)
    tight = patient.solve(MU, tolerance=1e-12, **kw)
    assert tight.within_tolerance is False
    assert [f.code for f in tight.flags] == ["estimate_above_tolerance"] and isinstance(tight.flags[0], Flag)
    assert "tolerance" in tight.flags[0].message
    # β = 3.5 is outside cdr's served domain β ∈ [1, 3]: refused, unless extrapolation is allowed
    with pytest.raises(SolveError, match="out_of_domain"):
        sc.solve({"beta": 3.5}, **kw)
    far = sc.solve({"beta": 3.5}, allow_extrapolation=True, **kw)
    assert far.extrapolated is True and far.diagnostics.extrapolated is True
    assert [f.code for f in far.flags] == ["outside_served_domain"] and "beta" in far.flags[0].message


def test_fast_phase_options(sc):
    assert FastPhaseOptions().to_dict() == {}
    opts = FastPhaseOptions(steps=2, backend="reduced", locality=0.5)
    assert opts.to_dict() == {"steps": 2, "backend": "reduced", "locality": 0.5}
    fp = sc.solve(MU, grid={"nx": 8, "nt": 3}, fast_phase=opts).diagnostics.fast_phase
    assert fp.enabled and fp.backend == "reduced" and fp.steps_requested == 2 and fp.steps_run <= 2
    assert fp.locality in (None, 0.5)  # 0.5 when the update was kept, None when ŝ was
    off = sc.solve(MU, grid={"nx": 8, "nt": 3}, fast_phase=FastPhaseOptions(enabled=False)).diagnostics.fast_phase
    assert off.enabled is False and off.steps_run == 0 and off.accepted is False and off.backend is None
    same = sc.solve(MU, grid={"nx": 8, "nt": 3}, fast_phase={"backend": "reduced", "steps": 2, "locality": 0.5})
    assert same.diagnostics.fast_phase.backend == "reduced"


@pytest.mark.parametrize("transport", ["json", "npy"])
def test_solve_batch_is_typed(sc, transport):
    res = sc.solve_batch(
        [MU, {"beta": 1.5, "nu": 0.0, "rho": 0.0}],
        grid={"nx": 8, "nt": 3},
        fast_phase=FP,
        tolerance=1e-12,
        transport=transport,
    )
    assert res.u.shape == (2, 3, 8) and len(res) == len(res.results) == 2
    assert all(isinstance(r, BatchItem) for r in res.results)
    assert res.results[1].params == {"beta": 1.5, "nu": 0.0, "rho": 0.0}
    assert res.model.name == "cdr" and len(res.request_ids) == 1 and res.request_ids[0]
    assert [r.request_id for r in res.results] == res.request_ids * 2
    assert "total" in res.timings_ms[0]
    for item in res.results:  # 1e-12: escalated, to the reference solver, and flagged where it is not met
        assert item.within_tolerance == (item.error_estimate <= 1e-12) and item.rung in ("corrected", "reference")
        assert ([f.code for f in item.flags][:1] == ["estimate_above_tolerance"]) != item.within_tolerance
        assert item.diagnostics.batch_size == 2 and item.diagnostics.fast_phase.steps_requested == TEST_STEPS
        assert item.diagnostics.timings_ms["total"] == res.timings_ms[0]["total"]
    if transport == "json":
        assert [c.shape for c in res.results[0].coefficients] == [(k,) for k in RANKS]
    else:  # the npy answer carries no coefficients
        assert res.coefficients == [None, None]


def test_models_and_ready(sc):
    assert {m["name"] for m in sc.models()["models"]} == {"cdr", "convection"}
    assert sc.ready()


def test_errors_raise_solve_error(sc):
    with pytest.raises(SolveError) as info:
        sc.solve({"beta": 7.0})
    err = info.value
    assert err.status == 422 and err.code == "out_of_domain" and err.errors[0]["loc"][-1] == "beta"
    assert err.request_id
    with pytest.raises(SolveError, match="404 unknown_model"):
        sc.solve(MU, model="nope")
    with pytest.raises(SolveError, match="422 validation_error"):
        sc.solve(MU, tolerance=-1.0)
    with pytest.raises(TypeError, match="mapping by name"):
        sc.solve([1.0, 2.0, 3.0])


# ------------------------------------------------------------------ retries (mock transport)


def overloaded_then_ok(fail: int, retry_after: str | None = "0"):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= fail:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return httpx.Response(
                503, json={"error": "overloaded", "message": "full", "request_id": "x", "errors": []}, headers=headers
            )
        return httpx.Response(200, json=solve_body())

    return handler, calls


def test_retries_on_503_honouring_retry_after(monkeypatch):
    sleeps = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    handler, calls = overloaded_then_ok(2, retry_after="2")
    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    with SolveClient("http://s", http_client=http, retries=3, api_key="secret-key-1") as c:
        res = c.solve(MU, tolerance=0.02, fast_phase=FastPhaseOptions(steps=4))
    assert res.u.shape == (1, 1) and len(calls) == 3 and sleeps == [2.0, 2.0]
    assert res.diagnostics.fast_phase.objective_after == 1.0 and res.error_estimate == 0.01
    assert calls[0].headers["authorization"] == "Bearer secret-key-1"
    assert calls[0].headers["user-agent"].startswith("fastlrnr-client/")
    assert json.loads(calls[0].content) == {"params": MU, "fast_phase": {"steps": 4}, "tolerance": 0.02}


def test_gives_up_after_retries_and_backs_off(monkeypatch):
    sleeps = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    handler, calls = overloaded_then_ok(10, retry_after=None)
    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    c = SolveClient("http://s", http_client=http, retries=2, backoff=0.1)
    with pytest.raises(SolveError) as info:
        c.solve(MU)
    assert info.value.status == 503 and info.value.code == "overloaded" and len(calls) == 3
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2  # exponential, jittered


def test_retries_a_body_timeout_and_sends_integral_numbers_as_integers(monkeypatch):
    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    calls = []

    def handler(request):
        calls.append(json.loads(request.content))
        if len(calls) == 1:
            return httpx.Response(
                408, json={"error": "body_timeout", "message": "slow body", "request_id": "t", "errors": []}
            )
        return httpx.Response(200, json=solve_body())

    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    SolveClient("http://s", http_client=http, retries=2).solve(
        MU, grid={"nx": 8.0, "nt": 4.0}, fast_phase={"steps": 3.0}
    )
    assert len(calls) == 2 and calls[1]["grid"] == {"nx": 8, "nt": 4} and calls[1]["fast_phase"] == {"steps": 3}
    assert isinstance(calls[1]["grid"]["nx"], int) and isinstance(calls[1]["fast_phase"]["steps"], int)


def test_retries_connection_errors(monkeypatch):
    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    calls = []

    def handler(request):
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    with pytest.raises(httpx.ConnectError):
        SolveClient("http://s", http_client=http, retries=2).solve(MU)
    assert len(calls) == 3


def test_no_retry_on_client_errors(monkeypatch):
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(
            422,
            json={
                "error": "validation_error",
                "message": "bad",
                "request_id": "q",
                "errors": [{"loc": ["body"], "msg": "bad", "type": "x"}],
            },
        )

    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    with pytest.raises(SolveError, match="422 validation_error") as info:
        SolveClient("http://s", http_client=http, retries=3).solve(MU)
    assert len(calls) == 1
    assert info.value.request_id == "q" and info.value.message == "bad" and info.value.errors[0]["loc"] == ["body"]


def test_async_client_retries(monkeypatch):
    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)
    handler, calls = overloaded_then_ok(1, retry_after="1")

    async def main():
        http = httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(handler))
        async with AsyncSolveClient("http://s", http_client=http, retries=2) as c:
            return await c.solve(MU, grid={"nx": 1, "nt": 1}, tolerance=0.5, allow_extrapolation=True)

    res = asyncio.run(main())
    assert res.u.shape == (1, 1) and len(calls) == 2 and sleeps == [1.0]
    assert json.loads(calls[0].content) == {
        "params": MU,
        "grid": {"nx": 1, "nt": 1},
        "allow_extrapolation": True,
        "tolerance": 0.5,
    }
    assert res.diagnostics.fast_phase.steps_run == 3


def test_bad_client_options():
    with pytest.raises(ValueError):
        SolveClient(transport="xml")
    with pytest.raises(ValueError):
        SolveClient(retries=-1)
    with pytest.raises(ValueError):
        SolveClient(max_batch_size=0)


# ------------------------------------------------------------------ readiness


def readyz_after(not_ready: int, *, connect_errors: int = 0):
    calls = []

    def handler(request):
        calls.append(request.url.path)
        if len(calls) <= connect_errors:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) <= connect_errors + not_ready:
            return httpx.Response(503, json={"status": "starting", "models": []})
        return httpx.Response(200, json={"status": "ready", "models": ["cdr"]})

    return handler, calls


def test_wait_ready_polls_until_ready():
    handler, calls = readyz_after(2, connect_errors=1)
    c = SolveClient("http://s", http_client=httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler)))
    c.wait_ready(timeout=5, interval=0.001)
    assert calls == ["/readyz"] * 4
    never, _ = readyz_after(10**6)
    c = SolveClient("http://s", http_client=httpx.Client(base_url="http://s", transport=httpx.MockTransport(never)))
    with pytest.raises(TimeoutError, match="not ready after"):
        c.wait_ready(timeout=0.05, interval=0.01)


def test_async_wait_ready_polls_until_ready():
    async def main(handler, timeout):
        http = httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(handler))
        async with AsyncSolveClient("http://s", http_client=http) as c:
            await c.wait_ready(timeout=timeout, interval=0.001)

    handler, calls = readyz_after(3, connect_errors=1)
    asyncio.run(main(handler, 5))
    assert calls == ["/readyz"] * 5
    never, calls = readyz_after(10**6)
    with pytest.raises(TimeoutError, match="not ready after"):
        asyncio.run(main(never, 0.05))
    assert len(calls) >= 2
