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
from fastlrnr.server.api.sweep import NPZ_MEDIA_TYPE, Archive, SweepInput, inspect_archive, read_archive
from fastlrnr.server.api.sweep_answer import SweepAnswer
from fastlrnr.server.engine.state import LARGE_BODY_BYTES, ServiceState, get_state
from fastlrnr.server.errors import ClientGone
from fastlrnr.server.http.auth import require_key
from fastlrnr.server.http.bodies import parse_body, refuse_encoded
from fastlrnr.server.http.disconnect import watch_disconnect
from fastlrnr.version import __version__

ops = APIRouter(tags=["ops"])
api = APIRouter(dependencies=[Depends(require_key)])

Format = Query(None, alias="format", description="npy: the field as .npy bytes (else JSON)")
SOLVE_ERRORS = (401, 404, 408, 413, 415, 422, 500, 503)


@ops.get("/healthz", summary="liveness: the process answers")
async def healthz() -> dict:
    return {"status": "alive"}


@ops.get(
    "/readyz",
    summary="readiness: every model loaded and warmed, and a worker free within ready_busy_s",
    responses={503: {"description": "starting, draining or failed; or busy: every solver thread pinned"}},
)
async def readyz(state: ServiceState = Depends(get_state)) -> JSONResponse:
    ready, status = state.readiness()
    headers = {"Retry-After": str(state.settings.retry_after_s)} if status == "busy" else None
    body = {"status": status, "models": sorted(state.models)}
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)


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
            "request_memory_bytes": s.request_memory_bytes,
            "max_time_budget_ms": s.max_time_budget_ms,
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
        refuse_encoded(request)
        body = await parse_body(request, schema, state)
        runtime = checks.find_model(state.models, body.model, state.settings.default_model)
        with state.hold(runtime):  # no await since the look-up: a reload cannot close it under the request
            job = make_job(runtime, body, state.settings)
            async with watch_disconnect(request, job.budget.gone):
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
    correction: bool | None = Query(
        None,
        description="true: correct every row; false or null: not — but with a tolerance null lets every row take "
        "the cheapest route predicted to meet it (true or false restrict the routes as for /solve)",
    ),
    allow_extrapolation: bool = Query(False, description="as for /solve"),
) -> Response:
    """Many parameter sets at the same sites, binary in and out (``fastlrnr.server.api.sweep``)."""
    settings = state.settings
    async with state.requests.slot():
        refuse_encoded(request)
        raw = await request.body()
        archive = await anyio.to_thread.run_sync(
            inspect_archive, raw, settings.request_memory_bytes, limiter=state.parse_small
        )
        del raw
        sweep = await _read_archive(state, archive)
        held = archive.held_bytes
        del archive
        runtime = checks.find_model(state.models, model, settings.default_model)
        with state.hold(runtime):  # for every pass: a reload meanwhile closes it after the last one
            parts, jobs, budget, extrapolated = checks.sweep_jobs(
                runtime, sweep, held, correction, tolerance, time_budget_ms, allow_extrapolation, settings
            )
            answer = SweepAnswer(len(sweep.mu), sweep.shape, sweep.kind, parts)
            async with watch_disconnect(request, budget.gone), state.pool.slot():
                for part, job in zip(parts, jobs):
                    if answer.passes and budget.stop():
                        break  # the deadline passed, or the client left: the rows done are answered
                    answer.fill(part, await state.run_job(runtime, job))
            if budget.gone.is_set():
                raise ClientGone()
            return await sweep_response(request, state, runtime, answer, tolerance, extrapolated, budget.start)


async def _read_archive(state: ServiceState, archive: Archive) -> SweepInput:
    """The inspected archive's arrays, read off the event loop: large ones one at a time (as large
    JSON bodies are), so that their unpacking cannot hold up the parsing of small requests."""
    if archive.stored_bytes <= LARGE_BODY_BYTES:
        return await anyio.to_thread.run_sync(read_archive, archive, limiter=state.parse_small)
    async with state.parse_large:
        return await anyio.to_thread.run_sync(read_archive, archive)
