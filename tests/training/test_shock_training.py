"""What training does for sharp fronts (fastlrnr/training/train.py): the compression-weighted residual
and the residual-based adaptive collocation points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastlrnr.numerics.families import BURGERS_FAMILY, CDR_FAMILY
from fastlrnr.training.config import TrainConfig
from fastlrnr.training.train import MetaNet, residual_points, sample_batch, weighted_residual


def _jets(seed: int, shape=(3, 40)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4)]


def test_the_weight_divides_compressing_residuals_only_and_carries_no_gradient():
    u, u_t, u_x, u_xx = _jets(0)
    mu = torch.tensor([[2.0, 1e-3, 0.5], [1.0, 1e-2, 0.0], [3.0, 5e-3, 1.0]], dtype=torch.float64)
    params = BURGERS_FAMILY.columns(mu)
    plain = BURGERS_FAMILY.residual(u, u_t, u_x, u_xx, *params)
    assert torch.equal(weighted_residual(BURGERS_FAMILY, u, u_t, u_x, u_xx, params, 0.0), plain)
    got = weighted_residual(BURGERS_FAMILY, u, u_t, u_x, u_xx, params, 0.5)
    beta = mu[:, :1]
    want = plain / (1.0 + 0.5 * torch.clamp(-beta * u_x, min=0.0))
    torch.testing.assert_close(got, want.detach(), rtol=1e-14, atol=0.0)
    expanding = (beta * u_x >= 0).expand_as(plain)
    assert torch.equal(got[expanding], plain[expanding]) and not torch.equal(got, plain)
    # the weight is a constant to the optimiser: d(got)/d(u_x) is ∂R/∂u_x divided by the weight
    got.sum().backward()
    weight = 1.0 + 0.5 * torch.clamp(-beta * u_x.detach(), min=0.0)
    torch.testing.assert_close(u_x.grad, (beta * u.detach() / weight).expand_as(u_x), rtol=1e-12, atol=1e-14)


def test_a_family_without_transport_is_not_weighted():
    u, u_t, u_x, u_xx = _jets(1)
    mu = torch.tensor([[2.0, 0.1, 1.0]] * 3, dtype=torch.float64)
    params = CDR_FAMILY.columns(mu)
    got = weighted_residual(CDR_FAMILY, u, u_t, u_x, u_xx, params, 3.0)
    assert torch.equal(got, CDR_FAMILY.residual(u, u_t, u_x, u_xx, *params))


@pytest.fixture(scope="module")
def tiny():
    cfg = TrainConfig(
        family="burgers",
        domain="burgers",
        width=16,
        rank=4,
        layers=2,
        batch_params=4,
        batch_points=32,
        time_bins=4,
        curriculum=0.0,
        point_candidates=3,
        shock_weight=1.0,
        seed=3,
    )
    return cfg, MetaNet(cfg)


def test_adaptive_points_are_seeded_stratified_and_drawn_where_the_residual_is(tiny):
    cfg, net = tiny
    batch = sample_batch(cfg, 0, 7, "cpu")
    a = residual_points(net, cfg, 0, 7, batch)
    b = residual_points(net, cfg, 0, 7, batch)
    assert all(torch.equal(p, q) for p, q in zip(a, b))  # a resumed run draws the same points
    mu, x, t = a
    assert torch.equal(mu, batch[0]) and x.shape == t.shape == batch[1].shape
    per = cfg.batch_points // cfg.time_bins
    slot = torch.arange(cfg.time_bins).repeat_interleave(per)
    lo, hi = slot / cfg.time_bins, (slot + 1) / cfg.time_bins
    assert torch.all((t >= lo) & (t <= hi)), "every point stays in its time slice"
    assert torch.all((x >= 0) & (x < 2 * np.pi))
    # where the residual is: the kept points' mean |R| exceeds that of uniform draws
    family = net.lrnr.family

    def mean_abs_residual(xx, tt):
        with torch.no_grad():
            u, u_x, u_t, u_xx = net.lrnr.jets(xx, tt, net.hyper(mu))
            res = weighted_residual(family, u, u_t, u_x, u_xx, family.columns(mu), 1.0)
            return float(res.abs().mean())

    kept = np.mean([mean_abs_residual(*residual_points(net, cfg, 0, s, (mu, x, t))[1:]) for s in range(20)])
    uniform = np.mean([mean_abs_residual(*sample_batch(cfg, 0, s, "cpu")[1:]) for s in range(20)])
    assert kept > 1.1 * uniform


def test_the_mass_balance_is_the_x_mean_of_the_residual_at_each_time(tiny):
    """Periodicity makes the x-means of β u u_x and ν u_xx vanish on the shifted uniform grid, so
    the term is (x-mean of u_t − ρ u (1 − u))² per time: the mass balance."""
    cfg, _ = tiny
    cfg = TrainConfig(**{**cfg.to_dict(), "mass_weight": 2.0, "mass_times": 3, "mass_points": 64})
    net = MetaNet(cfg)
    mu, x, t, xm, tm = sample_batch(cfg, 0, 5, "cpu")
    assert xm.shape == tm.shape == (cfg.batch_params, 3 * 64)
    times = tm.view(cfg.batch_params, 3, 64)
    assert torch.all(times == times[..., :1]) and torch.all((times > 0) & (times <= 1))
    spacing = torch.diff(xm.view(cfg.batch_params, 3, 64), dim=-1)
    torch.testing.assert_close(spacing, torch.full_like(spacing, 2 * np.pi / 64))
    s = net.hyper(mu)
    u, u_x, u_t, u_xx = net.lrnr.jets(xm, tm, s)
    beta, nu, rho = BURGERS_FAMILY.columns(mu)
    per_time = (u_t - rho * u * (1 - u)).view(cfg.batch_params, 3, 64).mean(dim=-1)
    got = net.mass_balance(mu, xm, tm, s)
    torch.testing.assert_close(got, (per_time**2).mean(), rtol=1e-3, atol=1e-7)
    terms = net(mu, x, t, xm, tm)
    plain = MetaNet(TrainConfig(**{**cfg.to_dict(), "mass_weight": 0.0}))
    plain.load_state_dict(net.state_dict())
    torch.testing.assert_close(terms["loss_pde"], plain(mu, x, t)["loss_pde"] + 2.0 * terms["mass"])
