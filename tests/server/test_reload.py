"""Artifacts that reload (fastlrnr/server/engine/reload.py): a new version swapped in, a bad one refused while
the old one serves on, models added and removed; and under load on a real server, 8 clients
see no error while a model is replaced and switch to the new sha256 within one poll interval."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from service_testkit import TEST_STEPS, make_client, make_settings, write_synthetic
from test_oip import served

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY

SOLVE = {
    "params": {"beta": 2.0, "nu": 0.5, "rho": 1.0},
    "grid": {"nx": 16, "nt": 5},
    "fast_phase": {"steps": TEST_STEPS},
}


def new_version(src: Path, dst: Path, version: str, seed: int | None = None) -> str:
    """A copy of the artifact ``src`` at ``dst`` under another version (other weights with ``seed``); its sha256."""
    if seed is None:
        shutil.copytree(src, dst)
    else:
        write_synthetic(
            dst, json.loads((src / "manifest.json").read_text())["name"], CDR, CDR, seed=seed, family=CDR_FAMILY
        )
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["version"] = version
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return load_artifact(dst).sha256


def corrupt(directory: Path) -> None:
    data = bytearray((directory / "lrnr.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / "lrnr.npz").write_bytes(bytes(data))


def point(link: Path, target: Path) -> None:
    """Point the symlink ``link`` at ``target`` atomically (as Kubernetes swaps a volume's files)."""
    tmp = link.parent / f".{link.name}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)


@pytest.fixture
def app_client(fresh_root, monkeypatch):
    """The app on a private copy of the artifacts, polling off: the tests run the checks themselves."""
    from fastlrnr.server.app import create_app

    monkeypatch.setenv("FASTLRNR_RELOAD_INTERVAL_S", "0")
    with make_client(create_app(make_settings(fresh_root))) as c:
        yield c


def check(client) -> dict[str, str]:
    return client.portal.call(client.app.state.reloader.check)


def metric(client, line_start: str) -> str | None:
    return next((ln for ln in client.get("/metrics").text.splitlines() if ln.startswith(line_start)), None)


def test_a_new_version_is_swapped_in(app_client, fresh_root, tmp_path):
    c = app_client
    old = c.get("/models").json()
    before = c.post("/solve", json=SOLVE).json()
    assert check(c) == {}  # nothing changed
    sha = new_version(fresh_root / "cdr", tmp_path / "v2", "0.0.2-test", seed=11)
    shutil.rmtree(fresh_root / "cdr")
    shutil.copytree(tmp_path / "v2", fresh_root / "cdr")
    assert check(c) == {"cdr": "replaced"}
    models = {m["name"]: m for m in c.get("/models").json()["models"]}
    assert models["cdr"]["version"] == "0.0.2-test" and models["cdr"]["sha256"] == sha
    assert models["convection"] == {m["name"]: m for m in old["models"]}["convection"]
    after = c.post("/solve", json=SOLVE).json()
    assert after["model"] == {"name": "cdr", "version": "0.0.2-test", "sha256": sha}
    assert after["u"] != before["u"]
    assert metric(c, f'fastlrnr_model_info{{model="cdr",sha256="{sha}"') is not None
    assert metric(c, f'fastlrnr_model_info{{model="cdr",sha256="{before["model"]["sha256"]}"') is None
    assert metric(c, 'fastlrnr_model_reloads_total{model="cdr",outcome="replaced"} 1.0') is not None
    assert check(c) == {}


def test_a_corrupt_version_changes_nothing_clients_see(app_client, fresh_root, tmp_path, caplog):
    c = app_client
    models, before = c.get("/models").json(), c.post("/solve", json=SOLVE).json()
    new_version(fresh_root / "cdr", tmp_path / "bad", "0.0.3-test", seed=12)
    corrupt(tmp_path / "bad")
    shutil.rmtree(fresh_root / "cdr")
    shutil.copytree(tmp_path / "bad", fresh_root / "cdr")
    assert check(c) == {"cdr": "refused"}
    assert any("reload refused" in r.getMessage() and "sha256 mismatch" in r.getMessage() for r in caplog.records)
    assert c.get("/models").json() == models
    after = c.post("/solve", json=SOLVE).json()
    assert after["model"] == before["model"] and after["u"] == before["u"]
    assert metric(c, 'fastlrnr_model_reload_refused{model="cdr"} 1.0') is not None
    assert metric(c, 'fastlrnr_model_reloads_total{model="cdr",outcome="refused"} 1.0') is not None
    assert check(c) == {}  # refused once per change on disk, not at every check
    shutil.rmtree(fresh_root / "cdr")
    sha = new_version(tmp_path / "bad", fresh_root / "cdr", "0.0.3-test", seed=12)  # repaired
    assert check(c) == {"cdr": "replaced"}
    assert c.post("/solve", json=SOLVE).json()["model"]["sha256"] == sha
    assert metric(c, 'fastlrnr_model_reload_refused{model="cdr"} 0.0') is not None


def test_models_added_and_removed(app_client, fresh_root):
    c = app_client
    write_synthetic(fresh_root / "extra", "extra", CDR, CDR, seed=5, family=CDR_FAMILY)
    shutil.copytree(fresh_root / "cdr", fresh_root / "misnamed")
    assert check(c) == {"extra": "loaded", "misnamed": "refused"}
    data = c.get("/models").json()
    assert {m["name"] for m in data["models"]} == {"cdr", "convection", "extra"}
    assert [u["name"] for u in data["unavailable"]] == ["misnamed"] and "its directory is 'misnamed'" in str(data)
    assert c.post("/solve", json={**SOLVE, "model": "extra"}).status_code == 200
    shutil.rmtree(fresh_root / "extra")
    shutil.rmtree(fresh_root / "misnamed")
    shutil.rmtree(fresh_root / "convection")
    assert check(c) == {"extra": "removed", "convection": "removed"}
    data = c.get("/models").json()
    assert [m["name"] for m in data["models"]] == ["cdr"] and data["unavailable"] == []
    r = c.post("/solve", json={**SOLVE, "model": "convection"})
    assert r.status_code == 404 and r.json()["error"] == "unknown_model"
    shutil.rmtree(fresh_root / "cdr")  # the default model serves on without its directory
    assert check(c) == {"cdr": "refused"}
    assert c.post("/solve", json=SOLVE).status_code == 200 and check(c) == {}


def test_a_replaced_runtime_closes_when_its_last_job_ends(app_client, fresh_root):
    """Requests that found the old version finish on it; it is closed after the last one."""
    c = app_client
    state = c.app.state.service
    old = state.models["cdr"]
    closed = []
    old.close = lambda: closed.append(True)  # type: ignore[method-assign]
    state._hold(old, +1)  # a job is running on it
    new = state.models["convection"]
    state.replace_model("cdr", new)
    assert state.models["cdr"] is new and closed == []
    state._hold(old, -1)
    assert closed == [True]


def test_a_request_in_flight_finishes_on_the_old_version(app_client, fresh_root, tmp_path):
    c = app_client
    state = c.app.state.service
    old = state.models["cdr"]
    entered, release = threading.Event(), threading.Event()
    solve_jobs = old.solve_jobs

    def slow(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return solve_jobs(*args, **kwargs)

    old.solve_jobs = slow  # type: ignore[method-assign]
    answers: list = []
    first = threading.Thread(target=lambda: answers.append(c.post("/solve", json=SOLVE)))
    first.start()
    assert entered.wait(30)
    sha = new_version(fresh_root / "cdr", tmp_path / "v2", "0.0.2-test", seed=31)
    shutil.rmtree(fresh_root / "cdr")
    shutil.copytree(tmp_path / "v2", fresh_root / "cdr")
    assert check(c) == {"cdr": "replaced"}
    during = c.post("/solve", json=SOLVE).json()["model"]["sha256"]
    assert old._field_pool is None or not old._field_pool._shutdown  # still open: a job runs on it
    release.set()
    first.join(30)
    assert during == sha and answers[0].status_code == 200
    assert answers[0].json()["model"] == {"name": "cdr", "version": old.artifact.version, "sha256": old.artifact.sha256}
    assert old._field_pool is None or old._field_pool._shutdown  # closed after its last job


def test_a_bad_interval_is_a_settings_error(fresh_root, monkeypatch):
    for bad in ("soon", "-1", "inf"):
        monkeypatch.setenv("FASTLRNR_RELOAD_INTERVAL_S", bad)
        with pytest.raises(ValidationError, match="reload_interval_s"):
            make_settings(fresh_root)


# ------------------------------------------------------------------ under load, on a real server


class Load:
    """``clients`` threads posting /solve in a loop; every answer's (time, sha256) and every error kept."""

    def __init__(self, url: str, clients: int = 8):
        self.url, self.stop = url, threading.Event()
        self.answers: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    r = http.post("/solve", json=SOLVE)
                    if r.status_code != 200:
                        self.errors.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        self.answers.append((time.monotonic(), r.json()["model"]["sha256"]))
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def first(self, sha: str, after: float) -> float | None:
        return next((t for t, s in list(self.answers) if s == sha and t >= after), None)


def wait_for(load: Load, sha: str, since: float, timeout: float) -> float:
    deadline = since + timeout
    while time.monotonic() < deadline:
        t = load.first(sha, since)
        if t is not None:
            return t - since
        time.sleep(0.02)
    raise AssertionError(f"no answer from {sha[:12]} within {timeout} s")


INTERVAL_S = 1.0


def test_swap_under_load_with_8_clients(artifact_root, tmp_path):
    versions = tmp_path / ".versions"
    versions.mkdir()
    root = tmp_path
    shutil.copytree(artifact_root / "cdr", versions / "cdr-1")
    sha2 = new_version(versions / "cdr-1", versions / "cdr-2", "0.0.2-test", seed=21)
    new_version(versions / "cdr-1", versions / "cdr-bad", "0.0.3-test", seed=22)
    corrupt(versions / "cdr-bad")
    point(root / "cdr", versions / "cdr-1")
    sha1 = load_artifact(root / "cdr").sha256
    with (
        served(root, tmp_path / "server.log", reload_interval_s=INTERVAL_S, warmup="true") as (url, _),
        Load(url) as load,
    ):
        time.sleep(1.0)
        t0 = time.monotonic()
        point(root / "cdr", versions / "cdr-2")
        switch_s = wait_for(load, sha2, t0, 10 * INTERVAL_S)
        time.sleep(0.5)
        after_switch = time.monotonic()
        point(root / "cdr", versions / "cdr-bad")
        time.sleep(2.5 * INTERVAL_S)
        t_bad = time.monotonic()
        point(root / "cdr", versions / "cdr-1")  # back to the first version
        back_s = wait_for(load, sha1, t_bad, 10 * INTERVAL_S)
        time.sleep(0.3)
    print(f"answers {len(load.answers)}, errors {len(load.errors)}, switch {switch_s:.3f} s, back {back_s:.3f} s")
    assert load.errors == []
    assert max(switch_s, back_s) <= INTERVAL_S  # within one interval, verification and warm-up included
    # once switched, nothing from the old version; while the bad one sat on disk, the good one answered
    assert {s for t, s in load.answers if after_switch <= t < t_bad} == {sha2}
    assert sum(after_switch <= t < t_bad for t, _ in load.answers) > 8
    log = (tmp_path / "server.log").read_text()
    assert '"msg": "reload refused: cdr: ' in log and "sha256 mismatch" in log
    assert log.count('"msg": "model replaced"') == 2


def test_sighup_reloads_at_once(artifact_root, tmp_path):
    """Polling off (interval 0): nothing changes until SIGHUP, then the new version answers."""
    shutil.copytree(artifact_root / "cdr", tmp_path / "cdr")
    with served(tmp_path, tmp_path / "server.log", reload_interval_s=0) as (url, proc):
        old = httpx.post(f"{url}/solve", json=SOLVE, timeout=30).json()["model"]["sha256"]
        shutil.rmtree(tmp_path / "cdr")
        sha = new_version(artifact_root / "cdr", tmp_path / "cdr", "0.0.2-test")
        time.sleep(1.0)
        assert httpx.post(f"{url}/solve", json=SOLVE, timeout=30).json()["model"]["sha256"] == old
        t0 = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        while httpx.post(f"{url}/solve", json=SOLVE, timeout=30).json()["model"]["sha256"] != sha:
            assert time.monotonic() - t0 < 5, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.02)
        assert proc.poll() is None  # SIGHUP no longer ends the process
