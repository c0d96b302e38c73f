"""Whole-domain accuracy sweep, the report: docs/sweep.md (markdown), docs/sweep.json, the
heat maps, and the command line. The numbers come from ``fastlrnr.training.sweep``.

    python -m fastlrnr.training.sweep                         # the shipped models → docs/sweep.md + figures
    python -m fastlrnr.training.sweep --models cdr --per-axis 3 --out /tmp/sweep.md
    python -m fastlrnr.training.sweep --run runs/cdr          # a training run: hypernetwork only

The grid is ``Domain.grid(per_axis)`` over the active parameters (ends included, so every
face, edge and corner is on it). Errors are relative L2 on the standard 256×100 grid.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fastlrnr.numerics.family import Domain
from fastlrnr.training.row_answers import reference_fields, solve_rows
from fastlrnr.training.sweep import (
    COVERED_ABOVE,
    ROOT,
    TARGET,
    ArtifactSweep,
    ErrorSummary,
    EstimateQuality,
    sweep_artifact,
    sweep_parameters,
)

SYMBOLS = {"beta": "β", "nu": "ν", "rho": "ρ"}  # how the report writes a parameter (else by its name)
FORMATS = {"nu": ".3f"}  # a parameter's format in the worst-sets table (else .2f): the low-ν band is fine


def symbol(name: str) -> str:
    """How the report writes parameter ``name``."""
    return SYMBOLS.get(name, name)


# ---------------------------------------------------------------------- figures


def heat_map(
    mus: np.ndarray,
    curves: Sequence[tuple[str, np.ndarray]],
    domain: Domain,
    path: Path,
    title: str,
    estimate: np.ndarray | None = None,
) -> tuple[int, int]:
    """Errors over tensor-grid rows mus (G, p) of ``domain``, one row of the figure per
    (label, errors (G,)) in ``curves``. One active parameter: the errors over it (and
    ``estimate``, dashed). Two or more: heat maps over the first two active parameters (x, y),
    one column per value of the remaining ones (CDR: β × ν at every ρ; a two-parameter
    domain: one heat map per row). Returns the panels' (rows, columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    active = [domain.params.index(k) for k in domain.active]
    if len(active) == 1:
        i = active[0]
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, err in curves:
            ax.semilogy(mus[:, i], err, marker="o", ms=3, label=label)
        if estimate is not None:
            ax.semilogy(mus[:, i], estimate, ls="--", label="error estimate (served)")
        ax.axhline(TARGET, color="0.5", lw=1, ls=":", label=f"{100 * TARGET:g}% target")
        ax.set_xlabel(domain.params[i])
        ax.set_ylabel("relative L2 error")
        ax.legend()
        shape = (1, 1)
    else:
        ix, iy, rest = active[0], active[1], active[2:]
        xs, ys = np.unique(mus[:, ix]), np.unique(mus[:, iy])
        slices = np.unique(mus[:, rest], axis=0) if rest else np.empty((1, 0))
        fig, axes = plt.subplots(
            len(curves), len(slices), figsize=(2.6 * len(slices) + 1, 2.5 * len(curves) + 0.6), squeeze=False
        )
        norm = LogNorm(vmin=max(1e-5, min(e.min() for _, e in curves)), vmax=max(e.max() for _, e in curves))
        for r, (label, err) in enumerate(curves):
            for c, values in enumerate(slices):
                grid = np.full((len(ys), len(xs)), np.nan)
                for k in np.flatnonzero(np.all(np.isclose(mus[:, rest], values), axis=1)):
                    grid[np.searchsorted(ys, mus[k, iy]), np.searchsorted(xs, mus[k, ix])] = err[k]
                ax = axes[r, c]
                im = ax.imshow(
                    grid,
                    origin="lower",
                    aspect="auto",
                    norm=norm,
                    cmap="viridis",
                    extent=(xs[0], xs[-1], ys[0], ys[-1]),
                )
                where = [f"{symbol(domain.params[i])} = {v:g}" for i, v in zip(rest, values)]
                ax.set_title(", ".join([label, *where]), fontsize=8)
                ax.set_xlabel(symbol(domain.params[ix]), fontsize=8)
                ax.set_ylabel(symbol(domain.params[iy]), fontsize=8)
                ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=axes, shrink=0.8, label="relative L2 error")
        shape = axes.shape
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return shape


def sweep_heat_map(sweep: ArtifactSweep, path: Path) -> tuple[int, int]:
    """``heat_map`` of a model's sweep on its tensor grid (the low-ν band lies between its
    rows): the hypernetwork, after the fast phase, the served answer and its estimate."""
    n = sweep.n_grid
    curves = [
        ("hypernetwork", sweep.rows.err_hyper[:n]),
        ("fast phase", sweep.rows.err_fast[:n]),
        ("served", sweep.served_err[:n]),
    ]
    title = f"{sweep.model}: relative L2 error over the domain"
    return heat_map(sweep.mus[:n], curves, sweep.domain, path, title, sweep.estimate[:n])


# ---------------------------------------------------------------------- text


def report_json(sweep: ArtifactSweep) -> dict:
    """A model's sweep as docs/sweep.json records it."""
    q = sweep.quality
    return {
        "model": sweep.model,
        "settings": sweep.settings.to_dict(),
        "corrected": sweep.corrected,
        "per_axis": sweep.per_axis,
        "band_points": sweep.band_points,
        "hyper": q.hyper.to_dict(),
        "fast": q.fast.to_dict(),
        "corrected_errors": q.fast_corrected.to_dict(),
        "hyper_corrected": q.hyper_corrected.to_dict(),
        "served_answer": q.served.to_dict(),
        "served_answer_in_served_domain": q.served_in_served_domain.to_dict(),
        "served_domain": sweep.served_domain.to_dict(),
        "accepted": q.accepted,
        "ms_median": q.ms_median,
        "estimate": q.estimate.to_dict(),
        "estimate_by_region": {k: v.to_dict() for k, v in q.estimate_by_region.items()},
        f"above_{100 * COVERED_ABOVE:g}pct_covered": q.large_errors_covered,
        "extrapolation_band_error": q.extrapolation.to_dict(),
        "ranking_uncorrected": {  # how well each check quantity ranks the fast phase's true errors
            "error_proxy_spearman": q.proxy_spearman,
            "rms_residual_spearman": q.rms_spearman,
        },
        "estimate_served": q.estimate_in_served_domain.to_dict(),
    }


def markdown(sweep: ArtifactSweep, figure: str) -> str:
    """A model's section of docs/sweep.md; ``figure``: its heat map's path, relative to the page."""
    q, mus, params = sweep.quality, sweep.mus, sweep.domain.params
    settings = sweep.settings.to_dict()
    served_label = "hypernetwork + correction" if sweep.corrected else "fast phase"
    e, es = q.estimate, q.estimate_in_served_domain
    served = sweep.served_domain

    def row(label: str, s: ErrorSummary) -> str:
        return f"| {label} | {100 * s.median:.4f}% | {100 * s.worst:.4f}% | {100 * s.frac_above_target:.0f}% |"

    def cov(label: str, r: EstimateQuality) -> str:
        return (
            f"| {label} | {r.n} | {100 * r.covered:.1f}% | {100 * r.within_1_to_5x:.1f}% | "
            f"{r.spearman:.3f} | {r.median_ratio:.2f} |"
        )

    lines = [
        f"## {sweep.model}",
        "",
        f"{len(mus)} parameter sets: the tensor grid ({sweep.per_axis} per active parameter, ends included) "
        f"and {sweep.band_points} points of the low-ν band. Fast phase (for the rows that use it) "
        f"{settings['backend']} backend, {settings['optimizer']}, "
        f"{settings['steps']} steps, update kept in {100 * q.accepted:.0f}% of sets, "
        f"median {q.ms_median:.0f} ms per set (batches of 8). The served answer is the service's default: "
        f"{served_label}.",
        "",
        f"| | median | worst | > {100 * TARGET:g}% |",
        "|---|---|---|---|",
        row("hypernetwork only", q.hyper),
        row("after the fast phase", q.fast),
        row("fast phase + correction", q.fast_corrected),
        row("hypernetwork + correction", q.hyper_corrected),
        row(f"served answer ({served_label}), served domain", q.served_in_served_domain),
        row("extrapolation band (hypernetwork + correction)", q.extrapolation),
        "",
        "Served domain: "
        + ", ".join(f"{k} ∈ [{served.bounds[k][0]:g}, {served.bounds[k][1]:g}]" for k in served.params)
        + ".",
        "",
        f"Error estimate vs true error of the served answer: Spearman {e.spearman:.3f}, true ≤ estimate in "
        f"{100 * e.covered:.1f}%, true ≤ estimate ≤ 5× true in {100 * e.within_1_to_5x:.1f}% "
        f"(served domain: {es.spearman:.3f}, {100 * es.covered:.1f}%, {100 * es.within_1_to_5x:.1f}%); "
        f"every answer above {100 * COVERED_ABOVE:g}% covered: {'yes' if q.large_errors_covered else 'no'}.",
        "",
        "| region | sets | true ≤ estimate | ≤ 5× true too | Spearman | median estimate / true |",
        "|---|---|---|---|---|---|",
        *[cov(k.replace("_", " "), r) for k, r in q.estimate_by_region.items()],
        "",
        f"How well the acceptance check's quantities rank the true errors after the fast phase (Spearman): the "
        f"error proxy {q.proxy_spearman:.3f}, the RMS residual on the same grid {q.rms_spearman:.3f}.",
        "",
        f"![{sweep.model} sweep]({figure})",
        "",
        "Worst sets (by the hypernetwork's error):",
        "",
        "| "
        + " | ".join(symbol(k) for k in params)
        + " | hypernetwork | fast phase | served | estimate (served answer) |",
        "|" + "---|" * (len(params) + 4),
    ]
    rows = sweep.rows
    for i in np.argsort(-rows.err_hyper)[:8]:
        mu = " | ".join(format(mus[i, j], FORMATS.get(k, ".2f")) for j, k in enumerate(params))
        lines.append(
            f"| {mu} | {100 * rows.err_hyper[i]:.2f}% | {100 * rows.err_fast[i]:.2f}% | "
            f"{100 * sweep.served_err[i]:.4f}% | {100 * sweep.estimate[i]:.4f}% |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- training runs


def _changes(config: dict) -> str:
    """The settings of a run that differ from the former CPU default's, as text."""
    from fastlrnr.training.config import TrainConfig

    base = TrainConfig(domain=config["domain"], steps=config["steps"]).to_dict()
    base.update(curriculum=0.3, curriculum_start=0.2)
    keys = (
        "boundary_frac",
        "adaptive_frac",
        "adaptive_bins",
        "adaptive_power",
        "time_bins",
        "causal_eps",
        "curriculum",
        "residual_scale_power",
        "time_scale",
        "width",
        "rank",
    )
    diff = [f"{k} {config.get(k)}" for k in keys if config.get(k, base[k]) != base[k]]
    return ", ".join(diff) or "none"


def sweep_runs(runs: Sequence[Path], per_axis: int | None) -> str:
    """The hypernetwork alone over the sweep grid of each training run's domain: per run
    ``sweep_hyper.json`` in the run directory and its worst sets printed; returns a markdown
    table of the runs."""
    from fastlrnr.training.evaluate_hyper import load_run, run_family

    table = [
        "| run | changes from the former default | steps | train time | median | worst | worst set |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lrnr, hyper, settings = load_run(run)
        domain = Domain.from_dict(settings["domain"])
        family = run_family(settings)
        mus = sweep_parameters(domain, per_axis)
        err = solve_rows(lrnr, hyper, None, None, mus, reference_fields(mus, family), family=family).err_hyper
        s = ErrorSummary.of(err)
        print(f"{run}: hypernetwork only over {s.n} sets: median {s.median:.4f}, worst {s.worst:.4f}")
        for i in np.argsort(-err)[:5]:
            print(f"   μ = ({', '.join(f'{v:.2f}' for v in mus[i])}): {err[i]:.4f}")
        (run / "sweep_hyper.json").write_text(
            json.dumps({"summary": s.to_dict(), "mu": mus.tolist(), "rel_l2": err.tolist()})
        )
        w = int(np.argmax(err))
        table.append(
            f"| {run.name} | {_changes(settings['config'])} | {settings['steps_done']} | "
            f"{settings['train_time_s'] / 60:.0f} min | {100 * s.median:.2f}% | {100 * s.worst:.2f}% | "
            f"({', '.join(f'{v:g}' for v in mus[w])}) |"
        )
    return "\n".join(table)


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models", nargs="+", default=["cdr", "convection", "allen_cahn"], help="shipped models (artifacts/<name>)"
    )
    ap.add_argument("--run", type=Path, nargs="+", help="training run directories instead (hypernetwork only)")
    ap.add_argument("--per-axis", type=int)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "sweep.md")
    args = ap.parse_args(argv)
    if args.run:
        print(sweep_runs(args.run, args.per_axis))
        return
    command = "python -m fastlrnr.training.sweep_report" + (f" --per-axis {args.per_axis}" if args.per_axis else "")
    parts = [
        "# Whole-domain accuracy sweep",
        "",
        f"Produced by `{command}` ({time.strftime('%Y-%m-%d')}, this repository's CPU machine). Relative L2 "
        "errors against the reference solver (`fastlrnr/numerics/reference.py`) on the standard 256×100 grid, "
        "over a tensor grid of each model's whole training domain: every face, edge and corner is on it.",
        "",
    ]
    reports = []
    for name in args.models:
        sweep = sweep_artifact(name, args.per_axis)
        fig = args.out.parent / "figures" / f"sweep_{name}.png"
        sweep_heat_map(sweep, fig)
        parts.append(markdown(sweep, fig.relative_to(args.out.parent).as_posix()))
        report = report_json(sweep)
        reports.append(report)
        print(
            f"{name}: hyper median {report['hyper']['median']:.4f} worst {report['hyper']['worst']:.4f}; "
            f"fast median {report['fast']['median']:.4f} worst {report['fast']['worst']:.4f}; served median "
            f"{report['served_answer']['median']:.6f} worst {report['served_answer']['worst']:.6f}; estimate "
            f"{report['estimate']}"
        )
    args.out.write_text("\n".join(parts))
    args.out.with_suffix(".json").write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
