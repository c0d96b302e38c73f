"""ASGI middleware, one concern each (outermost first in the app):

- :class:`RequestId` — the request id (a valid ``X-Request-ID`` or a new one) in the
  logging context and on the response, and the arrival time;
- :class:`Observe` — the request's metrics and its access-log line;
- :class:`CatchAll` — any unhandled exception → a JSON 500 with the request id only
  (the traceback goes to the log);
- :class:`BodyLimit` — the request body's size (declared and streamed; 413) and the
  time it may take to arrive (408, connection closed).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ApiError, error_response
from service.logs import get_logger, request_id_var
from service.metrics import Registry
from service.responses import START_KEY

log = get_logger("app")
access_log = get_logger("access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STATUS_KEY = "fastlrnr.status"
_BODY_KEY = "fastlrnr.body_bytes"


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
    """Counts and times every request by route template and status, and logs one access line.

    The route label is the matched route's path template (``/solve``, ``/docs``, ``/openapi.json``),
    or ``unmatched``; ``routes`` gives the app's routes, for those the router does not record."""

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
            status, method = scope[_STATUS_KEY] or 500, scope["method"]
            route = self.route_label(scope)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            access_log.info(
                "%s %s %s",
                method,
                scope.get("path"),
                status,
                extra={
                    "method": method,
                    "path": scope.get("path"),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1e3, 3),
                    "body_bytes": scope.get(_BODY_KEY, 0),
                },
            )


class CatchAll:
    """Unhandled exceptions → JSON 500 carrying only the request id; the traceback is logged."""

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


class BodyLimit:
    """At most ``max_bytes`` of body (413: declared by Content-Length, or counted while it streams),
    all of it within ``timeout_s`` of the first read (408, connection closed)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            error = self._too_large() if length.isdigit() else ApiError(400, "bad_request", "bad Content-Length")
            return await error_response(error.status, error.code, error.message)(scope, receive, send)
        scope[_BODY_KEY] = 0
        deadline: list[float] = []

        async def receive_limited() -> Message:
            if not deadline:
                deadline.append(time.monotonic() + self.timeout_s)
            remaining = deadline[0] - time.monotonic()
            message: Message | None = None
            with anyio.move_on_after(max(remaining, 0.0)):
                message = await receive()
            if message is None:
                raise ApiError(
                    408,
                    "body_timeout",
                    f"the request body did not arrive within {self.timeout_s:g} s",
                    headers={"Connection": "close"},
                )
            if message["type"] == "http.request":
                scope[_BODY_KEY] += len(message.get("body", b""))
                if scope[_BODY_KEY] > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, receive_limited, send)

    def _too_large(self) -> ApiError:
        return ApiError(413, "body_too_large", f"request body exceeds the limit of {self.max_bytes} bytes")


def middleware_stack(
    metrics: Registry, settings: Any, routes: Callable[[], Sequence[BaseRoute]]
) -> list[tuple[Callable, dict]]:
    """(class, options) outermost first, for ``app.add_middleware`` in reverse order."""
    return [
        (RequestId, {}),
        (Observe, {"metrics": metrics, "routes": routes}),
        (CatchAll, {}),
        (BodyLimit, {"max_bytes": settings.max_body_bytes, "timeout_s": settings.body_timeout_s}),
    ]
