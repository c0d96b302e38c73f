"""What a PDE family is, to the numerics (docs/method.md, “The PDE family as a module”).

A family is a scalar evolution equation on x ∈ [0, 2π) periodic, t ∈ [0, 1],

    R[u] = u_t + a_x u_x + a_xx u_xx + N(u) = 0,    u(x, 0) = u0(x),

with constant-coefficient linear part (a_x, a_xx) and a pointwise nonlinearity N, both
functions of the family's parameters μ (columns in ``params`` order). Everything else in
the numerics read the equation through a :class:`PdeFamily`:

- the residual, written once with +, −, * so it serves numpy arrays and torch tensors;
- the initial condition and its x-jets (the exact-IC ansatz u = u0 + t g, ``ansatz_jets``);
- the error equation R[u + e] = r + L_u e + N_u(e), with
  L_u e = e_t + a_x e_x + a_xx e_xx − c(u) e: the symbol of the linear part per Fourier mode,
  the reaction coefficient c(u) = −N'(u) and the remainder N_u(e);
- the reference solver's sub-flows: the linear step per mode (the same symbol) and the
  exact flow of u_t = −N(u); its march (``march``: Strang splitting of those sub-flows unless
  the family brings its own solver, as burgers does), its default resolution
  (``reference_resolution``) and its escalation rung's plan (``rung``, ``rung_points``).

Also here, as they are family-independent: :class:`Domain` (a box of parameter sets) and
the parameter-vector helpers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from fastlrnr.numerics.stopping import Stop
from fastlrnr.numerics.strang import DEFAULT_SUBSTEPS, NX_INTERNAL, Emit, strang_march


class ParameterError(ValueError):
    """A parameter set is malformed or outside a domain; ``param`` names the culprit."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def params_to_array(params: Mapping[str, float] | np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(n,) float64 from a mapping over ``names`` (missing → 0) or a length-n array, n = len(names).
    Raises ParameterError for unknown names, non-numbers, NaN or inf."""
    names = tuple(names)
    if isinstance(params, Mapping):
        unknown = set(params) - set(names)
        if unknown:
            name = sorted(unknown)[0]
            raise ParameterError(f"unknown parameter {name!r}; expected some of {names}", param=name)
        try:
            mu = np.array([float(params.get(k, 0.0)) for k in names], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"parameters must be numbers: {exc}") from None
    else:
        mu = np.asarray(params, dtype=np.float64)
        if mu.shape != (len(names),):
            raise ParameterError(f"expected shape ({len(names)},) for ({', '.join(names)}), got {mu.shape}")
    for i, key in enumerate(names):
        if not np.isfinite(mu[i]):
            raise ParameterError(f"{key} must be a finite number, got {mu[i]}", param=key)
    return mu


def as_param_array(mu: np.ndarray, names: Sequence[str] | int) -> np.ndarray:
    """(B, n) float64 view of parameter rows over ``names`` (or n unnamed columns when an
    int); a single (n,) row is promoted."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim == 1:
        mu = mu[None, :]
    n = names if isinstance(names, int) else len(names)
    if mu.ndim != 2 or mu.shape[1] != n:
        what = f"{n} parameters" if isinstance(names, int) else f"({', '.join(names)})"
        raise ValueError(f"expected shape (B, {n}) for {what}, got {mu.shape}")
    return mu


@dataclass(frozen=True)
class Domain:
    """A box of parameter sets: ``bounds[name] = (low, high)``; low == high fixes it.
    ``params``: the parameter names in column order (its family's)."""

    name: str
    bounds: Mapping[str, tuple[float, float]]
    params: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        if set(self.bounds) != set(self.params):
            raise ValueError(f"domain {self.name!r} must bound exactly {self.params}")
        for key, (lo, hi) in self.bounds.items():
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"domain {self.name!r}: bad range for {key}: {(lo, hi)}")

    @property
    def low(self) -> np.ndarray:
        """(n,) lower bounds in ``params`` order."""
        return np.array([self.bounds[k][0] for k in self.params], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        """(n,) upper bounds in ``params`` order."""
        return np.array([self.bounds[k][1] for k in self.params], dtype=np.float64)

    @property
    def active(self) -> tuple[str, ...]:
        """Names of the parameters that vary in this domain."""
        return tuple(k for k in self.params if self.bounds[k][1] > self.bounds[k][0])

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "description": self.description,
            "bounds": {k: list(map(float, self.bounds[k])) for k in self.params},
            "params": list(self.params),
        }
        return out

    @classmethod
    def from_dict(cls, d: Mapping, params: Sequence[str] | None = None) -> Domain:
        """The domain ``d`` describes; its parameter names from ``d["params"]``, else ``params``
        (the family's: a record written before domains named their parameters)."""
        if "params" in d:
            params = d["params"]
        if params is None:
            raise ValueError(f"domain {d.get('name')!r} names no parameters and none were given")
        params = tuple(map(str, params))
        return cls(
            name=str(d["name"]),
            description=str(d.get("description", "")),
            bounds={k: (float(d["bounds"][k][0]), float(d["bounds"][k][1])) for k in params},
            params=params,
        )

    def contains(self, mu: np.ndarray, tol: float = 1e-12) -> np.ndarray:
        """(B,) bool: which rows of mu (B, n) lie in the box (within tol)."""
        mu = as_param_array(mu, self.params)
        return np.all((mu >= self.low - tol) & (mu <= self.high + tol), axis=1)

    def validate(self, params: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """Return the (n,) parameter vector, or raise ParameterError naming the
        offending parameter and the allowed range."""
        mu = params_to_array(params, self.params)
        for i, key in enumerate(self.params):
            lo, hi = self.bounds[key]
            if not (lo - 1e-12 <= mu[i] <= hi + 1e-12):
                allowed = f"= {lo:g}" if lo == hi else f"∈ [{lo:g}, {hi:g}]"
                raise ParameterError(
                    f"{key} = {mu[i]:g} is outside the domain {self.name!r}: {key} {allowed}", param=key
                )
        return mu

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, p) parameter sets drawn uniformly from the box."""
        return self.low + (self.high - self.low) * rng.random((n, len(self.params)))

    def grid(self, per_axis: int) -> np.ndarray:
        """(per_axis^a, p) tensor grid over the active parameters (a = #active), ends included."""
        axes = [
            np.linspace(*self.bounds[k], per_axis) if k in self.active else np.array([self.bounds[k][0]])
            for k in self.params
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


Flow = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class HardBand:
    """Where a family's solutions are sharpest: ``param`` at the low end of its range, from
    ``low`` (the smallest value the family is trained on) up to ``upto``. The sweeps and the
    calibration add points there, off their tensor grids: ``sweep_values`` and
    ``calibration_values`` of ``param``; ``name`` says what the band is, for reports."""

    param: str
    low: float
    upto: float
    sweep_values: tuple[float, ...]
    calibration_values: tuple[float, ...]
    name: str

    def applies(self, domain: Domain) -> bool:
        """Whether ``domain`` varies ``param`` and reaches down to the band's bottom."""
        return self.param in domain.active and domain.bounds[self.param][0] <= self.low

    def contains(self, domain: Domain, mu: np.ndarray) -> np.ndarray:
        """(B,) bool: rows mu (B, p) of ``domain`` whose ``param`` is at most ``upto``."""
        return np.asarray(mu)[:, domain.params.index(self.param)] <= self.upto


@dataclass(frozen=True)
class RungPlan:
    """How the reference rung (``fastlrnr.numerics.reference_rung.solve_to_tolerance``) climbs for
    a family. The defaults are the Strang solver's: steps double from ``first_substeps`` to
    ``max_substeps``, the points double only when the estimate stalls (up to ``max_points``), and
    the check is marched with uniform steps and interpolated cubically in time.

    first_substeps: time steps per unit time of the first attempt; max_substeps: the last
    attempt's; max_points: internal points of the finest attempt; uniform_check: march the
    check uniformly and interpolate in time (False: the check hits the requested times, as the
    served solve does — needed where a front moves through a site between two steps);
    refine_points: every attempt doubles the points as well as the steps (a solver whose error
    is set by the points, its step tied to them by a CFL limit)."""

    first_substeps: int = 32
    max_substeps: int = 8192
    max_points: int = 1024
    uniform_check: bool = True
    refine_points: bool = False


class PdeFamily(ABC):
    """One PDE family (see the module docstring). Parameters enter every method as columns
    ``*params`` in ``params`` order, each broadcastable against the fields (``columns``)."""

    name: str
    """Short key, as artifacts name it ("cdr")."""
    params: tuple[str, ...]
    """Parameter names, in the column order of every parameter array."""
    nonnegative: tuple[str, ...]
    """Parameters that must be ≥ 0 for the problem to be well posed (the reference solver checks)."""
    reaction_params: tuple[str, ...]
    """Parameters that switch N on: a row with all of them 0 has a linear equation."""
    equation: str
    """The equation in plain text (what an artifact's manifest records as ``pde``)."""
    domains: Mapping[str, Domain]
    """The training domains of this family, by name."""
    test_domains: Mapping[str, Domain]
    """The range each training domain is evaluated on."""
    initial_text: str
    """u0 in the ansatz's words ("1 + sin x"): what an artifact's ``ansatz`` records."""
    initial_trig: tuple[float, float, float] | None = None
    """(c0, c_sin, c_cos) when u0 = c0 + c_sin sin x + c_cos cos x (what an ONNX graph of the
    LRNR can embed); None for any other initial condition (then the numpy evaluator serves)."""
    hard_band: HardBand | None = None
    """The parameter that sharpens the solution and where (the sweeps and the calibration
    sample it more densely); None: no such parameter."""

    # ---------------------------------------------------------------- the equation
    @abstractmethod
    def initial_jets(self, x, xp: ModuleType = np) -> tuple:
        """(u0, u0_x, u0_xx) at x (radians); ``xp`` supplies sin and cos (numpy or torch)."""

    def initial_condition(self, x, xp: ModuleType = np):
        """u0(x), elementwise; x in radians; ``xp`` as for ``initial_jets``."""
        return self.initial_jets(x, xp)[0]

    @abstractmethod
    def residual(self, u, u_t, u_x, u_xx, *params):
        """R[u] elementwise (broadcasting); only +, −, * so numpy arrays and torch tensors both work."""

    # ------------------------------------------------------------ the error equation
    @abstractmethod
    def linear_coefficients(self, *params) -> tuple:
        """(a_x, a_xx): R's linear constant-coefficient part is u_t + a_x u_x + a_xx u_xx."""

    def burgers_coefficient(self, *params):
        """b in a transport term b u u_x of R (Burgers); 0 for a family without one. With b ≠ 0
        the linearisation adds b (u e)_x to L_u e and b e e_x to the remainder."""
        return 0.0 * params[0]

    @abstractmethod
    def reaction_coefficient(self, u, *params):
        """c(u) = −∂N/∂u, so that L_u e = e_t + a_x e_x + a_xx e_xx − c(u) e."""

    @abstractmethod
    def remainder(self, u, e, *params):
        """N_u(e) = R[u + e] − R[u] − L_u e: what the linearisation leaves out."""

    def newton_shift(self, u, e, *params):
        """What one Newton step of the error equation subtracts from the residual: with
        e_k the current error, L_{u+e_k} e_{k+1} = −(r − shift(u, e_k)). In general
        shift = −N_u(e) − (c(u + e) − c(u)) e; a family may state it in closed form."""
        return (
            -self.remainder(u, e, *params)
            - (self.reaction_coefficient(u + e, *params) - self.reaction_coefficient(u, *params)) * e
        )

    def residual_partials(self, u, u_x, *params) -> tuple:
        """(∂R/∂u, ∂R/∂u_x, ∂R/∂u_xx) at a state (∂R/∂u_t = 1): b u_x − c(u), a_x + b u and a_xx,
        broadcast against u (b: ``burgers_coefficient``)."""
        a_x, a_xx = self.linear_coefficients(*params)
        b = self.burgers_coefficient(*params)
        return b * u_x - self.reaction_coefficient(u, *params), a_x + b * u, a_xx + 0.0 * u

    def symbol(self, k: np.ndarray, *params) -> np.ndarray:
        """The linear part's Fourier symbol per mode: ê_t = symbol(k) ê for the equation
        e_t + a_x e_x + a_xx e_xx = 0, i.e. −i a_x k + a_xx k²; k wavenumbers (…, modes)."""
        a_x, a_xx = self.linear_coefficients(*params)
        return -1j * a_x * k + a_xx * k * k

    # ----------------------------------------------------------- the reference solver
    @abstractmethod
    def reaction_flow(self, h: float, *params) -> Flow:
        """The exact flow over a step h of the pointwise ODE u_t = −N(u), as a function of
        the grid values; params (B, 1) columns, u (B, n)."""

    def march(
        self,
        mu: np.ndarray,
        t: np.ndarray,
        substeps: int,
        n: int,
        *,
        emit: Emit | None = None,
        stop: Stop | None = None,
    ) -> np.ndarray | None:
        """The reference solver's grid values (B, nt, n) at x_j = 2πj/n and the sorted times t
        (nt,) ≥ 0 for rows mu (B, p): ``substeps`` time steps per unit time, n internal points.
        With ``emit``, each time's values (B, n) go to ``emit(j, u)`` instead and None is
        returned; ``stop`` is polled inside the march (``fastlrnr.numerics.stopping``). By default
        Strang splitting of ``symbol`` and ``reaction_flow`` (``fastlrnr.numerics.strang``); a
        family whose equation those sub-flows do not cover (a transport term u u_x) brings its
        own solver."""
        return strang_march(mu, t, substeps, n, self, emit=emit, stop=stop)

    def reference_resolution(self, mu: np.ndarray, tolerance: float | None = None) -> tuple[int, np.ndarray]:
        """(substeps, points): the reference solver's default time steps per unit time and its
        internal points per row (B,) for rows mu (B, p). ``tolerance``: the relative L2 error
        on the standard grid the resolution is for, where the family's solver chooses its
        resolution by one (burgers); None: its default. By default the Strang solver's
        (``DEFAULT_SUBSTEPS``, ``NX_INTERNAL``) for every row, whatever the tolerance (it is
        accurate to ~1e-9 there, and cheap)."""
        return DEFAULT_SUBSTEPS, np.full(len(mu), NX_INTERNAL, dtype=int)

    rung: RungPlan = RungPlan()
    """How the reference rung climbs for this family (``RungPlan``)."""

    def rung_points(self, tolerance: float, mu: np.ndarray) -> int | None:
        """Internal points of the reference rung's first attempt for a tolerance and rows mu
        (R, p); None (the default) leaves it to ``reference_rung.points_for``."""
        return None

    # ------------------------------------------------------------------- helpers
    @property
    def ansatz(self) -> str:
        """The LRNR's form for this family, as artifacts record it."""
        return f"embed(cos x, sin x, t); u = {self.initial_text} + t * (w.h_L + c)"

    def hard_band_of(self, domain: Domain) -> HardBand | None:
        """The family's hard band where ``domain`` reaches it, else None."""
        band = self.hard_band
        return band if band is not None and band.applies(domain) else None

    def describe(self) -> dict:
        """What ``GET /models`` says of the family: name, equation, parameter names in column
        order, those that must be ≥ 0."""
        return {
            "name": self.name,
            "equation": self.equation,
            "params": list(self.params),
            "nonnegative": list(self.nonnegative),
        }

    def columns(self, mu: np.ndarray, ndim: int = 2) -> tuple[np.ndarray, ...]:
        """The parameter columns of rows mu (R, p), each shaped (R, 1, …) with ``ndim`` axes."""
        tail = (None,) * (ndim - 1)
        return tuple(mu[(slice(None), i) + tail] for i in range(len(self.params)))

    def reacting(self, mu: np.ndarray) -> np.ndarray:
        """(R,) bool: rows whose nonlinearity is on (some reaction parameter ≠ 0)."""
        idx = [self.params.index(k) for k in self.reaction_params]
        return np.any(np.asarray(mu)[:, idx] != 0, axis=1)

    def needs_uxx(self, mu: np.ndarray) -> bool:
        """Whether some row's residual involves u_xx (a_xx ≠ 0)."""
        a_xx = self.linear_coefficients(*self.columns(np.asarray(mu, dtype=np.float64)))[1]
        return bool(np.any(np.asarray(a_xx) != 0))

    def check_params(self, mu: np.ndarray) -> np.ndarray:
        """(B, p) float64 rows, B ≥ 1, finite, ``nonnegative`` ones ≥ 0; else ParameterError."""
        mu = np.asarray(mu, dtype=np.float64)
        names = self.params
        if mu.ndim != 2 or mu.shape[1] != len(names) or mu.shape[0] < 1:
            raise ParameterError(
                f"expected shape (B, {len(names)}) for ({', '.join(names)}) with B ≥ 1, got {mu.shape}"
            )
        for i, key in enumerate(names):
            if not np.all(np.isfinite(mu[:, i])):
                raise ParameterError(
                    f"{key} must be a finite number, got {mu[~np.isfinite(mu[:, i]), i][0]}", param=key
                )
        for key in self.nonnegative:
            col = mu[:, names.index(key)]
            if np.any(col < 0.0):
                raise ParameterError(f"{key} must be ≥ 0, got {col[col < 0.0][0]:g}", param=key)
        return mu

    def ansatz_jets(self, x, t, g, g_x, g_t, g_xx, xp: ModuleType = np) -> tuple:
        """The exact-IC ansatz u = u0(x) + t g and its jets: (u, u_x, u_t, u_xx) from g's
        jets (any broadcastable shapes); u_xx is None when g_xx is None."""
        u0, u0_x, u0_xx = self.initial_jets(x, xp)
        u_xx = None if g_xx is None else u0_xx + t * g_xx
        return u0 + t * g, u0_x + t * g_x, g + t * g_t, u_xx

    def __repr__(self) -> str:
        return f"<PdeFamily {self.name}: {self.equation}>"
