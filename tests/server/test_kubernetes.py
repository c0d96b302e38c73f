"""deploy/kubernetes: the manifests pass ci/validate-kubernetes.sh (the Kubernetes schemas, offline,
and the service's own rules), the script fails on broken ones, and CI runs it after the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fastlrnr.server.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ci" / "validate-kubernetes.sh"
BASE = REPO / "deploy" / "kubernetes" / "base"

pytest.importorskip("kubernetes_validate")


def run(directory: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), str(directory)], capture_output=True, text=True, env=env, timeout=120)


def deployment() -> dict:
    return yaml.safe_load((BASE / "deployment.yaml").read_text())


def test_the_manifests_are_valid():
    r = run(REPO / "deploy" / "kubernetes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kubernetes manifests valid: 10 objects from 3 kustomizations, strict, against Kubernetes 1." in r.stdout


def test_broken_manifests_fail(tmp_path):
    root = tmp_path / "k"
    shutil.copytree(REPO / "deploy" / "kubernetes", root)

    def edit(rel: str, old: str, new: str) -> None:
        path = root / rel
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    edit("base/deployment.yaml", "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 29")
    edit("base/deployment.yaml", "replicas: 2", 'replicas: "two"')
    edit("base/deployment.yaml", "FASTLRNR_SOLVER_THREADS", "FASTLRNR_SOLVER_THREAD")
    edit("base/pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgt")
    edit("kserve/inferenceservice.yaml", "runAsUser: 10001", "runAsUser: 0")
    edit("kserve/inferenceservice.yaml", "path: /v2/health/ready", "path: /v2/health/live")
    edit("overlays/artifacts-volume/mount-artifacts.yaml", "containers/0/volumeMounts", "containers/1/volumeMounts")
    (root / "base" / "stray.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    r = run(root)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    for expected in (
        "terminationGracePeriodSeconds 29 must exceed the preStop wait 5 s + FASTLRNR_GRACEFUL_SHUTDOWN_S 25 s",
        "spec.replicas: 'two' is not of type 'integer'",
        "FASTLRNR_SOLVER_THREAD is no setting of the service",
        "Couldn't find schema for kind PodDisruptionBudgt",
        "InferenceService/fastlrnr: the pod must run as non-root user 10001",
        "readiness must be /readyz, liveness /healthz (got /v2/health/live, /v2/health/live)",
        "add /spec/template/spec/containers/1/volumeMounts/-: no such location",
        "stray.yaml: not part of any kustomization",
    ):
        assert expected in out, out


def test_grace_period_matches_the_service_drain():
    spec = deployment()["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    drain = float(env["FASTLRNR_GRACEFUL_SHUTDOWN_S"])
    assert drain == ServiceSettings.model_fields["graceful_shutdown_s"].default
    assert spec["terminationGracePeriodSeconds"] > container["lifecycle"]["preStop"]["sleep"]["seconds"] + drain
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # one core per solver thread, as measured in docs/performance.md
    assert container["resources"]["requests"]["cpu"] == env["FASTLRNR_SOLVER_THREADS"]
    assert "USER 10001:10001" in (REPO / "Dockerfile").read_text() and spec["securityContext"]["runAsUser"] == 10001


def test_ci_runs_the_validation_after_the_tests():
    text = (REPO / ".ci" / "run").read_text()
    assert "bash ci/validate-kubernetes.sh" in text
    assert text.index("make test") < text.index("bash ci/validate-kubernetes.sh")
