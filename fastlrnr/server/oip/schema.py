"""The OpenAPI description of an inference request's body (``POST /v2/models/{model}/infer``).

The route reads its body itself (JSON, or JSON followed by binary tensor data: Triton's
``binary_tensor_data`` extension, framed by the ``Inference-Header-Content-Length`` header),
so FastAPI cannot infer it; this is the protocol's request as JSON Schema.
"""

from __future__ import annotations

PARAMETER_VALUE = {"oneOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string"}]}
PARAMETERS = {"type": "object", "additionalProperties": PARAMETER_VALUE}
INPUT = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "enum": ["params", "x", "t", "points"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["FP64", "FP32"]},
        "parameters": {
            "type": "object",
            "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            "additionalProperties": PARAMETER_VALUE,
        },
        "data": {"type": "array", "description": "the values, row-major (nested or flat)"},
    },
}
OUTPUT = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
    },
}
INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            **PARAMETERS,
            "description": "nx, nt, fast_phase, steps, backend, locality, allow_extrapolation, correction, "
            "tolerance, time_budget_ms (as /solve/batch), binary_data_output; priority and timeout are ignored",
        },
        "inputs": {"type": "array", "minItems": 1, "items": INPUT},
        "outputs": {"type": "array", "items": OUTPUT},
    },
}
INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "the inference request as JSON; with binary tensor data (Triton's extension), this JSON "
        "followed by each input's raw bytes, its length in the Inference-Header-Content-Length header",
        "content": {
            "application/json": {
                "schema": INFER_REQUEST,
                "example": {
                    "inputs": [{"name": "params", "shape": [1, 3], "datatype": "FP64", "data": [[2.0, 1.0, 1.0]]}],
                    "parameters": {"nx": 64, "nt": 20, "tolerance": 0.01, "time_budget_ms": 1000},
                },
            },
        },
    }
}
