"""Checkpoints as arrays plus JSON (no pickle): parameters, Adam moments, step.

Layout of a run directory:
    checkpoint.npz   param/<name>, adam_m/<name>, adam_v/<name>, adam_step/<name>, extra/<name>
    checkpoint.json  {"step": int, "config": {...}, "history": [...]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch


def save_checkpoint(
    run_dir: Path,
    modules: dict[str, torch.nn.Module],
    opt: torch.optim.Optimizer,
    step: int,
    config: dict,
    history: list[dict],
    extra: dict[str, np.ndarray] | None = None,
) -> None:
    """Write atomically (temp file + rename) so an interruption never leaves a torn checkpoint.
    ``extra``: further training state as named arrays (e.g. the sampler's running means)."""
    arrays: dict[str, np.ndarray] = {f"extra/{k}": np.asarray(v) for k, v in (extra or {}).items()}
    for prefix, mod in modules.items():
        for name, p in mod.named_parameters():
            key = f"{prefix}.{name}"
            arrays[f"param/{key}"] = p.detach().cpu().numpy()
            st = opt.state.get(p, {})
            if st:
                arrays[f"adam_m/{key}"] = st["exp_avg"].cpu().numpy()
                arrays[f"adam_v/{key}"] = st["exp_avg_sq"].cpu().numpy()
                arrays[f"adam_step/{key}"] = np.asarray(float(st["step"]))
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "checkpoint.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, run_dir / "checkpoint.npz")
    tmpj = run_dir / "checkpoint.tmp.json"
    tmpj.write_text(json.dumps({"step": step, "config": config, "history": history}, indent=1))
    os.replace(tmpj, run_dir / "checkpoint.json")


def load_checkpoint(
    run_dir: Path, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer | None
) -> tuple[int, list[dict], dict[str, np.ndarray]]:
    """Restore parameters and (unless ``opt`` is None) Adam state in place; returns (step,
    history, extra arrays)."""
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    with np.load(run_dir / "checkpoint.npz", allow_pickle=False) as z:
        extra = {k[len("extra/") :]: z[k] for k in z.files if k.startswith("extra/")}
        for prefix, mod in modules.items():
            for name, p in mod.named_parameters():
                key = f"{prefix}.{name}"
                with torch.no_grad():
                    p.copy_(torch.from_numpy(z[f"param/{key}"]))
                if opt is not None and f"adam_m/{key}" in z:
                    opt.state[p] = {
                        "step": torch.tensor(float(z[f"adam_step/{key}"])),
                        "exp_avg": torch.from_numpy(z[f"adam_m/{key}"]).to(p.device),
                        "exp_avg_sq": torch.from_numpy(z[f"adam_v/{key}"]).to(p.device),
                    }
    return int(meta["step"]), list(meta["history"]), extra
