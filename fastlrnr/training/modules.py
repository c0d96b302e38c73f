"""Torch LRNR and hypernetwork (docs/method.md, “The LRNR”, “The hypernetwork”), mirroring
fastlrnr/numerics/lrnr.py and fastlrnr/numerics/hypernet.py.

Derivatives with respect to the inputs are propagated forward as jets
(value, ∂x, ∂t, ∂xx) through every layer in one batched matmul per layer, so the
PDE residual costs about 4 forward passes and one ordinary backward pass — no
double backward through autograd.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.hypernet import HyperWeights
from fastlrnr.numerics.lrnr import LRNRWeights


def _orthonormal(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
    return q.to(torch.get_default_dtype())


class LRNR(nn.Module):
    """Low-rank coordinate network; shapes: A (N,3), a (N,), U, V (L,N,K), b (L,N), w (N,), c ().

    Coefficients ``s`` are (B, L, K); points x, t are (B, P). The output is the exact-IC
    ansatz u = u0(x) + t g of ``family`` (its initial condition u0)."""

    def __init__(
        self,
        width: int,
        rank: int,
        layers: int,
        seed: int = 0,
        input_scale: float = 1.0,
        time_scale: float = 1.0,
        *,
        family: PdeFamily,
    ):
        super().__init__()
        self.family = family
        gen = torch.Generator().manual_seed(seed)
        A = input_scale * torch.randn(width, 3, generator=gen)
        A[:, 2] *= time_scale  # faster features in t (high-β convection oscillates in t)
        self.A = nn.Parameter(A)
        self.a = nn.Parameter(0.5 * torch.randn(width, generator=gen))
        self.U = nn.Parameter(torch.stack([_orthonormal(width, rank, gen) for _ in range(layers)]))
        self.V = nn.Parameter(torch.stack([_orthonormal(width, rank, gen) for _ in range(layers)]))
        self.b = nn.Parameter(torch.zeros(layers, width))
        self.w = nn.Parameter(torch.randn(width, generator=gen) / math.sqrt(width))
        self.c = nn.Parameter(torch.zeros(()))

    @classmethod
    def from_weights(cls, weights: LRNRWeights, family: PdeFamily) -> LRNR:
        """Rebuild from numpy weights (e.g. truncated). Layers of rank k_l < K = max k_l are
        padded with zero columns of U and V, which leaves the function unchanged; the
        matching coefficients s[:, l, k_l:] have no effect and receive zero gradient."""
        K, L, N = max(weights.ranks), len(weights.ranks), weights.width
        net = cls(N, K, L, family=family)
        pad = lambda M: np.pad(M, ((0, 0), (0, K - M.shape[1])))
        dt = torch.get_default_dtype()
        with torch.no_grad():
            net.A.copy_(torch.as_tensor(weights.A, dtype=dt))
            net.a.copy_(torch.as_tensor(weights.a, dtype=dt))
            net.U.copy_(torch.as_tensor(np.stack([pad(U) for U in weights.U]), dtype=dt))
            net.V.copy_(torch.as_tensor(np.stack([pad(V) for V in weights.V]), dtype=dt))
            net.b.copy_(torch.as_tensor(np.stack(weights.b), dtype=dt))
            net.w.copy_(torch.as_tensor(weights.w, dtype=dt))
            net.c.fill_(weights.c)
        return net

    @property
    def layers(self) -> int:
        return self.U.shape[0]

    def jets(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor):
        """(u, u_x, u_t, u_xx), each (B, P), for x, t (B, P) and s (B, L, K)."""
        cx, sx = torch.cos(x), torch.sin(x)
        A = self.A
        y = cx[..., None] * A[:, 0] + sx[..., None] * A[:, 1] + t[..., None] * A[:, 2] + self.a
        y_x = -sx[..., None] * A[:, 0] + cx[..., None] * A[:, 1]
        y_t = A[:, 2].expand_as(y)
        y_xx = -cx[..., None] * A[:, 0] - sx[..., None] * A[:, 1]
        h = _tanh_jet(y, y_x, y_t, y_xx)  # (4, B, P, N)
        for l in range(self.layers):
            r = torch.matmul(h, self.U[l]) * s[:, l, None, :]  # (4, B, P, K)
            lin = torch.matmul(r, self.V[l].T)  # (4, B, P, N)
            h = _tanh_jet(lin[0] + self.b[l], lin[1], lin[2], lin[3])
        g = torch.matmul(h, self.w)  # (4, B, P)
        return self.family.ansatz_jets(x, t, g[0] + self.c, g[1], g[2], g[3], xp=torch)

    def forward(self, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """u (B, P) without derivatives."""
        z = torch.stack([torch.cos(x), torch.sin(x), t], dim=-1)
        h = torch.tanh(z @ self.A.T + self.a)
        for l in range(self.layers):
            h = torch.tanh(((h @ self.U[l]) * s[:, l, None, :]) @ self.V[l].T + self.b[l])
        return self.family.initial_condition(x, xp=torch) + t * (h @ self.w + self.c)

    def orthogonality(self) -> torch.Tensor:
        """R_orth = Σ_l (‖UᵀU − I‖_F + ‖VᵀV − I‖_F) / K²."""
        K = self.U.shape[-1]
        eye = torch.eye(K, dtype=self.U.dtype)
        gram = lambda M: torch.matmul(M.transpose(-1, -2), M) - eye
        return (torch.linalg.matrix_norm(gram(self.U)).sum() + torch.linalg.matrix_norm(gram(self.V)).sum()) / K**2

    def to_weights(self, keep: list[np.ndarray] | None = None) -> LRNRWeights:
        """numpy float64 weights; ``keep[l]`` (indices) truncates layer l's coefficient columns."""
        d = lambda p: p.detach().cpu().double().numpy()
        U, V = d(self.U), d(self.V)
        keep = keep if keep is not None else [np.arange(U.shape[-1])] * self.layers
        return LRNRWeights(
            d(self.A),
            d(self.a),
            tuple(U[l][:, keep[l]] for l in range(self.layers)),
            tuple(V[l][:, keep[l]] for l in range(self.layers)),
            tuple(d(self.b)[l] for l in range(self.layers)),
            d(self.w),
            float(d(self.c)),
        )


def _tanh_jet(y, y_x, y_t, y_xx) -> torch.Tensor:
    h = torch.tanh(y)
    dh = 1.0 - h * h
    return torch.stack([h, dh * y_x, dh * y_t, dh * (y_xx - 2.0 * h * y_x * y_x)])


class HyperNet(nn.Module):
    """μ (B, p) ↦ s (B, L, K): normalise to [−1, 1], 3 tanh layers of width K, ReLU heads;
    p = len(low), the family's number of parameters."""

    def __init__(self, low: np.ndarray, high: np.ndarray, rank: int, layers: int, gamma: float, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.get_default_dtype()))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.get_default_dtype()))
        self.body = nn.ModuleList([nn.Linear(len(low), rank), nn.Linear(rank, rank), nn.Linear(rank, rank)])
        self.heads = nn.Linear(rank, layers * rank)  # all L heads in one matmul
        self.layers, self.rank = layers, rank
        with torch.no_grad():  # start on the geometric decay the sparsity term asks for
            self.heads.weight.mul_(0.3)
            self.heads.bias.copy_((gamma ** -torch.arange(rank, dtype=torch.float64)).repeat(layers))

    def normalise(self, mu: torch.Tensor) -> torch.Tensor:
        span = self.high - self.low
        active = span > 0
        return torch.where(
            active, 2.0 * (mu - self.low) / torch.where(active, span, torch.ones_like(span)) - 1.0, torch.zeros_like(mu)
        )

    def forward(self, mu: torch.Tensor) -> torch.Tensor:
        m = self.normalise(mu)
        for lin in self.body:
            m = torch.tanh(lin(m))
        return torch.relu(self.heads(m)).view(-1, self.layers, self.rank)

    def to_weights(self, keep: list[np.ndarray] | None = None) -> HyperWeights:
        d = lambda p: p.detach().cpu().double().numpy()
        H = d(self.heads.weight).reshape(self.layers, self.rank, -1)
        e = d(self.heads.bias).reshape(self.layers, self.rank)
        keep = keep if keep is not None else [np.arange(self.rank)] * self.layers
        return HyperWeights(
            tuple(d(l.weight) for l in self.body),
            tuple(d(l.bias) for l in self.body),
            tuple(H[l][keep[l]] for l in range(self.layers)),
            tuple(e[l][keep[l]] for l in range(self.layers)),
            d(self.low),
            d(self.high),
        )


def sparsity(s: torch.Tensor, gamma: float) -> torch.Tensor:
    """R_sparse: mean over the batch of Σ_l Σ_i ReLU(γ s_{l,i+1} − s_{l,i}) (coefficient axis)."""
    return torch.relu(gamma * s[..., 1:] - s[..., :-1]).sum(dim=(-1, -2)).mean()
