"""Plot loss curves of training runs.

python -m fastlrnr.training.plot_history runs/cdr runs/convection --out docs/figures/training_loss.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="run directories holding history.json")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for run in args.runs:
        hist = json.loads((run / "history.json").read_text())
        step = [h["step"] for h in hist]
        axes[0].plot(step, [h["pde"] for h in hist], label=run.name)
        axes[1].plot(step, [h["sparse"] for h in hist], label=run.name)
        axes[2].plot(step, [h["alive"] for h in hist], label=run.name)
    for ax, title in zip(axes, ("PDE loss, mean of (R / (1+β)^p)²", "R_sparse", "fraction of coefficients > 0")):
        ax.set_title(title)
        ax.set_xlabel("Adam step")
        ax.legend()
    axes[0].set_yscale("log")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
