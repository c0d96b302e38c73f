"""The deployment files agree with the code: lock file, Dockerfile, compose, env example, Makefile."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fastlrnr.server.app import DRAIN_RESERVE_S
from fastlrnr.server.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "serve.lock"


def locked() -> dict[str, tuple[str, list[str]]]:
    """{package: (version, [hashes])} from requirements/serve.lock."""
    out: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text()):
        m = re.match(r"([A-Za-z0-9_.-]+)==([^\s\\;]+)", block)
        if m:
            out[canonicalize_name(m.group(1))] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return out


def test_lock_pins_every_serve_requirement_with_hashes_and_no_torch():
    pins = locked()
    assert pins and all(hashes for _, hashes in pins.values())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in project["optional-dependencies"]["serve"] + project["dependencies"]:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not in requirements/serve.lock: run `make lock`"
        assert req.specifier.contains(pins[name][0], prereleases=True), (name, pins[name][0], str(req.specifier))
    assert not {"torch", "onnx", "matplotlib"} & set(pins)


def test_dockerfile_installs_the_lock_and_runs_the_hardened_server():
    text = (REPO / "Dockerfile").read_text()
    assert "--require-hashes" in text and "requirements/serve.lock" in text
    assert 'CMD ["python", "-m", "fastlrnr.server.serve"]' in text
    assert "FASTLRNR_HOST=0.0.0.0" in text
    assert "OMP_NUM_THREADS" not in text  # BLAS threads: threadpoolctl at start-up
    assert "python -m fastlrnr.server.serve" in (REPO / "Makefile").read_text()


def test_compose_passes_every_setting_and_outwaits_the_graceful_shutdown():
    compose = (REPO / "docker-compose.yml").read_text()
    assert re.search(r"env_file:\n\s+- path: \./fastlrnr\.env\n\s+required: false", compose)
    grace = float(re.search(r"stop_grace_period: (\d+)s", compose).group(1))
    assert grace > ServiceSettings.model_fields["graceful_shutdown_s"].default + 1
    assert ServiceSettings.model_fields["graceful_shutdown_s"].default > DRAIN_RESERVE_S


def test_env_example_lists_every_setting_with_its_default():
    text = (REPO / "fastlrnr.env.example").read_text()
    listed = dict(re.findall(r"^#FASTLRNR_([A-Z_]+)=(.*)$", text, flags=re.M))
    fields = ServiceSettings.model_fields
    assert set(listed) == {name.upper() for name in fields}
    image_defaults = {"ARTIFACT_DIR": "/app/artifacts", "HOST": "0.0.0.0"}
    for name, field in fields.items():
        default = field.default_factory() if field.default_factory else field.default
        want = image_defaults.get(
            name.upper(), "" if default == [] else str(default).lower() if isinstance(default, bool) else str(default)
        )
        assert listed[name.upper()] == want, name
    assert "fastlrnr.env" in (REPO / ".gitignore").read_text().split()


def test_docs_list_every_setting():
    docs = (REPO / "docs" / "service.md").read_text()
    for name in ServiceSettings.model_fields:
        assert f"`{name.upper()}`" in docs, f"docs/service.md does not document FASTLRNR_{name.upper()}"
