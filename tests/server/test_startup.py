"""Start-up: settings, lazy module-level app, and that a bad artifact is never served."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_testkit import make_client, make_settings

import fastlrnr.server.app as app_module
from fastlrnr.server.app import StartupError, create_app
from fastlrnr.server.settings import ServiceSettings

MU = {"beta": 2.0, "nu": 0.5, "rho": 1.0}


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_with_checksum(directory: Path, fname: str, data: bytes) -> None:
    """Replace a file AND fix its manifest entry: damage that the checksums cannot see."""
    (directory / fname).write_bytes(data)
    m = json.loads((directory / "manifest.json").read_text())
    m["files"][fname] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (directory / "manifest.json").write_text(json.dumps(m))


def start(root: Path, **overrides):
    return make_client(create_app(make_settings(root, **overrides)))


def test_corrupt_default_model_fails_startup_naming_the_file(fresh_root, capfd):
    flip_byte(fresh_root / "cdr" / "lrnr.npz")
    with pytest.raises(StartupError, match="default model 'cdr'.*lrnr.npz: sha256 mismatch"), start(fresh_root):
        pass
    err = capfd.readouterr().err
    line = next(json.loads(ln) for ln in err.splitlines() if '"artifact refused' in ln)
    assert line["level"] == "ERROR" and line["file"].endswith("cdr/lrnr.npz") and "sha256" in line["problem"]


@pytest.mark.parametrize("damage", ["missing_manifest", "bad_json", "missing_file", "onnx_garbage", "wrong_name"])
def test_every_kind_of_damage_to_the_default_fails_startup(fresh_root, damage):
    d = fresh_root / "cdr"
    if damage == "missing_manifest":
        (d / "manifest.json").unlink()
    elif damage == "bad_json":
        (d / "manifest.json").write_text("{not json")
    elif damage == "missing_file":
        (d / "hyper.npz").unlink()
    elif damage == "onnx_garbage":  # consistent checksum, unusable graph: onnxruntime refuses it
        rewrite_with_checksum(d, "lrnr.onnx", b"\x08\x07this is not a graph")
    elif damage == "wrong_name":
        m = json.loads((d / "manifest.json").read_text())
        m["name"] = "other"
        (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(StartupError), start(fresh_root):
        pass


def test_missing_default_model_fails_startup(tmp_path, artifact_root):
    with pytest.raises(StartupError, match="default model 'cdr'.*missing"), start(tmp_path):
        pass
    with pytest.raises(StartupError, match="default model 'heat'"), start(artifact_root, default_model="heat"):
        pass


def test_corrupt_other_model_is_not_served(fresh_root):
    flip_byte(fresh_root / "convection" / "fastlrnr.npz")
    with start(fresh_root, warmup=False) as c:
        assert c.get("/readyz").json() == {"status": "ready", "models": ["cdr"]}
        data = c.get("/models").json()
        assert [m["name"] for m in data["models"]] == ["cdr"]
        assert data["unavailable"][0]["name"] == "convection"
        assert data["unavailable"][0]["error"].startswith("fastlrnr.npz: sha256 mismatch")
        r = c.post("/solve", json={"model": "convection", "params": {"beta": 6.0}})
        assert r.status_code == 404


def test_models_setting_restricts_what_is_loaded(artifact_root):
    with start(artifact_root, models="cdr", warmup=False) as c:
        assert c.get("/readyz").json()["models"] == ["cdr"]
    with pytest.raises(ValueError, match="default_model"):
        ServiceSettings(artifact_dir=artifact_root, models="convection")


def test_not_ready_before_lifespan_and_after(artifact_root):
    app = create_app(make_settings(artifact_root, warmup=False))
    c = make_client(app)  # no `with`: the lifespan has not run
    assert c.get("/healthz").status_code == 200
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "starting"
    with c:
        assert c.get("/readyz").status_code == 200
    assert app.state.service.status == "draining"


def test_settings_from_environment(monkeypatch, artifact_root):
    monkeypatch.setenv("FASTLRNR_ARTIFACT_DIR", str(artifact_root))
    monkeypatch.setenv("FASTLRNR_API_KEYS", "first-key-1, second-key-2")
    monkeypatch.setenv("FASTLRNR_MAX_STEPS", "100")
    monkeypatch.setenv("FASTLRNR_SOLVER_THREADS", "3")
    s = ServiceSettings()
    assert s.artifact_dir == artifact_root and s.key_bytes() == [b"first-key-1", b"second-key-2"]
    assert s.max_steps == 100 and s.solver_threads == 3
    assert "first-key-1" not in repr(s)
    monkeypatch.setenv("FASTLRNR_CORS_ORIGINS", "https://a.example, https://b.example")
    assert ServiceSettings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("FASTLRNR_SOLVER_THREADS", "0")
    with pytest.raises(ValueError):
        ServiceSettings()
    monkeypatch.setenv("FASTLRNR_SOLVER_THREADS", "1")
    monkeypatch.setenv("FASTLRNR_API_KEYS", "short")
    with pytest.raises(ValueError, match="API key 1 of 1 is not valid"):
        ServiceSettings()


def test_module_level_app_is_lazy(monkeypatch, artifact_root):
    monkeypatch.setattr(app_module, "_app", None)
    monkeypatch.setenv("FASTLRNR_ARTIFACT_DIR", str(artifact_root))
    monkeypatch.setenv("FASTLRNR_WARMUP", "false")
    built = app_module.app  # what `uvicorn fastlrnr.server.app:app` does: getattr(module, "app")
    assert built is app_module.app
    state = built.state.service
    assert state.models == {} and state.status == "starting"  # nothing loaded until the lifespan runs
    assert state.settings.artifact_dir == artifact_root
    with make_client(built) as c:
        assert (
            c.post(
                "/solve", json={"params": MU, "grid": {"nx": 4, "nt": 2}, "fast_phase": {"enabled": False}}
            ).status_code
            == 200
        )
    with pytest.raises(AttributeError):
        app_module.no_such_thing  # noqa: B018


def test_default_artifact_dir_is_the_bundled_one():
    from fastlrnr.server.settings import DEFAULT_ARTIFACT_DIR

    assert Path(app_module.__file__).resolve().parents[2] / "artifacts" == DEFAULT_ARTIFACT_DIR


def test_serving_never_imports_torch(artifact_root):
    code = f"""
import sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from fastlrnr.server.app import create_app
from fastlrnr.client.clients import SolveClient
from fastlrnr.server.settings import ServiceSettings
app = create_app(ServiceSettings(artifact_dir=Path({str(artifact_root)!r})))
with TestClient(app) as c:
    r = c.post("/solve", json={{"params": {{"beta": 2.0}}, "grid": {{"nx": 8, "nt": 2}}}})
    assert r.status_code == 200, r.text
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx") or m.startswith("fastlrnr.training"))
assert not bad, bad
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_blas_threads_are_set_at_start_up(artifact_root):
    """threadpoolctl applies FASTLRNR_NUMPY_THREADS in the lifespan (a fresh process: OpenBLAS takes
    its limit from the first thread that sets one)."""
    code = f"""
import warnings
from pathlib import Path
warnings.simplefilter("ignore")
from threadpoolctl import threadpool_info
from fastapi.testclient import TestClient
from fastlrnr.server.app import create_app
from fastlrnr.server.settings import ServiceSettings
blas = lambda: {{lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}}
before = blas()
want = max(before) + 1
with TestClient(create_app(ServiceSettings(artifact_dir=Path({str(artifact_root)!r}), warmup=False,
                                           numpy_threads=want))):
    assert blas() == {{want}}, (before, blas())
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_bad_settings_stop_the_server_naming_the_setting_never_the_keys(tmp_path):
    """D5: `python -m fastlrnr.server.serve` and `uvicorn fastlrnr.server.app:app` with one key too short."""
    keys = "first-secret-key-1,second-secret-key-2,short"
    env = {**os.environ, "FASTLRNR_API_KEYS": keys, "FASTLRNR_PORT": "0"}
    repo = Path(__file__).resolve().parents[2]
    serve = subprocess.run(
        [sys.executable, "-m", "fastlrnr.server.serve"], cwd=repo, env=env, capture_output=True, text=True, timeout=60
    )
    assert serve.returncode == 2 and serve.stdout == ""
    (line,) = serve.stderr.splitlines()
    record = json.loads(line)
    assert record["problems"][0]["setting"] == "FASTLRNR_API_KEYS" and "key 3 of 3" in record["problems"][0]["problem"]
    plain = subprocess.run(
        [sys.executable, "-m", "uvicorn", "fastlrnr.server.app:app", "--port", "0"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode != 0 and "API key 3 of 3" in plain.stderr
    for out in (serve.stderr, plain.stderr):
        assert not any(k in out for k in keys.split(","))
