"""API keys: ``Authorization: Bearer <key>`` on every route but /healthz and /readyz, when
``FASTLRNR_API_KEYS`` is set. A route dependency, so it runs before the body is read.

/docs, /redoc and /openapi.json stay open unless ``FASTLRNR_PUBLIC_DOCS=false``: then
:class:`DocsGuard` asks them for a key too (when keys are set)."""

from __future__ import annotations

import hmac

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from fastlrnr.server.engine.state import ServiceState, get_state
from fastlrnr.server.errors import ApiError, error_response

bearer = HTTPBearer(auto_error=False, description="one of the keys in FASTLRNR_API_KEYS (when it is set)")
UNAUTHORIZED = "missing or wrong API key (Authorization: Bearer <key>)"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def key_ok(keys: list[bytes], token: bytes) -> bool:
    """True when ``token`` is one of ``keys`` (every key compared, in constant time each)."""
    return any([hmac.compare_digest(token, key) for key in keys])


def bearer_token(authorization: str | None) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` header value (b"" when there is none)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip().encode("latin-1") if scheme.lower() == "bearer" else b""


def require_key(
    state: ServiceState = Depends(get_state), credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """401 unless API keys are off or the bearer token is one of them (constant-time comparison)."""
    keys = state.settings.key_bytes()
    if not keys:
        return
    token = credentials.credentials.strip().encode() if credentials is not None else b""
    if not key_ok(keys, token):
        raise ApiError(401, "unauthorized", UNAUTHORIZED, headers=CHALLENGE)


class DocsGuard:
    """401 for the documentation routes (``paths``) without a valid key, when ``keys`` is not empty."""

    def __init__(self, app: ASGIApp, keys: list[bytes], paths: frozenset[str]):
        self.app, self.keys, self.paths = app, keys, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.keys and scope.get("path") in self.paths:
            header = next((v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"), b"")
            if not key_ok(self.keys, bearer_token(header.decode("latin-1"))):
                return await error_response(401, "unauthorized", UNAUTHORIZED, headers=CHALLENGE)(scope, receive, send)
        await self.app(scope, receive, send)
