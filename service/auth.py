"""API keys: ``Authorization: Bearer <key>`` on every route but /healthz and /readyz, when
``FASTLRNR_API_KEYS`` is set. A route dependency, so it runs before the body is read."""

from __future__ import annotations

import hmac

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.errors import ApiError
from service.state import ServiceState, get_state

bearer = HTTPBearer(auto_error=False, description="one of the keys in FASTLRNR_API_KEYS (when it is set)")


def require_key(
    state: ServiceState = Depends(get_state), credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> None:
    """401 unless API keys are off or the bearer token is one of them (constant-time comparison)."""
    keys = state.settings.key_bytes()
    if not keys:
        return
    token = credentials.credentials.strip().encode() if credentials is not None else b""
    if not any([hmac.compare_digest(token, key) for key in keys]):  # every key compared, whatever matches
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong API key (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
