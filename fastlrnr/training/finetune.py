"""Baseline: ordinary fine-tuning of the coefficients by backpropagation through the
full LRNR with the usual PINN loss (docs/method.md, “Baselines and metrics”), in torch.

Factored form throughout: each hidden layer is applied as ((h U) ⊙ s) Vᵀ, never as an
N×N matrix. Loss = MSE of the PDE residual on interior collocation points + MSE of the
initial condition on t = 0 points + MSE of u(0, t) − u(2π, t) on boundary pairs. (With
this project's ansatz the last two vanish identically; they are computed anyway so the
baseline costs what the textbook one costs.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.training.modules import LRNR


@dataclass(frozen=True)
class FinetuneSettings:
    steps: int = 400  # Adam steps
    lr: float = 1e-3  # Adam, on the coefficients only
    interior: int = 1000
    initial: int = 256
    boundary: int = 100
    seed: int = 0
    record_every: int = 0  # >0: keep the coefficients every this many steps


def collocation(settings: FinetuneSettings) -> dict[str, torch.Tensor]:
    """Seeded fixed collocation sets, shapes (1, P)."""
    rng = np.random.default_rng(settings.seed)
    dt = torch.get_default_dtype()
    T = lambda a: torch.as_tensor(a, dtype=dt)[None, :]
    return {
        "x": T(X_PERIOD * rng.random(settings.interior)),
        "t": T(rng.random(settings.interior)),
        "x0": T(X_PERIOD * rng.random(settings.initial)),
        "tb": T(rng.random(settings.boundary)),
    }


def finetune(
    weights: LRNRWeights,
    s0: list[np.ndarray],
    mu: np.ndarray,
    settings: FinetuneSettings = FinetuneSettings(),
    net: LRNR | None = None,
    *,
    family: PdeFamily,
) -> dict:
    """Fine-tune s from s0 (list of (k_l,)) for one μ (p,) in net.family's columns. Returns {"s": list of (k_l,),
    "history": [(step, s list)] if record_every, "loss": [float per step], "time_s", "step_s"}."""
    net = net if net is not None else LRNR.from_weights(weights, family)
    for p in net.parameters():
        p.requires_grad_(False)
    K, ranks = net.U.shape[-1], [len(v) for v in s0]
    dt = torch.get_default_dtype()
    s = torch.zeros(1, len(ranks), K, dtype=dt)
    for l, v in enumerate(s0):
        s[0, l, : len(v)] = torch.as_tensor(v, dtype=dt)
    s.requires_grad_(True)
    opt = torch.optim.Adam([s], lr=settings.lr)
    pts = collocation(settings)
    params = [float(v) for v in mu]  # the columns of net.family (CDR: β, ν, ρ)
    zeros_x0, zeros_b = torch.zeros_like(pts["x0"]), torch.zeros_like(pts["tb"])
    losses, history = [], []
    t0 = time.perf_counter()
    for step in range(1, settings.steps + 1):
        u, u_x, u_t, u_xx = net.jets(pts["x"], pts["t"], s)
        res = net.family.residual(u, u_t, u_x, u_xx, *params)
        u0 = net(pts["x0"], zeros_x0, s)
        ub = net(torch.cat([zeros_b, zeros_b + X_PERIOD], 1), torch.cat([pts["tb"], pts["tb"]], 1), s)
        nb = pts["tb"].shape[1]
        loss = (
            (res**2).mean()
            + ((u0 - net.family.initial_condition(pts["x0"], xp=torch)) ** 2).mean()
            + ((ub[:, :nb] - ub[:, nb:]) ** 2).mean()
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            s.clamp_(min=0.0)  # s = ReLU(·) in the model
        losses.append(float(loss.detach()))
        if settings.record_every and step % settings.record_every == 0:
            history.append((step, _unpad(s, ranks)))
    elapsed = time.perf_counter() - t0
    return {
        "s": _unpad(s, ranks),
        "history": history,
        "loss": losses,
        "time_s": elapsed,
        "step_s": elapsed / settings.steps,
    }


def _unpad(s: torch.Tensor, ranks: list[int]) -> list[np.ndarray]:
    return [s[0, l, :k].detach().double().numpy().copy() for l, k in enumerate(ranks)]
