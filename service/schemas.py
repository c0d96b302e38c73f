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
ModelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    points: list[tuple[Finite, Finite]] | None = Field(None, min_length=1)

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
    """The per-query SPInProp adaptation (method.md §5)."""

    enabled: bool = Field(True, description="false: use the hypernetwork's coefficients as they are")
    epochs: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Adam epochs (at most the server's max_epochs); null: the model's default "
                     "(capped at max_epochs); 0: no adaptation")
    locality: Literal["auto"] | Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = Field(
        "auto", description="λ_loc of the locality term, or 'auto' to choose it per query")


class SolveRequest(_Strict):
    model: ModelName | None = Field(None, description="model name (GET /models); null: the server's default")
    params: Params
    grid: Grid = Field(default_factory=default_grid)
    fast_phase: FastPhase = Field(default_factory=FastPhase)
    allow_extrapolation: bool = Field(False, description="accept parameters outside the trained domain; "
                                                         "the response's `extrapolated` says when used")

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "cdr", "params": {"beta": 2.0, "nu": 0.5, "rho": 1.0}, "grid": {"nx": 256, "nt": 100},
         "fast_phase": {"epochs": 400, "locality": "auto"}}]})


class BatchSolveRequest(_Strict):
    """Many parameter sets on one grid, solved together (one vectorised pass)."""

    model: ModelName | None = None
    params: list[Params] = Field(min_length=1)
    grid: Grid = Field(default_factory=default_grid)
    fast_phase: FastPhase = Field(default_factory=FastPhase)
    allow_extrapolation: bool = False


# ------------------------------------------------------------------ responses (documentation)


class ModelRef(BaseModel):
    name: str
    version: str
    sha256: str = Field(description="sha256 of the artifact's manifest.json (which pins every file's sha256)")


class FastPhaseDiagnostics(BaseModel):
    enabled: bool
    epochs_requested: int
    epochs_run: int = Field(description="epoch of the returned coefficients (0: the hypernetwork's)")
    locality: float | None = Field(description="λ_loc used (chosen when 'auto')")
    accepted: bool = Field(description="whether the fast-phase update was kept (else the hypernetwork's "
                                       "coefficients are returned)")
    J_before: float | None = Field(description="fast-phase objective at the hypernetwork's coefficients")
    J_after: float | None = Field(description="fast-phase objective at the returned coefficients")
    residual_before: float | None = Field(description="a-posteriori residual of the full LRNR, before")
    residual_after: float | None = Field(description="a-posteriori residual of the full LRNR, after")


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
    extrapolated: bool
    diagnostics: Diagnostics
    request_id: str


class BatchItem(BaseModel):
    params: dict[str, float]
    u: list[list[float]] | list[float]
    coefficients: list[list[float]]
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
    domain: dict
    test_domain: dict
    dimensions: dict
    quality: dict
    fast_phase_defaults: dict
    backend: str = Field(description="field evaluation back-end: onnxruntime, or numpy without a graph")


class ModelsResponse(BaseModel):
    default: str
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
