"""Run the service with its hardened server configuration: ``python -m service.serve``.

    python -m service.serve                      # FASTLRNR_HOST / FASTLRNR_PORT (127.0.0.1:8000)
    python -m service.serve --host 0.0.0.0 --port 8000

uvicorn with: the h11 protocol and a header size limit (``max_header_bytes``); a cap on
open connections and a deadline for request headers (``service.protocol``); a keep-alive
timeout; a graceful-shutdown timeout (after SIGTERM, requests still open after
``graceful_shutdown_s`` − 2 s are cancelled, and the lifespan has the last 2 s to drain
the solver queue); uvicorn's access log off (the service logs each request itself) and
every log line JSON (``service.logs``). The same settings as the app (``FASTLRNR_*``);
a bad setting is reported in one JSON line naming it, never its value, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import uvicorn
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from service.app import DRAIN_RESERVE_S, create_app
from service.logs import logging_config
from service.protocol import GuardedH11Protocol
from service.settings import ServiceSettings

STARTUP_FAILURE = 3  # as uvicorn's own command line: the app did not start (e.g. the default model is refused)


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
    threadpool_limits(limits=settings.numpy_threads, user_api="blas")  # from the main thread, which then owns it
    config = server_config(settings)
    logging.captureWarnings(True)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
