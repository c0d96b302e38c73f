"""fastlrnr/server/engine/pool.py: micro-batching of queued /solve requests, the field split when idle (graceful
shutdown: test_e2e.py, test_server.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
from service_testkit import TEST_STEPS, make_client, make_settings

from fastlrnr.server.app import create_app

GRID = {"nx": 8, "nt": 4}
PARAMS = [{"beta": 1.0 + 0.5 * i, "nu": 0.1 * i, "rho": 0.2 * i} for i in range(4)]


class Blocker:
    """Wraps ModelRuntime.first_pass: the first call waits for ``gate``; every call's row count is recorded."""

    def __init__(self, runtime):
        self.real, self.gate, self.entered, self.rows = runtime.first_pass, threading.Event(), threading.Event(), []
        self.workers: list[int] = []
        runtime.first_pass = self

    def __call__(self, mu, grid, settings, field_workers=1, *args):
        self.rows.append(mu.shape[0])
        self.workers.append(field_workers)
        if len(self.rows) == 1:
            self.entered.set()
            assert self.gate.wait(20)
        return self.real(mu, grid, settings, field_workers, *args)


def concurrent_posts(c, bodies, started: Blocker | None = None):
    out = [None] * len(bodies)

    def go(i):
        out[i] = c.post("/solve", json=bodies[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(bodies))]
    for th in threads:
        th.start()
    return threads, out


def wait_queued(app, n: int) -> None:
    pool = app.state.service.pool
    deadline = time.monotonic() + 20
    while pool.admitted < n:
        assert time.monotonic() < deadline, "requests never queued"
        time.sleep(0.005)


def body(p, grid=GRID):
    return {"params": p, "grid": grid, "fast_phase": {"steps": TEST_STEPS}}


def test_queued_requests_share_one_pass(artifact_root):
    app = create_app(make_settings(artifact_root, solver_threads=1, warmup=False))
    with make_client(app) as c:
        singles = [c.post("/solve", json=body(p)).json() for p in PARAMS]
        blocker = Blocker(app.state.service.models["cdr"])
        first, out0 = concurrent_posts(c, [body(PARAMS[0])])
        assert blocker.entered.wait(20)
        rest, out = concurrent_posts(c, [body(p) for p in PARAMS[1:]])
        wait_queued(app, 4)
        blocker.gate.set()
        for th in first + rest:
            th.join(20)
        assert blocker.rows == [1, 3]
        for single, r in zip(singles, out0 + out):
            assert r.status_code == 200
            d = r.json()
            assert d["params"] == single["params"]
            for a, b in zip(d["coefficients"], single["coefficients"]):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(np.asarray(d["u"]), np.asarray(single["u"]), rtol=1e-5, atol=1e-6)
        assert [r.json()["diagnostics"]["batch_size"] for r in out0 + out] == [1, 3, 3, 3]
        assert 'fastlrnr_solver_batch_rows_bucket{le="4.0",model="cdr"}' in c.get("/metrics").text


def test_incompatible_requests_are_not_merged_and_cap_holds(artifact_root):
    app = create_app(make_settings(artifact_root, solver_threads=1, warmup=False, microbatch_max=2))
    with make_client(app) as c:
        blocker = Blocker(app.state.service.models["cdr"])
        first, _ = concurrent_posts(c, [body(PARAMS[0])])
        assert blocker.entered.wait(20)
        bodies = [body(PARAMS[1]), body(PARAMS[2]), body(PARAMS[3]), body(PARAMS[0], {"nx": 4, "nt": 4})]
        rest, out = concurrent_posts(c, bodies)
        wait_queued(app, 5)
        blocker.gate.set()
        for th in first + rest:
            th.join(20)
        assert all(r.status_code == 200 for r in out)
        assert blocker.rows[0] == 1 and sorted(blocker.rows[1:]) == [1, 1, 2]


def test_microbatching_off_runs_one_pass_per_request(artifact_root):
    app = create_app(make_settings(artifact_root, solver_threads=1, warmup=False, microbatch=False))
    with make_client(app) as c:
        blocker = Blocker(app.state.service.models["cdr"])
        first, _ = concurrent_posts(c, [body(PARAMS[0])])
        assert blocker.entered.wait(20)
        rest, out = concurrent_posts(c, [body(p) for p in PARAMS[1:]])
        wait_queued(app, 4)
        blocker.gate.set()
        for th in first + rest:
            th.join(20)
        assert blocker.rows == [1, 1, 1, 1]


def test_field_uses_both_threads_only_when_the_server_is_otherwise_idle(artifact_root):
    app = create_app(make_settings(artifact_root, solver_threads=2, warmup=False, field_threads=2))
    with make_client(app) as c:
        blocker = Blocker(app.state.service.models["cdr"])
        first, out0 = concurrent_posts(c, [body(PARAMS[0])])
        assert blocker.entered.wait(20)  # the first solve started alone: the field may use both threads
        second = c.post("/solve", json=body(PARAMS[1]))  # runs beside the first: one thread
        blocker.gate.set()
        first[0].join(20)
        assert blocker.workers == [2, 1]
        assert second.status_code == 200 and out0[0].status_code == 200


def test_split_field_equals_the_whole(artifact_root):
    from fastlrnr.server.api.grids import grid_arrays
    from fastlrnr.server.api.schemas import Grid
    from fastlrnr.server.engine.solver import ModelRuntime

    runtime = ModelRuntime.load(artifact_root / "cdr", field_threads=3)
    try:
        mu = np.array([[2.0, 0.5, 1.0], [1.5, 1.0, 0.2]])
        for grid in (Grid(nx=128, nt=70), Grid(points=[(0.01 * i, (i % 97) / 96) for i in range(9000)])):
            ga = grid_arrays(grid)
            whole = runtime.solve(mu, ga, runtime.default_settings, field_workers=1)
            split = runtime.solve(mu, ga, runtime.default_settings, field_workers=3)
            np.testing.assert_array_equal(split.u, whole.u)
            assert split.u.shape == (2, *ga.shape)
    finally:
        runtime.close()
