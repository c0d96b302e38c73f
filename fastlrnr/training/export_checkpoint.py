"""Export a resumable run's current checkpoint as the checkpoint contract, without touching the run.

    python -m fastlrnr.training.export_checkpoint runs/burgers runs/burgers-snapshot

Reads ``RUN/checkpoint.{npz,json}`` (``fastlrnr.training.checkpoint``: the parameters; the Adam
moments are not needed) and writes ``lrnr.npz``, ``hyper.npz``, ``settings.json`` and
``history.json`` to ``OUT``, truncated exactly as the trainer does at the end of a run
(``fastlrnr.training.train.export_contract``). ``settings.json`` says which checkpoint it came
from. So an artifact can be built from a run that is still training (an intermediate
checkpoint: what the final build will do, early). The trainer replaces the two checkpoint
files one after the other every ``ckpt_every`` steps; a read that straddles a replacement is
retried.

A run trained by a newer trainer may carry settings this code does not know (a new loss term):
they are recorded unchanged in settings.json's ``config`` and ignored here, which is safe
because the network is rebuilt from the settings known and every parameter array of the
checkpoint must then be consumed, with its shape (else the export fails).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from fastlrnr.training.checkpoint import load_checkpoint
from fastlrnr.training.config import TrainConfig
from fastlrnr.training.train import MetaNet, export_contract

FILES = ("checkpoint.npz", "checkpoint.json")


def _stamp(run_dir: Path) -> tuple:
    """(mtime_ns, size) of both checkpoint files: what changes when the trainer replaces them."""
    return tuple((s.st_mtime_ns, s.st_size) for s in ((run_dir / f).stat() for f in FILES))


def export_checkpoint(run_dir: Path, out: Path, attempts: int = 5) -> int:
    """Write the checkpoint contract of ``run_dir``'s checkpoint to ``out``; returns its step.
    The files are read again when the trainer replaced either while they were read, or when the
    parameters are newer than the step record (the npz is replaced first)."""
    run_dir, out = Path(run_dir), Path(out)
    if run_dir.resolve() == out.resolve():
        raise ValueError("export to another directory: the run's own outputs are the trainer's to write")
    for _ in range(attempts):
        before = _stamp(run_dir)
        meta = json.loads((run_dir / "checkpoint.json").read_text())
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})
        net = MetaNet(cfg)
        modules = {"lrnr": net.lrnr, "hyper": net.hyper}
        _check_parameters(run_dir, modules)
        step, history, _ = load_checkpoint(run_dir, modules, None)
        after = _stamp(run_dir)
        if before == after and after[0][0] <= after[1][0] and step == meta["step"]:
            break
        time.sleep(2.0)
    else:
        raise RuntimeError(f"{run_dir}: the checkpoint kept changing while it was read")
    unknown = sorted(set(meta["config"]) - known)
    if unknown:
        print(f"settings not known to this trainer, recorded and ignored: {', '.join(unknown)}")
    source = {"checkpoint": str(run_dir.resolve()), "step": step, "ignored_settings": unknown}
    export_contract(out, net, cfg, history, step, config=meta["config"], exported_from=source)
    return step


def _check_parameters(run_dir: Path, modules: dict) -> None:
    """The checkpoint's parameter arrays are exactly the modules' (names and shapes)."""
    want = {f"param/{p}.{n}": tuple(v.shape) for p, m in modules.items() for n, v in m.named_parameters()}
    with np.load(run_dir / "checkpoint.npz", allow_pickle=False) as z:
        have = {k: tuple(z[k].shape) for k in z.files if k.startswith("param/")}
    if have != want:
        diff = sorted(set(have.items()) ^ set(want.items()))
        raise ValueError(f"{run_dir}: the checkpoint's parameters are not this network's: {diff[:4]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a run directory with checkpoint.{npz,json}")
    ap.add_argument("out", type=Path, help="where the checkpoint contract goes (not the run directory)")
    args = ap.parse_args(argv)
    step = export_checkpoint(args.run_dir, args.out)
    print(f"exported {args.run_dir} at step {step} to {args.out}")


if __name__ == "__main__":
    main()
