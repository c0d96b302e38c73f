"""The Allen–Cahn family: a reaction–diffusion equation with a cubic nonlinearity.

    u_t − ν u_xx − ρ (u − u³) = 0,   x ∈ [0, 2π) periodic, t ∈ [0, 1],
    u(x, 0) = 0.5 sin x,   ν, ρ ≥ 0.

Parameter columns ``("nu", "rho")``. Error equation: a_x = 0, a_xx = −ν,
c(u) = ρ(1 − 3u²), remainder N_u(e) = ρ(3u e² + e³); reaction flow: the exact solution of
u' = ρ(u − u³), u(h) = u e^{ρh} / sqrt(1 + u² (e^{2ρh} − 1)).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from fastlrnr.numerics.families.cdr import LOW_VISCOSITY
from fastlrnr.numerics.family import Domain, Flow, PdeFamily

PARAM_NAMES: tuple[str, ...] = ("nu", "rho")

ALLEN_CAHN = Domain(
    "allen-cahn",
    {"nu": (0.0, 0.1), "rho": (0.0, 5.0)},
    PARAM_NAMES,
    "Allen–Cahn: diffusion and bistable reaction",
)


class AllenCahnFamily(PdeFamily):
    """u_t − ν u_xx − ρ (u − u³) = 0, u0 = 0.5 sin x; ν, ρ ≥ 0."""

    name = "allen_cahn"
    params = PARAM_NAMES
    nonnegative = ("nu", "rho")
    reaction_params = ("rho",)
    equation = "u_t - nu*u_xx - rho*(u - u^3) = 0, x in [0, 2pi) periodic, t in [0, 1], u(x, 0) = 0.5*sin(x)"
    domains = {ALLEN_CAHN.name: ALLEN_CAHN}
    test_domains = {ALLEN_CAHN.name: ALLEN_CAHN}
    initial_text = "0.5 sin x"
    initial_trig = (0.0, 0.5, 0.0)
    hard_band = LOW_VISCOSITY  # the same low-ν band as CDR's: fronts sharpen as ν → 0

    def initial_jets(self, x, xp: ModuleType = np) -> tuple:
        """(0.5 sin x, 0.5 cos x, −0.5 sin x)."""
        return 0.5 * xp.sin(x), 0.5 * xp.cos(x), -0.5 * xp.sin(x)

    def initial_condition(self, x, xp: ModuleType = np):
        """u0 = 0.5 sin x (without the jets' cost)."""
        return 0.5 * xp.sin(x)

    def residual(self, u, u_t, u_x, u_xx, nu, rho):
        """R[u] = u_t − ν u_xx − ρ (u − u³), elementwise (broadcasting); u_x is unused."""
        return u_t - nu * u_xx - rho * (u - u * u * u)

    def linear_coefficients(self, nu, rho) -> tuple:
        """(0, −ν)."""
        return 0.0 * nu, -nu

    def reaction_coefficient(self, u, nu, rho):
        """c(u) = ρ (1 − 3u²)."""
        return rho * (1.0 - 3.0 * u * u)

    def remainder(self, u, e, nu, rho):
        """N_u(e) = ρ (3u e² + e³)."""
        return rho * (3.0 * u + e) * e * e

    def reaction_flow(self, h: float, nu, rho) -> Flow:
        """Exact flow of u' = ρ (u − u³) over h (ρ = 0 gives the identity)."""
        grow, grow2_m1 = np.exp(rho * h), np.expm1(2.0 * rho * h)
        return lambda u: u * grow / np.sqrt(1.0 + u * u * grow2_m1)


ALLEN_CAHN_FAMILY = AllenCahnFamily()
