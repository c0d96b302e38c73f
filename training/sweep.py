"""Whole-domain accuracy sweep: the error over a dense grid of a model's domain, faces and
corners included, for the hypernetwork alone and after the fast phase, against the
reference solver; the error estimate beside the true error.

    python -m training.sweep                         # the shipped models → docs/sweep.md + figures
    python -m training.sweep --models cdr --per-axis 3 --out /tmp/sweep.md
    python -m training.sweep --run runs/cdr          # a training run: hypernetwork only

The grid is ``Domain.grid(per_axis)`` over the active parameters (ends included, so every
face, edge and corner is on it). Errors are relative L2 on the standard 256×100 grid.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from core.correction import ErrorCorrection
from core.error_estimate import ErrorModel, estimate_quality, spearman
from core.fast_phase import FastPhaseModel, FastPhaseSettings, run_fast_phase
from core.hypernet import HyperWeights, hyper_forward
from core.lrnr import LRNRWeights, lrnr_forward
from core.pde import PARAM_NAMES, Domain, standard_grid
from core.reference import solve_reference_batch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PER_AXIS = {1: 39, 2: 11, 3: 6}  # points per active parameter, by number of active parameters
TARGET = 0.02  # the worst relative L2 error a served answer may have


def sweep_parameters(domain: Domain, per_axis: int | None = None) -> np.ndarray:
    """(G, 3) tensor grid over the active parameters of ``domain``, ends included."""
    return domain.grid(per_axis or DEFAULT_PER_AXIS[len(domain.active)])


def reference_fields(mus: np.ndarray) -> np.ndarray:
    """(G, nt, nx) reference solutions on the standard grid."""
    x, t = standard_grid()
    return solve_reference_batch(mus, x, t)


def relative_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(G,) relative L2 errors of fields u against ref, both (G, ...)."""
    d = (u - ref).reshape(len(ref), -1)
    return np.linalg.norm(d, axis=1) / np.linalg.norm(ref.reshape(len(ref), -1), axis=1)


def fields(lrnr: LRNRWeights, S: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(G, nt, nx) LRNR fields on the standard grid for coefficient rows S (G, P)."""
    x, t = standard_grid()
    X, T = np.meshgrid(x, t)
    S = np.atleast_2d(S)
    parts = np.cumsum(lrnr.ranks)[:-1]
    out = np.empty((S.shape[0],) + X.shape)
    for lo in range(0, len(out), chunk):
        s = np.split(S[lo : lo + chunk], parts, axis=1)
        out[lo : lo + chunk] = lrnr_forward(lrnr, s, X.ravel(), T.ravel()).reshape(-1, *X.shape)
    return out


def hyper_rows(hyper: HyperWeights, mus: np.ndarray) -> np.ndarray:
    """(G, P) hypernetwork coefficient rows."""
    return np.concatenate(hyper_forward(hyper, mus), axis=1)


def solve_rows(
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    fast: FastPhaseModel,
    settings: FastPhaseSettings | None,
    mus: np.ndarray,
    refs: np.ndarray,
    chunk: int = 8,
    correction: ErrorCorrection | None = None,
) -> dict:
    """Hypernetwork and fast-phase answers for parameter rows mus (G, 3) with reference fields
    refs: per row the errors, error proxies (``core.error_proxy``), acceptance and fast-phase
    wall time; with ``correction`` also the errors of the corrected answers (``core.correction``)
    and their two-grid differences, for the hypernetwork's and the fast phase's coefficients."""
    S_hat = hyper_rows(hyper, mus)
    u_hat = fields(lrnr, S_hat)
    out = {"mu": mus, "err_hyper": relative_l2(u_hat, refs)}
    if correction is not None:
        out["err_hyper_corrected"], out["d_hyper"] = corrected_errors(correction, S_hat, mus, u_hat, refs)
    if settings is None:
        return out
    served, res_before, res_after, rms_after, accepted, ms = [], [], [], [], [], []
    for lo in range(0, len(mus), chunk):
        t0 = time.perf_counter()
        results = run_fast_phase(fast, S_hat[lo : lo + chunk], mus[lo : lo + chunk], settings)
        per = 1e3 * (time.perf_counter() - t0) / len(results)
        for r in results:
            served.append(np.concatenate(r.s))
            res_before.append(r.proxy_before)
            res_after.append(r.proxy_after)
            rms_after.append(r.residual_after)
            accepted.append(r.accepted)
            ms.append(per)
    S = np.array(served)
    u = fields(lrnr, S)
    if correction is not None:
        out["err_corrected"], out["d_fast"] = corrected_errors(correction, S, mus, u, refs)
    out.update(
        {
            "S": S,
            "err_fast": relative_l2(u, refs),
            "proxy_hyper": np.array(res_before),
            "proxy_fast": np.array(res_after),
            "rms_fast": np.array(rms_after),
            "accepted": np.array(accepted),
            "ms": np.array(ms),
        }
    )
    return out


def corrected_errors(
    correction: ErrorCorrection, S: np.ndarray, mus: np.ndarray, u: np.ndarray, refs: np.ndarray, chunk: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(relative L2 errors (G,) of the corrected fields u + e on the standard grid, two-grid
    differences d (G,)) for coefficient rows S (G, P), fields u (G, nt, nx) and refs."""
    x, t = standard_grid()
    err, d = np.empty(len(S)), np.empty(len(S))
    for lo in range(0, len(S), chunk):
        e, d[lo : lo + chunk] = correction(S[lo : lo + chunk], mus[lo : lo + chunk])
        err[lo : lo + chunk] = relative_l2(u[lo : lo + chunk] + e.on_axes(x, t), refs[lo : lo + chunk])
    return err, d


def summary(err: np.ndarray, target: float = TARGET) -> dict:
    return {
        "median": float(np.median(err)),
        "worst": float(err.max()),
        "mean": float(err.mean()),
        f"frac_above_{100 * target:g}pct": float(np.mean(err > target)),
        "n": int(err.size),
    }


def served_box(domain: Domain, mus: np.ndarray, err: np.ndarray, target: float = TARGET) -> Domain:
    """The largest box of sweep grid points (found greedily) whose errors are all ≤ target.

    Starting from the whole grid, while a point in the box fails, drop the outermost slab
    (one grid layer at one end of one active axis) holding the largest share of failing
    points; on a tie, the thinner slab. The result is a Domain named like ``domain``."""
    active = [PARAM_NAMES.index(k) for k in domain.active]
    axes = [np.unique(mus[:, i]) for i in active]
    lo = [0] * len(active)
    hi = [len(a) - 1 for a in axes]
    while True:
        inside = (
            np.all(
                [
                    (mus[:, i] >= axes[j][lo[j]] - 1e-12) & (mus[:, i] <= axes[j][hi[j]] + 1e-12)
                    for j, i in enumerate(active)
                ],
                axis=0,
            )
            if active
            else np.ones(len(mus), bool)
        )
        bad = inside & (err > target)
        if not bad.any():
            break
        best, best_key = None, None
        for j, i in enumerate(active):
            if lo[j] == hi[j]:
                continue
            for end, idx in (("lo", lo[j]), ("hi", hi[j])):
                slab = inside & np.isclose(mus[:, i], axes[j][idx])
                key = (bad[slab].sum() / max(1, slab.sum()), -slab.sum())
                if best_key is None or key > best_key:
                    best, best_key = (j, end), key
        if best is None:
            raise ValueError(f"no point of the sweep meets the target {target:g}")
        j, end = best
        if end == "lo":
            lo[j] += 1
        else:
            hi[j] -= 1
    bounds = dict(domain.bounds)
    for j, i in enumerate(active):
        bounds[PARAM_NAMES[i]] = (float(axes[j][lo[j]]), float(axes[j][hi[j]]))
    return Domain(domain.name, bounds, f"served: sweep errors after the fast phase ≤ {100 * target:g}%")


def heat_map(result: dict, domain: Domain, path: Path, title: str, estimate: np.ndarray | None = None) -> None:
    """β × ν slices at every ρ of the sweep (3 active parameters), or the error over the one
    active parameter (convection), for the hypernetwork, after the fast phase and after the
    correction (when swept)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    mus = result["mu"]
    rows = (
        [("hypernetwork", result["err_hyper"])]
        + ([("fast phase", result["err_fast"])] if "err_fast" in result else [])
        + (
            [("served", result["served_err"])]
            if "served_err" in result
            else [("fast phase + corr.", result["err_corrected"])]
            if "err_corrected" in result
            else []
        )
    )
    if len(domain.active) == 1:
        i = PARAM_NAMES.index(domain.active[0])
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, err in rows:
            ax.semilogy(mus[:, i], err, marker="o", ms=3, label=label)
        if estimate is not None:
            ax.semilogy(mus[:, i], estimate, ls="--", label="error estimate (served)")
        ax.axhline(TARGET, color="0.5", lw=1, ls=":", label=f"{100 * TARGET:g}% target")
        ax.set_xlabel(domain.active[0])
        ax.set_ylabel("relative L2 error")
        ax.legend()
    else:
        rhos = np.unique(mus[:, 2])
        betas, nus = np.unique(mus[:, 0]), np.unique(mus[:, 1])
        fig, axes = plt.subplots(
            len(rows), len(rhos), figsize=(2.6 * len(rhos) + 1, 2.5 * len(rows) + 0.6), squeeze=False
        )
        norm = LogNorm(vmin=max(1e-5, min(e.min() for _, e in rows)), vmax=max(e.max() for _, e in rows))
        for r, (label, err) in enumerate(rows):
            for c, rho in enumerate(rhos):
                grid = np.full((len(nus), len(betas)), np.nan)
                for k in np.flatnonzero(np.isclose(mus[:, 2], rho)):
                    grid[np.searchsorted(nus, mus[k, 1]), np.searchsorted(betas, mus[k, 0])] = err[k]
                ax = axes[r, c]
                im = ax.imshow(
                    grid,
                    origin="lower",
                    aspect="auto",
                    norm=norm,
                    cmap="viridis",
                    extent=(betas[0], betas[-1], nus[0], nus[-1]),
                )
                ax.set_title(f"{label}, ρ = {rho:g}", fontsize=8)
                ax.set_xlabel("β", fontsize=8)
                ax.set_ylabel("ν", fontsize=8)
                ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=axes, shrink=0.8, label="relative L2 error")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


HARD_NU = (0.005, 0.02, 0.05, 0.08)  # the low-viscosity band (models whose ν goes down to 0), off the tensor grid


def has_low_nu_band(domain: Domain) -> bool:
    """Whether ν varies down to 0 in ``domain``: its low-viscosity band is where answers are worst."""
    return "nu" in domain.active and domain.bounds["nu"][0] == 0.0


def band_parameters(domain: Domain, per_axis: int = 4) -> np.ndarray:
    """(G, 3) points of the low-ν band (ν ∈ HARD_NU) on a per_axis grid of the other
    parameters; empty when ν does not vary down to 0."""
    if not has_low_nu_band(domain):
        return np.empty((0, 3))
    axes = [
        np.array(HARD_NU)
        if k == "nu"
        else np.linspace(*domain.bounds[k], per_axis)
        if k in domain.active
        else np.array([domain.bounds[k][0]])
        for k in PARAM_NAMES
    ]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def regions(domain: Domain, mus: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks (G,): ``faces_and_corners`` (an active parameter at a bound), ``interior``,
    ``hard_band`` (ν ≤ 0.1 where ν varies down to 0)."""
    at_bound = np.zeros(len(mus), dtype=bool)
    for k in domain.active:
        i = PARAM_NAMES.index(k)
        at_bound |= np.isclose(mus[:, i], domain.bounds[k][0]) | np.isclose(mus[:, i], domain.bounds[k][1])
    out = {"faces_and_corners": at_bound, "interior": ~at_bound}
    if has_low_nu_band(domain):
        out["hard_band"] = mus[:, PARAM_NAMES.index("nu")] <= 0.1
    return out


def sweep_artifact(name: str, per_axis: int | None = None, root: Path = ROOT / "artifacts") -> tuple[dict, dict]:
    """Sweep the model ``root/name``: the tensor grid plus the low-ν band, the hypernetwork,
    its fast phase and the corrected answers; the served answer is the service's default (the
    hypernetwork's coefficients corrected, when the model corrects by default: the fast phase
    does not run then; else the fast phase's). Also the extrapolation band (points beyond the
    domain, corrected, estimate widened). Returns (arrays, report)."""
    from core.artifact import load_artifact
    from training.calibrate import extrapolation_set

    art = load_artifact(root / name)
    manifest = art.manifest
    settings = FastPhaseSettings.from_dict(manifest["fast_phase"]["default"])
    fast = art.fast_phase_model()
    mus = np.concatenate([sweep_parameters(art.domain, per_axis), band_parameters(art.domain)])
    correction = art.correction_model()
    result = solve_rows(art.lrnr, art.hyper, fast, settings, mus, reference_fields(mus), correction=correction)
    corrected = art.correction.default
    served_err = result["err_hyper_corrected"] if corrected else result["err_fast"]
    if corrected:
        estimate = art.correction.error_model.predict(result["d_hyper"], mus)
    else:
        estimate = ErrorModel.from_dict(manifest["error_estimate"]["model"]).predict(result["proxy_fast"], mus)
    served = Domain.from_dict(manifest["served_domain"])
    inside = served.contains(mus)
    ext = extrapolation_set(served, seed=11)
    ext_refs = reference_fields(ext)
    S_ext = hyper_rows(art.hyper, ext)
    ext_err, ext_d = corrected_errors(correction, S_ext, ext, fields(art.lrnr, S_ext), ext_refs)
    ext_est = art.correction.error_model.predict(ext_d, ext) * float(
        manifest["correction"].get("extrapolation_factor", 10.0)
    )
    by_region = {k: estimate_quality(estimate[m], served_err[m]) for k, m in regions(art.domain, mus).items()}
    by_region["extrapolation_band"] = estimate_quality(ext_est, ext_err)
    report = {
        "model": name,
        "settings": settings.to_dict(),
        "corrected": corrected,
        "per_axis": per_axis or DEFAULT_PER_AXIS[len(art.domain.active)],
        "band_points": int(len(band_parameters(art.domain))),
        "hyper": summary(result["err_hyper"]),
        "fast": summary(result["err_fast"]),
        "corrected_errors": summary(result["err_corrected"]),
        "hyper_corrected": summary(result["err_hyper_corrected"]),
        "served_answer": summary(served_err),
        "served_answer_in_served_domain": summary(served_err[inside]),
        "served_domain": served.to_dict(),
        "accepted": float(result["accepted"].mean()),
        "ms_median": float(np.median(result["ms"])),
        "estimate": estimate_quality(estimate, served_err),
        "estimate_by_region": by_region,
        "above_0.1pct_covered": bool(np.all(estimate[served_err > 1e-3] >= served_err[served_err > 1e-3])),
        "extrapolation_band_error": summary(ext_err),
        "ranking_uncorrected": {  # how well each check quantity ranks the fast phase's true errors
            "error_proxy_spearman": spearman(result["proxy_fast"], result["err_fast"]),
            "rms_residual_spearman": spearman(result["rms_fast"], result["err_fast"]),
        },
        "estimate_served": estimate_quality(estimate[inside], served_err[inside]),
    }
    result["estimate"] = estimate
    result["served_err"] = served_err
    result["n_grid"] = len(mus) - report["band_points"]
    return result, report


def _changes(config: dict) -> str:
    """The settings of a run that differ from the former CPU default's, as text."""
    from training.config import TrainConfig

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


def markdown(result: dict, report: dict, figure: str) -> str:
    mus = result["mu"]
    h, f, c = report["hyper"], report["fast"], report["corrected_errors"]
    hc, fs = report["hyper_corrected"], report["served_answer_in_served_domain"]
    key = f"frac_above_{100 * TARGET:g}pct"
    e, es = report["estimate"], report["estimate_served"]
    bounds = report["served_domain"]["bounds"]
    served_label = "hypernetwork + correction" if report["corrected"] else "fast phase"

    def row(label: str, d: dict) -> str:
        return f"| {label} | {100 * d['median']:.4f}% | {100 * d['worst']:.4f}% | {100 * d[key]:.0f}% |"

    def cov(label: str, q: dict) -> str:
        return (
            f"| {label} | {q['n']} | {100 * q['covered']:.1f}% | {100 * q['within_1_to_5x']:.1f}% | "
            f"{q['spearman']:.3f} | {q['median_ratio']:.2f} |"
        )

    lines = [
        f"## {report['model']}",
        "",
        f"{len(mus)} parameter sets: the tensor grid ({report['per_axis']} per active parameter, ends included) "
        f"and {report['band_points']} points of the low-ν band. Fast phase (for the rows that use it) "
        f"{report['settings']['backend']} backend, {report['settings']['optimizer']}, "
        f"{report['settings']['steps']} steps, update kept in {100 * report['accepted']:.0f}% of sets, "
        f"median {report['ms_median']:.0f} ms per set (batches of 8). The served answer is the service's default: "
        f"{served_label}.",
        "",
        "| | median | worst | > 2% |",
        "|---|---|---|---|",
        row("hypernetwork only", h),
        row("after the fast phase", f),
        row("fast phase + correction", c),
        row("hypernetwork + correction", hc),
        row(f"served answer ({served_label}), served domain", fs),
        row("extrapolation band (hypernetwork + correction)", report["extrapolation_band_error"]),
        "",
        "Served domain: " + ", ".join(f"{k} ∈ [{lo:g}, {hi:g}]" for k, (lo, hi) in bounds.items()) + ".",
        "",
        f"Error estimate vs true error of the served answer: Spearman {e['spearman']:.3f}, true ≤ estimate in "
        f"{100 * e['covered']:.1f}%, true ≤ estimate ≤ 5× true in {100 * e['within_1_to_5x']:.1f}% "
        f"(served domain: {es['spearman']:.3f}, {100 * es['covered']:.1f}%, {100 * es['within_1_to_5x']:.1f}%); "
        f"every answer above 0.1% covered: {'yes' if report['above_0.1pct_covered'] else 'no'}.",
        "",
        "| region | sets | true ≤ estimate | ≤ 5× true too | Spearman | median estimate / true |",
        "|---|---|---|---|---|---|",
        *[cov(k.replace("_", " "), q) for k, q in report["estimate_by_region"].items()],
        "",
        f"How well the acceptance check's quantities rank the true errors after the fast phase (Spearman): the "
        f"error proxy {report['ranking_uncorrected']['error_proxy_spearman']:.3f}, the RMS residual on the same "
        f"grid {report['ranking_uncorrected']['rms_residual_spearman']:.3f}.",
        "",
        f"![{report['model']} sweep]({figure})",
        "",
        "Worst sets (by the hypernetwork's error):",
        "",
        "| β | ν | ρ | hypernetwork | fast phase | served | estimate (served answer) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i in np.argsort(-result["err_hyper"])[:8]:
        lines.append(
            f"| {mus[i, 0]:.2f} | {mus[i, 1]:.3f} | {mus[i, 2]:.2f} | {100 * result['err_hyper'][i]:.2f}% | "
            f"{100 * result['err_fast'][i]:.2f}% | {100 * result['served_err'][i]:.4f}% | "
            f"{100 * result['estimate'][i]:.4f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from training.evaluate_hyper import load_run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["cdr", "convection"], help="shipped models (artifacts/<name>)")
    ap.add_argument("--run", type=Path, nargs="+", help="training run directories instead (hypernetwork only)")
    ap.add_argument("--per-axis", type=int)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "sweep.md")
    args = ap.parse_args(argv)
    if args.run:
        table = [
            "| run | changes from the former default | steps | train time | median | worst | worst set |",
            "|---|---|---|---|---|---|---|",
        ]
        for run in args.run:
            lrnr, hyper, settings = load_run(run)
            domain = Domain.from_dict(settings["domain"])
            mus = sweep_parameters(domain, args.per_axis)
            err = solve_rows(lrnr, hyper, None, None, mus, reference_fields(mus))["err_hyper"]
            s = summary(err)
            print(f"{run}: hypernetwork only over {s['n']} sets: median {s['median']:.4f}, worst {s['worst']:.4f}")
            for i in np.argsort(-err)[:5]:
                print(f"   μ = ({mus[i, 0]:.2f}, {mus[i, 1]:.2f}, {mus[i, 2]:.2f}): {err[i]:.4f}")
            (run / "sweep_hyper.json").write_text(
                json.dumps({"summary": s, "mu": mus.tolist(), "rel_l2": err.tolist()})
            )
            w = int(np.argmax(err))
            table.append(
                f"| {run.name} | {_changes(settings['config'])} | {settings['steps_done']} | "
                f"{settings['train_time_s'] / 60:.0f} min | {100 * s['median']:.2f}% | {100 * s['worst']:.2f}% | "
                f"({mus[w, 0]:g}, {mus[w, 1]:g}, {mus[w, 2]:g}) |"
            )
        print("\n".join(table))
        return
    command = "python -m training.sweep" + (f" --per-axis {args.per_axis}" if args.per_axis else "")
    parts = [
        "# Whole-domain accuracy sweep",
        "",
        f"Produced by `{command}` ({time.strftime('%Y-%m-%d')}, this repository's CPU machine). Relative L2 "
        "errors against the reference solver (`core/reference.py`) on the standard 256×100 grid, over a tensor "
        "grid of each model's whole training domain: every face, edge and corner is on it.",
        "",
    ]
    reports = []
    for name in args.models:
        result, report = sweep_artifact(name, args.per_axis)
        fig = args.out.parent / "figures" / f"sweep_{name}.png"
        n = result["n_grid"]  # the heat map shows the tensor grid (the band lies between its rows)
        on_grid = {k: v[:n] for k, v in result.items() if isinstance(v, np.ndarray) and len(v) == len(result["mu"])}
        heat_map(
            on_grid,
            Domain.from_dict(json.loads((ROOT / "artifacts" / name / "manifest.json").read_text())["domain"]),
            fig,
            f"{name}: relative L2 error over the domain",
            on_grid["estimate"],
        )
        parts.append(markdown(result, report, fig.relative_to(args.out.parent).as_posix()))
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
