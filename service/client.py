"""Python clients of the solve service: :class:`SolveClient` (sync) and :class:`AsyncSolveClient`.

    with SolveClient("http://127.0.0.1:8000", api_key="...") as client:
        res = client.solve({"beta": 2.0, "nu": 1.0, "rho": 1.0}, grid={"nx": 256, "nt": 100},
                           tolerance=0.02)
        res.u                 # (nt, nx) float array, res.x (nx,), res.t (nt,)
        res.error_estimate    # estimated relative L2 error; res.within_tolerance, res.flags
        res.diagnostics.fast_phase.accepted

Installed alone by ``pip install ".[client]"`` (httpx and numpy): this module imports neither
fastapi, pydantic, onnxruntime nor torch. Answers come back as the dataclasses below
(:class:`SolveResult`, :class:`BatchResult` of :class:`BatchItem`, :class:`Diagnostics`,
:class:`FastPhaseDiagnostics`, :class:`Flag`, :class:`ModelRef`), the response contract of
``service.schemas`` typed for Python.

Both clients retry, with exponential backoff and jitter, on 503 and 408 (waiting as long as the
server's ``Retry-After`` says, capped) and on connection failures (the solve is a pure
function of its input, so a retry is safe); every other error raises :class:`SolveError`
carrying the server's error code, message, field errors and request id. ``transport="npy"``
fetches fields as ``.npy`` bytes (smaller, exact float32) instead of JSON.

``solve_batch`` splits a batch larger than the server's limits (``max_batch_size``,
``max_batch_values``: the server's defaults unless given) into several requests, sent one
after another, and joins the answers in order; a 413 ``batch_too_large`` makes it lower its
limits and split further. ``solve_many`` sends many single solves with at most
``concurrency`` in flight. ``solve_sweep`` sends many parameter sets at the same sites as
binary ``.npz`` requests (``service.sweep_client``), split to the server's limits.

With a ``tolerance`` the server escalates an answer whose estimate is above it (finer
correction, then the reference solver) within ``time_budget_ms`` (a client setting; the
server's default when None); ``res.rung`` says what produced ``u``.
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import random
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np

from core.pde import PARAM_NAMES, uniform_grid
from service import sweep_client
from service.version import __version__

NPY = "application/x-npy"
NPZ_TYPE = sweep_client.NPZ
RETRY_EXCEPTIONS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.PoolTimeout,
)
# The server's documented defaults (FASTLRNR_MAX_BATCH_SIZE, FASTLRNR_MAX_BATCH_VALUES, the default grid).
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_BATCH_VALUES = 2_097_152
DEFAULT_GRID_VALUES = 256 * 100
_AT_MOST = re.compile(r"at most (\d+)")


class SolveError(Exception):
    """The service refused or failed a request (``status`` is the HTTP status; 0 for an
    inconsistency the client found itself, such as a split batch answered by two models)."""

    def __init__(self, status: int, code: str, message: str, errors: list | None = None, request_id: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status, self.code, self.message = status, code, message
        self.errors, self.request_id = errors or [], request_id


# ---------------------------------------------------------------------------- typed answers


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class ModelRef:
    """The model that answered: name, version and the sha256 of its manifest."""

    name: str
    version: str
    sha256: str

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelRef:
        return cls(str(d["name"]), str(d["version"]), str(d["sha256"]))


@dataclass(frozen=True)
class Flag:
    """Why an answer may not be trusted: ``code`` is ``estimate_above_tolerance`` or
    ``outside_served_domain`` (or a code a newer server adds)."""

    code: str
    message: str


def _flags(items) -> list[Flag]:
    return [Flag(str(f["code"]), str(f["message"])) for f in items or ()]


@dataclass(frozen=True)
class FastPhaseDiagnostics:
    """What the per-query fast phase did (``service.schemas.FastPhaseDiagnostics``).

    ``accepted``: the update was kept (else the hypernetwork's coefficients were returned);
    objectives are the optimiser's, residuals the RMS PDE residual of the full LRNR on the
    check grid; error proxies the linearised error that residual implies (``error_proxy_after``
    is what acceptance compares and the error estimate calibrates)."""

    enabled: bool
    backend: str | None
    optimizer: str | None
    steps_requested: int
    steps_run: int
    locality: float | None
    accepted: bool
    objective_before: float | None
    objective_after: float | None
    residual_before: float | None
    residual_after: float | None
    error_proxy_before: float | None = None
    error_proxy_after: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping) -> FastPhaseDiagnostics:
        return cls(
            enabled=bool(d["enabled"]),
            backend=d.get("backend"),
            optimizer=d.get("optimizer"),
            steps_requested=int(d["steps_requested"]),
            steps_run=int(d["steps_run"]),
            locality=_opt_float(d.get("locality")),
            accepted=bool(d["accepted"]),
            objective_before=_opt_float(d.get("objective_before")),
            objective_after=_opt_float(d.get("objective_after")),
            residual_before=_opt_float(d.get("residual_before")),
            residual_after=_opt_float(d.get("residual_after")),
            error_proxy_before=_opt_float(d.get("error_proxy_before")),
            error_proxy_after=_opt_float(d.get("error_proxy_after")),
        )


@dataclass
class Diagnostics:
    """Timings in ms (queue, hypernet, fast_phase, field, correction, encode, total), the fast
    phase, ``batch_size``: the rows solved in the same server pass, and ``correction``:
    whether the correction was added (``correction_applied``) and the two-grid difference its
    estimate calibrates (``two_grid_difference``); ``answer``: the rung that produced u, which
    stage produced the coefficients, and the escalation when a tolerance asked for it."""

    timings_ms: dict[str, float]
    fast_phase: FastPhaseDiagnostics
    extrapolated: bool
    batch_size: int
    correction_applied: bool = False
    two_grid_difference: float | None = None
    answer: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping) -> Diagnostics:
        corr = d.get("correction") or {}
        return cls(
            timings_ms={str(k): float(v) for k, v in d["timings_ms"].items()},
            fast_phase=FastPhaseDiagnostics.from_dict(d["fast_phase"]),
            extrapolated=bool(d["extrapolated"]),
            batch_size=int(d["batch_size"]),
            correction_applied=bool(corr.get("applied", False)),
            two_grid_difference=_opt_float(corr.get("two_grid_difference")),
            answer=dict(d.get("answer") or {}),
        )


@dataclass
class SolveResult:
    """One solution. ``u``: (nt, nx) on a tensor grid, (P,) at points; ``coefficients``: s_l per layer.

    ``error_estimate``: estimated relative L2 error against the true solution;
    ``within_tolerance``: whether it is at most the requested ``tolerance`` (None when none was
    given); ``flags``: reasons not to trust the answer (empty: none known)."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    params: dict[str, float]
    coefficients: list[np.ndarray]
    model: ModelRef
    error_estimate: float
    within_tolerance: bool | None
    flags: list[Flag]
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str | None = None
    grid: str = "uniform"
    rung: str = "corrected"


@dataclass
class BatchItem:
    """One row of a batch (its field is ``BatchResult.u[i]``). ``coefficients`` is None when the
    batch came as npy (the server does not send them then); ``request_id``: the request that
    solved this row (a split batch takes several)."""

    params: dict[str, float]
    coefficients: list[np.ndarray] | None
    error_estimate: float
    within_tolerance: bool | None
    flags: list[Flag]
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str | None = None
    rung: str = "corrected"


@dataclass
class BatchResult:
    """Solutions of a batch: ``u`` (B, nt, nx) or (B, P), rows in the order given; ``results[i]``
    describes row i. ``request_ids`` and ``timings_ms`` have one entry per request sent (more
    than one when the batch was split)."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    results: list[BatchItem]
    model: ModelRef
    grid: str = "uniform"
    request_ids: list[str | None] = field(default_factory=list)
    timings_ms: list[dict[str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def coefficients(self) -> list[list[np.ndarray] | None]:
        return [r.coefficients for r in self.results]


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class FastPhaseOptions:
    """The request's ``fast_phase``: ``enabled`` None = the server's policy (on for an
    uncorrected answer or when ``steps`` is given); ``steps`` None = the model's default, 0 = no adaptation;
    ``backend`` "exact" or "reduced" (None: the model's default); ``locality`` a weight ≥ 0 or
    "auto". A plain mapping with the same keys works as well."""

    enabled: bool | None = None
    steps: int | None = None
    backend: Literal["exact", "reduced"] | None = None
    locality: float | Literal["auto"] = "auto"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.enabled is not None:
            out["enabled"] = bool(self.enabled)
        if self.steps is not None:
            out["steps"] = int(self.steps)
        if self.backend is not None:
            out["backend"] = self.backend
        if self.locality != "auto":
            out["locality"] = float(self.locality)
        return out


def params_dict(params: Mapping[str, float] | Sequence[float] | np.ndarray) -> dict[str, float]:
    """{beta, nu, rho} from a mapping or a length-3 sequence in that order."""
    if isinstance(params, Mapping):
        return {str(k): float(v) for k, v in params.items()}
    values = np.asarray(params, dtype=float).ravel()
    if values.shape != (3,):
        raise ValueError(f"expected 3 parameters (beta, nu, rho), got shape {values.shape}")
    return dict(zip(PARAM_NAMES, map(float, values)))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _grid_values(grid: Mapping | None) -> int:
    """Field values a grid asks for (the server's ``Grid.size``); a malformed grid counts as 1
    and is left to the server to refuse."""
    if grid is None:
        return DEFAULT_GRID_VALUES
    try:
        if "nx" in grid or "nt" in grid:
            return max(1, int(grid["nx"]) * int(grid["nt"]))
        if "x" in grid or "t" in grid:
            return max(1, len(grid["x"]) * len(grid["t"]))
        return max(1, len(grid["points"]))
    except (KeyError, TypeError, ValueError):
        return 1


class _Base:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        transport: str = "json",
        model: str | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_values: int = DEFAULT_MAX_BATCH_VALUES,
        rng: random.Random | None = None,
        time_budget_ms: int | None = None,
    ):
        if transport not in ("json", "npy"):
            raise ValueError(f"transport must be 'json' or 'npy', got {transport!r}")
        if retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff must be non-negative")
        if max_batch_size < 1 or max_batch_values < 1:
            raise ValueError("max_batch_size and max_batch_values must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.transport, self.model = transport, model
        self.max_batch_size, self.max_batch_values = int(max_batch_size), int(max_batch_values)
        self.time_budget_ms = None if time_budget_ms is None else int(time_budget_ms)
        self._rng = rng or random.Random()
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._headers = {"User-Agent": f"fastlrnr-client/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    # ---- request bodies
    def _body(
        self, params, grid, model, fast_phase, tolerance, allow_extrapolation, batch: bool, correction=None
    ) -> dict:
        body: dict[str, Any] = {"params": [params_dict(p) for p in params] if batch else params_dict(params)}
        if model or self.model:
            body["model"] = model or self.model
        if grid is not None:
            body["grid"] = _strict_ints(_jsonable(grid), ("nx", "nt"))
        if fast_phase is not None:
            body["fast_phase"] = _strict_ints(
                fast_phase.to_dict() if isinstance(fast_phase, FastPhaseOptions) else _jsonable(fast_phase),
                ("steps", "epochs"),
            )
        if allow_extrapolation:
            body["allow_extrapolation"] = True
        if tolerance is not None:
            body["tolerance"] = float(tolerance)
            if self.time_budget_ms is not None:
                body["time_budget_ms"] = self.time_budget_ms
        if correction is not None:
            body["correction"] = bool(correction)
        return body

    def _accept(self, transport: str | None) -> dict:
        return {"Accept": NPY if (transport or self.transport) == "npy" else "application/json"}

    # ---- retries
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = _retry_after(response.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_backoff)
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return base * (0.5 + 0.5 * self._rng.random())

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        """503: the server is full; 408: the body did not arrive in time (a retry is safe: a
        solve is a pure function of its input)."""
        return response.status_code in (408, 503)

    # ---- batches
    def _chunk_size(self, grid: Mapping | None) -> int:
        return max(1, min(self.max_batch_size, self.max_batch_values // _grid_values(grid)))

    def _smaller_chunk(self, response: httpx.Response, size: int, grid: Mapping | None) -> int | None:
        """After a 413 ``batch_too_large`` for ``size`` rows: lower the limits (to those the error
        states, else by half) and return the new chunk size; None when there is nothing to split."""
        if response.status_code != 413 or size <= 1:
            return None
        try:
            data = response.json()
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("error") != "batch_too_large":
            return None
        for err in data.get("errors") or ():
            loc, found = err.get("loc") or [None], _AT_MOST.search(str(err.get("msg", "")))
            if found and loc[-1] == "params":
                self.max_batch_size = max(1, min(self.max_batch_size, int(found.group(1))))
            elif found and loc[-1] == "grid":
                self.max_batch_values = max(1, min(self.max_batch_values, int(found.group(1))))
        new = self._chunk_size(grid)
        if new >= size:  # the error named no limit this client understands: halve
            new = (size + 1) // 2
            self.max_batch_size = min(self.max_batch_size, new)
        return new

    # ---- responses
    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
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

    def _solve_result(self, response: httpx.Response, body: dict) -> SolveResult:
        self._raise_for(response)
        if response.headers.get("content-type", "").startswith(NPY):
            meta = json.loads(response.headers["x-solve-diagnostics"])
            u = _load_npy(response.content)
            x, t = _axes(meta["grid"], body.get("grid"), u.shape)
        else:
            meta = response.json()
            u = np.asarray(meta["u"], dtype=np.float64)
            x, t = np.asarray(meta["x"], dtype=np.float64), np.asarray(meta["t"], dtype=np.float64)
        return SolveResult(
            u=u,
            x=x,
            t=t,
            params=meta["params"],
            coefficients=[np.asarray(c) for c in meta["coefficients"]],
            model=ModelRef.from_dict(meta["model"]),
            error_estimate=float(meta["error_estimate"]),
            within_tolerance=meta.get("within_tolerance"),
            flags=_flags(meta.get("flags")),
            extrapolated=bool(meta["extrapolated"]),
            diagnostics=Diagnostics.from_dict(meta["diagnostics"]),
            request_id=meta.get("request_id"),
            grid=meta["grid"],
            rung=meta.get("rung", "corrected"),
        )

    def _batch_part(self, response: httpx.Response, body: dict) -> BatchResult:
        """One /solve/batch answer. As npy, the server sends per row only the fast-phase
        diagnostics (the request's timings are shared, every row was in the one pass)."""
        self._raise_for(response)
        if response.headers.get("content-type", "").startswith(NPY):
            meta = json.loads(response.headers["x-solve-diagnostics"])
            u = _load_npy(response.content)
            x, t = _axes(meta["grid"], body.get("grid"), u.shape[1:])
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
                params=r["params"],
                coefficients=[np.asarray(c) for c in r["coefficients"]] if "coefficients" in r else None,
                error_estimate=float(r["error_estimate"]),
                within_tolerance=r.get("within_tolerance"),
                flags=_flags(r.get("flags")),
                extrapolated=bool(r["extrapolated"]),
                diagnostics=Diagnostics.from_dict(r["diagnostics"]),
                request_id=rid,
                rung=r.get("rung", "corrected"),
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

    def _batch_rows(self, params: Sequence) -> list[dict]:
        rows = [params_dict(p) for p in params]
        if not rows:
            raise ValueError("solve_batch needs at least one parameter set")
        return rows


def _join(parts: list[BatchResult]) -> BatchResult:
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


def _strict_ints(d, keys: tuple[str, ...]):
    """The server takes integers strictly: send integral floats (256.0) of ``keys`` as ints."""
    if not isinstance(d, dict):
        return d
    out = dict(d)
    for k in keys:
        v = out.get(k)
        if isinstance(v, float) and v.is_integer():
            out[k] = int(v)
    return out


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _axes(kind: str, grid: Mapping | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Axes of an npy response: rebuilt from the shape (uniform, as the server builds them) or
    taken from the request."""
    if kind == "uniform":
        nt, nx = shape
        return uniform_grid(nx, nt)
    if kind == "axes":
        return np.asarray(grid["x"], dtype=float), np.asarray(grid["t"], dtype=float)
    pts = np.asarray(grid["points"], dtype=float).reshape(-1, 2)
    return pts[:, 0], pts[:, 1]


def _check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")


class SolveClient(_Base):
    """Synchronous client (one connection pool; thread-safe as httpx.Client is)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs):
        http_client = kwargs.pop("http_client", None)
        super().__init__(base_url, **kwargs)
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=self._timeout, headers=self._headers)
        if http_client is not None:
            self._http.headers.update(self._headers)

    def __enter__(self) -> SolveClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, url, **kwargs)
            except RETRY_EXCEPTIONS:
                if attempt == self.retries:
                    raise
                time.sleep(self._delay(attempt, None))
                continue
            if self._retryable(response) and attempt < self.retries:
                time.sleep(self._delay(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")

    def solve(
        self,
        params,
        *,
        grid: Mapping | None = None,
        model: str | None = None,
        fast_phase: FastPhaseOptions | Mapping | None = None,
        tolerance: float | None = None,
        allow_extrapolation: bool = False,
        correction: bool | None = None,
        transport: str | None = None,
    ) -> SolveResult:
        """Solve for one parameter set ({beta, nu, rho} or (beta, nu, rho)); ``correction``:
        add the linearised correction (None: the model's default, see ``models()``)."""
        body = self._body(
            params, grid, model, fast_phase, tolerance, allow_extrapolation, batch=False, correction=correction
        )
        response = self._request("POST", "/solve", json=body, headers=self._accept(transport))
        return self._solve_result(response, body)

    def solve_batch(
        self,
        params: Sequence,
        *,
        grid: Mapping | None = None,
        model: str | None = None,
        fast_phase: FastPhaseOptions | Mapping | None = None,
        tolerance: float | None = None,
        allow_extrapolation: bool = False,
        correction: bool | None = None,
        transport: str | None = None,
    ) -> BatchResult:
        """Solve many parameter sets on one grid: one vectorised pass per request, as many
        requests (one after another) as the server's batch limits need."""
        rows, parts = self._batch_rows(params), []
        size, lo = self._chunk_size(grid), 0
        while lo < len(rows):
            body = self._body(
                rows[lo : lo + size],
                grid,
                model,
                fast_phase,
                tolerance,
                allow_extrapolation,
                batch=True,
                correction=correction,
            )
            response = self._request("POST", "/solve/batch", json=body, headers=self._accept(transport))
            smaller = self._smaller_chunk(response, len(body["params"]), grid)
            if smaller is not None:
                size = smaller
                continue
            parts.append(self._batch_part(response, body))
            lo += len(body["params"])
        return _join(parts)

    def solve_sweep(
        self,
        params,
        *,
        points=None,
        x=None,
        t=None,
        model: str | None = None,
        tolerance: float | None = None,
        time_budget_ms: int | None = None,
        correction: bool = False,
        allow_extrapolation: bool = False,
        body_bytes: int = sweep_client.DEFAULT_BODY_BYTES,
    ) -> sweep_client.SweepResult:
        """Many parameter sets (B, 3) at the same sites (``points`` (P, 2), or the axes ``x``,
        ``t``) through ``POST /solve/sweep``: binary, split into requests that fit the server's
        body (``body_bytes``) and answer limits, answers joined in order."""
        arrays, n = sweep_client.sites(points, x, t)
        q = sweep_client.query(model or self.model, tolerance, time_budget_ms, correction, allow_extrapolation)
        parts = []
        for body in sweep_client.requests(params, arrays, n, body_bytes):
            r = self._request("POST", "/solve/sweep", content=body, params=q, headers={"Content-Type": NPZ_TYPE})
            self._raise_for(r)
            parts.append(sweep_client.parse(r.content, r.headers))
        return sweep_client.join(parts)

    def solve_many(
        self,
        params: Iterable,
        *,
        concurrency: int = 4,
        return_exceptions: bool = False,
        grid: Mapping | None = None,
        model: str | None = None,
        fast_phase: FastPhaseOptions | Mapping | None = None,
        tolerance: float | None = None,
        allow_extrapolation: bool = False,
        correction: bool | None = None,
        transport: str | None = None,
    ) -> list:
        """One ``solve`` per parameter set, at most ``concurrency`` in flight (threads sharing
        this client's connections); results in the order of ``params``.

        ``return_exceptions=False``: the first failure is raised once the solves in flight have
        finished, and those not yet sent are dropped. ``True``: a failed solve's exception
        (e.g. :class:`SolveError`) takes its place in the list and the others go on."""
        _check_concurrency(concurrency)
        items = list(params)
        if not items:
            return []
        kw = dict(
            grid=grid,
            model=model,
            fast_phase=fast_phase,
            tolerance=tolerance,
            allow_extrapolation=allow_extrapolation,
            correction=correction,
            transport=transport,
        )
        stop = threading.Event()  # set by the first failure when it is to be raised: send nothing more

        def one(p):
            if stop.is_set():
                return None
            try:
                return self.solve(p, **kw)
            except Exception:
                if not return_exceptions:
                    stop.set()
                raise

        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix="solve-many")
        try:
            futures: list[Future] = [pool.submit(one, p) for p in items]
            if not return_exceptions:
                wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in futures if f.done() and not f.cancelled() and f.exception()), None)
                if failed is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise failed.exception()
            return (
                [f.exception() or f.result() for f in futures] if return_exceptions else [f.result() for f in futures]
            )
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def models(self) -> dict:
        response = self._request("GET", "/models")
        self._raise_for(response)
        return response.json()

    def ready(self, timeout: float | None = None) -> bool:
        """Whether GET /readyz answers 200 (False on 503 or no connection)."""
        try:
            kw = {} if timeout is None else {"timeout": timeout}
            return self._http.get("/readyz", **kw).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll /readyz until it answers 200; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.ready(timeout=max(1e-3, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.base_url} not ready after {timeout} s")
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


class AsyncSolveClient(_Base):
    """asyncio client; same methods as :class:`SolveClient`, awaitable."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs):
        http_client = kwargs.pop("http_client", None)
        super().__init__(base_url, **kwargs)
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url, timeout=self._timeout, headers=self._headers
        )
        if http_client is not None:
            self._http.headers.update(self._headers)

    async def __aenter__(self) -> AsyncSolveClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.request(method, url, **kwargs)
            except RETRY_EXCEPTIONS:
                if attempt == self.retries:
                    raise
                await asyncio.sleep(self._delay(attempt, None))
                continue
            if self._retryable(response) and attempt < self.retries:
                await asyncio.sleep(self._delay(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")

    async def solve(
        self,
        params,
        *,
        grid: Mapping | None = None,
        model: str | None = None,
        fast_phase: FastPhaseOptions | Mapping | None = None,
        tolerance: float | None = None,
        allow_extrapolation: bool = False,
        correction: bool | None = None,
        transport: str | None = None,
    ) -> SolveResult:
        body = self._body(
            params, grid, model, fast_phase, tolerance, allow_extrapolation, batch=False, correction=correction
        )
        response = await self._request("POST", "/solve", json=body, headers=self._accept(transport))
        return self._solve_result(response, body)

    async def solve_batch(
        self,
        params: Sequence,
        *,
        grid: Mapping | None = None,
        model: str | None = None,
        fast_phase: FastPhaseOptions | Mapping | None = None,
        tolerance: float | None = None,
        allow_extrapolation: bool = False,
        correction: bool | None = None,
        transport: str | None = None,
    ) -> BatchResult:
        rows, parts = self._batch_rows(params), []
        size, lo = self._chunk_size(grid), 0
        while lo < len(rows):
            body = self._body(
                rows[lo : lo + size],
                grid,
                model,
                fast_phase,
                tolerance,
                allow_extrapolation,
                batch=True,
                correction=correction,
            )
            response = await self._request("POST", "/solve/batch", json=body, headers=self._accept(transport))
            smaller = self._smaller_chunk(response, len(body["params"]), grid)
            if smaller is not None:
                size = smaller
                continue
            parts.append(self._batch_part(response, body))
            lo += len(body["params"])
        return _join(parts)

    async def solve_sweep(
        self,
        params,
        *,
        points=None,
        x=None,
        t=None,
        model: str | None = None,
        tolerance: float | None = None,
        time_budget_ms: int | None = None,
        correction: bool = False,
        allow_extrapolation: bool = False,
        body_bytes: int = sweep_client.DEFAULT_BODY_BYTES,
    ) -> sweep_client.SweepResult:
        """As :meth:`SolveClient.solve_sweep`."""
        arrays, n = sweep_client.sites(points, x, t)
        q = sweep_client.query(model or self.model, tolerance, time_budget_ms, correction, allow_extrapolation)
        parts = []
        for body in sweep_client.requests(params, arrays, n, body_bytes):
            r = await self._request("POST", "/solve/sweep", content=body, params=q, headers={"Content-Type": NPZ_TYPE})
            self._raise_for(r)
            parts.append(sweep_client.parse(r.content, r.headers))
        return sweep_client.join(parts)

    async def solve_many(
        self,
        params: Iterable,
        *,
        concurrency: int = 4,
        return_exceptions: bool = False,
        grid: Mapping | None = None,
        model: str | None = None,
        fast_phase: FastPhaseOptions | Mapping | None = None,
        tolerance: float | None = None,
        allow_extrapolation: bool = False,
        correction: bool | None = None,
        transport: str | None = None,
    ) -> list:
        """As :meth:`SolveClient.solve_many`, on ``concurrency`` tasks; with
        ``return_exceptions=False`` the first failure cancels the solves in flight and is raised."""
        _check_concurrency(concurrency)
        items = list(params)
        out: list = [None] * len(items)
        indices = iter(range(len(items)))  # shared: each index is taken by exactly one worker
        kw = dict(
            grid=grid,
            model=model,
            fast_phase=fast_phase,
            tolerance=tolerance,
            allow_extrapolation=allow_extrapolation,
            correction=correction,
            transport=transport,
        )

        async def worker() -> None:
            for i in indices:
                try:
                    out[i] = await self.solve(items[i], **kw)
                except Exception as exc:
                    if not return_exceptions:
                        raise
                    out[i] = exc

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return out

    async def models(self) -> dict:
        response = await self._request("GET", "/models")
        self._raise_for(response)
        return response.json()

    async def ready(self, timeout: float | None = None) -> bool:
        """Whether GET /readyz answers 200 (False on 503 or no connection)."""
        try:
            kw = {} if timeout is None else {"timeout": timeout}
            return (await self._http.get("/readyz", **kw)).status_code == 200
        except httpx.TransportError:
            return False

    async def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll /readyz until it answers 200; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not await self.ready(timeout=max(1e-3, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.base_url} not ready after {timeout} s")
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
