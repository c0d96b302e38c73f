"""ASGI middleware, one concern each (outermost first in the app):

- :class:`RequestId` — the request id (a valid ``X-Request-ID`` or a new one) in the
  logging context and on the response, and the arrival time;
- :class:`Observe` — the request's metrics and its access-log line;
- :class:`CatchAll` — any unhandled exception → a JSON 500 with the request id only
  (the traceback goes to the log); a request cancelled at shutdown → 503 and a warning;
- :class:`~fastlrnr.server.http.auth.DocsGuard` — /docs, /redoc, /openapi.json need the key
  (``public_docs=false`` with API keys set);
- :class:`BodyLimit` — the request body's size (declared and streamed; 413), the time it
  may take to arrive (408, connection closed), and reading it before the route runs, so
  that a body still arriving holds no solve place (slow bodies: 503 beyond a cap).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import anyio
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastlrnr.server.engine.pool import Gate
from fastlrnr.server.errors import ApiError, error_response
from fastlrnr.server.http.auth import DocsGuard, bearer_token, key_ok
from fastlrnr.server.http.headers import is_decimal
from fastlrnr.server.logs import get_logger, request_id_var
from fastlrnr.server.metrics import Registry, method_label

log = get_logger("app")
access_log = get_logger("access")

START_KEY = "fastlrnr.start"  # perf_counter at which the request arrived (set by the request-id middleware)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STATUS_KEY = "fastlrnr.status"
_BODY_KEY = "fastlrnr.body_bytes"
LOG_PATH_CHARS = 512  # an access-log line shows at most this much of the path (a path may be 64 KiB)
CLIENT_GONE = 499  # status recorded for a request whose client left before its body arrived (as nginx)

# A body still arriving this long after its request started holds a slow-body place (``BodyLimit``).
SLOW_BODY_AFTER_S = 0.5
# A body's deadline: this long plus Content-Length / BODY_MIN_RATE, at most BODY_TIMEOUT_S.
BODY_DEADLINE_BASE_S = 5.0
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
SHUTDOWN_MESSAGE = "the server is shutting down; retry on another instance or later"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestId:
    """Request id in the logging context and the ``X-Request-ID`` response header."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        scope[START_KEY] = time.perf_counter()
        given = _header(scope, b"x-request-id") or ""
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class Observe:
    """Counts and times every request by method, route template and status, and logs one access line.

    Every label comes from a closed set: the method is a standard one or ``other``
    (``fastlrnr.server.metrics.method_label``); the route is the matched route's path template
    (``/solve``, ``/docs``, ``/openapi.json``), or ``unmatched``; ``routes`` gives the app's
    routes, for those the router does not record. The log line shows the method's label and
    at most LOG_PATH_CHARS of the path."""

    def __init__(self, app: ASGIApp, metrics: Registry, routes: Callable[[], Sequence[BaseRoute]] = tuple):
        self.app, self.metrics, self.routes = app, metrics, routes

    def route_label(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if path:
            return path
        for route in self.routes():
            if route.matches(scope)[0] is Match.FULL:
                return getattr(route, "path", None) or "unmatched"
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        scope[_STATUS_KEY] = 0

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope[_STATUS_KEY] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            status, method = scope[_STATUS_KEY] or 500, method_label(scope["method"])
            route = self.route_label(scope)
            path = str(scope.get("path"))[:LOG_PATH_CHARS]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            access_log.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "path": path,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1e3, 3),
                    "body_bytes": scope.get(_BODY_KEY, 0),
                },
            )


class CatchAll:
    """Unhandled exceptions → JSON 500 carrying only the request id; the traceback is logged.

    A request cancelled from outside (the server's shutdown deadline, ``fastlrnr.server.serve``) →
    503 ``shutting_down`` with ``Connection: close`` and a warning, no traceback."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if not started:
                await error_response(500, "internal_error", "internal error; see the server log for this request id")(
                    scope, receive, send
                )
        except asyncio.CancelledError:
            # Only the server cancels a request's task (anyio's own cancellations stop at their scope):
            # answer it instead of letting uvicorn log a traceback and send a plain-text 500.
            log.warning("request cancelled at shutdown", extra={"path": str(scope.get("path"))[:LOG_PATH_CHARS]})
            if not started:
                headers = {"Connection": "close", "Retry-After": "1"}
                await error_response(503, "shutting_down", SHUTDOWN_MESSAGE, headers=headers)(scope, receive, send)


class BodyLimit:
    """The request body: at most ``max_bytes`` (413: declared by Content-Length, or counted while
    it streams), arriving within ``deadline_s(Content-Length)`` of the first read (408, connection
    closed): BODY_DEADLINE_BASE_S + length / ``min_rate`` (bytes/s), at most ``timeout_s``.

    A body the route would read anyway (a route matches, the key is right when keys are set,
    and the app has room for one more solve request) is read here, before the route runs, so
    that no solve place is held while it arrives. A body still arriving SLOW_BODY_AFTER_S
    after the first read takes one of ``max_slow`` slow-body places; none left → 503 and the
    connection closed. Clients that trickle their bodies hold only those places: a request
    whose body arrived at once never waits for them."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        timeout_s: float,
        min_rate: float = float("inf"),
        max_slow: int = 64,
        retry_after_s: int = 1,
        metrics: Registry | None = None,
        routes: Callable[[], Sequence[BaseRoute]] = tuple,
    ):
        self.app, self.max_bytes, self.timeout_s, self.min_rate = app, max_bytes, timeout_s, min_rate
        self.routes = routes
        self.slow = Gate(
            max_slow,
            retry_after_s,
            "too many request bodies are still arriving",
            on_change=metrics.slow_bodies.set if metrics else lambda n: None,
            on_reject=metrics.slow_bodies_rejected.inc if metrics else lambda: None,
        )

    def deadline_s(self, length: int | None) -> float:
        """Seconds a body of ``length`` bytes (None: unknown, chunked) may take to arrive."""
        if length is None:
            return self.timeout_s
        return min(self.timeout_s, BODY_DEADLINE_BASE_S + length / self.min_rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not is_decimal(length) or int(length) > self.max_bytes):
            error = self._too_large() if is_decimal(length) else ApiError(400, "bad_request", "bad Content-Length")
            return await error_response(error.status, error.code, error.message)(scope, receive, send)
        scope[_BODY_KEY] = 0
        timeout_s = self.deadline_s(int(length) if length is not None else None)
        deadline: list[float] = []

        complete: list[bool] = []

        async def receive_limited() -> Message:
            if complete:  # the body has arrived: what follows (a disconnect) has no deadline
                return await receive()
            if not deadline:
                deadline.append(time.monotonic() + timeout_s)
            remaining = deadline[0] - time.monotonic()
            message: Message | None = None
            with anyio.move_on_after(max(remaining, 0.0)):
                message = await receive()
            if message is None:
                raise ApiError(
                    408,
                    "body_timeout",
                    f"the request body did not arrive within {timeout_s:.3g} s",
                    headers={"Connection": "close"},
                )
            if message["type"] == "http.request":
                scope[_BODY_KEY] += len(message.get("body", b""))
                if scope[_BODY_KEY] > self.max_bytes:
                    raise self._too_large()
                if not message.get("more_body", False):
                    complete.append(True)
            return message

        if not self._read_first(scope, length):
            return await self.app(scope, receive_limited, send)
        try:
            body = await self._read(receive_limited)
        except ApiError as exc:
            headers = {**(exc.headers or {}), "Connection": "close"}
            return await error_response(exc.status, exc.code, exc.message, exc.errors, headers)(scope, receive, send)
        if body is None:  # the client left
            scope[_STATUS_KEY] = CLIENT_GONE
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # http.disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _read_first(self, scope: Scope, length: str | None) -> bool:
        """True when the route would read this request's body: it has one, a route takes it,
        the key is right (when keys are set) and there is room for one more solve request."""
        chunked = _header(scope, b"transfer-encoding") is not None
        if (int(length) == 0) if length is not None else not chunked:
            return False
        state = getattr(getattr(scope.get("app"), "state", None), "service", None)
        if state is not None:
            if state.requests.held >= state.requests.limit:
                return False  # the route answers 503 without reading it
            keys = state.settings.key_bytes()
            if keys and not key_ok(keys, bearer_token(_header(scope, b"authorization"))):
                return False  # the route answers 401 without reading it
        return any(route.matches(scope)[0] is Match.FULL for route in self.routes())

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body (None when the client disconnects); a slow-body place is taken once it
        has been arriving for SLOW_BODY_AFTER_S (Overloaded when none is left)."""
        chunks: list[bytes] = []
        free_until = time.monotonic() + SLOW_BODY_AFTER_S
        async with AsyncExitStack() as places:
            slow = False
            while True:
                message: Message | None = None
                if slow:
                    message = await receive()
                else:
                    with anyio.move_on_after(max(free_until - time.monotonic(), 0.0)):
                        message = await receive()
                    if message is None:
                        await places.enter_async_context(self.slow.slot())
                        slow = True
                        continue
                if message["type"] != "http.request":
                    return None
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return ApiError(413, "body_too_large", f"request body exceeds the limit of {self.max_bytes} bytes")


def middleware_stack(
    metrics: Registry, settings: Any, routes: Callable[[], Sequence[BaseRoute]]
) -> list[tuple[Callable, dict]]:
    """(class, options) outermost first, for ``app.add_middleware`` in reverse order."""
    body_limit = {
        "max_bytes": settings.max_body_bytes,
        "timeout_s": settings.body_timeout_s,
        "min_rate": settings.body_min_rate,
        "max_slow": settings.max_slow_bodies,
        "retry_after_s": settings.retry_after_s,
        "metrics": metrics,
        "routes": routes,
    }
    docs_guard = [] if settings.public_docs else [(DocsGuard, {"keys": settings.key_bytes(), "paths": DOCS_PATHS})]
    return [
        (RequestId, {}),
        (Observe, {"metrics": metrics, "routes": routes}),
        (CatchAll, {}),
        *docs_guard,
        (BodyLimit, body_limit),
    ]
