"""The paper's experiment, extended: hypernetwork only vs the fast phase (Levenberg–Marquardt on
the exact and on the reduced backend, and the paper's Adam) vs full fine-tuning.

    python -m fastlrnr.training.evaluate [--models cdr convection] [--n 10] [--out docs/evaluation.md]

For each shipped model, two seeded query sets: its test range (the paper's), and the hard
part of its served domain (``fastlrnr.training.backend_choice.hard_part``: low viscosity for cdr, the
upper end of β for convection). Per query:
  * hypernetwork only (s = ŝ);
  * LM, exact backend, and LM, reduced backend — the model's default settings otherwise;
  * Adam on the ℓ1 objective (the paper's optimiser), reduced backend, 400 steps;
  * full fine-tuning of s through the LRNR (``fastlrnr.training.finetune``), 400 Adam steps;
  * the correction (``fastlrnr.numerics.correction``) added to the hypernetwork's answer (the answer the
    service returns by default) and to the default fast phase's (its time includes the fast
    phase's);
relative L2 / L1 errors against the reference solver on the standard 256×100 grid, wall
time per query, and the error after every step (the paper's Figure 3). Writes a markdown
report, a JSON file and the figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseSettings, run_fast_phase
from fastlrnr.numerics.grid import standard_grid
from fastlrnr.numerics.hypernet import hyper_rows
from fastlrnr.training.backend_choice import hard_part
from fastlrnr.training.evaluate_hyper import relative_errors
from fastlrnr.training.finetune import FinetuneSettings, finetune
from fastlrnr.training.modules import LRNR
from fastlrnr.training.row_answers import fields, reference_fields

ROOT = Path(__file__).resolve().parents[2]
ADAM_STEPS = 400
RECORD = 10  # steps between points of the Adam and fine-tuning error curves
ADAM_LOCALITY = (1e-4, 1e-3, 1e-2)
METHODS = ("hyper", "lm_exact", "lm_reduced", "adam", "finetune", "hyper_corrected", "served")
CURVES = ("lm_exact", "lm_reduced", "adam", "finetune")
SYMBOLS = {"beta": "β", "nu": "ν", "rho": "ρ"}  # column headings of the per-query tables
LABELS = {
    "hyper": "hypernetwork only",
    "lm_exact": "LM, exact",
    "lm_reduced": "LM, reduced",
    "adam": "Adam ℓ1 (paper), reduced",
    "finetune": "full fine-tuning",
    "hyper_corrected": "hypernetwork + correction (the served default)",
    "served": "default fast phase + correction",
}


def query_sets(art, n: int, seed: int) -> dict[str, np.ndarray]:
    """{"test": the test range, "hard: …": the hard part of the served domain}, n queries each
    (the test range clipped to the served domain)."""
    served = art.served_domain
    hard, label = hard_part(served, art.family)
    test = art.test_domain
    test_in = Domain(
        test.name,
        {k: (max(lo, served.bounds[k][0]), min(hi, served.bounds[k][1])) for k, (lo, hi) in test.bounds.items()},
        params=test.params,
    )
    return {
        "test": test_in.sample(n, np.random.default_rng(seed)),
        f"hard: {label}": hard.sample(n, np.random.default_rng(seed + 1)),
    }


def curve(lrnr, iterates: np.ndarray, ref: np.ndarray, every: int = 1, *, family: PdeFamily) -> list[float]:
    """Relative L2 error after every ``every``-th step of (steps, P) iterates."""
    picked = iterates[every - 1 :: every]
    return [relative_errors(u, ref)[0] for u in fields(lrnr, picked, family=family)]


def evaluate_model(name: str, n: int, seed: int) -> dict:
    art = load_artifact(ROOT / "artifacts" / name)
    fast = art.fast_phase_model()
    lm = art.fast_phase
    settings = {
        "lm_exact": dataclasses.replace(lm, backend="exact"),
        "lm_reduced": dataclasses.replace(lm, backend="reduced"),
        "adam": FastPhaseSettings(
            backend="reduced", optimizer="adam", steps=ADAM_STEPS, locality=ADAM_LOCALITY, margin=lm.margin
        ),
    }
    net = LRNR.from_weights(art.lrnr, art.family)
    family = art.family
    correction = art.correction_model()
    x_std, t_std = standard_grid()
    default_method = f"lm_{lm.backend}"
    out = {
        "name": name,
        "settings": {k: v.to_dict() for k, v in settings.items()},
        "sets": {},
        "N": art.lrnr.width,
        "ranks": list(art.lrnr.ranks),
        "eim_rank": art.reduced.n,
        "finetune": dataclasses.asdict(FinetuneSettings(steps=ADAM_STEPS, record_every=RECORD)),
    }
    for set_name, mus in query_sets(art, n, seed).items():
        refs = reference_fields(mus, family)
        S_hat = hyper_rows(art.hyper, mus)
        rows, curves = [], {m: [] for m in CURVES}
        for i, mu in enumerate(mus):
            row = dict(zip(family.params, map(float, mu)))
            ref = refs[i]
            e_hat = relative_errors(fields(art.lrnr, S_hat[i], family=family)[0], ref)
            row.update(hyper_l2=e_hat[0], hyper_l1=e_hat[1], hyper_ms=0.0)
            served = {}
            for method, st in settings.items():
                t0 = time.perf_counter()
                res = run_fast_phase(fast, S_hat[i : i + 1], mu[None], st, record=True)[0]
                ms = 1e3 * (time.perf_counter() - t0)
                served[method] = (np.concatenate(res.s), ms)
                err = relative_errors(fields(art.lrnr, np.concatenate(res.s), family=family)[0], ref)
                every = 1 if st.optimizer == "lm" else RECORD
                curves[method].append([e_hat[0]] + curve(art.lrnr, res.iterates, ref, every, family=family))
                row.update(
                    {
                        f"{method}_l2": err[0],
                        f"{method}_l1": err[1],
                        f"{method}_ms": ms,
                        f"{method}_accepted": res.accepted,
                        f"{method}_steps": res.steps_run,
                    }
                )
            s0 = [np.asarray(part) for part in np.split(S_hat[i], np.cumsum(art.lrnr.ranks)[:-1])]
            ft = finetune(
                art.lrnr,
                s0,
                mu,
                FinetuneSettings(steps=ADAM_STEPS, record_every=RECORD, seed=seed),
                net=net,
                family=family,
            )
            err = relative_errors(fields(art.lrnr, np.concatenate(ft["s"]), family=family)[0], ref)
            curves["finetune"].append(
                [e_hat[0]]
                + curve(art.lrnr, np.array([np.concatenate(s) for _, s in ft["history"]]), ref, family=family)
            )
            row.update(finetune_l2=err[0], finetune_l1=err[1], finetune_ms=1e3 * ft["time_s"])
            for method, (s_row, ms_before) in (
                ("hyper_corrected", (S_hat[i], 0.0)),
                ("served", served[default_method]),
            ):
                t0 = time.perf_counter()
                e, _ = correction(s_row[None], mu[None])
                du = e.on_axes(x_std, t_std)[0]
                ms = ms_before + 1e3 * (time.perf_counter() - t0)  # the field itself is not timed for any method
                u = fields(art.lrnr, s_row, family=family)[0] + du
                err = relative_errors(u, ref)
                row.update({f"{method}_l2": err[0], f"{method}_l1": err[1], f"{method}_ms": ms})
            rows.append(row)
            print(
                f"{name} [{set_name}] {i + 1}/{len(mus)} μ=({', '.join(f'{v:.2f}' for v in mu)}): "
                + ", ".join(f"{m} {row[m + '_l2']:.4f} ({row[m + '_ms']:.0f} ms)" for m in METHODS),
                flush=True,
            )
        out["sets"][set_name] = {"params": list(family.params), "rows": rows, "curves": curves}
    return out


def summarise(rows: list[dict]) -> dict:
    get = lambda k: np.array([r[k] for r in rows], dtype=float)
    hyper = get("hyper_l2")
    s = {"median_hyper_l2": float(np.median(hyper))}
    for m in METHODS[1:]:
        e = get(f"{m}_l2")
        ratio = e / hyper
        s[m] = {
            "median_l2": float(np.median(e)),
            "worst_l2": float(e.max()),
            "median_ratio": float(np.median(ratio)),
            "improved": float(np.mean(ratio < 1.0)),
            "worst_ratio": float(ratio.max()),
            "halved_where_above_2pct": float(np.mean(ratio[hyper > 0.02] <= 0.5)) if np.any(hyper > 0.02) else None,
            "median_ms": float(np.median(get(f"{m}_ms"))),
        }
    return s


def figure(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(res, set_name) for res in results for set_name in res["sets"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), squeeze=False)
    colors = {"lm_exact": "C0", "lm_reduced": "C2", "adam": "C3", "finetune": "C1"}
    for ax, (res, set_name) in zip(axes[0], panels):
        for m, color in colors.items():
            curves = np.array(res["sets"][set_name]["curves"][m])
            every = 1 if m.startswith("lm") else RECORD
            steps = np.arange(curves.shape[1]) * every
            steps[0] = 0
            for c in curves:
                ax.plot(np.maximum(steps, 0.5), c, color=color, alpha=0.15, lw=0.8)
            ax.plot(np.maximum(steps, 0.5), np.median(curves, axis=0), color=color, lw=2.2, label=LABELS[m])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("optimiser step (0 plotted at 0.5)")
        ax.set_ylabel("relative L2 error vs reference")
        ax.set_title(f"{res['name']}, {set_name}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: list[dict], fig_path: Path, out: Path, command: str) -> str:
    lines = [
        "# Evaluation: hypernetwork only vs the fast phase vs full fine-tuning",
        "",
        f"Produced by `{command}` ({time.strftime('%Y-%m-%d')}, this repository's CPU machine, 1 thread).",
        "Errors are relative to the reference solver (`fastlrnr/numerics/reference.py`) on the standard 256×100 grid; "
        "times are wall time per query, one query at a time.",
        "",
        f"![error per step]({fig_path.relative_to(out.parent).as_posix()})",
        "",
        "Targets of the fast phase: median error ratio fast / hypernetwork ≤ 0.65; ≥ 80% of queries improved, "
        "none worse by more than 5%; of the queries above 2% error, ≥ 80% at least halved. Analysis: "
        "[fast_phase_analysis.md](fast_phase_analysis.md).",
        "",
    ]
    for res in results:
        st = res["settings"]
        lines += [
            f"## {res['name']}",
            "",
            f"N = {res['N']}, ranks {res['ranks']}, FastLRNR rank n = {res['eim_rank']}. LM: {st['lm_exact']['steps']} "
            f"steps, locality {st['lm_exact']['locality']}; Adam: {ADAM_STEPS} steps, ℓ1, locality candidates "
            f"{list(ADAM_LOCALITY)}; full fine-tuning: {ADAM_STEPS} Adam steps (lr {res['finetune']['lr']}) on "
            f"{res['finetune']['interior']} interior points. Every fast-phase update is kept only when the full "
            f"LRNR's error proxy (the linearised error its residual implies) falls by ≥ "
            f"{100 * st['lm_exact']['margin']:.0f}%.",
            "",
        ]
        for set_name, data in res["sets"].items():
            s = summarise(data["rows"])
            lines += [
                f"### {set_name}",
                "",
                "| method | median L2 | worst L2 | median ratio to hyper | improved | worst ratio | "
                "> 2% halved | ms / query |",
                "|---|---|---|---|---|---|---|---|",
                f"| hypernetwork only | {s['median_hyper_l2']:.2e} | | 1 | | | | 0 |",
            ]
            for m in METHODS[1:]:
                v = s[m]
                halved = "–" if v["halved_where_above_2pct"] is None else f"{100 * v['halved_where_above_2pct']:.0f}%"
                lines.append(
                    f"| {LABELS[m]} | {v['median_l2']:.2e} | {v['worst_l2']:.2e} | {v['median_ratio']:.3f} | "
                    f"{100 * v['improved']:.0f}% | {v['worst_ratio']:.2f} | {halved} | {v['median_ms']:.0f} |"
                )
            lines += [
                "",
                "<details><summary>per query</summary>",
                "",
                "| " + " | ".join(SYMBOLS.get(k, k) for k in data["params"]) + " | hyper | LM exact | LM reduced "
                "| Adam | full FT | hyper + corr. (served) | fast + corr. |",
                "|" + "---|" * (len(data["params"]) + len(METHODS)),
            ]
            for r in data["rows"]:
                lines.append(
                    "| "
                    + " | ".join(f"{r[k]:.2f}" for k in data["params"])
                    + " | "
                    + " | ".join(f"{r[m + '_l2']:.2e}" for m in METHODS)
                    + " |"
                )
            lines += ["", "</details>", ""]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["cdr", "convection"])
    ap.add_argument("--n", type=int, default=10, help="queries per set")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluation.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = [evaluate_model(m, args.n, args.seed) for m in args.models]
    fig_path = args.out.parent / "figures" / "error_per_step.png"
    figure(results, fig_path)
    command = f"python -m fastlrnr.training.evaluate --models {' '.join(args.models)} --n {args.n} --seed {args.seed}"
    print(report(results, fig_path, args.out, command))
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
