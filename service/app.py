"""The FastAPI app: ``create_app(settings)``, and ``app`` for ``uvicorn service.app:app``.

``app`` is built on first access from the environment (``FASTLRNR_*``); importing this
module loads no model. Models are loaded, verified and warmed in the lifespan, before
the server accepts connections; a default model that cannot be loaded makes start-up
fail (uvicorn exits non-zero) with a log line naming the file and the problem.
Other refused artifacts are logged, listed under ``unavailable`` in ``GET /models``
and never served.
"""
from __future__ import annotations

import os

# BLAS thread count, fixed before numpy is first imported (numpy reads it once, at import).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("FASTLRNR_NUMPY_THREADS", "1"))

import hmac  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from typing import Any, Literal  # noqa: E402

import anyio  # noqa: E402
import anyio.to_thread  # noqa: E402
import numpy as np  # noqa: E402
from fastapi import Depends, FastAPI, Query, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from starlette.datastructures import MutableHeaders  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from core.artifact import ArtifactError, list_artifacts  # noqa: E402
from core.pde import PARAM_NAMES  # noqa: E402
from service import encoding  # noqa: E402
from service.logs import configure_logging, get_logger, request_id_var  # noqa: E402
from service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, Registry  # noqa: E402
from service.pool import MicroBatcher, QueueFull, SolverPool  # noqa: E402
from service.schemas import (BatchSolveRequest, BatchSolveResponse, ErrorResponse, ModelsResponse,  # noqa: E402
                             SolveRequest, SolveResponse)
from service.settings import ServiceSettings  # noqa: E402
from service.version import __version__  # noqa: E402
from service.solver import Job, ModelRuntime, PassResult, RequestError, SolverError, answer_flags  # noqa: E402

log = get_logger("app")
access_log = get_logger("access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_START_KEY = "fastlrnr.start"
DRAIN_TIMEOUT_S = 60.0


class StartupError(RuntimeError):
    """The service cannot serve (default model missing or refused)."""


# ------------------------------------------------------------------------------ state


class ServiceState:
    """Everything one app instance owns: settings, metrics, models, pool."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.metrics = Registry()
        self.models: dict[str, ModelRuntime] = {}
        self.unavailable: list[dict] = []
        self.status: Literal["starting", "ready", "draining", "failed"] = "starting"
        self.pool = SolverPool(settings.solver_threads, settings.queue_capacity, settings.retry_after_s, self.metrics)
        self.encode_limiter = anyio.CapacityLimiter(max(2, settings.solver_threads))
        self.batcher = (MicroBatcher(self.pool, settings.microbatch_window_ms / 1000.0, settings.microbatch_max,
                                     self.run_pass) if settings.microbatch else None)

    # ---- start-up (worker thread)
    def load_models(self) -> None:
        s = self.settings
        root = s.artifact_dir
        names = list(s.models) or [p.name for p in list_artifacts(root)]
        if s.default_model not in names:
            names.insert(0, s.default_model)
        for name in names:
            path = root / name
            try:
                if not (path / "manifest.json").is_file():
                    raise ArtifactError(path / "manifest.json", "missing (no artifact here)")
                runtime = ModelRuntime.load(path, onnx_threads=s.onnx_threads, speculative_field=s.speculative_field)
                if runtime.name != name:
                    raise ArtifactError(path / "manifest.json",
                                        f"manifest names the model {runtime.name!r}, its directory is {name!r}")
                warm_s = runtime.warm() if s.warmup else 0.0
            except ArtifactError as exc:
                log.error("artifact refused: %s: %s", exc.path, exc.problem,
                          extra={"model": name, "file": str(exc.path), "problem": exc.problem})
                self.unavailable.append({"name": name, "error": f"{exc.path.name}: {exc.problem}"})
                continue
            except Exception as exc:  # noqa: BLE001 - a model that cannot solve is not served
                log.exception("model failed to load or warm", extra={"model": name, "file": str(path)})
                self.unavailable.append({"name": name, "error": f"failed to load or warm: {type(exc).__name__}"})
                continue
            self.models[name] = runtime
            self.metrics.models.set(1, model=name, version=runtime.artifact.version, sha256=runtime.artifact.sha256)
            log.info("model ready", extra={"model": name, "version": runtime.artifact.version,
                                           "sha256": runtime.artifact.sha256, "backend": runtime.backend,
                                           "warmup_ms": round(warm_s * 1e3, 2)})
        if s.default_model not in self.models:
            problem = next((u["error"] for u in self.unavailable if u["name"] == s.default_model), "not loaded")
            raise StartupError(f"default model {s.default_model!r} ({root / s.default_model}) cannot be served: "
                               f"{problem}")

    # ---- solving
    def runtime(self, name: str | None) -> ModelRuntime:
        name = name or self.settings.default_model
        runtime = self.models.get(name)
        if runtime is None:
            raise RequestError(404, "unknown_model", f"no model named {name!r}; available: {sorted(self.models)}",
                               [{"loc": ["body", "model"], "msg": f"unknown model {name!r}", "type": "not_found"}])
        return runtime

    def run_pass(self, runtime: ModelRuntime, jobs: list[Job]) -> list[PassResult]:
        """Worker thread: one solver pass over ``jobs``, recorded in the metrics."""
        results = runtime.solve_jobs(jobs)
        m, timings = self.metrics, results[0].timings
        for stage, secs in timings.items():
            m.stage.observe(secs, model=runtime.name, stage=stage)
        m.fast_phase.observe(timings["fast_phase"], model=runtime.name)
        m.batch_rows.observe(sum(j.mu.shape[0] for j in jobs), model=runtime.name)
        for res in results:
            for row in res.rows:
                outcome = "skipped" if not row["enabled"] else "accepted" if row["accepted"] else "rejected"
                m.solves.inc(model=runtime.name, outcome=outcome)
        return results

    async def execute(self, runtime: ModelRuntime, job: Job, batchable: bool) -> PassResult:
        self.pool.admit()
        if batchable and self.batcher is not None:
            return await self.batcher.submit(runtime, job.key, job)
        try:
            return (await self.pool.run(self.run_pass, runtime, [job]))[0]
        finally:
            self.pool.release()


def _state(request: Request) -> ServiceState:
    return request.app.state.service


# ------------------------------------------------------------------------------ errors


def error_response(status: int, code: str, message: str, errors: list | tuple = (),
                   headers: dict | None = None) -> JSONResponse:
    body = {"error": code, "message": message, "request_id": request_id_var.get(), "errors": list(errors)}
    return JSONResponse(body, status_code=status, headers=headers)


def _clean_errors(errors) -> list[dict]:
    out = []
    for e in errors:
        loc = [p if isinstance(p, (int, str)) else str(p) for p in e.get("loc", ())]
        out.append({"loc": loc, "msg": str(e.get("msg", ""))[:300], "type": str(e.get("type", ""))})
    return out


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return error_response(exc.status, exc.code, exc.message, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = _clean_errors(exc.errors())
        first = errors[0] if errors else {"loc": [], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":
            pos = first["loc"][1] if len(first["loc"]) > 1 else "?"
            return error_response(422, "invalid_json", f"the body is not valid JSON (error at character {pos})",
                                  errors)
        where = ".".join(str(p) for p in first["loc"][1:]) or "body"
        return error_response(422, "validation_error", f"{where}: {first['msg']}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        codes = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 413: "body_too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull):
        return error_response(503, "overloaded", "the solver queue is full; retry later",
                              headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(SolverError)
    async def _solver_error(request: Request, exc: SolverError):
        log.error("solver failure: %s", exc)
        return error_response(500, "internal_error", "the solver failed; see the server log for this request id")


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


# ------------------------------------------------------------------------------ middleware


class RequestContextMiddleware:
    """Request id, body cap (Content-Length and streamed bytes), catch-all 500, metrics, access log."""

    def __init__(self, app, state: ServiceState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        scope[_START_KEY] = start
        headers = dict((k.lower(), v) for k, v in scope.get("headers", ()))
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        limit = self.state.settings.max_body_bytes
        status = [0]
        received = [0]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        async def receive_wrapper():
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                code = 413 if length.isdigit() else 400
                msg = f"request body exceeds the limit of {limit} bytes" if code == 413 else "bad Content-Length"
                await error_response(code, "body_too_large" if code == 413 else "bad_request", msg)(
                    scope, receive, send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge as exc:
            if not status[0]:
                await error_response(413, "body_too_large", str(exc.detail))(scope, receive, send_wrapper)
        except Exception:  # noqa: BLE001 - nothing but a request id leaves the server
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if not status[0]:
                await error_response(500, "internal_error", "internal error; see the server log for this "
                                                            "request id")(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - start
            m = self.state.metrics
            m.requests.inc(method=scope["method"], route=label, status=str(status[0] or 500))
            m.latency.observe(elapsed, method=scope["method"], route=label)
            access_log.info("%s %s %s", scope["method"], scope.get("path"), status[0],
                            extra={"method": scope["method"], "path": scope.get("path"), "route": label,
                                   "status": status[0], "duration_ms": round(elapsed * 1e3, 3),
                                   "body_bytes": received[0]})
            request_id_var.reset(token)


# ------------------------------------------------------------------------------ auth


def _require_key(request: Request) -> None:
    keys = _state(request).settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    ok = scheme.lower() == "bearer" and any(hmac.compare_digest(token.strip().encode(), k.encode()) for k in keys)
    if not ok:
        raise StarletteHTTPException(401, "missing or wrong API key (Authorization: Bearer <key>)",
                                     headers={"WWW-Authenticate": "Bearer"})


# ------------------------------------------------------------------------------ responses


def _wants_npy(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return fmt == "npy"
    return encoding.NPY_MEDIA_TYPE in (accept or "")


def _row_diagnostics(job: Job, res: PassResult, row: int, timings_ms: dict, batch_size: int) -> dict:
    fp = dict(res.rows[row])
    fp["steps_requested"] = job.steps_requested
    return {"timings_ms": timings_ms, "fast_phase": fp, "extrapolated": bool(job.extrapolated[row]),
            "batch_size": batch_size}


def _trust(job: Job, res: PassResult, row: int) -> dict:
    """error_estimate, within_tolerance and flags of one answer."""
    estimate = float(res.estimate[row])
    within, flags = answer_flags(job, row, estimate)
    return {"error_estimate": estimate, "within_tolerance": within, "flags": flags}


def _timings_ms(request: Request, job: Job, res: PassResult, encode_s: float) -> dict:
    start = request.scope.get(_START_KEY, job.enqueued)
    t = {"queue": res.started - job.enqueued, **res.timings, "encode": encode_s,
         "total": time.perf_counter() - start}
    return {k: round(v * 1e3, 3) for k, v in t.items()}


def _params_dict(mu_row: np.ndarray) -> dict:
    return {k: float(v) for k, v in zip(PARAM_NAMES, mu_row)}


def _coeffs(res: PassResult, row: int) -> list[list[float]]:
    return [sl[row].tolist() for sl in res.s]


def _server_timing(timings_ms: dict) -> str:
    return ", ".join(f"{k};dur={v}" for k, v in timings_ms.items())


NPY_RESPONSE = {"content": {encoding.NPY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                "description": "the field as .npy bytes (float32) when asked for by `Accept: application/x-npy` or "
                               "`?format=npy`; metadata in the X-Solve-Diagnostics header (JSON)"}
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 413, 422, 500, 503)}


# ------------------------------------------------------------------------------ the app


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """Build the app; models load in its lifespan (``with TestClient(app)`` runs it)."""
    settings = settings or ServiceSettings()
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        configure_logging(settings.log_level, settings.log_json)
        log.info("starting", extra={"artifact_dir": str(settings.artifact_dir), "default_model": settings.default_model,
                                    "solver_threads": settings.solver_threads, "queue_capacity": settings.queue_capacity,
                                    "onnx_threads": settings.onnx_threads,
                                    "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                                    "microbatch": settings.microbatch,
                                    "auth": bool(settings.api_keys)})
        blas = os.environ.get("OPENBLAS_NUM_THREADS")
        if blas != str(settings.numpy_threads):
            log.warning("numpy_threads=%s is not in effect: BLAS was set up with %s threads when numpy was "
                        "imported (set FASTLRNR_NUMPY_THREADS or OMP_NUM_THREADS before the process starts)",
                        settings.numpy_threads, blas)
        try:
            await anyio.to_thread.run_sync(state.load_models)
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
            drained = await state.pool.drain(DRAIN_TIMEOUT_S)
            for runtime in state.models.values():
                runtime.close()
            log.info("stopped", extra={"drained": drained})

    app = FastAPI(title="FastLRNR solve service", version=__version__,
                  description="Solves u_t + β u_x − ν u_xx − ρ u(1 − u) = 0 on x ∈ [0, 2π) periodic, t ∈ [0, 1], "
                              "u(x, 0) = 1 + sin x, for parameters (β, ν, ρ): a meta-learned low-rank network "
                              "adapted per query by the SPInProp fast phase.",
                  lifespan=lifespan)
    app.state.service = state
    app.add_middleware(RequestContextMiddleware, state=state)
    _install_error_handlers(app)
    auth = [Depends(_require_key)]

    @app.get("/healthz", tags=["ops"], summary="liveness: the process answers")
    async def healthz() -> dict:
        return {"status": "alive"}

    @app.get("/readyz", tags=["ops"], summary="readiness: every model loaded and warmed",
             responses={503: {"description": "starting, draining or failed"}})
    async def readyz() -> JSONResponse:
        ready = state.status == "ready"
        return JSONResponse({"status": state.status, "models": sorted(state.models)}, status_code=200 if ready else 503)

    @app.get("/models", tags=["models"], dependencies=auth, response_model=ModelsResponse, responses=ERRORS)
    async def models() -> dict:
        d = settings.default_model
        return {"default": d, "service_version": __version__,
                "models": [rt.info(name == d) for name, rt in sorted(state.models.items())],
                "unavailable": state.unavailable}

    @app.get("/metrics", tags=["ops"], dependencies=auth, response_class=Response,
             responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}})
    async def metrics() -> Response:
        return Response(state.metrics.expose(), media_type=METRICS_CONTENT_TYPE)

    @app.post("/solve", tags=["solve"], dependencies=auth, response_model=SolveResponse,
              responses={200: NPY_RESPONSE, **ERRORS})
    async def solve(body: SolveRequest, request: Request,
                    fmt: Literal["json", "npy"] | None = Query(None, alias="format",
                                                               description="npy: the field as .npy bytes")):
        s = state.settings
        runtime = state.runtime(body.model)
        job = runtime.prepare([body.params], body.grid, body.fast_phase, body.allow_extrapolation,
                              max_grid_points=s.max_grid_points, max_steps=s.max_steps, tolerance=body.tolerance)
        res = await state.execute(runtime, job, batchable=True)
        npy = _wants_npy(fmt, request.headers.get("accept"))
        t0 = time.perf_counter()
        u_json = None if npy else await anyio.to_thread.run_sync(encoding.float_array_json, res.u[0],
                                                                 limiter=state.encode_limiter)
        timings = _timings_ms(request, job, res, time.perf_counter() - t0)
        diag = _row_diagnostics(job, res, 0, timings, res.pass_rows)
        head = {"model": runtime.ref, "params": _params_dict(job.mu[0]), "grid": job.grid.kind,
                "coefficients": _coeffs(res, 0), **_trust(job, res, 0), "extrapolated": diag["extrapolated"],
                "diagnostics": diag, "request_id": request_id_var.get()}
        headers = {"Server-Timing": _server_timing(timings)}
        if npy:
            return _npy_response(res.u[0], head, headers)
        body_bytes = encoding.json_with_arrays(head, {"x": encoding.dumps(job.grid.x.tolist()),
                                                      "t": encoding.dumps(job.grid.t.tolist()), "u": u_json})
        return Response(body_bytes, media_type="application/json", headers=headers)

    @app.post("/solve/batch", tags=["solve"], dependencies=auth, response_model=BatchSolveResponse,
              responses={200: NPY_RESPONSE, **ERRORS})
    async def solve_batch(body: BatchSolveRequest, request: Request,
                          fmt: Literal["json", "npy"] | None = Query(None, alias="format")):
        s = state.settings
        runtime = state.runtime(body.model)
        B = len(body.params)
        if B > s.max_batch_size:
            raise RequestError(413, "batch_too_large", f"{B} parameter sets; the limit is {s.max_batch_size}",
                               [{"loc": ["body", "params"], "msg": f"at most {s.max_batch_size} items",
                                 "type": "too_large"}])
        if B * body.grid.size > s.max_batch_values:
            raise RequestError(413, "batch_too_large",
                               f"{B} × {body.grid.size} field values; the limit is {s.max_batch_values}",
                               [{"loc": ["body", "grid"], "msg": f"batch size × grid values at most "
                                 f"{s.max_batch_values}", "type": "too_large"}])
        job = runtime.prepare(body.params, body.grid, body.fast_phase, body.allow_extrapolation,
                              max_grid_points=s.max_grid_points, max_steps=s.max_steps, tolerance=body.tolerance)
        res = await state.execute(runtime, job, batchable=False)
        npy = _wants_npy(fmt, request.headers.get("accept"))
        t0 = time.perf_counter()
        u_json = None if npy else await anyio.to_thread.run_sync(
            lambda: [encoding.float_array_json(u) for u in res.u], limiter=state.encode_limiter)
        timings = _timings_ms(request, job, res, time.perf_counter() - t0)
        items = [{"params": _params_dict(job.mu[i]), "coefficients": _coeffs(res, i), **_trust(job, res, i),
                  "extrapolated": bool(job.extrapolated[i]),
                  "diagnostics": _row_diagnostics(job, res, i, timings, res.pass_rows)}
                 for i in range(B)]
        headers = {"Server-Timing": _server_timing(timings)}
        head = {"model": runtime.ref, "grid": job.grid.kind, "timings_ms": timings,
                "request_id": request_id_var.get()}
        if npy:
            slim = [{"params": it["params"], "extrapolated": it["extrapolated"], "error_estimate": it["error_estimate"],
                     "within_tolerance": it["within_tolerance"], "flags": it["flags"],
                     "fast_phase": it["diagnostics"]["fast_phase"]} for it in items]
            return _npy_response(res.u, {**head, "results": slim}, headers)
        results = "[" + ",".join(encoding.json_with_arrays(it, {"u": uj}).decode()
                                 for it, uj in zip(items, u_json)) + "]"
        body_bytes = encoding.json_with_arrays(head, {"x": encoding.dumps(job.grid.x.tolist()),
                                                      "t": encoding.dumps(job.grid.t.tolist()), "results": results})
        return Response(body_bytes, media_type="application/json", headers=headers)

    return app


def _npy_response(u: np.ndarray, head: dict, headers: dict) -> Response:
    meta = encoding.json.dumps(head, separators=(",", ":"), allow_nan=False)  # ASCII-only: a header value
    headers = {**headers, "X-Solve-Diagnostics": meta, "X-Model": head["model"]["name"],
               "X-Model-Version": head["model"]["version"], "X-Model-SHA256": head["model"]["sha256"]}
    return Response(encoding.npy_bytes(u), media_type=encoding.NPY_MEDIA_TYPE, headers=headers)


# ------------------------------------------------------------------------------ module-level app

_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``service.app.app``: built from the environment on first access (uvicorn's import)."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app(ServiceSettings())
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
