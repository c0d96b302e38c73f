"""What a reference-rung attempt costs, predicted before it starts: seconds and bytes.

An attempt (``fastlrnr.numerics.reference_rung``) is two solves of R rows at the requested sites:
the served one (n internal points, every distinct requested time a step boundary) and its check
(n/2 points, uniform steps of twice the length). Their cost is not the number of sites but

- the splitting steps: Σ over the intervals between distinct times of max(1, ⌈s·Δt⌉), so at
  least one step per distinct time — 40 000 scattered points are 40 000 steps, whatever s;
- per step, a fixed cost (numpy calls, ``step_s``) and the FFTs of R rows of n points
  (``point_step_s`` per row·point);
- the interpolation to the sites: per row·site·Fourier mode (``site_mode_s``).

:class:`ReferenceRates` holds the three rates (``measure`` times them on this machine, in a few
tens of milliseconds); :func:`attempt_seconds` and :func:`attempt_bytes` predict an attempt from
the sites' times, the rows, the step count and n. Memory: the served solve keeps one state per
row (its march hands each time's values on as it reaches them); the check keeps every uniform
step of the rows it marches at once (``CHECK_STATE_BYTES`` at most); the attempt's outputs are
R × sites float64 each, a few of them alive at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import PdeFamily

CHUNK_VALUES = 1 << 19  # float64 values of states interpolated to the sites at once (4 MiB)
CHECK_STATE_BYTES = 32 << 20  # the check's kept uniform states, per group of rows marched together
ATTEMPT_FIXED_BYTES = 64 << 20  # chunk buffers, FFT and interpolation temporaries of one attempt
OUTPUTS_ALIVE = 4  # R × sites float64 arrays alive at once in an attempt: served, check, difference, norm's copy


def march_steps(times: np.ndarray, substeps: int, uniform: bool = False) -> int:
    """Splitting steps of one march to the sorted distinct ``times``: every interval cut into
    ⌈substeps·Δt⌉ steps (at least one); ``uniform``: steps of 1/substeps up to the last time,
    at least two."""
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0 or times[-1] <= 0.0:
        return 0
    if uniform:
        return max(2, math.ceil(substeps * times[-1] - 1e-9))
    spans = np.diff(times, prepend=0.0)
    spans = spans[spans > 0.0]
    return int(np.sum(np.maximum(1, np.ceil(substeps * spans - 1e-9))))


def check_substeps(times: np.ndarray, substeps: int) -> int:
    """Uniform steps per unit time of an attempt's check: steps twice as long as the served
    solve's longest (so its splitting error is about four times the served solve's, whatever
    the requested times force on the served solve): ``substeps``/2 unless the requested times
    cut the served solve's steps shorter; at least 2."""
    times = np.asarray(times, dtype=np.float64)
    spans = np.diff(times, prepend=0.0)
    spans = spans[spans > 0.0]
    if spans.size == 0:
        return max(2, substeps // 2)
    longest = float(np.max(spans / np.maximum(1, np.ceil(substeps * spans - 1e-9))))
    return max(2, math.floor(0.5 / longest + 1e-9))


def check_rows(rows: int, times: np.ndarray, substeps: int, n: int) -> int:
    """Rows the check marches at once: their kept uniform states within CHECK_STATE_BYTES."""
    kept = (march_steps(times, substeps, uniform=True) + 3) * n * 8 * 4  # the states, their slopes, an FFT's copy
    return max(1, min(rows, CHECK_STATE_BYTES // max(1, kept)))


@dataclass(frozen=True)
class ReferenceRates:
    """Seconds per unit of a reference solve's work on this machine: ``step_s`` per splitting
    step (and per distinct time), whatever the rows; ``point_step_s`` per row·internal
    point·step; ``site_mode_s`` per row·site·Fourier mode. The defaults are this repository's
    2-core machine, loaded; ``measure`` times them."""

    step_s: float = 20e-6
    point_step_s: float = 30e-9
    site_mode_s: float = 10e-9

    def solve_seconds(self, rows: int, times: np.ndarray, sites: int, substeps: int, n: int, uniform: bool) -> float:
        """Predicted seconds of one solve of ``rows`` rows at ``sites`` sites whose sorted
        distinct times are ``times``."""
        steps = march_steps(times, substeps, uniform)
        groups = math.ceil(rows / check_rows(rows, times, substeps, n)) if uniform else 1
        modes = n // 2 + 1
        interpolation = rows * sites * modes * self.site_mode_s * (2.0 if uniform else 1.0)  # + the cubic in time
        return steps * (groups * self.step_s + rows * n * self.point_step_s) + len(times) * self.step_s + interpolation

    @classmethod
    def measure(cls, family: PdeFamily, repeats: int = 3) -> ReferenceRates:
        """The three rates timed here (median of ``repeats``; a few tens of milliseconds in all),
        on the paths the rung takes: a row's steps as one dense matrix (a Strang family), many
        rows' by FFT, the values to the sites through a real interpolation matrix."""
        from fastlrnr.numerics.family import PdeFamily as _Family
        from fastlrnr.numerics.reference import march
        from fastlrnr.numerics.spectral import trig_matrix
        from fastlrnr.numerics.strang import strang_march

        rng = np.random.default_rng(0)
        one = family.check_params(np.ones((1, len(family.params))))
        many = np.repeat(one, 32, axis=0)
        times_a = np.linspace(0.0, 1.0, 257)[1:]  # 256 steps of one row of 16 points: the fixed cost
        times_b = np.linspace(0.0, 1.0, 33)[1:]  # 32 steps of 32 rows of 256 points: the FFTs
        values = rng.standard_normal((4, 64, 32))
        E = trig_matrix(32, rng.uniform(0, 2 * np.pi, 2048))

        def median(fn) -> float:
            out = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
            return float(np.median(out))

        def skip(j: int, u: np.ndarray) -> None:
            pass

        if type(family).march is _Family.march:  # the rung's dense step for a few rows
            a = median(lambda: strang_march(one, times_a, 256, 16, family, emit=skip, dense=True))
        else:
            a = median(lambda: march(one, times_a, skip, substeps=256, nx_internal=16, family=family))
        b = median(lambda: march(many, times_b, skip, substeps=32, nx_internal=256, family=family))
        c = median(lambda: values @ E)
        step_s = a / (2 * len(times_a))
        point_step_s = max(b / len(times_b) - 2 * step_s, 0.0) / (32 * 256)
        return cls(step_s, max(point_step_s, 1e-10), c / (4 * 64 * 2048 * 17))


def attempt_seconds(rates: ReferenceRates, rows: int, times: np.ndarray, sites: int, substeps: int, n: int) -> float:
    """Predicted seconds of one attempt at (substeps, n): the served solve and its check."""
    return rates.solve_seconds(rows, times, sites, substeps, n, False) + rates.solve_seconds(
        rows, times, sites, check_substeps(times, substeps), n // 2, True
    )


def attempt_bytes(rows: int, kept_rows: int, sites: int) -> int:
    """Bytes an attempt of ``rows`` rows may hold at its peak, with ``kept_rows`` rows' answers
    (R × sites float64) kept from earlier attempts."""
    return 8 * sites * (kept_rows + OUTPUTS_ALIVE * rows) + CHECK_STATE_BYTES + ATTEMPT_FIXED_BYTES
