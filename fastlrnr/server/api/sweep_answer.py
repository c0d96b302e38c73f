"""A sweep's answer, filled in pass by pass (``fastlrnr.server.api.sweep_plan``), and its arrays.

The answer is allocated once — ``u`` (B, P) or (B, nt, nx) float32, per-row estimates, rungs and
flags — and each part's pass writes its rows (or its share of a row's sites) into it, so a
sweep's memory is its answer plus one pass, whatever its number of passes.

A row split by sites gets the largest of its parts' estimates (a bound on the whole row's
relative L2 error: if every part's is ≤ e, so is the row's), the highest rung any part used, and
the budget flag when any part's climb was stopped. A sweep cut short by its time budget or its
client answers the rows it finished: the others come back ``solved`` false, ``u`` NaN,
``error_estimate`` inf, ``rung`` ``unsolved``, ``time_budget_exhausted`` true.
"""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.answer import Rung
from fastlrnr.server.api.sweep_plan import Part, site_mask
from fastlrnr.server.engine.jobs import PassResult

UNSOLVED = "unsolved"
RUNG_ORDER = {str(Rung.SURROGATE): 0, str(Rung.CORRECTED): 1, str(Rung.REFERENCE): 2}


class SweepAnswer:
    """The answer of a sweep of ``rows`` rows whose answer rows have ``shape`` (site kind ``kind``)."""

    def __init__(self, rows: int, shape: tuple[int, ...], kind: str, parts: list[Part]):
        self.kind = kind
        self.u = np.full((rows, *shape), np.nan, np.float32)
        self.estimate = np.full(rows, -np.inf)
        self.rank = np.full(rows, -1)  # the highest rung's RUNG_ORDER per row
        self.stopped = np.zeros(rows, bool)  # a part's climb was stopped by the budget
        self.left = np.zeros(rows, int)  # parts still to come per row
        for part in parts:
            self.left[part.rows] += 1
        self.passes = 0
        self.timings: dict[str, float] = {}

    def fill(self, part: Part, res: PassResult) -> None:
        """Write one part's pass into the answer."""
        self.u[site_mask(part, self.kind)] = res.u
        rows = part.rows
        self.estimate[rows] = np.maximum(self.estimate[rows], res.estimate)
        ranks = np.array([RUNG_ORDER[str(d.answer.rung)] for d in res.rows])
        self.rank[rows] = np.maximum(self.rank[rows], ranks)
        esc = [d.answer.escalation for d in res.rows]
        self.stopped[rows] |= np.array([e is not None and e.time_budget_exhausted for e in esc], bool)
        self.left[rows] -= 1
        self.passes += 1
        for k, v in res.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v

    @property
    def solved(self) -> np.ndarray:
        """(B,) rows all of whose parts were solved."""
        return self.left == 0

    def arrays(self, tolerance: float | None, extrapolated: np.ndarray) -> dict[str, np.ndarray]:
        """The answer's arrays (``fastlrnr.server.api.sweep.npz_bytes`` writes them)."""
        solved = self.solved
        self.u[~solved] = np.nan
        estimate = np.where(solved, self.estimate, np.inf)
        no_tolerance = np.full(solved.size, -1, np.int8)
        within = no_tolerance if tolerance is None else (estimate <= tolerance).astype(np.int8)
        names = np.array(list(RUNG_ORDER))
        rung = np.where(solved, names[np.clip(self.rank, 0, None)], UNSOLVED)
        return {
            "u": self.u,
            "error_estimate": estimate,
            "within_tolerance": within,
            "rung": rung,
            "extrapolated": np.asarray(extrapolated, bool),
            "time_budget_exhausted": (self.stopped & (within == 0)) | ~solved,
            "solved": solved,
        }
