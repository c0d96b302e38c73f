"""Run the service with its hardened server configuration: ``python -m fastlrnr.server.serve``.

    python -m fastlrnr.server.serve                      # FASTLRNR_HOST / FASTLRNR_PORT (127.0.0.1:8000)
    python -m fastlrnr.server.serve --host 0.0.0.0 --port 8000

uvicorn with: the h11 protocol and a header size limit (``max_header_bytes``); a cap on
open connections and a deadline for request headers (``fastlrnr.server.http.protocol``); a keep-alive
timeout; a graceful-shutdown timeout (after SIGTERM, requests still open after
``graceful_shutdown_s`` − 2 s are cancelled — answered 503 ``shutting_down`` and logged
as a warning, :class:`GracefulServer` — and the lifespan has the last 2 s to drain the
solver queue); uvicorn's access log off (the service logs each request itself) and
every log line JSON (``fastlrnr.server.logs``); glibc's malloc limited to ``malloc_arena_max``
arenas before any thread starts (:func:`limit_malloc_arenas`). The same settings as the
app (``FASTLRNR_*``); a bad setting is reported in one JSON line naming it, never its
value, and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import logging
import sys
from typing import Any

import uvicorn
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from fastlrnr.server.app import DRAIN_RESERVE_S, create_app
from fastlrnr.server.http.protocol import GuardedH11Protocol
from fastlrnr.server.logs import logging_config
from fastlrnr.server.settings import ServiceSettings

STARTUP_FAILURE = 3  # as uvicorn's own command line: the app did not start (e.g. the default model is refused)
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
# Open requests are cancelled this long before uvicorn's own graceful-shutdown deadline, so that
# they end as answered requests (503) instead of tasks uvicorn cancels (an ERROR and a plain-text 500).
CANCEL_MARGIN_S = 0.3

log = logging.getLogger("fastlrnr.serve")


def limit_malloc_arenas(arenas: int) -> bool:
    """glibc: at most ``arenas`` malloc arenas (``mallopt(M_ARENA_MAX)``; 0 or another libc: no
    change). glibc gives each thread that meets a locked arena a new one, up to 8 per core;
    the solver, parser and onnxruntime threads then fragment memory that is never returned
    (resident memory grew by 1 GB over eight load phases). Call before threads start."""
    if arenas <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


class GracefulServer(uvicorn.Server):
    """uvicorn's Server; at the graceful-shutdown deadline it cancels the requests still open
    itself (a warning; the app answers each 503, ``fastlrnr.server.http.middleware.CatchAll``) just before
    uvicorn would."""

    async def shutdown(self, sockets: Any = None) -> None:
        deadline = max(float(self.config.timeout_graceful_shutdown or 0) - CANCEL_MARGIN_S, 0.0)
        canceller = asyncio.get_running_loop().call_later(deadline, self._cancel_open_requests)
        try:
            await super().shutdown(sockets)
        finally:
            canceller.cancel()

    def _cancel_open_requests(self) -> None:
        tasks = [t for t in self.server_state.tasks if not t.done()]
        if tasks:
            log.warning("cancelling %d request(s) still open at the shutdown deadline", len(tasks))
        for task in tasks:
            task.cancel(msg="graceful shutdown deadline")


class ServerConfig(uvicorn.Config):
    """uvicorn's Config plus the limits ``GuardedH11Protocol`` reads."""

    def __init__(self, app: Any, *, max_connections: int, header_timeout_s: float, **kwargs: Any):
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        super().__init__(app, **kwargs)


def server_config(settings: ServiceSettings, app: Any | None = None) -> ServerConfig:
    """The uvicorn configuration for ``settings`` (the app is built from them unless given)."""
    return ServerConfig(
        app if app is not None else create_app(settings),
        host=settings.host,
        port=settings.port,
        http=GuardedH11Protocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        max_connections=settings.max_connections,
        header_timeout_s=settings.header_timeout_s,
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=max(settings.graceful_shutdown_s - DRAIN_RESERVE_S, 1.0),  # type: ignore[arg-type]
        lifespan="on",
        ws="none",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        log_config=logging_config(settings.log_level, settings.log_json),
        log_level=settings.log_level.lower(),
    )


def settings_error(exc: ValidationError) -> str:
    """One JSON line naming each refused setting and why (the values are never shown)."""
    problems = [
        {"setting": f"FASTLRNR_{str(e['loc'][0]).upper()}" if e["loc"] else "FASTLRNR_*", "problem": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return json.dumps(
        {"level": "CRITICAL", "logger": "fastlrnr.serve", "msg": "invalid settings", "problems": problems},
        ensure_ascii=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", help="overrides FASTLRNR_HOST")
    parser.add_argument("--port", type=int, help="overrides FASTLRNR_PORT")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = ServiceSettings(**overrides)
    except ValidationError as exc:
        print(settings_error(exc), file=sys.stderr)
        return 2
    limit_malloc_arenas(settings.malloc_arena_max)  # before any thread (BLAS, onnxruntime, workers) starts
    threadpool_limits(limits=settings.numpy_threads, user_api="blas")  # from the main thread, which then owns it
    config = server_config(settings)
    logging.captureWarnings(True)
    server = GracefulServer(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
