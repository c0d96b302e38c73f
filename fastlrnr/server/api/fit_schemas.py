"""The request and response schemas of ``POST /fit`` (pydantic v2): the OpenAPI contract of
parameter estimation, beside ``fastlrnr.server.api.schemas`` (whose strict types, grid and
error body it shares).

Checks that need no model live here (strict types, finite numbers, x ∈ [0, 2π], t ∈ [0, 1],
as many values as points, σ > 0, a bound's low ≤ high); those that need the model or the
limits (parameter names, the served domain, enough observations for the free parameters, the
number of observations) live in ``fastlrnr.server.api.fit``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.server.api.schemas import (
    MAX_PARAMS,
    Finite,
    Grid,
    ModelName,
    ModelRef,
    ParamName,
    TimeBudget,
    TimeValue,
    _Strict,
)

XValue = Annotated[float, Field(ge=0.0, le=X_PERIOD, allow_inf_nan=False)]
ObservedPoints = Annotated[
    list[tuple[XValue, TimeValue]],
    Field(
        min_length=1,
        fail_fast=True,
        description="[[x, t], ...]: x in radians within [0, 2π] (a value outside is refused: it is most likely "
        "in other units), t in [0, 1]",
    ),
]
ObservedValues = Annotated[list[Finite], Field(min_length=1, fail_fast=True, description="u at each point, in order")]
Bound = Annotated[tuple[Finite, Finite], Field(description="[low, high], low ≤ high; low = high holds the parameter")]
Refinement = Literal["auto", "corrected", "reference", "none"]


class FitObservations(_Strict):
    """Observed values of u at scattered points."""

    points: ObservedPoints
    u: ObservedValues

    @model_validator(mode="after")
    def _one_value_per_point(self) -> FitObservations:
        if len(self.u) != len(self.points):
            raise ValueError(f"observations.u has {len(self.u)} values for {len(self.points)} points")
        return self


class FitRequest(_Strict):
    """Which parameters explain the observations, and how sure is that."""

    model: ModelName | None = Field(None, description="model name (GET /models); null: the server's default")
    observations: FitObservations
    noise: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = Field(
        None,
        description="the observations' noise σ (one standard deviation, in u's units), known; null: estimate it "
        "from the residual (then the intervals use Student's t)",
    )
    bounds: Annotated[dict[ParamName, Bound], Field(max_length=MAX_PARAMS)] | None = Field(
        None,
        description="the box searched, per parameter by name; a parameter not named keeps the model's served "
        "domain. Outside the served domain only with allow_extrapolation",
    )
    fixed: Annotated[dict[ParamName, Finite], Field(max_length=MAX_PARAMS)] | None = Field(
        None, description="parameters held at a value, by name (not fitted); a name may not also have bounds"
    )
    allow_extrapolation: bool = Field(
        False, description="accept bounds and fixed values outside the served domain (up to its extrapolation range)"
    )
    starts: Annotated[int, Field(ge=1, le=16)] | None = Field(
        None, description="Levenberg–Marquardt starts, the best points of a screening grid (null: 1, the best)"
    )
    refinement: Refinement = Field(
        "auto",
        description="what the fit is refined on after the LRNR: auto (the corrected answer, the reference solver "
        "where the corrected answer's error could bias the fit), corrected, reference, or none (the LRNR alone: "
        "biased by the surrogate's own error)",
    )
    grid: Grid | None = Field(None, description="also return the fitted field on this grid (as /solve answers it)")
    time_budget_ms: TimeBudget | None = Field(
        None, description="most milliseconds the reference solver's attempts may take (null: 2000)"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "cdr",
                    "observations": {
                        "points": [[0.5, 0.2], [1.7, 0.4], [2.9, 0.6], [4.1, 0.8], [5.3, 1.0]],
                        "u": [1.31, 1.52, 0.86, 0.55, 0.71],
                    },
                    "noise": 0.01,
                }
            ]
        }
    )


# ------------------------------------------------------------------ responses (documentation)

FitFlagName = Literal["at_bound", "not_identifiable", "poor_fit", "not_converged", "outside_served_domain"]


class FitFlag(BaseModel):
    code: FitFlagName
    message: str
    params: list[str] = Field(description="the parameters it concerns (empty: the fit as a whole)")


class FitNoise(BaseModel):
    sigma: float = Field(description="σ: the given noise level, or its estimate √(RSS/(n − q))")
    estimated: bool
    effective: float = Field(description="σ_eff = √(σ² + n ε²): σ with the served answer's error at its worst")


class FitMisfit(BaseModel):
    chi2: float | None = Field(description="Σ r² / σ_eff² at the fit (null: not finite, a residual of exactly 0)")
    dof: int = Field(description="observations − free parameters")
    p_value: float | None = Field(description="P(χ²_dof ≥ chi2) (null without degrees of freedom)")
    residual_rms: float = Field(description="√(Σ r² / n)")


class FitSurrogate(BaseModel):
    rung: Literal["surrogate", "corrected", "reference"] = Field(description="the answer the fit was refined on")
    error_estimate: float | None = Field(description="its calibrated relative L2 error at the fit")
    error: float = Field(description="ε: that estimate as an RMS error in u's units")
    widening: float | None = Field(description="σ_eff / σ: how much the served answer's error widens the intervals")


class FitCovariance(BaseModel):
    params: list[str] = Field(description="the free parameters, in the matrix's order")
    matrix: list[list[float | None]] = Field(description="the Laplace covariance (null where not identifiable)")


class FitField(BaseModel):
    grid: Literal["uniform", "axes", "points"]
    x: list[float]
    t: list[float]
    u: list[list[float]] | list[float] = Field(description="the fitted field, as /solve answers it")
    rung: str
    error_estimate: float


class FitResponse(BaseModel):
    model: ModelRef
    params: dict[str, float] = Field(description="the fit, every parameter of the family by name")
    free: list[str] = Field(description="the parameters fitted (the others were held)")
    std_errors: dict[str, float | None] = Field(description="per free parameter (null: not identifiable)")
    intervals: dict[str, list[float]] = Field(description="per free parameter, [low, high] at `level`, cut to bounds")
    level: float = Field(description="the intervals' coverage (0.95)")
    covariance: FitCovariance
    bounds: dict[str, list[float]] = Field(description="the box searched, every parameter")
    noise: FitNoise
    misfit: FitMisfit
    surrogate: FitSurrogate
    flags: list[FitFlag] = Field(description="why the fit may not be trusted as it stands (empty: no reason known)")
    iterations: int = Field(description="Levenberg–Marquardt iterations of the best start and the refinement")
    starts: int
    refinements: int = Field(description="passes of the served answer (each with its Jacobian's differences)")
    converged: bool
    extrapolated: bool = Field(description="the fit lies outside the served domain")
    field: FitField | None = Field(None, description="the fitted field on the requested grid")
    diagnostics: dict = Field(description="timings_ms: queue, screen, lm, refine, uncertainty, fit, field, total")
    request_id: str
