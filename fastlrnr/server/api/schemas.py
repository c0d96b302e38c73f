"""Request and response schemas of the HTTP API (pydantic v2); they are the OpenAPI contract.

Checks that need no model live here (strict types: no "1" for 1, no 0 for false, no true
for 1; finiteness, shapes, exactly one grid form, t ∈ [0, 1], unknown keys); checks that
need the loaded model or the configured limits (served domain, grid size, steps, batch
size) live in ``fastlrnr.server.api.checks``. Long lists stop at their first bad item (``fail_fast``),
so a large invalid body costs no more than a valid one. Responses are built as plain
dicts for speed; the response classes below document their shape.

One module of ~400 lines on purpose: it is the whole HTTP contract, each request beside the
response it gets, and the OpenAPI document is generated from it in this order.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model, model_validator

from fastlrnr.numerics.answer import Diagnostics, Trust
from fastlrnr.numerics.grid import STANDARD_NT, STANDARD_NX, T_END

Finite = Annotated[float, Field(allow_inf_nan=False)]
TimeValue = Annotated[float, Field(ge=0.0, le=T_END, allow_inf_nan=False)]
Tolerance = Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False)]
TimeBudget = Annotated[int, Field(ge=1, le=600_000)]
ModelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


MAX_PARAMS = 16  # more names than any family declares
ParamName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")]
Params = Annotated[
    dict[ParamName, Finite],
    Field(
        max_length=MAX_PARAMS,
        description="physical parameters by name, as the model's PDE family declares them (GET /models: "
        "family.params; the CDR family's are beta, nu, rho); a missing one is 0 (as for the fixed nu, rho "
        "of `convection`); a name the family does not declare is refused",
        examples=[{"beta": 2.0, "nu": 1.0, "rho": 1.0}],
        # a name that does not match the pattern is refused too: say so (patternProperties alone allows it)
        json_schema_extra={"additionalProperties": False},
    ),
]
"""One parameter set μ by name; the model's family checks the names (``fastlrnr.server.api.checks``)."""


Positive = Annotated[int, Field(ge=1)]
XAxis = Annotated[list[Finite], Field(min_length=1, fail_fast=True, description="radians, any finite value (periodic)")]
TAxis = Annotated[list[TimeValue], Field(min_length=1, fail_fast=True, description="times in [0, 1]")]
Points = Annotated[
    list[tuple[Finite, TimeValue]],
    Field(min_length=1, fail_fast=True, description="[[x, t], ...]: x in radians, t in [0, 1]"),
]


# The three forms of a grid, as documented in the schema (``Grid`` validates them in one class:
# a tagged union would build a Python copy of a large body just to pick the form).
class UniformGrid(_Strict):
    """x_j = 2πj/nx (j < nx, periodic), t = linspace(0, 1, nt)."""

    nx: Positive = Field(description="points in x")
    nt: Positive = Field(description="points in t")
    model_config = ConfigDict(json_schema_extra={"examples": [{"nx": STANDARD_NX, "nt": STANDARD_NT}]})


class AxesGrid(_Strict):
    """The tensor grid of two explicit axes: u comes back as len(t) × len(x)."""

    x: XAxis
    t: TAxis
    model_config = ConfigDict(json_schema_extra={"examples": [{"x": [0.0, 1.5, 3.0], "t": [0.0, 0.5, 1.0]}]})


class PointsGrid(_Strict):
    """Scattered points [x, t]: u comes back as one value per point."""

    points: Points
    model_config = ConfigDict(json_schema_extra={"examples": [{"points": [[0.0, 0.0], [3.14, 0.5]]}]})


GRID_FORMS = {"uniform": UniformGrid, "axes": AxesGrid, "points": PointsGrid}


def _grid_schema(schema: dict[str, Any], cls: type) -> None:
    """The schema of ``Grid``: exactly one of the three forms (``oneOf``)."""
    forms = [form.model_json_schema() for form in GRID_FORMS.values()]
    schema.clear()
    schema.update(
        {"title": "Grid", "description": "where to evaluate the solution: exactly one of three forms", "oneOf": forms}
    )


class Grid(_Strict):
    """Where to evaluate the solution — exactly one of ``{nx, nt}``, ``{x, t}`` or ``{points}``."""

    nx: Positive | None = None
    nt: Positive | None = None
    x: XAxis | None = None
    t: TAxis | None = None
    points: Points | None = None
    model_config = ConfigDict(json_schema_extra=_grid_schema)

    @model_validator(mode="after")
    def _one_form(self) -> Grid:
        given = [
            name for name, form in GRID_FORMS.items() if any(getattr(self, f) is not None for f in form.model_fields)
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of {nx, nt}, {x, t} or {points}")
        missing = [f for f in GRID_FORMS[given[0]].model_fields if getattr(self, f) is None]
        if missing:
            raise ValueError(
                f"a {given[0]} grid needs {' and '.join(GRID_FORMS[given[0]].model_fields)}; "
                f"{', '.join(missing)} is missing"
            )
        return self

    @property
    def kind(self) -> Literal["uniform", "axes", "points"]:
        return "uniform" if self.nx is not None else "axes" if self.x is not None else "points"

    @property
    def size(self) -> int:
        """Number of field values this grid asks for."""
        if self.kind == "uniform":
            return self.nx * self.nt
        if self.kind == "axes":
            return len(self.x) * len(self.t)
        return len(self.points)


def default_grid() -> Grid:
    return Grid(nx=STANDARD_NX, nt=STANDARD_NT)


class FastPhase(_Strict):
    """The per-query SPInProp adaptation: an optimiser on the model's collocation points,
    then a check by the full LRNR on held-out points that decides whether it is kept."""

    enabled: bool | None = Field(
        None,
        description="false: use the hypernetwork's coefficients as they are; true: adapt them; null: adapt "
        "them when the answer is not corrected or when `steps` is given (on a corrected answer the fast "
        "phase changes nothing measurable, so it does not run by default)",
    )
    steps: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="optimiser steps (at most the server's max_steps); null: the model's default; 0: no adaptation",
    )
    epochs: Annotated[int, Field(ge=0)] | None = Field(
        None, description="deprecated alias of `steps` (kept for one release)", json_schema_extra={"deprecated": True}
    )
    backend: Literal["exact", "reduced"] | None = Field(
        None,
        description="exact: the full LRNR (cost ∝ width N); reduced: the FastLRNR (independent of N); "
        "null: the model's measured default (GET /models)",
    )
    locality: Literal["auto"] | Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(
        "auto", description="weight of the locality term λ‖s − ŝ‖², or 'auto' for the model's default"
    )

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> FastPhase:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps (epochs is its deprecated alias), not both")
        return self

    @property
    def requested_steps(self) -> int | None:
        return self.steps if self.steps is not None else self.epochs


class SolveRequest(_Strict):
    model: ModelName | None = Field(None, description="model name (GET /models); null: the server's default")
    params: Params
    grid: Grid = Field(default_factory=default_grid)
    fast_phase: FastPhase = Field(default_factory=FastPhase)
    allow_extrapolation: bool = Field(
        False, description="accept parameters outside the served domain; the answer is then flagged"
    )
    correction: bool | None = Field(
        None,
        description="add the linearised correction (the first-order error the LRNR's residual implies, "
        "solved on a coarse grid) to the answer; null: the model's default (GET /models)",
    )
    tolerance: Tolerance | None = Field(
        None,
        description="largest acceptable relative L2 error (e.g. 0.01 for 1%): when the cheapest answer's "
        "estimate is above it, the service escalates (finer correction, then the reference solver) within "
        "time_budget_ms; an answer still above it is flagged",
    )
    time_budget_ms: TimeBudget | None = Field(
        None,
        description="most milliseconds, from when the request has been read and checked, that escalation to the "
        "tolerance may use (null: 2000)",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "cdr",
                    "params": {"beta": 2.0, "nu": 1.0, "rho": 1.0},
                    "grid": {"nx": STANDARD_NX, "nt": STANDARD_NT},
                    "fast_phase": {"steps": 8, "backend": "exact"},
                    "tolerance": 0.02,
                }
            ]
        }
    )


class BatchSolveRequest(_Strict):
    """Many parameter sets on one grid, solved together (one vectorised pass)."""

    model: ModelName | None = Field(None, description="model name (GET /models); null: the server's default")
    params: list[Params] = Field(
        min_length=1, fail_fast=True, description="parameter sets (at most the server's max_batch_size)"
    )
    grid: Grid = Field(default_factory=default_grid)
    fast_phase: FastPhase = Field(default_factory=FastPhase)
    allow_extrapolation: bool = Field(False, description="as for /solve, for every row")
    correction: bool | None = Field(None, description="as for /solve, for every row")
    tolerance: Tolerance | None = Field(None, description="as for /solve, for every row")
    time_budget_ms: TimeBudget | None = Field(None, description="as for /solve, for the whole batch")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "params": [{"beta": 1.5, "nu": 0.2, "rho": 0.3}, {"beta": 2.5, "nu": 1.0, "rho": 1.0}],
                    "grid": {"nx": 128, "nt": 50},
                }
            ]
        }
    )


# ------------------------------------------------------------------ responses
# An answer's trust (rung, error_estimate, within_tolerance, flags) and its diagnostics are the
# dataclasses of ``fastlrnr.numerics.answer``: the server fills them in and writes them, the client
# reads them back, and the schema below is derived from them (their types and the documentation
# under each field), so no second description of the answer exists.


def _fields_of(dc: type) -> dict[str, tuple]:
    """A dataclass's fields as pydantic field definitions: {name: (type, FieldInfo)} with the
    documentation pydantic reads from the dataclass (its attribute docstrings)."""
    props = TypeAdapter(dc).json_schema(by_alias=False)["properties"]
    hints = get_type_hints(dc)
    return {
        f.name: (hints[f.name], Field(description=props[f.name].get("description")))
        for f in dataclass_fields(dc)
        if f.name in props
    }


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="sha256 of the artifact's manifest.json (which pins every file's sha256)")


FieldValues = list[list[float]] | list[float]

BatchItem = create_model(
    "BatchItem",
    params=(dict[str, float], Field(description="the row's parameters, by the names of the model's family")),
    u=(FieldValues, Field(description="u[i][j] = u(x[j], t[i]) (nt × nx), or u at each point")),
    coefficients=(list[list[float]], Field(description="s_l per hidden layer, as used for the field")),
    **_fields_of(Trust),
    extrapolated=(bool, Field(description="the parameters lie outside the served domain")),
    diagnostics=(Diagnostics, Field(description="what the solve did (fastlrnr.numerics.answer.Diagnostics)")),
)

SolveResponse = create_model(
    "SolveResponse",
    model=(ModelRef, ...),
    grid=(Literal["uniform", "axes", "points"], ...),
    x=(list[float], Field(description="x axis (uniform/axes) or x of each point")),
    t=(list[float], Field(description="t axis (uniform/axes) or t of each point")),
    params=(dict[str, float], Field(description="the parameters, by the names of the model's family")),
    u=(FieldValues, Field(description="u[i][j] = u(x[j], t[i]) (nt × nx), or u at each point")),
    coefficients=(list[list[float]], Field(description="s_l per hidden layer, as used for the field")),
    **_fields_of(Trust),
    extrapolated=(bool, Field(description="the parameters lie outside the served domain")),
    diagnostics=(Diagnostics, Field(description="what the solve did (fastlrnr.numerics.answer.Diagnostics)")),
    request_id=(str, ...),
)


class BatchSolveResponse(BaseModel):
    model: ModelRef
    grid: Literal["uniform", "axes", "points"]
    x: list[float]
    t: list[float]
    results: list[BatchItem]  # type: ignore[valid-type]
    timings_ms: dict[str, float]
    request_id: str


class ModelInfo(BaseModel):
    name: str
    version: str
    sha256: str
    created: str
    default: bool
    family: dict = Field(
        description="the PDE family the model solves: name, equation, params (the names a request's params "
        "take, in column order), nonnegative"
    )
    domain: dict = Field(description="the parameter box the model was trained on")
    served_domain: dict = Field(
        description="where it is served (meets its accuracy target); outside → 422 unless allow_extrapolation"
    )
    extrapolation_domain: dict = Field(
        description="how far beyond the served domain answers are given with allow_extrapolation: the box the "
        "estimates' widening was measured on (stored: true), or for an artifact that does not store it the "
        "legacy rule's box; beyond it → 422 extrapolation_too_far, or with a tolerance the reference solver"
    )
    test_domain: dict
    dimensions: dict
    quality: dict
    fast_phase_defaults: dict = Field(description="the fast-phase settings used when a request gives none")
    fast_phase_measured: dict = Field(description="how the defaults were chosen: every backend measured at build time")
    error_estimate: dict = Field(
        description="the calibrated error model of uncorrected answers and its measured coverage"
    )
    correction: dict = Field(
        description="the linearised correction: its grids, whether answers are corrected by default, "
        "the calibrated error model of corrected answers and its measured coverage"
    )
    backend: str = Field(description="field evaluation back-end: onnxruntime, or numpy without a graph")
    routes: dict = Field(
        description="every route the model offers (surrogate, fast_phase, corrected:<substeps>, reference:<points>): "
        "the rates measured on this machine at warm-up (a request is priced at them scaled by the load since), "
        "each route's cost formula, "
        "what it is predicted to estimate, and its predicted milliseconds for a few query shapes (rows × sites × "
        "distinct times); with a tolerance each row takes the cheapest route predicted to meet it"
    )


class Limits(BaseModel):
    max_grid_points: int = Field(description="most field values per solution")
    max_steps: int = Field(description="most fast-phase steps a request may ask for")
    max_batch_size: int = Field(description="most parameter sets in one /solve/batch request")
    max_batch_values: int = Field(description="most field values in one /solve/batch answer")
    max_body_bytes: int = Field(description="largest request body")
    request_memory_bytes: int = Field(description="the most memory one request may take (predicted; 413 beyond)")
    max_time_budget_ms: int = Field(description="the largest time_budget_ms a request may ask for")


class ModelsResponse(BaseModel):
    default: str
    service_version: str = Field(description="the version of this service (the package's)")
    limits: Limits = Field(description="this server's request limits (a client may split work to fit)")
    models: list[ModelInfo]
    unavailable: list[dict] = Field(description="artifacts found but refused at start-up: {name, error}")


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    error: str = Field(description="machine-readable code, e.g. validation_error, out_of_domain, not_found")
    message: str
    request_id: str
    errors: list[ErrorItem] = Field(default_factory=list)
