"""Where each training step samples: parameter sets μ and space-time points.

Three sources of μ, mixed per step (fractions from the config):

- uniform over the domain box;
- *boundary*: uniform, then each active parameter is snapped, with probability ½, to
  one end of its range (low or high, equally likely) — faces, edges and corners of the
  box are where a uniform draw almost never lands and where the models were worst;
- *residual-driven*: the box is cut into ``bins`` cells per active parameter and a cell
  is drawn with probability ∝ (running mean of the PDE loss in that cell)^power, then
  μ uniformly inside it. The running means are an exponential moving average of the
  per-row losses of every step (all sources), so training spends its samples where the
  loss is high. Unvisited cells start at a high value, so each is visited early.

Points: x ~ U[0, 2π); t ~ U[0, horizon], stratified into ``time_bins`` equal slices
(each row has ``batch_points / time_bins`` points per slice), so causal weighting
can be computed per slice.

All randomness comes from the generator passed in (seeded by (seed, rank, step) in
``fastlrnr.training.train``); the sampler's running means are state, saved in checkpoints.
"""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.family import Domain
from fastlrnr.numerics.grid import X_PERIOD

INITIAL_LOSS = 1.0  # running mean of an unvisited cell: above any loss seen after the first steps


class MuSampler:
    """μ sampler with uniform, boundary and residual-driven parts.

    domain: the training box; boundary_frac, adaptive_frac: shares of each batch (the rest
    is uniform); bins: cells per active parameter; power: exponent on the running means;
    ema: weight of a new observation in a cell's running mean."""

    def __init__(
        self,
        domain: Domain,
        boundary_frac: float = 0.0,
        adaptive_frac: float = 0.0,
        bins: int = 8,
        power: float = 1.0,
        ema: float = 0.1,
    ):
        if not (boundary_frac >= 0 and adaptive_frac >= 0 and boundary_frac + adaptive_frac <= 1):
            raise ValueError(f"sampling fractions must be ≥ 0 and sum to ≤ 1, got {boundary_frac}, {adaptive_frac}")
        if bins < 1 or power < 0 or not (0 < ema <= 1):
            raise ValueError(f"expected bins ≥ 1, power ≥ 0, ema in (0, 1]; got {bins}, {power}, {ema}")
        self.domain = domain
        self.active = np.array([i for i, k in enumerate(domain.params) if k in domain.active], dtype=int)
        self.boundary_frac, self.adaptive_frac = boundary_frac, adaptive_frac
        self.bins, self.power, self.ema = bins, power, ema
        self.table = np.full(bins ** len(self.active), INITIAL_LOSS)

    # ------------------------------------------------------------------ drawing
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, p) parameter sets: ⌊n·adaptive_frac⌋ residual-driven, ⌊n·boundary_frac⌋ on the
        boundary, the rest uniform (in that row order)."""
        low, high = self.domain.low, self.domain.high
        n_ad = int(n * self.adaptive_frac)
        n_bd = int(n * self.boundary_frac)
        mu = self.domain.sample(n, rng)
        if n_ad:
            p = self.table**self.power
            cells = rng.choice(self.table.size, size=n_ad, p=p / p.sum())
            idx = np.stack(np.unravel_index(cells, (self.bins,) * len(self.active)), axis=1)  # (n_ad, a)
            frac = (idx + rng.random(idx.shape)) / self.bins
            lo, hi = low[self.active], high[self.active]
            mu[:n_ad, self.active] = lo + (hi - lo) * frac
        if n_bd:
            snap = rng.random((n_bd, len(self.active))) < 0.5
            end = np.where(rng.random((n_bd, len(self.active))) < 0.5, low[self.active], high[self.active])
            mu[n_ad : n_ad + n_bd, self.active] = np.where(snap, end, mu[n_ad : n_ad + n_bd][:, self.active])
        return mu

    def cells(self, mu: np.ndarray) -> np.ndarray:
        """(B,) cell index of each row of mu (B, p)."""
        low, high = self.domain.low[self.active], self.domain.high[self.active]
        frac = (mu[:, self.active] - low) / np.where(high > low, high - low, 1.0)
        idx = np.clip((frac * self.bins).astype(int), 0, self.bins - 1)
        return (
            np.ravel_multi_index(tuple(idx.T), (self.bins,) * len(self.active))
            if len(self.active)
            else np.zeros(len(mu), dtype=int)
        )

    # ------------------------------------------------------------------ learning where it is hard
    def observe(self, sums: np.ndarray, counts: np.ndarray) -> None:
        """Fold one step's per-cell loss sums and row counts (each (cells,)) into the running means."""
        seen = counts > 0
        self.table[seen] += self.ema * (sums[seen] / counts[seen] - self.table[seen])

    def tally(self, mu: np.ndarray, row_loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell (sums, counts) of row losses (B,) for rows mu (B, p)."""
        c = self.cells(mu)
        return (
            np.bincount(c, weights=row_loss, minlength=self.table.size),
            np.bincount(c, minlength=self.table.size).astype(np.float64),
        )


def sample_points(
    n_rows: int, n_points: int, horizon: float, time_bins: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """x, t (n_rows, n_points): x ~ U[0, 2π); t in [0, horizon], point p of a row in time
    slice p // (n_points / time_bins) (stratified when time_bins > 1)."""
    if n_points % time_bins:
        raise ValueError(f"batch_points ({n_points}) must be a multiple of time_bins ({time_bins})")
    x = X_PERIOD * rng.random((n_rows, n_points))
    slot = np.repeat(np.arange(time_bins), n_points // time_bins)
    t = horizon * (slot + rng.random((n_rows, n_points))) / time_bins
    return x, t
