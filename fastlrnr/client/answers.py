"""What the client makes of the server's answers (sans I/O): typed results, errors, joining.

Each function takes an ``httpx.Response`` (built by a shell from the wire, or by a test from
a literal) and the body that was sent; none sends anything.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import httpx
import numpy as np

from fastlrnr.client.options import NPY
from fastlrnr.client.results import BatchItem, BatchResult, Diagnostics, ModelRef, SolveError, SolveResult
from fastlrnr.numerics.answer import Trust
from fastlrnr.numerics.grid import uniform_grid


def raise_for(response: httpx.Response) -> None:
    """:class:`SolveError` for a 4xx/5xx answer, with the server's code, message, field errors
    and request id."""
    if response.status_code < 400:
        return
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    raise SolveError(
        response.status_code,
        str(data.get("error", "http_error")),
        str(data.get("message", response.reason_phrase)),
        data.get("errors"),
        data.get("request_id") or response.headers.get("x-request-id"),
    )


def is_npy(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith(NPY)


def solve_result(response: httpx.Response, body: dict) -> SolveResult:
    """A ``/solve`` answer (JSON or npy) as a :class:`SolveResult`."""
    raise_for(response)
    if is_npy(response):
        meta = json.loads(response.headers["x-solve-diagnostics"])
        u = load_npy(response.content)
        x, t = axes(meta["grid"], body.get("grid"), u.shape)
    else:
        meta = response.json()
        u = np.asarray(meta["u"], dtype=np.float64)
        x, t = np.asarray(meta["x"], dtype=np.float64), np.asarray(meta["t"], dtype=np.float64)
    return SolveResult(
        **vars(Trust.from_json(meta)),
        u=u,
        x=x,
        t=t,
        params=meta["params"],
        coefficients=[np.asarray(c) for c in meta["coefficients"]],
        model=ModelRef.from_dict(meta["model"]),
        extrapolated=bool(meta["extrapolated"]),
        diagnostics=Diagnostics.from_json(meta["diagnostics"]),
        request_id=meta.get("request_id"),
        grid=meta["grid"],
    )


def batch_part(response: httpx.Response, body: dict) -> BatchResult:
    """One /solve/batch answer. As npy, the server sends per row only the fast-phase
    diagnostics (the request's timings are shared, every row was in the one pass)."""
    raise_for(response)
    if is_npy(response):
        meta = json.loads(response.headers["x-solve-diagnostics"])
        u = load_npy(response.content)
        x, t = axes(meta["grid"], body.get("grid"), u.shape[1:])
        timings, rows = meta.get("timings_ms", {}), meta["results"]
        for r in rows:
            r["diagnostics"] = {
                "timings_ms": timings,
                "fast_phase": r["fast_phase"],
                "extrapolated": r["extrapolated"],
                "batch_size": len(rows),
            }
    else:
        meta = response.json()
        rows = meta["results"]
        u = np.asarray([r.pop("u") for r in rows], dtype=np.float64)
        x, t = np.asarray(meta["x"], dtype=np.float64), np.asarray(meta["t"], dtype=np.float64)
    rid = meta.get("request_id")
    items = [
        BatchItem(
            **vars(Trust.from_json(r)),
            params=r["params"],
            coefficients=[np.asarray(c) for c in r["coefficients"]] if "coefficients" in r else None,
            extrapolated=bool(r["extrapolated"]),
            diagnostics=Diagnostics.from_json(r["diagnostics"]),
            request_id=rid,
        )
        for r in rows
    ]
    return BatchResult(
        u=u,
        x=x,
        t=t,
        results=items,
        model=ModelRef.from_dict(meta["model"]),
        grid=meta["grid"],
        request_ids=[rid],
        timings_ms=[meta.get("timings_ms", {})],
    )


def join(parts: list[BatchResult]) -> BatchResult:
    """The answers to the chunks of one batch, as one answer in the original order."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    for p in parts[1:]:
        if p.model != first.model:
            raise SolveError(
                0,
                "model_changed",
                f"a split batch was answered by two models ({first.model} and {p.model}); solve it again",
                request_id=p.request_ids[0],
            )
    return BatchResult(
        u=np.concatenate([p.u for p in parts]),
        x=first.x,
        t=first.t,
        results=[r for p in parts for r in p.results],
        model=first.model,
        grid=first.grid,
        request_ids=[i for p in parts for i in p.request_ids],
        timings_ms=[tm for p in parts for tm in p.timings_ms],
    )


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def axes(kind: str, grid: Mapping | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Axes of an npy response: rebuilt from the shape (uniform, as the server builds them) or
    taken from the request."""
    if kind == "uniform":
        nt, nx = shape
        return uniform_grid(nx, nt)
    if kind == "axes":
        return np.asarray(grid["x"], dtype=float), np.asarray(grid["t"], dtype=float)
    pts = np.asarray(grid["points"], dtype=float).reshape(-1, 2)
    return pts[:, 0], pts[:, 1]
