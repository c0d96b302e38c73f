"""The Python client of the solve service (httpx and numpy only; imports none of the server).

    from fastlrnr.client import SolveClient, AsyncSolveClient

``SolveClient`` / ``AsyncSolveClient`` (``clients``) are thin sync and asyncio shells around
sans-I/O plans (``plans``: retries, splitting, joining; ``options``: the request options and
bodies; ``answers``: parsing; ``results``: the typed results; ``sweeps``: binary sweeps; ``fits``:
parameter estimation).
"""

from fastlrnr.client.clients import (
    AsyncSolveClient,
    BatchItem,
    BatchResult,
    FastPhaseOptions,
    FitOptions,
    FitResult,
    ModelRef,
    SolveClient,
    SolveError,
    SolveOptions,
    SolveResult,
    SweepOptions,
    SweepResult,
)

__all__ = [
    "AsyncSolveClient",
    "BatchItem",
    "BatchResult",
    "FastPhaseOptions",
    "FitOptions",
    "FitResult",
    "ModelRef",
    "SolveClient",
    "SolveError",
    "SolveOptions",
    "SolveResult",
    "SweepOptions",
    "SweepResult",
]
