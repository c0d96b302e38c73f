"""Exporting a run's checkpoint as the checkpoint contract (fastlrnr/training/export_checkpoint.py),
so an intermediate checkpoint of a run still training can be built."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.training.config import TrainConfig
from fastlrnr.training.export_checkpoint import export_checkpoint
from fastlrnr.training.train import MetaTrainer

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.json"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished tiny run: its last checkpoint is its final state, its own export beside it."""
    path = tmp_path_factory.mktemp("run")
    MetaTrainer(TrainConfig.from_json(TINY, steps=20, ckpt_every=20), path, progress=False).fit(resume=False)
    return path


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return dict(z)


def test_the_export_of_the_last_checkpoint_is_the_trainers_own(run, tmp_path):
    assert export_checkpoint(run, tmp_path / "out") == 20
    for name in ("lrnr.npz", "hyper.npz"):
        want, got = _arrays(run / name), _arrays(tmp_path / "out" / name)
        assert want.keys() == got.keys()
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{name}:{k}")
    want, got = (json.loads((d / "settings.json").read_text()) for d in (run, tmp_path / "out"))
    assert got.pop("exported_from") == {"checkpoint": str(run.resolve()), "step": 20, "ignored_settings": []}
    assert got == want
    assert (tmp_path / "out" / "history.json").read_text() == (run / "history.json").read_text()
    with pytest.raises(ValueError, match="another directory"):
        export_checkpoint(run, run)


def test_settings_of_a_newer_trainer_are_recorded_and_a_foreign_network_is_refused(run, tmp_path):
    """A setting this code does not know (a new loss term) leaves the network as it is: it is
    kept in settings.json and ignored; a parameter array the network does not have is not."""
    copy = tmp_path / "run"
    copy.mkdir()
    meta = json.loads((run / "checkpoint.json").read_text())
    meta["config"]["future_weight"] = 5.0
    arrays = _arrays(run / "checkpoint.npz")

    def save(**params) -> None:  # as the trainer does: the arrays first, then the step record
        np.savez(copy / "checkpoint.npz", **arrays, **params)
        (copy / "checkpoint.json").write_text(json.dumps(meta))

    save()
    export_checkpoint(copy, tmp_path / "out")
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["config"]["future_weight"] == 5.0
    assert settings["exported_from"]["ignored_settings"] == ["future_weight"]
    save(**{"param/lrnr.extra": np.zeros(3)})
    with pytest.raises(ValueError, match="not this network's"):
        export_checkpoint(copy, tmp_path / "out2")
