"""Every refusal of the HTTP contract: status, machine code, the field named, no traceback."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from service_testkit import TEST_STEPS, make_client, make_settings

from fastlrnr.server.app import create_app

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
SMALL = {"nx": 8, "nt": 4}


def post(client, body, path="/solve", **kwargs):
    return client.post(path, json=body, **kwargs)


def assert_error(r, status: int, code: str | None = None, loc: list | None = None, says: str | None = None):
    assert r.status_code == status, r.text
    d = r.json()
    assert set(d) == {"error", "message", "request_id", "errors"}
    assert d["request_id"] == r.headers["x-request-id"]
    if code:
        assert d["error"] == code
    if loc is not None:
        assert any(e["loc"][: len(loc)] == loc for e in d["errors"]), d["errors"]
    if says:
        assert says in d["message"] or any(says in e["msg"] for e in d["errors"]), d
    assert "Traceback" not in r.text
    return d


# ------------------------------------------------------------------ parameters


def test_out_of_domain_names_parameter_and_range(client):
    d = assert_error(
        post(client, {"params": {"beta": 5.0, "nu": 0.5, "rho": 1.0}}), 422, "out_of_domain", ["body", "params", "beta"]
    )
    assert "beta = 5" in d["message"] and "[1, 3]" in d["message"] and "'cdr'" in d["message"]
    d = assert_error(
        post(client, {"model": "convection", "params": {"beta": 6.0, "nu": 0.1}}),
        422,
        "out_of_domain",
        ["body", "params", "nu"],
        "nu = 0",
    )


def test_every_offending_parameter_is_listed(client):
    d = assert_error(post(client, {"params": {"beta": 0.0, "nu": 3.0, "rho": 1.0}}), 422, "out_of_domain")
    assert [e["loc"][-1] for e in d["errors"]] == ["beta", "nu"]


def test_extrapolation_is_bounded(client):
    base = {"grid": SMALL, "fast_phase": {"enabled": False}, "allow_extrapolation": True}
    assert post(client, {**base, "params": {"beta": 4.9}}).status_code == 200
    assert_error(
        post(client, {**base, "params": {"beta": 1e6}}), 422, "out_of_domain", ["body", "params", "beta"], "too far"
    )
    assert_error(
        post(client, {**base, "params": {"beta": 2.0, "rho": -0.5}}), 422, "out_of_domain", ["body", "params", "rho"]
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"params": {"beta": NaN}}',
        b'{"params": {"beta": Infinity}}',
        b'{"params": {"beta": -Infinity}}',
        b'{"params": {"beta": 1e999}}',
    ],
)
def test_non_finite_numbers_refused(client, raw):
    r = client.post("/solve", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 422, "validation_error", ["body", "params", "beta"])


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"params": {"beta": "two"}}, ["body", "params", "beta"]),
        ({"params": {"beta": 2, "gamma": 1}}, ["body", "params", "gamma"]),
        ({"params": [2, 0.5, 1]}, ["body", "params"]),
        ({}, ["body", "params"]),
        ({"params": MU, "extra": 1}, ["body", "extra"]),
        ({"params": MU, "model": "../etc"}, ["body", "model"]),
        ({"params": MU, "allow_extrapolation": "maybe"}, ["body", "allow_extrapolation"]),
    ],
)
def test_malformed_fields(client, body, loc):
    assert_error(post(client, body), 422, "validation_error", loc)


# ------------------------------------------------------------------ grids and limits


@pytest.mark.parametrize(
    "grid, loc, says",
    [
        ({"nx": 8}, ["body", "grid"], "needs nx and nt; nt is missing"),
        ({"nx": 0, "nt": 4}, ["body", "grid", "nx"], "greater than or equal to 1"),
        ({"nx": 8.5, "nt": 4}, ["body", "grid", "nx"], "valid integer"),
        ({"x": [0.0, 1.0]}, ["body", "grid"], "needs x and t; t is missing"),
        ({"x": [], "t": [0.5]}, ["body", "grid", "x"], "at least 1 item"),
        ({"nx": 8, "nt": 4, "x": [0.0], "t": [0.0]}, ["body", "grid"], "exactly one"),
        ({"x": [0.0], "t": [1.5]}, ["body", "grid", "t", 0], "less than or equal to 1"),
        ({"points": [[0.0, -0.1]]}, ["body", "grid", "points", 0, 1], "greater than or equal to 0"),
        ({"points": [[0.0, 0.5, 1.0]]}, ["body", "grid", "points", 0], "at most 2 items"),
        ({"points": [[0.0, None]]}, ["body", "grid", "points", 0, 1], "valid number"),
        ({}, ["body", "grid"], "exactly one"),
        ({"nx": 8, "nt": 4, "points": [[0.0, 0.5]]}, ["body", "grid"], "exactly one"),
    ],
)
def test_malformed_grids(client, grid, loc, says):
    assert_error(post(client, {"params": MU, "grid": grid}), 422, "validation_error", loc, says)


def test_grid_over_limit_is_413(client):
    assert_error(
        post(client, {"params": MU, "grid": {"nx": 1024, "nt": 257}}), 413, "grid_too_large", ["body", "grid"], "262144"
    )
    assert_error(post(client, {"params": MU, "grid": {"nx": 10**12, "nt": 10**12}}), 413, "grid_too_large")


def test_points_over_limit_is_413(artifact_root):
    with make_client(create_app(make_settings(artifact_root, max_grid_points=10, warmup=False))) as c:
        pts = [[0.1 * i, 0.5] for i in range(11)]
        assert_error(post(c, {"params": MU, "grid": {"points": pts}}), 413, "grid_too_large")
        assert_error(post(c, {"params": MU, "grid": {"x": [0.0] * 4, "t": [0.0] * 3}}), 413)
        assert (
            post(c, {"params": MU, "grid": {"points": pts[:10]}, "fast_phase": {"enabled": False}}).status_code == 200
        )


@pytest.mark.parametrize(
    "fp, loc",
    [
        ({"steps": 51}, ["body", "fast_phase", "steps"]),
        ({"epochs": 51}, ["body", "fast_phase", "epochs"]),
        ({"steps": -1}, ["body", "fast_phase", "steps"]),
        ({"steps": 1.5}, ["body", "fast_phase", "steps"]),
        ({"backend": "gpu"}, ["body", "fast_phase", "backend"]),
        ({"locality": -0.1}, ["body", "fast_phase", "locality"]),
        ({"locality": "sometimes"}, ["body", "fast_phase", "locality"]),
        ({"enabled": "yes please"}, ["body", "fast_phase", "enabled"]),
        ({"lr": 0.1}, ["body", "fast_phase", "lr"]),
    ],
)
def test_fast_phase_options_checked(client, fp, loc):
    assert_error(post(client, {"params": MU, "grid": SMALL, "fast_phase": fp}), 422, None, loc)


def test_batch_limits(client):
    assert_error(post(client, {"params": []}, "/solve/batch"), 422, "validation_error", ["body", "params"])
    assert_error(post(client, {"params": [MU] * 65, "grid": SMALL}, "/solve/batch"), 413, "batch_too_large")
    assert_error(
        post(client, {"params": [MU] * 64, "grid": {"nx": 512, "nt": 512}}, "/solve/batch"), 413, "batch_too_large"
    )
    d = assert_error(post(client, {"params": [MU, {"beta": 9.0}], "grid": SMALL}, "/solve/batch"), 422, "out_of_domain")
    assert d["errors"][0]["loc"] == ["body", "params", 1, "beta"]


def test_unknown_model_is_404(client):
    assert_error(post(client, {"model": "burgers", "params": MU}), 404, "unknown_model", ["body", "model"], "burgers")
    assert_error(post(client, {"model": "burgers", "params": [MU]}, "/solve/batch"), 404, "unknown_model")


# ------------------------------------------------------------------ bodies and routes


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"{bad json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "validation_error"),
        (b"null", "validation_error"),
        (b'"params"', "validation_error"),
        (b"\xff\xfe", "invalid_json"),
    ],
)
def test_malformed_json(client, raw, code):
    r = client.post("/solve", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 422, code)


def test_body_is_json_whatever_the_content_type(client):
    r = client.post("/solve", content=b"beta=2", headers={"content-type": "application/x-www-form-urlencoded"})
    assert_error(r, 422, "invalid_json")
    body = (
        b'{"params": {"beta": 2.0, "nu": 0.5, "rho": 1.0}, "grid": {"nx": 4, "nt": 2}, '
        b'"fast_phase": {"enabled": false}}'
    )
    assert client.post("/solve", content=body, headers={"content-type": "text/plain"}).status_code == 200


def test_body_cap_by_content_length(client):
    big = b'{"params": {"beta": 2}, "pad": "' + b"x" * (1 << 20) + b'"}'
    assert_error(
        client.post("/solve", content=big, headers={"content-type": "application/json"}), 413, "body_too_large"
    )


def test_body_cap_on_streamed_bytes(client):
    def chunks():  # no Content-Length: chunked transfer
        yield b'{"params": {"beta": 2}, "pad": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    assert_error(
        client.post("/solve", content=chunks(), headers={"content-type": "application/json"}), 413, "body_too_large"
    )


def test_bad_content_length(client):
    r = client.post("/solve", content=b"{}", headers={"content-type": "application/json", "content-length": "-1"})
    assert_error(r, 400, "bad_request", says="Content-Length")


def test_unknown_route_and_method(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/solve"), 405, "method_not_allowed")
    assert_error(client.post("/solve?format=xml", json={"params": MU}), 422, None, ["query", "format"])


# ------------------------------------------------------------------ auth


def test_api_keys(artifact_root):
    settings = make_settings(artifact_root, api_keys="key-one-123,key-two-456", warmup=False)
    with make_client(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        body = {"params": MU, "grid": SMALL, "fast_phase": {"enabled": False}}
        for headers in (
            {},
            {"Authorization": "Bearer wrong-key-000"},
            {"Authorization": "key-one-123"},
            {"Authorization": "Basic key-one-123"},
        ):
            r = c.post("/solve", json=body, headers=headers)
            assert_error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer"
        assert_error(c.get("/models"), 401)
        assert_error(c.get("/metrics"), 401)
        for key in ("key-one-123", "key-two-456"):
            assert c.post("/solve", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/models", headers={"Authorization": "bearer key-two-456"}).status_code == 200


# ------------------------------------------------------------------ server faults


def test_internal_error_returns_request_id_only(artifact_root, capfd):
    app = create_app(make_settings(artifact_root, warmup=False))
    with make_client(app) as c:
        runtime = app.state.service.models["cdr"]

        def broken(*args, **kwargs):
            raise RuntimeError("secret internals at /srv/model")

        runtime.first_pass = broken
        r = post(c, {"params": MU, "grid": SMALL}, headers={"X-Request-ID": "fault-1"})
        d = assert_error(r, 500, "internal_error")
        assert "secret" not in r.text and "/srv" not in r.text and d["request_id"] == "fault-1"
    err = capfd.readouterr().err
    assert "secret internals" in err and "fault-1" in err and "Traceback" in err


def test_non_finite_field_is_a_server_error(artifact_root):
    app = create_app(make_settings(artifact_root, warmup=False))
    with make_client(app) as c:
        runtime = app.state.service.models["cdr"]
        real = runtime.field.evaluate_grid
        runtime.field.evaluate_grid = lambda *a: real(*a) * np.nan
        assert_error(post(c, {"params": MU, "grid": SMALL}), 500, "internal_error")


def test_queue_full_is_503_with_retry_after(artifact_root):
    app = create_app(
        make_settings(
            artifact_root, solver_threads=1, queue_capacity=0, retry_after_s=3, warmup=False, microbatch=False
        )
    )
    with make_client(app) as c:
        runtime = app.state.service.models["cdr"]
        real, gate, entered = runtime.first_pass, threading.Event(), threading.Event()

        def slow(*args):
            entered.set()
            assert gate.wait(10)
            return real(*args)

        runtime.first_pass = slow
        body = {"params": MU, "grid": SMALL, "fast_phase": {"steps": TEST_STEPS}}
        first: list = []
        worker = threading.Thread(target=lambda: first.append(post(c, body)))
        worker.start()
        try:
            assert entered.wait(10)
            r = post(c, body)
            assert_error(r, 503, "overloaded")
            assert r.headers["retry-after"] == "3"
            assert "fastlrnr_solver_rejected_total 1.0" in c.get("/metrics").text
        finally:
            gate.set()
            worker.join(10)
        assert first[0].status_code == 200
        assert post(c, body).status_code == 200  # room again
