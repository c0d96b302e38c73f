"""A pointwise envelope of the uncorrected surrogate's error, so that an estimate holds at the
sites an answer returns, however few.

The field-wide a-priori map (``fastlrnr.numerics.error_estimate.AprioriMap``) estimates the
relative L2 error over the whole 256×100 grid; at a handful of sites near a front the relative
error can be many times larger. The envelope instead bounds |e(x, t; μ)| itself:

- at build time, the true error e = u − u_ref of the hypernetwork's answer on the standard grid
  at every node μ_i of a tensor grid over the served domain gives node values
  E(μ_i, t_j, x_k) = max |e| over the patch [t_{j−1}, t_{j+1}] × [x_{k−1}, x_{k+1}] of a coarse
  (``nt`` × ``nx``) site grid (periodic in x);
- at a query (μ, x, t) the bound is the largest node value over the corners of the cell of μ
  and of the cell of (t, x), times exp(``offset``): the margin held-out parameter sets needed so
  that the bound held at every one of their grid points for ``coverage`` of them; outside the
  tensor grid's box the bound is widened by ``extrapolation_factor``.

For sites S of a row with answer values u_S the estimate of the relative L2 error at S is

    B / (‖u_S‖ − B),   B = ‖bound_S‖      (∞ when ‖u_S‖ ≤ B),

an upper bound on ‖e_S‖ / ‖u_ref,S‖ whenever the envelope bounds |e| (‖u_ref,S‖ ≥ ‖u_S‖ − ‖e_S‖).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fastlrnr.numerics.family import Domain, as_param_array
from fastlrnr.numerics.grid import T_END, X_PERIOD

FLOOR = 1e-12  # log of a zero error


@dataclass(frozen=True)
class SiteEnvelope:
    """axes: one increasing (n_i,) array per parameter; nx, nt: the site grid (x_k = 2πk/nx,
    t_j = j/(nt − 1)); log_sup (n_1, …, n_p, nt, nx): log node values; offset; coverage (the
    held-out share the offset was set for); extrapolation_factor (≥ 1)."""

    axes: tuple[np.ndarray, ...]
    nx: int
    nt: int
    log_sup: np.ndarray
    offset: float
    coverage: float
    extrapolation_factor: float

    def __post_init__(self) -> None:
        shape = tuple(a.size for a in self.axes) + (self.nt, self.nx)
        if self.log_sup.shape != shape:
            raise ValueError(f"site envelope: expected log_sup of shape {shape}, got {self.log_sup.shape}")
        if self.nx < 2 or self.nt < 2:
            raise ValueError(f"site envelope: the site grid needs nx, nt ≥ 2, got {self.nx} × {self.nt}")
        if not all(a.size >= 1 and np.all(np.isfinite(a)) and np.all(np.diff(a) > 0) for a in self.axes):
            raise ValueError("site envelope: each axis must be finite and increasing")
        if not (np.all(np.isfinite(self.log_sup)) and np.isfinite(self.offset)):
            raise ValueError("site envelope: log_sup and offset must be finite")
        if not (np.isfinite(self.extrapolation_factor) and self.extrapolation_factor >= 1):
            raise ValueError(f"site envelope: extrapolation_factor must be ≥ 1, got {self.extrapolation_factor}")

    # ------------------------------------------------------------------ queries
    def bound(self, mu: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(R, P) bounds on |e| for rows mu (R, p) at sites x, t: (P,) shared by every row, or
        (R, P) per row. x in radians (any real; periodic), t in [0, 1]."""
        mu = as_param_array(mu, len(self.axes))
        R = len(mu)
        x = np.broadcast_to(np.asarray(x, dtype=np.float64), (R, np.shape(x)[-1]))
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        corners, outside = self._mu_corners(mu)
        # the (t, x) cell of each site: node indices j, j+1 and k, k+1 (x periodic)
        tt = np.clip(t / T_END, 0.0, 1.0) * (self.nt - 1)
        j = np.clip(np.floor(tt).astype(int), 0, self.nt - 2)
        xx = np.mod(x, X_PERIOD) / X_PERIOD * self.nx
        k = np.floor(xx).astype(int) % self.nx
        k1 = (k + 1) % self.nx
        worst = np.full(x.shape, -np.inf)
        for corner in itertools.product(*corners):
            node = tuple(c[:, None] for c in corner)  # each row's μ node, against its sites
            for jj in (j, j + 1):
                for kk in (k, k1):
                    worst = np.maximum(worst, self.log_sup[(*node, jj, kk)])
        return np.exp(worst + self.offset) * np.where(outside, self.extrapolation_factor, 1.0)[:, None]

    def estimate(self, mu: np.ndarray, x: np.ndarray, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """(R,) bounds on the relative L2 error at the sites of answers u (R, P) (see the module
        docstring); inf where the answer is no larger than its error bound."""
        b = np.sqrt(np.sum(self.bound(mu, x, t) ** 2, axis=1))
        norm = np.sqrt(np.sum(np.asarray(u, dtype=np.float64) ** 2, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = b / (norm - b)
        return np.where((norm > b) & np.isfinite(out), out, np.inf)

    def _mu_corners(self, mu: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        corners, outside = [], np.zeros(len(mu), dtype=bool)
        for i, axis in enumerate(self.axes):
            v = mu[:, i]
            outside |= (v < axis[0] - 1e-12) | (v > axis[-1] + 1e-12)
            if axis.size == 1:
                zero = np.zeros(len(mu), dtype=int)
                corners.append((zero, zero))
                continue
            a = np.clip(np.searchsorted(axis, v, side="right") - 1, 0, axis.size - 2)
            on_node = np.isclose(v, axis[a], rtol=0, atol=1e-12)
            corners.append((a, np.where(on_node, a, a + 1)))
        return corners, outside

    # ------------------------------------------------------------------ artifact
    def to_dict(self) -> dict:
        """The manifest's ``error_estimate.site_envelope`` (the node values go to ``to_arrays``)."""
        return {
            "form": "|e| <= max of the node sup-errors over the cells of mu and (t, x) × exp(offset)",
            "file": "envelope.npz",
            "axes": [a.tolist() for a in self.axes],
            "nx": self.nx,
            "nt": self.nt,
            "offset": float(self.offset),
            "coverage": float(self.coverage),
            "extrapolation_factor": float(self.extrapolation_factor),
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """{"log_sup": float32, rounded up so that it never lowers a node}."""
        low = self.log_sup.astype(np.float32)
        return {"log_sup": np.where(low < self.log_sup, np.nextafter(low, np.float32(np.inf)), low)}

    @classmethod
    def from_parts(cls, d: dict, arrays: dict[str, np.ndarray]) -> SiteEnvelope:
        """Inverse of ``to_dict`` and ``to_arrays``; ValueError/KeyError on malformed input."""
        return cls(
            tuple(np.asarray(a, dtype=np.float64) for a in d["axes"]),
            int(d["nx"]),
            int(d["nt"]),
            np.asarray(arrays["log_sup"], dtype=np.float64),
            float(d["offset"]),
            float(d["coverage"]),
            float(d["extrapolation_factor"]),
        )


def patch_sup(err: np.ndarray, nx: int, nt: int) -> np.ndarray:
    """Node values (G, nt, nx) from |errors| (G, NT, NX) on the standard kind of grid (x_i = 2πi/NX,
    t = linspace(0, 1, NT)): the max over the patch [t_{j−1}, t_{j+1}] × [x_{k−1}, x_{k+1}] around
    each node of the nt × nx site grid (periodic in x; clipped at t = 0 and 1)."""
    err = np.abs(np.asarray(err, dtype=np.float64))
    G, NT, NX = err.shape
    tg, xg = np.linspace(0.0, T_END, NT), X_PERIOD * np.arange(NX) / NX
    t_nodes, x_nodes = np.linspace(0.0, T_END, nt), X_PERIOD * np.arange(nx) / nx
    ht, hx = t_nodes[1] - t_nodes[0], X_PERIOD / nx
    out = np.empty((G, nt, nx))
    for j, tj in enumerate(t_nodes):
        in_t = np.abs(tg - tj) <= ht * (1.0 + 1e-9)
        slab = err[:, in_t].max(axis=1)  # (G, NX)
        for k, xk in enumerate(x_nodes):
            dx = np.abs((xg - xk + np.pi) % X_PERIOD - np.pi)
            out[:, j, k] = slab[:, dx <= hx * (1.0 + 1e-9)].max(axis=1)
    return out


def fit_site_envelope(
    domain: Domain,
    per_axis: int,
    node_errors: np.ndarray,
    held_out_mu: np.ndarray,
    held_out_errors: np.ndarray,
    coverage: float = 0.999,
    nx: int = 32,
    nt: int = 17,
    extrapolation_factor: float = 10.0,
) -> SiteEnvelope:
    """The envelope from signed or absolute errors (G, NT, NX) on the standard kind of grid at
    ``domain.grid(per_axis)`` (in that order) and at held-out rows (H, p) (errors (H, NT, NX)):
    the offset is the ``coverage`` quantile over the held-out rows of their worst log ratio of
    |e| to the bare envelope over every grid point (never below 0)."""
    axes = tuple(
        np.linspace(*domain.bounds[k], per_axis) if k in domain.active else np.array([domain.bounds[k][0]])
        for k in domain.params
    )
    sup = patch_sup(node_errors, nx, nt)
    log_sup = np.log(np.maximum(sup, FLOOR)).reshape(tuple(a.size for a in axes) + (nt, nx))
    bare = SiteEnvelope(axes, nx, nt, log_sup, 0.0, coverage, extrapolation_factor)
    offset = 0.0
    held = np.abs(np.asarray(held_out_errors, dtype=np.float64))
    if len(held):
        NT, NX = held.shape[1:]
        X, T = np.meshgrid(X_PERIOD * np.arange(NX) / NX, np.linspace(0.0, T_END, NT))
        b = bare.bound(held_out_mu, X.ravel(), T.ravel())  # (H, NT·NX)
        with np.errstate(divide="ignore"):
            gap = np.max(np.log(np.maximum(held.reshape(len(held), -1), FLOOR)) - np.log(b), axis=1)
        offset = max(0.0, float(np.quantile(gap, coverage, method="higher")))
    return SiteEnvelope(axes, nx, nt, log_sup, offset, coverage, extrapolation_factor)
