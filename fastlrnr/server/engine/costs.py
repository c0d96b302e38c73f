"""What a solver pass costs, predicted before it runs: seconds (from rates measured at warm-up)
and bytes (from per-value and per-row constants measured once, kept honest by a test).

A pass over R rows at P sites (``fastlrnr.server.engine.solver``) costs

- time: R·P field values (``value_s`` each, one thread), the correction per row when the answer
  is corrected (``corrected_row_s``), the fast phase per row when it runs (``fast_row_s``), and a
  fixed ``pass_s``; ``PassRates.from_pass`` reads them off the model's warm-up pass;
- memory: ``PASS_FIXED_BYTES`` (evaluator blocks, interpolation chunks) + R·P·``VALUE_BYTES``
  (the LRNR's float32 field, the correction at the sites in float64, the float32 answer) +
  R·``CORRECTED_ROW_BYTES`` (the correction's LRNR pass with its jets and the error equation);
  a tolerance keeps the LRNR's field for the climb (``CLIMB_VALUE_BYTES``); a JSON answer adds
  its text, body and gzip copy (``JSON_VALUE_BYTES``).

The reference rung has its own model (``fastlrnr.numerics.reference_cost``); ``PassRates``
carries its rates. The rates are measured once, on a machine whose load changes: ``Load`` keeps
how long the passes served since took against their prediction (decaying sums, so the large
passes weigh most), and ``PassRates.scaled`` applies it to every prediction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace

from fastlrnr.numerics.reference_cost import ReferenceRates

PASS_FIXED_BYTES = 48 << 20
VALUE_BYTES = 24
CLIMB_VALUE_BYTES = 4
JSON_VALUE_BYTES = 32
CORRECTED_ROW_BYTES = 384 << 10
LONG_PASS_S = 0.25  # a pass predicted longer runs in the long lane (fastlrnr.server.engine.pool)


@dataclass(frozen=True)
class PassRates:
    """Seconds per unit of a pass on this machine: per field value (one thread), per corrected
    row, per fast-phase row (the model's default steps), per pass; and the reference rung's."""

    value_s: float = 2e-6
    corrected_row_s: float = 0.03
    fast_row_s: float = 0.04
    pass_s: float = 0.003
    reference: ReferenceRates = field(default_factory=ReferenceRates)

    def scaled(self, factor: float) -> PassRates:
        """Every rate (the reference rung's too) times ``factor``: this machine now."""
        ref = self.reference
        return PassRates(
            self.value_s * factor,
            self.corrected_row_s * factor,
            self.fast_row_s * factor,
            self.pass_s * factor,
            replace(
                ref,
                step_s=ref.step_s * factor,
                point_step_s=ref.point_step_s * factor,
                site_mode_s=ref.site_mode_s * factor,
            ),
        )

    def pass_seconds(self, rows: int, sites: int, correct: bool, fast: bool) -> float:
        """Predicted seconds of one pass of ``rows`` rows at ``sites`` sites on one thread."""
        per_row = (self.corrected_row_s if correct else 0.0) + (self.fast_row_s if fast else 0.0)
        return self.pass_s + rows * (sites * self.value_s + per_row)

    @classmethod
    def from_pass(cls, timings: dict[str, float], rows: int, sites: int, family) -> PassRates:
        """The rates of a model from one pass's stage timings (seconds) over ``rows`` rows at
        ``sites`` sites on one thread, with the fast phase and the correction (the warm-up's), and
        the reference rung's rates of this machine for ``family`` (``reference_rates``)."""
        return cls(
            value_s=max(timings["field"] / (rows * sites), 1e-10),
            corrected_row_s=max(timings["correction"] / rows, 1e-5),
            fast_row_s=max(timings["fast_phase"] / rows, 1e-5),
            pass_s=max(timings["hypernet"], 1e-4),
            reference=reference_rates(family),
        )


_REFERENCE_RATES: dict[str, ReferenceRates] = {}
_REFERENCE_LOCK = threading.Lock()


def reference_rates(family) -> ReferenceRates:
    """The reference rung's rates on this machine for ``family``, measured once per process
    (~0.1 s; a reload reuses them: the machine did not change, and ``Load`` follows its load)."""
    with _REFERENCE_LOCK:
        if family.name not in _REFERENCE_RATES:
            _REFERENCE_RATES[family.name] = ReferenceRates.measure(family)
        return _REFERENCE_RATES[family.name]


class Load:
    """How much slower (or faster) than their prediction the passes have run lately: the ratio
    of decaying sums of their measured and predicted seconds, within [LOAD_MIN, LOAD_MAX]."""

    DECAY = 0.9  # each new pass keeps this much of what came before

    def __init__(self) -> None:
        self._measured = self._predicted = 0.0
        self._lock = threading.Lock()

    def observe(self, predicted_s: float, measured_s: float) -> None:
        with self._lock:
            self._measured = self._measured * self.DECAY + measured_s
            self._predicted = self._predicted * self.DECAY + predicted_s

    @property
    def factor(self) -> float:
        with self._lock:
            if self._predicted <= 0.0:
                return 1.0
            return min(LOAD_MAX, max(LOAD_MIN, self._measured / self._predicted))


LOAD_MIN, LOAD_MAX = 0.5, 8.0


def pass_bytes(rows: int, sites: int, correct: bool, tolerance: bool = False, json: bool = False) -> int:
    """Predicted peak bytes of one pass of ``rows`` rows at ``sites`` sites and its answer."""
    per_value = VALUE_BYTES + (CLIMB_VALUE_BYTES if tolerance else 0) + (JSON_VALUE_BYTES if json else 0)
    return PASS_FIXED_BYTES + rows * sites * per_value + (rows * CORRECTED_ROW_BYTES if correct else 0)
