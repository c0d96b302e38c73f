"""Timing helpers shared by the benchmark scripts (wall clock, ``time.perf_counter``).

The machine is shared and noisy, so scripts compare methods by ratios measured in one run:
``interleaved`` runs every candidate once per round, round after round, so that a burst of
load hits all of them alike, and reports medians.

Scripts run as ``python benchmarks/<name>.py`` import this as ``timing`` (benchmarks/ is then
``sys.path[0]``); run as ``python -m benchmarks.<name>`` they import ``benchmarks.timing``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(minimum, median) wall time of ``fn()`` in seconds over ``repeats`` calls, after one warm-up call."""
    fn()  # warm-up: session arenas, BLAS buffers, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2]


def timed_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """``timed`` in milliseconds."""
    best, median = timed(fn, repeats)
    return 1e3 * best, 1e3 * median


def interleaved(fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times in seconds of every ``fns[name]()``, run round-robin: ``warmup`` untimed
    rounds, then ``repeats`` timed ones. Returns {name: [seconds per round]}."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine_line() -> str:
    """One line on the conditions of a run: CPUs, load average, BLAS/OMP thread settings."""
    threads = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    return f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; cpus {os.cpu_count()}; load average " + (
        f"{os.getloadavg()[0]:.2f}; {threads}"
    )
