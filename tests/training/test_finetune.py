"""The full fine-tuning baseline: rebuilding a truncated LRNR in torch, and the loss falling."""

import numpy as np
import torch

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.lrnr import LRNRWeights, lrnr_jets
from fastlrnr.training.finetune import FinetuneSettings, finetune
from fastlrnr.training.modules import LRNR


def _weights(rng, N=24, ranks=(5, 3, 4)):
    return LRNRWeights(
        rng.normal(size=(N, 3)),
        0.3 * rng.normal(size=N),
        tuple(np.linalg.qr(rng.normal(size=(N, k)))[0] for k in ranks),
        tuple(np.linalg.qr(rng.normal(size=(N, k)))[0] for k in ranks),
        tuple(0.1 * rng.normal(size=N) for _ in ranks),
        rng.normal(size=N) / 5,
        0.2,
    )


def test_from_weights_pads_truncated_layers_exactly():
    rng = np.random.default_rng(0)
    w = _weights(rng)
    s = [rng.random(k) for k in w.ranks]
    torch.set_default_dtype(torch.float64)
    try:
        net = LRNR.from_weights(w, family=CDR_FAMILY)
        sp = torch.zeros(1, 3, 5, dtype=torch.float64)
        for l, v in enumerate(s):
            sp[0, l, : len(v)] = torch.as_tensor(v)
        x, t = rng.random(6) * 6, rng.random(6)
        tj = net.jets(torch.as_tensor(x)[None], torch.as_tensor(t)[None], sp)
        for a, b in zip(tj, lrnr_jets(w, s, x, t, family=CDR_FAMILY)):
            np.testing.assert_allclose(a.detach().numpy()[0], b, rtol=1e-12, atol=1e-13)
    finally:
        torch.set_default_dtype(torch.float32)


def test_finetune_lowers_the_pinn_loss_and_keeps_s_nonnegative():
    rng = np.random.default_rng(1)
    w = _weights(rng)
    s0 = [rng.random(k) for k in w.ranks]
    out = finetune(
        w, s0, np.array([2.0, 0.5, 1.0]), FinetuneSettings(steps=60, lr=5e-2, record_every=20), family=CDR_FAMILY
    )
    assert out["loss"][-1] < 0.9 * out["loss"][0]
    assert [len(v) for v in out["s"]] == list(w.ranks)
    assert all((v >= 0).all() for v in out["s"])
    assert [e for e, _ in out["history"]] == [20, 40, 60]
