"""fastlrnr/training/onnx_export.py: the exported graphs agree with fastlrnr.numerics.lrnr (float64)
to float32 accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.families import FAMILIES
from fastlrnr.numerics.families.cdr import CDR_FAMILY, CdrFamily
from fastlrnr.numerics.lrnr import lrnr_forward, lrnr_jets
from fastlrnr.numerics.random_model import random_lrnr
from fastlrnr.training.onnx_export import OPSET, lrnr_onnx

ROOT = Path(__file__).resolve().parents[2]
N, RANKS, B, P = 32, (4, 3, 2), 3, 64


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    w = random_lrnr(N, RANKS, seed=3)
    x = rng.uniform(0.0, 2 * np.pi, P)
    t = rng.uniform(0.0, 1.0, P)
    s = [rng.uniform(0.0, 2.0, (B, k)) for k in RANKS]
    return w, s, x, t


def session(model: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def run(model: bytes, s, x, t):
    feed = {"x": x.astype(np.float32), "t": t.astype(np.float32)}
    feed.update({f"s{l}": sl.astype(np.float32) for l, sl in enumerate(s, start=1)})
    return session(model).run(None, feed)


def assert_close32(got, want, name):
    assert got.dtype == np.float32 and got.shape == want.shape, (name, got.shape, want.shape)
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max())
    assert err <= 1e-5 * scale, f"{name}: max error {err:.3g} against scale {scale:.3g}"


def test_graph_is_valid_and_described(case):
    w = case[0]
    for jets in (False, True):
        model = onnx.load_from_string(lrnr_onnx(w, jets=jets, family=CDR_FAMILY))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == OPSET
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["ansatz"] == CDR_FAMILY.ansatz and meta["N"] == str(N) and meta["ranks"] == "4,3,2"
        assert [i.name for i in model.graph.input] == ["x", "t", "s1", "s2", "s3"]
        want = ["u", "u_x", "u_t", "u_xx"] if jets else ["u"]
        assert [o.name for o in model.graph.output] == want
        matrices = [i for i in model.graph.initializer if len(i.dims) == 2]
        assert matrices and all(i.data_type == onnx.TensorProto.FLOAT for i in matrices)
        used = {name for node in model.graph.node for name in node.input}
        assert {i.name for i in model.graph.initializer} <= used  # no dead weights


def test_u_matches_numpy_float64(case):
    w, s, x, t = case
    (u,) = run(lrnr_onnx(w, family=CDR_FAMILY), s, x, t)
    assert_close32(u, lrnr_forward(w, s, x, t, family=CDR_FAMILY), "u")


def test_jets_match_numpy_float64(case):
    w, s, x, t = case
    got = run(lrnr_onnx(w, jets=True, family=CDR_FAMILY), s, x, t)
    for name, g, want in zip(("u", "u_x", "u_t", "u_xx"), got, lrnr_jets(w, s, x, t, family=CDR_FAMILY)):
        assert_close32(g, want, name)


def test_dynamic_batch_and_points(case):
    w, s, x, t = case
    model = lrnr_onnx(w, family=CDR_FAMILY)
    for b, p in ((1, 1), (5, 7)):
        rng = np.random.default_rng(b)
        sb = [rng.uniform(0.0, 2.0, (b, k)) for k in RANKS]
        (u,) = run(model, sb, x[:p], t[:p])
        assert_close32(u, lrnr_forward(w, sb, x[:p], t[:p], family=CDR_FAMILY), f"u (B={b}, P={p})")


def test_initial_condition_is_exact(case):
    w, s, x, _ = case
    (u,) = run(lrnr_onnx(w, family=CDR_FAMILY), s, x, np.zeros_like(x))
    np.testing.assert_allclose(u, np.broadcast_to(1 + np.sin(x), u.shape), atol=1e-6)


def test_float32_weights_give_the_same_graph(case):
    w = case[0]
    assert lrnr_onnx(w, family=CDR_FAMILY) == lrnr_onnx(w.astype(np.float32), family=CDR_FAMILY)


class TrigFamily(CdrFamily):
    """u0 = 0.3 − 0.5 sin x + 2 cos x: every term of ``initial_trig`` with a non-unit factor."""

    initial_text = "0.3 - 0.5 sin x + 2 cos x"
    initial_trig = (0.3, -0.5, 2.0)

    def initial_jets(self, x, xp=np):
        sin, cos = xp.sin(x), xp.cos(x)
        return 0.3 - 0.5 * sin + 2.0 * cos, -0.5 * cos - 2.0 * sin, 0.5 * sin - 2.0 * cos

    def initial_condition(self, x, xp=np):
        return self.initial_jets(x, xp)[0]


@pytest.mark.parametrize("family", [FAMILIES["allen_cahn"], TrigFamily()], ids=["allen_cahn", "trig"])
def test_another_familys_graph_is_its_ansatz(case, family):
    """u and its jets from the graph of another family's u0 equal the numpy LRNR of that family,
    and the graph's metadata names that family's ansatz (the service checks it at load)."""
    w, s, x, t = case
    (u,) = run(lrnr_onnx(w, family=family), s, x, t)
    assert_close32(u, lrnr_forward(w, s, x, t, family), "u")
    jets = lrnr_onnx(w, jets=True, family=family)
    for name, g, want in zip(("u", "u_x", "u_t", "u_xx"), run(jets, s, x, t), lrnr_jets(w, s, x, t, family)):
        assert_close32(g, want, name)
    meta = {p.key: p.value for p in onnx.load_from_string(jets).metadata_props}
    assert meta["ansatz"] == family.ansatz != CDR_FAMILY.ansatz


def test_a_family_without_an_onnx_form_is_refused(case):
    class Gaussian(CdrFamily):
        initial_trig = None

    with pytest.raises(ValueError, match="no ONNX form"):
        lrnr_onnx(case[0], family=Gaussian())


@pytest.mark.parametrize("model", ["cdr", "convection", "allen_cahn"])
def test_the_shipped_graphs_are_what_the_exporter_writes(model):
    """The family-aware exporter writes the committed artifacts' graphs byte for byte."""
    art = load_artifact(ROOT / "artifacts" / model)
    for name, jets in (("lrnr.onnx", False), ("lrnr_jets.onnx", True)):
        assert lrnr_onnx(art.lrnr, jets, family=art.family) == (art.directory / name).read_bytes(), name
