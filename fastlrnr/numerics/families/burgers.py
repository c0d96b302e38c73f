"""The viscous Burgers–Fisher family: sharp fronts that steepen into viscous shocks.

    u_t + β u u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic, t ∈ [0, 1],
    u(x, 0) = 1 + sin x,   β ≥ 0, ν > 0, ρ ≥ 0.

Parameter columns ``("beta", "nu", "rho")``. Without viscosity the front of 1 + sin x breaks at
t = 1/β; with ν = 1e-3 the shock that follows is about 4ν / (β Δu) ≈ 7e-4 wide (Δu ≈ 2), so a
classical solver needs thousands of cells over the period. The reaction term rules out the
Cole–Hopf closed form (it is exact at ρ = 0 only).

The nonlinearity is not pointwise: besides the logistic reaction N(u) = −ρ u (1 − u) the
equation carries the transport term b u u_x with b = β (``burgers_coefficient``). Error
equation: L_u e = e_t + β (u e)_x − ν e_xx − ρ (1 − 2u) e, remainder β e e_x + ρ e².

Reference solver: the Strang splitting of the other families has no exact sub-flow for the
transport term, so this family brings its own (``march``): Fourier pseudo-spectral in x,
ETDRK4 in t (``fastlrnr.numerics.shock_reference``), with points per row by the shock width
(``reference_resolution``, ``shock_reference.points_for``) and a reference rung that refines
the points at every attempt (``rung``, ``rung_points``). Verified against the Cole–Hopf
solution at ρ = 0 (``fastlrnr.numerics.cole_hopf``).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from fastlrnr.numerics import shock_reference
from fastlrnr.numerics.family import Domain, Flow, HardBand, PdeFamily, RungPlan

PARAM_NAMES: tuple[str, ...] = ("beta", "nu", "rho")

BURGERS = Domain(
    "burgers",
    {"beta": (1.0, 3.0), "nu": (1e-3, 1e-2), "rho": (0.0, 1.0)},
    PARAM_NAMES,
    "viscous Burgers–Fisher: shocks at small ν",
)


class BurgersFamily(PdeFamily):
    """u_t + β u u_x − ν u_xx − ρ u (1 − u) = 0, u0 = 1 + sin x; β, ν, ρ ≥ 0."""

    name = "burgers"
    params = PARAM_NAMES
    nonnegative = ("beta", "nu", "rho")
    reaction_params = ("beta", "rho")
    equation = (
        "u_t + beta*u*u_x - nu*u_xx - rho*u*(1 - u) = 0, x in [0, 2pi) periodic, t in [0, 1], u(x, 0) = 1 + sin(x)"
    )
    domains = {BURGERS.name: BURGERS}
    test_domains = {BURGERS.name: BURGERS}
    initial_text = "1 + sin x"
    initial_trig = (1.0, 1.0, 0.0)
    hard_band = HardBand(  # the shock is ~4ν/(βΔu) wide: thinnest at the bottom of ν's range
        "nu",
        low=1e-3,
        upto=2e-3,
        sweep_values=(1.25e-3, 1.5e-3, 2e-3),
        calibration_values=(1e-3, 1.5e-3, 2e-3, 3e-3),
        name="low viscosity ν",
    )

    def initial_jets(self, x, xp: ModuleType = np) -> tuple:
        """(1 + sin x, cos x, −sin x)."""
        return 1.0 + xp.sin(x), xp.cos(x), -xp.sin(x)

    def initial_condition(self, x, xp: ModuleType = np):
        """u0 = 1 + sin x."""
        return 1.0 + xp.sin(x)

    def residual(self, u, u_t, u_x, u_xx, beta, nu, rho):
        """R[u] = u_t + β u u_x − ν u_xx − ρ u (1 − u), elementwise (broadcasting)."""
        return u_t + beta * u * u_x - nu * u_xx - rho * u * (1.0 - u)

    def linear_coefficients(self, beta, nu, rho) -> tuple:
        """(0, −ν): the constant-coefficient part; the transport β u u_x is ``burgers_coefficient``."""
        return 0.0 * beta, -nu

    def burgers_coefficient(self, beta, nu, rho):
        """b = β: the equation's transport term is b u u_x."""
        return beta

    def reaction_coefficient(self, u, beta, nu, rho):
        """c(u) = ρ (1 − 2u) (the pointwise part of the linearisation)."""
        return rho * (1.0 - 2.0 * u)

    def remainder(self, u, e, beta, nu, rho):
        """The pointwise part of N_u(e): ρ e² (the transport part β e e_x needs e_x)."""
        return rho * e * e

    def newton_shift(self, u, e, beta, nu, rho):
        """ρ e² (pointwise; the transport's β e e_x is added where e_x is known)."""
        return rho * e * e

    def reaction_flow(self, h: float, beta, nu, rho) -> Flow:
        """Exact flow of u' = ρ u (1 − u) over h (ρ = 0 gives the identity)."""
        grow, grow_m1 = np.exp(rho * h), np.expm1(rho * h)
        return lambda u: u * grow / (1.0 + u * grow_m1)

    # ----------------------------------------------------------- the reference solver
    def march(self, mu, t, substeps: int, n: int, *, emit=None, stop=None):
        """Grid values (B, nt, n) by ``shock_reference.etdrk4_march`` (Fourier, ETDRK4; at least
        ``substeps`` steps per unit time and as many more as the transport CFL limit needs);
        ``emit`` and ``stop`` as ``PdeFamily.march``."""
        return shock_reference.etdrk4_march(mu, t, substeps, n, emit=emit, stop=stop)

    def reference_resolution(self, mu: np.ndarray, tolerance: float | None = None) -> tuple[int, np.ndarray]:
        """(``shock_reference.DEFAULT_SUBSTEPS``, points per row by ``shock_reference.points_for``
        at ``tolerance``, by default its ``REFERENCE_TOLERANCE``)."""
        mu = np.asarray(mu, dtype=np.float64)
        tol = shock_reference.REFERENCE_TOLERANCE if tolerance is None else tolerance
        return shock_reference.DEFAULT_SUBSTEPS, shock_reference.points_for(mu[:, 0], mu[:, 1], tol)

    rung = RungPlan(
        first_substeps=shock_reference.DEFAULT_SUBSTEPS,
        max_substeps=1 << 30,  # the points end the climb
        max_points=shock_reference.RUNG_MAX_POINTS,
        uniform_check=False,
        refine_points=True,
    )

    def rung_points(self, tolerance: float, mu: np.ndarray) -> int:
        """Twice the points ``shock_reference.points_for`` asks for the tolerance at the hardest
        row (so the rung's check, on half the points, meets it), at most ``rung.max_points``."""
        mu = np.asarray(mu, dtype=np.float64).reshape(-1, len(self.params))
        need = int(np.max(shock_reference.points_for(mu[:, 0], mu[:, 1], tolerance)))
        return min(2 * need, self.rung.max_points)


BURGERS_FAMILY = BurgersFamily()
