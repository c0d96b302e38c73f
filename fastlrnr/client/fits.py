"""The client side of ``POST /fit`` (sans I/O): options, the request body, the typed answer and
the plan that sends it.

``SolveClient.fit`` and ``AsyncSolveClient.fit`` run :func:`fit`:

    res = client.fit(points, u, noise=0.01, model="allen_cahn")   # points (n, 2) as [x, t], u (n,)
    res.params["rho"], res.std_errors["rho"], res.intervals["rho"]  # fit, standard error, 95 % interval
    res.covariance                                                  # (q, q) over res.free
    res.chi2, res.dof, res.p_value, res.flags                       # misfit and why not to trust it
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import httpx
import numpy as np

from fastlrnr.client.answers import raise_for
from fastlrnr.client.options import Plan, Request, jsonable, strict_ints
from fastlrnr.client.plans import ClientConfig, send
from fastlrnr.client.results import ModelRef


@dataclass(frozen=True)
class FitOptions:
    """The keyword options of ``fit``. ``noise``: the observations' σ (None: estimated from the
    residual); ``bounds``: {name: (low, high)} (a parameter not named keeps the served domain);
    ``fixed``: {name: value} held; ``model`` None: the client's; ``starts``, ``refinement``
    ("auto", "corrected", "reference", "none") and ``time_budget_ms`` None: the server's
    defaults; ``grid``: also return the fitted field there (as ``solve``'s ``grid``)."""

    noise: float | None = None
    bounds: Mapping[str, Sequence[float]] | None = None
    fixed: Mapping[str, float] | None = None
    model: str | None = None
    allow_extrapolation: bool = False
    starts: int | None = None
    refinement: Literal["auto", "corrected", "reference", "none"] | None = None
    grid: Mapping | None = None
    time_budget_ms: int | None = None


class FitKwargs(TypedDict, total=False):
    """:class:`FitOptions` as keyword arguments, for type checkers (``Unpack[FitKwargs]``)."""

    noise: float | None
    bounds: Mapping[str, Sequence[float]] | None
    fixed: Mapping[str, float] | None
    model: str | None
    allow_extrapolation: bool
    starts: int | None
    refinement: Literal["auto", "corrected", "reference", "none"] | None
    grid: Mapping | None
    time_budget_ms: int | None


@dataclass(frozen=True)
class FitFlag:
    """Why a fit may not be trusted as it stands: ``code`` (at_bound, not_identifiable, poor_fit,
    not_converged, outside_served_domain, or a newer server's), ``message``, and the ``params``
    it concerns (empty: the fit as a whole)."""

    code: str
    message: str
    params: tuple[str, ...] = ()


@dataclass
class FitField:
    """The fitted field on the requested grid, as ``solve`` answers it: ``u`` (nt, nx) or (P,)."""

    u: np.ndarray
    x: np.ndarray
    t: np.ndarray
    grid: str
    rung: str
    error_estimate: float


@dataclass
class FitResult:
    """A fit. ``params``: every parameter of the model's family; ``free``: those fitted, the order
    of ``covariance`` (q, q) (NaN where not identifiable); ``std_errors`` (None: not
    identifiable) and ``intervals`` (at ``level``, cut to ``bounds``) per free parameter;
    ``sigma`` the noise level used (``sigma_estimated``: from the residual), ``sigma_effective``
    with the served answer's error at its worst; ``chi2`` with ``dof`` and its ``p_value``;
    ``rung``: the answer the fit was refined on, its ``surrogate_error_estimate`` (relative),
    ``surrogate_error`` (in u's units) and the ``widening`` of the intervals it causes."""

    params: dict[str, float]
    free: list[str]
    std_errors: dict[str, float | None]
    intervals: dict[str, tuple[float, float]]
    level: float
    covariance: np.ndarray
    bounds: dict[str, tuple[float, float]]
    sigma: float
    sigma_estimated: bool
    sigma_effective: float
    chi2: float | None
    dof: int
    p_value: float | None
    residual_rms: float
    rung: str
    surrogate_error_estimate: float | None
    surrogate_error: float
    widening: float | None
    flags: list[FitFlag]
    iterations: int
    starts: int
    refinements: int
    converged: bool
    extrapolated: bool
    model: ModelRef
    field: FitField | None = None
    timings_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    request_id: str | None = None

    @property
    def flag_codes(self) -> set[str]:
        return {f.code for f in self.flags}


def fit_body(points, u, o: FitOptions, *, model: str | None) -> dict:
    """The JSON body of ``POST /fit`` (``model``: the client's; the options' wins)."""
    pts = np.asarray(points, dtype=np.float64)
    vals = np.asarray(u, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2) as [x, t] rows, got {pts.shape}")
    if vals.shape != (pts.shape[0],):
        raise ValueError(f"u must have one value per point: shape ({pts.shape[0]},), got {vals.shape}")
    body: dict[str, Any] = {"observations": {"points": pts.tolist(), "u": vals.tolist()}}
    if o.model or model:
        body["model"] = o.model or model
    if o.noise is not None:
        body["noise"] = float(o.noise)
    if o.bounds is not None:
        body["bounds"] = {str(k): [float(v[0]), float(v[1])] for k, v in o.bounds.items()}
    if o.fixed is not None:
        body["fixed"] = {str(k): float(v) for k, v in o.fixed.items()}
    if o.allow_extrapolation:
        body["allow_extrapolation"] = True
    if o.starts is not None:
        body["starts"] = int(o.starts)
    if o.refinement is not None:
        body["refinement"] = o.refinement
    if o.grid is not None:
        body["grid"] = strict_ints(jsonable(o.grid), ("nx", "nt"))
    if o.time_budget_ms is not None:
        body["time_budget_ms"] = int(o.time_budget_ms)
    return body


def _nan(v) -> float:
    return float("nan") if v is None else float(v)


def fit_result(response: httpx.Response) -> FitResult:
    """A ``/fit`` answer as a :class:`FitResult` (:class:`~fastlrnr.client.results.SolveError` for
    a refusal)."""
    raise_for(response)
    d = response.json()
    cov = np.array([[_nan(v) for v in row] for row in d["covariance"]["matrix"]], dtype=np.float64)
    f = d.get("field")
    fitted = None
    if f is not None:
        fitted = FitField(
            u=np.asarray(f["u"], dtype=np.float64),
            x=np.asarray(f["x"], dtype=np.float64),
            t=np.asarray(f["t"], dtype=np.float64),
            grid=f["grid"],
            rung=f["rung"],
            error_estimate=float(f["error_estimate"]),
        )
    noise, misfit, sur = d["noise"], d["misfit"], d["surrogate"]
    return FitResult(
        params={k: float(v) for k, v in d["params"].items()},
        free=list(d["free"]),
        std_errors={k: None if v is None else float(v) for k, v in d["std_errors"].items()},
        intervals={k: (float(v[0]), float(v[1])) for k, v in d["intervals"].items()},
        level=float(d["level"]),
        covariance=cov.reshape(len(d["free"]), len(d["free"])),
        bounds={k: (float(v[0]), float(v[1])) for k, v in d["bounds"].items()},
        sigma=float(noise["sigma"]),
        sigma_estimated=bool(noise["estimated"]),
        sigma_effective=float(noise["effective"]),
        chi2=None if misfit["chi2"] is None else float(misfit["chi2"]),
        dof=int(misfit["dof"]),
        p_value=None if misfit["p_value"] is None else float(misfit["p_value"]),
        residual_rms=float(misfit["residual_rms"]),
        rung=str(sur["rung"]),
        surrogate_error_estimate=None if sur["error_estimate"] is None else float(sur["error_estimate"]),
        surrogate_error=float(sur["error"]),
        widening=None if sur["widening"] is None else float(sur["widening"]),
        flags=[FitFlag(str(x["code"]), str(x["message"]), tuple(x.get("params") or ())) for x in d["flags"]],
        iterations=int(d["iterations"]),
        starts=int(d["starts"]),
        refinements=int(d["refinements"]),
        converged=bool(d["converged"]),
        extrapolated=bool(d["extrapolated"]),
        model=ModelRef.from_dict(d["model"]),
        field=fitted,
        timings_ms=dict(d.get("diagnostics", {}).get("timings_ms", {})),
        request_id=d.get("request_id"),
    )


def fit(cfg: ClientConfig, points, u, o: FitOptions) -> Plan[FitResult]:
    """One ``POST /fit`` (retried on 503, 408 and connection failures: a fit is a pure function
    of its input)."""
    body = fit_body(points, u, o, model=cfg.model)
    response = yield from send(cfg, Request("POST", "/fit", {"json": body}))
    return fit_result(response)
