"""Issue #25: long work cannot take every worker (the long lane), readiness tells when the workers
are pinned, a reload never closes a model under a request however many passes it has, a sweep row
is split by sites, and work stops when its client disconnects."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import anyio.from_thread
import numpy as np
import pytest
from service_testkit import make_client, make_settings
from test_server import Served

import fastlrnr.server.api.sweep_plan
from fastlrnr.server.app import create_app
from fastlrnr.server.engine.costs import PassRates
from fastlrnr.server.engine.solver import ModelRuntime

NPZ = {"content-type": "application/x-npz"}
MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
SMALL = {"params": MU, "grid": {"nx": 8, "nt": 4}}


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class Held:
    """Wraps a runtime's first_pass: passes of more than ``rows`` rows wait for ``release``."""

    def __init__(self, runtime: ModelRuntime, rows: int = 1):
        self.real, self.rows = runtime.first_pass, rows
        self.entered, self.release, self.count = threading.Semaphore(0), threading.Event(), 0
        runtime.first_pass = self

    def __call__(self, mu, *args, **kwargs):
        if len(mu) > self.rows:
            self.count += 1
            self.entered.release()
            assert self.release.wait(30)
        return self.real(mu, *args, **kwargs)


def test_long_work_leaves_a_worker_for_short_work(artifact_root):
    """Two long batches (predicted past LONG_PASS_S) take one worker between them; a small /solve
    is answered while both are held."""
    app = create_app(make_settings(artifact_root, warmup=False, solver_threads=2, microbatch=False))
    with make_client(app) as c:
        state = app.state.service
        state.models["cdr"].rates = PassRates(value_s=1e-3)  # 8 × 32 values: 0.26 s, long
        held = Held(state.models["cdr"], rows=1)
        big = {"params": [MU] * 8, "grid": {"nx": 8, "nt": 4}}
        out: list = []
        threads = [threading.Thread(target=lambda: out.append(c.post("/solve/batch", json=big))) for _ in range(2)]
        for th in threads:
            th.start()
        try:
            assert held.entered.acquire(timeout=10)
            deadline = time.monotonic() + 10
            while state.pool.admitted < 2:  # the second long batch waits for the long lane
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert state.pool.long_limiter.borrowed_tokens == 1 and held.count == 1
            r = c.post("/solve", json=SMALL)  # the free worker
            assert r.status_code == 200
        finally:
            held.release.set()
            for th in threads:
                th.join(30)
        assert [r.status_code for r in out] == [200, 200] and held.count == 2


def test_readiness_reports_a_pod_whose_workers_are_all_pinned(artifact_root):
    app = create_app(make_settings(artifact_root, warmup=False, solver_threads=1, ready_busy_s=0.2))
    with make_client(app) as c:
        held = Held(app.state.service.models["cdr"], rows=0)
        done: list = []
        worker = threading.Thread(target=lambda: done.append(c.post("/solve", json=SMALL)))
        worker.start()
        try:
            assert held.entered.acquire(timeout=10)
            assert c.get("/readyz").status_code == 200  # busy, not yet pinned
            time.sleep(0.35)
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "busy" and r.headers["retry-after"] == "1"
            assert c.get("/v2/health/ready").status_code == 503
            assert c.get("/healthz").status_code == 200  # alive all the same
        finally:
            held.release.set()
            worker.join(30)
        assert done[0].status_code == 200 and c.get("/readyz").status_code == 200


def test_twenty_reloads_during_one_multi_pass_sweep_fail_nothing(artifact_root, monkeypatch):
    """The model is replaced before each of the sweep's first 20 passes (its field threads
    closed when a runtime is closed): the sweep ends on the version it started on, every
    replaced runtime is closed only after it."""
    app = create_app(make_settings(artifact_root, warmup=False, field_threads=2))
    monkeypatch.setattr(fastlrnr.server.api.sweep_plan, "SWEEP_CHUNK_ROWS", 1)
    with make_client(app) as c:
        state = app.state.service
        first = state.models["cdr"]
        replaced: list[ModelRuntime] = []
        real = first.first_pass

        def reload_then_solve(*args, **kwargs):
            if len(replaced) < 20:  # a reload on the event loop, as the reloader does it
                new = ModelRuntime.load(artifact_root / "cdr", field_threads=2)
                replaced.append(anyio.from_thread.run_sync(state.replace_model, "cdr", new))
            return real(*args, **kwargs)

        first.first_pass = reload_then_solve
        mu = np.c_[np.linspace(1, 3, 24), np.full(24, 0.5), np.ones(24)]
        r = c.post("/solve/sweep", content=npz(params=mu, points=np.array([[0.5, 0.2], [3.0, 0.9]])), headers=NPZ)
        assert r.status_code == 200, r.text
        assert r.headers["x-request-passes"] == "24" and r.headers["x-model-sha256"] == first.artifact.sha256
        with np.load(io.BytesIO(r.content)) as z:
            assert z["solved"].all() and np.isfinite(z["u"]).all()
        assert len(replaced) == 20 and replaced[0] is first
        assert first._field_pool._shutdown  # closed once the sweep let go of it
        assert all(rt._field_pool._shutdown for rt in replaced)  # and each replaced runtime after it
        assert not state.models["cdr"]._field_pool._shutdown  # the one serving now is open
        assert c.post("/solve", json=SMALL).status_code == 200


def test_a_row_with_more_sites_than_a_pass_takes_is_split_by_sites(artifact_root, client):
    """max_batch_values 1000: one row of 2 500 points is 3 passes, axes of 50 × 40 are split by
    times; the answers are those of the unsplit sweep."""
    rng = np.random.default_rng(3)
    mu = np.array([[2.0, 0.5, 1.0], [1.5, 1.0, 0.2]])
    pts = np.c_[rng.uniform(0, 6, 2500), rng.uniform(0, 1, 2500)]
    axes = {"x": np.linspace(0, 6, 50), "t": np.linspace(0, 1, 40)}
    whole_pts = client.post("/solve/sweep", content=npz(params=mu, points=pts), headers=NPZ)
    whole_axes = client.post("/solve/sweep", content=npz(params=mu, **axes), headers=NPZ)
    assert whole_pts.headers["x-request-passes"] == whole_axes.headers["x-request-passes"] == "1"
    with make_client(create_app(make_settings(artifact_root, max_batch_values=1000))) as c:
        split_pts = c.post("/solve/sweep", content=npz(params=mu, points=pts), headers=NPZ)
        split_axes = c.post("/solve/sweep", content=npz(params=mu, **axes), headers=NPZ)
    assert split_pts.headers["x-request-passes"] == str(2 * 3)  # 2 rows × 3 parts of ≤ 1000 points
    assert split_axes.headers["x-request-passes"] == str(2 * 2)  # 2 rows × 2 parts of ≤ 20 times × 50
    for whole, split in ((whole_pts, split_pts), (whole_axes, split_axes)):
        with np.load(io.BytesIO(whole.content)) as a, np.load(io.BytesIO(split.content)) as b:
            np.testing.assert_allclose(b["u"], a["u"], rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(b["error_estimate"], a["error_estimate"])
            np.testing.assert_array_equal(b["rung"], a["rung"])


@pytest.mark.slow
def test_a_sweep_stops_when_its_client_disconnects(artifact_root, tmp_path):
    """A sweep climbing to 1e-13 within 30 s; its client leaves after 1 s: the server stops it
    (499 in the access log, well before the budget) and serves the next request."""
    rng = np.random.default_rng(4)
    mu = np.c_[rng.uniform(1, 3, 64), rng.uniform(0.01, 2, 64), rng.uniform(0, 2, 64)]
    body = npz(params=mu, points=np.c_[np.linspace(0, 6, 256), np.linspace(0.01, 1, 256)])
    with Served(artifact_root, tmp_path / "server.log", log_level="INFO") as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(
                b"POST /solve/sweep?tolerance=1e-13&time_budget_ms=30000 HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-npz\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            time.sleep(1.0)
        time.sleep(3.0)
        import httpx

        assert httpx.post(f"{srv.url}/solve", json=SMALL, timeout=30).status_code == 200
        lines = [json.loads(line) for line in srv.log_lines() if line.startswith("{")]
    sweeps = [r for r in lines if r.get("route") == "/solve/sweep"]
    assert len(sweeps) == 1 and sweeps[0]["status"] == 499, sweeps
    assert sweeps[0]["duration_ms"] < 10_000  # stopped at the next poll, not at the 30 s budget
