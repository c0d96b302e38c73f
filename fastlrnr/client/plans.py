"""The client's logic without I/O: its settings, retries, and each call as a plan.

A plan is a generator (``client_requests.Plan``): it yields a :class:`Request` and is sent the
response (or thrown the exception sending it raised), yields a :class:`Sleep` and is sent None,
and returns the answer. :func:`send` is one request with retries and backoff; :func:`solve`,
:func:`batch` (split to the server's limits, shrunk on a 413 ``batch_too_large``, joined),
:func:`models`, :func:`ready` and :func:`wait_ready` are the methods of both clients, which only
send, sleep and await (``fastlrnr.client.clients``). The sweep's plan is ``fastlrnr.client.sweeps.sweep``.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Mapping, Sequence

import httpx

from fastlrnr.client import answers
from fastlrnr.client.options import Plan, Request, Sleep, SolveOptions, accept, grid_values, params_dict, solve_body
from fastlrnr.client.results import BatchResult, SolveResult
from fastlrnr.version import __version__

RETRY_EXCEPTIONS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.PoolTimeout,
)
# The server's documented defaults (FASTLRNR_MAX_BATCH_SIZE, FASTLRNR_MAX_BATCH_VALUES).
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_BATCH_VALUES = 2_097_152
_AT_MOST = re.compile(r"at most (\d+)")


class ClientConfig:
    """A client's settings, and the batch limits it learns from the server's 413s."""

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


def delay(cfg: ClientConfig, attempt: int, response: httpx.Response | None) -> float:
    """Seconds before retry ``attempt + 1``: the server's ``Retry-After`` (capped), else
    exponential backoff with jitter."""
    if response is not None:
        after = retry_after(response.headers.get("retry-after"))
        if after is not None:
            return min(after, cfg.max_backoff)
    base = min(cfg.backoff * (2**attempt), cfg.max_backoff)
    return base * (0.5 + 0.5 * cfg._rng.random())


def chunk_size(cfg: ClientConfig, grid: Mapping | None) -> int:
    """Rows per /solve/batch request on ``grid`` within the limits known."""
    return max(1, min(cfg.max_batch_size, cfg.max_batch_values // grid_values(grid)))


def smaller_chunk(cfg: ClientConfig, response: httpx.Response, size: int, grid: Mapping | None) -> int | None:
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
            cfg.max_batch_size = max(1, min(cfg.max_batch_size, int(found.group(1))))
        elif found and loc[-1] == "grid":
            cfg.max_batch_values = max(1, min(cfg.max_batch_values, int(found.group(1))))
    new = chunk_size(cfg, grid)
    if new >= size:  # the error named no limit this client understands: halve
        new = (size + 1) // 2
        cfg.max_batch_size = min(cfg.max_batch_size, new)
    return new


def retryable(response: httpx.Response) -> bool:
    """503: the server is full; 408: the body did not arrive in time (a retry is safe: a
    solve is a pure function of its input)."""
    return response.status_code in (408, 503)


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delta or HTTP date); None when absent or unreadable."""
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


def send(cfg: ClientConfig, request: Request) -> Plan[httpx.Response]:
    """``request``, again after a backoff on 503, 408 or a connection failure, at most
    ``cfg.retries`` times; the last response (or connection error) stands."""
    for attempt in range(cfg.retries + 1):
        try:
            response = yield request
        except RETRY_EXCEPTIONS:
            if attempt == cfg.retries:
                raise
            yield Sleep(delay(cfg, attempt, None))
            continue
        if retryable(response) and attempt < cfg.retries:
            yield Sleep(delay(cfg, attempt, response))
            continue
        return response
    raise AssertionError("unreachable")


def _solve_request(cfg: ClientConfig, url: str, params, o: SolveOptions, batch: bool) -> Request:
    body = solve_body(params, o, model=cfg.model, time_budget_ms=cfg.time_budget_ms, batch=batch)
    return Request("POST", url, {"json": body, "headers": accept(o.transport or cfg.transport)})


def solve(cfg: ClientConfig, params, o: SolveOptions) -> Plan[SolveResult]:
    """One ``POST /solve``."""
    request = _solve_request(cfg, "/solve", params, o, batch=False)
    response = yield from send(cfg, request)
    return answers.solve_result(response, request.options["json"])


def batch(cfg: ClientConfig, params: Sequence, o: SolveOptions) -> Plan[BatchResult]:
    """``POST /solve/batch`` requests, one after another, each within the limits known (lowered
    by a 413 ``batch_too_large``, the refused rows sent again smaller); answers joined in order."""
    rows = [params_dict(p) for p in params]
    if not rows:
        raise ValueError("solve_batch needs at least one parameter set")
    parts: list[BatchResult] = []
    size, lo = chunk_size(cfg, o.grid), 0
    while lo < len(rows):
        request = _solve_request(cfg, "/solve/batch", rows[lo : lo + size], o, batch=True)
        body = request.options["json"]
        response = yield from send(cfg, request)
        smaller = smaller_chunk(cfg, response, len(body["params"]), o.grid)
        if smaller is not None:
            size = smaller
            continue
        parts.append(answers.batch_part(response, body))
        lo += len(body["params"])
    return answers.join(parts)


def models(cfg: ClientConfig) -> Plan[dict]:
    """``GET /models``."""
    response = yield from send(cfg, Request("GET", "/models"))
    answers.raise_for(response)
    return response.json()


def ready(timeout: float | None = None) -> Plan[bool]:
    """Whether GET /readyz answers 200 (False on 503 or no connection); no retries."""
    try:
        response = yield Request("GET", "/readyz", {} if timeout is None else {"timeout": timeout})
    except httpx.TransportError:
        return False
    return response.status_code == 200


def wait_ready(cfg: ClientConfig, timeout: float = 60.0, interval: float = 0.1) -> Plan[None]:
    """Poll /readyz until it answers 200; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (yield from ready(max(1e-3, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{cfg.base_url} not ready after {timeout} s")
        yield Sleep(min(interval, max(0.0, deadline - time.monotonic())))


class Run:
    """A plan being carried out: iterate it for its steps, answer each :class:`Request` by
    setting ``reply`` (or ``error``: the exception sending it raised); ``value``: its answer."""

    def __init__(self, plan: Plan):
        self.plan, self.reply, self.error, self.value = plan, None, None, None

    def __iter__(self):
        try:
            while True:
                error, self.error = self.error, None
                step = self.plan.throw(error) if error is not None else self.plan.send(self.reply)
                self.reply = None
                yield step
        except StopIteration as stop:
            self.value = stop.value
        finally:
            self.plan.close()
