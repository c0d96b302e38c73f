"""Start-up: find, load, verify and warm the models in ``artifact_dir``.

Every refusal is logged in full (file, problem) for the operator; what ``GET /models``
shows under ``unavailable`` is the file's name and the problem with every filesystem
path cut to its last component, so the endpoint never reveals where the server keeps
its files. A directory without a manifest is skipped with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from fastlrnr.numerics.artifact import ArtifactError
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.logs import get_logger
from fastlrnr.server.settings import ServiceSettings

log = get_logger("models")

MANIFEST = "manifest.json"
# Absolute paths with at least two components, e.g. /srv/models/cdr/lrnr.onnx (→ lrnr.onnx)
_PATH = re.compile(r"(?<![\w.~])/(?:[^\s'\"/:]+/)+([^\s'\"/:]*)")


class StartupError(RuntimeError):
    """The service cannot serve (default model missing or refused)."""


def redact_paths(text: str) -> str:
    """Every absolute path in ``text`` replaced by its last component."""
    return _PATH.sub(lambda m: m.group(1) or "<path>", text)


@dataclass
class LoadedModels:
    """The models that serve, and the ones refused (``{"name", "error"}``, paths redacted)."""

    models: dict[str, ModelRuntime] = field(default_factory=dict)
    unavailable: list[dict] = field(default_factory=list)


def model_names(settings: ServiceSettings, quiet: bool = False) -> list[str]:
    """The models to load: the ``models`` setting, else every directory with a manifest (the others are
    skipped with a warning, unless ``quiet``); the default model always comes first."""
    root = settings.artifact_dir
    if settings.models:
        names = list(settings.models)
    else:
        names = []
        subdirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for path in subdirs:
            if path.name.startswith("."):
                continue
            if (path / MANIFEST).is_file():
                names.append(path.name)
            elif not quiet:
                log.warning("skipped %s: no %s (not an artifact)", path.name, MANIFEST, extra={"directory": str(path)})
    if settings.default_model in names:
        names.remove(settings.default_model)
    return [settings.default_model, *names]


def load_models(settings: ServiceSettings, field_threads: int = 1) -> LoadedModels:
    """Load, verify and warm each model (worker thread); raise StartupError when the default fails."""
    out = LoadedModels()
    root = settings.artifact_dir
    for name in model_names(settings):
        runtime, refusal = load_model(name, settings, field_threads)
        if runtime is None:
            out.unavailable.append(refusal)
        else:
            out.models[name] = runtime
    if settings.default_model not in out.models:
        problem = next((u["error"] for u in out.unavailable if u["name"] == settings.default_model), "not loaded")
        for runtime in out.models.values():
            runtime.close()
        raise StartupError(
            f"default model {settings.default_model!r} ({root / settings.default_model}) cannot be served: {problem}"
        )
    return out


def load_model(name: str, settings: ServiceSettings, field_threads: int = 1) -> tuple[ModelRuntime | None, dict]:
    """Load, verify and warm one model (worker thread): (runtime, {}) or (None, its ``unavailable``
    entry), the refusal logged in full. Start-up and ``fastlrnr.server.engine.reload`` both load through here."""
    path = settings.artifact_dir / name
    try:
        return _load_one(path, name, settings, field_threads), {}
    except ArtifactError as exc:
        log.error(
            "artifact refused: %s: %s",
            exc.path,
            exc.problem,
            extra={"model": name, "file": str(exc.path), "problem": exc.problem},
        )
        return None, {"name": name, "error": redact_paths(f"{exc.path.name}: {exc.problem}")}
    except Exception as exc:
        log.exception("model failed to load or warm", extra={"model": name, "file": str(path)})
        return None, {"name": name, "error": f"failed to load or warm: {type(exc).__name__}"}


def _load_one(path: Path, name: str, settings: ServiceSettings, field_threads: int) -> ModelRuntime:
    if not (path / MANIFEST).is_file():
        raise ArtifactError(path / MANIFEST, "missing (no artifact here)")
    runtime = ModelRuntime.load(path, onnx_threads=settings.onnx_threads, field_threads=field_threads)
    try:
        if runtime.name != name:
            raise ArtifactError(
                path / MANIFEST, f"manifest names the model {runtime.name!r}, its directory is {name!r}"
            )
        warm_s = runtime.warm() if settings.warmup else 0.0
    except BaseException:
        runtime.close()
        raise
    log.info(
        "model ready",
        extra={
            "model": name,
            "version": runtime.artifact.version,
            "sha256": runtime.artifact.sha256,
            "backend": runtime.backend,
            "warmup_ms": round(warm_s * 1e3, 2),
        },
    )
    return runtime
