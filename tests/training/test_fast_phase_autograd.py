"""The fast phase's per-point residual Jacobian (fastlrnr.numerics.jet_chain) against torch autograd of the
same residual, written plainly: the torch LRNR's forward, input derivatives by autograd (not
jets), float64."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastlrnr.numerics.families.cdr import CDR_FAMILY
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.jet_chain import exact_chain
from fastlrnr.numerics.random_model import random_lrnr
from fastlrnr.training.modules import LRNR

RANKS = (6, 5, 4)


def torch_residual(net: LRNR, s_flat: torch.Tensor, mu, x: np.ndarray, t: np.ndarray) -> torch.Tensor:
    """R[u] at the points for one coefficient row, by autograd through ``LRNR.forward``."""
    K = net.U.shape[-1]
    off = np.concatenate([[0], np.cumsum(RANKS)])
    s = torch.stack(
        [torch.nn.functional.pad(s_flat[off[l] : off[l + 1]], (0, K - RANKS[l])) for l in range(len(RANKS))]
    )
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    tt = torch.as_tensor(t, dtype=torch.float64).requires_grad_(True)
    u = net(xt[None], tt[None], s[None])[0]
    grad = lambda y, v: torch.autograd.grad(y.sum(), v, create_graph=True)[0]
    u_x, u_t = grad(u, xt), grad(u, tt)
    u_xx = grad(u_x, xt)
    beta, nu, rho = mu
    return u_t + beta * u_x - nu * u_xx - rho * u * (1 - u)


def test_jacobian_matches_autograd():
    torch.set_default_dtype(torch.float64)
    try:
        w = random_lrnr(40, RANKS, seed=4)
        net = LRNR.from_weights(w, family=CDR_FAMILY)
        x, t = interior_points(12, 3)
        chain = exact_chain(w, x, t, np.float64, family=CDR_FAMILY)
        rng = np.random.default_rng(0)
        for mu in ([2.0, 0.5, 1.0], [7.0, 0.0, 0.0]):
            S = rng.uniform(0.2, 1.5, size=(1, sum(RANKS)))
            r, jac = chain.residual_and_jacobian(S, np.array([mu]))
            s_t = torch.tensor(S[0])
            r_t = torch_residual(net, s_t, mu, x, t)
            jac_t = torch.autograd.functional.jacobian(lambda s: torch_residual(net, s, mu, x, t), s_t)
            np.testing.assert_allclose(r[0], r_t.detach().numpy(), rtol=0, atol=1e-11)
            np.testing.assert_allclose(jac[0], jac_t.numpy(), rtol=0, atol=1e-10 * np.abs(jac).max())
    finally:
        torch.set_default_dtype(torch.float32)
