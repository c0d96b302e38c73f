"""The data passed between the request checks and the solver: grids, jobs, pass results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fastlrnr.numerics.answer import Diagnostics, Flag
from fastlrnr.numerics.fast_phase import FastPhaseSettings
from fastlrnr.numerics.sites import Sites
from fastlrnr.server.engine.budget import Budget

if TYPE_CHECKING:
    from fastlrnr.numerics.ladder import Climb, Limits
    from fastlrnr.numerics.routes import RoutePlan


@dataclass
class Job:
    """Checked work for one request: ``mu`` (B, p) rows on one grid with one fast-phase setting.

    settings: the fast phase to run (None: off); outside: per row, the served-domain bounds
    it breaks, as flags; tolerance: the request's, or None; correct: add the correction;
    budget: the request's time and memory (``fastlrnr.server.engine.budget``; None: unlimited);
    predicted_s: the first pass's predicted seconds (``fastlrnr.server.engine.costs``); plan:
    with a tolerance, each row's first route (``fastlrnr.numerics.routes``; the rows routed to the
    reference are solved by the climb, in the same pass)."""

    mu: np.ndarray
    extrapolated: np.ndarray  # (B,) bool
    grid: Sites
    settings: FastPhaseSettings | None
    steps_requested: int
    tolerance: float | None = None
    outside: list[list[Flag]] = field(default_factory=list)
    enqueued: float = field(default_factory=time.perf_counter)
    correct: bool = False
    budget: Budget | None = None
    predicted_s: float = 0.0
    plan: RoutePlan | None = None  # with a tolerance: each row's first route (fastlrnr.numerics.routes)

    @property
    def deadline(self) -> float | None:
        """perf_counter by which escalation must stop (None: no tolerance, nothing to escalate)."""
        return None if self.tolerance is None or self.budget is None else self.budget.escalation_deadline

    def limits(self, max_bytes: int | None = None) -> Limits:
        """How far this job's climb may go: its budget's escalation deadline and stop."""
        from fastlrnr.numerics.ladder import Limits

        if self.budget is None:
            return Limits(max_bytes=max_bytes)
        return Limits(self.budget.escalation_deadline, self.budget.escalation_stop, max_bytes)

    @property
    def key(self) -> tuple:
        """Jobs with equal keys may share one solver pass."""
        return (self.grid.key, self.settings, self.correct, self.tolerance, self.plan is not None)


@dataclass
class PassResult:
    """Outcome of one solver pass over R rows (possibly several jobs).

    ``coefficients``: (R, Σ k_l) rows, every layer's in one row (``fastlrnr.numerics.lrnr.split_layers``
    splits them); ``u``: (R, nt, nx) or (R, P) float32; ``rows``: per-row diagnostics (fast
    phase, correction, rung and escalation: ``fastlrnr.numerics.answer``); ``estimate``: (R,) error
    estimates; ``timings``: seconds per stage for the whole pass; ``started``: perf_counter
    when a worker picked the pass up; ``pass_rows``: rows solved together in the pass;
    ``climb``: what the climb to a tolerance needs of the pass (``fastlrnr.numerics.ladder``),
    None once climbed or without a tolerance."""

    coefficients: np.ndarray
    u: np.ndarray
    rows: list[Diagnostics]
    estimate: np.ndarray
    timings: dict[str, float]
    started: float
    pass_rows: int
    climb: Climb | None = None

    def split(self, sizes: Sequence[int]) -> list[PassResult]:
        out, lo = [], 0
        for n in sizes:
            out.append(
                PassResult(
                    self.coefficients[lo : lo + n],
                    self.u[lo : lo + n],
                    self.rows[lo : lo + n],
                    self.estimate[lo : lo + n],
                    self.timings,
                    self.started,
                    self.pass_rows,
                    None if self.climb is None else self.climb.take(lo, lo + n),
                )
            )
            lo += n
        return out
