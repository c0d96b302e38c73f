"""Tensors of the Open Inference Protocol (KServe v2) over HTTP: the request's JSON header and
its binary tensor data (Triton's ``binary_tensor_data`` extension) in, the response out.

A request body is a JSON object, followed by raw tensor bytes when the
``Inference-Header-Content-Length`` header gives the JSON's length: each input with
``parameters.binary_data_size`` takes that many bytes, in input order (little-endian,
row-major; BYTES elements as a 4-byte length and the bytes). The same layout is written
back for outputs asked for in binary. Everything here is CPU work on plain bytes: the
routes run it on a worker thread.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from fastlrnr.server.errors import ApiError
from fastlrnr.server.http import encoding
from fastlrnr.server.http.headers import is_decimal

HEADER_LENGTH = "inference-header-content-length"
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
FLOATS = ("FP64", "FP32")  # what the float inputs accept (FP32 is widened to FP64)
# bytes an input value takes once read: widened to float64, then a Python float in the list the
# /solve/batch body is built from, and that body's JSON text
VALUE_BYTES = 64


def invalid(message: str, loc: tuple = ()) -> ApiError:
    """422 validation_error, as /solve/batch answers a body that does not match its schema."""
    return ApiError(422, "validation_error", message, [{"loc": ["body", *loc], "msg": message, "type": "oip"}])


@dataclass
class InferRequest:
    """A parsed inference request: float64 inputs by name, parameters, outputs asked for."""

    id: str | None
    inputs: dict[str, np.ndarray]
    parameters: dict[str, Any]
    outputs: dict[str, bool] | None  # name → binary; None: every output
    binary_output: bool = False  # the request's binary_data_output parameter
    datatypes: dict[str, str] = field(default_factory=dict)


def parse_request(raw: bytes, header_length: str | None, memory_bytes: int | None = None) -> InferRequest:
    """Worker thread: the body → :class:`InferRequest`, or ApiError 422 (400 for a bad framing
    header). Every input is sized from its shape and datatype before it is read: its count must
    match the bytes or values it brings, and all of them, widened, must fit ``memory_bytes``
    (413 ``over_memory_budget``)."""
    if header_length is None:
        head_bytes, blob = raw, b""
    else:
        if not is_decimal(header_length) or int(header_length) > len(raw):
            raise ApiError(400, "bad_request", f"Inference-Header-Content-Length {header_length!r} is not valid")
        n = int(header_length)
        head_bytes, blob = raw[:n], raw[n:]
    try:
        head = orjson.loads(head_bytes)
    except orjson.JSONDecodeError as exc:
        raise ApiError(422, "invalid_json", f"the request header is not valid JSON: {exc}") from None
    if not isinstance(head, dict):
        raise invalid("the request must be a JSON object")
    unknown = set(head) - {"id", "parameters", "inputs", "outputs"}
    if unknown:
        raise invalid(f"unknown keys {sorted(unknown)}", (sorted(unknown)[0],))
    rid = head.get("id")
    if rid is not None and not isinstance(rid, str):
        raise invalid("id must be a string", ("id",))
    params = _parameters(head.get("parameters"), ("parameters",))
    inputs_raw = head.get("inputs")
    if not isinstance(inputs_raw, list) or not inputs_raw:
        raise invalid("inputs must be a non-empty list", ("inputs",))
    outputs = _outputs(head.get("outputs"))
    described = [_described(item, ("inputs", i)) for i, item in enumerate(inputs_raw)]  # no data read yet
    declared = sum(math.prod(d.shape) for d in described)
    if memory_bytes is not None and declared * VALUE_BYTES > memory_bytes:
        msg = (
            f"the inputs declare {declared} values, about {declared * VALUE_BYTES / 2**20:.1f} MiB once read; "
            f"this server takes at most {memory_bytes / 2**20:.0f} MiB per request (request_memory_bytes)"
        )
        raise ApiError(413, "over_memory_budget", msg, [{"loc": ["body", "inputs"], "msg": msg, "type": "too_large"}])
    inputs: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    offset = 0
    for i, (item, d) in enumerate(zip(inputs_raw, described)):
        if d.name in inputs:
            raise invalid(f"input {d.name!r} is given twice", ("inputs", i, "name"))
        array, used = _read(item, d, blob, offset, ("inputs", i))
        inputs[d.name], datatypes[d.name] = array, d.datatype
        offset += used
    if offset != len(blob):
        raise invalid(f"{len(blob) - offset} bytes of binary data belong to no input", ("inputs",))
    binary_output = params.pop("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise invalid("binary_data_output must be a boolean", ("parameters", "binary_data_output"))
    return InferRequest(rid, inputs, params, outputs, binary_output, datatypes)


def _parameters(value: Any, loc: tuple) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("parameters must be an object", loc)
    for key, v in value.items():
        if not isinstance(v, (bool, int, float, str)):
            raise invalid(f"parameter {key!r} must be a boolean, a number or a string", (*loc, key))
    return dict(value)


@dataclass(frozen=True)
class _Described:
    """An input as its metadata declares it, checked, before any of its data is read."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any]


def _described(item: Any, loc: tuple) -> _Described:
    """An input's name, shape, datatype and parameters, checked (422); its data is not looked at."""
    if not isinstance(item, dict):
        raise invalid("an input must be an object", loc)
    unknown = set(item) - {"name", "shape", "datatype", "parameters", "data"}
    if unknown:
        raise invalid(f"unknown keys {sorted(unknown)}", loc)
    name, shape, dtype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not name:
        raise invalid("an input needs a name", (*loc, "name"))
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise invalid(f"input {name!r}: shape must be a list of non-negative integers", (*loc, "shape"))
    if dtype not in FLOATS:
        raise invalid(f"input {name!r}: datatype {dtype!r} is not accepted; use FP64 (or FP32)", (*loc, "datatype"))
    params = _parameters(item.get("parameters"), (*loc, "parameters"))
    if "binary_data_size" in params and "data" in item:
        raise invalid(f"input {name!r} has both data and binary_data_size", (*loc, "data"))
    if "binary_data_size" not in params and "data" not in item:
        raise invalid(f"input {name!r} has neither data nor binary_data_size", loc)
    return _Described(name, shape, dtype, params)


def _read(item: dict, d: _Described, blob: bytes, offset: int, loc: tuple) -> tuple[np.ndarray, int]:
    """One described input → (float64 array of its shape, binary bytes it took); its values must
    be exactly as many as its shape declares (422)."""
    name, shape, dtype = d.name, d.shape, d.datatype
    count = math.prod(shape)
    size = d.parameters.get("binary_data_size")
    if size is not None:
        itemsize = DTYPES[dtype].itemsize
        if not isinstance(size, int) or isinstance(size, bool) or size != count * itemsize:
            raise invalid(f"input {name!r}: binary_data_size must be {count * itemsize} for shape {shape}", loc)
        if offset + size > len(blob):
            raise invalid(f"input {name!r}: the body ends before its {size} bytes of binary data", loc)
        flat = np.frombuffer(blob, DTYPES[dtype], count, offset)
        return flat.astype(np.float64).reshape(shape), size
    flat_list = _flatten(item["data"])
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat_list):
        raise invalid(f"input {name!r}: data must be numbers", (*loc, "data"))
    if len(flat_list) != count:
        raise invalid(f"input {name!r}: {len(flat_list)} values for shape {shape} ({count} values)", (*loc, "data"))
    array = np.array(flat_list, dtype=np.float64)
    if dtype == "FP32":
        array = array.astype(np.float32).astype(np.float64)
    return array.reshape(shape), 0


def _flatten(data: Any) -> list:
    """Row-major flat list of a (possibly nested) JSON array."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _outputs(value: Any) -> dict[str, bool] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid("outputs must be a list", ("outputs",))
    out: dict[str, bool] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise invalid("an output must be an object with a name", ("outputs", i))
        params = _parameters(item.get("parameters"), ("outputs", i, "parameters"))
        binary = params.get("binary_data", False)
        if not isinstance(binary, bool):
            raise invalid("binary_data must be a boolean", ("outputs", i, "parameters", "binary_data"))
        out[item["name"]] = binary
    return out


# ---------------------------------------------------------------------- the response


@dataclass
class Output:
    """One output tensor: its name, datatype and values (numpy array, or list[bytes] for BYTES)."""

    name: str
    datatype: str
    shape: list[int]
    value: Any


def encode_response(head: dict, outputs: list[Output], binary: dict[str, bool]) -> tuple[bytes, int | None]:
    """Worker thread: (body, JSON header length when any output travels in binary, else None)."""
    blobs: list[bytes] = []
    described = []
    for out in outputs:
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": out.shape}
        if binary.get(out.name, False):
            data = _binary(out)
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        elif out.datatype == "BYTES":
            entry["data"] = [v.decode() for v in out.value]
        else:
            entry["data"] = np.ascontiguousarray(out.value).reshape(-1)
        described.append(entry)
    header = encoding.dumps({**head, "outputs": described})
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def _binary(out: Output) -> bytes:
    if out.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in out.value)
    return np.ascontiguousarray(out.value, dtype=DTYPES[out.datatype]).tobytes()
