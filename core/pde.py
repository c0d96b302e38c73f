"""The convection–diffusion–reaction family as data (docs/method.md, “The PDE family and its domains”).

    u_t + β u_x − ν u_xx − ρ u (1 − u) = 0,   x ∈ [0, 2π) periodic, t ∈ [0, 1],
    u(x, 0) = 1 + sin x.

Arrays of parameters use the column order ``PARAM_NAMES = ("beta", "nu", "rho")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

PARAM_NAMES: tuple[str, ...] = ("beta", "nu", "rho")
X_PERIOD: float = 2.0 * np.pi
T_END: float = 1.0


class ParameterError(ValueError):
    """A parameter set is malformed or outside a domain; ``param`` names the culprit."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def initial_condition(x: np.ndarray) -> np.ndarray:
    """u0(x) = 1 + sin x, elementwise; x in radians."""
    return 1.0 + np.sin(x)


def residual(u, u_t, u_x, u_xx, beta, nu, rho):
    """R[u] = u_t + β u_x − ν u_xx − ρ u (1 − u), elementwise (broadcasting)."""
    return u_t + beta * u_x - nu * u_xx - rho * u * (1.0 - u)


@dataclass(frozen=True)
class Domain:
    """A box of parameter sets: ``bounds[name] = (low, high)``; low == high fixes it."""

    name: str
    bounds: Mapping[str, tuple[float, float]]
    description: str = ""

    def __post_init__(self) -> None:
        if set(self.bounds) != set(PARAM_NAMES):
            raise ValueError(f"domain {self.name!r} must bound exactly {PARAM_NAMES}")
        for key, (lo, hi) in self.bounds.items():
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"domain {self.name!r}: bad range for {key}: {(lo, hi)}")

    @property
    def low(self) -> np.ndarray:
        """(3,) lower bounds in PARAM_NAMES order."""
        return np.array([self.bounds[k][0] for k in PARAM_NAMES], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        """(3,) upper bounds in PARAM_NAMES order."""
        return np.array([self.bounds[k][1] for k in PARAM_NAMES], dtype=np.float64)

    @property
    def active(self) -> tuple[str, ...]:
        """Names of the parameters that vary in this domain."""
        return tuple(k for k in PARAM_NAMES if self.bounds[k][1] > self.bounds[k][0])

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "bounds": {k: list(map(float, self.bounds[k])) for k in PARAM_NAMES},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Domain:
        return cls(
            name=str(d["name"]),
            description=str(d.get("description", "")),
            bounds={k: (float(d["bounds"][k][0]), float(d["bounds"][k][1])) for k in PARAM_NAMES},
        )

    def contains(self, mu: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        """(B,) bool: which rows of mu (B, 3) lie in the box (within tol)."""
        mu = as_param_array(mu)
        return np.all((mu >= self.low - tol) & (mu <= self.high + tol), axis=1)

    def validate(self, params: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """Return the (3,) parameter vector, or raise ParameterError naming the
        offending parameter and the allowed range."""
        mu = params_to_array(params)
        for i, key in enumerate(PARAM_NAMES):
            lo, hi = self.bounds[key]
            if not (lo - 1e-12 <= mu[i] <= hi + 1e-12):
                allowed = f"= {lo:g}" if lo == hi else f"∈ [{lo:g}, {hi:g}]"
                raise ParameterError(
                    f"{key} = {mu[i]:g} is outside the domain {self.name!r}: {key} {allowed}", param=key
                )
        return mu

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) parameter sets drawn uniformly from the box."""
        return self.low + (self.high - self.low) * rng.random((n, len(PARAM_NAMES)))

    def grid(self, per_axis: int) -> np.ndarray:
        """(per_axis^a, 3) tensor grid over the active parameters (a = #active), ends included."""
        axes = [
            np.linspace(*self.bounds[k], per_axis) if k in self.active else np.array([self.bounds[k][0]])
            for k in PARAM_NAMES
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


def params_to_array(params: Mapping[str, float] | np.ndarray) -> np.ndarray:
    """(3,) float64 from a mapping {beta, nu, rho} (missing → 0) or a length-3 array.
    Raises ParameterError for unknown names, non-numbers, NaN or inf."""
    if isinstance(params, Mapping):
        unknown = set(params) - set(PARAM_NAMES)
        if unknown:
            name = sorted(unknown)[0]
            raise ParameterError(f"unknown parameter {name!r}; expected some of {PARAM_NAMES}", param=name)
        try:
            mu = np.array([float(params.get(k, 0.0)) for k in PARAM_NAMES], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"parameters must be numbers: {exc}") from None
    else:
        mu = np.asarray(params, dtype=np.float64)
        if mu.shape != (len(PARAM_NAMES),):
            raise ParameterError(f"expected shape (3,) for (beta, nu, rho), got {mu.shape}")
    for i, key in enumerate(PARAM_NAMES):
        if not np.isfinite(mu[i]):
            raise ParameterError(f"{key} must be a finite number, got {mu[i]}", param=key)
    return mu


def as_param_array(mu: np.ndarray) -> np.ndarray:
    """(B, 3) float64 view of parameter rows; a single (3,) row is promoted."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim == 1:
        mu = mu[None, :]
    if mu.ndim != 2 or mu.shape[1] != len(PARAM_NAMES):
        raise ValueError(f"expected shape (B, 3) for (beta, nu, rho), got {mu.shape}")
    return mu


CONVECTION = Domain(
    "convection",
    {"beta": (1.0, 20.0), "nu": (0.0, 0.0), "rho": (0.0, 0.0)},
    "pure convection, meta-training range (D1)",
)
CONVECTION_TEST = Domain(
    "convection-test",
    {"beta": (5.0, 8.0), "nu": (0.0, 0.0), "rho": (0.0, 0.0)},
    "pure convection, fast-phase test range (D1)",
)
CDR = Domain(
    "cdr",
    {"beta": (1.0, 3.0), "nu": (0.0, 2.0), "rho": (0.0, 2.0)},
    "convection–diffusion–reaction (D2); training and test range",
)

DOMAINS: dict[str, Domain] = {d.name: d for d in (CONVECTION, CONVECTION_TEST, CDR)}
# The range each trained domain is evaluated on (docs/method.md, “The PDE family and its domains”).
TEST_DOMAINS: dict[str, Domain] = {"convection": CONVECTION_TEST, "cdr": CDR}


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
    """The evaluation grid: x = 2πj/256 (j = 0..255), t = linspace(0, 1, 100)."""
    return uniform_grid(256, 100)
