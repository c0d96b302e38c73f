"""Artifacts that reload without a restart: a changed model is served within
``FASTLRNR_RELOAD_INTERVAL_S`` seconds (``ServiceSettings.reload_interval_s``, default 10; checked twice per
interval; 0: on SIGHUP only), and at once on SIGHUP.

A check is cheap: each model directory's ``manifest.json`` is hashed (its sha256 is the
artifact's identity, and it pins every file's) and its files are stat-ed. A model whose
manifest changed is loaded, verified and warmed exactly as at start-up
(``fastlrnr.server.engine.loading.load_model``) on a worker thread, then swapped in
(:meth:`ServiceState.replace_model`): requests already holding the old version finish on
it. A refused artifact changes nothing clients see: the old version serves on, with a log
line and ``fastlrnr_model_reloads_total{outcome="refused"}`` /
``fastlrnr_model_reload_refused``; it is tried again when its files change. A model
added is loaded (refused: listed under ``unavailable``); a model removed stops being
served, except the default model, which serves on. The router's lifespan runs the
checks, after the app's own lifespan has loaded the models.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI

from fastlrnr.server.engine.loading import MANIFEST, load_model, model_names
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.engine.state import ServiceState
from fastlrnr.server.logs import get_logger

log = get_logger("reload")

CHECKS_PER_INTERVAL = 2


@dataclass(frozen=True)
class Seen:
    """What a check found in one model directory: the manifest's sha256 and the files' stats."""

    sha256: str
    stats: tuple


def look(directory: os.PathLike | str) -> Seen | None:
    """Worker thread: the manifest's sha256 and (name, size, mtime) of each file; None without a manifest."""
    try:
        with os.scandir(directory) as entries:
            files = [(e.name, e.stat()) for e in entries if e.is_file()]
        with open(os.path.join(directory, MANIFEST), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
    return Seen(digest, tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in files)))


GONE = Seen("", ())  # what a refused removal of the default model is remembered as


class Reloader:
    """Checks the artifact directory and swaps changed models in (one check at a time)."""

    def __init__(self, state: ServiceState):
        self.state = state
        self.refused: dict[str, Seen] = {}  # model → the files refused last (tried again when they change)
        self.lock = anyio.Lock()

    def scan(self) -> dict[str, Seen | None]:
        """Worker thread: every model to serve now, served, or refused, with what its directory holds."""
        names = set(model_names(self.state.settings, quiet=True)) | set(self.state.models) | set(self.refused)
        names |= {u["name"] for u in self.state.unavailable}
        root = self.state.settings.artifact_dir
        return {name: look(root / name) for name in sorted(names)}

    def remember_refused(self) -> None:
        """At start: the artifacts refused at start-up are not tried again until their files change."""
        root = self.state.settings.artifact_dir
        for entry in self.state.unavailable:
            seen = look(root / entry["name"])
            if seen is not None:
                self.refused[entry["name"]] = seen
                self.state.metrics.reload_refused.labels(entry["name"]).set(1)

    async def check(self) -> dict[str, str]:
        """One check; returns {model: outcome} for the models acted on."""
        async with self.lock:
            found = await anyio.to_thread.run_sync(self.scan)
            outcomes = {}
            for name, seen in found.items():
                outcome = await self._update(name, seen)
                if outcome is not None:
                    outcomes[name] = outcome
                    self.state.metrics.reloads.labels(name, outcome).inc()
            return outcomes

    async def _update(self, name: str, seen: Seen | None) -> str | None:
        state = self.state
        current = state.models.get(name)
        if seen is None:
            if current is not None and name == state.settings.default_model:
                return "refused" if self._refuse(name, GONE, "the default model's artifact is gone") else None
            self._clear_refused(name)
            self._set_unavailable(name, None)
            if current is None:
                return None
            state.replace_model(name, None)
            log.warning("model removed: its artifact is gone", extra=_ref(current))
            return "removed"
        if current is not None and current.artifact.sha256 == seen.sha256:
            self._clear_refused(name)
            return None
        if self.refused.get(name) == seen:
            return None
        t0 = time.perf_counter()
        runtime, refusal = await self._load(name)
        load_ms = round((time.perf_counter() - t0) * 1e3, 1)
        if runtime is None:
            if current is None:
                self._set_unavailable(name, refusal)
            self._refuse(name, seen, refusal["error"])
            return "refused"
        self._clear_refused(name)
        self._set_unavailable(name, None)
        old = state.replace_model(name, runtime)
        extra = {**_ref(runtime), "load_ms": load_ms}
        if old is None:
            log.info("model loaded", extra=extra)
            return "loaded"
        log.info(
            "model replaced", extra={**extra, "old_version": old.artifact.version, "old_sha256": old.artifact.sha256}
        )
        return "replaced"

    async def _load(self, name: str) -> tuple[ModelRuntime | None, dict]:
        settings = self.state.settings
        return await anyio.to_thread.run_sync(load_model, name, settings, settings.field_threads)

    def _refuse(self, name: str, seen: Seen, problem: str) -> bool:
        """Log and count a refusal once per change on disk; True when it is new."""
        if self.refused.get(name) == seen:
            return False
        self.refused[name] = seen
        self.state.metrics.reload_refused.labels(name).set(1)
        serving = self.state.models.get(name)
        log.error(
            "reload refused: %s: %s",
            name,
            problem,
            extra={"model": name, "problem": problem, "serving": _ref(serving) if serving else None},
        )
        return True

    def _clear_refused(self, name: str) -> None:
        if self.refused.pop(name, None) is not None:
            self.state.metrics.reload_refused.labels(name).set(0)

    def _set_unavailable(self, name: str, refusal: dict | None) -> None:
        rest = [u for u in self.state.unavailable if u["name"] != name]
        self.state.unavailable = rest if refusal is None else [*rest, refusal]

    async def run(self, interval: float, wake: asyncio.Event) -> None:
        """Check twice per ``interval`` (0: never by itself) and whenever ``wake`` is set: a change
        is then served within one interval, its verification and warm-up included (while they
        take less than half of it; a check that finds nothing changed costs well under a millisecond)."""
        while True:
            with anyio.move_on_after(interval / CHECKS_PER_INTERVAL if interval > 0 else float("inf")):
                await wake.wait()
            wake.clear()
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - a failed check must not stop the next one
                log.exception("artifact check failed")


def _ref(runtime: ModelRuntime) -> dict:
    """A runtime's identity as log fields (``name`` is reserved by the logging module)."""
    return {"model": runtime.name, "version": runtime.artifact.version, "sha256": runtime.artifact.sha256}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """After the app's lifespan loaded the models: run the reloader until shutdown."""
    state: ServiceState = app.state.service
    interval = state.settings.reload_interval_s
    reloader = app.state.reloader = Reloader(state)
    reloader.remember_refused()
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    hup = False
    with suppress(ValueError, RuntimeError, NotImplementedError, AttributeError):  # not the main thread (tests)
        loop.add_signal_handler(signal.SIGHUP, wake.set)
        hup = True
    log.info("artifact reload on", extra={"interval_s": interval, "sighup": hup})
    task = asyncio.create_task(reloader.run(interval, wake))
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)


router = APIRouter(lifespan=lifespan)
