"""The Open Inference Protocol (fastlrnr/server/oip): /v2 health and metadata, ``infer`` equal to
/solve/batch field by field, its errors in the protocol's body, and a real client of the
protocol (tritonclient.http) against ``python -m fastlrnr.server.serve``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from service_testkit import TEST_STEPS, make_client, make_settings

from fastlrnr.numerics.artifact import load_artifact

REPO = Path(__file__).resolve().parents[2]
ROWS = [[2.0, 0.5, 1.0], [1.5, 1.0, 0.3], [2.9, 1.9, 0.1]]
SMALL = {"nx": 16, "nt": 5}


def tensor(name: str, values, datatype: str = "FP64") -> dict:
    a = np.asarray(values)
    return {"name": name, "datatype": datatype, "shape": list(a.shape), "data": a.reshape(-1).tolist()}


def infer_body(rows=ROWS, **parameters) -> dict:
    return {"inputs": [tensor("params", rows)], "parameters": {"steps": TEST_STEPS, **parameters}}


def batch_body(rows=ROWS, **fields) -> dict:
    return {
        "params": [dict(zip(("beta", "nu", "rho"), r)) for r in rows],
        "fast_phase": {"steps": TEST_STEPS},
        **fields,
    }


def outputs(resp: httpx.Response) -> dict[str, np.ndarray | list]:
    """The JSON outputs of an infer response as arrays of their shape (BYTES: list of str)."""
    out = {}
    for o in resp.json()["outputs"]:
        dtype = {"FP32": np.float32, "FP64": np.float64, "BOOL": np.bool_}.get(o["datatype"])
        out[o["name"]] = o["data"] if dtype is None else np.asarray(o["data"], dtype).reshape(o["shape"])
    return out


def without_timings(diag: dict) -> dict:
    return {k: v for k, v in diag.items() if k != "timings_ms"}


# ------------------------------------------------------------------ health and metadata


def test_v2_health_and_metadata(client, artifact_root):
    assert client.get("/v2/health/live").json() == {"live": True}
    r = client.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "fastlrnr" and meta["extensions"] == ["binary_tensor_data"] and meta["version"]
    art = load_artifact(artifact_root / "cdr")
    r = client.get("/v2/models/cdr")
    assert r.status_code == 200
    m = r.json()
    assert m["name"] == "cdr" and m["versions"] == [art.version] and m["parameters"]["sha256"] == art.sha256
    assert {"name": "params", "datatype": "FP64", "shape": [-1, 3]} in m["inputs"]
    assert {o["name"] for o in m["outputs"]} >= {"u", "error_estimate", "within_tolerance", "coefficients"}
    assert client.get(f"/v2/models/cdr/versions/{art.version}").json() == m
    r = client.get("/v2/models/cdr/ready")
    assert r.status_code == 200 and r.json() == {"name": "cdr", "version": art.version, "ready": True}
    assert client.get(f"/v2/models/convection/versions/{art.version}/ready").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/v2/models/nope", "/v2/models/nope/ready", "/v2/models/cdr/versions/9.9.9", "/v2/models/cdr/versions/9/ready"],
)
def test_unknown_model_or_version_is_404_in_the_protocol_body(client, path):
    r = client.get(path)
    assert r.status_code == 404 and set(r.json()) == {"error"} and r.json()["error"].startswith("unknown_model: ")


# ------------------------------------------------------------------ infer = /solve/batch


@pytest.mark.parametrize(
    "grid_inputs, grid_params, grid",
    [
        ([], SMALL, SMALL),
        (
            [tensor("x", [0.0, 1.0, 7.5]), tensor("t", [0.0, 0.25, 1.0])],
            {},
            {"x": [0.0, 1.0, 7.5], "t": [0.0, 0.25, 1.0]},
        ),
        ([tensor("points", [[0.0, 0.0], [3.0, 0.5]])], {}, {"points": [[0.0, 0.0], [3.0, 0.5]]}),
    ],
    ids=["uniform", "axes", "points"],
)
def test_infer_equals_solve_batch_field_by_field(client, grid_inputs, grid_params, grid):
    tol = 0.01
    body = infer_body(tolerance=tol, **grid_params)
    body["inputs"] += grid_inputs
    r = client.post("/v2/models/cdr/infer", json=body)
    assert r.status_code == 200, r.text
    b = client.post("/solve/batch", json=batch_body(grid=grid, tolerance=tol)).json()
    out, head = outputs(r), r.json()
    assert head["model_name"] == "cdr" and head["model_version"] == b["model"]["version"]
    assert head["parameters"]["model_sha256"] == b["model"]["sha256"] and head["parameters"]["grid"] == b["grid"]
    np.testing.assert_array_equal(out["u"], np.asarray([res["u"] for res in b["results"]], np.float32))
    np.testing.assert_array_equal(out["x"], b["x"])
    np.testing.assert_array_equal(out["t"], b["t"])
    assert out["error_estimate"].tolist() == [res["error_estimate"] for res in b["results"]]
    assert out["within_tolerance"].tolist() == [res["within_tolerance"] for res in b["results"]]
    assert out["extrapolated"].tolist() == [res["extrapolated"] for res in b["results"]]
    assert out["coefficients"].tolist() == [sum(res["coefficients"], []) for res in b["results"]]
    for text, res in zip(out["diagnostics"], b["results"]):
        diag = json.loads(text)
        assert diag["flags"] == res["flags"]
        assert without_timings(diag["diagnostics"]) == without_timings(res["diagnostics"])


def test_infer_options_map_to_the_batch_fields(client):
    opts = {"fast_phase": False, "correction": False, "allow_extrapolation": True, "nx": 8, "nt": 3}
    r = client.post("/v2/models/cdr/infer", json=infer_body([[3.5, 1.0, 1.0]], **opts))
    assert r.status_code == 200, r.text
    b = client.post(
        "/solve/batch",
        json=batch_body(
            [[3.5, 1.0, 1.0]],
            grid={"nx": 8, "nt": 3},
            fast_phase={"enabled": False, "steps": TEST_STEPS},
            correction=False,
            allow_extrapolation=True,
        ),
    ).json()
    out = outputs(r)
    assert "within_tolerance" not in out  # no tolerance asked: no tensor (BOOL cannot be null)
    np.testing.assert_array_equal(out["u"], np.asarray([b["results"][0]["u"]], np.float32))
    assert out["extrapolated"].tolist() == [True]
    diag = json.loads(out["diagnostics"][0])
    assert (
        diag["diagnostics"]["fast_phase"]["enabled"] is False and diag["diagnostics"]["correction"]["applied"] is False
    )
    assert [f["code"] for f in diag["flags"]] == ["outside_served_domain"]


def test_nested_json_data_and_fp32_inputs(client):
    flat = client.post("/v2/models/cdr/infer", json=infer_body(ROWS[:2], **SMALL))
    nested = {**infer_body(ROWS[:2], **SMALL), "inputs": [{**tensor("params", ROWS[:2]), "data": ROWS[:2]}]}
    r = client.post("/v2/models/cdr/infer", json=nested)
    assert r.status_code == flat.status_code == 200
    np.testing.assert_array_equal(outputs(r)["u"], outputs(flat)["u"])
    fp32 = {**infer_body([[2.1, 0.3, 1.7]], **SMALL), "inputs": [tensor("params", [[2.1, 0.3, 1.7]], "FP32")]}
    r = client.post("/v2/models/cdr/infer", json=fp32)
    widened = [float(np.float32(v)) for v in (2.1, 0.3, 1.7)]  # what FP32 can hold, exactly
    b = client.post("/solve/batch", json=batch_body([widened], grid=SMALL)).json()
    np.testing.assert_array_equal(outputs(r)["u"][0], np.asarray(b["results"][0]["u"], np.float32))


def test_infer_binary_tensors_both_ways(client):
    """The binary tensor data extension, framed by hand: inputs and outputs as raw bytes."""
    params = np.asarray(ROWS[:2], np.float64)
    head = {
        "id": "req-7",
        "inputs": [{"name": "params", "datatype": "FP64", "shape": [2, 3], "parameters": {"binary_data_size": 48}}],
        "outputs": [
            {"name": "u", "parameters": {"binary_data": True}},
            {"name": "diagnostics", "parameters": {"binary_data": True}},
            {"name": "error_estimate"},
        ],
        "parameters": {"steps": TEST_STEPS, **SMALL},
    }
    raw = json.dumps(head).encode()
    r = client.post(
        "/v2/models/cdr/infer",
        content=raw + params.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(raw)), "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.content[:n])
    assert meta["id"] == "req-7" and [o["name"] for o in meta["outputs"]] == ["u", "diagnostics", "error_estimate"]
    u_out, diag_out, est_out = meta["outputs"]
    assert u_out["shape"] == [2, 5, 16] and u_out["parameters"]["binary_data_size"] == 2 * 5 * 16 * 4
    u = np.frombuffer(r.content[n : n + 640], np.float32).reshape(2, 5, 16)
    blob, texts = r.content[n + 640 :], []
    while blob:
        (size,) = struct.unpack("<I", blob[:4])
        texts.append(json.loads(blob[4 : 4 + size]))
        blob = blob[4 + size :]
    assert len(texts) == 2 and "data" in est_out and "data" not in u_out
    b = client.post("/solve/batch", json=batch_body(ROWS[:2], grid=SMALL)).json()
    np.testing.assert_array_equal(u, np.asarray([res["u"] for res in b["results"]], np.float32))
    assert est_out["data"] == [res["error_estimate"] for res in b["results"]]
    assert [t["flags"] for t in texts] == [res["flags"] for res in b["results"]]


# ------------------------------------------------------------------ errors


ONE = [[2.0, 0.5, 1.0]]
FP = {"steps": TEST_STEPS}


@pytest.mark.parametrize(
    "rows, params, fields, code",
    [
        ([[9.0, 0.5, 1.0]], {}, {}, "out_of_domain"),
        (ONE, {"nx": 1024, "nt": 1024}, {"grid": {"nx": 1024, "nt": 1024}}, "grid_too_large"),
        (ONE * 65, {}, {}, "batch_too_large"),
        (ONE, {"steps": 51}, {"fast_phase": {"steps": 51}}, "validation_error"),
        (ONE, {"steps": 2.0}, {"fast_phase": {"steps": 2.0}}, "validation_error"),
        (ONE, {"backend": "fastest"}, {"fast_phase": {**FP, "backend": "fastest"}}, "validation_error"),
        (ONE, {"nx": 8}, {"grid": {"nx": 8}}, "validation_error"),
        (ONE, {"tolerance": -1}, {"tolerance": -1}, "validation_error"),
    ],
    ids=["domain", "grid", "batch", "steps", "steps-float", "backend", "half-grid", "tolerance"],
)
def test_errors_keep_the_batch_status_and_message(client, rows, params, fields, code):
    r = client.post("/v2/models/cdr/infer", json=infer_body(rows, **params))
    b = client.post("/solve/batch", json=batch_body(rows, **fields))
    assert b.json()["error"] == code and set(r.json()) == {"error"}
    assert r.status_code == b.status_code and r.json()["error"] == f"{code}: {b.json()['message']}"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"inputs": []}, "inputs must be a non-empty list"),
        ({"inputs": [tensor("x", [1.0])]}, "'params' (FP64 [B, 3]"),
        ({"inputs": [tensor("params", [1.0, 2.0, 3.0])]}, "shape [B, 3], got [3]"),
        ({"inputs": [tensor("params", [[2, 1, 1]], "INT64")]}, "datatype 'INT64' is not accepted"),
        ({"inputs": [{**tensor("params", [[2.0, 1.0, 1.0]]), "shape": [2, 3]}]}, "3 values for shape [2, 3]"),
        ({"inputs": [{**tensor("params", [[2.0, 1.0, 1.0]]), "data": [True, 1.0, 1.0]}]}, "data must be numbers"),
        ({"inputs": [tensor("params", ROWS), tensor("mu", [1.0])]}, "unknown inputs ['mu']"),
        ({"inputs": [tensor("params", ROWS)], "outputs": [{"name": "v"}]}, "unknown outputs ['v']"),
        (
            {"inputs": [tensor("params", ROWS)], "outputs": [{"name": "within_tolerance"}]},
            "needs the parameter 'tolerance'",
        ),
        ({"inputs": [tensor("params", ROWS)], "parameters": {"model": "cdr"}}, "unknown parameters ['model']"),
    ],
)
def test_malformed_requests_are_422_in_the_protocol_body(client, body, fragment):
    r = client.post("/v2/models/cdr/infer", json=body)
    assert r.status_code == 422 and set(r.json()) == {"error"}
    assert fragment in r.json()["error"], r.json()


def test_not_json_and_bad_framing(client):
    r = client.post("/v2/models/cdr/infer", content=b"{nope")
    assert r.status_code == 422 and r.json()["error"].startswith("invalid_json: ")
    r = client.post("/v2/models/cdr/infer", content=b"{}", headers={"Inference-Header-Content-Length": "99"})
    assert r.status_code == 400 and r.json()["error"].startswith("bad_request: ")
    head = json.dumps(infer_body()).encode()
    r = client.post(
        "/v2/models/cdr/infer", content=head + b"\0" * 8, headers={"Inference-Header-Content-Length": str(len(head))}
    )
    assert r.status_code == 422 and "8 bytes of binary data belong to no input" in r.json()["error"]


def test_api_keys_guard_metadata_and_infer_but_not_health(artifact_root):
    from fastlrnr.server.app import create_app

    with make_client(create_app(make_settings(artifact_root, api_keys="secret-key-1", models="cdr"))) as c:
        assert c.get("/v2/health/ready").status_code == 200 and c.get("/v2/models/cdr/ready").status_code == 200
        for r in (c.get("/v2"), c.get("/v2/models/cdr"), c.post("/v2/models/cdr/infer", json=infer_body())):
            assert r.status_code == 401 and r.json()["error"].startswith("unauthorized: ")
            assert r.headers["WWW-Authenticate"] == "Bearer"
        ok = c.post("/v2/models/cdr/infer", json=infer_body(), headers={"Authorization": "Bearer secret-key-1"})
        assert ok.status_code == 200


def test_full_service_is_503_with_retry_after(artifact_root):
    from fastlrnr.server.app import create_app

    with make_client(create_app(make_settings(artifact_root, models="cdr", max_requests=1))) as c:
        state = c.app.state.service
        state.requests.held = 1  # one solve request open
        try:
            r = c.post("/v2/models/cdr/infer", json=infer_body())
        finally:
            state.requests.held = 0
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"].startswith("overloaded: ")


# ------------------------------------------------------------------ a real client of the protocol


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(root: Path, log: Path, **settings: object):
    """``python -m fastlrnr.server.serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "FASTLRNR_ARTIFACT_DIR": str(root),
        "FASTLRNR_PORT": str(port),
        "FASTLRNR_WARMUP": "false",
        **{f"FASTLRNR_{k.upper()}": str(v) for k, v in settings.items()},
    }
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastlrnr.server.serve"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def server(artifact_root, tmp_path_factory):
    with served(artifact_root, tmp_path_factory.mktemp("oip") / "server.log") as (url, _):
        yield url


def test_tritonclient_http_gets_the_field_of_solve_bitwise(server, artifact_root):
    tc = pytest.importorskip("tritonclient.http")
    art = load_artifact(artifact_root / "cdr")
    mu = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
    with tc.InferenceServerClient(server.removeprefix("http://")) as c:
        assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("cdr")
        assert c.get_server_metadata()["name"] == "fastlrnr"
        meta = c.get_model_metadata("cdr", model_version=art.version)
        assert meta["versions"] == [art.version] and meta["parameters"]["sha256"] == art.sha256
        params = tc.InferInput("params", [1, 3], "FP64")
        params.set_data_from_numpy(np.array([[mu["beta"], mu["nu"], mu["rho"]]]))  # binary (the client's default)
        res = c.infer("cdr", [params], parameters={"nx": 64, "nt": 20, "steps": TEST_STEPS, "tolerance": 0.5})
        u, est, coef = res.as_numpy("u"), res.as_numpy("error_estimate"), res.as_numpy("coefficients")
        json_out = c.infer(
            "cdr",
            [params],
            outputs=[tc.InferRequestedOutput("u", binary_data=False), tc.InferRequestedOutput("within_tolerance")],
            parameters={"nx": 64, "nt": 20, "steps": TEST_STEPS, "tolerance": 0.5},
        )
        with pytest.raises(tc.InferenceServerException) as err:
            bad = tc.InferInput("params", [1, 3], "FP64")
            bad.set_data_from_numpy(np.array([[9.0, 0.5, 1.0]]))
            c.infer("cdr", [bad])
    one = httpx.post(
        f"{server}/solve",
        json={"params": mu, "grid": {"nx": 64, "nt": 20}, "fast_phase": {"steps": TEST_STEPS}, "tolerance": 0.5},
        timeout=30,
    ).json()
    assert u.dtype == np.float32 and u.shape == (1, 20, 64)
    assert u[0].tobytes() == np.asarray(one["u"], np.float32).tobytes()  # bitwise
    assert est.tolist() == [one["error_estimate"]]
    assert coef[0].tolist() == sum(one["coefficients"], [])
    assert res.get_response()["parameters"]["model_sha256"] == one["model"]["sha256"] == art.sha256
    assert json_out.as_numpy("u").tobytes() == u.tobytes()
    assert json_out.as_numpy("within_tolerance").tolist() == [one["within_tolerance"]]
    assert err.value.status() == "422" and err.value.message().startswith("out_of_domain: beta = 9")


def test_the_documented_tritonclient_example_runs(server):
    pytest.importorskip("tritonclient.http")
    doc = (REPO / "docs" / "service.md").read_text()
    section = doc[doc.index("## The Open Inference Protocol") : doc.index("## Artifacts that reload")]
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if "tritonclient" in b]
    ns: dict = {}
    exec(compile(block.replace("127.0.0.1:8000", server.removeprefix("http://")), "docs/service.md", "exec"), ns)
    res = ns["res"]
    assert res.as_numpy("u").shape == (2, 100, 256) and res.as_numpy("within_tolerance").shape == (2,)
    assert res.get_response()["model_name"] == "cdr"


# ------------------------------------------------------------------ issue #25: bodies and their description


def test_a_compressed_body_is_415_and_a_header_length_of_superscript_two_is_400(client):
    import gzip

    raw = json.dumps(infer_body()).encode()
    r = client.post("/v2/models/cdr/infer", content=gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 415 and r.json()["error"].startswith("unsupported_media_type: ")
    r = client.post("/solve", content=gzip.compress(b'{"params": {}}'), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    r = client.post(
        "/v2/models/cdr/infer", content=raw, headers={"Inference-Header-Content-Length": "²".encode("latin-1")}
    )
    assert r.status_code == 400 and r.json()["error"].startswith("bad_request: ")


def test_openapi_describes_the_infer_body_and_closes_params(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["required"] == ["inputs"]
    assert "415" in spec["paths"]["/v2/models/{model_name}/infer"]["post"]["responses"]
    params = spec["components"]["schemas"]["SolveRequest"]["properties"]["params"]
    assert params["additionalProperties"] is False and params["patternProperties"]
    budget = spec["components"]["schemas"]["SolveRequest"]["properties"]["time_budget_ms"]["anyOf"][0]
    assert budget["maximum"] == 60_000  # this server's max_time_budget_ms, not the schema's 600 000
    query = {p["name"]: p for p in spec["paths"]["/solve/sweep"]["post"]["parameters"]}
    assert query["time_budget_ms"]["schema"]["anyOf"][0]["maximum"] == 60_000
