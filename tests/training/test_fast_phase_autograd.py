"""The hand-written SPInProp gradient (core.fast_phase.objective_and_grad) against torch
autograd of the same objective, written plainly from the ReducedOperators arrays: input
derivatives by autograd too (not jets), float64."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.fast_phase import objective_and_grad  # noqa: E402
from core.fastlrnr import FastLRNRSettings, build_fastlrnr  # noqa: E402
from core.lrnr import LRNRWeights  # noqa: E402

RANKS = (6, 5, 4)


def random_lrnr(N=48, ranks=RANKS, seed=0) -> LRNRWeights:
    rng = np.random.default_rng(seed)
    orth = lambda k: np.linalg.qr(rng.normal(size=(N, k)))[0]
    return LRNRWeights(rng.normal(size=(N, 3)), 0.5 * rng.normal(size=N), tuple(2 * orth(k) for k in ranks),
                       tuple(2 * orth(k) for k in ranks), tuple(0.3 * rng.normal(size=N) for _ in ranks),
                       rng.normal(size=N) / np.sqrt(N), 0.2)


def torch_objective(arrays, s, s_hat, mu, lam, x, t):
    """J for one row, straight from method.md §4–5 (c_l = M_l tanh(...), u = 1 + sin x + t g)."""
    T = lambda key: torch.as_tensor(arrays[key], dtype=torch.float64)
    L = len(s)
    x = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    t = torch.as_tensor(t, dtype=torch.float64).requires_grad_(True)
    z = torch.stack([torch.cos(x), torch.sin(x), t], dim=1)
    c = torch.tanh(z @ T("A0").T + T("a0")) @ T("M0").T
    for l in range(1, L + 1):
        c = torch.tanh(((c @ T(f"G{l}").T) * s[l - 1]) @ T(f"Vp{l}").T + T(f"bp{l}")) @ T(f"M{l}").T
    u = 1 + torch.sin(x) + t * (c @ T("wr") + T("c"))
    grad = lambda y, v: torch.autograd.grad(y.sum(), v, create_graph=True)[0]
    u_x, u_t = grad(u, x), grad(u, t)
    u_xx = grad(u_x, x)
    beta, nu, rho = mu
    res = u_t + beta * u_x - nu * u_xx - rho * u * (1 - u)
    initial = t.detach() == 0
    fit = torch.where(initial, torch.abs(u - 1 - torch.sin(x)), torch.abs(res)).sum()
    return fit + lam * sum(torch.abs(a - b).sum() for a, b in zip(s, s_hat))


def test_hand_written_gradient_matches_autograd():
    rng = np.random.default_rng(1)
    w = random_lrnr()
    sets = [[rng.uniform(0.2, 1.5, size=k) for k in RANKS] for _ in range(4)]
    ops, _ = build_fastlrnr(w, sets, [], FastLRNRSettings())
    arrays = ops.to_arrays()
    mu = np.array([[2.0, 0.5, 1.0], [6.0, 0.0, 0.0], [1.0, 0.0, 2.0]])
    lam = np.array([0.3, 1.0, 0.0])
    s = [rng.uniform(0.2, 1.5, size=(3, k)) for k in RANKS]
    s_hat = [rng.uniform(0.2, 1.5, size=(3, k)) for k in RANKS]
    s_hat[0][0, 1] = s[0][0, 1]          # one locality term exactly at its kink: subgradient 0 on both sides
    x, t = ops.points
    J, grads = objective_and_grad(ops, s, s_hat, mu, lam, x, t)
    for b in range(3):
        sb = [torch.tensor(sl[b], dtype=torch.float64, requires_grad=True) for sl in s]
        Jt = torch_objective(arrays, sb, [torch.tensor(sl[b]) for sl in s_hat], mu[b], lam[b], x, t)
        Jt.backward()
        assert Jt.item() == pytest.approx(J[b], rel=1e-12)
        for l in range(len(RANKS)):
            np.testing.assert_allclose(grads[l][b], sb[l].grad.numpy(), rtol=0, atol=1e-10 * (1 + abs(J[b])))
