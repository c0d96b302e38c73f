"""The fast phase for a batch of queries: backend + optimiser + acceptance.

For B queries (μ_b, ŝ_b = s(μ_b)) and C locality weights, the B·C rows are optimised
together on the chosen backend at the model's collocation points, then every candidate
and ŝ are judged by the full LRNR's linearised-error proxy on the check grid
(``fastlrnr.numerics.error_proxy``, ``acceptance``); per query the best candidate is kept when its proxy
beats ŝ's by the margin, else ŝ.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fastlrnr.numerics.allocator import retain_freed_memory
from fastlrnr.numerics.answer import FastPhaseDiagnostics, finite_or_none
from fastlrnr.numerics.error_proxy import ErrorProxy
from fastlrnr.numerics.family import PdeFamily, as_param_array
from fastlrnr.numerics.fast_phase.acceptance import choose
from fastlrnr.numerics.fast_phase.adam import adam
from fastlrnr.numerics.fast_phase.lm import levenberg_marquardt
from fastlrnr.numerics.fastlrnr import ReducedOperators
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.jet_chain import JetChain, exact_chain
from fastlrnr.numerics.lrnr import LRNRWeights, coefficient_rows, split_layers

BACKENDS = ("exact", "reduced")
OPTIMIZERS = ("lm", "adam")
MAX_ROWS = 8  # rows optimised together: bounds the hidden-state memory (~8 MiB per array at N = M = 256)


@dataclass(frozen=True)
class FastPhaseSettings:
    """How one query is adapted.

    backend: ``exact`` (the full LRNR, O(N K M) a step) or ``reduced`` (the FastLRNR,
        O(n K M), independent of N).
    optimizer: ``lm`` (Levenberg–Marquardt on the least-squares objective) or ``adam``
        (the paper's: Adam on the ℓ1 objective).
    steps: optimiser iterations; each costs one backend evaluation.
    locality: the locality weights λ tried per query (each one row; the check picks).
    margin: a candidate is kept only if its error proxy is ≥ this fraction below ŝ's.
    damping, max_step, tol: LM's initial relative damping, step limit (relative to ‖ŝ‖)
        and early-stop threshold (``fastlrnr.numerics.fast_phase.lm``).
    lr, betas, eps: Adam's relative step size and moments (``fastlrnr.numerics.fast_phase.adam``).
    """

    backend: str = "exact"
    optimizer: str = "lm"
    steps: int = 5
    locality: tuple[float, ...] = (1e-5,)
    margin: float = 0.05
    damping: float = 1e-2
    max_step: float = 0.5
    tol: float = 1e-3
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.steps < 0:
            raise ValueError(f"steps must be ≥ 0, got {self.steps}")
        lam = tuple(float(v) for v in self.locality)
        if not lam or not all(np.isfinite(v) and v >= 0 for v in lam):
            raise ValueError(f"locality: need at least one finite weight ≥ 0, got {self.locality}")
        object.__setattr__(self, "locality", lam)
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if not (0 <= self.margin < 1):
            raise ValueError(f"margin must lie in [0, 1), got {self.margin}")
        if self.damping <= 0 or self.max_step <= 0 or self.tol < 0 or self.lr <= 0 or self.eps <= 0:
            raise ValueError(f"damping, max_step, lr, eps must be > 0 and tol ≥ 0: {self}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")

    @property
    def objective(self) -> str:
        return "lsq" if self.optimizer == "lm" else "l1"

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> FastPhaseSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown fast-phase settings {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


@dataclass(frozen=True)
class FastPhaseResult:
    """One query's outcome.

    coefficients: the row served (P,) float64, ``s`` the same per layer (list of (k_l,));
    ranks: (k_1, …, k_L); accepted: whether they are the update (else ŝ);
    locality: the weight of the kept candidate (None when ŝ was kept); steps_run: iterations
    the kept candidate ran (0 when ŝ was kept); objective_before/after: the optimiser's
    objective at ŝ and at the kept candidate (equal when ŝ was kept); residual_before/after:
    the full LRNR's RMS residual on the check grid for ŝ and for the served s;
    proxy_before/after: the linearised-error proxy ê (``fastlrnr.numerics.error_proxy``) of ŝ and of the
    served s, what acceptance compares; candidates: (locality, ê) per candidate;
    optimise_ms, check_ms: wall time of the batched optimisation and check (shared by all
    queries of one call); iterates:
    the kept row's coefficient rows after every step (steps, P), or None unless recorded."""

    coefficients: np.ndarray
    ranks: tuple[int, ...]
    backend: str
    optimizer: str
    accepted: bool
    locality: float | None
    steps_run: int
    objective_before: float
    objective_after: float
    residual_before: float
    residual_after: float
    proxy_before: float
    proxy_after: float
    candidates: tuple[tuple[float, float], ...]
    optimise_ms: float
    check_ms: float
    iterates: np.ndarray | None = field(default=None, repr=False)

    @property
    def s(self) -> list[np.ndarray]:
        """The served coefficients per layer: list of (k_l,)."""
        return split_layers(self.coefficients, self.ranks)

    def diagnostics(self) -> FastPhaseDiagnostics:
        """What an answer reports of this outcome (``fastlrnr.numerics.answer``)."""
        return FastPhaseDiagnostics(
            enabled=True,
            backend=self.backend,
            optimizer=self.optimizer,
            steps_run=self.steps_run,
            locality=finite_or_none(self.locality),
            accepted=self.accepted,
            objective_before=finite_or_none(self.objective_before),
            objective_after=finite_or_none(self.objective_after),
            residual_before=finite_or_none(self.residual_before),
            residual_after=finite_or_none(self.residual_after),
            error_proxy_before=finite_or_none(self.proxy_before),
            error_proxy_after=finite_or_none(self.proxy_after),
        )


class FastPhaseModel:
    """What the fast phase needs of one model, built once: the exact chain at the collocation
    points, the reduced one (when the model has reduced operators), and the full LRNR's
    linearised-error proxy on the check grid.

    weights: the LRNR (cast to ``dtype`` for the exact chain and the check); reduced: the
    FastLRNR for the collocation points (its points are used when given); collocation:
    (count, seed) of ``fastlrnr.numerics.grid.interior_points``; check: (nx, nt) of the proxy's grid;
    family: the PDE whose residual the chains and the check evaluate."""

    def __init__(
        self,
        weights: LRNRWeights,
        reduced: ReducedOperators | None = None,
        collocation: tuple[int, int] = (256, 0),
        check: tuple[int, int] = (16, 17),
        dtype=np.float32,
        *,
        family: PdeFamily,
    ):
        if reduced is not None:
            if tuple(reduced.ranks) != tuple(weights.ranks):
                raise ValueError(f"reduced operators have ranks {reduced.ranks}, the LRNR {weights.ranks}")
            x, t = reduced.x, reduced.t
        else:
            x, t = interior_points(*collocation)
        self.ranks = tuple(weights.ranks)
        self.chains: dict[str, JetChain] = {"exact": exact_chain(weights, x, t, dtype, family=family)}
        if reduced is not None:
            self.chains["reduced"] = reduced.chain(np.float64, family=family)
        self.check = ErrorProxy(weights, *check, dtype=dtype, family=family)
        self.family = family
        retain_freed_memory()  # a step reallocates MiB-sized arrays: reuse them (fastlrnr/numerics/allocator.py)

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(self.chains)


class _Rows:
    """The fast-phase problem of a batch: one chain, one parameter set per row."""

    def __init__(self, chain: JetChain, mu: np.ndarray):
        self.chain, self.mu = chain, mu

    def forward(self, S: np.ndarray, rows: np.ndarray):
        return self.chain.forward(S, self.mu[rows])

    def jacobian(self, state) -> np.ndarray:
        return self.chain.jacobian(state)


def _optimise(
    chain: JetChain,
    S_hat: np.ndarray,
    mu: np.ndarray,
    lam: np.ndarray,
    ranks: Sequence[int],
    settings: FastPhaseSettings,
    record: bool,
) -> tuple:
    """(S, F0, F, steps_run, iterates) of the chosen optimiser for rows S_hat (R, P)."""
    problem = _Rows(chain, mu)
    if settings.optimizer == "lm":
        tr = levenberg_marquardt(
            problem, S_hat, S_hat, lam, settings.steps, settings.damping, settings.max_step, settings.tol, record
        )
        return tr.S, tr.F0, tr.F, tr.steps, tr.iterates
    S, F0, F, iterates = adam(
        problem,
        S_hat,
        S_hat,
        lam,
        settings.steps,
        step_scale(S_hat, ranks),
        settings.objective,
        settings.lr,
        settings.betas,
        settings.eps,
        record,
    )
    return S, F0, F, np.full(len(S), settings.steps), iterates


def step_scale(S_hat: np.ndarray, ranks: Sequence[int], floor: float = 1e-2) -> np.ndarray:
    """(R, P): per row and layer, the largest coefficient of ŝ in that layer (at least
    ``floor`` times the row's largest, and 1 for an all-zero row)."""
    top = S_hat.max(axis=1, keepdims=True)
    top = np.where(top > 0, top, 1.0)
    out = np.empty_like(S_hat)
    lo = 0
    for k in ranks:
        out[:, lo : lo + k] = np.maximum(S_hat[:, lo : lo + k].max(axis=1, keepdims=True), floor * top)
        lo += k
    return out


def run_fast_phase(
    model: FastPhaseModel,
    s_hat,
    mu: np.ndarray,
    settings: FastPhaseSettings = FastPhaseSettings(),
    record: bool = False,
) -> list[FastPhaseResult]:
    """The fast phase for B queries: s_hat as rows (B, P) or a per-layer list of (B, k_l)
    (or (k_l,) for one query), ≥ 0; mu (B, p) in the family's columns. Returns one result per query; with
    ``record`` each carries the kept candidate's iterates (for error-per-step curves)."""
    S_hat = coefficient_rows(model.ranks, s_hat)[0]
    mu = as_param_array(mu, model.family.params)
    B = S_hat.shape[0]
    p = len(model.family.params)
    if mu.shape != (B, p) or not np.all(np.isfinite(mu)):
        raise ValueError(f"expected finite mu of shape ({B}, {p}), got {mu.shape}")
    if not np.all(np.isfinite(S_hat)) or np.any(S_hat < 0):
        raise ValueError("s_hat: coefficients must be finite and ≥ 0 (they are ReLU outputs)")
    if settings.backend not in model.chains:
        raise ValueError(f"backend {settings.backend!r} is not available for this model (has {model.backends})")
    chain = model.chains[settings.backend]
    C = len(settings.locality)
    rows_hat = np.repeat(S_hat, C, axis=0)  # row b·C + c
    rows_mu = np.repeat(mu, C, axis=0)
    lam = np.tile(np.asarray(settings.locality), B)

    t0 = time.perf_counter()
    parts = [
        _optimise(
            chain,
            rows_hat[lo : lo + MAX_ROWS],
            rows_mu[lo : lo + MAX_ROWS],
            lam[lo : lo + MAX_ROWS],
            model.ranks,
            settings,
            record,
        )
        for lo in range(0, len(rows_hat), MAX_ROWS)
    ]
    S, F0, F, steps_run = (np.concatenate([p[i] for p in parts]) for i in range(4))
    iterates = np.concatenate([p[4] for p in parts], axis=1) if record else None
    optimise_ms = 1e3 * (time.perf_counter() - t0)

    t0 = time.perf_counter()
    proxy, rms = model.check(np.concatenate([S_hat, S]), np.concatenate([mu, rows_mu]))
    check_ms = 1e3 * (time.perf_counter() - t0)
    proxy_hat, proxy_cand = proxy[:B], proxy[B:].reshape(B, C)
    rms_hat, rms_cand = rms[:B], rms[B:].reshape(B, C)
    best, accepted = choose(proxy_hat, proxy_cand, settings.margin)

    results = []
    for b in range(B):
        i = b * C + int(best[b])
        ok = bool(accepted[b])
        s_row = S[i] if ok else S_hat[b]
        results.append(
            FastPhaseResult(
                coefficients=np.array(s_row, dtype=np.float64),
                ranks=model.ranks,
                backend=settings.backend,
                optimizer=settings.optimizer,
                accepted=ok,
                locality=float(lam[i]) if ok else None,
                steps_run=int(steps_run[i]) if ok else 0,
                objective_before=float(F0[i]),
                objective_after=float(F[i] if ok else F0[i]),
                residual_before=float(rms_hat[b]),
                residual_after=float(rms_cand[b, best[b]] if ok else rms_hat[b]),
                proxy_before=float(proxy_hat[b]),
                proxy_after=float(proxy_cand[b, best[b]] if ok else proxy_hat[b]),
                candidates=tuple((float(settings.locality[c]), float(proxy_cand[b, c])) for c in range(C)),
                optimise_ms=optimise_ms,
                check_ms=check_ms,
                iterates=None if iterates is None else iterates[:, i].copy(),
            )
        )
    return results
