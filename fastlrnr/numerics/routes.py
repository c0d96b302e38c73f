"""Every route a model offers to an answer, what each costs for a query's shape, and the choice,
for a tolerance, of the cheapest route predicted to meet it.

The routes (``fastlrnr.numerics.ladder`` runs them; their names are what ``diagnostics.answer.route``
says):

- ``surrogate``: the hypernetwork's coefficients and the LRNR's field at the sites; its estimate is
  the site envelope's bound (or the a-priori map). Predicted estimate: the a-priori map at μ.
- ``fast_phase``: the same after the fast phase (only when the request asks for it).
- ``corrected:<m>``: the LRNR's field plus its correction with m substeps (one per corrected rung
  of the manifest); a further rung reuses the first's LRNR pass. Predicted estimate: the rung's
  worst calibration error times its validated estimate / error ratio (``corrected_priors``).
- ``reference:<n>``: the reference solver from n internal points (``fastlrnr.numerics.reference_rung``),
  refining until its own two-resolution estimate meets the tolerance: always predicted to meet it.

What a route costs for R rows at P sites whose sorted distinct times are T (``RouteRates``,
measured on this machine at warm-up and scaled by the machine's load since):

    surrogate     pass_s + R·P·value_s
    fast_phase    + R·fast_row_s
    corrected:m   + R·corrected_row_s·m/m_1            (m_1: the first rung's substeps)
    reference:n   Σ attempts: steps(T, s)·(step_s + R·n·point_step_s) + R·P·(n/2 + 1)·site_mode_s,
                  and the same for its check on n/2 points (its steps from ``check_substeps``,
                  uniform, at least as fine as the served solve's)   (``fastlrnr.numerics.reference_cost``)

With a tolerance each row takes the cheapest of the routes the request allows whose predicted
estimate meets it (a row flagged ``beyond``: the reference only — the server refuses such rows,
so it never flags any); a row whose route's
own estimate then misses climbs the ladder from there (``ladder.escalate``). Without one the
model's default route answers, as always.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from fastlrnr.numerics.answer import Rung
from fastlrnr.numerics.reference_cost import ReferenceRates, attempt_seconds
from fastlrnr.numerics.reference_rung import FIRST_SUBSTEPS, points_for
from fastlrnr.numerics.sites import Sites

REFERENCE_POINTS = (16, 32, 64, 128)  # the reference route's first resolutions, as published


@dataclass(frozen=True)
class RouteRates:
    """Seconds per unit of a route's work on this machine: per field value (one thread), per
    corrected row (the first rung), per fast-phase row (the model's default steps), per pass; and
    the reference solver's (``ReferenceRates``). ``from_pass`` reads the first four off the
    model's warm-up pass."""

    value_s: float = 2e-6
    corrected_row_s: float = 0.03
    fast_row_s: float = 0.04
    pass_s: float = 0.003
    reference: ReferenceRates = field(default_factory=ReferenceRates)

    def scaled(self, factor: float) -> RouteRates:
        """Every rate (the reference solver's too) times ``factor``: this machine now."""
        ref = self.reference
        return RouteRates(
            self.value_s * factor,
            self.corrected_row_s * factor,
            self.fast_row_s * factor,
            self.pass_s * factor,
            replace(
                ref,
                step_s=ref.step_s * factor,
                point_step_s=ref.point_step_s * factor,
                site_mode_s=ref.site_mode_s * factor,
            ),
        )

    def pass_seconds(self, rows: int, sites: int, correct: bool, fast: bool) -> float:
        """Predicted seconds of one LRNR pass of ``rows`` rows at ``sites`` sites on one thread."""
        per_row = (self.corrected_row_s if correct else 0.0) + (self.fast_row_s if fast else 0.0)
        return self.pass_s + rows * (sites * self.value_s + per_row)

    def reference_seconds(self, rows: int, times: np.ndarray, sites: int, points: int, substeps: int) -> float:
        """Predicted seconds of the reference route's first attempt for ``rows`` rows."""
        return attempt_seconds(self.reference, rows, times, sites, substeps, points)

    @classmethod
    def from_pass(cls, timings: dict[str, float], rows: int, sites: int, reference: ReferenceRates) -> RouteRates:
        """The rates of a model from one pass's stage timings (seconds) over ``rows`` rows at
        ``sites`` sites on one thread, with the fast phase and the correction (the warm-up's),
        and the reference solver's rates of this machine."""
        return cls(
            value_s=max(timings["field"] / (rows * sites), 1e-10),
            corrected_row_s=max(timings["correction"] / rows, 1e-5),
            fast_row_s=max(timings["fast_phase"] / rows, 1e-5),
            pass_s=max(timings["hypernet"], 1e-4),
            reference=reference,
        )

    def to_dict(self) -> dict:
        ref = self.reference
        return {
            "value_s": self.value_s,
            "corrected_row_s": self.corrected_row_s,
            "fast_row_s": self.fast_row_s,
            "pass_s": self.pass_s,
            "reference": {"step_s": ref.step_s, "point_step_s": ref.point_step_s, "site_mode_s": ref.site_mode_s},
        }


class Allowed(StrEnum):
    """Which routes a request with a tolerance lets the service choose from (the reference always)."""

    ANY = "any"  # correction not given: surrogate, the corrected rungs, the reference
    CORRECTED = "corrected"  # correction: true — the corrected rungs, the reference
    UNCORRECTED = "uncorrected"  # correction: false — the surrogate (with the fast phase if it runs), the reference


def allowed_routes(correction: bool | None) -> Allowed:
    """The routes a request's ``correction`` option allows when it names a tolerance."""
    return Allowed.ANY if correction is None else Allowed.CORRECTED if correction else Allowed.UNCORRECTED


def corrected_priors(section: dict, rungs: int) -> tuple[float, ...]:
    """Per corrected rung, the estimate it is predicted to give anywhere in the served domain:
    its worst calibration error times its validated median estimate / error ratio (at least 1),
    from the manifest's ``correction.rungs_measured``; inf where the manifest has no figures."""
    measured = {r.get("substeps"): r for r in section.get("rungs_measured", ()) if isinstance(r, dict)}
    out = []
    for rung in section.get("rungs", [])[:rungs] or [{"substeps": section.get("substeps")}] * rungs:
        m = measured.get(rung.get("substeps"))
        worst = None if m is None else m.get("error_worst")
        ratio = (m or {}).get("quality_validation", {}).get("median_ratio") or 1.0
        out.append(float(worst) * max(1.0, float(ratio)) if isinstance(worst, (int, float)) else float("inf"))
    return tuple(out)


def route_name(kind: str, fast: bool = False, substeps: int | None = None, points: int | None = None) -> str:
    """The name ``diagnostics.answer.route`` gives a route."""
    if kind == Rung.SURROGATE:
        return "fast_phase" if fast else "surrogate"
    if kind == Rung.CORRECTED:
        return f"corrected:{substeps}"
    return f"reference:{points}"


@dataclass
class RoutePlan:
    """Per row of a request with a tolerance: the route it takes first (``kinds``: a ``Rung``
    each), the reference route's first resolution (``points``, ``substeps``), the reason in words,
    and the predicted seconds of the LRNR pass (rows on the surrogate or corrected routes) and of
    the reference's first attempt (rows routed to it)."""

    tolerance: float
    kinds: np.ndarray  # (R,) str
    points: np.ndarray  # (R,) int: the reference route's first n (0 elsewhere)
    substeps: np.ndarray  # (R,) int: its first s
    reasons: list[str]
    lrnr_s: float
    reference_s: float
    names: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.lrnr_s + self.reference_s

    @property
    def lrnr(self) -> np.ndarray:
        """(R,) bool: rows whose first route is the LRNR's (surrogate or corrected)."""
        return self.kinds != str(Rung.REFERENCE)

    def take(self, lo: int, hi: int) -> RoutePlan:
        """Rows lo … hi − 1 (a job's share of a shared pass; the predictions stay the whole's)."""
        sl = slice(lo, hi)
        names = self.names[sl] if self.names else []
        return RoutePlan(
            self.tolerance,
            self.kinds[sl],
            self.points[sl],
            self.substeps[sl],
            self.reasons[sl],
            self.lrnr_s,
            self.reference_s,
            names,
        )

    @staticmethod
    def join(plans: list[RoutePlan]) -> RoutePlan:
        """Plans of jobs sharing one pass, as one."""
        if len(plans) == 1:
            return plans[0]
        return RoutePlan(
            plans[0].tolerance,
            np.concatenate([p.kinds for p in plans]),
            np.concatenate([p.points for p in plans]),
            np.concatenate([p.substeps for p in plans]),
            [r for p in plans for r in p.reasons],
            sum(p.lrnr_s for p in plans),
            sum(p.reference_s for p in plans),
            [n for p in plans for n in p.names],
        )


def plan_routes(
    model,
    mu: np.ndarray,
    grid: Sites,
    tolerance: float,
    allowed: Allowed,
    rates: RouteRates,
    fast: bool = False,
    beyond: np.ndarray | None = None,
    explain: bool = True,
) -> RoutePlan:
    """Each row's first route for ``tolerance`` (see the module docstring): the cheapest route
    ``allowed`` (the fast phase on the surrogate route when ``fast``) whose predicted estimate
    meets it, per row, the fixed costs of the LRNR pass and of the reference's march spread over
    all R rows (an approximation: each is paid once by the rows that take it); ``beyond``
    (R,) bool: rows outside the extrapolation box, which only the reference answers; ``explain``:
    the reasons in words (else only the route names)."""
    mu = np.asarray(mu, dtype=np.float64)
    R = len(mu)
    if R == 0:
        empty = np.zeros(0, int)
        return RoutePlan(tolerance, np.zeros(0, dtype=object), empty, empty, [], 0.0, 0.0, [])
    sites = grid.sites
    times = np.unique(grid.t)
    outside = ~model.served.contains(mu)
    beyond = np.zeros(R, bool) if beyond is None else np.asarray(beyond, bool)
    n = points_for(tolerance, model.family, mu)
    s = model.family.rung.first_substeps if model.family.rung.first_substeps else FIRST_SUBSTEPS
    ref_row = rates.reference_seconds(R, times, sites, n, s) / R  # per row, the fixed costs shared
    lrnr_row = rates.pass_s / R + sites * rates.value_s + (rates.fast_row_s if fast else 0.0)
    candidates: list[tuple[str, float, np.ndarray]] = []  # (kind, seconds per row, predicted estimate (R,))
    if allowed != Allowed.CORRECTED:
        a_priori = model.a_priori.predict(mu) if model.a_priori is not None else np.full(R, np.inf)
        candidates.append((str(Rung.SURROGATE), lrnr_row, a_priori))
    if allowed != Allowed.UNCORRECTED and getattr(model, "corrected_priors", ()):
        prior = model.corrected_priors[0] * np.where(outside, model.corrected_extrapolation_factor, 1.0)
        candidates.append((str(Rung.CORRECTED), lrnr_row + rates.corrected_row_s, prior))
    kinds = np.full(R, str(Rung.REFERENCE), dtype=object)
    cost = np.full(R, ref_row)
    reasons = [""] * R
    for kind, row_s, predicted in candidates:
        better = (predicted <= tolerance) & (row_s < cost) & ~beyond
        kinds[better], cost[better] = kind, row_s
    first = model.correction_spec.rungs[0].substeps
    name_of = {
        k: route_name(k, fast, first, n) for k in (str(Rung.SURROGATE), str(Rung.CORRECTED), str(Rung.REFERENCE))
    }
    names = [name_of[k] for k in kinds]
    for i in range(R) if explain else ():
        kind, name = kinds[i], names[i]
        if beyond[i]:
            reasons[i] = (
                f"{name}: outside the extrapolation box (where the estimates' widening was measured) only the "
                "reference solver's own estimate holds"
            )
            continue
        others = [
            f"{name_of[k]} "
            + (f"predicted {1e3 * c:.3g} ms" if p[i] <= tolerance else f"predicted to miss ({p[i]:.2g})")
            for k, c, p in candidates
            if k != kind
        ]
        if kind != str(Rung.REFERENCE):
            others.append(f"{name_of[str(Rung.REFERENCE)]} predicted {1e3 * ref_row:.3g} ms")
        reasons[i] = (
            f"{name}: the cheapest route predicted to meet the tolerance ({1e3 * cost[i]:.3g} ms predicted"
            + (f"; {', '.join(others)}" if others else "")
            + ")"
        )
    lrnr = kinds != str(Rung.REFERENCE)
    corrected = kinds == str(Rung.CORRECTED)
    lrnr_s = (
        rates.pass_s
        + int(lrnr.sum()) * (sites * rates.value_s + (rates.fast_row_s if fast else 0.0))
        + int(corrected.sum()) * rates.corrected_row_s
        if lrnr.any()
        else 0.0
    )
    n_ref = int((~lrnr).sum())
    reference_s = rates.reference_seconds(n_ref, times, sites, n, s) if n_ref else 0.0
    return RoutePlan(
        tolerance,
        kinds,
        np.where(lrnr, 0, n),
        np.where(lrnr, 0, s),
        reasons,
        lrnr_s,
        reference_s,
        names,
    )


def published_costs(model, rates: RouteRates, shapes: dict[str, tuple[int, Sites]]) -> dict:
    """What ``GET /models`` publishes of a model's routes: the rates, the formula of each route
    and its predicted milliseconds for a few query shapes (name → (rows, sites))."""
    rungs = model.correction_spec.rungs
    first = rungs[0].substeps
    out: dict = {"rates": rates.to_dict(), "routes": []}
    priors = getattr(model, "corrected_priors", ())

    def per_shape(fn) -> dict:
        res = {}
        for label, (rows, grid) in shapes.items():
            res[label] = round(1e3 * fn(rows, grid), 3)
        return res

    out["routes"].append(
        {
            "route": "surrogate",
            "rung": str(Rung.SURROGATE),
            "cost": "pass_s + rows·sites·value_s",
            "predicted_estimate": "the a-priori map at the parameters (answered with the site envelope's bound)",
            "predicted_ms": per_shape(lambda r, g: rates.pass_seconds(r, g.sites, False, False)),
        }
    )
    out["routes"].append(
        {
            "route": "fast_phase",
            "rung": str(Rung.SURROGATE),
            "cost": "pass_s + rows·(sites·value_s + fast_row_s)",
            "predicted_estimate": "as the surrogate's (only when the request asks for the fast phase)",
            "predicted_ms": per_shape(lambda r, g: rates.pass_seconds(r, g.sites, False, True)),
        }
    )
    for k, rung in enumerate(rungs):
        ratio = rung.substeps / first

        def corrected(r, g, ratio=ratio):
            return rates.pass_s + r * (g.sites * rates.value_s + rates.corrected_row_s * ratio)

        out["routes"].append(
            {
                "route": f"corrected:{rung.substeps}",
                "rung": str(Rung.CORRECTED),
                "cost": f"pass_s + rows·(sites·value_s + corrected_row_s·{ratio:g})",
                "predicted_estimate": priors[k] if k < len(priors) and np.isfinite(priors[k]) else None,
                "predicted_ms": per_shape(corrected),
            }
        )
    for n in REFERENCE_POINTS:
        out["routes"].append(
            {
                "route": f"reference:{n}",
                "rung": str(Rung.REFERENCE),
                "cost": "Σ attempts (from s = 32, doubling s, or n where space limits): "
                "steps(times, s)·(step_s + rows·n·point_step_s) + rows·sites·(n/2 + 1)·site_mode_s, "
                "and its check at (n/2, s/2) with uniform steps",
                "predicted_estimate": "meets the tolerance (its own two-resolution estimate decides)",
                "predicted_ms": per_shape(
                    lambda r, g, n=n: rates.reference_seconds(r, np.unique(g.t), g.sites, n, FIRST_SUBSTEPS)
                ),
            }
        )
    return out
