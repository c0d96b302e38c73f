"""Defects D1, D5, D6, D7 of the black-box probe, in process (the server-level ones, D2–D4: test_server.py),
and the in-process part of issue #20 (the server-level part: test_server_limits.py).

D1 body parsing stalled the event loop; D5 a bad key setting echoed every key; D6 GET /models
showed server paths; D7 the contract drifted from the schema and the docs. Issue #20: metric
labels from a closed set, bodies read before a solve place is taken, the docs routes' access,
fixed parameters, the value in a refusal, a request cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import platform
import re
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from service_testkit import make_client, make_settings
from test_errors import assert_error
from test_pool import Blocker, wait_queued
from test_startup import rewrite_with_checksum

import fastlrnr.server.http.bodies as bodies
from fastlrnr.server.app import create_app
from fastlrnr.server.engine.loading import redact_paths
from fastlrnr.server.engine.state import LARGE_BODY_BYTES
from fastlrnr.server.http.bodies import LARGE_BODY_PAUSE
from fastlrnr.server.http.middleware import BODY_DEADLINE_BASE_S, LOG_PATH_CHARS, BodyLimit
from fastlrnr.server.metrics import METHODS
from fastlrnr.server.serve import limit_malloc_arenas
from fastlrnr.server.settings import ServiceSettings

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}
SMALL = {"nx": 8, "nt": 4}
OFF = {"enabled": False}
KEYS = "key-one-123,key-two-456"


def large_body(points: int = 6000) -> bytes:
    """A body over LARGE_BODY_BYTES that the schema accepts (out of the served domain: 422 later)."""
    body = json.dumps({"params": {"beta": 99.0}, "grid": {"points": [[0.5, 0.5]] * points}}).encode()
    assert len(body) > LARGE_BODY_BYTES
    return body


class ParseSpy:
    """Wraps fastlrnr.server.http.bodies.parse_json: the thread and the start/end time of every parse."""

    def __init__(self, monkeypatch, delay: float = 0.0):
        self.real, self.delay, self.calls = bodies.parse_json, delay, []
        monkeypatch.setattr(bodies, "parse_json", self)

    def __call__(self, model, raw):
        t0 = time.perf_counter()
        time.sleep(self.delay)
        try:
            return self.real(model, raw)
        finally:
            self.calls.append((threading.current_thread(), t0, time.perf_counter(), len(raw)))


# ------------------------------------------------------------------ D1: parsing off the loop, bounded


def test_d1_bodies_are_parsed_on_worker_threads(artifact_root, monkeypatch):
    spy = ParseSpy(monkeypatch)
    app = create_app(make_settings(artifact_root, warmup=False))
    with make_client(app) as c:
        loop_thread = c.portal.call(lambda: threading.current_thread())
        assert c.post("/solve", json={"params": MU, "grid": SMALL, "fast_phase": OFF}).status_code == 200
        assert_error(
            c.post("/solve", content=large_body(), headers={"content-type": "application/json"}), 422, "out_of_domain"
        )
    assert len(spy.calls) == 2 and all(th is not loop_thread for th, *_ in spy.calls)
    state = app.state.service
    assert state.parse_large.total_tokens == 1 and state.parse_small.total_tokens >= 1


def test_d1_large_bodies_are_paced_while_solves_run(artifact_root, monkeypatch):
    """Two large bodies arriving while a solve runs: the second is parsed only after a pause of
    LARGE_BODY_PAUSE × the first one's parse time (parsing holds the interpreter lock)."""
    spy = ParseSpy(monkeypatch, delay=0.05)
    app = create_app(make_settings(artifact_root, warmup=False, solver_threads=1))
    with make_client(app) as c:
        blocker = Blocker(app.state.service.models["cdr"])
        solving = threading.Thread(target=lambda: c.post("/solve", json={"params": MU, "grid": SMALL}))
        solving.start()
        assert blocker.entered.wait(20)
        out: list = []
        posts = [
            threading.Thread(
                target=lambda: out.append(
                    c.post("/solve", content=large_body(), headers={"content-type": "application/json"})
                )
            )
            for _ in range(2)
        ]
        for th in posts:
            th.start()
        for th in posts:
            th.join(20)
        blocker.gate.set()
        solving.join(20)
    assert [r.status_code for r in out] == [422, 422]
    large = sorted((call for call in spy.calls if call[3] > LARGE_BODY_BYTES), key=lambda call: call[1])
    (_, a0, a1, _), (_, b0, _, _) = large
    assert b0 - a1 >= LARGE_BODY_PAUSE * (a1 - a0) * 0.9


def test_d1_key_is_checked_before_the_body_is_read(artifact_root, monkeypatch, capfd):
    spy = ParseSpy(monkeypatch)
    with make_client(create_app(make_settings(artifact_root, warmup=False, api_keys=KEYS))) as c:
        capfd.readouterr()
        r = c.post("/solve", content=large_body(), headers={"content-type": "application/json"})
        assert_error(r, 401, "unauthorized")
        # malformed JSON without a key: 401, not 422 (D7)
        assert_error(c.post("/solve", content=b"{bad json", headers={"content-type": "application/json"}), 401)
    assert spy.calls == []
    access = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"fastlrnr.access"' in line]
    assert [(a["status"], a["body_bytes"]) for a in access] == [(401, 0), (401, 0)]


def test_d1_too_many_open_requests_is_503_before_the_body_is_read(artifact_root, monkeypatch):
    app = create_app(make_settings(artifact_root, warmup=False, solver_threads=1, max_requests=2, retry_after_s=2))
    with make_client(app) as c:
        blocker = Blocker(app.state.service.models["cdr"])
        threads = [
            threading.Thread(target=lambda: c.post("/solve", json={"params": MU, "grid": SMALL})) for _ in range(2)
        ]
        for th in threads:
            th.start()
        try:
            assert blocker.entered.wait(20)
            wait_queued(app, 2)
            spy = ParseSpy(monkeypatch)
            r = c.post("/solve", content=large_body(), headers={"content-type": "application/json"})
            assert_error(r, 503, "overloaded", says="too many solve requests")
            assert r.headers["retry-after"] == "2" and spy.calls == []
            assert "fastlrnr_requests_rejected_total 1.0" in c.get("/metrics").text
        finally:
            blocker.gate.set()
            for th in threads:
                th.join(20)


def test_d1_a_body_with_many_errors_costs_one_short_answer(client):
    """60 000 unknown keys: 422 naming the first, counting the rest, listing at most 20."""
    body = json.dumps({"params": MU, **{f"k{i}": i for i in range(60_000)}}).encode()
    d = assert_error(
        client.post("/solve", content=body, headers={"content-type": "application/json"}),
        422,
        "validation_error",
        ["body", "k0"],
    )
    assert "(and 59999 more errors)" in d["message"] and len(d["errors"]) == 20
    many = json.dumps({"params": MU, "grid": {"points": [["a", "b"]] * 50_000}}).encode()
    d = assert_error(
        client.post("/solve", content=many, headers={"content-type": "application/json"}),
        422,
        "validation_error",
        ["body", "grid", "points", 0],
    )
    assert len(d["errors"]) <= 2  # a list stops at its first bad item


# ------------------------------------------------------------------ D5: settings errors never echo a key


def test_d5_settings_error_shows_no_key():
    good, bad = "first-secret-key-1", "shortk"
    with pytest.raises(ValidationError) as info:
        ServiceSettings(api_keys=f"{good},{bad}")
    # what a traceback or the server's error line can show (serve.settings_error drops the input)
    text = str(info.value) + repr(info.value) + json.dumps(info.value.errors(include_input=False), default=str)
    assert good not in text and bad not in text and "API key 2 of 2" in text
    s = ServiceSettings(api_keys=f"{good},second-secret-key-2")
    assert good not in repr(s) and good not in str(s.model_dump()) and s.key_bytes()[0] == good.encode()


# ------------------------------------------------------------------ D6: /models shows no server path


def test_d6_unavailable_models_show_no_paths(fresh_root):
    rewrite_with_checksum(fresh_root / "convection", "lrnr.onnx", b"\x08\x07this is not a graph")
    with make_client(create_app(make_settings(fresh_root, warmup=False))) as c:
        r = c.get("/models")
    entry = r.json()["unavailable"][0]
    assert entry["name"] == "convection" and entry["error"].startswith("lrnr.onnx: onnxruntime cannot load")
    assert str(fresh_root) not in r.text and str(fresh_root.resolve()) not in r.text
    assert "/convection/" not in r.text and "/tmp" not in r.text


def test_d6_redaction_keeps_file_names_and_ratios():
    assert (
        redact_paths("Load model from /srv/models/cdr/lrnr.onnx failed: bad") == "Load model from lrnr.onnx failed: bad"
    )
    assert redact_paths("file '/a/b/c.npz' and J_before/J_after 1/2") == "file 'c.npz' and J_before/J_after 1/2"


# ------------------------------------------------------------------ D7: the contract as documented


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"params": MU, "allow_extrapolation": 0}, ["body", "allow_extrapolation"]),
        ({"params": MU, "allow_extrapolation": "true"}, ["body", "allow_extrapolation"]),
        ({"params": MU, "grid": {"nx": True, "nt": 4}}, ["body", "grid", "nx"]),
        ({"params": MU, "grid": {"nx": 8.0, "nt": 4}}, ["body", "grid", "nx"]),
        ({"params": MU, "grid": {"nx": "8", "nt": 4}}, ["body", "grid", "nx"]),
        ({"params": {"beta": True}}, ["body", "params", "beta"]),
        ({"params": {"beta": "2"}}, ["body", "params", "beta"]),
        ({"params": MU, "fast_phase": {"enabled": 1}}, ["body", "fast_phase", "enabled"]),
        ({"params": MU, "fast_phase": {"steps": True}}, ["body", "fast_phase", "steps"]),
        ({"params": MU, "tolerance": "0.1"}, ["body", "tolerance"]),
    ],
)
def test_d7_types_are_strict(client, body, loc):
    assert_error(client.post("/solve", json=body), 422, "validation_error", loc)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"params": {"beta": 2}, "model": "\xff\xfe"}',  # invalid UTF-8
        b'{"params": {"beta": ' + b"9" * 4301 + b"}}",  # an integer of 4301 digits
        b'{"params": {"beta": 2}, "grid": {"nx": 1' + b"0" * 5000 + b', "nt": 2}}',
        b'{"params": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",  # 10 000 levels of nesting
        b'{"params": {"beta": 2}, "x": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"}",
    ],
)
def test_d7_json_errors_are_422_not_400(client, raw):
    d = assert_error(
        client.post("/solve", content=raw, headers={"content-type": "application/json"}), 422, "invalid_json"
    )
    assert d["errors"][0]["type"] == "json_invalid"


def test_d7_grid_schema_is_exactly_one_form(client):
    spec = client.get("/openapi.json").json()
    grid = spec["components"]["schemas"]["Grid"]
    forms = grid["oneOf"]
    assert [sorted(f["required"]) for f in forms] == [["nt", "nx"], ["t", "x"], ["points"]]
    assert all(f["additionalProperties"] is False for f in forms)
    body = spec["paths"]["/solve"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/SolveRequest"}
    assert spec["components"]["schemas"]["SolveRequest"]["properties"]["grid"]["$ref"] == "#/components/schemas/Grid"


def test_d7_directory_without_manifest_is_logged(fresh_root, capfd):
    (fresh_root / "notes").mkdir()
    (fresh_root / "notes" / "readme.txt").write_text("not a model")
    with make_client(create_app(make_settings(fresh_root, warmup=False))) as c:
        assert c.get("/readyz").json()["models"] == ["cdr", "convection"]
    line = next(json.loads(ln) for ln in capfd.readouterr().err.splitlines() if "skipped" in ln)
    assert line["level"] == "WARNING" and line["msg"] == "skipped notes: no manifest.json (not an artifact)"


# ------------------------------------------------------------------ issue #20: labels, slow bodies, contract


def test_metrics_labels_stay_a_closed_set_whatever_the_methods_and_paths(client):
    """Many distinct methods (some 2 kB long) and paths: one label value each for the unknown
    methods (``other``) and the unmatched routes (``unmatched``); the exposition stays small."""

    def send(i: int) -> None:
        client.request(f"M{i}" + "X" * (2000 if i % 2 else 10), f"/nope/{i}")
        client.request(f"Q{i}", "/solve")  # a known route, an unknown method
        client.get(f"/unknown-{i}?q={i}")

    send(-1)  # every label combination these requests make, once (the scrape's own too)
    client.get("/metrics")
    before = len(client.get("/metrics").content)
    for i in range(200):
        send(i)
    text = client.get("/metrics").text
    assert len(text.encode()) - before < 300, len(text.encode()) - before  # a few counters gained digits
    methods = set(re.findall(r'fastlrnr_http_requests_total\{method="([^"]*)"', text))
    routes = set(re.findall(r'fastlrnr_http_requests_total\{method="[^"]*",route="([^"]*)"', text))
    assert methods <= METHODS | {"other"} and "other" in methods
    assert routes <= {"unmatched", "/solve", "/metrics", "/docs", "/openapi.json", "/models", "/healthz", "/readyz"}


def test_a_long_method_is_cut_in_the_access_log(artifact_root, capfd):
    with make_client(create_app(make_settings(artifact_root, warmup=False))) as c:
        capfd.readouterr()
        c.request("Z" * 5000, "/nope/" + "p" * 5000)
    access = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"fastlrnr.access"' in line]
    assert [(a["method"], a["status"]) for a in access] == [("other", 404)]
    assert len(access[0]["path"]) == LOG_PATH_CHARS


def test_body_deadline_scales_with_content_length():
    limit = BodyLimit(None, max_bytes=1 << 20, timeout_s=30.0, min_rate=32_768)
    assert limit.deadline_s(0) == BODY_DEADLINE_BASE_S
    assert limit.deadline_s(32_768) == BODY_DEADLINE_BASE_S + 1.0
    assert limit.deadline_s(1 << 20) == 30.0  # 5 + 32 s, capped at body_timeout_s
    assert limit.deadline_s(None) == 30.0  # chunked: the length is not known


def test_a_body_arrives_before_the_solve_place_is_taken(artifact_root, monkeypatch):
    """The body is read by the middleware, before the route takes one of max_requests: a solve
    place is never held while its body arrives (the route's read replays what was read)."""
    app = create_app(make_settings(artifact_root, warmup=False))
    seen: list[int] = []
    real = bodies.parse_body

    async def spy(request, model, state):
        seen.append(request.scope.get("fastlrnr.body_bytes", 0))
        return await real(request, model, state)

    monkeypatch.setattr("fastlrnr.server.api.routes.parse_body", spy)
    body = json.dumps({"params": MU, "grid": SMALL, "fast_phase": OFF}).encode()
    with make_client(app) as c:
        assert c.post("/solve", content=body, headers={"content-type": "application/json"}).status_code == 200
    assert seen == [len(body)]  # counted in full before the handler ran


def test_api_docs_are_open_unless_closed_by_the_setting(artifact_root):
    open_docs = create_app(make_settings(artifact_root, warmup=False, api_keys=KEYS))
    with make_client(open_docs) as c:
        assert [c.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [200, 200, 200]
        assert_error(c.get("/models"), 401, "unauthorized")
    closed = create_app(make_settings(artifact_root, warmup=False, api_keys=KEYS, public_docs=False))
    with make_client(closed) as c:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert_error(c.get(path), 401, "unauthorized")
            assert_error(c.get(path, headers={"Authorization": "Bearer wrong-key-123"}), 401, "unauthorized")
            assert c.get(path, headers={"Authorization": "Bearer key-two-456"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    # without keys there is nothing to close
    with make_client(create_app(make_settings(artifact_root, warmup=False, public_docs=False))) as c:
        assert c.get("/openapi.json").status_code == 200


def test_a_fixed_parameter_cannot_be_extrapolated(client):
    """convection's ν and ρ are fixed at 0 (a domain width of 0): extrapolation leaves them there."""
    for key in ("nu", "rho"):
        body = {"model": "convection", "params": {"beta": 5.0, key: 0.5}, "allow_extrapolation": True, "grid": SMALL}
        d = assert_error(client.post("/solve", json=body), 422, "out_of_domain", ["body", "params", key])
        assert "extrapolation is limited to [0, 0]" in d["message"]
    # β has a width: one width past the served domain is still solved (and flagged)
    body = {"model": "convection", "params": {"beta": 13.0}, "allow_extrapolation": True, "grid": SMALL}
    r = client.post("/solve", json={**body, "fast_phase": OFF})
    assert r.status_code == 200 and r.json()["extrapolated"] is True


def test_the_refusal_shows_the_value_as_given(client):
    d = assert_error(client.post("/solve", json={"params": {"beta": 3 + 1e-10}}), 422, "out_of_domain")
    assert d["message"].startswith("beta = 3.0000000001 is outside the served domain")


def test_a_request_cancelled_at_shutdown_gets_503_and_a_warning(artifact_root, capfd):
    """A request cancelled from outside (the server's shutdown deadline) is answered 503
    shutting_down, with Connection: close; the log has a warning, no traceback."""
    app = create_app(make_settings(artifact_root, warmup=False, solver_threads=1))
    state = app.state.service
    tasks: list = []
    execute = state.execute

    async def remember_task(*args, **kwargs):
        tasks.append(asyncio.current_task())
        return await execute(*args, **kwargs)

    state.execute = remember_task
    with make_client(app) as c:
        blocker = Blocker(state.models["cdr"])
        out: list = []
        th = threading.Thread(target=lambda: out.append(c.post("/solve", json={"params": MU, "grid": SMALL})))
        th.start()
        try:
            assert blocker.entered.wait(20)
            capfd.readouterr()
            c.portal.call(lambda: tasks[0].cancel())  # what the server does at its shutdown deadline
            th.join(20)
        finally:
            blocker.gate.set()
    assert_error(out[0], 503, "shutting_down")
    assert out[0].headers["connection"] == "close"
    err = capfd.readouterr().err
    assert "request cancelled at shutdown" in err and "Traceback" not in err


def test_malloc_arenas_are_limited_at_start_up_and_in_every_launcher():
    assert limit_malloc_arenas(0) is False  # 0: glibc's default left alone
    if platform.libc_ver()[0] == "glibc":
        assert limit_malloc_arenas(ServiceSettings.model_fields["malloc_arena_max"].default) is True
    root = Path(__file__).resolve().parents[2]
    assert "MALLOC_ARENA_MAX=2" in (root / "Dockerfile").read_text()
    assert 'MALLOC_ARENA_MAX: "2"' in (root / "docker-compose.yml").read_text()
    assert "MALLOC_ARENA_MAX=2 $(BIN)/python -m fastlrnr.server.serve" in (root / "Makefile").read_text()
