"""Structured logs: one JSON object per line on stderr (python-json-logger), with the request id.

The request id lives in a context variable set by the request-id middleware; worker
threads started with ``anyio.to_thread.run_sync`` inherit it, so a solver's log line
names the request it served. Two entry points:

- :func:`logging_config` — a ``logging.config.dictConfig`` dict for the whole process
  (root, uvicorn's loggers, the service's), handed to uvicorn by ``fastlrnr.server.serve``, so
  that every line on stderr, uvicorn's own included, is JSON;
- :func:`configure_service_logger` — only the ``fastlrnr`` logger, run by the app's
  lifespan (an app embedded elsewhere, e.g. under a test client, leaves the rest alone).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

LOGGER_NAME = "fastlrnr"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# ts, level, logger, msg, request_id, then any `extra=` fields, then exc (the traceback).
_FORMAT = "%(levelname)s %(name)s %(message)s %(request_id)s"
_RENAME = {"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}
_PLAIN = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(_JsonFormatter):
    """python-json-logger's formatter with this service's field names and a UTC ``ts``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", _FORMAT)
        kwargs.setdefault("rename_fields", _RENAME)
        kwargs.setdefault("timestamp", "ts")
        kwargs.setdefault("json_ensure_ascii", False)
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "color_message", "taskName"])
        super().__init__(**kwargs)


def _formatter(json_lines: bool) -> dict:
    if json_lines:
        return {"()": f"{__name__}.JsonFormatter"}
    return {"format": _PLAIN}


def logging_config(level: str = "INFO", json_lines: bool = True) -> dict:
    """dictConfig for the process: every logger writes to stderr through one formatter.

    uvicorn's access log is off (the service writes its own access lines); Python warnings
    go through logging too (``py.warnings``), so nothing reaches stderr unformatted."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "service",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"service": _formatter(json_lines)},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            LOGGER_NAME: {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "py.warnings": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        },
    }


def configure_service_logger(level: str = "INFO", json_lines: bool = True) -> None:
    """Route the ``fastlrnr`` logger to stderr (JSON or plain text); idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(_PLAIN))
    logger.addHandler(handler)
