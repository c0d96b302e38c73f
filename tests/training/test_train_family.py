"""Training reads the PDE through its family (fastlrnr/numerics/families/): the residual is the one
formula for numpy and torch, and the loss and the ansatz are what the inline code gave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fastlrnr.numerics.families import FAMILIES
from fastlrnr.numerics.families.cdr import CDR_FAMILY, CdrFamily
from fastlrnr.training.config import TrainConfig
from fastlrnr.training.modules import LRNR
from fastlrnr.training.train import MetaNet, sample_batch

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.json"


class InlineCdr(CdrFamily):
    """The residual as training wrote it inline before families: the parity oracle."""

    def residual(self, u, u_t, u_x, u_xx, beta, nu, rho):
        return u_t + beta * u_x - nu * u_xx - rho * u * (1.0 - u)


class ZeroIc(CdrFamily):
    """u0 = 0: the ansatz then gives t g and its jets alone."""

    def initial_jets(self, x, xp=np):
        zero = 0.0 * x
        return zero, zero, zero

    def initial_condition(self, x, xp=np):
        return 0.0 * x


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_the_residual_is_one_formula_for_numpy_and_torch(family):
    rng = np.random.default_rng(0)
    fields = rng.normal(size=(4, 3, 20))
    mu = rng.uniform(0.0, 2.0, size=(3, len(family.params)))
    want = family.residual(*fields, *family.columns(mu))
    got = family.residual(*torch.as_tensor(fields), *family.columns(torch.as_tensor(mu)))
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), want)


def _loss(net: MetaNet, cfg: TrainConfig):
    torch.manual_seed(0)
    mu, x, t = sample_batch(cfg, 0, 5, "cpu")
    net.zero_grad()
    terms = net(mu, x, t)
    terms["loss_pde"].backward()
    return terms["loss_pde"].detach().clone(), [p.grad.clone() for p in net.parameters() if p.grad is not None]


@pytest.mark.parametrize("domain", ["cdr", "convection"])
def test_the_training_loss_is_the_inline_formulas_bit_for_bit(domain, monkeypatch):
    cfg = TrainConfig.from_json(TINY)
    cfg = TrainConfig(**{**cfg.__dict__, "domain": domain})
    net = MetaNet(cfg)
    loss, grads = _loss(net, cfg)
    monkeypatch.setattr(net.lrnr, "family", InlineCdr())
    want_loss, want_grads = _loss(net, cfg)
    assert torch.equal(loss, want_loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, want_grads))


def test_the_ansatz_is_the_inline_one_bit_for_bit(monkeypatch):
    """jets/forward give 1 + sin x + t g (and cos x + t g_x, g + t g_t, −sin x + t g_xx)."""
    lrnr = LRNR(16, 3, 2, seed=1, family=CDR_FAMILY)
    gen = torch.Generator().manual_seed(2)
    x, t = 6.0 * torch.rand(2, 9, generator=gen), torch.rand(2, 9, generator=gen)
    s = torch.rand(2, 2, 3, generator=gen)
    u, u_x, u_t, u_xx = lrnr.jets(x, t, s)
    plain = lrnr(x, t, s)
    monkeypatch.setattr(lrnr, "family", ZeroIc())
    tg, tg_x, g_t_part, tg_xx = lrnr.jets(x, t, s)  # t g, t g_x, g + t g_t, t g_xx
    assert torch.equal(u, 1.0 + torch.sin(x) + tg)
    assert torch.equal(u_x, torch.cos(x) + tg_x)
    assert torch.equal(u_t, g_t_part)
    assert torch.equal(u_xx, -torch.sin(x) + tg_xx)
    assert torch.equal(plain, 1.0 + torch.sin(x) + lrnr(x, t, s))
