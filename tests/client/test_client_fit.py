"""The client's fit (fastlrnr/client/fits.py): a round trip against the app, the async client, the
request body, errors."""

from __future__ import annotations

import asyncio
import inspect
import json

import httpx
import numpy as np
import pytest

from fastlrnr.client.clients import AsyncSolveClient, FitField, FitFlag, FitResult, ModelRef, SolveClient, SolveError
from fastlrnr.client.fits import FitOptions, fit_body

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}


def observations(sc: SolveClient, n=24, noise=1e-3):
    rng = np.random.default_rng(3)
    pts = np.stack([2 * np.pi * rng.random(n), 0.05 + 0.95 * rng.random(n)], axis=1)
    u = sc.solve(MU, grid={"points": pts}, fast_phase={"enabled": False}).u
    return pts, u + noise * rng.normal(size=n)


@pytest.fixture
def sc(client):
    return SolveClient("http://testserver", http_client=client, retries=0)


def test_fit_round_trip(sc):
    pts, u = observations(sc)
    res = sc.fit(pts, u, noise=1e-3, refinement="corrected", grid={"nx": 8, "nt": 3})
    assert isinstance(res, FitResult) and isinstance(res.model, ModelRef) and res.model.name == "cdr"
    assert res.free == ["beta", "nu", "rho"] and set(res.params) == {"beta", "nu", "rho"}
    for k, v in MU.items():
        assert abs(res.params[k] - v) <= 4 * res.std_errors[k]
        lo, hi = res.intervals[k]
        assert isinstance(res.intervals[k], tuple) and lo <= res.params[k] <= hi
    assert res.covariance.shape == (3, 3) and np.allclose(
        np.sqrt(np.diag(res.covariance)), list(res.std_errors.values())
    )
    assert res.bounds["nu"] == (0.0, 2.0) and res.level == 0.95 and res.dof == 21
    assert res.sigma == 1e-3 and not res.sigma_estimated and res.sigma_effective >= res.sigma
    assert res.rung == "corrected" and res.converged and res.request_id and "total" in res.timings_ms
    assert isinstance(res.field, FitField) and res.field.u.shape == (3, 8) and res.field.grid == "uniform"
    assert all(isinstance(f, FitFlag) for f in res.flags)


def test_fit_with_held_parameters_and_estimated_noise(sc):
    pts, u = observations(sc)
    res = sc.fit(pts, u, fixed={"nu": 0.5}, bounds={"beta": (1.5, 2.5)}, refinement="corrected")
    assert res.free == ["beta", "rho"] and res.params["nu"] == 0.5 and res.sigma_estimated
    assert res.covariance.shape == (2, 2) and res.field is None


def test_fit_refusals_raise(sc):
    with pytest.raises(SolveError) as err:
        sc.fit([[1.0, 0.5], [7.0, 0.5]], [1.0, 1.0], noise=0.1)
    assert err.value.status == 422 and err.value.code == "validation_error"
    assert err.value.errors[0]["loc"] == ["body", "observations", "points", 1, 0]
    with pytest.raises(SolveError, match="unknown_model"):
        sc.fit([[1.0, 0.5]], [1.0], model="nope")
    with pytest.raises(ValueError, match="shape"):
        sc.fit([1.0, 0.5], [1.0])
    with pytest.raises(ValueError, match="one value per point"):
        sc.fit([[1.0, 0.5]], [1.0, 2.0])


def test_fit_body_and_signature():
    o = FitOptions(noise=0.01, bounds={"rho": (0, 2)}, fixed={"nu": 0.1}, starts=4, refinement="reference")
    body = fit_body(np.array([[1.0, 0.5]]), np.array([1.5]), o, model="allen_cahn")
    assert body == {
        "observations": {"points": [[1.0, 0.5]], "u": [1.5]},
        "model": "allen_cahn",
        "noise": 0.01,
        "bounds": {"rho": [0.0, 2.0]},
        "fixed": {"nu": 0.1},
        "starts": 4,
        "refinement": "reference",
    }
    assert fit_body([[1, 0.5]], [1], FitOptions(grid={"nx": 8.0, "nt": 2}), model=None)["grid"] == {"nx": 8, "nt": 2}
    params = inspect.signature(SolveClient.fit).parameters
    assert {"noise", "bounds", "fixed", "model", "grid", "refinement", "time_budget_ms"} <= set(params)


def test_async_fit_retries_and_parses(sc, monkeypatch):
    import fastlrnr.client.clients as client_module

    pts, u = observations(sc)
    answer = sc._http.post("/fit", json={"observations": {"points": pts.tolist(), "u": u.tolist()}, "noise": 1e-3})
    calls, sleeps = [], []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        if len(calls) == 1:
            return httpx.Response(503, json={"error": "overloaded"}, headers={"Retry-After": "1"})
        return httpx.Response(200, json=answer.json())

    async def fake_sleep(s):
        sleeps.append(s)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)

    async def main():
        http = httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(handler))
        async with AsyncSolveClient("http://s", http_client=http, retries=2, model="cdr") as c:
            return await c.fit(pts, u, noise=1e-3)

    res = asyncio.run(main())
    assert len(calls) == 2 and sleeps == [1.0] and calls[0]["model"] == "cdr" and calls[0]["noise"] == 1e-3
    assert isinstance(res, FitResult) and res.params == answer.json()["params"]
