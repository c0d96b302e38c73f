"""The data passed between the request checks and the solver: grids, jobs, pass results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fastlrnr.numerics.answer import Diagnostics, Flag
from fastlrnr.numerics.fast_phase import FastPhaseSettings
from fastlrnr.numerics.grid import X_PERIOD, uniform_grid
from fastlrnr.server.api.schemas import Grid


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
    """Checked work for one request: ``mu`` (B, p) rows on one grid with one fast-phase setting.

    settings: the fast phase to run (None: off); outside: per row, the served-domain bounds
    it breaks, as flags; tolerance: the request's, or None; correct: add the correction;
    budget_s: the time from ``enqueued`` within which escalation to the tolerance must end."""

    mu: np.ndarray
    extrapolated: np.ndarray  # (B,) bool
    grid: GridArrays
    settings: FastPhaseSettings | None
    steps_requested: int
    tolerance: float | None = None
    outside: list[list[Flag]] = field(default_factory=list)
    enqueued: float = field(default_factory=time.perf_counter)
    correct: bool = False
    budget_s: float | None = None

    @property
    def deadline(self) -> float | None:
        """perf_counter by which escalation must stop (None: no tolerance, nothing to escalate)."""
        return None if self.tolerance is None or self.budget_s is None else self.enqueued + self.budget_s

    @property
    def key(self) -> tuple:
        """Jobs with equal keys may share one solver pass."""
        return (self.grid.key, self.settings, self.correct, self.tolerance)


@dataclass
class PassResult:
    """Outcome of one solver pass over R rows (possibly several jobs).

    ``coefficients``: (R, Σ k_l) rows, every layer's in one row (``fastlrnr.numerics.lrnr.split_layers``
    splits them); ``u``: (R, nt, nx) or (R, P) float32; ``rows``: per-row diagnostics (fast
    phase, correction, rung and escalation: ``fastlrnr.numerics.answer``); ``estimate``: (R,) error
    estimates; ``timings``: seconds per stage for the whole pass; ``started``: perf_counter
    when a worker picked the pass up; ``pass_rows``: rows solved together in the pass."""

    coefficients: np.ndarray
    u: np.ndarray
    rows: list[Diagnostics]
    estimate: np.ndarray
    timings: dict[str, float]
    started: float
    pass_rows: int

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
                )
            )
            lo += n
        return out
