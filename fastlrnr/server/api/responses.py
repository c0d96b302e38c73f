"""Answers of /solve and /solve/batch: JSON (orjson, gzip when large and accepted) or .npy bytes.

The one place the rows a solve filled in (``PassResult``: coefficient rows, fields, estimates,
``fastlrnr.numerics.answer.Diagnostics``) become the HTTP answer: the coefficients per layer, the trust of
each answer (``fastlrnr.numerics.answer.Trust``) and its diagnostics with the request's context.

The arrays (x, t, the fields) are encoded on a worker thread first; the small head —
which carries the timings, the encoding's included — is written after and the arrays are
spliced in as pre-encoded fragments. Compression, when it applies, also runs on a
worker thread (zlib releases the GIL); its time is reported in ``Server-Timing`` only.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import Response

from fastlrnr.numerics.answer import Trust
from fastlrnr.numerics.lrnr import split_layers
from fastlrnr.server.api.sweep import NPZ_MEDIA_TYPE
from fastlrnr.server.api.sweep import npz_bytes as sweep_npz
from fastlrnr.server.api.sweep_answer import SweepAnswer
from fastlrnr.server.engine.jobs import Job, PassResult
from fastlrnr.server.engine.state import ServiceState
from fastlrnr.server.http import encoding
from fastlrnr.server.http.middleware import START_KEY
from fastlrnr.server.logs import request_id_var

if TYPE_CHECKING:
    from fastlrnr.server.engine.solver import ModelRuntime


def wants_npy(fmt: str | None, accept: str | None) -> bool:
    """``?format=`` wins; otherwise ``Accept: application/x-npy`` asks for .npy."""
    if fmt is not None:
        return fmt == "npy"
    return encoding.NPY_MEDIA_TYPE in (accept or "")


async def solve_response(
    request: Request, state: ServiceState, runtime: ModelRuntime, job: Job, res: PassResult, npy: bool
) -> Response:
    """The answer to one /solve."""
    arrays, encode_s = await _encode(state, {} if npy else {"x": job.grid.x, "t": job.grid.t, "u": res.u[0]})
    timings = request_timings_ms(request, job, res, encode_s)
    diag = row_diagnostics(job, res, 0, timings)
    head = {
        "model": runtime.ref,
        "params": _params(runtime, job.mu[0]),
        "grid": job.grid.kind,
        "coefficients": _coefficients(runtime, res, 0),
        **answer_trust(job, res, 0),
        "extrapolated": diag["extrapolated"],
        "diagnostics": diag,
        "request_id": request_id_var.get(),
    }
    if npy:
        return _npy_response(res.u[0], head, timings)
    return await _json_response(request, state, {**head, **arrays}, timings)


async def batch_response(
    request: Request, state: ServiceState, runtime: ModelRuntime, job: Job, res: PassResult, npy: bool
) -> Response:
    """The answer to one /solve/batch."""
    rows = len(job.mu)
    todo = {} if npy else {"x": job.grid.x, "t": job.grid.t, **{f"u{i}": res.u[i] for i in range(rows)}}
    arrays, encode_s = await _encode(state, todo)
    timings = request_timings_ms(request, job, res, encode_s)
    items = [
        {
            "params": _params(runtime, job.mu[i]),
            "coefficients": _coefficients(runtime, res, i),
            **answer_trust(job, res, i),
            "extrapolated": bool(job.extrapolated[i]),
            "diagnostics": row_diagnostics(job, res, i, timings),
        }
        for i in range(rows)
    ]
    head = {"model": runtime.ref, "grid": job.grid.kind, "timings_ms": timings, "request_id": request_id_var.get()}
    if npy:
        slim = [
            {
                "params": it["params"],
                "extrapolated": it["extrapolated"],
                "rung": it["rung"],
                "error_estimate": it["error_estimate"],
                "within_tolerance": it["within_tolerance"],
                "flags": it["flags"],
                "fast_phase": it["diagnostics"]["fast_phase"],
            }
            for it in items
        ]
        return _npy_response(res.u, {**head, "results": slim}, timings)
    results = [{**it, "u": arrays[f"u{i}"]} for i, it in enumerate(items)]
    return await _json_response(
        request, state, {**head, "x": arrays["x"], "t": arrays["t"], "results": results}, timings
    )


async def sweep_response(
    request: Request,
    state: ServiceState,
    runtime: ModelRuntime,
    answer: SweepAnswer,
    tolerance: float | None,
    extrapolated: np.ndarray,
    started: float,
) -> Response:
    """The answer to one /solve/sweep: an .npz archive (``fastlrnr.server.api.sweep_answer``)."""
    t0 = time.perf_counter()
    arrays = answer.arrays(tolerance, extrapolated)
    data = await anyio.to_thread.run_sync(sweep_npz, arrays, limiter=state.encode_limiter)
    del arrays
    timings = dict(answer.timings)
    start = request.scope.get(START_KEY, started)
    timings.update(encode=time.perf_counter() - t0, total=time.perf_counter() - start)
    ms = {k: round(v * 1e3, 3) for k, v in timings.items()}
    headers = {
        "Server-Timing": _server_timing(ms, None),
        "X-Model": runtime.ref["name"],
        "X-Model-Version": runtime.ref["version"],
        "X-Model-SHA256": runtime.ref["sha256"],
        "X-Request-Passes": str(answer.passes),
        "X-Rows-Solved": str(int(answer.solved.sum())),
    }
    return Response(data, media_type=NPZ_MEDIA_TYPE, headers=headers)


# ---------------------------------------------------------------------- encoding


def _encode_arrays(arrays: dict[str, np.ndarray]) -> dict[str, orjson.Fragment]:
    return {k: orjson.Fragment(encoding.dumps(v)) for k, v in arrays.items()}


async def _encode(state: ServiceState, arrays: dict[str, np.ndarray]) -> tuple[dict[str, orjson.Fragment], float]:
    """Worker thread: the arrays as JSON fragments, and the time it took."""
    if not arrays:
        return {}, 0.0
    t0 = time.perf_counter()
    out = await anyio.to_thread.run_sync(_encode_arrays, arrays, limiter=state.encode_limiter)
    return out, time.perf_counter() - t0


def _finish(body: dict, gzip_min: int | None) -> tuple[bytes, float | None]:
    """The body's JSON, gzip-compressed when it is at least ``gzip_min`` bytes (None: never)."""
    data = encoding.dumps(body)
    if gzip_min is None or len(data) < gzip_min:
        return data, None
    t0 = time.perf_counter()
    return encoding.gzip_bytes(data), time.perf_counter() - t0


async def _json_response(request: Request, state: ServiceState, body: dict, timings: dict) -> Response:
    threshold = state.settings.gzip_min_bytes
    gzip_min = threshold if threshold > 0 and encoding.accepts_gzip(request.headers.get("accept-encoding")) else None
    if gzip_min is None:
        data, compress_s = _finish(body, None)
    else:
        data, compress_s = await anyio.to_thread.run_sync(_finish, body, gzip_min, limiter=state.encode_limiter)
    headers = {"Server-Timing": _server_timing(timings, compress_s)}
    if threshold > 0:
        headers["Vary"] = "Accept-Encoding"
    if compress_s is not None:
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type="application/json", headers=headers)


def _npy_response(u: np.ndarray, head: dict, timings: dict) -> Response:
    headers = {
        "Server-Timing": _server_timing(timings, None),
        "X-Solve-Diagnostics": encoding.header_json(head),
        "X-Model": head["model"]["name"],
        "X-Model-Version": head["model"]["version"],
        "X-Model-SHA256": head["model"]["sha256"],
    }
    return Response(encoding.npy_bytes(u), media_type=encoding.NPY_MEDIA_TYPE, headers=headers)


# ---------------------------------------------------------------------- content


def request_timings_ms(request: Request, job: Job, res: PassResult, encode_s: float) -> dict[str, float]:
    start = request.scope.get(START_KEY, job.enqueued)
    t = {"queue": res.started - job.enqueued, **res.timings, "encode": encode_s, "total": time.perf_counter() - start}
    return {k: round(v * 1e3, 3) for k, v in t.items()}


def _server_timing(timings_ms: dict[str, float], compress_s: float | None) -> str:
    parts = [f"{k};dur={v}" for k, v in timings_ms.items()]
    if compress_s is not None:
        parts.append(f"compress;dur={round(compress_s * 1e3, 3)}")
    return ", ".join(parts)


def row_diagnostics(job: Job, res: PassResult, row: int, timings_ms: dict) -> dict[str, Any]:
    """A row's ``diagnostics``: what the solve filled in, with the request's context."""
    diag = res.rows[row]
    return replace(
        diag,
        fast_phase=replace(diag.fast_phase, steps_requested=job.steps_requested),
        timings_ms=timings_ms,
        extrapolated=bool(job.extrapolated[row]),
        batch_size=res.pass_rows,
    ).to_json()


def answer_trust(job: Job, res: PassResult, row: int) -> dict[str, Any]:
    """The ``Trust`` of one answer as JSON: rung, error_estimate, within_tolerance and flags."""
    answer = res.rows[row].answer
    outside = job.outside[row] if job.outside else ()
    return Trust.of(answer.rung, float(res.estimate[row]), job.tolerance, outside, answer.escalation).to_json()


def _params(runtime: ModelRuntime, mu_row: np.ndarray) -> dict[str, float]:
    """A row of parameters by the names of the model's family."""
    return {k: float(v) for k, v in zip(runtime.family.params, mu_row)}


def _coefficients(runtime: ModelRuntime, res: PassResult, row: int) -> list[list[float]]:
    """A row's coefficients as the JSON gives them: one list per hidden layer."""
    return [part.tolist() for part in split_layers(res.coefficients[row], runtime.ranks)]
