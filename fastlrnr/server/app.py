"""The FastAPI app: ``create_app(settings)``, and ``app`` for ``uvicorn fastlrnr.server.app:app``.

``app`` is built on first access from the environment (``FASTLRNR_*``); importing this
module loads no model. Models are loaded, verified and warmed in the lifespan, before
the server accepts connections; a default model that cannot be loaded makes start-up
fail (uvicorn exits non-zero) with a log line naming the file and the problem. Other
refused artifacts are logged, listed under ``unavailable`` in ``GET /models`` and never
served. The pieces: ``routes`` (handlers), ``errors`` (error bodies), ``middleware``,
``checks`` (request checks), ``state`` (models, pool, limits), ``openapi``.
Run it with ``python -m fastlrnr.server.serve`` for the hardened server configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from threadpoolctl import threadpool_info, threadpool_limits

from fastlrnr.server.api.fit import router as fit
from fastlrnr.server.api.openapi import build_openapi
from fastlrnr.server.api.routes import api, ops
from fastlrnr.server.engine.loading import StartupError
from fastlrnr.server.engine.reload import router as reload
from fastlrnr.server.engine.state import ServiceState
from fastlrnr.server.errors import install_error_handlers
from fastlrnr.server.http.middleware import middleware_stack
from fastlrnr.server.logs import configure_service_logger, get_logger
from fastlrnr.server.oip import router as oip
from fastlrnr.server.settings import ServiceSettings
from fastlrnr.version import __version__

__all__ = ["StartupError", "create_app"]

log = get_logger("app")

# After SIGTERM the server (fastlrnr.server.serve) waits graceful_shutdown_s minus this for open requests;
# the lifespan then has at most this long to drain the solver queue before the process exits.
DRAIN_RESERVE_S = 2.0

DESCRIPTION = (
    "Solves u_t + β u_x − ν u_xx − ρ u(1 − u) = 0 on x ∈ [0, 2π) periodic, t ∈ [0, 1], u(x, 0) = 1 + sin x, "
    "for parameters (β, ν, ρ): a meta-learned low-rank network adapted per query by the SPInProp fast "
    "phase. Errors share one body: {error, message, request_id, errors}."
)
EXPOSED_HEADERS = [
    "X-Request-ID",
    "Server-Timing",
    "X-Solve-Diagnostics",
    "X-Model",
    "X-Model-Version",
    "X-Model-SHA256",
    "Retry-After",
]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app; models load in its lifespan (``with TestClient(app)`` runs it)."""
    settings = settings or ServiceSettings()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_service_logger(settings.log_level, settings.log_json)
        threadpool_limits(limits=settings.numpy_threads, user_api="blas")
        blas = sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        log.info(
            "starting",
            extra={
                "artifact_dir": str(settings.artifact_dir),
                "default_model": settings.default_model,
                "solver_threads": settings.solver_threads,
                "queue_capacity": settings.queue_capacity,
                "max_requests": settings.max_requests,
                "onnx_threads": settings.onnx_threads,
                "field_threads": settings.field_threads,
                "blas_threads": blas,
                "microbatch": settings.microbatch,
                "auth": bool(settings.api_keys),
                "cors": settings.cors_origins,
            },
        )
        try:
            await anyio.to_thread.run_sync(state.load)
        except StartupError as exc:
            state.status = "failed"
            log.error("start-up failed: %s", exc)
            raise
        state.status = "ready"
        state.metrics.ready.set(1)
        log.info("ready", extra={"models": sorted(state.models)})
        try:
            yield
        finally:
            state.status = "draining"
            state.metrics.ready.set(0)
            drained = await state.pool.drain(DRAIN_RESERVE_S)
            state.close()
            log.info("stopped", extra={"drained": drained})

    app = FastAPI(title="FastLRNR solve service", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.service = state
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    for cls, options in reversed(middleware_stack(state.metrics, settings, lambda: app.routes)):
        app.add_middleware(cls, **options)
    install_error_handlers(app)
    app.include_router(ops)
    app.include_router(api)
    app.include_router(fit)  # POST /fit: parameter estimation (fastlrnr.server.api.fit)
    app.include_router(oip)  # the Open Inference Protocol under /v2 (fastlrnr.server.oip)
    app.include_router(reload)  # its lifespan reloads changed artifacts (fastlrnr.server.engine.reload)
    app.openapi = lambda: build_openapi(  # type: ignore[method-assign]
        app, auth=bool(settings.api_keys), max_time_budget_ms=settings.max_time_budget_ms
    )
    return app


# ------------------------------------------------------------------------------ module-level app

_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``fastlrnr.server.app.app``: built from the environment on first access (uvicorn's import)."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app(ServiceSettings())
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
