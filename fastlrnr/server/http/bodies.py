"""Request bodies: read (size cap and deadline: ``fastlrnr.server.http.middleware.BodyLimit``), then parsed
and validated on a worker thread, never on the event loop.

The body is JSON whatever its Content-Type. pydantic-core parses and validates it in one
pass (``model_validate_json``): invalid UTF-8, numbers beyond float range, integers of
thousands of digits and deep nesting are all JSON errors → 422 ``invalid_json``; a body
that does not match the schema → 422 ``validation_error``. Large bodies are parsed one at
a time on their own limiter, so a flood of them cannot delay ordinary requests' parsing.
"""

from __future__ import annotations

import json
import time
from typing import TypeVar

import anyio.to_thread
from fastapi import Request
from pydantic import BaseModel, ValidationError

from fastlrnr.server.engine.state import LARGE_BODY_BYTES, ServiceState
from fastlrnr.server.errors import MAX_ERRORS, ApiError, error_items, validation_error

M = TypeVar("M", bound=BaseModel)


# While solves are running or waiting, a large body's parse is followed by a pause this many
# times as long, before the next large body may be parsed: parsing holds the interpreter
# lock for its whole duration, so large bodies get at most 1/(1 + LARGE_BODY_PAUSE) of it.
LARGE_BODY_PAUSE = 3.0


def refuse_encoded(request: Request) -> None:
    """415 for a body sent with a Content-Encoding (gzip, …): bodies are read as they arrive, never
    decompressed (a small compressed body could unpack to far more than ``max_body_bytes``)."""
    encoding = request.headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed",
        )


async def parse_body(request: Request, model: type[M], state: ServiceState) -> M:
    """The request's body as ``model``, or ApiError 422 naming the first offending field."""
    raw = await request.body()
    if len(raw) <= LARGE_BODY_BYTES:
        return await anyio.to_thread.run_sync(parse_json, model, raw, limiter=state.parse_small)
    async with state.parse_large:  # one large body at a time
        t0 = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(parse_json, model, raw)
        finally:
            if state.pool.admitted:
                await anyio.sleep((time.perf_counter() - t0) * LARGE_BODY_PAUSE)


def parse_json(model: type[M], raw: bytes) -> M:
    """Worker thread: ``raw`` JSON → ``model``; the error list is built here too (it can be long)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(error_items(first_errors(exc, MAX_ERRORS), ("body",)), exc.error_count()) from None


def first_errors(exc: ValidationError, n: int) -> list[dict]:
    """The first ``n`` errors of ``exc``, without turning every one of them into Python objects
    (a body with 60 000 unknown keys has 60 000 errors: pydantic writes them as JSON in a few
    ms, and only the first ``n`` are decoded here)."""
    options = {"include_url": False, "include_input": False, "include_context": False}
    if exc.error_count() <= n:
        return exc.errors(**options)  # type: ignore[arg-type]
    text, decoder, out, i = exc.json(**options), json.JSONDecoder(), [], 1  # type: ignore[arg-type]
    while len(out) < n and i < len(text) and text[i] != "]":
        error, i = decoder.raw_decode(text, i)
        out.append(error)
        i += text[i] == ","
    return out
