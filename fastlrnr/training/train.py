"""Meta-learning loop (docs/method.md, “Meta-learning”) and its command line.

    python -m fastlrnr.training.train --config configs/cdr_cpu.json --out runs/cdr
    torchrun --nproc_per_node=2 -m fastlrnr.training.train --config ... --out ...   (DDP)

Parameter sets and space-time points are sampled afresh every step from a numpy
generator seeded by (seed, rank, step): no fixed pool to overfit, and a resumed run
draws exactly the batches the uninterrupted run would have drawn.
Output (rank 0): checkpoint.{npz,json} during training; at the end the truncated
``lrnr.npz``, ``hyper.npz``, ``settings.json`` and ``history.json`` (the checkpoint
contract of docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from fastlrnr.numerics.grid import X_PERIOD
from fastlrnr.numerics.hypernet import HyperWeights
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.training.checkpoint import load_checkpoint, save_checkpoint
from fastlrnr.training.config import TrainConfig
from fastlrnr.training.modules import LRNR, HyperNet, sparsity
from fastlrnr.training.sampling import MuSampler, sample_points
from fastlrnr.training.truncate import surviving_indices


class MetaNet(torch.nn.Module):
    """Hypernetwork + LRNR; forward returns the loss terms for one batch (DDP wraps this)."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        dom = cfg.box
        self.lrnr = LRNR(
            cfg.width,
            cfg.rank,
            cfg.layers,
            seed=cfg.seed,
            input_scale=cfg.input_scale,
            time_scale=cfg.time_scale,
            family=cfg.pde,
        )
        self.hyper = HyperNet(dom.low, dom.high, cfg.rank, cfg.layers, cfg.gamma, seed=cfg.seed + 1)
        self.gamma = cfg.gamma
        self.scale_power, self.time_bins, self.causal_eps = cfg.residual_scale_power, cfg.time_bins, cfg.causal_eps
        self.mass_points = cfg.mass_points
        self.shock_weight = cfg.shock_weight
        self.mass_weight = cfg.mass_weight

    def forward(
        self,
        mu: torch.Tensor,
        x: torch.Tensor,
        t: torch.Tensor,
        xm: torch.Tensor | None = None,
        tm: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms for μ (B, p) and points x, t (B, P) (P in ``time_bins`` equal slices of t);
        with ``mass_weight``, the mass-balance points xm, tm (B, T·X): X uniform x points
        at each of T times.

        ``loss_pde`` is what is optimised (causally weighted when causal_eps > 0, plus the
        weighted mass balance); ``pde`` is the plain mean, logged; ``mass`` the mass balance;
        ``rows`` (B,) the per-row plain means (no gradient)."""
        s = self.hyper(mu)
        u, u_x, u_t, u_xx = self.lrnr.jets(x, t, s)
        family = self.lrnr.family
        params = family.columns(mu)  # (B, 1) each, in the family's order (CDR: β, ν, ρ)
        res = weighted_residual(family, u, u_t, u_x, u_xx, params, self.shock_weight)
        speed = torch.abs(torch.as_tensor(family.linear_coefficients(*params)[0], dtype=res.dtype))
        # Scale by 1/(1+|a_x|)^p (CDR: a_x = β): the residual of a fast convection grows with
        # the speed, and unscaled it would let the fastest row of each batch dominate the loss.
        sq = (res / (1.0 + speed) ** self.scale_power) ** 2
        slices = sq.view(sq.shape[0], self.time_bins, -1).mean(dim=-1)  # (B, slices)
        if self.causal_eps > 0:
            # Causal weighting: a slice counts only once the earlier ones are fitted.
            earlier = torch.cumsum(slices, dim=1) - slices
            weight = torch.exp(-self.causal_eps * earlier).detach()
            loss_pde = (weight * slices).mean()
        else:
            weight, loss_pde = None, slices.mean()
        mass = torch.zeros(())
        if self.mass_weight > 0 and xm is not None:
            mass = self.mass_balance(mu, xm, tm, s)
            loss_pde = loss_pde + self.mass_weight * mass
        return {
            "loss_pde": loss_pde,
            "pde": slices.mean(),
            "mass": mass.detach(),
            "rows": slices.detach().mean(dim=1),
            "orth": self.lrnr.orthogonality(),
            "sparse": sparsity(s, self.gamma),
            "alive": (s > 0).float().mean(),
            "causal_min": weight[:, -1].mean() if weight is not None else torch.ones(()),
        }

    def mass_balance(self, mu: torch.Tensor, xm: torch.Tensor, tm: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Mean over rows and times of (x-mean of R at that time)², R unweighted, on uniform x.

        Periodicity makes the x-means of the transport and diffusion terms vanish, so this is
        d/dt ∫u − ∫(reaction): the mass balance. Away from its fronts a solution follows its
        characteristics whatever the fronts do; where a front sits, and so how fast it travels,
        is what conserving mass fixes (the equal-area rule), and the pointwise residual, weighted
        down at fronts, leaves it loose."""
        family = self.lrnr.family
        u, u_x, u_t, u_xx = self.lrnr.jets(xm, tm, s)
        res = family.residual(u, u_t, u_x, u_xx, *family.columns(mu))
        B = res.shape[0]
        per_time = res.view(B, -1, self.mass_points).mean(dim=-1)  # (B, T)
        return (per_time**2).mean()


def weighted_residual(family, u, u_t, u_x, u_xx, params, shock_weight: float) -> torch.Tensor:
    """R[u], or with ``shock_weight`` k > 0 R / (1 + k·max(−b u_x, 0)), b the family's transport
    coefficient (Burgers: β) and the weight detached. Where a front compresses (b u_x < 0) an
    unresolved shock's residual grows as the front sharpens, so plain least squares prefers a
    smeared, wrong front; the weight caps what a sharp front costs, and the smooth regions,
    whose residuals fix where the front travels, drive the fit."""
    res = family.residual(u, u_t, u_x, u_xx, *params)
    if shock_weight <= 0:
        return res
    b = torch.as_tensor(family.burgers_coefficient(*params), dtype=res.dtype)
    compression = torch.relu(-b * u_x).detach()
    return res / (1.0 + shock_weight * compression)


def make_sampler(cfg: TrainConfig) -> MuSampler:
    return MuSampler(cfg.box, cfg.boundary_frac, cfg.adaptive_frac, cfg.adaptive_bins, cfg.adaptive_power)


def horizon_at(cfg: TrainConfig, step: int) -> float:
    """The sampled time horizon at ``step``: 1, or growing from curriculum_start under a curriculum."""
    if cfg.curriculum <= 0:
        return 1.0
    frac = step / max(1.0, cfg.curriculum * cfg.steps)
    return min(1.0, cfg.curriculum_start + (1.0 - cfg.curriculum_start) * frac)


def sample_batch(
    cfg: TrainConfig, rank: int, step: int, device, sampler: MuSampler | None = None
) -> tuple[torch.Tensor, ...]:
    """Fresh μ (B, p) and points x, t (B, P) for this (rank, step)."""
    rng = np.random.default_rng([cfg.seed, rank, step])
    sampler = sampler if sampler is not None else make_sampler(cfg)
    mu = sampler.sample(cfg.batch_params, rng)
    x, t = sample_points(cfg.batch_params, cfg.batch_points, horizon_at(cfg, step), cfg.time_bins, rng)
    arrays = [mu, x, t]
    if cfg.mass_weight > 0:
        arrays += list(mass_points(cfg.batch_params, cfg.mass_times, cfg.mass_points, horizon_at(cfg, step), rng))
    dt = torch.get_default_dtype()
    return tuple(torch.as_tensor(a, dtype=dt, device=device) for a in arrays)


def mass_points(rows: int, times: int, points: int, horizon: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """xm, tm (rows, times·points): per row ``times`` times stratified over (0, horizon], and at
    each a uniform x grid of ``points`` shifted at random (an unbiased quadrature of the x-mean)."""
    tm = horizon * (np.arange(times) + 1.0 - rng.random((rows, times))) / times  # (rows, times)
    shift = rng.random((rows, times, 1)) * X_PERIOD / points
    xm = shift + X_PERIOD * np.arange(points) / points  # (rows, times, points)
    return xm.reshape(rows, -1), np.repeat(tm, points, axis=1)


def residual_points(net: MetaNet, cfg: TrainConfig, rank: int, step: int, batch: tuple) -> tuple[torch.Tensor, ...]:
    """Residual-based adaptive points (RAD): per row and time slice, draw ``point_candidates``
    candidates per point and keep as many points as the slice holds, drawn without replacement
    with probability ∝ |R| / mean|R| + 1 under the current model (a uniform share plus a share
    where the residual is: a sharp front gets points). Seeded by (seed, rank, step) like the batch."""
    mu, x, t = batch[:3]
    rng = np.random.default_rng([cfg.seed, rank, step, 1])
    B, P = x.shape
    c, bins = cfg.point_candidates, cfg.time_bins
    per = P // bins
    xc, tc = sample_points(B, P * c, horizon_at(cfg, step), bins, rng)
    dt = x.dtype
    xc_t, tc_t = (torch.as_tensor(a, dtype=dt, device=x.device) for a in (xc, tc))
    with torch.no_grad():
        s = net.hyper(mu)
        u, u_x, u_t, u_xx = net.lrnr.jets(xc_t, tc_t, s)
        res = weighted_residual(net.lrnr.family, u, u_t, u_x, u_xx, net.lrnr.family.columns(mu), cfg.shock_weight)
    w = np.abs(res.cpu().double().numpy()).reshape(B, bins, per * c)
    w = w / np.maximum(w.mean(axis=-1, keepdims=True), 1e-300) + 1.0
    w = np.where(np.isfinite(w), w, 1.0)
    # Gumbel top-k: `per` draws without replacement with probability ∝ w, vectorised over rows and slices
    keys = np.log(w) - np.log(-np.log(rng.random(w.shape)))
    pick = np.argsort(-keys, axis=-1)[..., :per] + (np.arange(bins) * per * c)[None, :, None]
    pick = pick.reshape(B, P)
    take = lambda a: torch.as_tensor(np.take_along_axis(a, pick, axis=1), dtype=dt, device=x.device)
    return (mu, take(xc), take(tc), *batch[3:])


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay from lr to lr_min."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * p))


class MetaTrainer:
    """Estimator-style trainer: settings in __init__, work in fit; learned attributes end in _."""

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, progress: bool = True):
        self.cfg, self.run_dir, self.progress = cfg, Path(run_dir), progress

    def fit(self, resume: bool = True) -> MetaTrainer:
        cfg = self.cfg
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if cfg.device == "auto":
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            device = torch.device(cfg.device)
        if distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank = dist.get_rank() if distributed else 0
        if device.type == "cuda" and distributed:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        if cfg.threads > 0 and device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        net = MetaNet(cfg).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        modules = {"lrnr": net.lrnr, "hyper": net.hyper}
        sampler = make_sampler(cfg)
        step, history = 0, []
        if resume and (self.run_dir / "checkpoint.json").exists():
            step, history, extra = load_checkpoint(self.run_dir, modules, opt)
            if "sampler_table" in extra:
                sampler.table[...] = extra["sampler_table"]
        model = DistributedDataParallel(net) if distributed else net
        bar = None
        if self.progress and rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=step, desc=f"meta {cfg.domain}", dynamic_ncols=True)
        t_start, window = time.perf_counter(), []
        elapsed_before = history[-1]["time_s"] if history else 0.0
        while step < cfg.steps:
            for g in opt.param_groups:
                g["lr"] = lr_at(cfg, step)
            batch = sample_batch(cfg, rank, step, device, sampler)
            if cfg.point_candidates > 1:
                batch = residual_points(net, cfg, rank, step, batch)
            terms = model(*batch)
            loss = terms["loss_pde"] + cfg.orth_weight * terms["orth"] + cfg.lam_sparse * terms["sparse"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            self._observe(sampler, batch[0], terms["rows"], distributed)
            window.append([terms[k].item() for k in ("pde", "orth", "sparse", "alive", "causal_min", "mass")])
            if step % cfg.log_every == 0 or step == cfg.steps:
                m = np.mean(window, axis=0)
                window = []
                elapsed = elapsed_before + time.perf_counter() - t_start
                history.append(
                    {
                        "step": step,
                        "pde": m[0],
                        "orth": m[1],
                        "sparse": m[2],
                        "alive": m[3],
                        "causal_min": m[4],
                        "mass": m[5],
                        "worst_cell": float(sampler.table.max()),
                        "lr": lr_at(cfg, step - 1),
                        "time_s": elapsed,
                    }
                )
                if bar is not None:
                    bar.set_postfix(
                        pde=f"{m[0]:.2e}",
                        orth=f"{m[1]:.1e}",
                        sparse=f"{m[2]:.1e}",
                        alive=f"{m[3]:.2f}",
                        causal=f"{m[4]:.2f}",
                        worst=f"{sampler.table.max():.1e}",
                    )
            if bar is not None:
                bar.update(1)
            timed_out = (
                cfg.time_limit_min > 0 and (elapsed_before + time.perf_counter() - t_start) > 60 * cfg.time_limit_min
            )
            if rank == 0 and (step % cfg.ckpt_every == 0 or step == cfg.steps or timed_out):
                save_checkpoint(
                    self.run_dir, modules, opt, step, cfg.to_dict(), history, extra={"sampler_table": sampler.table}
                )
            if timed_out:
                break
        if bar is not None:
            bar.close()
        self.net_, self.history_, self.steps_done_, self.sampler_ = net, history, step, sampler
        if rank == 0:
            self._export(net, history, step)
        if distributed:
            dist.barrier()
            dist.destroy_process_group()
        return self

    @staticmethod
    def _observe(sampler: MuSampler, mu: torch.Tensor, rows: torch.Tensor, distributed: bool) -> None:
        """Fold the step's per-row losses into the sampler (summed over ranks under DDP, so
        every rank keeps the same running means)."""
        sums, counts = sampler.tally(mu.cpu().double().numpy(), rows.cpu().double().numpy())
        if distributed:
            both = torch.as_tensor(np.concatenate([sums, counts]), device=rows.device, dtype=torch.float64)
            dist.all_reduce(both)
            sums, counts = np.split(both.cpu().numpy(), 2)
        sampler.observe(sums, counts)

    def _export(self, net: MetaNet, history: list[dict], step: int) -> None:
        """Truncate and write the checkpoint contract (``export_contract``)."""
        self.keep_, self.lrnr_, self.hyper_ = export_contract(self.run_dir, net, self.cfg, history, step)


def export_contract(
    out: Path,
    net: MetaNet,
    cfg: TrainConfig,
    history: list[dict],
    step: int,
    config: dict | None = None,
    **provenance,
) -> tuple[list[np.ndarray], LRNRWeights, HyperWeights]:
    """Truncate ``net`` and write the checkpoint contract (lrnr.npz, hyper.npz, settings.json,
    history.json) to ``out``. ``config``: the config recorded in settings.json (None:
    ``cfg.to_dict()``); ``provenance``: further keys of settings.json (an export of an
    intermediate checkpoint says where it came from). Returns (surviving indices per layer,
    the truncated LRNR, the truncated hypernetwork)."""
    dom = cfg.box
    full_hyper = net.hyper.to_weights()
    keep = surviving_indices(full_hyper, dom, cfg.truncation_per_axis)
    lrnr, hyper = net.lrnr.to_weights(keep), net.hyper.to_weights(keep)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "lrnr.npz", **lrnr.to_arrays())
    np.savez(out / "hyper.npz", **hyper.to_arrays())
    report = {
        "rank_before": cfg.rank,
        "surviving": [int(len(k)) for k in keep],
        "grid": f"{cfg.truncation_per_axis} points per active parameter of {dom.name}",
    }
    settings = {
        "config": cfg.to_dict() if config is None else config,
        "domain": dom.to_dict(),
        "steps_done": step,
        "train_time_s": history[-1]["time_s"] if history else 0.0,
        "truncation": report,
        "final": history[-1] if history else {},
        "torch": torch.__version__,
        **provenance,
    }
    (out / "settings.json").write_text(json.dumps(settings, indent=1))
    (out / "history.json").write_text(json.dumps(history))
    print(f"truncation: surviving coefficients per layer {report['surviving']} of {cfg.rank}")
    return keep, lrnr, hyper


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="JSON config (configs/)")
    ap.add_argument("--out", required=True, help="run directory (checkpoints and outputs)")
    ap.add_argument("--steps", type=int, help="override the number of steps")
    ap.add_argument("--threads", type=int, help="override torch threads")
    ap.add_argument("--device", help="override device (auto, cpu, cuda)")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cfg = TrainConfig.from_json(args.config, steps=args.steps, threads=args.threads, device=args.device)
    MetaTrainer(cfg, args.out, progress=not args.no_progress).fit(resume=not args.fresh)


if __name__ == "__main__":
    main()
