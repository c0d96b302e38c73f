"""Work that stops when its client disconnects.

Once a request's body has been read, the next ASGI ``receive()`` returns only when the client
disconnects (``http.disconnect``; uvicorn also returns it once the response is complete).
``watch_disconnect`` waits for it in a task while the block runs and sets the request's
``threading.Event`` (``fastlrnr.server.engine.budget.Budget.gone``), which the solver polls
between passes and inside long rungs: a client that leaves stops its work within one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from fastapi import Request


@contextlib.asynccontextmanager
async def watch_disconnect(request: Request, gone: threading.Event) -> AsyncIterator[threading.Event]:
    """While the block runs (the request's body already read), ``gone`` is set when the client
    disconnects."""

    async def wait() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    task = asyncio.ensure_future(wait())
    task.add_done_callback(_retrieve)
    try:
        yield gone
    finally:
        task.cancel()  # not awaited: the block's own cancellation (shutdown) must not be swallowed


def _retrieve(task: asyncio.Task) -> None:
    """A watcher's end, whatever it was (a receive that failed only ends the watching)."""
    if not task.cancelled():
        task.exception()
