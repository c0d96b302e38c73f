"""The service's parameter fit against scipy.optimize.least_squares over a classical solver, in one run.

    OMP_NUM_THREADS=1 python -m benchmarks.fit_baseline --family allen_cahn --noise 0.001 \\
        [--points 16,64,256] [--trials 100] [--seed 0] [--out runs/fit/allen_cahn_0.001.json]
    python -m benchmarks.fit_baseline --report runs/fit/*.json          # one table from several runs
    OMP_NUM_THREADS=1 python -m benchmarks.fit_baseline --ablation --family allen_cahn --noise 0.001 --trials 30

**Data.** Per trial: parameters drawn uniformly over the model's served domain, each active one
moved to its low or high end with probability 0.2 (faces, edges and corners included);
``--points`` random observation points, x ~ U[0, 2π), t ~ U[0, 1); the reference solver's
solution there (``fastlrnr.numerics.reference_rung.solve_at_sites`` at 8000 steps per unit time and
512 Fourier points: far below the noise), plus independent normal noise of σ = ``--noise`` ×
‖u‖∞ (the maximum of |u| over a 64 × 9 grid and the observation points).

**The service**: ``fastlrnr.numerics.fit.fit_parameters`` with the model's served domain as bounds
and σ known, as ``POST /fit`` runs it (``FitModel.from_artifact``; the correction in float32 as
the server builds it), timed whole (screening included).

**The classical fit**: ``scipy.optimize.least_squares`` (trust-region reflective, two-point
differences, ``x_scale`` the box's widths, the served domain as bounds) on the residual
(u_classical(μ) − y)/σ, from each of the service's own starts (``FitResult.start_params``, the
best points of its screening), keeping the lowest cost; its intervals are ±1.96 standard errors
of σ²(JᵀJ)⁻¹ at scipy's Jacobian, cut to the box. u_classical is the family's reference solver
at low resolution (``solve_at_sites``: n Fourier points, s splitting steps per unit time,
either every observation time a step boundary or uniform steps and cubic interpolation in
time), the cheapest (measured, one row) whose worst relative L2 error over the hard points — the
served domain's 3-per-axis tensor grid: corners, faces, centre — at 64 random sites is at most
0.3·noise/√points: the rule by which the service itself escalates to the reference solver, so
that neither fit's model error biases μ by more than 0.3 standard errors and both are limited
by the noise (matched parameter accuracy). Its choice is printed and recorded.

One thread each side (the BLAS threads are pinned to 1 before numpy loads). Reported per
(family, noise, points): median over trials of |μ̂ − μ| / (the parameter's served range), per free
parameter, for both fits and their ratio; the share of (trial, parameter) 95 % intervals that
contain the truth (target 0.90–0.98); median wall time per fit of both and the median of the
per-trial ratio classical/service; the service's fit time in "surrogate passes": the median over
trials of the fit's time over that of one served answer at the trial's points (hypernetwork,
LRNR at the points, correction; the least of three timings, taken just before the fit).

``--ablation`` fits the same trials with the service's variants (the LRNR alone, three starts, one
start at the box's centre without screening, the corrected answer without escalation to the
reference, the defect's Jacobian by Broyden's update instead of differences after the first
pass) to show what each step buys.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import Artifact, load_artifact
from fastlrnr.numerics.fit import FitModel, FitSettings, Observations, Refinement, fit_parameters
from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward
from fastlrnr.numerics.reference_rung import solve_at_sites

try:
    from benchmarks.timing import machine_line
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import machine_line

ROOT = Path(__file__).resolve().parents[1]
FACE_PROBABILITY = 0.2
TRUTH = (8000, 512)  # the data's reference solve: splitting steps per unit time, Fourier points
BIAS_SE = 0.3  # the most a solver's error may bias μ, in standard errors (the service's escalation rule)
POINTS_LADDER = (32, 64, 128, 256, 512)
STEPS_LADDER = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


# ---------------------------------------------------------------------- the classical solver


@dataclass(frozen=True)
class Classical:
    """The reference solver of ``family`` at n Fourier points and s steps per unit time, with every
    observation time a step boundary (``uniform`` False) or uniform steps interpolated in time."""

    family: object
    n: int
    s: int
    uniform: bool

    def __call__(self, mu: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return solve_at_sites(np.atleast_2d(mu), x, t, True, self.s, self.n, uniform=self.uniform, family=self.family)

    def describe(self) -> str:
        return f"n={self.n}, s={self.s}, {'uniform steps' if self.uniform else 'steps at the times'}"


def hard_points(art: Artifact) -> np.ndarray:
    return art.served_domain.grid(3)


def rel_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((u - ref) ** 2, axis=-1) / np.sum(ref**2, axis=-1))


def choose_classical(art: Artifact, target: float, rng: np.random.Generator) -> tuple[Classical, float, float]:
    """The cheapest classical solver (measured, one row) whose worst relative L2 error over the
    hard points at 64 random sites is ≤ target: (solver, its error, its time per solve)."""
    hard = hard_points(art)
    x, t = X_PERIOD * rng.random(64), rng.random(64)
    ref = solve_at_sites(hard, x, t, True, *TRUTH, family=art.family)
    worst_row = hard[np.argmax(np.abs(hard).sum(axis=1))][None]
    best: tuple[float, Classical, float] | None = None
    for n in POINTS_LADDER:
        for uniform in (False, True):
            for s in STEPS_LADDER:
                solver = Classical(art.family, n, s, uniform)
                err = float(rel_l2(solver(hard, x, t), ref).max())
                if err <= target:
                    solver(worst_row, x, t)
                    reps = []
                    for _ in range(5):
                        t0 = time.perf_counter()
                        solver(worst_row, x, t)
                        reps.append(time.perf_counter() - t0)
                    cost = float(np.median(reps))
                    if best is None or cost < best[0]:
                        best = (cost, solver, err)
                    break
    if best is None:
        raise SystemExit(f"no classical resolution reaches {target:.2e}")
    return best[1], best[2], best[0]


def classical_fit(solver: Classical, obs: Observations, sigma: float, low, high, starts: np.ndarray):
    """least_squares from every start; (μ̂, intervals (p, 2), evaluations, seconds)."""
    from scipy.optimize import least_squares

    free = high > low
    span = (high - low)[free]

    def full(v):
        mu = low.copy()
        mu[free] = v
        return mu

    def residual(v):
        return (solver(full(v), obs.x, obs.t)[0] - obs.u) / sigma

    t0 = time.perf_counter()
    best, evaluations = None, 0
    for start in starts:
        res = least_squares(residual, start[free], bounds=(low[free], high[free]), x_scale=span, method="trf")
        evaluations += res.nfev + res.njev * int(free.sum())
        if best is None or res.cost < best.cost:
            best = res
    seconds = time.perf_counter() - t0
    mu = full(best.x)
    J = best.jac
    cov = np.linalg.pinv(J.T @ J)
    se = np.zeros(len(low))
    se[free] = np.sqrt(np.maximum(np.diag(cov), 0.0))
    intervals = np.stack([np.maximum(mu - 1.96 * se, low), np.minimum(mu + 1.96 * se, high)], axis=1)
    return mu, intervals, evaluations, seconds


# ---------------------------------------------------------------------- trials


def draw(art: Artifact, rng: np.random.Generator) -> np.ndarray:
    dom = art.served_domain
    mu = dom.sample(1, rng)[0]
    for i in range(len(mu)):
        if dom.high[i] > dom.low[i] and rng.random() < FACE_PROBABILITY:
            mu[i] = dom.low[i] if rng.random() < 0.5 else dom.high[i]
    return mu


def observe(art: Artifact, mu: np.ndarray, n: int, noise: float, rng: np.random.Generator):
    x, t = X_PERIOD * rng.random(n), rng.random(n)
    u = solve_at_sites(mu[None], x, t, True, *TRUTH, family=art.family)[0]
    gx, gt = np.linspace(0, X_PERIOD, 64, endpoint=False), np.linspace(0, 1, 9)
    field = solve_at_sites(mu[None], gx, gt, False, 500, 128, family=art.family)
    sigma = noise * max(float(np.abs(field).max()), float(np.abs(u).max()))
    return Observations(x, t, u + sigma * rng.normal(size=n)), sigma


def served_answer_seconds(art: Artifact, model: FitModel, obs: Observations, mu: np.ndarray, repeats: int = 3) -> float:
    """One served answer (hypernetwork, LRNR at the points, correction) at the observation points
    for parameters mu (p,): the least of ``repeats`` timings."""
    mu = mu[None]

    def once():
        S = np.concatenate(hyper_forward(art.hyper, mu), axis=1)
        u = lrnr_forward(art.lrnr, S, obs.x, obs.t, family=art.family)
        return model.refiner.corrected(mu, obs, u)

    reps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        reps.append(time.perf_counter() - t0)
    return float(min(reps))


def run_slice(art, model, n, noise, trials, rng, variants: dict[str, FitSettings] | None, classical: bool) -> dict:
    dom = art.served_domain
    free = dom.high > dom.low
    span = (dom.high - dom.low)[free]
    target = BIAS_SE * noise / math.sqrt(n)
    out: dict = {"points": n, "noise": noise, "trials": trials, "target_rel_l2": target}
    solver = None
    if classical:
        solver, err, cost = choose_classical(art, target, np.random.default_rng(12345))
        out["classical"] = {"solver": solver.describe(), "worst_rel_l2": err, "seconds_per_solve": cost}
        print(
            f"  {art.name} noise {noise:g} points {n}: classical {solver.describe()} (worst {err:.2e} ≤ {target:.2e})"
        )
    variants = variants or {"service": FitSettings()}
    rec: dict[str, list] = {k: [] for k in [*variants, "classical"]}
    served: list[float] = []
    for _ in range(trials):
        mu = draw(art, rng)
        obs, sigma = observe(art, mu, n, noise, rng)
        pass_s = served_answer_seconds(art, model, obs, mu)  # at this trial's points, in this moment
        served.append(pass_s)
        starts = None
        for name, settings in variants.items():
            t0 = time.perf_counter()
            res = fit_parameters(model, obs, dom.low, dom.high, sigma=sigma, settings=settings)
            seconds = time.perf_counter() - t0
            if starts is None:
                starts = res.start_params
            inside = (res.intervals[:, 0] <= mu) & (mu <= res.intervals[:, 1])
            rec[name].append(
                {
                    "error": (np.abs(res.params - mu)[free] / span).tolist(),
                    "covered": inside[free].tolist(),
                    "on_face": on_face(mu, dom)[free].tolist(),
                    "whole_box": whole_box(res.intervals, dom)[free].tolist(),
                    "seconds": seconds,
                    "rung": res.rung,
                    "flags": sorted({str(c) for c, _, _ in res.flags}),
                    "refinements": res.refinements,
                    "widening": res.widening,
                    "passes": seconds / pass_s,
                }
            )
        if solver is not None:
            mu_c, iv, evals, seconds = classical_fit(solver, obs, sigma, dom.low, dom.high, starts)
            inside = (iv[:, 0] <= mu) & (mu <= iv[:, 1])
            rec["classical"].append(
                {
                    "error": (np.abs(mu_c - mu)[free] / span).tolist(),
                    "covered": inside[free].tolist(),
                    "on_face": on_face(mu, dom)[free].tolist(),
                    "whole_box": whole_box(iv, dom)[free].tolist(),
                    "seconds": seconds,
                    "evaluations": evals,
                }
            )
    out["records"] = {k: v for k, v in rec.items() if v}
    out["served_answer_ms"] = float(np.median(served)) * 1e3
    out["summary"] = summarise(out, [p for p, f in zip(dom.params, free) if f])
    return out


def on_face(mu: np.ndarray, dom) -> np.ndarray:
    return (mu <= dom.low) | (mu >= dom.high)


def whole_box(intervals: np.ndarray, dom) -> np.ndarray:
    """Intervals that are the whole served range: the data do not determine the parameter."""
    return (intervals[:, 0] <= dom.low + 1e-12) & (intervals[:, 1] >= dom.high - 1e-12)


def summarise(sl: dict, free: list[str]) -> dict:
    s: dict = {}
    for name, rows in sl["records"].items():
        err = np.asarray([r["error"] for r in rows])
        s[name] = {
            "median_error": dict(zip(free, np.median(err, axis=0).tolist())),
            "coverage": float(np.mean([c for r in rows for c in r["covered"]])),
            "coverage_by_param": dict(zip(free, np.mean([r["covered"] for r in rows], axis=0).tolist())),
            "coverage_interior": float(
                np.mean(
                    [c for r in rows for c, f, w in zip(r["covered"], r["on_face"], r["whole_box"]) if not f and not w]
                    or [np.nan]
                )
            ),
            "whole_box_share": float(np.mean([w for r in rows for w in r["whole_box"]])),
            "median_ms": float(np.median([r["seconds"] for r in rows]) * 1e3),
        }
        if "rung" in rows[0]:
            s[name]["reference_share"] = float(np.mean([r["rung"] == "reference" for r in rows]))
            s[name]["median_passes"] = float(np.median([r["passes"] for r in rows]))
            s[name]["flags"] = {
                f: int(sum(f in r["flags"] for r in rows)) for f in sorted({f for r in rows for f in r["flags"]})
            }
    if "classical" in sl["records"] and "service" in sl["records"]:
        a, b = sl["records"]["service"], sl["records"]["classical"]
        s["time_ratio"] = float(np.median([y["seconds"] / x["seconds"] for x, y in zip(a, b)]))
        s["error_ratio"] = {
            k: s["service"]["median_error"][k] / max(s["classical"]["median_error"][k], 1e-300) for k in free
        }
        s["classical"]["median_evaluations"] = float(np.median([r["evaluations"] for r in b]))
    return s


# ---------------------------------------------------------------------- report


def table(slices: list[dict]) -> str:
    lines = [
        "| family | σ/‖u‖∞ | points | trials | median error, service | median error, classical | error ratio "
        "(worst) | coverage, service / classical (interior truths with an informative interval; "
        "whole-box intervals) | time per fit, service / classical | time ratio | "
        "service in served-answer passes | refined on the reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sl in slices:
        s = sl["summary"]
        sv, cl = s["service"], s.get("classical")

        def errs(d):
            return ", ".join(f"{k} {v:.2e}" for k, v in d["median_error"].items())

        lines.append(
            f"| {sl['family']} | {sl['noise']:g} | {sl['points']} | {sl['trials']} | {errs(sv)} | "
            + (f"{errs(cl)} | {max(s['error_ratio'].values()):.2f} | " if cl else "— | — | ")
            + f"{sv['coverage']:.3f} / {cl['coverage']:.3f} ({sv['coverage_interior']:.3f} / "
            f"{cl['coverage_interior']:.3f}; {sv['whole_box_share']:.0%}) | "
            * bool(cl)
            + (f"{sv['coverage']:.3f} | " if not cl else "")
            + (f"{sv['median_ms']:.0f} / {cl['median_ms']:.0f} ms | {s['time_ratio']:.1f} | " if cl else "— | — | ")
            + f"{sv['median_passes']:.1f} ({sl['served_answer_ms']:.1f} ms) | {sv['reference_share']:.0%} |"
        )
    return "\n".join(lines)


def ablation_table(slices: list[dict]) -> str:
    lines = [
        "| family | σ/‖u‖∞ | points | variant | median error | coverage | time per fit | flags |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for sl in slices:
        for name, d in sl["summary"].items():
            if not isinstance(d, dict) or "median_error" not in d:
                continue
            errs = ", ".join(f"{k} {v:.2e}" for k, v in d["median_error"].items())
            flags = ", ".join(f"{k} {v}" for k, v in d.get("flags", {}).items()) or "—"
            lines.append(
                f"| {sl['family']} | {sl['noise']:g} | {sl['points']} | {name} | {errs} | {d['coverage']:.3f} "
                f"({d['coverage_interior']:.3f}) | "
                f"{d['median_ms']:.0f} ms | {flags} |"
            )
    return "\n".join(lines)


ABLATION = {
    "service": FitSettings(),
    "LRNR alone (refinement none)": FitSettings(refinement=Refinement.NONE),
    "three starts (the screening's best three)": FitSettings(starts=3),
    "one start at the centre, no screening": FitSettings(starts=1, screen_per_axis=1),
    "corrected, never the reference": FitSettings(refinement=Refinement.CORRECTED),
    "defect Jacobian by Broyden after the first pass": FitSettings(secant=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="allen_cahn", help="a model in artifacts/ (cdr, allen_cahn, convection)")
    ap.add_argument("--noise", type=float, default=0.01, help="σ as a share of ‖u‖∞")
    ap.add_argument("--points", default="16,64,256")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablation", action="store_true", help="the service's variants instead of the classical fit")
    ap.add_argument("--out", type=Path, help="write the slices (summaries and every trial) as JSON")
    ap.add_argument("--report", nargs="+", type=Path, help="print the table of earlier --out files and stop")
    args = ap.parse_args()
    if args.report:
        slices = [sl for path in args.report for sl in json.loads(path.read_text())["slices"]]
        plain = [sl for sl in slices if "classical" in sl["summary"]]
        if plain:
            print(table(plain))
        other = [sl for sl in slices if "classical" not in sl["summary"]]
        if other:
            print(ablation_table(other))
        return
    print(machine_line())
    art = load_artifact(ROOT / "artifacts" / args.family)
    model = FitModel.from_artifact(art)
    slices = []
    for n in (int(v) for v in args.points.split(",")):
        rng = np.random.default_rng([args.seed, n, int(round(args.noise * 1e6))])
        t0 = time.perf_counter()
        sl = run_slice(
            art, model, n, args.noise, args.trials, rng, ABLATION if args.ablation else None, not args.ablation
        )
        sl["family"], sl["seconds"] = args.family, time.perf_counter() - t0
        slices.append(sl)
        print(json.dumps(sl["summary"], indent=1))
    print(ablation_table(slices) if args.ablation else table(slices))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": vars(args) | {"out": str(args.out)}, "slices": slices}, indent=1))


if __name__ == "__main__":
    main()
