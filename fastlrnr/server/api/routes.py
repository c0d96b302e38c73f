"""The HTTP routes. Handlers live at module level and get the app's state through
``Depends(get_state)``; the API-key check is a router dependency (it runs before any body is read).

A solve request, in order: API key (401) → a place among the open requests (503 at once
when ``max_requests`` are open) → body read (413, 408) and parsed off the event loop
(422) → the checks (``fastlrnr.server.api.checks``: 404, 413, 422) → a place in the solver queue
(503) and the solve → the answer encoded off the event loop.
"""

from __future__ import annotations

from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from fastlrnr.server.api import checks
from fastlrnr.server.api.openapi import BATCH_EXAMPLES, NPY_RESPONSE, SOLVE_EXAMPLES, error_responses, request_body
from fastlrnr.server.api.responses import batch_response, solve_response, sweep_response, wants_npy
from fastlrnr.server.api.schemas import (
    BatchSolveRequest,
    BatchSolveResponse,
    ModelsResponse,
    SolveRequest,
    SolveResponse,
)
from fastlrnr.server.api.sweep import NPZ_MEDIA_TYPE, check_size, parse_sweep
from fastlrnr.server.engine.state import ServiceState, get_state
from fastlrnr.server.http.auth import require_key
from fastlrnr.server.http.bodies import parse_body
from fastlrnr.version import __version__

ops = APIRouter(tags=["ops"])
api = APIRouter(dependencies=[Depends(require_key)])

Format = Query(None, alias="format", description="npy: the field as .npy bytes (else JSON)")
SOLVE_ERRORS = (401, 404, 408, 413, 422, 500, 503)


@ops.get("/healthz", summary="liveness: the process answers")
async def healthz() -> dict:
    return {"status": "alive"}


@ops.get(
    "/readyz",
    summary="readiness: every model loaded and warmed",
    responses={503: {"description": "starting, draining or failed"}},
)
async def readyz(state: ServiceState = Depends(get_state)) -> JSONResponse:
    ready = state.status == "ready"
    return JSONResponse({"status": state.status, "models": sorted(state.models)}, status_code=200 if ready else 503)


@api.get("/models", tags=["models"], response_model=ModelsResponse, responses=error_responses(401))
async def models(state: ServiceState = Depends(get_state)) -> dict:
    default = state.settings.default_model
    s = state.settings
    return {
        "default": default,
        "service_version": __version__,
        "limits": {
            "max_grid_points": s.max_grid_points,
            "max_steps": s.max_steps,
            "max_batch_size": s.max_batch_size,
            "max_batch_values": s.max_batch_values,
            "max_body_bytes": s.max_body_bytes,
        },
        "models": [rt.info(name == default) for name, rt in sorted(state.models.items())],
        "unavailable": state.unavailable,
    }


@api.get(
    "/metrics",
    tags=["ops"],
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain; version=0.0.4": {}, "application/openmetrics-text; version=1.0.0": {}},
            "description": "Prometheus text, or OpenMetrics when the scrape's Accept header asks for it",
        },
        **error_responses(401),
    },
)
async def metrics(request: Request, state: ServiceState = Depends(get_state)) -> Response:
    body, content_type = state.metrics.expose(request.headers.get("accept"))
    return Response(body, media_type=content_type)


@api.post(
    "/solve",
    tags=["solve"],
    response_model=SolveResponse,
    responses={200: NPY_RESPONSE, **error_responses(*SOLVE_ERRORS)},
    openapi_extra=request_body(SolveRequest, SOLVE_EXAMPLES),
)
async def solve(
    request: Request, state: ServiceState = Depends(get_state), fmt: Literal["json", "npy"] | None = Format
) -> Response:
    """One parameter set → the field on a grid."""
    return await _solve(request, state, fmt, SolveRequest, checks.solve_job, solve_response, batchable=True)


@api.post(
    "/solve/batch",
    tags=["solve"],
    response_model=BatchSolveResponse,
    responses={200: NPY_RESPONSE, **error_responses(*SOLVE_ERRORS)},
    openapi_extra=request_body(BatchSolveRequest, BATCH_EXAMPLES),
)
async def solve_batch(
    request: Request, state: ServiceState = Depends(get_state), fmt: Literal["json", "npy"] | None = Format
) -> Response:
    """Many parameter sets on one grid, solved together in one vectorised pass."""
    return await _solve(request, state, fmt, BatchSolveRequest, checks.batch_job, batch_response, batchable=False)


async def _solve(request: Request, state: ServiceState, fmt, schema, make_job, respond, batchable: bool) -> Response:
    """The path of /solve and /solve/batch, top-down: parse the body as ``schema``, find the
    model, check the request into a job (``make_job``), solve it (``batchable``: may share a
    pass with other requests), answer (``respond``) as JSON or .npy."""
    async with state.requests.slot():
        body = await parse_body(request, schema, state)
        runtime = checks.find_model(state.models, body.model, state.settings.default_model)
        job = make_job(runtime, body, state.settings)
        res = await state.execute(runtime, job, batchable=batchable)
        return await respond(request, state, runtime, job, res, wants_npy(fmt, request.headers.get("accept")))


SWEEP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            NPZ_MEDIA_TYPE: {
                "schema": {"type": "string", "format": "binary"},
                "description": "numpy.savez archive: params (B, 3), and points (P, 2) or the axes x, t",
            }
        },
    }
}
SWEEP_RESPONSE = {
    "content": {NPZ_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    "description": "numpy.savez archive: u (B, P) or (B, nt, nx) float32, error_estimate (B,), within_tolerance "
    "(B,) int8 (-1: no tolerance), rung (B,) str, extrapolated (B,), time_budget_exhausted (B,)",
}


@api.post(
    "/solve/sweep",
    tags=["solve"],
    responses={200: SWEEP_RESPONSE, **error_responses(*SOLVE_ERRORS)},
    openapi_extra=SWEEP_BODY,
)
async def solve_sweep(
    request: Request,
    state: ServiceState = Depends(get_state),
    model: str | None = Query(None, max_length=64, description="model name; null: the server's default"),
    tolerance: float | None = Query(None, gt=0.0, le=10.0, description="as for /solve, for every row"),
    time_budget_ms: int | None = Query(None, ge=1, le=600_000, description="as for /solve, for the whole sweep"),
    correction: bool = Query(False, description="correct every row (an LRNR pass per row on the correction grid)"),
    allow_extrapolation: bool = Query(False, description="as for /solve"),
) -> Response:
    """Many parameter sets at the same sites, binary in and out (``fastlrnr.server.api.sweep``)."""
    async with state.requests.slot():
        raw = await request.body()
        sweep = await anyio.to_thread.run_sync(parse_sweep, raw, limiter=state.parse_small)
        check_size(sweep)
        runtime = checks.find_model(state.models, model, state.settings.default_model)
        jobs = checks.sweep_jobs(
            runtime, sweep, correction, tolerance, time_budget_ms, allow_extrapolation, state.settings
        )
        results = [await state.execute(runtime, job, batchable=False) for job in jobs]
        return await sweep_response(request, state, runtime, jobs, results)
