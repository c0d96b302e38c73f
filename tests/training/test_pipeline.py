"""The tiny training config end to end: loss falls, outputs reload, resume is exact, DDP runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fastlrnr.training.config import TrainConfig
from fastlrnr.training.evaluate_hyper import load_run
from fastlrnr.training.train import MetaTrainer

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny.json"


def test_tiny_pipeline_trains_and_reloads(tmp_path):
    cfg = TrainConfig.from_json(TINY)
    tr = MetaTrainer(cfg, tmp_path, progress=False).fit()
    pde = [h["pde"] for h in tr.history_]
    assert tr.steps_done_ == cfg.steps
    assert pde[-1] < 0.5 * pde[0], pde
    lrnr, hyper, settings = load_run(tmp_path)
    assert lrnr.ranks == tuple(settings["truncation"]["surviving"])
    assert all(k >= 1 for k in lrnr.ranks)
    assert [H.shape[0] for H in hyper.H] == list(lrnr.ranks)
    assert json.loads((tmp_path / "history.json").read_text())[-1]["step"] == cfg.steps


def test_resume_is_bitwise_with_same_schedule(tmp_path):
    cfg = TrainConfig.from_json(TINY, steps=30, ckpt_every=15)
    full = MetaTrainer(cfg, tmp_path / "full", progress=False).fit()
    run = tmp_path / "cut"
    cut = TrainConfig(**{**cfg.to_dict(), "time_limit_min": 1e-9})  # stops (and checkpoints) after step 1
    stopped = MetaTrainer(cut, run, progress=False).fit()
    assert stopped.steps_done_ == 1
    resumed = MetaTrainer(cfg, run, progress=False).fit(resume=True)
    for key, val in full.net_.state_dict().items():
        np.testing.assert_array_equal(val.numpy(), resumed.net_.state_dict()[key].numpy(), err_msg=key)


def test_ddp_smoke_two_processes_gloo(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "fastlrnr.training.train",
        "--config",
        str(TINY),
        "--out",
        str(tmp_path),
        "--steps",
        "20",
        "--no-progress",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["steps_done"] == 20
    lrnr, _, _ = load_run(tmp_path)
    assert np.all(np.isfinite(lrnr.A))
