"""The convection–diffusion–reaction family (docs/method.md, “The PDE family and its domains”).

    u_t + β u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic, t ∈ [0, 1],
    u(x, 0) = 1 + sin x.

Parameter columns ``PARAM_NAMES = ("beta", "nu", "rho")``. Error equation: a_x = β,
a_xx = −ν, c(u) = ρ(1 − 2u), remainder N_u(e) = ρe² (so Newton subtracts ρe²); reaction
flow: the exact logistic step u ← u e^{ρh} / (1 + u (e^{ρh} − 1)).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from fastlrnr.numerics.family import Domain, Flow, HardBand, PdeFamily

PARAM_NAMES: tuple[str, ...] = ("beta", "nu", "rho")

CONVECTION = Domain(
    "convection",
    {"beta": (1.0, 20.0), "nu": (0.0, 0.0), "rho": (0.0, 0.0)},
    PARAM_NAMES,
    "pure convection, meta-training range (D1)",
)
CONVECTION_TEST = Domain(
    "convection-test",
    {"beta": (5.0, 8.0), "nu": (0.0, 0.0), "rho": (0.0, 0.0)},
    PARAM_NAMES,
    "pure convection, fast-phase test range (D1)",
)
CDR = Domain(
    "cdr",
    {"beta": (1.0, 3.0), "nu": (0.0, 2.0), "rho": (0.0, 2.0)},
    PARAM_NAMES,
    "convection–diffusion–reaction (D2); training and test range",
)

LOW_VISCOSITY = HardBand(
    "nu",
    low=0.0,
    upto=0.1,
    sweep_values=(0.005, 0.02, 0.05, 0.08),
    calibration_values=(0.0, 0.01, 0.03, 0.06, 0.1, 0.2),
    name="low viscosity ν",
)
"""Little diffusion to damp errors: ν ≤ 0.1 (a reaction front with ν = 0 is the sharpest)."""

DOMAINS: dict[str, Domain] = {d.name: d for d in (CONVECTION, CONVECTION_TEST, CDR)}
# The range each trained domain is evaluated on (docs/method.md, “The PDE family and its domains”).
TEST_DOMAINS: dict[str, Domain] = {"convection": CONVECTION_TEST, "cdr": CDR}


class CdrFamily(PdeFamily):
    """u_t + β u_x − ν u_xx − ρ u (1 − u) = 0, u0 = 1 + sin x; ν, ρ ≥ 0."""

    name = "cdr"
    params = PARAM_NAMES
    nonnegative = ("nu", "rho")  # ν < 0 is ill-posed; ρ < 0 lets u > 1 blow up in finite time
    reaction_params = ("rho",)
    equation = "u_t + beta*u_x - nu*u_xx - rho*u*(1 - u) = 0, x in [0, 2pi) periodic, t in [0, 1], u(x, 0) = 1 + sin(x)"
    domains = DOMAINS
    test_domains = TEST_DOMAINS
    initial_text = "1 + sin x"
    initial_trig = (1.0, 1.0, 0.0)
    hard_band = LOW_VISCOSITY

    def initial_jets(self, x, xp: ModuleType = np) -> tuple:
        """(1 + sin x, cos x, −sin x)."""
        return 1.0 + xp.sin(x), xp.cos(x), -xp.sin(x)

    def initial_condition(self, x, xp: ModuleType = np):
        """u0 = 1 + sin x (without the jets' cost)."""
        return 1.0 + xp.sin(x)

    def residual(self, u, u_t, u_x, u_xx, beta, nu, rho):
        """R[u] = u_t + β u_x − ν u_xx − ρ u (1 − u), elementwise (broadcasting)."""
        return u_t + beta * u_x - nu * u_xx - rho * u * (1.0 - u)

    def linear_coefficients(self, beta, nu, rho) -> tuple:
        """(β, −ν)."""
        return beta, -nu

    def reaction_coefficient(self, u, beta, nu, rho):
        """c(u) = ρ (1 − 2u)."""
        return rho * (1.0 - 2.0 * u)

    def remainder(self, u, e, beta, nu, rho):
        """N_u(e) = ρ e²."""
        return rho * e * e

    def newton_shift(self, u, e, beta, nu, rho):
        """ρ e² (the nonlinearity is quadratic: the shift is the remainder itself)."""
        return rho * e * e

    def reaction_flow(self, h: float, beta, nu, rho) -> Flow:
        """Exact flow of u' = ρ u (1 − u) over h (ρ = 0 gives the identity)."""
        grow, grow_m1 = np.exp(rho * h), np.expm1(rho * h)
        return lambda u: u * grow / (1.0 + u * grow_m1)


CDR_FAMILY = CdrFamily()
