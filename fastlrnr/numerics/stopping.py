"""Stopping long numerical work from outside it.

A caller that may have to abandon work (its client left, its deadline passed) hands the work a
``Stop``: a callable, polled between steps, that returns True when the work should end. The work
then raises :class:`Stopped`, and the caller keeps whatever it had before. Polling costs a
function call; the reference solver polls every ``POLL_STEPS`` steps of its march.
"""

from __future__ import annotations

from collections.abc import Callable

Stop = Callable[[], bool]
POLL_STEPS = 32  # splitting steps between two polls of a Stop in the reference solver's march


class Stopped(Exception):
    """The work's ``Stop`` returned True: what it was computing is abandoned."""


def check(stop: Stop | None) -> None:
    """Raise :class:`Stopped` when ``stop`` says so (None: never)."""
    if stop is not None and stop():
        raise Stopped()
