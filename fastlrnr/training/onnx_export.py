"""Export the full LRNR (fastlrnr/numerics/lrnr.py variant) as ONNX graphs, built node by node.

No torch: the graph is written with ``onnx.helper`` straight from ``LRNRWeights``
(weights become float32 initializers), and ``tests/training/test_onnx_export.py``
ties it to the numpy definition in ``fastlrnr/numerics/lrnr.py``.

Graph interface (float32, dynamic P and B)::

    inputs   x (P,), t (P,), s1 (B, k_1), ..., sL (B, k_L)
    outputs  u (B, P)                                 lrnr_onnx(w)
             u, u_x, u_t, u_xx (B, P)                 lrnr_onnx(w, jets=True)

Inside, hidden states are kept transposed, points last — ``hᵀ`` of shape (N, P) or
(B, N, P) — because onnxruntime's CPU GEMM is faster with the long point axis as
the output's column axis (measured: ~15 % over the row layout for N = 1024, k = 20)::

    h0ᵀ = tanh([A a] [cos x; sin x; t; 1])           (N, P)      once for all B sets
    rlᵀ = Ulᵀ h_{l−1}ᵀ                              (k, P) or (B, k, P)
    hlᵀ = tanh([Vl bl] [rlᵀ ⊙ sl; 1])               (B, N, P)   bias rides in the GEMM
    u   = 1 + sin x + t (wᵀ h_Lᵀ + c)               (B, P)

No N×N work, and no work per coefficient set that does not depend on it. The jets
graph carries (h, h_x, h_t, h_xx) as four tensors through the same GEMMs (the bias
only on the value), with h' = (1 − h²) y' and h'' = (1 − h²)(y'' − 2 h y'²).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.lrnr import LRNRWeights

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.14; opset 17 needs IR >= 8


class _Graph:
    """A tiny builder: generated node names, named initializers, nodes in order."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self._n = 0

    def const(self, name: str, value, dtype=np.float32) -> str:
        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name)
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        if out is None:
            self._n += 1
            out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def lrnr_onnx(weights: LRNRWeights, jets: bool = False, *, family: PdeFamily) -> bytes:
    """Serialized ONNX model (opset 17) of the LRNR u(x, t; s), or of (u, u_x, u_t, u_xx),
    with ``family``'s initial condition u0 in the ansatz.

    ``weights`` (any float dtype) are stored as float32. The model passes
    ``onnx.checker`` (full check) before it is returned; its metadata records the
    ansatz, N, the ranks and whether it is the jets graph. ValueError when u0 is not
    c0 + c_sin sin x + c_cos cos x (``PdeFamily.initial_trig`` is None): such a family is
    served by the numpy evaluator."""
    if family.initial_trig is None:
        raise ValueError(f"the {family.name!r} family's initial condition has no ONNX form (initial_trig is None)")
    c0, c_sin, c_cos = family.initial_trig
    w = weights.astype(np.float32)
    g = _Graph()
    L = len(w.ranks)
    s_names = [f"s{l}" for l in range(1, L + 1)]
    ax0, ax_m1, ax_m2 = (g.const(f"axes_{n}", [v], np.int64) for n, v in (("0", 0), ("m1", -1), ("m2", -2)))
    one = g.const("one", np.float32(1.0))
    row = lambda v: g.op("Unsqueeze", v, ax0)  # (P,) → (1, P)

    cos_x, sin_x = g.op("Cos", "x"), g.op("Sin", "x")
    ones = g.op("Add", g.op("Mul", "t", g.const("zero", np.float32(0.0))), one)
    zT = g.op("Concat", row(cos_x), row(sin_x), row("t"), row(ones), axis=0)  # (4, P)
    y0 = g.op("MatMul", g.const("Aa", np.hstack([w.A, w.a[:, None]])), zT)  # (N, P)
    # Coefficients with a trailing 1 for the bias column: (B, k) → (B, k + 1, 1).
    pad_k = g.const("pad_k", [0, 0, 0, 1], np.int64)
    s_aug = [g.op("Unsqueeze", g.op("Pad", s, pad_k, one), ax_m1) for s in s_names]
    wT = g.const("w_row", w.w[None, :])  # (1, N)
    c = g.const("c", np.float32(w.c))
    trig = lambda a, b, c, negated=None: _trig(g, a, b, c, sin_x, cos_x, one, negated)  # a + b sin x + c cos x
    u0 = trig(c0, c_sin, c_cos)

    if not jets:
        h = g.op("Tanh", y0)  # (N, P), then (B, N, P)
        for l in range(L):
            r = g.op("MatMul", g.const(f"U{l + 1}_T", w.U[l].T), h)  # (k, P) or (B, k, P)
            r = g.op("Unsqueeze", r, ax0) if l == 0 else r  # (1, k, P)
            pad = g.const("pad_rows_3d", [0, 0, 0, 0, 1, 0], np.int64)
            r = g.op("Mul", g.op("Pad", r, pad, one), s_aug[l])  # (B, k + 1, P), last row 1
            Vb = g.const(f"V{l + 1}_b", np.hstack([w.V[l], w.b[l][:, None]]))  # (N, k + 1)
            h = g.op("Tanh", g.op("MatMul", Vb, r))  # (B, N, P)
        gl = g.op("Add", g.op("Squeeze", g.op("MatMul", wT, h), ax_m2), c)  # (B, P)
        g.op("Add", u0, g.op("Mul", "t", gl), out="u")
        outputs = ["u"]
    else:
        zero_row = g.op("Mul", row("t"), g.const("zero", np.float32(0.0)))
        neg_sin, neg_cos = g.op("Neg", sin_x), g.op("Neg", cos_x)
        AT = g.const("A", w.A)  # (N, 3)
        z_x = g.op("Concat", row(neg_sin), row(cos_x), zero_row, axis=0)  # (3, P)
        z_xx = g.op("Concat", row(neg_cos), row(neg_sin), zero_row, axis=0)
        y_x, y_xx = g.op("MatMul", AT, z_x), g.op("MatMul", AT, z_xx)  # (N, P)
        y_t = g.const("A_t", w.A[:, 2:3])  # (N, 1), broadcasts
        two = g.const("two", np.float32(2.0))
        jet = _tanh_jet(g, y0, y_x, y_t, y_xx, one, two)  # 4 × (N, P)
        # The four jets stay separate tensors (stacking and splitting (4, B, N, P) costs
        # two extra passes); the bias row is 1 for the value and 0 for the derivatives.
        pad3 = g.const("pad_rows_3d", [0, 0, 0, 0, 1, 0], np.int64)
        zero = g.const("zero", np.float32(0.0))
        for l in range(L):
            UT = g.const(f"U{l + 1}_T", w.U[l].T)
            Vb = g.const(f"V{l + 1}_b", np.hstack([w.V[l], w.b[l][:, None]]))
            lin = []
            for i, h in enumerate(jet):
                r = g.op("MatMul", UT, h)  # (k, P) or (B, k, P)
                r = g.op("Unsqueeze", r, ax0) if l == 0 else r  # (1, k, P)
                r = g.op("Mul", g.op("Pad", r, pad3, one if i == 0 else zero), s_aug[l])  # (B, k + 1, P)
                lin.append(g.op("MatMul", Vb, r))  # (B, N, P)
            jet = _tanh_jet(g, *lin, one, two)
        g0, g_x, g_t, g_xx = [g.op("Squeeze", g.op("MatMul", wT, h), ax_m2) for h in jet]  # (B, P)
        g0 = g.op("Add", g0, c)
        g.op("Add", u0, g.op("Mul", "t", g0), out="u")
        g.op("Add", trig(0.0, -c_cos, c_sin), g.op("Mul", "t", g_x), out="u_x")
        g.op("Add", g0, g.op("Mul", "t", g_t), out="u_t")
        negated = {sin_x: neg_sin, cos_x: neg_cos}  # reuse the embedding's nodes
        g.op("Add", trig(0.0, -c_sin, -c_cos, negated), g.op("Mul", "t", g_xx), out="u_xx")
        outputs = ["u", "u_x", "u_t", "u_xx"]

    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", f32, ["P"]), helper.make_tensor_value_info("t", f32, ["P"])]
    inputs += [helper.make_tensor_value_info(s, f32, ["B", k]) for s, k in zip(s_names, w.ranks)]
    outs = [helper.make_tensor_value_info(o, f32, ["B", "P"]) for o in outputs]
    graph = helper.make_graph(
        g.nodes, "lrnr_jets" if jets else "lrnr", inputs, outs, initializer=list(g.inits.values())
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fastlrnr-service.training.onnx_export",
        ir_version=IR_VERSION,
    )
    model.doc_string = (
        "LRNR field u(x, t; s)" + (" with exact jets u_x, u_t, u_xx" if jets else "") + "; ansatz: " + family.ansatz
    )
    helper.set_model_props(
        model,
        {"ansatz": family.ansatz, "N": str(w.width), "ranks": ",".join(map(str, w.ranks)), "jets": str(jets).lower()},
    )
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _tanh_jet(g: _Graph, y: str, y_x: str, y_t: str, y_xx: str, one: str, two: str) -> list[str]:
    """(tanh y, h_x, h_t, h_xx) nodes: h' = d y', h'' = d (y'' − 2 h y'²), d = 1 − h²."""
    h = g.op("Tanh", y)
    d = g.op("Sub", one, g.op("Mul", h, h))
    h_x = g.op("Mul", d, y_x)
    h_t = g.op("Mul", d, y_t)
    h_xx = g.op("Sub", g.op("Mul", d, y_xx), g.op("Mul", g.op("Mul", two, h), g.op("Mul", h_x, y_x)))
    return [h, h_x, h_t, h_xx]


def _trig(
    g: _Graph,
    c0: float,
    c_sin: float,
    c_cos: float,
    sin_x: str,
    cos_x: str,
    one: str,
    negated: dict[str, str] | None = None,
) -> str:
    """The node c0 + c_sin sin x + c_cos cos x, (P,), with no node for a zero term and none
    for a unit factor (CDR's u0 = 1 + sin x is one Add; its u_x = cos x is the node itself);
    ``negated`` maps a node to an existing node of its negation."""
    terms = [] if c0 == 0 else [one if c0 == 1 else g.const(f"trig_{c0:.9g}", np.float32(c0))]
    for coef, node in ((c_sin, sin_x), (c_cos, cos_x)):
        if coef == 1:
            terms.append(node)
        elif coef == -1:
            terms.append((negated or {}).get(node) or g.op("Neg", node))
        elif coef != 0:
            terms.append(g.op("Mul", node, g.const(f"trig_{coef:.9g}", np.float32(coef))))
    if not terms:
        return g.op("Mul", sin_x, g.const("zero_u0", np.float32(0.0)))
    out = terms[0]
    for term in terms[1:]:
        out = g.op("Add", out, term)
    return out
