"""The torch LRNR/hypernetwork against the numpy copies in fastlrnr/numerics/, and their jets against autograd."""

import numpy as np
import pytest
import torch

from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward, lrnr_jets
from fastlrnr.training.modules import LRNR, HyperNet, sparsity


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _model(seed=0):
    torch.manual_seed(seed)
    net = LRNR(width=40, rank=6, layers=3, seed=seed, family=CDR_FAMILY)
    with torch.no_grad():
        net.b.normal_(0, 0.2)
        net.c.fill_(0.3)
    return net


def test_torch_jets_match_numpy_core():
    net = _model()
    rng = np.random.default_rng(1)
    x, t = rng.random((2, 9)) * [[2 * np.pi], [1.0]]
    s = rng.random((2, 3, 6)) * 2
    tj = net.jets(torch.as_tensor(x).expand(2, 9), torch.as_tensor(t).expand(2, 9), torch.as_tensor(s))
    nj = lrnr_jets(net.to_weights(), [s[:, l] for l in range(3)], x, t, family=CDR_FAMILY)
    for a, b in zip(tj, nj):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-12, atol=1e-12)
    u = net(torch.as_tensor(x).expand(2, 9), torch.as_tensor(t).expand(2, 9), torch.as_tensor(s))
    np.testing.assert_allclose(
        u.detach().numpy(),
        lrnr_forward(net.to_weights(), [s[:, l] for l in range(3)], x, t, family=CDR_FAMILY),
        rtol=1e-12,
        atol=1e-12,
    )


def test_forward_jets_match_autograd():
    net = _model(2)
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.random((1, 7)) * 6.0, dtype=torch.float64).requires_grad_(True)
    t = torch.as_tensor(rng.random((1, 7)), dtype=torch.float64).requires_grad_(True)
    s = torch.as_tensor(rng.random((1, 3, 6)))
    u = net(x, t, s)
    u_x, u_t = torch.autograd.grad(u.sum(), (x, t), create_graph=True)
    (u_xx,) = torch.autograd.grad(u_x.sum(), x)
    ju, jx, jt, jxx = net.jets(x.detach(), t.detach(), s)
    for a, b in ((ju, u), (jx, u_x), (jt, u_t), (jxx, u_xx)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_hypernet_matches_numpy_and_truncation_keeps_outputs():
    hn = HyperNet(CDR.low, CDR.high, rank=8, layers=3, gamma=1.25, seed=4)
    with torch.no_grad():
        hn.heads.bias.add_(torch.linspace(-1.5, 0.5, 24))  # some coefficients dead everywhere
    mu = CDR.sample(11, np.random.default_rng(5))
    s_t = hn(torch.as_tensor(mu)).detach().numpy()
    s_n = hyper_forward(hn.to_weights(), mu)
    for l in range(3):
        np.testing.assert_allclose(s_t[:, l], s_n[l], rtol=1e-12, atol=1e-14)
    keep = [np.flatnonzero(s_t[:, l].max(axis=0) > 0) for l in range(3)]
    s_k = hyper_forward(hn.to_weights(keep), mu)
    for l in range(3):
        np.testing.assert_array_equal(s_k[l], s_n[l][:, keep[l]])


def test_sparsity_is_along_the_coefficient_axis():
    gamma = 1.25
    decaying = torch.tensor([[[1.0, 0.7, 0.5, 0.0]]])  # s_{i+1} <= s_i / γ
    assert float(sparsity(decaying, gamma)) == 0.0
    growing = torch.tensor([[[0.1, 1.0, 0.0, 0.0]]])
    assert float(sparsity(growing, gamma)) == pytest.approx(gamma * 1.0 - 0.1)
    # differences across the batch are not penalised
    batch = torch.tensor([[[0.1, 0.0]], [[5.0, 0.0]]])
    assert float(sparsity(batch, gamma)) == 0.0


def test_orthogonality_zero_at_init_and_positive_after_perturbation():
    net = _model()
    assert float(net.orthogonality().detach()) < 1e-12
    with torch.no_grad():
        net.U.mul_(1.1)
    assert float(net.orthogonality().detach()) > 1e-3


def test_torch_lrnr_matches_onnx_graph_in_float32():
    """The three copies of the LRNR forward: torch (training), ONNX under onnxruntime (serving)
    and numpy (core) agree to float32 tolerance on random points and coefficients."""
    import onnxruntime as ort

    from fastlrnr.training.onnx_export import lrnr_onnx

    net = _model(7)
    w = net.to_weights()
    rng = np.random.default_rng(8)
    x, t = (rng.random(50) * 2 * np.pi).astype(np.float32), rng.random(50).astype(np.float32)
    s = rng.random((3, 3, 6)).astype(np.float32) * 2
    sess = ort.InferenceSession(lrnr_onnx(w, jets=True, family=CDR_FAMILY), providers=["CPUExecutionProvider"])
    feeds = {"x": x, "t": t, **{f"s{l + 1}": s[:, l] for l in range(3)}}
    onnx_out = sess.run(None, feeds)
    torch_out = net.jets(
        torch.as_tensor(x, dtype=torch.float64).expand(3, 50),
        torch.as_tensor(t, dtype=torch.float64).expand(3, 50),
        torch.as_tensor(s, dtype=torch.float64),
    )
    for a, b in zip(onnx_out, torch_out):
        b = b.detach().numpy()
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * max(1.0, np.abs(b).max()))
