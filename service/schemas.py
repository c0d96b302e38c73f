"""Request and response schemas of the HTTP API (pydantic v2); they are the OpenAPI contract.

Checks that need no model live here (types, finiteness, shapes, grid forms, t ∈ [0, 1],
unknown keys); checks that need the loaded model or the configured limits (trained
domain, grid size, epochs, batch size) live in ``service.solver``. Responses are
built as plain dicts for speed; the response classes below document their shape.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.pde import T_END

Finite = Annotated[float, Field(allow_inf_nan=False)]
Tolerance = Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False)]
ModelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Params(_Strict):
    """Physical parameters μ = (β, ν, ρ); a missing one is 0 (as for the fixed ν, ρ of `convection`)."""

    beta: Finite = 0.0
    nu: Finite = 0.0
    rho: Finite = 0.0

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.beta, self.nu, self.rho)


class Grid(_Strict):
    """Where to evaluate the solution — exactly one of three forms:

    - ``{"nx": 256, "nt": 100}``: x_j = 2πj/nx (j < nx, periodic), t = linspace(0, 1, nt);
    - ``{"x": [...], "t": [...]}``: the tensor grid of two explicit axes;
    - ``{"points": [[x, t], ...]}``: scattered points; the field comes back as a flat list.

    x is in radians (any finite value; the problem is 2π-periodic), t ∈ [0, 1].
    """

    nx: Annotated[int, Field(ge=1)] | None = None
    nt: Annotated[int, Field(ge=1)] | None = None
    x: list[Finite] | None = Field(None, min_length=1)
    t: list[Finite] | None = Field(None, min_length=1)
    points: list[Annotated[list[Finite], Field(min_length=2, max_length=2)]] | None = Field(
        None, min_length=1, description="[[x, t], ...]")

    @model_validator(mode="after")
    def _one_form(self) -> "Grid":
        uniform = self.nx is not None or self.nt is not None
        axes = self.x is not None or self.t is not None
        points = self.points is not None
        if uniform + axes + points != 1:
            raise ValueError("give exactly one of {nx, nt}, {x, t} or {points}")
        if uniform and (self.nx is None or self.nt is None):
            raise ValueError("a uniform grid needs both nx and nt")
        if axes and (self.x is None or self.t is None):
            raise ValueError("an axes grid needs both x and t")
        times = self.t if axes else [p[1] for p in self.points] if points else []
        bad = next((v for v in times if not 0.0 <= v <= T_END), None)
        if bad is not None:
            raise ValueError(f"t = {bad:g} is outside the time interval [0, {T_END:g}]")
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
    return Grid(nx=256, nt=100)


class FastPhase(_Strict):
    """The per-query SPInProp adaptation: an optimiser on the model's collocation points,
    then a check by the full LRNR on held-out points that decides whether it is kept."""

    enabled: bool = Field(True, description="false: use the hypernetwork's coefficients as they are")
    steps: Annotated[int, Field(ge=0)] | None = Field(
        None, description="optimiser steps (at most the server's max_steps); null: the model's default; "
                          "0: no adaptation")
    epochs: Annotated[int, Field(ge=0)] | None = Field(
        None, description="deprecated alias of `steps` (kept for one release)",
        json_schema_extra={"deprecated": True})
    backend: Literal["exact", "reduced"] | None = Field(
        None, description="exact: the full LRNR (cost ∝ width N); reduced: the FastLRNR (independent of N); "
                          "null: the model's measured default (GET /models)")
    locality: Literal["auto"] | Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(
        "auto", description="weight of the locality term λ‖s − ŝ‖², or 'auto' for the model's default")

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> "FastPhase":
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
    allow_extrapolation: bool = Field(False, description="accept parameters outside the served domain; "
                                                         "the answer is then flagged")
    tolerance: Tolerance | None = Field(None, description="largest acceptable relative L2 error (e.g. 0.01 for 1%); "
                                                          "an answer whose error estimate exceeds it is flagged")

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, json_schema_extra={"examples": [
        {"model": "cdr", "params": {"beta": 2.0, "nu": 0.5, "rho": 1.0}, "grid": {"nx": 256, "nt": 100},
         "fast_phase": {"steps": 8, "backend": "exact"}, "tolerance": 0.02}]})


class BatchSolveRequest(_Strict):
    """Many parameter sets on one grid, solved together (one vectorised pass)."""

    model: ModelName | None = None
    params: list[Params] = Field(min_length=1)
    grid: Grid = Field(default_factory=default_grid)
    fast_phase: FastPhase = Field(default_factory=FastPhase)
    allow_extrapolation: bool = False
    tolerance: Tolerance | None = None


# ------------------------------------------------------------------ responses (documentation)


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="sha256 of the artifact's manifest.json (which pins every file's sha256)")


class FastPhaseDiagnostics(BaseModel):
    enabled: bool
    backend: str | None = Field(description="exact or reduced (null when disabled)")
    optimizer: str | None = Field(description="lm (Levenberg–Marquardt) or adam (null when disabled)")
    steps_requested: int
    steps_run: int = Field(description="optimiser steps behind the returned coefficients (0: the hypernetwork's)")
    locality: float | None = Field(description="locality weight of the kept update (null when ŝ was kept)")
    accepted: bool = Field(description="whether the update was kept (else the hypernetwork's coefficients)")
    objective_before: float | None = Field(description="optimiser objective at the hypernetwork's coefficients")
    objective_after: float | None = Field(description="optimiser objective at the returned coefficients")
    residual_before: float = Field(description="RMS PDE residual of the full LRNR on the check points, hypernetwork")
    residual_after: float = Field(description="the same for the returned coefficients (what the estimate uses)")


class Flag(BaseModel):
    code: Literal["estimate_above_tolerance", "outside_served_domain"]
    message: str


class Diagnostics(BaseModel):
    timings_ms: dict[str, float] = Field(description="queue, hypernet, fast_phase, field, encode, total")
    fast_phase: FastPhaseDiagnostics
    extrapolated: bool
    batch_size: int = Field(description="rows solved together in the pass that produced this result")


class SolveResponse(BaseModel):
    model: ModelRef
    params: dict[str, float]
    grid: Literal["uniform", "axes", "points"]
    x: list[float] = Field(description="x axis (uniform/axes) or x of each point")
    t: list[float] = Field(description="t axis (uniform/axes) or t of each point")
    u: list[list[float]] | list[float] = Field(description="u[i][j] = u(x[j], t[i]) (nt × nx), or u at each point")
    coefficients: list[list[float]] = Field(description="s_l per hidden layer, as used for the field")
    error_estimate: float = Field(description="estimated relative L2 error against the true solution, from the "
                                              "a-posteriori residual (calibrated per model; GET /models)")
    within_tolerance: bool | None = Field(description="error_estimate ≤ tolerance (null when none was given)")
    flags: list[Flag] = Field(description="why this answer may not be trusted (empty: no reason known)")
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str


class BatchItem(BaseModel):
    params: dict[str, float]
    u: list[list[float]] | list[float]
    coefficients: list[list[float]]
    error_estimate: float
    within_tolerance: bool | None
    flags: list[Flag]
    extrapolated: bool
    diagnostics: Diagnostics


class BatchSolveResponse(BaseModel):
    model: ModelRef
    grid: Literal["uniform", "axes", "points"]
    x: list[float]
    t: list[float]
    results: list[BatchItem]
    timings_ms: dict[str, float]
    request_id: str


class ModelInfo(BaseModel):
    name: str
    version: str
    sha256: str
    created: str
    default: bool
    domain: dict = Field(description="the parameter box the model was trained on")
    served_domain: dict = Field(description="where it is served (meets its accuracy target); outside → 422 "
                                            "unless allow_extrapolation")
    test_domain: dict
    dimensions: dict
    quality: dict
    fast_phase_defaults: dict = Field(description="the fast-phase settings used when a request gives none")
    fast_phase_measured: dict = Field(description="how the defaults were chosen: every backend measured at build time")
    error_estimate: dict = Field(description="the calibrated error model and its measured coverage")
    backend: str = Field(description="field evaluation back-end: onnxruntime, or numpy without a graph")


class ModelsResponse(BaseModel):
    default: str
    service_version: str = Field(description="the version of this service (the package's)")
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
