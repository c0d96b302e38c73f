#!/usr/bin/env bash
# Validate the Kubernetes manifests offline (no cluster, no network): every kustomization under
# deploy/kubernetes (or the directory given) is built the way kustomize builds it, for the subset
# of kustomize it uses (resources, labels, images, JSON 6902 patches; anything else fails), and
# every resulting object is validated strictly (unknown fields fail) against the schemas of the
# newest Kubernetes release that kubernetes-validate ships (pinned in pyproject.toml's dev extra).
# KServe's InferenceService has no schema there: its predictor's pod spec is validated as a Pod
# and the fields around it are checked by name. Then the service's own rules: the image's
# non-root user, the probes on /readyz and /healthz (or /v2/health/*), and
# terminationGracePeriodSeconds above the preStop wait plus FASTLRNR_GRACEFUL_SHUTDOWN_S.
#
#   bash ci/validate-kubernetes.sh [DIR]        # exit 0: valid; 1: a manifest is not
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(realpath "${1:-$REPO/deploy/kubernetes}")
PY=${PYTHON:-$REPO/.venv/bin/python}
if ! "$PY" -c "import kubernetes_validate, yaml" 2>/dev/null; then
    echo "kubernetes manifests NOT VALIDATED: kubernetes-validate is not installed (pip install -e '.[dev]')"
    exit 1
fi
cd "$REPO"
exec "$PY" - "$DIR" "$REPO" <<'PYTHON'
import copy
import re
import sys
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate import utils

DIR, REPO = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, str(REPO))
from fastlrnr.server.settings import ServiceSettings  # noqa: E402

KNOWN_KUSTOMIZE = {"apiVersion", "kind", "resources", "labels", "images", "patches"}
EXTRA_SETTINGS = {"FASTLRNR_RELOAD_INTERVAL_S"}  # read by fastlrnr/server/engine/reload.py
SETTINGS = {f"FASTLRNR_{name.upper()}" for name in ServiceSettings.model_fields} | EXTRA_SETTINGS
DEFAULT_GRACE_S = 30  # Kubernetes' default terminationGracePeriodSeconds
# KServe predictor fields around its inlined pod spec (serving.kserve.io/v1beta1 PredictorSpec)
PREDICTOR_FIELDS = {
    "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "containerConcurrency", "timeout",
    "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "deploymentStrategy",
}
errors: list[str] = []
version = utils.latest_version()


def load(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def build(kdir: Path, seen: set) -> list[dict]:
    """The objects of the kustomization in ``kdir`` (subset of kustomize; anything else is an error)."""
    kfile = kdir / "kustomization.yaml"
    seen.add(kfile.resolve())
    (k,) = load(kfile)
    unknown = set(k) - KNOWN_KUSTOMIZE
    if unknown:
        errors.append(f"{kfile}: kustomize fields this check cannot build: {sorted(unknown)}")
    objects: list[dict] = []
    for ref in k.get("resources", []):
        path = (kdir / ref).resolve()
        if path.is_dir():
            objects += build(path, seen)
        else:
            seen.add(path)
            objects += [{**obj, "_file": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)} for obj in load(path)]
    for patch in k.get("patches", []):
        path = (kdir / patch["path"]).resolve()
        seen.add(path)
        ops, target = load(path)[0], patch.get("target", {})
        if not isinstance(ops, list):
            errors.append(f"{path}: only JSON 6902 patches (a list of operations) are checked")
            continue
        hits = [o for o in objects if o.get("kind") == target.get("kind") and o["metadata"].get("name") == target.get("name")]
        if len(hits) != 1:
            errors.append(f"{path}: the target {target} matches {len(hits)} objects")
        for obj in hits:
            for op in ops:
                json_patch(obj, op, path)
    for entry in k.get("labels", []):
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for image in k.get("images", []):
        for obj in objects:
            for c in containers(obj):
                name, _, _tag = c.get("image", "").partition(":")
                if name == image["name"]:
                    c["image"] = f"{image.get('newName', name)}:{image.get('newTag', 'latest')}"
    return objects


def json_patch(obj: dict, op: dict, where: Path) -> None:
    """add / replace / remove of RFC 6902 (``-`` appends to a list)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    node = obj
    try:
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        last = parts[-1]
        if op["op"] == "add" and isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            node[int(last) if isinstance(node, list) else last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            errors.append(f"{where}: unsupported patch op {op['op']!r}")
    except (KeyError, IndexError, ValueError, TypeError):
        errors.append(f"{where}: {op['op']} {op['path']}: no such location")


def pod_spec(obj: dict) -> dict | None:
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return obj.get("spec", {}).get("template", {}).get("spec")
    if obj.get("kind") == "InferenceService":
        return obj.get("spec", {}).get("predictor")
    return None


def containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return spec.get("containers", []) if isinstance(spec, dict) else []


def validate(obj: dict, name: str) -> None:
    try:
        utils.validate(obj, version, strict=True)
    except utils.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        errors.append(f"{name}: {path}: {e.message}")
    except utils.SchemaNotFoundError as e:
        errors.append(f"{name}: {e.message}")


def validate_inference_service(obj: dict, name: str) -> None:
    if obj.get("apiVersion") != "serving.kserve.io/v1beta1":
        errors.append(f"{name}: apiVersion must be serving.kserve.io/v1beta1")
    if set(obj) - {"apiVersion", "kind", "metadata", "spec", "_file"} or set(obj.get("spec", {})) != {"predictor"}:
        errors.append(f"{name}: unexpected fields (expected metadata and spec.predictor only)")
    predictor = obj.get("spec", {}).get("predictor", {})
    pod = {k: v for k, v in predictor.items() if k not in PREDICTOR_FIELDS}
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod}, f"{name} (predictor as a Pod)")


def env_value(container: dict, key: str) -> str | None:
    return next((e.get("value") for e in container.get("env", []) if e.get("name") == key), None)


def service_rules(obj: dict, name: str, uid: int) -> None:
    spec = pod_spec(obj)
    if not isinstance(spec, dict):
        return
    sc = spec.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != uid:
        errors.append(f"{name}: the pod must run as non-root user {uid} (the image's USER)")
    grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)
    for c in spec.get("containers", []):
        for e in c.get("env", []):
            if e["name"].startswith("FASTLRNR_") and e["name"] not in SETTINGS:
                errors.append(f"{name}: container {c['name']}: {e['name']} is no setting of the service")
        drain = float(env_value(c, "FASTLRNR_GRACEFUL_SHUTDOWN_S") or ServiceSettings.model_fields["graceful_shutdown_s"].default)
        wait = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        if not grace > wait + drain:
            errors.append(
                f"{name}: terminationGracePeriodSeconds {grace} must exceed the preStop wait {wait} s "
                f"+ FASTLRNR_GRACEFUL_SHUTDOWN_S {drain:g} s"
            )
        ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
        live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
        if ready not in ("/readyz", "/v2/health/ready") or live not in ("/healthz", "/v2/health/live"):
            errors.append(f"{name}: container {c['name']}: readiness must be /readyz, liveness /healthz (got {ready}, {live})")
        if "limits" not in c.get("resources", {}) or "requests" not in c.get("resources", {}):
            errors.append(f"{name}: container {c['name']}: resource requests and limits are required")


match = re.search(r"^USER\s+(\d+)", (REPO / "Dockerfile").read_text(), re.M)
uid = int(match.group(1)) if match else -1
kdirs = sorted(p.parent for p in DIR.rglob("kustomization.yaml"))
if not kdirs:
    errors.append(f"{DIR}: no kustomization.yaml")
seen: set = set()
count = 0
for kdir in kdirs:
    for obj in build(kdir, seen):
        name = f"{kdir.relative_to(DIR)}: {obj.pop('_file', '?')}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        count += 1
        if obj.get("kind") == "InferenceService":
            validate_inference_service(obj, name)
        else:
            validate(obj, name)
        service_rules(obj, name, uid)
for path in sorted(DIR.rglob("*.y*ml")):
    if path.resolve() not in seen:
        errors.append(f"{path}: not part of any kustomization (so never validated)")
for e in errors:
    print(f"ERROR {e}")
if errors:
    print(f"kubernetes manifests INVALID: {len(errors)} problem(s)")
    sys.exit(1)
print(
    f"kubernetes manifests valid: {count} objects from {len(kdirs)} kustomizations, strict, "
    f"against Kubernetes {version} (kubernetes-validate {kubernetes_validate.__version__})"
)
PYTHON
