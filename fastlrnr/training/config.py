"""Training settings, read from JSON config files (configs/*.json)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from fastlrnr.numerics.families import FAMILIES
from fastlrnr.numerics.family import Domain, PdeFamily


@dataclass
class TrainConfig:
    """All settings of one meta-learning run. Units: steps are Adam steps."""

    family: str = "cdr"  # the PDE family (fastlrnr.numerics.families.FAMILIES): its residual, u0 and domains
    domain: str = "cdr"  # key of the family's ``domains``
    width: int = 256  # N
    rank: int = 24  # K (maximum rank before truncation)
    layers: int = 3  # L
    steps: int = 20000
    batch_params: int = 16  # parameter sets μ per step (fresh each step)
    batch_points: int = 128  # space-time points per μ (fresh each step)
    lr: float = 2e-3
    lr_min: float = 2e-5  # cosine decay from lr to lr_min
    warmup: int = 200
    gamma: float = 1.25  # sparsity decay ratio
    lam_sparse: float = 1e-4  # λ of R_sparse
    orth_weight: float = 1.0
    curriculum: float = 0.3  # fraction of steps over which the sampled time horizon grows to 1
    curriculum_start: float = 0.2  # initial time horizon
    input_scale: float = 1.0  # std of the first-layer weights A
    time_scale: float = 1.0  # extra factor on A's t column at initialisation (faster features in t)
    residual_scale_power: float = 1.0  # the PDE loss uses (R / (1 + |a_x|)^p)², a_x the convection speed (CDR: β)
    boundary_frac: float = 0.0  # share of μ per step snapped to faces/edges/corners (fastlrnr/training/sampling.py)
    adaptive_frac: float = 0.0  # share of μ per step drawn where the running loss is high
    adaptive_bins: int = 8  # cells per active parameter of the residual-driven sampler
    adaptive_power: float = 1.0  # cell probability ∝ (running loss)^power
    time_bins: int = 1  # stratified time slices per row (causal weighting works per slice)
    causal_eps: float = 0.0  # causal weights exp(−ε Σ_{earlier slices} loss); 0 = off
    shock_weight: float = 0.0  # k: residuals weighted by 1/(1 + k·max(−b u_x, 0)) (b: the transport coefficient)
    mass_weight: float = 0.0  # weight of the mass-balance loss: (x-mean of R at a time)², unweighted; 0 = off
    mass_times: int = 4  # times per row of the mass-balance loss (stratified in t)
    mass_points: int = 16  # uniform x points (randomly shifted) per time of the mass-balance loss
    point_candidates: int = 0  # residual-based points: candidates per point (kept ∝ |R|/mean + 1); 0 = off
    seed: int = 0
    threads: int = 0  # torch intra-op threads on the CPU; 0 = leave torch's default
    device: str = "auto"  # "auto" → cuda when available, else cpu
    log_every: int = 50
    ckpt_every: int = 1000
    time_limit_min: float = 0.0  # stop early (and finish normally) after this many minutes; 0 = none
    truncation_per_axis: int = 6  # grid over the active parameters for truncation
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, path: str | Path, **overrides) -> TrainConfig:
        data = json.loads(Path(path).read_text())
        data.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
        return cls(**data)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; known: {sorted(FAMILIES)}")
        if self.domain not in FAMILIES[self.family].domains:
            raise ValueError(
                f"family {self.family!r} has no domain {self.domain!r}; known: {sorted(FAMILIES[self.family].domains)}"
            )

    @property
    def pde(self) -> PdeFamily:
        """The PDE family this run trains."""
        return FAMILIES[self.family]

    @property
    def box(self) -> Domain:
        """The training domain (the family's ``domains[domain]``)."""
        return self.pde.domains[self.domain]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
