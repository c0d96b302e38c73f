"""Keep freed memory in the process for reuse (glibc), so hot loops do not page-fault.

Each fast-phase step allocates and frees arrays of about a megabyte (the hidden-state jets
of a few hundred points). glibc serves allocations above its mmap threshold with fresh
pages and returns them to the kernel on free, so every step pays page faults and zeroing:
measured at 2–3× the arithmetic of a step (benchmarks/fast_phase_step.py). Raising the
mmap and trim thresholds makes freed blocks stay in the heap and be reused. The price is
that the process keeps its peak heap (the fast phase bounds that peak by solving rows in
chunks). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 256 << 20  # blocks up to 256 MiB come from the heap
TRIM_THRESHOLD = 512 << 20  # keep up to 512 MiB of free heap before returning it

_done: bool | None = None


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they were set."""
    global _done
    if _done is None:
        _done = False
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            mallopt = getattr(libc, "mallopt", None)
            if mallopt is not None and getattr(libc, "gnu_get_libc_version", None) is not None:
                _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                )
        except OSError:
            _done = False
    return _done
