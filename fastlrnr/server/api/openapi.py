"""The OpenAPI document: request bodies (parsed by the service itself, off the event loop,
so FastAPI does not see them as parameters), examples of every request type and of every
error response."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from fastlrnr.server.api.fit_schemas import FitRequest
from fastlrnr.server.api.schemas import BatchSolveRequest, ErrorResponse, SolveRequest
from fastlrnr.server.http.encoding import NPY_MEDIA_TYPE

MU = {"beta": 2.0, "nu": 1.0, "rho": 1.0}

SOLVE_EXAMPLES: dict[str, dict] = {
    "minimal": {
        "summary": "parameters only: the default model, 256 × 100 grid, the corrected answer (no fast phase)",
        "value": {"params": MU},
    },
    "tolerance": {
        "summary": "a tolerance the service meets: escalated (reference solver) when the estimate is above it",
        "value": {"params": {"beta": 3.0, "nu": 0.0, "rho": 2.0}, "tolerance": 1e-5, "time_budget_ms": 500},
    },
    "uniform": {
        "summary": "a uniform grid, a fast-phase budget and a tolerance",
        "value": {
            "model": "cdr",
            "params": MU,
            "grid": {"nx": 128, "nt": 50},
            "fast_phase": {"steps": 8, "backend": "exact"},
            "tolerance": 0.02,
        },
    },
    "axes": {
        "summary": "a tensor grid of explicit axes (u: len(t) × len(x))",
        "value": {"params": MU, "grid": {"x": [0.0, 1.5707963, 3.1415927], "t": [0.0, 0.5, 1.0]}},
    },
    "points": {
        "summary": "scattered points [x, t] (u: one value per point)",
        "value": {"params": MU, "grid": {"points": [[0.0, 0.0], [3.1415927, 0.25], [6.0, 1.0]]}},
    },
    "uncorrected": {
        "summary": "the LRNR alone, adapted by the SPInProp fast phase (the correction off)",
        "value": {"params": MU, "correction": False},
    },
    "hypernetwork_only": {
        "summary": "the LRNR alone at the hypernetwork's coefficients (fastest, least accurate)",
        "value": {"params": MU, "correction": False, "fast_phase": {"enabled": False}},
    },
    "extrapolation": {
        "summary": "outside the served domain: solved and flagged",
        "value": {"params": {"beta": 3.5, "nu": 1.0, "rho": 1.0}, "allow_extrapolation": True},
    },
}
BATCH_EXAMPLES: dict[str, dict] = {
    "two_sets": {
        "summary": "two parameter sets on one grid",
        "value": {
            "params": [{"beta": 1.5, "nu": 0.2, "rho": 0.3}, {"beta": 2.5, "nu": 1.0, "rho": 1.0}],
            "grid": {"nx": 128, "nt": 50},
        },
    },
    "points_no_adaptation": {
        "summary": "three sets at scattered points, hypernetwork only",
        "value": {
            "params": [MU, {"beta": 1.2}, {"beta": 2.8, "rho": 2.0}],
            "grid": {"points": [[0.0, 0.5], [1.0, 0.5]]},
            "fast_phase": {"enabled": False},
        },
    },
}


def _error(code: str, message: str, errors: list | None = None, rid: str = "4bf92f3577b34da6a3ce929d0e0e4736") -> dict:
    return {"value": {"error": code, "message": message, "request_id": rid, "errors": errors or []}}


ERROR_EXAMPLES: dict[int, tuple[str, dict[str, dict]]] = {
    401: (
        "API keys are configured and the bearer token is missing or wrong",
        {"unauthorized": _error("unauthorized", "missing or wrong API key (Authorization: Bearer <key>)")},
    ),
    404: (
        "unknown model",
        {
            "unknown_model": _error(
                "unknown_model",
                "no model named 'burgers'; available: ['cdr', 'convection']",
                [{"loc": ["body", "model"], "msg": "unknown model 'burgers'", "type": "not_found"}],
            )
        },
    ),
    408: (
        "the request body did not arrive in time (the connection is closed)",
        {"body_timeout": _error("body_timeout", "the request body did not arrive within 30 s")},
    ),
    413: (
        "a limit: body size, grid values, batch size or batch values, or the memory the request would take",
        {
            "body_too_large": _error("body_too_large", "request body exceeds the limit of 1048576 bytes"),
            "grid_too_large": _error(
                "grid_too_large",
                "the grid asks for 1048576 values; the limit is 262144",
                [
                    {
                        "loc": ["body", "grid"],
                        "type": "too_large",
                        "msg": "at most 262144 values (nx·nt, len(x)·len(t) or len(points)), got 1048576",
                    }
                ],
            ),
            "batch_too_large": _error(
                "batch_too_large",
                "65 parameter sets; the limit is 64",
                [{"loc": ["body", "params"], "msg": "at most 64 items", "type": "too_large"}],
            ),
            "over_memory_budget": _error(
                "over_memory_budget",
                "64 × 262144 field values and their answer would take about 1072.0 MiB, more than this "
                "server's 256 MiB per request (request_memory_bytes)",
                [{"loc": ["body", "grid"], "msg": "...", "type": "too_large"}],
            ),
        },
    ),
    415: (
        "the body came with a Content-Encoding (gzip, …): send it uncompressed",
        {
            "unsupported_media_type": _error(
                "unsupported_media_type", "Content-Encoding 'gzip' is not supported: send the body uncompressed"
            )
        },
    ),
    422: (
        "the body is not JSON, does not match the schema, or asks for parameters outside the served domain",
        {
            "invalid_json": _error(
                "invalid_json",
                "the body is not valid JSON: Invalid JSON: EOF while parsing an object at line 1 column 11",
                [
                    {
                        "loc": ["body"],
                        "msg": "Invalid JSON: EOF while parsing an object at line 1 column 11",
                        "type": "json_invalid",
                    }
                ],
            ),
            "validation_error": _error(
                "validation_error",
                "grid.nt: Field required",
                [{"loc": ["body", "grid", "nt"], "msg": "Field required", "type": "missing"}],
            ),
            "strict_types": _error(
                "validation_error",
                "allow_extrapolation: Input should be a valid boolean",
                [
                    {
                        "loc": ["body", "allow_extrapolation"],
                        "msg": "Input should be a valid boolean",
                        "type": "bool_type",
                    }
                ],
            ),
            "over_time_budget": _error(
                "over_time_budget",
                "the first answer (64 × 25600 field values) is predicted to take 2210 ms, more than the 500 ms "
                "of time_budget_ms; ask for less, or for a longer budget",
                [{"loc": ["body", "time_budget_ms"], "msg": "...", "type": "over_time_budget"}],
            ),
            "out_of_domain": _error(
                "out_of_domain",
                "beta = 5 is outside the served domain of 'cdr': beta ∈ [1, 3] "
                "(set allow_extrapolation to solve anyway)",
                [
                    {
                        "loc": ["body", "params", "beta"],
                        "type": "out_of_domain",
                        "msg": "beta = 5 is outside the served domain of 'cdr': beta ∈ [1, 3] (set "
                        "allow_extrapolation to solve anyway)",
                    }
                ],
            ),
        },
    ),
    500: (
        "a fault of the server: only the request id (the traceback is in the server log)",
        {"internal_error": _error("internal_error", "the solver failed; see the server log for this request id")},
    ),
    503: (
        "the service is full (open requests or solver queue), or the request waited in the queue past its "
        "time_budget_ms; retry after Retry-After seconds",
        {"overloaded": _error("overloaded", "the solver queue is full; retry later")},
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error body and its examples for each status."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, examples = ERROR_EXAMPLES[status]
        out[status] = {
            "model": ErrorResponse,
            "description": description,
            "content": {"application/json": {"examples": examples}},
        }
    return out


def request_body(model: type, examples: dict[str, dict]) -> dict[str, Any]:
    """``openapi_extra=`` for a route whose JSON body the service parses itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}, "examples": examples}
            },
        }
    }


NPY_RESPONSE = {
    "content": {NPY_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    "description": "JSON (gzip-compressed when large and `Accept-Encoding` allows it), or the field as "
    ".npy bytes (float32) when asked for by `Accept: application/x-npy` or "
    "`?format=npy`, with the metadata in the X-Solve-Diagnostics header (JSON)",
}


def _cap(node: Any, name: str, maximum: int) -> None:
    """Every schema of a property or parameter called ``name`` under ``node`` gets ``maximum``."""
    if isinstance(node, list):
        for item in node:
            _cap(item, name, maximum)
    elif isinstance(node, dict):
        if node.get("name") == name and "schema" in node:  # a query parameter
            _set_maximum(node["schema"], maximum)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict) and name in value:
                _set_maximum(value[name], maximum)
            _cap(value, name, maximum)


def _set_maximum(schema: Any, maximum: int) -> None:
    if isinstance(schema, dict):
        if "maximum" in schema:
            schema["maximum"] = maximum
        for option in schema.get("anyOf", []):
            _set_maximum(option, maximum)


def build_openapi(app: FastAPI, auth: bool = True, max_time_budget_ms: int | None = None) -> dict[str, Any]:
    """FastAPI's document plus the request-body schemas; cached on the app. Without ``auth``
    (no API keys set) the bearer scheme is left out: no route needs it. ``time_budget_ms`` is
    documented up to this server's ``max_time_budget_ms`` (the schema's own bound is the
    largest any server takes)."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        _, defs = models_json_schema(
            [(SolveRequest, "validation"), (BatchSolveRequest, "validation"), (FitRequest, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        spec.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        if max_time_budget_ms is not None:
            _cap(spec, "time_budget_ms", max_time_budget_ms)
        if not auth:
            spec["components"].pop("securitySchemes", None)
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    if isinstance(operation, dict):
                        operation.pop("security", None)
        app.openapi_schema = spec
    return app.openapi_schema
