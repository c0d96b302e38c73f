"""Python clients of the solve service: :class:`SolveClient` (sync) and :class:`AsyncSolveClient`.

    with SolveClient("http://127.0.0.1:8000", api_key="...") as client:
        res = client.solve({"beta": 2.0, "nu": 0.5, "rho": 1.0}, grid={"nx": 256, "nt": 100})
        res.u            # (nt, nx) float array, res.x (nx,), res.t (nt,)
        res.diagnostics  # timings, fast-phase figures

Both retry, with exponential backoff and jitter, on 503 (waiting as long as the server's
``Retry-After`` says, capped) and on connection failures (the solve is a pure function
of its input, so a retry is safe); every other error raises :class:`SolveError` carrying
the server's error code, message, field errors and request id. ``transport="npy"``
fetches fields as ``.npy`` bytes (smaller, exact float32) instead of JSON.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import httpx
import numpy as np

from service.version import __version__

NPY = "application/x-npy"
PARAM_NAMES = ("beta", "nu", "rho")
X_PERIOD = 2.0 * np.pi
RETRY_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                    httpx.WriteError, httpx.PoolTimeout)


class SolveError(Exception):
    """The service refused or failed a request."""

    def __init__(self, status: int, code: str, message: str, errors: list | None = None,
                 request_id: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status, self.code, self.message = status, code, message
        self.errors, self.request_id = errors or [], request_id


@dataclass
class SolveResult:
    """One solution. ``u``: (nt, nx) on a tensor grid, (P,) at points; ``coefficients``: s_l per layer."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    params: dict[str, float]
    coefficients: list[np.ndarray]
    model: dict
    extrapolated: bool
    diagnostics: dict
    request_id: str | None = None
    grid: str = "uniform"


@dataclass
class BatchResult:
    """Solutions of a batch: ``u`` (B, nt, nx) or (B, P); per-row items in ``results``."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    results: list[dict]
    model: dict
    timings_ms: dict = field(default_factory=dict)
    request_id: str | None = None
    grid: str = "uniform"

    @property
    def coefficients(self) -> list[list[np.ndarray]]:
        return [[np.asarray(c) for c in r.get("coefficients", [])] for r in self.results]


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


class _Base:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float = 60.0, connect_timeout: float = 5.0, retries: int = 3, backoff: float = 0.2,
                 max_backoff: float = 10.0, transport: str = "json", model: str | None = None,
                 rng: random.Random | None = None):
        if transport not in ("json", "npy"):
            raise ValueError(f"transport must be 'json' or 'npy', got {transport!r}")
        if retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff must be non-negative")
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.transport, self.model = transport, model
        self._rng = rng or random.Random()
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._headers = {"User-Agent": f"fastlrnr-client/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    # ---- request bodies
    def _body(self, params, grid, model, fast_phase, allow_extrapolation, batch: bool) -> dict:
        body: dict[str, Any] = {"params": [params_dict(p) for p in params] if batch else params_dict(params)}
        if model or self.model:
            body["model"] = model or self.model
        if grid is not None:
            body["grid"] = _jsonable(grid)
        if fast_phase is not None:
            body["fast_phase"] = _jsonable(fast_phase)
        if allow_extrapolation:
            body["allow_extrapolation"] = True
        return body

    def _accept(self, transport: str | None) -> dict:
        return {"Accept": NPY if (transport or self.transport) == "npy" else "application/json"}

    # ---- retries
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = _retry_after(response.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_backoff)
        base = min(self.backoff * (2 ** attempt), self.max_backoff)
        return base * (0.5 + 0.5 * self._rng.random())

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        return response.status_code == 503

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
        raise SolveError(response.status_code, str(data.get("error", "http_error")),
                         str(data.get("message", response.reason_phrase)), data.get("errors"),
                         data.get("request_id") or response.headers.get("x-request-id"))

    def _solve_result(self, response: httpx.Response, body: dict) -> SolveResult:
        self._raise_for(response)
        if response.headers.get("content-type", "").startswith(NPY):
            meta = json.loads(response.headers["x-solve-diagnostics"])
            u = _load_npy(response.content)
            x, t = _axes(meta["grid"], body.get("grid"), u.shape)
        else:
            meta = response.json()
            u = np.asarray(meta["u"], dtype=np.float64)
            x, t = np.asarray(meta["x"]), np.asarray(meta["t"])
        return SolveResult(u=u, x=x, t=t, params=meta["params"],
                           coefficients=[np.asarray(c) for c in meta["coefficients"]], model=meta["model"],
                           extrapolated=bool(meta["extrapolated"]), diagnostics=meta["diagnostics"],
                           request_id=meta.get("request_id"), grid=meta["grid"])

    def _batch_result(self, response: httpx.Response, body: dict) -> BatchResult:
        self._raise_for(response)
        if response.headers.get("content-type", "").startswith(NPY):
            meta = json.loads(response.headers["x-solve-diagnostics"])
            u = _load_npy(response.content)
            x, t = _axes(meta["grid"], body.get("grid"), u.shape[1:])
        else:
            meta = response.json()
            u = np.asarray([r.pop("u") for r in meta["results"]], dtype=np.float64)
            x, t = np.asarray(meta["x"]), np.asarray(meta["t"])
        return BatchResult(u=u, x=x, t=t, results=meta["results"], model=meta["model"],
                           timings_ms=meta.get("timings_ms", {}), request_id=meta.get("request_id"),
                           grid=meta["grid"])


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
    import io

    return np.load(io.BytesIO(data), allow_pickle=False)


def _axes(kind: str, grid: dict | None, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Axes of an npy response: rebuilt from the shape (uniform) or taken from the request."""
    if kind == "uniform":
        nt, nx = shape
        return X_PERIOD * np.arange(nx) / nx, np.linspace(0.0, 1.0, nt)
    if kind == "axes":
        return np.asarray(grid["x"], dtype=float), np.asarray(grid["t"], dtype=float)
    pts = np.asarray(grid["points"], dtype=float).reshape(-1, 2)
    return pts[:, 0], pts[:, 1]


class SolveClient(_Base):
    """Synchronous client (one connection pool; thread-safe as httpx.Client is)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs):
        http_client = kwargs.pop("http_client", None)
        super().__init__(base_url, **kwargs)
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=self._timeout,
                                                 headers=self._headers)
        if http_client is not None:
            self._http.headers.update(self._headers)

    def __enter__(self) -> "SolveClient":
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

    def solve(self, params, *, grid: Mapping | None = None, model: str | None = None,
              fast_phase: Mapping | None = None, allow_extrapolation: bool = False,
              transport: str | None = None) -> SolveResult:
        """Solve for one parameter set ({beta, nu, rho} or (beta, nu, rho))."""
        body = self._body(params, grid, model, fast_phase, allow_extrapolation, batch=False)
        response = self._request("POST", "/solve", json=body, headers=self._accept(transport))
        return self._solve_result(response, body)

    def solve_batch(self, params: Sequence, *, grid: Mapping | None = None, model: str | None = None,
                    fast_phase: Mapping | None = None, allow_extrapolation: bool = False,
                    transport: str | None = None) -> BatchResult:
        """Solve many parameter sets on one grid in one vectorised pass."""
        body = self._body(params, grid, model, fast_phase, allow_extrapolation, batch=True)
        response = self._request("POST", "/solve/batch", json=body, headers=self._accept(transport))
        return self._batch_result(response, body)

    def models(self) -> dict:
        response = self._request("GET", "/models")
        self._raise_for(response)
        return response.json()

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> None:
        """Block until /readyz answers 200; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base_url} not ready after {timeout} s")
            time.sleep(interval)


class AsyncSolveClient(_Base):
    """asyncio client; same methods as :class:`SolveClient`, awaitable."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", **kwargs):
        http_client = kwargs.pop("http_client", None)
        super().__init__(base_url, **kwargs)
        self._http = http_client or httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout,
                                                      headers=self._headers)
        if http_client is not None:
            self._http.headers.update(self._headers)

    async def __aenter__(self) -> "AsyncSolveClient":
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

    async def solve(self, params, *, grid: Mapping | None = None, model: str | None = None,
                    fast_phase: Mapping | None = None, allow_extrapolation: bool = False,
                    transport: str | None = None) -> SolveResult:
        body = self._body(params, grid, model, fast_phase, allow_extrapolation, batch=False)
        response = await self._request("POST", "/solve", json=body, headers=self._accept(transport))
        return self._solve_result(response, body)

    async def solve_batch(self, params: Sequence, *, grid: Mapping | None = None, model: str | None = None,
                          fast_phase: Mapping | None = None, allow_extrapolation: bool = False,
                          transport: str | None = None) -> BatchResult:
        body = self._body(params, grid, model, fast_phase, allow_extrapolation, batch=True)
        response = await self._request("POST", "/solve/batch", json=body, headers=self._accept(transport))
        return self._batch_result(response, body)

    async def models(self) -> dict:
        response = await self._request("GET", "/models")
        self._raise_for(response)
        return response.json()

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False
