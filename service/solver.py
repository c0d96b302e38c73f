"""The solve path: hypernetwork → fast phase → full-LRNR field and error estimate, vectorised
over parameter sets.

One :class:`ModelRuntime` per loaded artifact. :meth:`ModelRuntime.prepare` checks a
request against the model and the configured limits (cheap, on the event loop) and
returns a :class:`Job`; :meth:`ModelRuntime.solve` runs one or more compatible jobs
as a single pass (CPU work, on a worker thread): one hypernetwork call for every row,
one ``run_fast_phase`` over every row (or, with the fast phase off, the check residual
of the hypernetwork's coefficients), one batched field evaluation, and the calibrated
error estimate of every row from its check residual.
"""
from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.artifact import Artifact, ArtifactError, load_artifact
from core.fast_phase import FastPhaseModel, FastPhaseSettings, check_residual, run_fast_phase
from core.hypernet import hyper_forward
from core.pde import PARAM_NAMES, X_PERIOD, uniform_grid
from service.schemas import FastPhase, Grid, Params

# How far a request may extrapolate when it opts in: one trained-domain width beyond each
# bound (at least EXTRAPOLATION_MIN_SPAN), and never below zero (μ ≥ 0 is physical).
EXTRAPOLATION_MIN_SPAN = 1.0


class RequestError(Exception):
    """A request the service refuses: HTTP ``status`` with a machine code and field errors."""

    def __init__(self, status: int, code: str, message: str, errors: Sequence[dict] = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, list(errors)


class SolverError(RuntimeError):
    """The model produced something unusable (non-finite field): a server-side fault."""


@dataclass(frozen=True)
class GridArrays:
    """The evaluation sites of a request: axes (``uniform``/``axes``) or point lists (``points``).

    ``x``/``t`` are as requested (reported back); ``x_eval`` is x reduced to [0, 2π) in float64
    (the problem is periodic), so that no finite x overflows or loses its phase in float32."""

    kind: str
    x: np.ndarray
    t: np.ndarray
    key: tuple  # hashable description, equal for grids that evaluate identically

    @property
    def x_eval(self) -> np.ndarray:
        return np.mod(self.x, X_PERIOD)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.t.size, self.x.size) if self.kind != "points" else (self.x.size,)


def grid_arrays(grid: Grid) -> GridArrays:
    """Grid request → float64 arrays. Uniform: x_j = 2πj/nx, t = linspace(0, 1, nt)."""
    if grid.kind == "uniform":
        return GridArrays("uniform", *uniform_grid(grid.nx, grid.nt), ("uniform", grid.nx, grid.nt))
    if grid.kind == "axes":
        x, t = np.asarray(grid.x, np.float64), np.asarray(grid.t, np.float64)
        return GridArrays("axes", x, t, ("axes", x.tobytes(), t.tobytes()))
    pts = np.asarray(grid.points, np.float64).reshape(-1, 2)
    x, t = np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1])
    return GridArrays("points", x, t, ("points", x.tobytes(), t.tobytes()))


@dataclass
class Job:
    """Validated work for one request: ``mu`` (B, 3) rows on one grid with one fast-phase setting.

    settings: the fast phase to run (None: off); outside: per row, the served-domain bounds
    it breaks, as flags; tolerance: the request's, or None."""

    mu: np.ndarray
    extrapolated: np.ndarray  # (B,) bool
    grid: GridArrays
    settings: FastPhaseSettings | None
    steps_requested: int
    tolerance: float | None = None
    outside: list[list[dict]] = field(default_factory=list)
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> tuple:
        """Jobs with equal keys may share one solver pass."""
        return (self.grid.key, self.settings)


@dataclass
class PassResult:
    """Outcome of one solver pass over R rows (possibly several jobs).

    ``s``: list of (R, k_l); ``u``: (R, nt, nx) or (R, P) float32; ``rows``: per-row fast-phase
    diagnostics; ``estimate``: (R,) error estimates; ``timings``: seconds per stage for the whole
    pass; ``started``: perf_counter when a worker picked the pass up; ``pass_rows``: rows solved
    together in the pass."""

    s: list[np.ndarray]
    u: np.ndarray
    rows: list[dict]
    estimate: np.ndarray
    timings: dict[str, float]
    started: float
    pass_rows: int

    def split(self, sizes: Sequence[int]) -> list["PassResult"]:
        out, lo = [], 0
        for n in sizes:
            out.append(PassResult([sl[lo:lo + n] for sl in self.s], self.u[lo:lo + n], self.rows[lo:lo + n],
                                  self.estimate[lo:lo + n], self.timings, self.started, self.pass_rows))
            lo += n
        return out


class ModelRuntime:
    """A loaded, verified model ready to solve: artifact + field evaluator + fast-phase defaults."""

    def __init__(self, artifact: Artifact, onnx_threads: int = 1, speculative_field: bool = True):
        from service.field import FieldEvaluator, NumpyFieldEvaluator

        self.artifact = artifact
        self.name = artifact.name
        path = artifact.onnx.get("lrnr.onnx")
        try:
            self.field = FieldEvaluator(path, threads=onnx_threads) if path else NumpyFieldEvaluator(artifact.lrnr)
        except Exception as exc:  # onnxruntime raises its own exception types for a damaged graph
            raise ArtifactError(path, f"onnxruntime cannot load the graph: {exc}") from None
        if tuple(self.field.ranks) != tuple(artifact.lrnr.ranks):
            raise ArtifactError(path, f"graph ranks {self.field.ranks} differ from lrnr.npz ranks {artifact.lrnr.ranks}")
        self.backend = "onnxruntime" if path else "numpy"
        fp = artifact.manifest["fast_phase"]
        # the exact backend and the full-LRNR check run in float32: half the cost of float64
        self.fast = FastPhaseModel(artifact.lrnr, artifact.reduced,
                                   collocation=(fp["collocation"]["points"], fp["collocation"]["seed"]),
                                   check=(fp["check"]["points"], fp["check"]["seed"]), dtype=np.float32)
        # Speculative field: while the fast phase runs, evaluate the field of the hypernetwork's
        # coefficients on another thread (onnxruntime releases the GIL). The fast phase keeps ŝ
        # for most queries (docs/evaluation.md), and then that field is the answer; rows whose
        # update is accepted are evaluated again with their new coefficients.
        self._speculate = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"field-{self.name}") \
            if speculative_field else None
        self.default_settings = artifact.fast_phase
        self.error_model = artifact.error_model
        self.served = artifact.served_domain
        lo, hi = artifact.domain.low, artifact.domain.high
        span = np.maximum(hi - lo, EXTRAPOLATION_MIN_SPAN)
        self.extrapolation_low = np.maximum(lo - span, 0.0)
        self.extrapolation_high = hi + span

    @classmethod
    def load(cls, directory: Path | str, onnx_threads: int = 1, speculative_field: bool = True) -> "ModelRuntime":
        """Load and verify ``directory``; raises ArtifactError naming the file and the problem."""
        return cls(load_artifact(directory), onnx_threads, speculative_field)

    def close(self) -> None:
        """Stop the speculative-field threads (idempotent)."""
        if self._speculate is not None:
            self._speculate.shutdown(wait=True)

    # ------------------------------------------------------------------ metadata
    @property
    def ref(self) -> dict:
        return {"name": self.artifact.name, "version": self.artifact.version, "sha256": self.artifact.sha256}

    def info(self, default: bool) -> dict:
        m = self.artifact.manifest
        return {**self.ref, "created": m["created"], "default": default, "domain": m["domain"],
                "served_domain": m["served_domain"], "test_domain": m["test_domain"], "dimensions": m["dimensions"],
                "quality": m["quality"], "fast_phase_defaults": self.default_settings.to_dict(),
                "fast_phase_measured": m["fast_phase"].get("measured", {}), "error_estimate": m["error_estimate"],
                "backend": self.backend}

    # ------------------------------------------------------------------ validation (event loop)
    def prepare(self, params: Sequence[Params], grid: Grid, fast_phase: FastPhase, allow_extrapolation: bool,
                *, max_grid_points: int, max_steps: int, tolerance: float | None = None,
                loc_prefix: tuple = ("body", "params")) -> Job:
        """Check a request against this model and the limits; raise RequestError or return a Job."""
        if grid.size > max_grid_points:
            raise RequestError(413, "grid_too_large",
                               f"the grid asks for {grid.size} values; the limit is {max_grid_points}",
                               [{"loc": ["body", "grid"], "msg": f"at most {max_grid_points} values "
                                 f"(nx·nt, len(x)·len(t) or len(points)), got {grid.size}", "type": "too_large"}])
        field_name = "steps" if fast_phase.steps is not None or fast_phase.epochs is None else "epochs"
        steps = fast_phase.requested_steps
        steps = min(self.default_settings.steps, max_steps) if steps is None else steps
        if steps > max_steps:
            raise RequestError(422, "validation_error", f"fast_phase.{field_name} = {steps} exceeds the limit {max_steps}",
                               [{"loc": ["body", "fast_phase", field_name],
                                 "msg": f"must be at most {max_steps}", "type": "less_than_equal"}])
        backend = fast_phase.backend or self.default_settings.backend
        if backend not in self.fast.backends:
            raise RequestError(422, "validation_error", f"model {self.name!r} has no {backend!r} backend",
                               [{"loc": ["body", "fast_phase", "backend"], "type": "unavailable",
                                 "msg": f"available: {list(self.fast.backends)}"}])
        mu = np.array([p.as_tuple() for p in params], dtype=np.float64).reshape(-1, 3)
        served = self.served
        inside = served.contains(mu)
        errors, outside = [], [[] for _ in range(len(mu))]
        for row in np.flatnonzero(~inside):
            loc = loc_prefix + ((int(row),) if len(params) > 1 or loc_prefix[-1] != "params" else ())
            for i, key in enumerate(PARAM_NAMES):
                lo, hi = served.bounds[key]
                v = mu[row, i]
                if lo - 1e-12 <= v <= hi + 1e-12:
                    continue
                allowed = f"= {lo:g}" if lo == hi else f"∈ [{lo:g}, {hi:g}]"
                if not allow_extrapolation:
                    errors.append({"loc": [*loc, key], "type": "out_of_domain",
                                   "msg": f"{key} = {v:g} is outside the served domain of {self.name!r}: {key} {allowed}"
                                          " (set allow_extrapolation to solve anyway)"})
                elif not self.extrapolation_low[i] <= v <= self.extrapolation_high[i]:
                    errors.append({"loc": [*loc, key], "type": "extrapolation_too_far",
                                   "msg": f"{key} = {v:g} is too far outside the served domain of {self.name!r} "
                                          f"({key} {allowed}); extrapolation is limited to "
                                          f"[{self.extrapolation_low[i]:g}, {self.extrapolation_high[i]:g}]"})
                else:
                    outside[row].append({"code": "outside_served_domain",
                                         "message": f"{key} = {v:g} is outside the served domain ({key} {allowed}): "
                                                    "the error estimate is not calibrated there"})
        if errors:
            raise RequestError(422, "out_of_domain", errors[0]["msg"], errors)
        settings = None
        if fast_phase.enabled and steps > 0:
            changes: dict = {"steps": int(steps), "backend": backend}
            if fast_phase.locality != "auto":
                changes["locality"] = (float(fast_phase.locality),)
            settings = dataclasses.replace(self.default_settings, **changes)
        return Job(mu, ~inside, grid_arrays(grid), settings, int(steps) if settings is not None else 0, tolerance,
                   outside)

    # ------------------------------------------------------------------ the solve (worker thread)
    def solve(self, mu: np.ndarray, grid: GridArrays, settings: FastPhaseSettings | None) -> PassResult:
        """One pass over rows ``mu`` (R, 3): coefficients, fast phase (when ``settings``), field,
        error estimates."""
        started = time.perf_counter()
        t0 = started
        s_hat = [np.atleast_2d(sl) for sl in hyper_forward(self.artifact.hyper, mu)]
        t1 = time.perf_counter()
        if settings is not None:
            spec = self._speculate.submit(self._field, s_hat, grid) if self._speculate is not None else None
            results = run_fast_phase(self.fast, s_hat, mu, settings)
            s, rows = _collect(results, len(s_hat))
            t2 = time.perf_counter()
            accepted = np.array([r["accepted"] for r in rows])
            if spec is None:
                u = self._field(s, grid)
            else:  # the field of ŝ, then the accepted rows again with their own coefficients
                u = spec.result()
                if accepted.any():
                    u[accepted] = self._field([sl[accepted] for sl in s], grid)
        else:
            residual = check_residual(self.fast.check, np.concatenate(s_hat, axis=1), mu)
            s, rows = s_hat, [_skipped_row(r) for r in residual]
            t2 = time.perf_counter()
            u = self._field(s, grid)
        t3 = time.perf_counter()
        if not np.all(np.isfinite(u)):
            raise SolverError(f"model {self.name!r} produced a non-finite field")
        residual = np.array([np.nan if r["residual_after"] is None else r["residual_after"] for r in rows])
        if not np.all(np.isfinite(residual)):
            raise SolverError(f"model {self.name!r} produced a non-finite residual")
        estimate = self.error_model.predict(residual, mu)
        return PassResult(s, u, rows, estimate, {"hypernet": t1 - t0, "fast_phase": t2 - t1, "field": t3 - t2},
                          started, mu.shape[0])

    def _field(self, s: list[np.ndarray], grid: GridArrays) -> np.ndarray:
        """The full-LRNR field for rows of coefficients s (R, k_l): (R, nt, nx) or (R, P)."""
        if grid.kind == "points":
            return self.field.evaluate(s, grid.x_eval, grid.t)
        return self.field.evaluate_grid(s, grid.x_eval, grid.t)

    def solve_jobs(self, jobs: Sequence[Job]) -> list[PassResult]:
        """Solve compatible jobs (equal ``key``) as one pass and split the result per job."""
        mu = np.concatenate([j.mu for j in jobs]) if len(jobs) > 1 else jobs[0].mu
        result = self.solve(mu, jobs[0].grid, jobs[0].settings)
        return result.split([j.mu.shape[0] for j in jobs]) if len(jobs) > 1 else [result]

    def warm(self) -> float:
        """One solve at the domain's centre on the standard grid; returns its wall time in seconds."""
        t0 = time.perf_counter()
        centre = 0.5 * (self.artifact.domain.low + self.artifact.domain.high)
        grid = grid_arrays(Grid(nx=256, nt=100))
        self.solve(centre[None], grid, self.default_settings)
        return time.perf_counter() - t0


# ---------------------------------------------------------------------- fast-phase adapter


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _collect(results, layers: int) -> tuple[list[np.ndarray], list[dict]]:
    """list[FastPhaseResult] (one per row) → stacked coefficients (R, k_l) and per-row diagnostics."""
    rows = [{"enabled": True, "backend": r.backend, "optimizer": r.optimizer, "steps_run": r.steps_run,
             "locality": _num(r.locality), "accepted": r.accepted, "objective_before": _num(r.objective_before),
             "objective_after": _num(r.objective_after), "residual_before": _num(r.residual_before),
             "residual_after": _num(r.residual_after)} for r in results]
    s = [np.stack([np.asarray(r.s[l], np.float64).reshape(-1) for r in results]) for l in range(layers)]
    return s, rows


def _skipped_row(residual: float) -> dict:
    return {"enabled": False, "backend": None, "optimizer": None, "steps_run": 0, "locality": None,
            "accepted": False, "objective_before": None, "objective_after": None,
            "residual_before": _num(residual), "residual_after": _num(residual)}


def answer_flags(job: Job, row: int, estimate: float) -> tuple[bool | None, list[dict]]:
    """(within_tolerance, flags) of one answer: the served-domain breaches found at
    validation, and the tolerance check of its error estimate."""
    flags = list(job.outside[row]) if job.outside else []
    within = None
    if job.tolerance is not None:
        within = bool(estimate <= job.tolerance)
        if not within:
            flags.append({"code": "estimate_above_tolerance",
                          "message": f"the estimated relative L2 error {estimate:.3g} exceeds the requested "
                                     f"tolerance {job.tolerance:g}"})
    return within, flags
