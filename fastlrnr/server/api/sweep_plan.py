"""A sweep's passes, planned before the first starts: each within the memory and time left.

A sweep of B rows at P sites is solved in parts: a part is a slice of rows at every site, or —
when one row has more sites than a pass may take — one row at a slice of its sites (points), or
of its times (axes). A part holds at most

- ``SWEEP_CHUNK_ROWS`` rows and ``max_batch_values`` values (the server's batch limit);
- what the memory budget leaves once the request's own arrays are counted
  (``fastlrnr.server.api.sweep.held_bytes``): one pass's bytes (``fastlrnr.server.engine.costs``);
- a tenth of the time budget, so that a sweep cut at its deadline ends within a pass of it.

The whole sweep is predicted from the model's measured rates; a sweep predicted to take longer
than its budget is refused up front (422 ``over_time_budget``, with how many rows would fit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastlrnr.server.api.sweep import SweepInput
from fastlrnr.server.engine.budget import Budget
from fastlrnr.server.engine.costs import (
    CLIMB_VALUE_BYTES,
    CORRECTED_ROW_BYTES,
    PASS_FIXED_BYTES,
    VALUE_BYTES,
    PassRates,
)
from fastlrnr.server.engine.jobs import Sites
from fastlrnr.server.errors import ApiError

SWEEP_CHUNK_ROWS = 2048  # rows solved in one pass at most
PART_SHARE = 0.1  # a part takes at most this share of the time budget (predicted)
MIN_PART_S = 0.05  # ... but parts are not cut below this (their fixed cost would dominate)


@dataclass(frozen=True)
class Part:
    """Rows ``rows`` of the sweep at the sites ``sites`` (None: every site) — for axes, ``sites``
    is a slice of the times."""

    rows: slice
    sites: slice | None
    grid: Sites
    predicted_s: float


def part_limits(
    sites: int, correct: bool, tolerance: bool, max_values: int, free_bytes: int, rates: PassRates, budget_s: float
) -> tuple[int, int]:
    """(rows per part, values per part) within the batch limit, the memory left and the time share."""
    per_value = VALUE_BYTES + (CLIMB_VALUE_BYTES if tolerance else 0)
    per_row = CORRECTED_ROW_BYTES if correct else 0
    room = max(0, free_bytes - PASS_FIXED_BYTES)
    values = max(1, min(max_values, room // per_value))
    row_s = rates.pass_seconds(1, sites, correct, False) - rates.pass_s
    time_rows = int(max(PART_SHARE * budget_s, MIN_PART_S) // max(row_s, 1e-9))
    rows = min(SWEEP_CHUNK_ROWS, values // max(1, sites), room // max(1, per_row + sites * per_value), time_rows)
    if rows >= 1:
        return rows, rows * sites
    value_s = max(rates.value_s, 1e-12)
    return 1, max(1, min(values, int(max(PART_SHARE * budget_s, MIN_PART_S) // value_s)))


def plan(
    sweep: SweepInput,
    held: int,
    correct: bool,
    tolerance: bool,
    max_values: int,
    rates: PassRates,
    budget: Budget,
    predict: Callable[[slice, Sites], float] | None = None,
) -> list[Part]:
    """The sweep's parts, in order; 413 when not even one part fits the memory budget, 422
    ``over_time_budget`` when the whole sweep is predicted not to fit its time budget.
    ``predict(rows, sites)``: a part's predicted seconds (None: an LRNR pass's, corrected when
    ``correct``) — with a tolerance, its rows' routes'."""
    free = budget.memory_bytes - held
    if free < PASS_FIXED_BYTES + VALUE_BYTES + (CORRECTED_ROW_BYTES if correct else 0):
        budget.refuse_memory(held + PASS_FIXED_BYTES + CORRECTED_ROW_BYTES, "the sweep")
    rows_per, values_per = part_limits(sweep.sites, correct, tolerance, max_values, free, rates, budget.time_s)
    grid = Sites(sweep.kind, sweep.x, sweep.t, (sweep.kind, sweep.x.tobytes(), sweep.t.tobytes()))
    B = len(sweep.mu)
    parts: list[Part] = []
    if predict is None:

        def predict(rows: slice, sites: Sites) -> float:
            return rates.pass_seconds(rows.stop - rows.start, sites.sites, correct, False)

    if rows_per * sweep.sites <= values_per:  # whole rows
        for lo in range(0, B, rows_per):
            sl = slice(lo, min(B, lo + rows_per))
            parts.append(Part(sl, None, grid, predict(sl, grid)))
    else:  # one row at a time, its sites (points) or times (axes) in slices
        n = sweep.x.size if sweep.kind == "points" else sweep.t.size
        step = values_per if sweep.kind == "points" else max(1, values_per // sweep.x.size)
        cuts = [slice(lo, min(n, lo + step)) for lo in range(0, n, step)]
        for r in range(B):
            for cut in cuts:
                part = grid.part(cut)
                parts.append(Part(slice(r, r + 1), cut, part, predict(slice(r, r + 1), part)))
    predicted = sum(p.predicted_s for p in parts)
    if predicted > budget.time_s:
        fit = max(0, int(B * budget.time_s / predicted))
        try:
            budget.refuse_time(predicted, f"the sweep ({B} rows × {sweep.sites} sites, {len(parts)} passes)")
        except ApiError as exc:
            exc.message += f"; about {fit} rows would fit" if fit else "; not even one row fits"
            exc.errors[0]["msg"] = exc.message
            raise
    return parts


def site_mask(part: Part, kind: str) -> tuple:
    """The index of a part's answer values in the sweep's answer (B, P) or (B, nt, nx)."""
    if part.sites is None:
        return (part.rows,)
    return (part.rows, part.sites) if kind == "points" else (part.rows, part.sites, slice(None))
