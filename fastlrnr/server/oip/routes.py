"""The Open Inference Protocol's HTTP routes under ``/v2``, next to the service's own API.

``infer`` is ``POST /solve/batch`` in other clothes: the tensors and parameters become a
/solve/batch body, parsed and validated by the same code (``fastlrnr.server.http.bodies.parse_json``),
checked by ``fastlrnr.server.api.checks.batch_job`` and solved by ``ServiceState.execute``; the
outputs are the per-row data of the batch answer (``fastlrnr.server.api.responses``). Every refusal
keeps /solve/batch's status (401, 404, 408, 413, 422, 503 + Retry-After, 500) with the
protocol's body ``{"error": "<code>: <message>"}``.
"""

from __future__ import annotations

import functools
import time

import anyio.to_thread
import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from fastlrnr.server.api import checks
from fastlrnr.server.api.responses import answer_trust, request_timings_ms, row_diagnostics
from fastlrnr.server.api.schemas import BatchSolveRequest
from fastlrnr.server.engine.jobs import Job, PassResult
from fastlrnr.server.engine.solver import ModelRuntime
from fastlrnr.server.engine.state import LARGE_BODY_BYTES, ServiceState
from fastlrnr.server.errors import ApiError, SolverError
from fastlrnr.server.http import encoding
from fastlrnr.server.http.auth import bearer, require_key
from fastlrnr.server.http.bodies import LARGE_BODY_PAUSE, parse_json, refuse_encoded
from fastlrnr.server.http.disconnect import watch_disconnect
from fastlrnr.server.logs import get_logger, request_id_var
from fastlrnr.server.oip.schema import INFER_BODY
from fastlrnr.server.oip.tensors import HEADER_LENGTH, InferRequest, Output, encode_response, invalid, parse_request
from fastlrnr.version import __version__

log = get_logger("oip")
router = APIRouter(prefix="/v2", tags=["open inference protocol"])

SERVER_NAME = "fastlrnr"
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "fastlrnr"
# Request parameters with a meaning in the protocol or in Triton's scheduler but none here.
IGNORED_PARAMETERS = ("priority", "timeout")
# Request parameters that are /solve/batch fields of the same name.
BATCH_FIELDS = ("allow_extrapolation", "correction", "tolerance", "time_budget_ms")
INPUTS = [  # params: [B, p], p the model's family's parameters (its metadata names them)
    {"name": "params", "datatype": "FP64", "shape": [-1, -1]},
    {"name": "x", "datatype": "FP64", "shape": [-1]},
    {"name": "t", "datatype": "FP64", "shape": [-1]},
    {"name": "points", "datatype": "FP64", "shape": [-1, 2]},
]
OUTPUTS = [
    {"name": "u", "datatype": "FP32", "shape": [-1, -1, -1]},
    {"name": "x", "datatype": "FP64", "shape": [-1]},
    {"name": "t", "datatype": "FP64", "shape": [-1]},
    {"name": "error_estimate", "datatype": "FP64", "shape": [-1]},
    {"name": "within_tolerance", "datatype": "BOOL", "shape": [-1]},
    {"name": "extrapolated", "datatype": "BOOL", "shape": [-1]},
    {"name": "coefficients", "datatype": "FP64", "shape": [-1, -1]},
    {"name": "diagnostics", "datatype": "BYTES", "shape": [-1]},
]
OUTPUT_NAMES = [o["name"] for o in OUTPUTS]
# Per-row fields of the batch answer that travel as their own tensors; every other one goes into `diagnostics`.
ROW_TENSORS = ("error_estimate", "within_tolerance", "extrapolated")


def oip_error(exc: ApiError) -> JSONResponse:
    """The protocol's error body, with the status and headers /solve/batch would send."""
    return JSONResponse({"error": f"{exc.code}: {exc.message}"}, status_code=exc.status, headers=exc.headers)


async def authorize(request: Request, state: ServiceState) -> None:
    require_key(state, await bearer(request))


def _oip_errors(*statuses: int) -> dict:
    """``responses=`` for a /v2 route: the protocol's error body for each status."""
    body = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    return {
        s: {"description": "the protocol's error body", "content": {"application/json": {"schema": body}}}
        for s in statuses
    }


VERSION_PARAM = {
    "parameters": [{"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}]
}
META_ERRORS = _oip_errors(401, 404, 503)
INFER_ERRORS = _oip_errors(400, 401, 404, 408, 413, 415, 422, 500, 503)


def _protocol_errors(handler):
    """An ApiError raised by ``handler`` is answered with the protocol's error body (``oip_error``)."""

    @functools.wraps(handler)  # FastAPI reads the handler's own signature through __wrapped__
    async def wrapped(*args, **kwargs):
        try:
            return await handler(*args, **kwargs)
        except ApiError as exc:
            return oip_error(exc)

    return wrapped


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _version(request: Request) -> str | None:
    """The version in the path (``/versions/{model_version}``), if any."""
    return request.path_params.get("model_version")


def _model(state: ServiceState, name: str, version: str | None) -> ModelRuntime:
    runtime = checks.find_model(state.models, name, state.settings.default_model)
    if version is not None and version != runtime.artifact.version:
        raise ApiError(
            404,
            "unknown_model",
            f"model {name!r} has no version {version!r}; serving version {runtime.artifact.version!r}",
        )
    return runtime


# ------------------------------------------------------------------ health and metadata


@router.get("/health/live", summary="liveness (never needs a key)")
async def live() -> dict:
    return {"live": True}


@router.get("/health/ready", summary="readiness: as /readyz (never needs a key)")
async def ready(request: Request) -> JSONResponse:
    state = _state(request)
    ok, status = state.readiness()
    headers = {"Retry-After": str(state.settings.retry_after_s)} if status == "busy" else None
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503, headers=headers)


@router.get("", summary="server metadata", responses=_oip_errors(401))
@_protocol_errors
async def server_metadata(request: Request) -> JSONResponse:
    await authorize(request, _state(request))
    return JSONResponse({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})


@router.get("/models/{model_name}/ready", summary="model readiness (never needs a key)", responses=META_ERRORS)
@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    summary="model readiness (never needs a key)",
    responses=META_ERRORS,
    openapi_extra=VERSION_PARAM,
)
@_protocol_errors
async def model_ready(request: Request, model_name: str) -> JSONResponse:
    state = _state(request)
    runtime = _model(state, model_name, _version(request))
    ok = state.readiness()[0]
    return JSONResponse(
        {"name": model_name, "version": runtime.artifact.version, "ready": ok}, status_code=200 if ok else 503
    )


@router.get("/models/{model_name}", summary="model metadata", responses=META_ERRORS)
@router.get(
    "/models/{model_name}/versions/{model_version}",
    summary="model metadata",
    responses=META_ERRORS,
    openapi_extra=VERSION_PARAM,
)
@_protocol_errors
async def model_metadata(request: Request, model_name: str) -> JSONResponse:
    state = _state(request)
    await authorize(request, state)
    runtime = _model(state, model_name, _version(request))
    return JSONResponse(
        {
            "name": runtime.name,
            "versions": [runtime.artifact.version],
            "platform": PLATFORM,
            "inputs": _inputs(runtime),
            "outputs": OUTPUTS,
            "parameters": {
                "sha256": runtime.artifact.sha256,
                "ranks": list(runtime.artifact.lrnr.ranks),
                "family": runtime.family.name,
                "params": list(runtime.family.params),
            },
        }
    )


def _inputs(runtime: ModelRuntime) -> list[dict]:
    """INPUTS with the width of ``params`` set to the model's number of parameters."""
    p = len(runtime.family.params)
    return [{**i, "shape": [-1, p]} if i["name"] == "params" else i for i in INPUTS]


# ------------------------------------------------------------------ infer


@router.post(
    "/models/{model_name}/infer",
    summary="solve: /solve/batch as tensors",
    responses=INFER_ERRORS,
    openapi_extra=INFER_BODY,
)
@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    summary="solve: /solve/batch as tensors",
    responses=INFER_ERRORS,
    openapi_extra={**VERSION_PARAM, **INFER_BODY},
)
async def infer(request: Request, model_name: str) -> Response:
    state = _state(request)
    try:
        await authorize(request, state)
        async with state.requests.slot():
            refuse_encoded(request)
            raw = await request.body()
            names = _model(state, model_name, _version(request)).family.params  # the columns of params
            req, body = await _parse(state, raw, request.headers.get(HEADER_LENGTH), names)
            del raw
            runtime = _model(state, model_name, _version(request))
            with state.hold(runtime):  # no await since the look-up: a reload cannot close it under the request
                job = checks.batch_job(runtime, body, state.settings)
                wanted = _wanted(req, job)
                async with watch_disconnect(request, job.budget.gone):
                    res = await state.execute(runtime, job, batchable=False)
                head, outputs, binary = _answer(request, runtime, req, wanted, job, res)
                data, header_length = await anyio.to_thread.run_sync(
                    encode_response, head, outputs, binary, limiter=state.encode_limiter
                )
    except ApiError as exc:
        return oip_error(exc)
    except SolverError as exc:
        log.error("solver failure: %s", exc)
        return oip_error(ApiError(500, "internal_error", "the solver failed; see the server log for this request id"))
    if header_length is None:
        return Response(data, media_type="application/json")
    return Response(
        data, media_type="application/octet-stream", headers={"Inference-Header-Content-Length": str(header_length)}
    )


async def _parse(
    state: ServiceState, raw: bytes, header_length: str | None, names: tuple[str, ...]
) -> tuple[InferRequest, BatchSolveRequest]:
    """The body → (protocol request, the equivalent /solve/batch body with ``params`` columns
    named ``names``), on a worker thread."""
    memory = state.settings.request_memory_bytes
    if len(raw) <= LARGE_BODY_BYTES:
        return await anyio.to_thread.run_sync(_parse_sync, raw, header_length, names, memory, limiter=state.parse_small)
    async with state.parse_large:  # one large body at a time, then a pause while solves run, as /solve/batch
        t0 = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(_parse_sync, raw, header_length, names, memory)
        finally:
            if state.pool.admitted:
                await anyio.sleep((time.perf_counter() - t0) * LARGE_BODY_PAUSE)


def _parse_sync(
    raw: bytes, header_length: str | None, names: tuple[str, ...], memory_bytes: int
) -> tuple[InferRequest, BatchSolveRequest]:
    req = parse_request(raw, header_length, memory_bytes)
    return req, parse_json(BatchSolveRequest, orjson.dumps(batch_body(req, names)))


def batch_body(req: InferRequest, names: tuple[str, ...]) -> dict:
    """The /solve/batch body an inference request stands for (validated by its schema next);
    ``names``: the model's parameters, the columns of the input ``params``."""
    p, inputs = dict(req.parameters), dict(req.inputs)
    mu = inputs.pop("params", None)
    n = len(names)
    if mu is None:
        raise invalid(f"the input 'params' (FP64 [B, {n}]: {', '.join(names)} per row) is required", ("inputs",))
    if mu.ndim != 2 or mu.shape[1] != n:
        raise invalid(
            f"the input 'params' must have shape [B, {n}], got {list(mu.shape)} (columns {', '.join(names)})",
            ("inputs", "params"),
        )
    body: dict = {"params": [dict(zip(names, row)) for row in mu.tolist()]}
    grid: dict = {k: p.pop(k) for k in ("nx", "nt") if k in p}
    for name, ndim in (("x", 1), ("t", 1), ("points", 2)):
        if name in inputs:
            a = inputs.pop(name)
            if a.ndim != ndim or (name == "points" and a.shape[1] != 2):
                shape = "[P, 2]" if name == "points" else "[N]"
                raise invalid(f"the input {name!r} must have shape {shape}, got {list(a.shape)}", ("inputs", name))
            grid[name] = a.tolist()
    if grid:
        body["grid"] = grid
    fast_phase = {"enabled": p.pop("fast_phase")} if "fast_phase" in p else {}
    fast_phase.update({k: p.pop(k) for k in ("steps", "backend", "locality") if k in p})
    if fast_phase:
        body["fast_phase"] = fast_phase
    body.update({k: p.pop(k) for k in BATCH_FIELDS if k in p})
    for key in IGNORED_PARAMETERS:
        p.pop(key, None)
    if inputs:
        raise invalid(f"unknown inputs {sorted(inputs)}; known: params, x, t, points", ("inputs",))
    if p:
        raise invalid(f"unknown parameters {sorted(p)}", ("parameters", sorted(p)[0]))
    return body


def _wanted(req: InferRequest, job: Job) -> dict[str, bool]:
    """The outputs to send, each with whether it travels in binary (checked before the solve)."""
    wanted = dict(req.outputs) if req.outputs is not None else dict.fromkeys(OUTPUT_NAMES, False)
    unknown = sorted(set(wanted) - set(OUTPUT_NAMES))
    if unknown:
        raise invalid(f"unknown outputs {unknown}; known: {', '.join(OUTPUT_NAMES)}", ("outputs",))
    if "within_tolerance" in wanted and job.tolerance is None:
        if req.outputs is not None:
            raise invalid("the output 'within_tolerance' needs the parameter 'tolerance'", ("outputs",))
        del wanted["within_tolerance"]
    return {name: flag or req.binary_output for name, flag in wanted.items()}


def _answer(
    request: Request, runtime: ModelRuntime, req: InferRequest, wanted: dict[str, bool], job: Job, res: PassResult
) -> tuple[dict, list[Output], dict[str, bool]]:
    """The response's head, its output tensors and which of them travel in binary."""
    rows = len(job.mu)
    timings = request_timings_ms(request, job, res, 0.0)
    # the per-row fields of the /solve/batch answer, built by the same functions
    items = [
        {
            **answer_trust(job, res, i),
            "extrapolated": bool(job.extrapolated[i]),
            "diagnostics": row_diagnostics(job, res, i, timings),
        }
        for i in range(rows)
    ]
    values = {
        "u": lambda: ("FP32", res.u),
        "x": lambda: ("FP64", job.grid.x),
        "t": lambda: ("FP64", job.grid.t),
        "error_estimate": lambda: ("FP64", np.array([it["error_estimate"] for it in items], np.float64)),
        "within_tolerance": lambda: ("BOOL", np.array([it["within_tolerance"] for it in items], np.bool_)),
        "extrapolated": lambda: ("BOOL", np.array([it["extrapolated"] for it in items], np.bool_)),
        "coefficients": lambda: ("FP64", np.asarray(res.coefficients, np.float64)),
        "diagnostics": lambda: (
            "BYTES",
            [encoding.dumps({k: v for k, v in it.items() if k not in ROW_TENSORS}) for it in items],
        ),
    }
    outputs = []
    for name in wanted:
        datatype, value = values[name]()
        shape = [len(value)] if datatype == "BYTES" else list(value.shape)
        outputs.append(Output(name, datatype, shape, value))
    head = {
        "model_name": runtime.name,
        "model_version": runtime.artifact.version,
        **({"id": req.id} if req.id is not None else {}),
        "parameters": {
            "model_sha256": runtime.artifact.sha256,
            "grid": job.grid.kind,
            "request_id": request_id_var.get(),
        },
    }
    return head, outputs, wanted
