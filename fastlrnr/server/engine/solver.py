"""The solve path: hypernetwork → fast phase (when it runs) → full-LRNR field → the first
answer (corrected, or the surrogate's) with its estimate → escalation to a tolerance,
vectorised over parameter sets.

One :class:`ModelRuntime` per loaded artifact. :meth:`ModelRuntime.solve_jobs` runs one or
more compatible jobs (``fastlrnr.server.api.checks`` made them) as a single pass (CPU work, on a worker
thread): one hypernetwork call for every row, one ``run_fast_phase`` over every row when the
job asks for it, one batched field evaluation — split over ``field_workers`` threads when the
caller says the server is otherwise idle — then ``fastlrnr.numerics.ladder``: the correction of every row
(``fastlrnr.numerics.correction``: one LRNR pass on the correction grid gives the residual, the error proxy,
the correction and its estimate) or the uncorrected estimate, and with a tolerance the climb
of every row whose estimate is above it.

Coefficients stay rows (R, Σ k_l) throughout (only the field evaluator splits them per layer);
what each row's answer is made of is filled into one ``fastlrnr.numerics.answer.Diagnostics`` per row, which
``fastlrnr.server.api.responses`` writes out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fastlrnr.numerics import ladder
from fastlrnr.numerics.answer import AnswerDiagnostics, CoefficientSource, Diagnostics, Escalation, Rung
from fastlrnr.numerics.artifact import Artifact, ArtifactError, load_artifact
from fastlrnr.numerics.extrapolation_box import legacy_box
from fastlrnr.numerics.fast_phase import FastPhaseSettings, run_fast_phase
from fastlrnr.numerics.grid import STANDARD_NT, STANDARD_NX
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.numerics.reference_cost import ReferenceRates
from fastlrnr.numerics.routes import (
    RoutePlan,
    allowed_routes,
    corrected_priors,
    plan_routes,
    published_costs,
    route_name,
)
from fastlrnr.numerics.sites import Sites
from fastlrnr.server.engine.budget import GRACE_S
from fastlrnr.server.engine.costs import Load, PassRates, reference_rates
from fastlrnr.server.engine.jobs import Job, PassResult
from fastlrnr.server.errors import SolverError

# The query shapes GET /models prices every route for (rows, sites): rows × sites × distinct times.
_PTS = np.random.default_rng(0).random((16, 2)) * [2 * np.pi, 1.0]
PUBLISHED_SHAPES = {
    "1 × 256×100 (100 times)": (1, Sites.uniform(STANDARD_NX, STANDARD_NT)),
    "1 × 8 points (8 times)": (1, Sites.points(_PTS[:8, 0], _PTS[:8, 1])),
    "1000 × 16 points (16 times)": (1000, Sites.points(_PTS[:, 0], _PTS[:, 1])),
    "64 × 256×100 (100 times)": (64, Sites.uniform(STANDARD_NX, STANDARD_NT)),
}
# Fields smaller than this many values (rows × points) are not split over threads: the
# hand-over would cost more than it saves.
MIN_SPLIT_VALUES = 8192


class ModelRuntime:
    """A loaded, verified model ready to solve: artifact + field evaluator + fast-phase defaults."""

    def __init__(self, artifact: Artifact, onnx_threads: int = 1, field_threads: int = 1):
        from fastlrnr.server.engine.field import FieldEvaluator, NumpyFieldEvaluator

        self.artifact = artifact
        self.name = artifact.name
        self.family = artifact.family
        path = artifact.onnx.get("lrnr.onnx")
        try:
            self.field = (
                FieldEvaluator(path, threads=onnx_threads)
                if path
                else NumpyFieldEvaluator(artifact.lrnr, family=self.family)
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for a damaged graph
            raise ArtifactError(path, f"onnxruntime cannot load the graph: {exc}") from None
        if self.field.ansatz not in (None, self.family.ansatz):
            raise ArtifactError(
                path,
                f"the graph computes {self.field.ansatz!r}, the {self.family.name!r} family {self.family.ansatz!r}",
            )
        if tuple(self.field.ranks) != tuple(artifact.lrnr.ranks):
            raise ArtifactError(
                path, f"graph ranks {self.field.ranks} differ from lrnr.npz ranks {artifact.lrnr.ranks}"
            )
        self.ranks = tuple(artifact.lrnr.ranks)  # coefficients per hidden layer (a row holds Σ k_l)
        self.backend = "onnxruntime" if path else "numpy"
        # the exact backend and the full-LRNR check run in float32: half the cost of float64
        self.fast = artifact.fast_phase_model(np.float32)
        # Threads that share one field evaluation (the caller's thread is one of them).
        self.field_threads = max(1, int(field_threads))
        self._field_pool = (
            ThreadPoolExecutor(max_workers=self.field_threads - 1, thread_name_prefix=f"field-{self.name}")
            if self.field_threads > 1
            else None
        )
        self.default_settings = artifact.fast_phase
        self.error_model = artifact.error_model
        self.correction = artifact.correction_model(np.float32)
        self.correction_spec = artifact.correction
        self.correction_default = artifact.correction.default
        # per corrected rung, the estimate it is predicted to give (what the route choice reads)
        self.corrected_priors = corrected_priors(artifact.manifest["correction"], len(artifact.correction.rungs))
        self.a_priori = artifact.a_priori
        self.envelope = artifact.envelope
        # how much an estimate is widened outside the served domain (measured at build time)
        self.extrapolation_factor = float(artifact.manifest["error_estimate"].get("extrapolation_factor", 10.0))
        self.corrected_extrapolation_factor = float(artifact.manifest["correction"].get("extrapolation_factor", 10.0))
        # seconds per unit of a pass and of the reference rung (measured by warm()), and how the
        # passes served since have run against them
        self.rates = PassRates()
        self.load = Load()
        self.served = artifact.served_domain
        # how far a request may extrapolate when it opts in: the box the estimates' widening was
        # measured on (the manifest's; the legacy rule's for a manifest without one)
        self.extrapolation = artifact.extrapolation_domain or legacy_box(artifact.domain)
        self.extrapolation_low, self.extrapolation_high = self.extrapolation.low, self.extrapolation.high

    @classmethod
    def load(cls, directory: Path | str, onnx_threads: int = 1, field_threads: int = 1) -> ModelRuntime:
        """Load and verify ``directory``; raises ArtifactError naming the file and the problem."""
        return cls(load_artifact(directory), onnx_threads, field_threads)

    def current_rates(self) -> PassRates:
        """The measured rates scaled by how the recent passes ran against them (``Load``)."""
        return self.rates.scaled(self.load.factor)

    def reference_rates(self) -> ReferenceRates:
        """The reference rung's rates, as ``current_rates`` (what the ladder reads)."""
        return self.current_rates().reference

    def close(self) -> None:
        """Stop the field threads (idempotent)."""
        if self._field_pool is not None:
            self._field_pool.shutdown(wait=True)

    # ------------------------------------------------------------------ metadata
    @property
    def ref(self) -> dict:
        return {"name": self.artifact.name, "version": self.artifact.version, "sha256": self.artifact.sha256}

    def info(self, default: bool) -> dict:
        m = self.artifact.manifest
        return {
            **self.ref,
            "created": m["created"],
            "default": default,
            "family": self.family.describe(),
            "domain": m["domain"],
            "served_domain": m["served_domain"],
            "extrapolation_domain": {
                **self.extrapolation.to_dict(),
                "stored": self.artifact.extrapolation_stored,
            },
            "test_domain": m["test_domain"],
            "dimensions": m["dimensions"],
            "quality": m["quality"],
            "fast_phase_defaults": self.default_settings.to_dict(),
            "fast_phase_measured": m["fast_phase"].get("measured", {}),
            "error_estimate": m["error_estimate"],
            "correction": m["correction"],
            "backend": self.backend,
            "routes": published_costs(self, self.rates, PUBLISHED_SHAPES),  # as measured at warm-up
        }

    # ------------------------------------------------------------------ routes
    def plan(
        self,
        mu: np.ndarray,
        grid: Sites,
        tolerance: float,
        correction: bool | None = None,
        fast: bool = False,
        beyond: np.ndarray | None = None,
        rates: PassRates | None = None,
        explain: bool = True,
    ) -> RoutePlan:
        """Each row's first route for ``tolerance`` (``fastlrnr.numerics.routes``): the cheapest the
        request's ``correction`` allows that is predicted to meet it, at this machine's rates now;
        ``beyond``: rows outside the extrapolation box (the reference only); ``explain``: say why
        per row (a sweep's answer has no room for it)."""
        rates = rates or self.current_rates()
        return plan_routes(self, mu, grid, tolerance, allowed_routes(correction), rates, fast, beyond, explain)

    # ------------------------------------------------------------------ the solve (worker thread)
    def solve(
        self,
        mu: np.ndarray,
        grid: Sites,
        settings: FastPhaseSettings | None,
        field_workers: int = 1,
        correct: bool | None = None,
        tolerance: float | None = None,
        deadline: float | None = None,
        limits: ladder.Limits | None = None,
        routes: bool = False,
    ) -> PassResult:
        """One pass over rows ``mu`` (R, p) (``first_pass``), then, with a ``tolerance``, the
        climb of every row whose estimate is above it (``climb``) within ``limits`` (or until
        ``deadline``, a perf_counter value). ``routes``: with a tolerance, each row first takes the
        cheapest route predicted to meet it (``plan``; ``correct`` None lets it choose freely), as
        the server does; else the request's first rung, then the climb."""
        plan = None
        if routes and tolerance is not None:
            plan = self.plan(mu, grid, tolerance, correct, settings is not None)
        res = self.first_pass(mu, grid, settings, field_workers, correct, keep=tolerance is not None, plan=plan)
        if tolerance is not None:
            self.climb(res, mu, grid, tolerance, limits or ladder.Limits(deadline), correct)
        return res

    def first_pass(
        self,
        mu: np.ndarray,
        grid: Sites,
        settings: FastPhaseSettings | None,
        field_workers: int = 1,
        correct: bool | None = None,
        keep: bool = False,
        plan: RoutePlan | None = None,
    ) -> PassResult:
        """The first answer of rows ``mu`` (R, p), the family's parameter columns: coefficients
        (the hypernetwork's, or the fast phase's when ``settings``), the LRNR's field (on up to
        ``field_workers`` threads), the correction when ``correct`` (None: the model's default)
        with its estimate, or the uncorrected estimate. ``keep``: keep what a climb needs
        (``PassResult.climb``; the LRNR's field at the sites and the correction's pass).

        With a route ``plan`` each row takes its own first route instead: the LRNR's rows are
        corrected or not as their route says, and the rows routed to the reference get nothing
        here (u NaN, estimate inf): the climb solves them."""
        if plan is not None:
            return self._routed_pass(mu, grid, settings, field_workers, plan)
        correct = self.correction_default if correct is None else correct
        started = time.perf_counter()
        # coefficient rows (R, Σ k_l) from here to the answer; the field evaluator splits them
        S = hyper_rows(self.artifact.hyper, mu)
        t1 = time.perf_counter()
        S, S_hat, rows = self._fast_phase(S, mu, settings)
        t2 = time.perf_counter()
        u_lrnr = self._field(S, grid, field_workers)
        t3 = time.perf_counter()
        if not np.all(np.isfinite(u_lrnr)):
            raise SolverError(f"model {self.name!r} produced a non-finite field")
        u_hyper = self._hyper_field(S_hat, rows, grid, field_workers, u_lrnr) if not correct else None
        answer = ladder.first_answer(self, S, mu, grid, u_lrnr, rows, correct, settings is not None, u_hyper)
        t4 = time.perf_counter()
        timings = {"hypernet": t1 - started, "fast_phase": t2 - t1, "field": t3 - t2, "correction": t4 - t3}
        climb = ladder.Climb(u_lrnr, answer.correction_pass, answer.correction_s) if keep else None
        return PassResult(S, answer.u, rows, answer.estimate, timings, started, mu.shape[0], climb)

    def _fast_phase(self, S: np.ndarray, mu: np.ndarray, settings: FastPhaseSettings | None):
        """(coefficients, the hypernetwork's, rows' diagnostics) after the fast phase (when it runs)."""
        if settings is None:
            return S, S, [Diagnostics() for _ in range(len(mu))]
        results = run_fast_phase(self.fast, S, mu, settings)
        width = S.shape[1]
        out = np.stack([r.coefficients for r in results])
        if out.shape[1] != width:
            raise SolverError(f"the fast phase returned {out.shape[1]} coefficients per row, expected {width}")
        return out, S, [Diagnostics(r.diagnostics()) for r in results]

    def _hyper_field(self, S_hat, rows, grid: Sites, workers: int, u_lrnr: np.ndarray) -> np.ndarray | None:
        """The hypernetwork's field where the fast phase moved the coefficients (what the site
        envelope's bound of an uncorrected answer needs), else None."""
        if self.envelope is None or not rows or not any(r.fast_phase.enabled for r in rows):
            return None
        moved = np.array([r.fast_phase.accepted for r in rows])
        if not moved.any():
            return None
        u_hyper = u_lrnr.copy()
        u_hyper[moved] = self._field(S_hat[moved], grid, workers)
        return u_hyper

    def _routed_pass(
        self, mu: np.ndarray, grid: Sites, settings: FastPhaseSettings | None, field_workers: int, plan: RoutePlan
    ) -> PassResult:
        """``first_pass`` by a route plan (see there); it always keeps what the climb needs."""
        started = time.perf_counter()
        R = len(mu)
        S = hyper_rows(self.artifact.hyper, mu)
        t1 = time.perf_counter()
        idx = np.flatnonzero(plan.lrnr)
        rows = [Diagnostics() for _ in range(R)]
        u = np.full((R, *grid.shape), np.nan, np.float32)
        u_lrnr = np.full_like(u, np.nan)
        estimate = np.full(R, np.inf)
        cp, correction_s = None, 0.0
        t2 = t3 = t4 = t1
        if idx.size:
            S_l, S_hat, rows_l = self._fast_phase(S[idx], mu[idx], settings)
            S[idx] = S_l
            t2 = time.perf_counter()
            u_l = self._field(S_l, grid, field_workers)
            t3 = time.perf_counter()
            if not np.all(np.isfinite(u_l)):
                raise SolverError(f"model {self.name!r} produced a non-finite field")
            u_lrnr[idx] = u_l
            kinds = plan.kinds[idx]
            for kind in (str(Rung.CORRECTED), str(Rung.SURROGATE)):
                sub = np.flatnonzero(kinds == kind)
                if not sub.size:
                    continue
                correct = kind == str(Rung.CORRECTED)
                sub_rows = [rows_l[j] for j in sub]
                u_hyper = None if correct else self._hyper_field(S_hat[sub], sub_rows, grid, field_workers, u_l[sub])
                ans = ladder.first_answer(
                    self, S_l[sub], mu[idx[sub]], grid, u_l[sub], sub_rows, correct, settings is not None, u_hyper
                )
                u[idx[sub]], estimate[idx[sub]] = ans.u, ans.estimate
                if correct:
                    cp, correction_s = ans.correction_pass, ans.correction_s
            for j, i in enumerate(idx):
                rows[i] = rows_l[j]
            t4 = time.perf_counter()
        for i in np.flatnonzero(~plan.lrnr):
            rows[i].answer = AnswerDiagnostics(Rung.REFERENCE, CoefficientSource.HYPERNETWORK)
        for i, row in enumerate(rows):
            row.answer.route, row.answer.reason = plan.names[i], plan.reasons[i]
        timings = {"hypernet": t1 - started, "fast_phase": t2 - t1, "field": t3 - t2, "correction": t4 - t3}
        corrected = plan.kinds == str(Rung.CORRECTED)
        climb = ladder.Climb(u_lrnr, cp, correction_s, corrected if cp is not None else None, plan)
        return PassResult(S, u, rows, estimate, timings, started, R, climb)

    def climb(
        self,
        res: PassResult,
        mu: np.ndarray,
        grid: Sites,
        tolerance: float,
        limits: ladder.Limits,
        correct: bool | None = None,
    ) -> PassResult:
        """The escalation of ``res``'s rows above ``tolerance`` (``fastlrnr.numerics.ladder``),
        in place, within ``limits``; its time goes into ``res.timings["escalation"]``. A row
        routed to the reference that it could not answer gets the request's default route's
        answer when that pass is short, else the uncorrected LRNR's, flagged (``_unanswered``)."""
        t0 = time.perf_counter()
        if res.climb is None:
            raise ValueError("this pass kept nothing to climb from (first_pass(..., keep=True))")
        ladder.escalate(self, res.u, res.estimate, res.climb, mu, grid, tolerance, limits, res.rows)
        plan = res.climb.plan
        res.climb = None  # the LRNR's field and the correction's pass are not needed any more
        if plan is not None and not plan.lrnr.all():
            self._unanswered(res, mu, grid, correct)
        res.timings = {**res.timings, "escalation": time.perf_counter() - t0}
        return res

    def _unanswered(self, res: PassResult, mu: np.ndarray, grid: Sites, correct: bool | None) -> None:
        """Rows routed to the reference that it could not answer within the budget get the
        request's default route's answer (``correct``; None: the model's default) when that
        pass is predicted within ``GRACE_S``, else the uncorrected LRNR's at the sites with its
        site estimate — so a spent budget is overrun by one short pass at most (flagged: the
        climb was stopped by the budget)."""
        lost = np.flatnonzero(~np.all(np.isfinite(res.u.reshape(len(res.u), -1)), axis=1))
        if not lost.size:
            return
        correct = self.correction_default if correct is None else correct
        if correct and self.current_rates().pass_seconds(len(lost), grid.sites, True, False) > GRACE_S:
            correct = False
        sub = self.first_pass(mu[lost], grid, None, 1, correct)
        for k, i in enumerate(lost):
            before = res.rows[i].answer
            d = sub.rows[k]
            escalation = before.escalation or Escalation(Rung.REFERENCE)
            escalation.time_budget_exhausted = True
            d.answer.escalation = escalation
            d.answer.route = route_name(str(d.answer.rung), substeps=d.answer.substeps)
            d.answer.reason = f"{before.reason}; the reference solver did not answer within the budget: the "
            d.answer.reason += "corrected LRNR answered" if correct else "uncorrected LRNR answered"
            res.rows[i] = d
            res.u[i], res.estimate[i] = sub.u[k], sub.estimate[k]
            res.coefficients[i] = sub.coefficients[k]

    def _field(self, S: np.ndarray, grid: Sites, workers: int = 1) -> np.ndarray:
        """The full-LRNR field for coefficient rows S (R, Σ k_l): (R, nt, nx) or (R, P).

        With ``workers`` > 1 (and a field large enough to be worth it) the t axis, or the
        point list, is cut into parts evaluated at once on the field threads: onnxruntime
        releases the GIL, and every point is evaluated exactly as it would be in one piece."""
        points = grid.kind == "points"
        n = grid.x.size if points else grid.t.size
        parts = min(workers, self.field_threads, n)
        if parts <= 1 or self._field_pool is None or S.shape[0] * grid.x.size * grid.t.size < MIN_SPLIT_VALUES:
            return self._field_part(S, grid.x_eval, grid.t, points)
        cuts = np.linspace(0, n, parts + 1).astype(int)
        x_eval = grid.x_eval
        if points:
            pieces = [(x_eval[a:b], grid.t[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
        else:
            pieces = [(x_eval, grid.t[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
        futures = [self._field_pool.submit(self._field_part, S, x, t, points) for x, t in pieces[1:]]
        first = self._field_part(S, *pieces[0], points)
        return np.concatenate([first, *(f.result() for f in futures)], axis=-1 if points else -2)

    def _field_part(self, S: np.ndarray, x: np.ndarray, t: np.ndarray, points: bool) -> np.ndarray:
        if points:
            return self.field.evaluate(S, x, t)
        return self.field.evaluate_grid(S, x, t)

    def solve_jobs(self, jobs: Sequence[Job], field_workers: int = 1, climb: bool = True) -> list[PassResult]:
        """Solve compatible jobs (equal ``key``) as one first pass and split the result per job;
        ``climb``: then each job's climb to its tolerance, within its own budget."""
        mu = np.concatenate([j.mu for j in jobs]) if len(jobs) > 1 else jobs[0].mu
        first = jobs[0]
        keep = first.tolerance is not None
        plan = RoutePlan.join([j.plan for j in jobs]) if first.plan is not None else None
        result = self.first_pass(mu, first.grid, first.settings, field_workers, first.correct, keep, plan)
        results = result.split([j.mu.shape[0] for j in jobs]) if len(jobs) > 1 else [result]
        if climb and keep:
            for job, res in zip(jobs, results):
                self.climb(res, job.mu, job.grid, job.tolerance, job.limits(), job.correct)
        return results

    def warm(self) -> float:
        """One solve at the domain's centre on the standard grid, on one thread, with the model's
        default fast phase and correction: it warms the model, and its stage timings are the rates
        a pass's cost is predicted from (``fastlrnr.server.engine.costs``). Its wall time, seconds."""
        t0 = time.perf_counter()
        centre = 0.5 * (self.artifact.domain.low + self.artifact.domain.high)
        grid = Sites.uniform(STANDARD_NX, STANDARD_NT)
        res = self.first_pass(centre[None], grid, self.default_settings, 1, True)
        elapsed = time.perf_counter() - t0
        self.rates = PassRates.from_pass(res.timings, 1, grid.sites, reference_rates(self.family))
        return elapsed
