"""What the client sends (sans I/O): options, request bodies and the steps a plan yields.

:class:`SolveOptions` gathers the keyword options every solve method takes (``grid``, ``model``,
``fast_phase``, ``tolerance``, ``allow_extrapolation``, ``correction``, ``transport``); the
methods keep them as keyword arguments, their signature read from the dataclass
(:func:`keywords_from`). A plan (``fastlrnr.client.plans``) yields :class:`Request` (send it,
send me the response) and :class:`Sleep` (wait, then send me None); a shell does the I/O.

The grids are ``fastlrnr.numerics.grid``'s (numpy only: the one module of the numerics the client
imports besides the answer's definition). Parameters go by name, as the model's family names them
(``GET /models``: ``family.params``); a bare sequence is refused rather than read in one family's order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypedDict, TypeVar

import numpy as np

from fastlrnr.numerics.grid import STANDARD_NT, STANDARD_NX

NPY = "application/x-npy"
DEFAULT_GRID_VALUES = STANDARD_NX * STANDARD_NT  # the server's default grid

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One HTTP request for a shell to send (``options``: httpx's keyword arguments)."""

    method: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the plan goes on (a retry's backoff, a readiness poll)."""

    seconds: float


# A plan: yields what to do, is sent each Request's response (None after a Sleep) or thrown the
# exception sending it raised, and returns its answer.
Plan = Generator["Request | Sleep", Any, T]


@dataclass(frozen=True)
class FastPhaseOptions:
    """The request's ``fast_phase``: ``enabled`` None = the server's policy (on for an
    uncorrected answer or when ``steps`` is given); ``steps`` None = the model's default, 0 = no adaptation;
    ``backend`` "exact" or "reduced" (None: the model's default); ``locality`` a weight ≥ 0 or
    "auto". A plain mapping with the same keys works as well."""

    enabled: bool | None = None
    steps: int | None = None
    backend: Literal["exact", "reduced"] | None = None
    locality: float | Literal["auto"] = "auto"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.enabled is not None:
            out["enabled"] = bool(self.enabled)
        if self.steps is not None:
            out["steps"] = int(self.steps)
        if self.backend is not None:
            out["backend"] = self.backend
        if self.locality != "auto":
            out["locality"] = float(self.locality)
        return out


@dataclass(frozen=True)
class SolveOptions:
    """The keyword options of ``solve``, ``solve_batch`` and ``solve_many``. ``model`` and
    ``transport`` None: the client's; ``correction`` None: the model's default."""

    grid: Mapping | None = None
    model: str | None = None
    fast_phase: FastPhaseOptions | Mapping | None = None
    tolerance: float | None = None
    allow_extrapolation: bool = False
    correction: bool | None = None
    transport: str | None = None


class SolveKwargs(TypedDict, total=False):
    """:class:`SolveOptions` as keyword arguments, for type checkers (``Unpack[SolveKwargs]``)."""

    grid: Mapping | None
    model: str | None
    fast_phase: FastPhaseOptions | Mapping | None
    tolerance: float | None
    allow_extrapolation: bool
    correction: bool | None
    transport: str | None


def keywords_from(options: type) -> Callable[[Callable], Callable]:
    """Decorator: the method's ``**options`` shown (``inspect.signature``, ``help``) as the
    keyword-only parameters of the dataclass ``options``, with its defaults."""

    def mark(func: Callable) -> Callable:
        sig = inspect.signature(func)
        own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        extra = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
            for f in fields(options)
        ]
        func.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
        return func

    return mark


def params_dict(params: Mapping[str, float]) -> dict[str, float]:
    """Parameters by name (the names ``GET /models`` lists under the model's ``family.params``),
    as floats. A sequence is refused: its order would be one family's guess."""
    if not isinstance(params, Mapping):
        raise TypeError(
            f"parameters must be a mapping by name, e.g. {{'beta': 2.0, 'nu': 0.5, 'rho': 1.0}}; "
            f"got {type(params).__name__} (the model's names: GET /models, family.params)"
        )
    return {str(k): float(v) for k, v in params.items()}


def solve_body(params, o: SolveOptions, *, model: str | None, time_budget_ms: int | None, batch: bool) -> dict:
    """The JSON body of ``/solve`` (``batch`` False) or ``/solve/batch``; ``model`` and
    ``time_budget_ms``: the client's (the options' model wins)."""
    body: dict[str, Any] = {"params": [params_dict(p) for p in params] if batch else params_dict(params)}
    if o.model or model:
        body["model"] = o.model or model
    if o.grid is not None:
        body["grid"] = strict_ints(jsonable(o.grid), ("nx", "nt"))
    if o.fast_phase is not None:
        fp = o.fast_phase
        body["fast_phase"] = strict_ints(
            fp.to_dict() if isinstance(fp, FastPhaseOptions) else jsonable(fp), ("steps", "epochs")
        )
    if o.allow_extrapolation:
        body["allow_extrapolation"] = True
    if o.tolerance is not None:
        body["tolerance"] = float(o.tolerance)
        if time_budget_ms is not None:
            body["time_budget_ms"] = time_budget_ms
    if o.correction is not None:
        body["correction"] = bool(o.correction)
    return body


def accept(transport: str) -> dict:
    """The ``Accept`` header of a solve answered over ``transport`` ("npy" or "json")."""
    return {"Accept": NPY if transport == "npy" else "application/json"}


def grid_values(grid: Mapping | None) -> int:
    """Field values a grid asks for (the server's ``Grid.size``); a malformed grid counts as 1
    and is left to the server to refuse."""
    if grid is None:
        return DEFAULT_GRID_VALUES
    try:
        if "nx" in grid or "nt" in grid:
            return max(1, int(grid["nx"]) * int(grid["nt"]))
        if "x" in grid or "t" in grid:
            return max(1, len(grid["x"]) * len(grid["t"]))
        return max(1, len(grid["points"]))
    except (KeyError, TypeError, ValueError):
        return 1


def jsonable(obj: Any) -> Any:
    """numpy arrays and scalars, nested in mappings and sequences, as JSON values."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def strict_ints(d, keys: tuple[str, ...]):
    """The server takes integers strictly: send integral floats (256.0) of ``keys`` as ints."""
    if not isinstance(d, dict):
        return d
    out = dict(d)
    for k in keys:
        v = out.get(k)
        if isinstance(v, float) and v.is_integer():
            out[k] = int(v)
    return out
