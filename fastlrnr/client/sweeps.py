"""The client side of ``POST /solve/sweep`` (sans I/O): options, request parts, answer parsing
and the plan that strings them together.

``SolveClient.solve_sweep`` and ``AsyncSolveClient.solve_sweep`` run :func:`sweep`: one request
per chunk of rows, the answers joined with :func:`join`. A chunk is as large as the server's body
and answer limits allow; a chunk the server predicts will not fit its time budget (422
``over_time_budget``) is sent again in halves, and when the server answers only the first rows of
a chunk (its budget ran out: the rest come back ``solved`` false) the rest are sent again, in
chunks of as many rows as it did answer.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from fastlrnr.client.answers import raise_for
from fastlrnr.client.options import Plan, Request
from fastlrnr.client.plans import ClientConfig, send
from fastlrnr.client.results import SolveError

NPZ = "application/x-npz"
MAX_VALUES = 1 << 24  # the server's answer limit (values per request), see fastlrnr/server/api/sweep.py
DEFAULT_BODY_BYTES = 1 << 20  # the server's default body limit


@dataclass
class SweepResult:
    """Answers for B parameter sets at the same sites: ``u`` (B, P) at points or (B, nt, nx)
    on axes; per row ``error_estimate``, ``within_tolerance`` (None without a tolerance),
    ``rung`` (surrogate, corrected or reference), ``extrapolated``, ``time_budget_exhausted``;
    ``model`` {name, version, sha256}; ``requests``: how many requests it took; ``solved``: per
    row, whether it was solved (a joined sweep's rows all are)."""

    u: np.ndarray
    error_estimate: np.ndarray
    within_tolerance: np.ndarray | None
    rung: np.ndarray
    extrapolated: np.ndarray
    time_budget_exhausted: np.ndarray
    model: dict
    requests: int = 1
    solved: np.ndarray | None = None  # per row (None from a server that solves every row)


@dataclass(frozen=True)
class SweepOptions:
    """The keyword options of ``solve_sweep``: the sites (``points`` (P, 2), or the axes ``x``
    and ``t``), the query and ``body_bytes``, the most one request's body may take."""

    points: Any = None
    x: Any = None
    t: Any = None
    model: str | None = None
    tolerance: float | None = None
    time_budget_ms: int | None = None
    correction: bool = False
    allow_extrapolation: bool = False
    body_bytes: int = DEFAULT_BODY_BYTES


class SweepKwargs(TypedDict, total=False):
    """:class:`SweepOptions` as keyword arguments, for type checkers (``Unpack[SweepKwargs]``)."""

    points: Any
    x: Any
    t: Any
    model: str | None
    tolerance: float | None
    time_budget_ms: int | None
    correction: bool
    allow_extrapolation: bool
    body_bytes: int


def sweep(cfg: ClientConfig, params, o: SweepOptions) -> Plan[SweepResult]:
    """``POST /solve/sweep`` requests, one after another, each within the server's body and
    answer limits (halved on a 422 ``over_time_budget``; the rows a request left unsolved sent
    again); the answers joined in order."""
    arrays, n = sites(o.points, o.x, o.t)
    q = query(o.model or cfg.model, o.tolerance, o.time_budget_ms, o.correction, o.allow_extrapolation)
    mu = param_rows(params)
    size, lo, parts = rows_per_request(arrays, n, o.body_bytes), 0, []
    while lo < len(mu):
        body = archive(mu[lo : lo + size], arrays)
        request = Request("POST", "/solve/sweep", {"content": body, "params": q, "headers": {"Content-Type": NPZ}})
        response = yield from send(cfg, request)
        sent = min(size, len(mu) - lo)
        if response.status_code == 422 and _code(response) == "over_time_budget" and sent > 1:
            size = max(1, sent // 2)
            continue
        raise_for(response)
        part = parse(response.content, response.headers)
        done = solved_rows(part)
        if done == 0:
            raise SolveError(0, "unsolved", "the server answered no row of the sweep's next part", None, None)
        parts.append(take(part, done))
        lo += done
        if done < sent:
            size = done
    return join(parts)


def _code(response) -> str | None:
    try:
        return response.json().get("error")
    except (ValueError, AttributeError):
        return None


def param_rows(params) -> np.ndarray:
    """The parameter sets as (B, 3) float64 rows."""
    mu = np.asarray(params, dtype=np.float64).reshape(-1, 3)
    if len(mu) == 0:
        raise ValueError("solve_sweep needs at least one parameter set")
    return mu


def rows_per_request(site_arrays: dict[str, np.ndarray], n_sites: int, body_bytes: int = DEFAULT_BODY_BYTES) -> int:
    """Rows of one request within the body limit and the answer limit."""
    site_bytes = sum(a.nbytes for a in site_arrays.values()) + 1024  # + the archive's headers
    return max(1, min((body_bytes - site_bytes) // 24, MAX_VALUES // max(1, n_sites)))


def archive(mu: np.ndarray, site_arrays: dict[str, np.ndarray]) -> bytes:
    """One request's .npz body."""
    buf = io.BytesIO()
    np.savez(buf, params=mu, **site_arrays)
    return buf.getvalue()


def solved_rows(part: SweepResult) -> int:
    """How many leading rows of an answer the server solved (it solves them in order)."""
    if part.solved is None or part.solved.all():
        return len(part.u)
    return int(np.argmin(part.solved))


def take(part: SweepResult, n: int) -> SweepResult:
    """The first ``n`` rows of an answer."""
    if n == len(part.u):
        return part
    return SweepResult(
        u=part.u[:n],
        error_estimate=part.error_estimate[:n],
        within_tolerance=None if part.within_tolerance is None else part.within_tolerance[:n],
        rung=part.rung[:n],
        extrapolated=part.extrapolated[:n],
        time_budget_exhausted=part.time_budget_exhausted[:n],
        model=part.model,
        requests=part.requests,
        solved=part.solved[:n] if part.solved is not None else None,
    )


def sites(points=None, x=None, t=None) -> tuple[dict[str, np.ndarray], int]:
    """The archive's site arrays and their count: ``points`` (P, 2), or the axes ``x``, ``t``."""
    if (points is None) == (x is None and t is None) or (points is None and (x is None or t is None)):
        raise ValueError("give points (P, 2), or both axes x and t")
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return {"points": pts}, len(pts)
    xs, ts = np.asarray(x, dtype=np.float64).ravel(), np.asarray(t, dtype=np.float64).ravel()
    return {"x": xs, "t": ts}, xs.size * ts.size


def requests(
    params, site_arrays: dict[str, np.ndarray], n_sites: int, body_bytes: int = DEFAULT_BODY_BYTES
) -> Iterator[bytes]:
    """The .npz bodies of a sweep, each within the body and answer limits."""
    mu = param_rows(params)
    rows = rows_per_request(site_arrays, n_sites, body_bytes)
    for lo in range(0, len(mu), rows):
        yield archive(mu[lo : lo + rows], site_arrays)


def query(model, tolerance, time_budget_ms, correction, allow_extrapolation) -> dict:
    """The sweep's query string (the options travel there; the body is the archive)."""
    q: dict = {}
    if model:
        q["model"] = model
    if tolerance is not None:
        q["tolerance"] = float(tolerance)
    if time_budget_ms is not None:
        q["time_budget_ms"] = int(time_budget_ms)
    if correction:
        q["correction"] = "true"
    if allow_extrapolation:
        q["allow_extrapolation"] = "true"
    return q


def parse(content: bytes, headers) -> SweepResult:
    """One answer archive (and its model headers) as a :class:`SweepResult`."""
    with np.load(io.BytesIO(content), allow_pickle=False) as z:
        within = z["within_tolerance"]
        return SweepResult(
            u=z["u"],
            error_estimate=z["error_estimate"],
            within_tolerance=None if np.all(within < 0) else within.astype(bool),
            rung=z["rung"],
            extrapolated=z["extrapolated"],
            time_budget_exhausted=z["time_budget_exhausted"],
            solved=z["solved"] if "solved" in z.files else None,
            model={
                "name": headers.get("x-model"),
                "version": headers.get("x-model-version"),
                "sha256": headers.get("x-model-sha256"),
            },
        )


def join(parts: list[SweepResult]) -> SweepResult:
    """The chunks' answers as one, rows in the order given."""
    if len({p.model["sha256"] for p in parts}) > 1:
        raise ValueError("a split sweep was answered by two model versions; solve it again")
    within = [p.within_tolerance for p in parts]
    return SweepResult(
        u=np.concatenate([p.u for p in parts]),
        error_estimate=np.concatenate([p.error_estimate for p in parts]),
        within_tolerance=None if within[0] is None else np.concatenate(within),
        rung=np.concatenate([p.rung for p in parts]),
        extrapolated=np.concatenate([p.extrapolated for p in parts]),
        time_budget_exhausted=np.concatenate([p.time_budget_exhausted for p in parts]),
        model=parts[0].model,
        requests=len(parts),
        solved=None if any(p.solved is None for p in parts) else np.concatenate([p.solved for p in parts]),
    )
