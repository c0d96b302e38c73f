"""uvicorn's h11 HTTP/1.1 protocol with the limits a public endpoint needs.

h11 refuses a request whose line and headers exceed ``h11_max_incomplete_event_size``
(400 and close, at once; httptools has no such limit), but only while they are
incomplete: a longer head that arrives whole (one write, or a last piece that completes
it) passed. :class:`HeadLimitedConnection` applies the limit to the head itself, however
the bytes arrive. This subclass adds what uvicorn lacks:

- a cap on open connections: at the cap, the connection that has waited longest for a
  request's headers is closed to make room, and when none is waiting the new one is
  refused (closed at once), so slow or idle clients cannot exhaust the file descriptors;
- a deadline for each request's headers (``header_timeout_s`` from connecting, or from
  the first byte after the previous response): 408 and close. uvicorn's keep-alive
  timeout only runs while a connection is silent, so a client sending one byte at a time
  would otherwise hold it forever.

The body's own deadline is the app's (``fastlrnr.server.http.middleware.BodyLimit``).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# h11's end of a request head (h11._receivebuffer.blank_line_regex): a blank line, CRLF or LF.
_HEAD_END = re.compile(b"\n\r?\n")

_BODY_408 = (
    b'{"error":"request_timeout","message":"the request headers did not arrive in time","request_id":null,"errors":[]}'
)
TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_BODY_408)).encode() + b"\r\n\r\n" + _BODY_408
)


class HeadLimitedConnection(h11.Connection):
    """h11's server connection with one limit on a request head (request line + headers + the
    blank line): at most ``max_head_bytes``, whether it arrived in one piece or many, alone or
    behind a pipelined request; longer → RemoteProtocolError (uvicorn: 400 and close)."""

    def __init__(self, max_head_bytes: int):
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes

    def next_event(self) -> Any:
        if self.their_state is h11.IDLE:
            # h11 0.14–0.16 keep the unparsed bytes in a bytearray, searched here in place
            buffered = getattr(self._receive_buffer, "_data", None) or bytes(self._receive_buffer)
            if len(buffered) > self.max_head_bytes and not _HEAD_END.search(buffered, 0, self.max_head_bytes):
                self._process_error(self.their_role)
                raise h11.RemoteProtocolError("request line and headers too long", error_status_hint=431)
        return super().next_event()


class GuardedH11Protocol(H11Protocol):
    """H11Protocol + connection cap + header deadline (settings read from the uvicorn config:
    ``max_connections`` and ``header_timeout_s``, see ``fastlrnr.server.serve.ServerConfig``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = HeadLimitedConnection(self.config.h11_max_incomplete_event_size or 65_536)
        self.max_connections: int = getattr(self.config, "max_connections", 1000)
        self.header_timeout_s: float = getattr(self.config, "header_timeout_s", 10.0)
        self._header_timer: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None  # monotonic time since which no request is in progress
        self._refused = False

    # ---- connection cap
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections and not self._evict_one():
            self._refused = True
            transport.abort()
            return
        super().connection_made(transport)
        self._idle_since = time.monotonic()
        self._arm()

    def _evict_one(self) -> bool:
        """Close the connection that has been without a request in progress the longest; False when
        every connection is busy with a request."""
        idle = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and c._idle_since is not None]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._idle_since)  # type: ignore[arg-type, return-value]
        oldest._close()
        self.connections.discard(oldest)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        super().connection_lost(exc)

    # ---- header deadline
    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm()  # the first byte of a new request (or of a body nobody reads any more)
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if not self._between_requests():
            self._idle_since = None
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._between_requests() and self._idle_since is None:
            self._idle_since = time.monotonic()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self._between_requests() or self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:  # still waiting for a request line and headers: say why
            self.transport.write(TIMEOUT_408)
        self._close()

    def _close(self) -> None:
        self._disarm()
        self._idle_since = None
        if not self.transport.is_closing():
            self.transport.close()
