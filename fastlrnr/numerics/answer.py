"""A served answer's trust and diagnostics, defined once for the server and its client.

Per row of a solve the server reports what produced the answer and how far to trust it:

- :class:`Diagnostics`: the fast phase (:class:`FastPhaseDiagnostics`), the correction
  (:class:`CorrectionDiagnostics`), the rung and the escalation (:class:`AnswerDiagnostics`,
  :class:`Escalation`), and the request's context (timings, extrapolated, rows in the pass);
- :class:`Flag`: a reason not to trust the answer, its ``code`` one of :class:`FlagCode`;
- :func:`answer_flags`: the rule that decides ``within_tolerance`` and the flags of a row.

The solver and the ladder (``fastlrnr.server.engine.solver``, ``fastlrnr.numerics.ladder``) fill these per row,
``fastlrnr.server.api.responses`` writes them as the HTTP JSON (``to_json``), and the client reads them
back (``from_json``); ``fastlrnr.server.api.schemas`` documents the same shape for OpenAPI. Pure Python
(no numpy, nothing else of the numerics), so that the client can import it alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class FlagCode(StrEnum):
    """Why an answer may not be trusted."""

    ESTIMATE_ABOVE_TOLERANCE = "estimate_above_tolerance"
    OUTSIDE_SERVED_DOMAIN = "outside_served_domain"
    TIME_BUDGET_EXHAUSTED = "time_budget_exhausted"


class Rung(StrEnum):
    """What produced an answer's field, cheapest first (``fastlrnr.numerics.ladder``)."""

    SURROGATE = "surrogate"  # the LRNR alone
    CORRECTED = "corrected"  # the LRNR plus its correction
    REFERENCE = "reference"  # the reference solver


class CoefficientSource(StrEnum):
    """Which stage produced the coefficients an answer returns."""

    HYPERNETWORK = "hypernetwork"
    FAST_PHASE = "fast_phase"


# How a schema library (the server's pydantic) reads these dataclasses: the attribute docstrings
# below each field are its documentation. A plain dict: nothing here imports pydantic.
DOCUMENTED = {"use_attribute_docstrings": True}

A_PRIORI = "a_priori"  # AnswerDiagnostics.estimate: the estimate came from the a-priori error map
SITE_ENVELOPE = "site_envelope"  # AnswerDiagnostics.estimate: a bound at the returned sites (the site envelope)


def finite_or_none(v) -> float | None:
    """A diagnostic number for the answer: the float, or None when missing or not finite."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


def _opt_int(v) -> int | None:
    return None if v is None else int(v)


# ---------------------------------------------------------------------- flags


@dataclass(frozen=True)
class Flag:
    """A reason not to trust an answer: ``code`` is a :class:`FlagCode` (a plain string when a
    newer server sends a code this version does not know) and ``message`` says it in words."""

    __pydantic_config__ = DOCUMENTED

    code: FlagCode
    """why the answer may not be trusted"""
    message: str
    """the reason in words"""

    def to_json(self) -> dict:
        return {"code": str(self.code), "message": self.message}

    @classmethod
    def from_json(cls, d: Mapping) -> Flag:
        code = str(d["code"])
        return cls(FlagCode(code) if code in FlagCode._value2member_map_ else code, str(d["message"]))


def outside_served_domain(name: str, value: float, allowed: str) -> Flag:
    """The flag of a parameter solved outside the served domain (``allowed``: its bounds in words)."""
    return Flag(
        FlagCode.OUTSIDE_SERVED_DOMAIN,
        f"{name} = {value!r} is outside the served domain ({name} {allowed}): "
        "the error estimate is not calibrated there",
    )


def answer_flags(
    estimate: float, tolerance: float | None, outside: Sequence[Flag], escalation: Escalation | None
) -> tuple[bool | None, list[Flag]]:
    """(within_tolerance, flags) of one answer: the served-domain breaches found when the
    request was checked (``outside``), the tolerance check of its error estimate (None without
    a tolerance), and whether the time budget stopped its escalation."""
    flags = list(outside)
    within = None
    if tolerance is not None:
        within = bool(estimate <= tolerance)
        if not within:
            flags.append(
                Flag(
                    FlagCode.ESTIMATE_ABOVE_TOLERANCE,
                    f"the estimated relative L2 error {estimate:.3g} exceeds the requested tolerance {tolerance:g}",
                )
            )
            if escalation is not None and escalation.time_budget_exhausted:
                flags.append(
                    Flag(
                        FlagCode.TIME_BUDGET_EXHAUSTED,
                        "the time budget ran out before a rung met the tolerance; this is the best "
                        "answer found in time",
                    )
                )
    return within, flags


@dataclass
class Trust:
    """How far to trust an answer, as every response states it: what produced it, its estimated
    relative L2 error, whether that meets the request's tolerance, and the reasons not to trust it."""

    __pydantic_config__ = DOCUMENTED

    rung: Rung
    """what produced u (diagnostics.answer)"""
    error_estimate: float
    """estimated relative L2 error against the true solution at the returned sites (calibrated per model;
    GET /models)"""
    within_tolerance: bool | None
    """error_estimate ≤ tolerance (null when none was given)"""
    flags: list[Flag]
    """why this answer may not be trusted (empty: no reason known)"""

    @classmethod
    def of(
        cls, rung: str, estimate: float, tolerance: float | None, outside: Sequence[Flag], escalation: Escalation | None
    ) -> Trust:
        """An answer's trust by the rule of ``answer_flags``."""
        within, flags = answer_flags(estimate, tolerance, outside, escalation)
        return cls(rung, float(estimate), within, flags)

    def to_json(self) -> dict:
        return {
            "rung": str(self.rung),
            "error_estimate": self.error_estimate,
            "within_tolerance": self.within_tolerance,
            "flags": [f.to_json() for f in self.flags],
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Trust:
        within = d.get("within_tolerance")
        return cls(
            str(d.get("rung", Rung.CORRECTED)),
            float(d["error_estimate"]),
            None if within is None else bool(within),
            [Flag.from_json(f) for f in d.get("flags") or ()],
        )


# ---------------------------------------------------------------------- diagnostics


@dataclass(frozen=True)
class FastPhaseDiagnostics:
    """What the per-query fast phase did. The defaults are a row that did not run it.

    ``accepted``: the update was kept (else the hypernetwork's coefficients were returned);
    ``locality``: the weight of the kept update; objectives are the optimiser's at the
    hypernetwork's and at the returned coefficients; residuals the RMS PDE residual of the full
    LRNR on the check grid (the correction grid when the fast phase did not run); error proxies
    the linearised error that residual implies (``error_proxy_after`` is what acceptance
    compares and the error estimate calibrates); None where nothing evaluated them.
    ``steps_requested``: the request's (the response fills it in)."""

    __pydantic_config__ = DOCUMENTED

    enabled: bool = False
    """whether the fast phase ran"""
    backend: str | None = None
    """exact or reduced (null when disabled)"""
    optimizer: str | None = None
    """lm (Levenberg–Marquardt) or adam (null when disabled)"""
    steps_run: int = 0
    """optimiser steps behind the returned coefficients (0: the hypernetwork's)"""
    locality: float | None = None
    """locality weight of the kept update (null when ŝ was kept)"""
    accepted: bool = False
    """whether the update was kept (else the hypernetwork's coefficients)"""
    objective_before: float | None = None
    """optimiser objective at the hypernetwork's coefficients"""
    objective_after: float | None = None
    """optimiser objective at the returned coefficients"""
    residual_before: float | None = None
    """RMS PDE residual of the full LRNR on the check (or correction) grid, hypernetwork; null when nothing
    evaluated it"""
    residual_after: float | None = None
    """the same for the returned coefficients"""
    error_proxy_before: float | None = None
    """the linearised error the hypernetwork's residual implies (relative L2, uncalibrated)"""
    error_proxy_after: float | None = None
    """the same for the returned coefficients: what acceptance compares and the estimate calibrates"""
    steps_requested: int = 0
    """the optimiser steps the request asked for"""

    def to_json(self) -> dict:
        return asdict(self)  # every field is a plain value, in the wire's order

    @classmethod
    def from_json(cls, d: Mapping) -> FastPhaseDiagnostics:
        return cls(
            enabled=bool(d["enabled"]),
            backend=d.get("backend"),
            optimizer=d.get("optimizer"),
            steps_run=int(d["steps_run"]),
            locality=_opt_float(d.get("locality")),
            accepted=bool(d["accepted"]),
            objective_before=_opt_float(d.get("objective_before")),
            objective_after=_opt_float(d.get("objective_after")),
            residual_before=_opt_float(d.get("residual_before")),
            residual_after=_opt_float(d.get("residual_after")),
            error_proxy_before=_opt_float(d.get("error_proxy_before")),
            error_proxy_after=_opt_float(d.get("error_proxy_after")),
            steps_requested=int(d["steps_requested"]),
        )


@dataclass(frozen=True)
class GridSize:
    """A grid's size: nx points in x, nt in t."""

    __pydantic_config__ = DOCUMENTED

    nx: int
    """points in x"""
    nt: int
    """points in t"""


@dataclass(frozen=True)
class CorrectionDiagnostics:
    """The correction of an answer. ``applied``: added to the LRNR's field; the rest only then:
    ``two_grid_difference`` (what the estimate of a corrected answer calibrates), ``substeps``
    of the error equation, ``newton_steps`` and the last step's ``newton_increment`` (None: none
    ran), ``grid`` (nx, nt) of the correction grid."""

    __pydantic_config__ = DOCUMENTED

    applied: bool = False
    """whether the correction was added to the LRNR's field"""
    two_grid_difference: float | None = None
    """what the estimate of a corrected answer calibrates: the correction's change from a coarser grid"""
    substeps: int | None = None
    """integration steps of the error equation per grid interval"""
    newton_steps: int | None = None
    """Newton steps after the linearised solve"""
    newton_increment: float | None = None
    """the last Newton step's ‖Δe‖/‖u‖ (null: none ran)"""
    grid: GridSize | None = None
    """the correction grid"""

    def to_json(self) -> dict:
        out = {"applied": self.applied, "two_grid_difference": self.two_grid_difference}
        if self.applied:
            out["substeps"] = self.substeps
            out["newton_steps"] = self.newton_steps
            out["newton_increment"] = self.newton_increment
            out["grid"] = None if self.grid is None else {"nx": self.grid.nx, "nt": self.grid.nt}
        return out

    @classmethod
    def from_json(cls, d: Mapping) -> CorrectionDiagnostics:
        grid = d.get("grid")
        return cls(
            applied=bool(d.get("applied", False)),
            two_grid_difference=_opt_float(d.get("two_grid_difference")),
            substeps=_opt_int(d.get("substeps")),
            newton_steps=_opt_int(d.get("newton_steps")),
            newton_increment=_opt_float(d.get("newton_increment")),
            grid=None if grid is None else GridSize(int(grid["nx"]), int(grid["nt"])),
        )


NOT_CORRECTED = CorrectionDiagnostics()


@dataclass
class Escalation:
    """The climb of an answer whose first estimate was above the tolerance: the rung it started
    from, the rungs tried after it (``corrected:<substeps>``, ``reference``) and whether the time
    budget stopped it."""

    __pydantic_config__ = {**DOCUMENTED, "alias_generator": lambda name: "from" if name == "from_rung" else name}

    from_rung: Rung
    """the rung of the cheapest answer (on the wire: ``from``)"""
    tried: list[str] = field(default_factory=list)
    """the rungs tried after it: corrected:<substeps>, reference"""
    time_budget_exhausted: bool = False
    """whether the time budget stopped the climb"""

    @staticmethod
    def corrected(substeps: int) -> str:
        """The name of the corrected rung at ``substeps`` in ``tried``."""
        return f"{Rung.CORRECTED}:{substeps}"

    def to_json(self) -> dict:
        return {
            "from": str(self.from_rung),
            "tried": [str(r) for r in self.tried],
            "time_budget_exhausted": self.time_budget_exhausted,
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Escalation:
        return cls(str(d["from"]), [str(r) for r in d.get("tried", ())], bool(d.get("time_budget_exhausted", False)))


@dataclass
class AnswerDiagnostics:
    """What produced an answer: ``rung`` (a :class:`Rung`), ``coefficients`` (a
    :class:`CoefficientSource`), ``substeps`` (corrected: of the error equation; reference: per
    unit t), ``estimate`` (``a_priori`` when the estimate came from the a-priori error map,
    ``site_envelope`` when it bounds the error at the returned sites),
    ``reference_points`` (reference: the solver's internal Fourier points), the
    ``escalation`` when a tolerance asked for more, and with a tolerance the ``route`` that
    answered and the ``reason`` it was taken (``fastlrnr.numerics.routes``). None fields are left
    out of the JSON."""

    __pydantic_config__ = DOCUMENTED

    rung: Rung
    """what produced u: the LRNR alone, the LRNR plus its correction, or the reference solver"""
    coefficients: CoefficientSource
    """which stage produced `coefficients`"""
    substeps: int | None = None
    """corrected: error-equation substeps; reference: steps per unit t"""
    estimate: str | None = None
    """a_priori when the estimate came from the a-priori error map, site_envelope when it bounds the error at
    the returned sites; null for the rung's own estimate (the fast phase's or correction's calibrated one, the
    reference's two-resolution one)"""
    reference_points: int | None = None
    """reference rung: internal Fourier points"""
    escalation: Escalation | None = None
    """present when the tolerance asked for more"""
    route: str | None = None
    """with a tolerance: the route that answered — surrogate, fast_phase, corrected:<substeps> or
    reference:<points> (GET /models lists each model's routes and their costs)"""
    reason: str | None = None
    """with a tolerance: why that route — the cheapest predicted to meet it (with the others' predictions), the
    climb from a route whose own estimate missed, or the extrapolation box"""

    def to_json(self) -> dict:
        out = {"rung": str(self.rung), "coefficients": str(self.coefficients)}
        for key in ("substeps", "estimate", "reference_points", "route", "reason"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.escalation is not None:
            out["escalation"] = self.escalation.to_json()
        return out

    @classmethod
    def from_json(cls, d: Mapping) -> AnswerDiagnostics:
        esc = d.get("escalation")
        return cls(
            rung=str(d["rung"]),
            coefficients=str(d["coefficients"]),
            substeps=_opt_int(d.get("substeps")),
            estimate=d.get("estimate"),
            reference_points=_opt_int(d.get("reference_points")),
            escalation=None if esc is None else Escalation.from_json(esc),
            route=d.get("route"),
            reason=d.get("reason"),
        )


@dataclass
class Diagnostics:
    """An answer's ``diagnostics``: per row what the solve did (``fast_phase``, ``correction``,
    ``answer``: filled in by the solver and the ladder) and the request's context (filled in by
    the response): ``timings_ms`` (queue, hypernet, fast_phase, field, correction, escalation,
    encode, total), ``extrapolated``, ``batch_size`` (rows solved in the same pass).

    ``correction`` and ``answer`` are None only in a batch answered as npy (the server sends
    the fast phase alone there)."""

    __pydantic_config__ = DOCUMENTED

    fast_phase: FastPhaseDiagnostics = FastPhaseDiagnostics()
    """what the per-query fast phase did"""
    correction: CorrectionDiagnostics | None = NOT_CORRECTED
    """the correction of the answer"""
    answer: AnswerDiagnostics | None = None
    """what produced the answer"""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """queue, hypernet, fast_phase, field, correction, escalation, encode, total"""
    extrapolated: bool = False
    """the parameters lie outside the served domain"""
    batch_size: int = 0
    """rows solved together in the pass that produced this result"""

    @property
    def correction_applied(self) -> bool:
        return self.correction is not None and self.correction.applied

    @property
    def two_grid_difference(self) -> float | None:
        return None if self.correction is None else self.correction.two_grid_difference

    def to_json(self) -> dict:
        return {
            "timings_ms": self.timings_ms,
            "fast_phase": self.fast_phase.to_json(),
            "correction": None if self.correction is None else self.correction.to_json(),
            "answer": None if self.answer is None else self.answer.to_json(),
            "extrapolated": self.extrapolated,
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Diagnostics:
        corr, answer = d.get("correction"), d.get("answer")
        return cls(
            fast_phase=FastPhaseDiagnostics.from_json(d["fast_phase"]),
            correction=None if corr is None else CorrectionDiagnostics.from_json(corr),
            answer=None if answer is None else AnswerDiagnostics.from_json(answer),
            timings_ms={str(k): float(v) for k, v in d["timings_ms"].items()},
            extrapolated=bool(d["extrapolated"]),
            batch_size=int(d["batch_size"]),
        )
