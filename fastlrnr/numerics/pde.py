"""The convection–diffusion–reaction family as data, and the space-time grids (docs/method.md,
“The PDE family and its domains”).

    u_t + β u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic, t ∈ [0, 1],
    u(x, 0) = 1 + sin x.

Arrays of parameters use the column order ``PARAM_NAMES = ("beta", "nu", "rho")``.

The family itself lives in ``fastlrnr.numerics.families.cdr`` (``CDR_FAMILY``; the generic parts —
``Domain``, ``ParameterError``, the parameter helpers — in ``fastlrnr.numerics.family``); this module
re-exports them under their historical names, and keeps the grids shared by every family.
"""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.families.cdr import (
    CDR,
    CDR_FAMILY,
    CONVECTION,
    CONVECTION_TEST,
    DOMAINS,
    PARAM_NAMES,
    TEST_DOMAINS,
)
from fastlrnr.numerics.family import Domain, ParameterError, as_param_array, params_to_array
from fastlrnr.numerics.grid import STANDARD_NT, STANDARD_NX

X_PERIOD: float = 2.0 * np.pi
T_END: float = 1.0

__all__ = [
    "CDR",
    "CDR_FAMILY",
    "CONVECTION",
    "CONVECTION_TEST",
    "DOMAINS",
    "PARAM_NAMES",
    "TEST_DOMAINS",
    "T_END",
    "X_PERIOD",
    "Domain",
    "ParameterError",
    "as_param_array",
    "initial_condition",
    "interior_points",
    "params_to_array",
    "residual",
    "standard_grid",
    "uniform_grid",
]


def initial_condition(x: np.ndarray) -> np.ndarray:
    """u0(x) = 1 + sin x, elementwise; x in radians (the CDR family's)."""
    return CDR_FAMILY.initial_condition(x)


def residual(u, u_t, u_x, u_xx, beta, nu, rho):
    """R[u] = u_t + β u_x − ν u_xx − ρ u (1 − u), elementwise (broadcasting): the CDR family's."""
    return CDR_FAMILY.residual(u, u_t, u_x, u_xx, beta, nu, rho)


def interior_points(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded uniform interior points of the space-time domain: x ~ U[0, 2π), t ~ U(0, 1],
    each (count,) float64. The same (count, seed) always gives the same points."""
    if count < 1:
        raise ValueError(f"expected at least one point, got {count}")
    rng = np.random.default_rng(seed)
    x = X_PERIOD * rng.random(count)
    t = T_END * (1.0 - rng.random(count))
    return x, t


def uniform_grid(nx: int, nt: int) -> tuple[np.ndarray, np.ndarray]:
    """The uniform space-time grid ``{"nx", "nt"}`` of the service and its client: x_j = 2πj/nx
    (j < nx; periodic, so 2π itself is left out) and t = linspace(0, 1, nt), both (n,) float64."""
    if int(nx) != nx or int(nt) != nt or nx < 1 or nt < 1:
        raise ValueError(f"nx and nt must be positive integers, got nx={nx!r}, nt={nt!r}")
    return X_PERIOD * np.arange(int(nx)) / int(nx), np.linspace(0.0, T_END, int(nt))


def standard_grid() -> tuple[np.ndarray, np.ndarray]:
    """The evaluation grid, ``fastlrnr.numerics.grid``'s STANDARD_NX × STANDARD_NT: x = 2πj/256
    (j = 0..255), t = linspace(0, 1, 100)."""
    return uniform_grid(STANDARD_NX, STANDARD_NT)
