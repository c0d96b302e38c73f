"""The space-time grids, in one place: the domain x ∈ [0, 2π) (periodic) × t ∈ [0, 1] that every
family shares, the uniform grids of the service and its client, the standard grid, and seeded
interior points. numpy only (the client imports this module).

``STANDARD_NX`` × ``STANDARD_NT`` is the standard grid (x_j = 2πj/nx, t = linspace(0, 1, nt)):
the service's default grid, the one it warms every model on, and the one the client assumes when
a request names no grid.
"""

from __future__ import annotations

import numpy as np

X_PERIOD: float = 2.0 * np.pi
T_END: float = 1.0
STANDARD_NX: int = 256
STANDARD_NT: int = 100


def uniform_grid(nx: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """The uniform space-time grid ``{"nx", "nt"}`` of the service and its client: x_j = 2πj/nx
    (j < nx; periodic, so 2π itself is left out) and t = linspace(0, 1, nt), both (n,) float64."""
    if int(nx) != nx or int(nt) != nt or nx < 1 or nt < 1:
        raise ValueError(f"nx and nt must be positive integers, got nx={nx!r}, nt={nt!r}")
    return X_PERIOD * np.arange(int(nx)) / int(nx), np.linspace(0.0, T_END, int(nt))


def standard_grid() -> tuple[np.ndarray, np.ndarray]:
    """The evaluation grid STANDARD_NX × STANDARD_NT: x = 2πj/256 (j = 0..255), t = linspace(0, 1, 100)."""
    return uniform_grid(STANDARD_NX, STANDARD_NT)


def interior_points(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded uniform interior points of the space-time domain: x ~ U[0, 2π), t ~ U(0, 1],
    each (count,) float64. The same (count, seed) always gives the same points."""
    if count < 1:
        raise ValueError(f"expected at least one point, got {count}")
    rng = np.random.default_rng(seed)
    x = X_PERIOD * rng.random(count)
    t = T_END * (1.0 - rng.random(count))
    return x, t
