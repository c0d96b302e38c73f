"""What one request may spend, and whether its client still waits for it.

A :class:`Budget` is made when the request has been read and checked (``fastlrnr.server.api.checks``):

- time: its passes (a sweep's, the first answer of a batch) must end by ``deadline`` — the
  request's ``time_budget_ms``, else the server's ``max_time_budget_ms`` —, and its escalation to
  a tolerance by ``escalation_deadline`` (the same, or 2000 ms without a ``time_budget_ms``);
  the work every row needs (the first pass; a sweep's passes) predicted longer than the budget —
  and than ``GRACE_S`` — is refused up front (422 ``over_time_budget``, naming the prediction);
  work that runs late is cut between passes and inside long rungs, and a first pass still
  waiting for a worker past the budget is not started (503);
- memory: ``memory_bytes`` (``request_memory_bytes``), which a request's arrays are weighed
  against from their declared sizes before any is read or allocated (413 ``over_memory_budget``);
- its client: ``gone`` is set when the client disconnects (``fastlrnr.server.http.disconnect``);
  the work stops at the next check.

``stop``/``escalation_stop`` are the polls the solver hands to long numerical work
(``fastlrnr.numerics.stopping``); they are read on worker threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from fastlrnr.server.errors import ApiError
from fastlrnr.server.settings import ServiceSettings

DEFAULT_ESCALATION_MS = 2000  # escalation to a tolerance without a time_budget_ms ends this long after the checks
# A request's first pass runs whatever its budget when predicted shorter than this, and may wait
# this long for a worker: the one pass by which an answer may end after its budget stays short.
GRACE_S = 0.25


@dataclass
class Budget:
    """``start`` (perf_counter) when the request had been read and checked; ``time_s`` the
    seconds its passes may take, ``escalation_s`` its escalation; ``explicit``: the request
    gave ``time_budget_ms``; ``memory_bytes`` what its arrays may take (``reserved_bytes`` of them
    held outside its passes); ``gone``: its client left."""

    start: float
    time_s: float
    escalation_s: float
    explicit: bool
    memory_bytes: int
    gone: threading.Event = field(default_factory=threading.Event)
    loc: tuple = ("body", "time_budget_ms")
    reserved_bytes: int = 0  # held by the request outside its passes (a sweep's inputs and answer)

    @classmethod
    def of(
        cls, time_budget_ms: int | None, settings: ServiceSettings, loc: tuple = ("body", "time_budget_ms")
    ) -> Budget:
        """The budget of a request that asked for ``time_budget_ms`` (None: the server's); 422
        when it asks for more than ``max_time_budget_ms``. ``loc``: where the field is."""
        cap = settings.max_time_budget_ms
        if time_budget_ms is not None and time_budget_ms > cap:
            msg = f"time_budget_ms = {time_budget_ms} exceeds this server's limit of {cap} ms (max_time_budget_ms)"
            raise ApiError(
                422, "validation_error", msg, [{"loc": list(loc), "msg": f"at most {cap}", "type": "less_than_equal"}]
            )
        if time_budget_ms is None:
            time_s, escalation_s = cap / 1e3, min(DEFAULT_ESCALATION_MS, cap) / 1e3
        else:
            time_s = escalation_s = time_budget_ms / 1e3
        explicit = time_budget_ms is not None
        return cls(time.perf_counter(), time_s, escalation_s, explicit, settings.request_memory_bytes, loc=loc)

    @property
    def deadline(self) -> float:
        """perf_counter by which the request's passes must end."""
        return self.start + self.time_s

    @property
    def escalation_deadline(self) -> float:
        """perf_counter by which escalation to a tolerance must end."""
        return self.start + self.escalation_s

    def remaining_s(self) -> float:
        return self.deadline - time.perf_counter()

    def stop(self) -> bool:
        """The request's work should end now: its client left or its deadline passed."""
        return self.gone.is_set() or time.perf_counter() > self.deadline

    def escalation_stop(self) -> bool:
        """Its escalation should end now: the client left or the escalation deadline passed."""
        return self.gone.is_set() or time.perf_counter() > self.escalation_deadline

    def late(self) -> bool:
        """An explicit budget spent (and GRACE_S) before the first pass started: it must not start."""
        return self.explicit and time.perf_counter() - self.start > max(self.time_s, GRACE_S)

    def refuse_time(self, predicted_s: float, what: str) -> None:
        """422 ``over_time_budget`` when ``what`` is predicted to take longer than the budget and
        than GRACE_S (shorter work always runs: at most one short pass past the budget)."""
        if predicted_s <= max(self.time_s, GRACE_S):
            return
        given = "time_budget_ms" if self.explicit else "the server's max_time_budget_ms"
        msg = (
            f"{what} is predicted to take {predicted_s * 1e3:.0f} ms, more than the {self.time_s * 1e3:.0f} ms "
            f"of {given}; ask for less, or for a longer budget"
        )
        raise ApiError(422, "over_time_budget", msg, [{"loc": list(self.loc), "msg": msg, "type": "over_time_budget"}])

    def refuse_memory(self, predicted_bytes: int, what: str, loc: tuple = ("body",)) -> None:
        """413 ``over_memory_budget`` when ``what`` is predicted to take more than ``memory_bytes``."""
        if predicted_bytes <= self.memory_bytes:
            return
        msg = (
            f"{what} would take about {predicted_bytes / 2**20:.1f} MiB, more than this server's "
            f"{self.memory_bytes / 2**20:.0f} MiB per request (request_memory_bytes)"
        )
        raise ApiError(413, "over_memory_budget", msg, [{"loc": list(loc), "msg": msg, "type": "too_large"}])
