"""Build a verified artifact from a training run directory.

    python -m fastlrnr.training.build_artifact runs/cdr --name cdr [--out artifacts/cdr] [--version 2.0.0]

Steps (each reported):
  1. load the run (arrays + JSON, no pickle); choose the error proxy's check grid (the
     cheapest whose proxy ranks the hypernetwork's true errors on a parameter grid with
     Spearman ≥ 0.98, ``fastlrnr.numerics.error_proxy``);
  2. FastLRNRs for the collocation points: snapshots of the state jets of layers 1..L for
     the hypernetwork's coefficients over a parameter grid and for where the exact
     Levenberg–Marquardt fast phase takes them; POD + DEIM at each candidate rank n;
  3. measure every backend candidate on held-out queries and choose the model's default
     fast phase (``fastlrnr.training.backend_choice``);
  4. ONNX graphs of the full LRNR (u, and u with its jets);
  5. the whole-domain sweep with the default fast phase, with and without the linearised
     correction (``fastlrnr.numerics.correction``): whether answers are corrected by default, the served
     domain (where every swept error of the default answer is ≤ the target) and the
     calibration of both error estimates, checked on held-out random queries;
  6. ``fastlrnr.numerics.artifact.write_artifact`` (atomic, verified) and a figure of FastLRNR vs LRNR;
  7. the calibration of the error estimates and the escalation rungs (``fastlrnr.training.calibrate``),
     which gives the manifest's ``correction`` and ``error_estimate`` (``--no-calibrate``: skip).

Steps 1–5 are the functions of ``fastlrnr.training.build_steps``, each returning what it adds to the
manifest; this module writes (6) and calibrates (7), and ``build`` runs them in order. With the
calibration the artifact is first written to a hidden staging directory beside ``out`` (the
calibration loads it from there), then published once, calibrated, at ``out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import Sections, load_artifact, republish, write_artifact
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.training.build_size import size_for
from fastlrnr.training.build_steps import (
    COLLOCATION,
    BuildSize,
    EimSection,
    Run,
    SweepResult,
    TrainingSection,
    agreement_figure,
    check_grid_step,
    eim_step,
    fast_phase_step,
    load_step,
    onnx_step,
    per_axis_for,
    sweep_step,
)
from fastlrnr.training.calibrate import Calibration, CalibrationSize
from fastlrnr.training.calibrate import calibrate as calibrate_artifact
from fastlrnr.training.evaluate_hyper import hyper_only_errors, test_parameters
from fastlrnr.training.reference_store import ReferenceStore

ROOT = Path(__file__).resolve().parents[2]


def training_section(run: Run) -> TrainingSection:
    """The manifest's ``training``: what the run reports of itself."""
    s = run.settings
    return {
        "config": s["config"],
        "steps_done": s["steps_done"],
        "train_time_s": s["train_time_s"],
        "truncation": s["truncation"],
        "final_losses": s["final"],
        "torch": s.get("torch"),
    }


def quality_step(run: Run, n_eval: int, eim_quality: dict, sweep: SweepResult) -> dict:
    """The manifest's ``quality``: the shipped FastLRNR's EIM quality, the hypernetwork alone
    on ``n_eval`` test-range sets, and the sweep's summaries (and, where the build measured
    against a reference other than the family's default, which: ``reference``)."""
    mus = test_parameters(run.domain, n_eval, seed=0, family=run.family)
    store = run.references
    shared = store.tolerance is not None or store.directory is not None
    rows = hyper_only_errors(run.lrnr, run.hyper, mus, run.family, store if shared else None)
    l2 = np.array([r["rel_l2"] for r in rows])
    hyper_eval = {
        "n": n_eval,
        "seed": 0,
        "grid": "standard 256x100",
        "test_domain": run.test_domain.name,
        "rel_l2_median": float(np.median(l2)),
        "rel_l2_mean": float(l2.mean()),
        "rel_l2_max": float(l2.max()),
        "rel_l1_median": float(np.median([r["rel_l1"] for r in rows])),
        "rows": rows,
    }
    quality = {"eim": eim_quality, "hyper_only": hyper_eval, "sweep": sweep.quality_sweep}
    if shared:
        quality["reference"] = store.describe()
    return quality


def calibration_step(
    staged: Path, size: CalibrationSize = CalibrationSize(), references: ReferenceStore | None = None
) -> Calibration:
    """Step 7: calibrate the staged artifact's error estimates and rungs (``fastlrnr.training.calibrate``):
    its new ``correction`` and ``error_estimate`` sections."""
    t0 = time.perf_counter()
    art = load_artifact(staged)
    cal = calibrate_artifact(
        art, grid=art.correction.grid, coarse=art.correction.coarse, size=size, references=references
    )
    print(f"[7/7] calibrated in {time.perf_counter() - t0:.1f} s")
    return cal


class _Clock:
    """Per build step: its wall time and what the reference store did in it (printed)."""

    def __init__(self, references: ReferenceStore):
        self.references = references
        self.t, self.stats = time.perf_counter(), references.stats.copy()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        print(f"      {step}: {now - self.t:.1f} s; {self.references.stats.since(self.stats)}")
        self.t, self.stats = now, self.references.stats.copy()


def build(
    run_dir: Path,
    name: str,
    out: Path,
    version: str,
    ranks: list[int],
    steps: list[int],
    n_eval: int,
    figure: Path | None,
    calibrate: bool = True,
    size: BuildSize | None = None,
    reference_cache: Path | None = None,
    served_target: float | None = None,
) -> Path:
    """Run the steps in order and write the artifact to ``out`` (replacing one there);
    ``size``: how many parameter sets each step measures and against which reference (None:
    the family's, ``fastlrnr.training.build_size.size_for``); ``reference_cache``: where a size
    that keeps its reference fields keeps them (None: ``run_dir/reference_cache``);
    ``served_target``: the served domain's target instead of the size's (a model not yet good
    enough anywhere for the default; the manifest records the target)."""
    t0 = time.perf_counter()
    run = load_step(run_dir, size, reference_cache)
    size = size or size_for(run.family)
    if served_target is not None:
        size = dataclasses.replace(size, served_target=served_target)
        print(f"[1/7] served domain: sweep errors ≤ {100 * served_target:g}% (not the default target)")
    clock = _Clock(run.references)
    grid = run.domain.grid(per_axis_for(run.domain, size.grid_sets))
    S_grid = hyper_rows(run.hyper, grid)
    check = check_grid_step(run, S_grid, grid)
    clock.lap("step 1")
    reduced = eim_step(run, check, S_grid, grid, ranks, steps)
    clock.lap("step 2")
    fp = fast_phase_step(run, check, reduced, steps, size.queries)
    clock.lap("step 3")
    onnx_files = onnx_step(run.lrnr, run.family)
    sweep = sweep_step(run, fp, size)
    clock.lap("steps 4-5")
    eim: EimSection = {"n": fp.n, "points": COLLOCATION[0], "seed": COLLOCATION[1], "ranks_measured": ranks}
    sections = Sections(
        training=training_section(run),
        eim=eim,
        fast_phase=fp.section,
        error_estimate=sweep.error_estimate,
        correction=sweep.correction,
        quality=quality_step(run, n_eval, fp.eim_quality, sweep),
    )
    clock.lap("quality")
    # With the calibration, the artifact is staged (a hidden sibling that no server lists) so the
    # calibration can load it, and published once, calibrated, at ``out``.
    staged = out.parent / f".{out.name}.staged" if calibrate else out
    write_artifact(
        staged,
        name=name,
        version=version,
        domain=run.domain,
        test_domain=run.test_domain,
        served_domain=sweep.served,
        lrnr=run.lrnr,
        hyper=run.hyper,
        reduced_arrays=fp.ops.to_arrays(),
        onnx_files=onnx_files,
        sections=sections,
        eim_rank=fp.n,
        k_max=run.settings["config"]["rank"],
        overwrite=True,
        family=run.family,
    )
    art = load_artifact(staged)  # the verified loader is the judge
    nbytes = sum(p.stat().st_size for p in staged.iterdir())
    print(
        f"[6/7] wrote {staged} ({nbytes / 1024:.0f} KiB, manifest sha256 {art.sha256[:12]}…) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    if figure is not None:
        agreement_figure(
            fp.model,
            reduced.S_held,
            reduced.mus_held,
            figure,
            f"{name}: FastLRNR (n = {fp.n}) vs LRNR residual, {len(reduced.mus_held)} held-out parameter sets",
        )
        print(f"      figure {figure}")
    if calibrate:
        try:
            cal = calibration_step(staged, size.calibration, run.references)
            clock.lap("step 7")
            republish(
                art, out, extra_arrays=cal.extra_arrays, correction=cal.correction, error_estimate=cal.error_estimate
            )
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        art = load_artifact(out)
        print(f"      published {out} (manifest sha256 {art.sha256[:12]}…)")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", type=Path, help="default: artifacts/<name>")
    ap.add_argument("--version", default="2.0.0")
    ap.add_argument("--ranks", type=int, nargs="+", default=[24, 40, 64], help="EIM ranks n to build and measure")
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 8], help="fast-phase step counts to measure")
    ap.add_argument("--eval", type=int, default=20, help="hypernetwork-only evaluation sets")
    ap.add_argument("--figure", type=Path, help="default: docs/figures/<name>_fastlrnr_agreement.png")
    ap.add_argument("--no-calibrate", action="store_true", help="skip step 7 (fastlrnr.training.calibrate)")
    ap.add_argument(
        "--reference-cache",
        type=Path,
        help="where a family whose build keeps its reference fields (build_size.BUILD_SIZES) keeps them "
        "(default: RUN_DIR/reference_cache)",
    )
    ap.add_argument(
        "--served-target",
        type=float,
        help="serve where the sweep's errors are at most this (default: 0.02, sweep.TARGET; recorded in the "
        "manifest) — for a model that does not reach the default anywhere, e.g. an intermediate checkpoint",
    )
    args = ap.parse_args(argv)
    out = args.out or ROOT / "artifacts" / args.name
    figure = args.figure or ROOT / "docs" / "figures" / f"{args.name}_fastlrnr_agreement.png"
    build(
        args.run_dir,
        args.name,
        out,
        args.version,
        args.ranks,
        args.steps,
        args.eval,
        figure,
        not args.no_calibrate,
        reference_cache=args.reference_cache,
        served_target=args.served_target,
    )


if __name__ == "__main__":
    main()
