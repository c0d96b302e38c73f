"""fastlrnr/server/app.py: the HTTP contract (shapes, content, formats) on synthetic artifacts."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from service_testkit import RANKS, TEST_STEPS

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
SMALL = {"nx": 16, "nt": 5}
FP = {"steps": TEST_STEPS}


def solve(client, body, **kwargs):
    body = {"grid": SMALL, "fast_phase": FP, **body}
    return client.post("/solve", json=body, **kwargs)


def field_from(artifact_root, coefficients, x, t):
    """The full LRNR (numpy, float64) at the given coefficients on the tensor grid t × x."""
    w = load_artifact(artifact_root / "cdr").lrnr
    xx, tt = np.meshgrid(x, t)
    return lrnr_forward(w, [np.asarray(c) for c in coefficients], xx.ravel(), tt.ravel(), family=CDR_FAMILY).reshape(
        len(t), len(x)
    )


# ------------------------------------------------------------------ ops endpoints


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "alive"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "models": ["cdr", "convection"]}


def test_models_lists_manifests(client, artifact_root):
    data = client.get("/models").json()
    assert data["default"] == "cdr" and data["unavailable"] == []
    assert data["limits"] == {
        "max_grid_points": 262_144,
        "max_steps": 50,
        "max_batch_size": 64,
        "max_batch_values": 2_097_152,
        "max_body_bytes": 1 << 20,
        "request_memory_bytes": 256 << 20,
        "max_time_budget_ms": 60_000,
    }
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == {"cdr", "convection"}
    assert by_name["cdr"]["family"] == {
        "name": "cdr",
        "equation": load_artifact(artifact_root / "cdr").family.equation,
        "params": ["beta", "nu", "rho"],
        "nonnegative": ["nu", "rho"],
    }
    cdr = by_name["cdr"]
    art = load_artifact(artifact_root / "cdr")
    assert cdr["default"] is True and by_name["convection"]["default"] is False
    assert cdr["version"] == art.version and cdr["sha256"] == art.sha256
    assert cdr["domain"]["bounds"] == {"beta": [1.0, 3.0], "nu": [0.0, 2.0], "rho": [0.0, 2.0]}
    assert cdr["quality"] == art.manifest["quality"] and cdr["dimensions"]["ranks"] == list(RANKS)
    assert cdr["fast_phase_defaults"] == art.fast_phase.to_dict() and cdr["backend"] == "onnxruntime"
    assert cdr["served_domain"] == art.manifest["served_domain"]
    assert cdr["error_estimate"]["model"] == art.error_model.to_dict()
    conv = by_name["convection"]
    assert conv["served_domain"]["bounds"]["beta"] == [1.0, 12.0] and conv["domain"]["bounds"]["beta"] == [1.0, 20.0]


def test_metrics_exposition(client):
    solve(client, {"params": MU})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert 'fastlrnr_http_requests_total{method="POST",route="/solve",status="200"}' in text
    assert "fastlrnr_http_request_duration_seconds_bucket" in text
    assert 'fastlrnr_fast_phase_seconds_count{model="cdr"}' in text
    assert "fastlrnr_solver_queue_depth 0" in text
    assert "fastlrnr_ready 1" in text


def test_openapi_documents_the_contract(client):
    spec = client.get("/openapi.json").json()
    assert {"/solve", "/solve/batch", "/models", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    solve_op = spec["paths"]["/solve"]["post"]
    assert "application/x-npy" in solve_op["responses"]["200"]["content"]
    assert {"404", "413", "422", "503"} <= set(solve_op["responses"])


# ------------------------------------------------------------------ /solve


def test_solve_default_grid_contract(client, artifact_root):
    r = client.post("/solve", json={"params": MU, "fast_phase": FP})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    d = r.json()
    assert d["grid"] == "uniform" and len(d["x"]) == 256 and len(d["t"]) == 100
    np.testing.assert_allclose(d["x"], X_PERIOD * np.arange(256) / 256)
    np.testing.assert_allclose(d["t"], np.linspace(0, 1, 100))
    u = np.asarray(d["u"])
    assert u.shape == (100, 256) and np.all(np.isfinite(u))
    assert [len(c) for c in d["coefficients"]] == list(RANKS)
    assert d["params"] == MU and d["extrapolated"] is False
    art = load_artifact(artifact_root / "cdr")
    assert d["model"] == {"name": "cdr", "version": art.version, "sha256": art.sha256}
    diag = d["diagnostics"]
    assert set(diag["timings_ms"]) == {"queue", "hypernet", "fast_phase", "field", "correction", "encode", "total"}
    assert all(v >= 0 for v in diag["timings_ms"].values())
    fp = diag["fast_phase"]
    assert fp["enabled"] is True and fp["steps_requested"] == TEST_STEPS
    assert fp["backend"] == art.fast_phase.backend and fp["optimizer"] == "lm"
    assert set(fp) == {
        "enabled",
        "backend",
        "optimizer",
        "steps_requested",
        "steps_run",
        "locality",
        "accepted",
        "objective_before",
        "objective_after",
        "residual_before",
        "residual_after",
        "error_proxy_before",
        "error_proxy_after",
    }
    if fp["accepted"]:
        assert fp["error_proxy_after"] < fp["error_proxy_before"] and 1 <= fp["steps_run"] <= TEST_STEPS
    else:
        assert fp["error_proxy_after"] == fp["error_proxy_before"] and fp["locality"] is None
    # corrected by default: the estimate is the model's calibrated function of the two-grid difference
    corr = diag["correction"]
    assert corr["applied"] is True and corr["two_grid_difference"] > 0
    want = art.correction.error_model.predict(np.array([corr["two_grid_difference"]]), np.array([[2.0, 0.5, 1.0]]))
    assert d["error_estimate"] == pytest.approx(want[0], rel=1e-12)
    assert d["within_tolerance"] is None and d["flags"] == []
    assert d["rung"] == "corrected" and diag["answer"]["rung"] == "corrected"
    assert diag["answer"]["coefficients"] == ("fast_phase" if fp["accepted"] else "hypernetwork")
    assert corr["substeps"] == art.correction.rungs[0].substeps and corr["newton_steps"] >= 0
    assert diag["batch_size"] == 1 and d["request_id"] == r.headers["x-request-id"]
    assert "fast_phase;dur=" in r.headers["server-timing"]


def test_field_is_the_full_lrnr_at_the_returned_coefficients(client, artifact_root):
    d = solve(client, {"params": MU, "correction": False}).json()
    want = field_from(artifact_root, d["coefficients"], d["x"], d["t"])
    np.testing.assert_allclose(np.asarray(d["u"]), want, rtol=2e-5, atol=2e-5)
    assert d["diagnostics"]["correction"] == {"applied": False, "two_grid_difference": None}
    # uncorrected: the estimate is the calibrated function of the served coefficients' error proxy
    art = load_artifact(artifact_root / "cdr")
    fp = d["diagnostics"]["fast_phase"]
    want_est = art.error_model.predict(np.array([fp["error_proxy_after"]]), np.array([[2.0, 0.5, 1.0]]))[0]
    assert d["error_estimate"] == pytest.approx(want_est, rel=1e-12)


@pytest.mark.parametrize("grid", ["axes", "points"])
def test_corrected_field_is_the_lrnr_plus_the_linearised_correction(client, artifact_root, grid):
    x, t = [0.0, 1.0, 2.5, 6.0, 9.0], [0.0, 0.3, 1.0]
    body_grid = {"x": x, "t": t} if grid == "axes" else {"points": [[xi, ti] for ti in t for xi in x]}
    d = solve(client, {"params": MU, "grid": body_grid}).json()
    assert d["diagnostics"]["correction"]["applied"] is True
    art = load_artifact(artifact_root / "cdr")
    S = np.concatenate([np.asarray(c) for c in d["coefficients"]])[None]
    e, _ = art.correction_model(np.float64)(S, np.array([[2.0, 0.5, 1.0]]))
    want = field_from(artifact_root, d["coefficients"], x, t) + e.on_axes(np.mod(x, 2 * np.pi), np.asarray(t))[0]
    got = np.asarray(d["u"]).reshape(len(t), len(x))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    assert np.abs(want - field_from(artifact_root, d["coefficients"], x, t)).max() > 1e-4  # it did change u


def test_fast_phase_off_returns_hypernetwork_coefficients(client, artifact_root):
    d = solve(client, {"params": MU, "fast_phase": {"enabled": False}}).json()
    art = load_artifact(artifact_root / "cdr")
    s_hat = hyper_forward(art.hyper, np.array([2.0, 0.5, 1.0]))
    for got, want in zip(d["coefficients"], s_hat):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    fp = d["diagnostics"]["fast_phase"]
    assert fp["enabled"] is False and fp["steps_run"] == 0 and fp["objective_before"] is None
    assert fp["residual_after"] == fp["residual_before"] > 0 and d["error_estimate"] > 0
    assert fp["error_proxy_after"] == fp["error_proxy_before"] > 0
    # steps = 0 is the same as switching the adaptation off
    d0 = solve(client, {"params": MU, "fast_phase": {"steps": 0}}).json()
    assert d0["coefficients"] == d["coefficients"] and d0["diagnostics"]["fast_phase"]["enabled"] is False


def test_fixed_locality_is_used(client):
    d = solve(client, {"params": MU, "fast_phase": {"steps": TEST_STEPS, "locality": 0.5}}).json()
    fp = d["diagnostics"]["fast_phase"]
    assert fp["locality"] == (0.5 if fp["accepted"] else None)


def test_backend_can_be_chosen_and_epochs_is_an_alias_of_steps(client):
    exact = solve(client, {"params": MU, "fast_phase": {"steps": 2, "backend": "exact"}}).json()
    reduced = solve(client, {"params": MU, "fast_phase": {"steps": 2, "backend": "reduced"}}).json()
    alias = solve(client, {"params": MU, "fast_phase": {"epochs": 2, "backend": "reduced"}}).json()
    assert exact["diagnostics"]["fast_phase"]["backend"] == "exact"
    assert reduced["diagnostics"]["fast_phase"]["backend"] == "reduced"
    assert (
        alias["coefficients"] == reduced["coefficients"] and alias["diagnostics"]["fast_phase"]["steps_requested"] == 2
    )
    r = solve(client, {"params": MU, "fast_phase": {"epochs": 2, "steps": 2}})
    assert r.status_code == 422 and "not both" in r.json()["message"]


def test_a_tolerance_is_met_by_the_cheapest_route_predicted_to_meet_it(client):
    d = solve(client, {"params": MU}).json()
    est = d["error_estimate"]
    assert d["rung"] == "corrected" and "route" not in d["diagnostics"]["answer"]  # the default route
    loose = solve(client, {"params": MU, "tolerance": est * 2}).json()
    answer = loose["diagnostics"]["answer"]
    assert loose["within_tolerance"] is True and loose["flags"] == [] and loose["error_estimate"] <= est * 2
    assert answer["route"].split(":")[0] == loose["rung"] and answer["reason"] and "escalation" not in answer
    for bad in (0, -0.1, 11, "1%", True):
        r = solve(client, {"params": MU, "tolerance": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "tolerance"], bad


def test_served_domain_refuses_or_flags(client):
    body = {"model": "convection", "params": {"beta": 15.0}}
    r = solve(client, body)
    assert r.status_code == 422
    err = r.json()
    assert err["error"] == "out_of_domain" and err["errors"][0]["loc"] == ["body", "params", "beta"]
    assert "served domain" in err["message"] and "[1, 12]" in err["message"]
    d = solve(client, {**body, "allow_extrapolation": True}).json()
    assert d["extrapolated"] is True and d["error_estimate"] > 0
    assert [f["code"] for f in d["flags"]] == ["outside_served_domain"] and "[1, 12]" in d["flags"][0]["message"]
    assert solve(client, {**body, "params": {"beta": 12.0}}).json()["flags"] == []
    far = solve(client, {**body, "params": {"beta": 60.0}, "allow_extrapolation": True})
    assert far.status_code == 422 and far.json()["errors"][0]["type"] == "extrapolation_too_far"


def test_missing_parameters_default_to_zero(client):
    d = solve(client, {"params": {"beta": 1.5}}).json()
    assert d["params"] == {"beta": 1.5, "nu": 0.0, "rho": 0.0}


def test_axes_and_points_grids_agree(client):
    x, t = [0.0, 1.0, 2.5, 6.0], [0.0, 0.25, 1.0]
    off = {"enabled": False}
    axes = client.post("/solve", json={"params": MU, "grid": {"x": x, "t": t}, "fast_phase": off}).json()
    assert axes["grid"] == "axes" and axes["x"] == x and axes["t"] == t
    u = np.asarray(axes["u"])
    assert u.shape == (3, 4)
    points = [[xi, ti] for ti in t for xi in x]
    pts = client.post("/solve", json={"params": MU, "grid": {"points": points}, "fast_phase": off}).json()
    assert pts["grid"] == "points" and len(pts["u"]) == 12
    np.testing.assert_allclose(np.asarray(pts["u"]).reshape(3, 4), u, rtol=1e-6)
    np.testing.assert_allclose(u[0], 1 + np.sin(x), rtol=1e-6)  # the initial condition is exact


def test_x_is_periodic(client):
    off = {"enabled": False}
    a = client.post("/solve", json={"params": MU, "grid": {"x": [1.0], "t": [0.5]}, "fast_phase": off}).json()
    b = client.post(
        "/solve", json={"params": MU, "grid": {"x": [1.0 + X_PERIOD], "t": [0.5]}, "fast_phase": off}
    ).json()
    np.testing.assert_allclose(a["u"], b["u"], rtol=1e-5)
    huge = client.post(
        "/solve", json={"params": MU, "grid": {"x": [1e300, -1e300, 3e38, 1e39], "t": [0.5]}, "fast_phase": off}
    )
    assert huge.status_code == 200 and np.all(np.isfinite(huge.json()["u"]))
    assert huge.json()["x"] == [1e300, -1e300, 3e38, 1e39]  # reported as asked


@pytest.mark.parametrize("how", ["accept", "query"])
def test_npy_transport(client, how):
    body = {"params": MU, "grid": SMALL, "fast_phase": {"enabled": False}}
    as_json = client.post("/solve", json=body).json()
    if how == "accept":
        r = client.post("/solve", json=body, headers={"Accept": "application/x-npy"})
    else:
        r = client.post("/solve?format=npy", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-npy"
    u = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert u.dtype == np.float32 and u.shape == (5, 16)
    np.testing.assert_allclose(u, np.asarray(as_json["u"]), rtol=1e-6)
    meta = json.loads(r.headers["x-solve-diagnostics"])
    assert meta["coefficients"] == as_json["coefficients"] and meta["grid"] == "uniform"
    assert r.headers["x-model"] == "cdr" and r.headers["x-model-sha256"] == as_json["model"]["sha256"]
    # ?format=json wins over the Accept header
    r = client.post("/solve?format=json", json=body, headers={"Accept": "application/x-npy"})
    assert r.headers["content-type"] == "application/json"


def test_other_model(client):
    d = solve(client, {"model": "convection", "params": {"beta": 6.0}}).json()
    assert d["model"]["name"] == "convection" and d["params"] == {"beta": 6.0, "nu": 0.0, "rho": 0.0}


def test_extrapolation_opt_in(client):
    body = {"params": {"beta": 3.5, "nu": 0.5, "rho": 1.0}, "allow_extrapolation": True}
    d = solve(client, body).json()
    assert d["extrapolated"] is True and d["diagnostics"]["extrapolated"] is True
    assert np.all(np.isfinite(np.asarray(d["u"])))


def test_request_id_echoed_or_generated(client):
    r = client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"})
    assert r.headers["x-request-id"] == "trace-42.a:b"
    r = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32
    r = solve(client, {"params": MU}, headers={"X-Request-ID": "abc123"})
    assert r.json()["request_id"] == "abc123"


# ------------------------------------------------------------------ /solve/batch


def test_batch_matches_single_solves(client):
    params = [MU, {"beta": 1.0, "nu": 0.0, "rho": 2.0}, {"beta": 3.0, "nu": 2.0, "rho": 0.0}]
    r = client.post("/solve/batch", json={"params": params, "grid": SMALL, "fast_phase": FP})
    assert r.status_code == 200
    d = r.json()
    assert len(d["results"]) == 3 and len(d["x"]) == 16 and len(d["t"]) == 5
    assert set(d["timings_ms"]) == {"queue", "hypernet", "fast_phase", "field", "correction", "encode", "total"}
    for p, item in zip(params, d["results"]):
        single = solve(client, {"params": p}).json()
        assert item["params"] == {"beta": 0.0, "nu": 0.0, "rho": 0.0} | p
        assert item["diagnostics"]["batch_size"] == 3
        for a, b in zip(item["coefficients"], single["coefficients"]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(np.asarray(item["u"]), np.asarray(single["u"]), rtol=1e-5, atol=1e-6)


def test_batch_npy(client):
    params = [MU, {"beta": 1.5}]
    r = client.post("/solve/batch?format=npy", json={"params": params, "grid": SMALL, "fast_phase": FP})
    assert r.status_code == 200
    u = np.load(io.BytesIO(r.content), allow_pickle=False)
    assert u.shape == (2, 5, 16) and u.dtype == np.float32
    meta = json.loads(r.headers["x-solve-diagnostics"])
    assert len(meta["results"]) == 2 and meta["results"][1]["params"]["beta"] == 1.5


def test_batch_points(client):
    r = client.post(
        "/solve/batch",
        json={"params": [MU, MU], "grid": {"points": [[0.0, 0.0], [1.0, 0.5]]}, "fast_phase": {"enabled": False}},
    )
    d = r.json()
    assert [len(it["u"]) for it in d["results"]] == [2, 2]
    assert d["results"][0]["u"] == d["results"][1]["u"]


# ------------------------------------------------------------------ transport: gzip, CORS, OpenAPI


@pytest.mark.parametrize(
    "accept, packed",
    [("gzip", True), ("gzip, deflate", True), ("*", True), ("identity", False), ("gzip;q=0", False), ("br", False)],
)
def test_large_answers_are_gzipped_when_accepted(client, accept, packed):
    body = {"params": MU, "fast_phase": {"enabled": False}}  # 256 × 100: over the 64 KiB threshold
    r = client.post("/solve", json=body, headers={"Accept-Encoding": accept})
    assert r.status_code == 200 and r.headers["vary"] == "Accept-Encoding"
    assert (r.headers.get("content-encoding") == "gzip") is packed
    assert ("compress;dur=" in r.headers["server-timing"]) is packed
    assert np.asarray(r.json()["u"]).shape == (100, 256)
    small = client.post("/solve", json={**body, "grid": SMALL}, headers={"Accept-Encoding": accept})
    assert "content-encoding" not in small.headers  # under the threshold: never compressed


def test_json_floats_round_trip_exactly(client):
    """orjson writes the float32 field with the shortest repr that reads back to the same float32."""
    body = {"params": MU, "grid": SMALL, "fast_phase": {"enabled": False}}
    as_json = np.asarray(client.post("/solve", json=body).json()["u"], dtype=np.float32)
    as_npy = np.load(io.BytesIO(client.post("/solve?format=npy", json=body).content), allow_pickle=False)
    np.testing.assert_array_equal(as_json, as_npy)


def test_cors_is_off_by_default(client):
    r = client.options("/solve", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_opt_in(artifact_root):
    from service_testkit import make_client, make_settings

    from fastlrnr.server.app import create_app

    settings = make_settings(
        artifact_root, warmup=False, cors_origins="https://app.example.org", api_keys="key-one-123"
    )
    with make_client(create_app(settings)) as c:
        pre = c.options(
            "/solve",
            headers={
                "Origin": "https://app.example.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example.org"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        r = c.post(
            "/solve",
            json={"params": MU, "grid": SMALL, "fast_phase": {"enabled": False}},
            headers={"Origin": "https://app.example.org", "Authorization": "Bearer key-one-123"},
        )
        assert r.headers["access-control-allow-origin"] == "https://app.example.org"
        assert "X-Request-ID" in r.headers["access-control-expose-headers"]
        other = c.options("/solve", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers


def test_openapi_examples_for_every_request_and_error(client):
    from fastlrnr.server.api.schemas import BatchSolveRequest, SolveRequest

    spec = client.get("/openapi.json").json()
    for path, model in (("/solve", SolveRequest), ("/solve/batch", BatchSolveRequest)):
        op = spec["paths"][path]["post"]
        examples = op["requestBody"]["content"]["application/json"]["examples"]
        assert len(examples) >= 2
        for ex in examples.values():
            model.model_validate_json(json.dumps(ex["value"]))  # every example is a valid request
        for status in ("401", "404", "408", "413", "422", "500", "503"):
            content = op["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
            assert content["examples"], status
            for ex in content["examples"].values():
                assert set(ex["value"]) == {"error", "message", "request_id", "errors"}
    assert spec["paths"]["/models"]["get"]["responses"]["401"]["content"]["application/json"]["examples"]
    # no API keys set: no route asks for bearer auth (issue #25)
    assert "securitySchemes" not in spec["components"]
    assert not [p for p, ops in spec["paths"].items() for op in ops.values() if "security" in op]


def test_openapi_declares_bearer_auth_when_keys_are_set(artifact_root):
    from service_testkit import make_client, make_settings

    from fastlrnr.server.app import create_app

    with make_client(create_app(make_settings(artifact_root, warmup=False, api_keys="key-one-123"))) as c:
        spec = c.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert {"HTTPBearer": []} in spec["paths"]["/solve"]["post"]["security"]


def test_openapi_examples_are_served(client):
    """The request examples, posted as they are, are answered (grids reduced to keep this quick)."""
    from fastlrnr.server.api.openapi import BATCH_EXAMPLES, SOLVE_EXAMPLES

    for path, examples in (("/solve", SOLVE_EXAMPLES), ("/solve/batch", BATCH_EXAMPLES)):
        for name, ex in examples.items():
            body = {**ex["value"], "fast_phase": {"steps": TEST_STEPS}}
            if body.get("grid", {}).get("nx"):
                body["grid"] = SMALL
            body.setdefault("grid", SMALL)
            r = client.post(path, json=body)
            assert r.status_code == 200, (name, r.text)


def test_batch_without_correction_and_jobs_that_differ_in_it_are_not_merged(client, artifact_root):
    from fastlrnr.server.api.grids import grid_arrays
    from fastlrnr.server.api.schemas import Grid
    from fastlrnr.server.engine.jobs import Job

    params = [MU, {"beta": 1.0, "nu": 0.0, "rho": 2.0}]
    d = client.post(
        "/solve/batch", json={"params": params, "grid": SMALL, "fast_phase": FP, "correction": False}
    ).json()
    for item in d["results"]:
        assert item["diagnostics"]["correction"] == {"applied": False, "two_grid_difference": None}
        want = field_from(artifact_root, item["coefficients"], d["x"], d["t"])
        np.testing.assert_allclose(np.asarray(item["u"]), want, rtol=2e-5, atol=2e-5)
    corrected = client.post("/solve/batch", json={"params": params, "grid": SMALL, "fast_phase": FP}).json()
    assert all(r["diagnostics"]["correction"]["applied"] for r in corrected["results"])
    u_on = np.asarray([r["u"] for r in corrected["results"]])
    assert not np.allclose(u_on, np.asarray([r["u"] for r in d["results"]]), atol=1e-6)
    grid = grid_arrays(Grid(nx=8, nt=3))
    mu, flags = np.array([[2.0, 0.5, 1.0]]), np.array([False])
    assert Job(mu, flags, grid, None, 0, correct=True).key != Job(mu, flags, grid, None, 0, correct=False).key
