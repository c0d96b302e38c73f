"""service/client.py: results as arrays, both transports, retries with backoff, errors."""
from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

import service.client as client_module
from service.client import AsyncSolveClient, SolveClient, SolveError
from service_testkit import RANKS, TEST_STEPS

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
FP = {"steps": TEST_STEPS}


@pytest.fixture
def sc(client):
    return SolveClient("http://testserver", http_client=client, retries=0)


@pytest.mark.parametrize("transport", ["json", "npy"])
def test_solve_returns_arrays(sc, transport):
    res = sc.solve(MU, grid={"nx": 16, "nt": 5}, fast_phase=FP, transport=transport)
    assert res.u.shape == (5, 16) and res.x.shape == (16,) and res.t.shape == (5,)
    np.testing.assert_allclose(res.x, 2 * np.pi * np.arange(16) / 16)
    np.testing.assert_allclose(res.t, np.linspace(0, 1, 5))
    assert [c.shape for c in res.coefficients] == [(k,) for k in RANKS]
    assert res.model["name"] == "cdr" and res.params == MU and res.extrapolated is False
    assert "fast_phase" in res.diagnostics and res.request_id


def test_transports_agree(sc):
    kw = dict(grid={"x": np.array([0.0, 1.0, 2.0]), "t": [0.0, 0.5]}, fast_phase={"enabled": False})
    a, b = sc.solve((2.0, 0.5, 1.0), transport="json", **kw), sc.solve((2.0, 0.5, 1.0), transport="npy", **kw)
    np.testing.assert_allclose(a.u, b.u, rtol=1e-6)
    np.testing.assert_allclose(b.x, [0.0, 1.0, 2.0])
    pts = sc.solve(MU, grid={"points": [[0.0, 0.5], [1.0, 0.5]]}, fast_phase={"enabled": False}, transport="npy")
    assert pts.u.shape == (2,) and pts.grid == "points"
    np.testing.assert_allclose(pts.t, [0.5, 0.5])


@pytest.mark.parametrize("transport", ["json", "npy"])
def test_solve_batch(sc, transport):
    res = sc.solve_batch([MU, (1.5, 0.0, 0.0)], grid={"nx": 8, "nt": 3}, fast_phase=FP, transport=transport)
    assert res.u.shape == (2, 3, 8) and len(res.results) == 2
    assert res.results[1]["params"] == {"beta": 1.5, "nu": 0.0, "rho": 0.0}


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
    with pytest.raises(ValueError, match="3 parameters"):
        sc.solve([1.0, 2.0])


# ------------------------------------------------------------------ retries (mock transport)


def overloaded_then_ok(fail: int, retry_after: str | None = "0"):
    calls = []
    body = {"model": {"name": "m", "version": "1", "sha256": "0" * 64}, "params": MU, "grid": "uniform",
            "x": [0.0], "t": [0.0], "u": [[1.0]], "coefficients": [[1.0]], "extrapolated": False,
            "diagnostics": {}, "request_id": "r"}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= fail:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return httpx.Response(503, json={"error": "overloaded", "message": "full", "request_id": "x",
                                             "errors": []}, headers=headers)
        return httpx.Response(200, json=body)

    return handler, calls


def test_retries_on_503_honouring_retry_after(monkeypatch):
    sleeps = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    handler, calls = overloaded_then_ok(2, retry_after="2")
    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    with SolveClient("http://s", http_client=http, retries=3, api_key="secret-key-1") as c:
        res = c.solve(MU)
    assert res.u.shape == (1, 1) and len(calls) == 3 and sleeps == [2.0, 2.0]
    assert calls[0].headers["authorization"] == "Bearer secret-key-1"
    assert json.loads(calls[0].content) == {"params": MU}


def test_gives_up_after_retries_and_backs_off(monkeypatch):
    sleeps = []
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    handler, calls = overloaded_then_ok(10, retry_after=None)
    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    c = SolveClient("http://s", http_client=http, retries=2, backoff=0.1)
    with pytest.raises(SolveError) as info:
        c.solve(MU)
    assert info.value.status == 503 and len(calls) == 3
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2  # exponential, jittered


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
        return httpx.Response(422, json={"error": "validation_error", "message": "bad", "request_id": "q",
                                         "errors": [{"loc": ["body"], "msg": "bad", "type": "x"}]})

    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    with pytest.raises(SolveError, match="422 validation_error"):
        SolveClient("http://s", http_client=http, retries=3).solve(MU)
    assert len(calls) == 1


def test_async_client_retries(monkeypatch):
    sleeps = []

    async def fake_sleep(s):
        sleeps.append(s)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)
    handler, calls = overloaded_then_ok(1, retry_after="1")

    async def main():
        http = httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(handler))
        async with AsyncSolveClient("http://s", http_client=http, retries=2) as c:
            return await c.solve(MU, grid={"nx": 1, "nt": 1})

    res = asyncio.run(main())
    assert res.u.shape == (1, 1) and len(calls) == 2 and sleeps == [1.0]


def test_bad_client_options():
    with pytest.raises(ValueError):
        SolveClient(transport="xml")
    with pytest.raises(ValueError):
        SolveClient(retries=-1)
