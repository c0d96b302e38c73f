"""The measuring steps of an artifact build (``fastlrnr.training.build_artifact`` runs them in order):
load the run, choose the error proxy's check grid, build the FastLRNRs, choose the default
fast phase, export the ONNX graphs, sweep the domain (served domain, first calibration).

Each step is a function of what the earlier ones returned and gives back a frozen dataclass
(or the manifest section it fills); ``BuildSize`` says how many parameter sets each measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np

from fastlrnr.numerics.correction import ErrorCorrection
from fastlrnr.numerics.error_estimate import estimate_quality, fit_error_model
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseModel, FastPhaseSettings, run_fast_phase
from fastlrnr.numerics.fastlrnr import ReducedOperators, build_fastlrnr
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.hypernet import HyperWeights, hyper_rows
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.training import backend_choice
from fastlrnr.training.build_size import BuildSize, CalibrationSize, size_for  # noqa: F401 (re-exported)
from fastlrnr.training.calibrate import NEWTON, RUNGS
from fastlrnr.training.evaluate_hyper import load_run, run_family
from fastlrnr.training.grid_choice import choose_check_grid, choose_correction_nx, correction_grids
from fastlrnr.training.onnx_export import lrnr_onnx
from fastlrnr.training.reference_store import ReferenceStore
from fastlrnr.training.row_answers import solve_rows
from fastlrnr.training.sweep import served_box, summary, sweep_parameters

COLLOCATION = (256, 0)  # (points, seed) of the fast phase's collocation points


def per_axis_for(domain: Domain, total: int = 64) -> int:
    """Grid points per active parameter so that the grid has about ``total`` sets."""
    return max(2, int(round(total ** (1.0 / max(1, len(domain.active))))))


def agreement_figure(fast: FastPhaseModel, S: np.ndarray, mus: np.ndarray, path: Path, title: str) -> None:
    """Scatter of the FastLRNR's residual against the LRNR's at the collocation points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = fast.chains["exact"].residual(S, mus).ravel()
    red = fast.chains["reduced"].residual(S, mus).ravel()
    fig, ax = plt.subplots(figsize=(4.4, 4))
    lim = [min(full.min(), red.min()), max(full.max(), red.max())]
    ax.plot(lim, lim, color="0.7", lw=1)
    ax.scatter(full, red, s=3, alpha=0.5)
    err = np.linalg.norm(full - red) / max(np.linalg.norm(full), 1e-300)
    ax.set_xlabel("LRNR residual")
    ax.set_ylabel("FastLRNR residual")
    ax.set_title(f"{title}\nrel. L2 difference {err:.1e}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass(frozen=True)
class Run:
    """Step 1: the training run (``load_run``), its PDE family and its domains, and the
    reference fields every step measures against (``ReferenceStore``)."""

    lrnr: LRNRWeights
    hyper: HyperWeights
    settings: dict  # settings.json of the run
    domain: Domain
    test_domain: Domain
    family: PdeFamily
    references: ReferenceStore


class TrainingSection(TypedDict):
    config: dict
    steps_done: int
    train_time_s: float
    truncation: object
    final_losses: object
    torch: object


class EimSection(TypedDict):
    n: int
    points: int
    seed: int
    ranks_measured: list[int]


@dataclass(frozen=True)
class CheckGrid:
    """Step 1: the error proxy's grid (nx, nt) and what was measured to choose it."""

    grid: tuple[int, int]
    measured: list[dict]


@dataclass(frozen=True)
class Reduced:
    """Step 2: the FastLRNR at each candidate EIM rank n → (operators, EIM quality), the exact
    fast phase's model, and the held-out coefficient rows (with their μ) they were checked on."""

    by_rank: dict[int, tuple[ReducedOperators, dict]]
    exact: FastPhaseModel
    S_held: np.ndarray
    mus_held: np.ndarray


@dataclass(frozen=True)
class FastPhaseChoice:
    """Step 3: the default fast phase, the reduced operators shipped (rank ``n``) and the
    manifest's ``fast_phase`` section."""

    default: FastPhaseSettings
    n: int
    ops: ReducedOperators
    eim_quality: dict
    model: FastPhaseModel
    section: dict  # {collocation, check, default, measured}


@dataclass(frozen=True)
class SweepResult:
    """Step 5: the served domain, the manifest's ``error_estimate`` and ``correction``
    sections and the sweep's part of ``quality``."""

    served: Domain
    error_estimate: dict
    correction: dict
    quality_sweep: dict


def correction_default(
    domain: Domain, mus: np.ndarray, err_fast: np.ndarray, err_corrected: np.ndarray, target: float
) -> tuple[bool, float, str | None]:
    """Whether answers are corrected by default, from the sweep's errors (G,) without and with
    the correction at rows mus (G, p): (default, the share of sets > 5% worse corrected, why it
    is on when the first rule says off, else None).

    On when the sweep's median falls and at most 5% of the sets get > 5% worse; or else when
    the corrected answers meet ``target`` on more of the sweep (inside their served box,
    ``served_box``) than the uncorrected ones: a correction that fails where a front is
    unresolved can still be what makes the rest servable (burgers: a shock forms at t ≈ 1/β,
    and a correction 3–10× worse than the hypernetwork at β = 3 takes the β = 1 face from
    4–8 % to ≤ 3e-3)."""
    worse = float(np.mean(err_corrected > 1.05 * err_fast))
    if np.median(err_corrected) < np.median(err_fast) and worse <= 0.05:
        return True, worse, None
    n_fast, n_corrected = (_served_sets(domain, mus, e, target) for e in (err_fast, err_corrected))
    if n_corrected > n_fast:
        return (
            True,
            worse,
            f"served domain: the corrected answers meet the target {target:g} on {n_corrected} of the sweep's "
            f"{len(mus)} sets within their served box, the uncorrected ones on {n_fast}",
        )
    return False, worse, None


def _served_sets(domain: Domain, mus: np.ndarray, err: np.ndarray, target: float) -> int:
    """How many sweep sets the served box of errors ``err`` holds (0: no box meets the target)."""
    try:
        return int(served_box(domain, mus, err, target).contains(mus).sum())
    except ValueError:
        return 0


def load_step(run_dir: Path, size: BuildSize | None = None, cache: Path | None = None) -> Run:
    """Step 1: load the run (arrays + JSON, no pickle); its references at ``size`` (None: the
    family's, ``build_size.size_for``), cached in ``cache`` (None: ``run_dir/reference_cache``)
    when the size keeps a cache."""
    lrnr, hyper, run = load_run(run_dir)
    domain, family = Domain.from_dict(run["domain"]), run_family(run)
    size = size or size_for(family)
    references = size.references(family, cache or run_dir / "reference_cache")
    print(f"[1/7] loaded {run_dir}: {family.name} family, N={lrnr.width}, ranks={lrnr.ranks}")
    if size.reference_tolerance is not None or references.directory is not None:
        print(
            f"[1/7] references at tolerance {size.reference_tolerance or 'default'}"
            f"{f', cached in {references.directory}' if references.directory else ''}"
        )
    return Run(lrnr, hyper, run, domain, family.test_domains.get(domain.name, domain), family, references)


def check_grid_step(run: Run, S_grid: np.ndarray, grid: np.ndarray) -> CheckGrid:
    """Step 1: the error proxy's check grid (``choose_check_grid`` on the parameter grid)."""
    check, rows = choose_check_grid(run.lrnr, S_grid, grid, run.references(grid), run.family)
    for r in rows:
        mark = "  ← shipped" if (r["nx"], r["nt"]) == check else ""
        print(
            f"[1/7] error proxy {r['nx']}×{r['nt']}: Spearman {r['spearman']:.3f}, error/proxy median "
            f"{r['ratio_median']:.2f} (p90/p10 {r['ratio_p90_over_p10']:.2f}){mark}"
        )
    return CheckGrid(check, rows)


def eim_step(
    run: Run, check: CheckGrid, S_grid: np.ndarray, grid: np.ndarray, ranks: list[int], steps: list[int]
) -> Reduced:
    """Step 2: FastLRNRs at each rank in ``ranks`` from the snapshots of the grid's hypernetwork
    coefficients and of where the exact fast phase (``max(steps)`` steps) takes them."""
    x, t = interior_points(*COLLOCATION)
    exact = FastPhaseModel(run.lrnr, None, COLLOCATION, check.grid, family=run.family)
    S_lm = np.array(
        [
            np.concatenate(r.s)
            for r in run_fast_phase(exact, S_grid, grid, FastPhaseSettings(steps=max(steps), margin=0.0))
        ]
    )
    mus_held = run.domain.sample(8, np.random.default_rng(11))
    S_held = hyper_rows(run.hyper, mus_held)
    by_rank = {}
    for n in ranks:
        ops, quality = build_fastlrnr(
            run.lrnr, x, t, np.concatenate([S_grid, S_lm]), n, heldout_rows=S_held, family=run.family
        )
        by_rank[n] = (ops, quality)
        errs = ", ".join(f"{q['eim_error_heldout']:.1e}" for q in quality["layers"])
        print(
            f"[2/7] FastLRNR n={n} from {2 * len(grid)} coefficient sets at {x.size} points: "
            f"held-out EIM error per layer {errs}"
        )
    return Reduced(by_rank, exact, S_held, mus_held)


def fast_phase_step(
    run: Run, check: CheckGrid, reduced: Reduced, steps: list[int], queries_per_kind: tuple[int, int] = (16, 8)
) -> FastPhaseChoice:
    """Step 3: measure every backend candidate on held-out queries and choose the default
    (``fastlrnr.training.backend_choice``); the reduced operators shipped are the chosen rank's, or the
    best reduced candidate's when the exact backend is the default."""
    queries = backend_choice.heldout_queries(run.domain, run.family, *queries_per_kind)
    candidates = [
        ({"backend": "exact", "n": None, "steps": k}, reduced.exact, FastPhaseSettings(steps=k)) for k in steps
    ]
    for n, (ops, _) in reduced.by_rank.items():
        model = FastPhaseModel(run.lrnr, ops, COLLOCATION, check.grid, family=run.family)
        candidates += [
            ({"backend": "reduced", "n": n, "steps": k}, model, FastPhaseSettings(backend="reduced", steps=k))
            for k in steps
        ]
    rows = backend_choice.measure(run.lrnr, run.hyper, candidates, queries, run.family, run.references)
    chosen, reason = backend_choice.choose(rows)
    for row in rows:
        print(
            f"[3/7] {row['backend']:>7} n={row['n']} steps={row['steps']}: "
            f"median ratio {row['median_ratio']:.3f}, improved "
            f"{100 * row['improved']:.0f}%, worst {row['worst_ratio']:.3f}, {row['ms_median']:.1f} ms/query"
            f"{'  ← default' if row is rows[chosen] else ''}"
        )
    red_rows = [r for r in rows if r["backend"] == "reduced"]
    ship_n = (
        rows[chosen]["n"]
        if rows[chosen]["backend"] == "reduced"
        else min(red_rows, key=lambda r: r["median_ratio"])["n"]
    )
    ops, eim_quality = reduced.by_rank[ship_n]
    default = FastPhaseSettings.from_dict(rows[chosen]["settings"])
    section = {
        "collocation": {"points": COLLOCATION[0], "seed": COLLOCATION[1]},
        "check": {"nx": check.grid[0], "nt": check.grid[1], "measured": check.measured},
        "default": default.to_dict(),
        "measured": {
            "queries": queries.tolist(),
            "candidates": rows,
            "chosen": chosen,
            "reason": reason,
            "targets": {
                "median_ratio": backend_choice.MEDIAN_RATIO,
                "improved": backend_choice.IMPROVED,
                "worst_ratio": backend_choice.WORST_RATIO,
            },
        },
    }
    model = FastPhaseModel(run.lrnr, ops, COLLOCATION, check.grid, family=run.family)
    return FastPhaseChoice(default, ship_n, ops, eim_quality, model, section)


def onnx_step(lrnr: LRNRWeights, family: PdeFamily) -> dict[str, bytes]:
    """Step 4: ONNX graphs of the full LRNR (u, and u with its jets); none when the family's
    u0 has no ONNX form (the service then evaluates the LRNR in numpy)."""
    if family.initial_trig is None:
        print(f"[4/7] no ONNX graphs: the {family.name!r} family's u0 has no ONNX form")
        return {}
    onnx_files = {"lrnr.onnx": lrnr_onnx(lrnr, family=family), "lrnr_jets.onnx": lrnr_onnx(lrnr, True, family=family)}
    print(f"[4/7] ONNX graphs: {', '.join(f'{k} {len(v) / 1024:.0f} KiB' for k, v in onnx_files.items())}")
    return onnx_files


def sweep_step(run: Run, fp: FastPhaseChoice, size: BuildSize = BuildSize()) -> SweepResult:
    """Step 5: the whole-domain sweep with the default fast phase, with and without the
    linearised correction: whether answers are corrected by default, the served domain and the
    first calibration of both error estimates, checked on held-out random queries."""
    lrnr, hyper, domain, fast, default = run.lrnr, run.hyper, run.domain, fp.model, fp.default
    family = run.family
    mus = sweep_parameters(domain, size.sweep_per_axis)
    nx, nx_measured = choose_correction_nx(run, size.correction_per_axis)
    grid, coarse = correction_grids(domain, family, nx)
    correction = ErrorCorrection(lrnr, grid, coarse, np.float32, RUNGS[0], **NEWTON, family=family)
    refs = run.references(mus)
    sweep = solve_rows(lrnr, hyper, fast, default, mus, refs, correction=correction, family=family)
    # correct by default when the correction helps on the whole-domain sweep, or serves more of it
    correct, worse, default_by = correction_default(
        domain, mus, sweep.err_fast, sweep.err_corrected, size.served_target
    )
    if default_by is not None:
        print(f"[5/7] correction on by default: {default_by}")
    served_err = sweep.err_corrected if correct else sweep.err_fast
    served = served_box(domain, mus, served_err, size.served_target)
    inside = served.contains(mus)
    # calibration: every swept answer served by default, plus the hypernetwork's answer where
    # the fast phase changed it (an answer the service gives with the fast phase off)
    changed = sweep.accepted
    model = fit_error_model(
        np.concatenate([sweep.proxy_fast, sweep.proxy_hyper[changed]]),
        np.concatenate([mus, mus[changed]]),
        np.concatenate([sweep.err_fast, sweep.err_hyper[changed]]),
        domain,
    )
    corrected_model = fit_error_model(
        np.concatenate([sweep.d_fast, sweep.d_hyper[changed]]),
        np.concatenate([mus, mus[changed]]),
        np.concatenate([sweep.err_corrected, sweep.err_hyper_corrected[changed]]),
        domain,
    )
    validation_mus = served.sample(size.validation, np.random.default_rng(23))
    val_refs = run.references(validation_mus)
    val = solve_rows(lrnr, hyper, fast, default, validation_mus, val_refs, correction=correction, family=family)
    estimate_sweep = estimate_quality(model.predict(sweep.proxy_fast[inside], mus[inside]), sweep.err_fast[inside])
    estimate_val = estimate_quality(model.predict(val.proxy_fast, validation_mus), val.err_fast)
    corrected_sweep = estimate_quality(
        corrected_model.predict(sweep.d_fast[inside], mus[inside]), sweep.err_corrected[inside]
    )
    corrected_val = estimate_quality(corrected_model.predict(val.d_fast, validation_mus), val.err_corrected)
    print(
        f"[5/7] sweep over {len(mus)} sets: hypernetwork median {np.median(sweep.err_hyper):.4f} worst "
        f"{sweep.err_hyper.max():.4f}; fast phase median {np.median(sweep.err_fast):.4f} worst "
        f"{sweep.err_fast.max():.4f}; + correction median {np.median(sweep.err_corrected):.5f} worst "
        f"{sweep.err_corrected.max():.5f} ({100 * worse:.0f}% > 5% worse; default {correct}); served "
        f"{served.bounds}; estimate (validation): uncorrected Spearman {estimate_val['spearman']:.2f}, within 1–5× "
        f"{100 * estimate_val['within_1_to_5x']:.0f}%; corrected Spearman {corrected_val['spearman']:.2f}, "
        f"within 1–5× {100 * corrected_val['within_1_to_5x']:.0f}%"
    )
    correction_section = {
        **correction.to_dict(),
        "nx_measured": nx_measured,
        "default": correct,
        "error_model": corrected_model.to_dict(),
        "calibration": "whole-domain sweep: the two-grid difference d and the true error of the corrected "
        "default answers, and of the corrected hypernetwork answers where the fast phase changed them",
        "quality_sweep": corrected_sweep,
        "quality_validation": corrected_val,
        "sweep_sets_worse_by_5pct": worse,
        "rule": "default when the sweep's median error falls and at most 5% of the sets get > 5% worse",
    }
    if default_by is not None:
        correction_section["default_by"] = default_by
    error_estimate = {
        "model": model.to_dict(),
        "calibration": "whole-domain sweep: the default answers, and the "
        "hypernetwork's where the fast phase changed them",
        "quality_sweep": estimate_sweep,
        "quality_validation": estimate_val,
        "validation": {"queries": len(validation_mus), "seed": 23},
    }
    quality_sweep = {
        "per_axis": int(len(np.unique(mus[:, 0]))),
        "target": size.served_target,
        "hyper": summary(sweep.err_hyper),
        "fast": summary(sweep.err_fast),
        "fast_served": summary(sweep.err_fast[inside]),
        "hyper_corrected": summary(sweep.err_hyper_corrected),
        "corrected": summary(sweep.err_corrected),
        "served_answer_in_served_domain": summary(served_err[inside]),
    }
    return SweepResult(served, error_estimate, correction_section, quality_sweep)
