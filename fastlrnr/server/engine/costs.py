"""What a solver pass costs, predicted before it runs: seconds (from rates measured at warm-up)
and bytes (from per-value and per-row constants measured once, kept honest by a test).

A pass over R rows at P sites (``fastlrnr.server.engine.solver``) costs

- time: R·P field values (``value_s`` each, one thread), the correction per row when the answer
  is corrected (``corrected_row_s``), the fast phase per row when it runs (``fast_row_s``), and a
  fixed ``pass_s``; ``PassRates.from_pass`` reads them off the model's warm-up pass (``PassRates``
  is ``fastlrnr.numerics.routes.RouteRates``: the same rates price every route of a model);
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

from fastlrnr.numerics.reference_cost import ReferenceRates
from fastlrnr.numerics.routes import RouteRates

PASS_FIXED_BYTES = 48 << 20
VALUE_BYTES = 24
CLIMB_VALUE_BYTES = 4
JSON_VALUE_BYTES = 32
CORRECTED_ROW_BYTES = 384 << 10
LONG_PASS_S = 0.25  # a pass predicted longer runs in the long lane (fastlrnr.server.engine.pool)


PassRates = RouteRates  # the rates of every route (``fastlrnr.numerics.routes``), a pass's among them


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
