"""fastlrnr/client/clients.py: batches split to the server's limits, and bounded-concurrency solve_many."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import numpy as np
import pytest
from client_testkit import solve_body
from service_testkit import TEST_STEPS, make_client, make_settings

from fastlrnr.client.clients import AsyncSolveClient, BatchResult, SolveClient, SolveError, SolveResult

GRID = {"nx": 8, "nt": 4}  # 32 values per row
FP = {"steps": TEST_STEPS}
ROWS = [{"beta": 1.0 + 0.25 * i, "nu": 0.1 * i, "rho": 0.5} for i in range(5)]


def forwarding(app_client, log: list):
    """A MockTransport handler that sends each request to the app (a TestClient) and logs
    (rows sent, status) — so the tests see every request the client makes."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        r = app_client.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers=dict(request.headers),
        )
        log.append((len(body["params"]) if isinstance(body.get("params"), list) else 1, r.status_code))
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)

    return handler


def sync_client(app_client, log, **kw) -> SolveClient:
    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(forwarding(app_client, log)))
    return SolveClient("http://s", http_client=http, retries=0, **kw)


@pytest.fixture(scope="module")
def small_limits(artifact_root):
    """An app that takes at most 3 rows and 64 field values (2 rows of GRID) per batch."""
    from fastlrnr.server.app import create_app

    with make_client(create_app(make_settings(artifact_root, max_batch_size=3, max_batch_values=64))) as c:
        yield c


@pytest.mark.parametrize("transport", ["json", "npy"])
def test_batch_split_by_the_clients_limit_keeps_order_and_types(client, transport):
    log: list = []
    whole = sync_client(client, log).solve_batch(ROWS, grid=GRID, fast_phase=FP, transport=transport)
    assert log == [(5, 200)]
    log.clear()
    split = sync_client(client, log, max_batch_size=2).solve_batch(ROWS, grid=GRID, fast_phase=FP, transport=transport)
    assert log == [(2, 200), (2, 200), (1, 200)]
    assert isinstance(split, BatchResult) and split.u.shape == (5, 4, 8) and len(split) == 5
    assert [r.params for r in split.results] == ROWS
    np.testing.assert_allclose(split.u, whole.u, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(split.x, whole.x)
    assert [r.error_estimate for r in split.results] == pytest.approx(
        [r.error_estimate for r in whole.results], rel=1e-5
    )
    assert len(split.request_ids) == len(set(split.request_ids)) == 3 and len(split.timings_ms) == 3
    assert [r.request_id for r in split.results] == [split.request_ids[i] for i in (0, 0, 1, 1, 2)]
    assert [r.diagnostics.batch_size for r in split.results] == [2, 2, 2, 2, 1]
    assert split.model == whole.model


def test_batch_split_by_values_limit_without_a_413(client):
    log: list = []
    c = sync_client(client, log, max_batch_values=3 * 32)  # 3 rows of 32 values per request
    res = c.solve_batch(ROWS, grid=GRID, fast_phase=FP)
    assert log == [(3, 200), (2, 200)] and res.u.shape == (5, 4, 8)


def test_batch_learns_the_servers_limits_from_413(small_limits):
    log: list = []
    c = sync_client(small_limits, log)  # believes the documented defaults: 64 rows, 2 097 152 values
    res = c.solve_batch(ROWS, grid=GRID, fast_phase=FP)
    # 5 rows: 413 (over 3 rows); 3 rows: 413 (96 > 64 values); then chunks of 2
    assert log == [(5, 413), (3, 413), (2, 200), (2, 200), (1, 200)]
    assert c.max_batch_size == 3 and c.max_batch_values == 64
    assert [r.params for r in res.results] == ROWS and res.u.shape == (5, 4, 8)
    log.clear()
    c.solve_batch(ROWS[:3], grid=GRID, fast_phase=FP)  # learned: no 413 any more
    assert log == [(2, 200), (1, 200)]


def test_async_batch_learns_and_splits(small_limits):
    log: list = []

    async def main():
        http = httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(forwarding(small_limits, log)))
        async with AsyncSolveClient("http://s", http_client=http, retries=0) as c:
            return await c.solve_batch(ROWS, grid={"nx": 4, "nt": 4}, fast_phase=FP, transport="npy")

    res = asyncio.run(main())
    assert log == [(5, 413), (3, 200), (2, 200)]  # 3 × 16 values fit
    assert [r.params for r in res.results] == ROWS and res.u.shape == (5, 4, 4)


def batch_server(accept: int, log: list, *, message: str = "too many", sha=lambda call: "0" * 64):
    """A mock /solve/batch that takes at most ``accept`` rows and names no limit in its 413."""

    def handler(request):
        rows = json.loads(request.content)["params"]
        log.append(len(rows))
        if len(rows) > accept:
            return httpx.Response(
                413,
                json={
                    "error": "batch_too_large",
                    "message": message,
                    "request_id": "q",
                    "errors": [{"loc": ["body"], "msg": message, "type": "too_large"}],
                },
            )
        fp = {
            "enabled": False,
            "backend": None,
            "optimizer": None,
            "steps_requested": 0,
            "steps_run": 0,
            "locality": None,
            "accepted": False,
            "objective_before": None,
            "objective_after": None,
            "residual_before": 0.1,
            "residual_after": 0.1,
            "error_proxy_before": 0.01,
            "error_proxy_after": 0.01,
        }
        items = [
            {
                "params": r,
                "u": [[r["beta"]]],
                "coefficients": [[1.0]],
                "error_estimate": 0.1,
                "within_tolerance": None,
                "flags": [],
                "extrapolated": False,
                "diagnostics": {
                    "timings_ms": {"total": 1.0},
                    "fast_phase": fp,
                    "extrapolated": False,
                    "batch_size": len(rows),
                },
            }
            for r in rows
        ]
        return httpx.Response(
            200,
            json={
                "model": {"name": "m", "version": "1", "sha256": sha(len(log))},
                "grid": "uniform",
                "x": [0.0],
                "t": [0.0],
                "results": items,
                "timings_ms": {"total": 1.0},
                "request_id": f"r{len(log)}",
            },
        )

    return handler


def mock_client(handler, **kw) -> SolveClient:
    return SolveClient(
        "http://s",
        http_client=httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler)),
        retries=0,
        **kw,
    )


def test_batch_halves_on_a_413_that_names_no_limit():
    log: list = []
    rows = [{"beta": float(i)} for i in range(7)]
    res = mock_client(batch_server(2, log)).solve_batch(rows)
    assert log == [7, 4, 2, 2, 2, 1]  # 7 → 4 (halved) → 2 (halved, accepted from then on)
    np.testing.assert_array_equal(res.u[:, 0, 0], np.arange(7.0))
    assert res.request_ids == ["r3", "r4", "r5", "r6"]


def test_batch_errors():
    log: list = []
    with pytest.raises(SolveError) as info:  # a single row that is still too large is an error
        mock_client(batch_server(0, log)).solve_batch([{"beta": 1.0}, {"beta": 2.0}])
    assert info.value.status == 413 and info.value.code == "batch_too_large" and log == [2, 1]
    with pytest.raises(ValueError, match="at least one"):
        mock_client(batch_server(5, [])).solve_batch([])
    two_models = batch_server(1, [], sha=lambda call: f"{call:064d}")
    with pytest.raises(SolveError, match="model_changed") as info:
        mock_client(two_models, max_batch_size=1).solve_batch([{"beta": 1.0}, {"beta": 2.0}])
    assert info.value.status == 0


# ------------------------------------------------------------------ solve_many


def test_solve_many_against_the_app_in_order(client):
    log: list = []
    c = sync_client(client, log)
    res = c.solve_many(ROWS, concurrency=3, grid=GRID, fast_phase=FP, tolerance=10.0, transport="npy")
    assert all(isinstance(r, SolveResult) for r in res) and [r.params for r in res] == ROWS
    assert all(r.within_tolerance is True and r.u.shape == (4, 8) for r in res)
    assert sorted(log) == [(1, 200)] * 5


class SlowSolves:
    """A thread-safe mock /solve: answers after ``delay`` s, records the most requests in flight,
    and refuses β in ``refuse`` with a 422."""

    def __init__(self, delay: float = 0.02, refuse: tuple = ()):
        self.delay, self.refuse = delay, refuse
        self.lock, self.in_flight, self.peak, self.sent = threading.Lock(), 0, 0, []

    def enter(self, request):
        params = json.loads(request.content)["params"]
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.sent.append(params["beta"])
        return params

    def leave(self, params):
        with self.lock:
            self.in_flight -= 1
        if params["beta"] in self.refuse:
            return httpx.Response(
                422,
                json={"error": "out_of_domain", "message": f"beta = {params['beta']}", "request_id": "q", "errors": []},
            )
        return httpx.Response(200, json=solve_body(params))

    def sync(self, request):
        params = self.enter(request)
        time.sleep(self.delay)
        return self.leave(params)

    async def asynchronous(self, request):
        params = self.enter(request)
        await asyncio.sleep(self.delay)
        return self.leave(params)


BETAS = [{"beta": float(i)} for i in range(12)]


def test_solve_many_bounds_concurrency_and_keeps_order():
    server = SlowSolves()
    res = mock_client(server.sync).solve_many(BETAS, concurrency=3)
    assert [r.params for r in res] == BETAS
    assert 1 < server.peak <= 3 and server.in_flight == 0 and len(server.sent) == 12
    assert mock_client(server.sync).solve_many([], concurrency=2) == []
    with pytest.raises(ValueError, match="concurrency"):
        mock_client(server.sync).solve_many(BETAS, concurrency=0)


def test_solve_many_errors_returned_or_raised():
    server = SlowSolves(refuse=(2.0, 5.0))
    res = mock_client(server.sync).solve_many(BETAS, concurrency=4, return_exceptions=True)
    assert [isinstance(r, SolveError) for r in res] == [b["beta"] in (2.0, 5.0) for b in BETAS]
    assert res[2].code == "out_of_domain" and res[5].message == "beta = 5.0" and res[3].params == BETAS[3]
    server = SlowSolves(refuse=(1.0,))
    with pytest.raises(SolveError, match="beta = 1.0"):
        mock_client(server.sync).solve_many(BETAS, concurrency=1)
    assert server.sent == [0.0, 1.0]  # nothing sent after the failure


def test_async_solve_many():
    async def run(server, **kw):
        http = httpx.AsyncClient(base_url="http://s", transport=httpx.MockTransport(server.asynchronous))
        async with AsyncSolveClient("http://s", http_client=http, retries=0) as c:
            return await c.solve_many(BETAS, **kw)

    server = SlowSolves()
    res = asyncio.run(run(server, concurrency=4))
    assert [r.params for r in res] == BETAS and server.peak == 4 and server.in_flight == 0
    server = SlowSolves(refuse=(7.0,))
    res = asyncio.run(run(server, concurrency=5, return_exceptions=True))
    assert [isinstance(r, SolveError) for r in res] == [b["beta"] == 7.0 for b in BETAS]
    server = SlowSolves(refuse=(1.0,))
    with pytest.raises(SolveError, match="beta = 1.0"):
        asyncio.run(run(server, concurrency=2))
    assert len(server.sent) < len(BETAS)  # the rest was never sent
