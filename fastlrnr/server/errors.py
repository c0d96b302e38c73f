"""Error mapping: every refusal becomes ``{"error", "message", "request_id", "errors"}``.

:class:`ApiError` is what the service's own code raises; the handlers installed by
:func:`install_error_handlers` turn it, FastAPI's validation errors (query parameters),
Starlette's HTTP errors (unknown route, wrong method), a full service and a solver
fault into that one body. No response carries a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fastlrnr.server.logs import get_logger, request_id_var

log = get_logger("errors")

MAX_ERRORS = 20  # field errors listed in one response; the message says how many there were
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
}


class ApiError(Exception):
    """A request the service refuses: HTTP ``status`` with a machine code and field errors."""

    def __init__(
        self, status: int, code: str, message: str, errors: Sequence[dict] = (), headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors, self.headers = list(errors), headers


class Overloaded(ApiError):
    """The service is full (open requests or solver queue): 503 with Retry-After."""

    def __init__(self, what: str, retry_after_s: int):
        super().__init__(503, "overloaded", f"{what}; retry later", headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class ClientGone(ApiError):
    """The client disconnected: its work was stopped (recorded as 499, as nginx does)."""

    def __init__(self) -> None:
        super().__init__(499, "client_gone", "the client closed the connection; the work was stopped")


# the numerics' own: a model's unusable answer (a server-side fault), re-exported for the handlers
from fastlrnr.numerics.failures import SolverError  # noqa: E402, F401


def error_response(
    status: int, code: str, message: str, errors: Sequence[dict] = (), headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": code, "message": message, "request_id": request_id_var.get(), "errors": list(errors)}
    return JSONResponse(body, status_code=status, headers=headers)


def error_items(errors: Sequence[dict], prefix: tuple = ()) -> list[dict]:
    """pydantic-style errors → ``[{"loc", "msg", "type"}]`` (JSON-safe, at most MAX_ERRORS)."""
    out = []
    for e in list(errors)[:MAX_ERRORS]:
        loc = [*prefix, *(p if isinstance(p, (int, str)) else str(p) for p in e.get("loc", ()))]
        out.append({"loc": loc, "msg": str(e.get("msg", ""))[:300], "type": str(e.get("type", ""))})
    return out


def validation_error(items: list[dict], total: int) -> ApiError:
    """422 for a body or query that does not match the schema; the message names the first field."""
    first = items[0] if items else {"loc": [], "msg": "invalid request", "type": ""}
    more = f" (and {total - 1} more error{'s' if total > 2 else ''})" if total > 1 else ""
    if first["type"] == "json_invalid":
        return ApiError(422, "invalid_json", f"the body is not valid JSON: {first['msg']}", items)
    where = ".".join(str(p) for p in first["loc"][1:]) or "body"
    return ApiError(422, "validation_error", f"{where}: {first['msg']}{more}", items)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping of every exception type above to the error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SolverError, _solver_error)


async def _api_error(request: Request, exc: Any) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)


async def _request_validation(request: Request, exc: Any) -> JSONResponse:
    errors = exc.errors()
    err = validation_error(error_items(errors), len(errors))
    return error_response(err.status, err.code, err.message, err.errors)


async def _http_error(request: Request, exc: Any) -> JSONResponse:
    return error_response(
        exc.status_code,
        HTTP_CODES.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def _solver_error(request: Request, exc: Any) -> JSONResponse:
    log.error("solver failure: %s", exc)
    return error_response(500, "internal_error", "the solver failed; see the server log for this request id")
