"""The one version of this software: the installed package's, as ``pyproject.toml`` states it.

Read by the app (OpenAPI, ``GET /models``), the client's user agent and the logs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastlrnr-service")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
