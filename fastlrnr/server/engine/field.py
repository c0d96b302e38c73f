"""Evaluate the full LRNR field on points or tensor grids (no torch, no web framework).

Two back-ends with one interface:

- :class:`FieldEvaluator` / :class:`JetsEvaluator` run the exported graphs
  (``lrnr.onnx`` / ``lrnr_jets.onnx``, see ``fastlrnr/training/onnx_export.py``) under onnxruntime;
- :class:`NumpyFieldEvaluator` / :class:`NumpyJetsEvaluator` run ``fastlrnr.numerics.lrnr`` in float32,
  the fallback when onnxruntime or the graphs are unavailable.

Coefficients are rows ``(B, Σ k_l)`` (B sets → results ``(B, P)`` / ``(B, nt, nx)``) or one
row ``(Σ k_l,)`` (one set → ``(P,)`` / ``(nt, nx)``), as the solver carries them; a list with
one array per hidden layer (``(k_l,)`` or ``(B, k_l)``) is taken too
(``fastlrnr.numerics.lrnr.coefficient_rows`` checks either). They are split per layer here, where the
graphs take them so. Points are radians in x and time units in t. Results are float32.

Points are evaluated in chunks so that one hidden-state block (B × chunk × N floats,
× 4 for jets) stays near ``block_elements``: this keeps the working set in cache, which
is what makes it fast. Large batches of sets are split into groups, so a block never
exceeds MAX_BLOCK_ELEMENTS whatever the grid or the batch.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastlrnr.numerics.family import PdeFamily
from fastlrnr.numerics.lrnr import LRNRWeights, coefficient_rows, lrnr_forward, lrnr_jets, split_layers

# One hidden-state block of 2^18 float32 (1 MiB, about one core's L2) measured fastest for
# both back-ends: e.g. N = 1024 on the 256 x 100 grid, 256-point chunks beat 16384-point
# ones by ~1.3x (onnxruntime) and ~2x (numpy). See benchmarks/field_eval.py.
DEFAULT_BLOCK_ELEMENTS = 1 << 18
MIN_CHUNK, MAX_CHUNK = 256, 65536  # points per run, whatever the width
MAX_BLOCK_ELEMENTS = 1 << 24  # hard cap (64 MiB float32) for large batches of sets


class _Evaluator:
    """Shape checks, chunking and grid layout shared by every back-end.

    Subclasses set ``ranks`` (k_1..k_L), ``width`` (N), ``n_outputs`` and implement
    ``_run(s (B, k_l) float32 list, x (p,), t (p,)) -> tuple of (B, p) arrays``."""

    ranks: tuple[int, ...]
    width: int
    n_outputs: int = 1

    def __init__(self, block_elements: int = DEFAULT_BLOCK_ELEMENTS):
        if block_elements < 1:
            raise ValueError(f"block_elements must be positive, got {block_elements}")
        self.block_elements = int(block_elements)

    # ---- public interface
    def evaluate(self, s, x: np.ndarray, t: np.ndarray):
        """Field at points: x, t (P,) → (P,) for one set, (B, P) for B sets."""
        s32, single = self._coefficients(s)
        x32, t32 = self._points(x, t)
        out = self._chunked(s32, x32, t32)
        return self._finish(tuple(o[0] if single else o for o in out))

    def evaluate_grid(self, s, x_axis: np.ndarray, t_axis: np.ndarray):
        """Field on the tensor grid t_axis × x_axis: (nt, nx) for one set, (B, nt, nx) for B.

        Row-major in (t, x): ``out[..., i, j] = u(x_axis[j], t_axis[i])``."""
        x_axis, t_axis = self._axis(x_axis, "x_axis"), self._axis(t_axis, "t_axis")
        nx, nt = x_axis.size, t_axis.size
        s32, single = self._coefficients(s)
        out = self._chunked(s32, np.tile(x_axis, nt), np.repeat(t_axis, nx))
        shape = (nt, nx) if single else (s32[0].shape[0], nt, nx)
        return self._finish(tuple(o.reshape(shape) for o in out))

    # ---- helpers
    def _finish(self, outs: tuple):
        return outs[0] if self.n_outputs == 1 else outs

    def _coefficients(self, s) -> tuple[list[np.ndarray], bool]:
        """Coefficients (rows or per layer) → per layer (B, k_l) float32, and whether one set."""
        S, single = coefficient_rows(self.ranks, s, np.float32, require_finite=True)
        return [np.ascontiguousarray(sl) for sl in split_layers(S, self.ranks)], single

    @staticmethod
    def _points(x, t) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        t = np.ascontiguousarray(t, dtype=np.float32)
        if x.ndim != 1 or x.shape != t.shape:
            raise ValueError(f"expected x and t of the same shape (P,), got {x.shape} and {t.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t))):
            raise ValueError("x and t must be finite")
        return x, t

    @staticmethod
    def _axis(v, name: str) -> np.ndarray:
        v = np.ascontiguousarray(v, dtype=np.float32)
        if v.ndim != 1:
            raise ValueError(f"expected {name} of shape (n,), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
        return v

    @property
    def _per_point(self) -> int:
        """Floats of one hidden-state block per point and coefficient set."""
        return self.width * (4 if self.n_outputs > 1 else 1)

    def chunk_points(self, batch: int) -> int:
        """Points per run for ``batch`` coefficient sets."""
        return int(min(MAX_CHUNK, max(MIN_CHUNK, self.block_elements // max(batch * self._per_point, 1))))

    def max_batch(self) -> int:
        """Coefficient sets per run: beyond this many, sets are evaluated group by group so
        that a block never exceeds MAX_BLOCK_ELEMENTS however large the batch."""
        return max(1, MAX_BLOCK_ELEMENTS // (MIN_CHUNK * self._per_point))

    def _chunked(self, s32: list[np.ndarray], x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
        B, P = s32[0].shape[0], x.size
        group = self.max_batch()
        if B == 0 or P == 0 or group < B:
            outs = tuple(np.empty((B, P), np.float32) for _ in range(self.n_outputs))
            for g0 in range(0, B if P else 0, group):
                for o, part in zip(outs, self._chunked([sl[g0 : g0 + group] for sl in s32], x, t)):
                    o[g0 : g0 + group] = part
            return outs
        step = self.chunk_points(B)
        if step >= P:
            return tuple(np.asarray(o, dtype=np.float32) for o in self._run(s32, x, t))
        outs = tuple(np.empty((B, P), np.float32) for _ in range(self.n_outputs))
        for lo in range(0, P, step):
            hi = min(P, lo + step)
            for o, part in zip(outs, self._run(s32, x[lo:hi], t[lo:hi])):
                o[:, lo:hi] = part
        return outs


class FieldEvaluator(_Evaluator):
    """u(x, t; s) from an exported ``lrnr.onnx`` (a path, or the model's bytes) under
    onnxruntime's CPU provider.

    ``threads`` sets onnxruntime's intra-op thread count (inter-op is 1); idle worker
    threads do not spin, which matters on a machine shared with other work."""

    _outputs = ("u",)

    def __init__(self, onnx_path: Path | str | bytes, threads: int = 1, block_elements: int = DEFAULT_BLOCK_ELEMENTS):
        super().__init__(block_elements)
        # onnxruntime writes plain-text lines of its own to stderr: errors only, and no telemetry
        # (which warns when it cannot store a device id, e.g. on a read-only filesystem), so that
        # the service's stderr stays one JSON object per line.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort  # service-side dependency only

        ort.set_default_logger_severity(3)
        ort.disable_telemetry_events()

        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only: onnxruntime writes its own (non-JSON) lines to stderr
        model = bytes(onnx_path) if isinstance(onnx_path, (bytes, bytearray)) else str(onnx_path)
        self.path = None if isinstance(model, bytes) else Path(model)
        self.threads = int(threads)
        self.session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        L = len(inputs) - 2
        if "x" not in inputs or "t" not in inputs or L < 1 or outputs != list(self._outputs):
            raise ValueError(
                f"{self.path or 'model'}: expected inputs x, t, s1..sL and outputs {list(self._outputs)}, "
                f"got inputs {sorted(inputs)} and outputs {outputs}"
            )
        self._s_names = [f"s{l}" for l in range(1, L + 1)]
        try:
            self.ranks = tuple(int(inputs[n][1]) for n in self._s_names)
        except (KeyError, TypeError, ValueError, IndexError):
            raise ValueError(
                f"{self.path or 'model'}: inputs s1..s{L} must have a static rank dimension, got {inputs}"
            ) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.width = int(meta.get("N", 1024))  # only used to size chunks
        self.ansatz = meta.get("ansatz")  # the LRNR form the graph computes (its family's u0)
        self.n_outputs = len(self._outputs)

    def _run(self, s32, x, t):
        feed = {"x": x, "t": t}
        feed.update(zip(self._s_names, s32))
        return self.session.run(None, feed)


class JetsEvaluator(FieldEvaluator):
    """(u, u_x, u_t, u_xx) from an exported ``lrnr_jets.onnx``; same interface, 4 results."""

    _outputs = ("u", "u_x", "u_t", "u_xx")


class NumpyFieldEvaluator(_Evaluator):
    """The same interface on ``fastlrnr.numerics.lrnr`` in float32 (fallback without onnxruntime).

    numpy's BLAS thread count is process-wide: set it at start-up (OMP_NUM_THREADS /
    OPENBLAS_NUM_THREADS); ``threads`` is recorded, not applied."""

    def __init__(
        self,
        weights: LRNRWeights,
        threads: int = 1,
        block_elements: int = DEFAULT_BLOCK_ELEMENTS,
        *,
        family: PdeFamily,
    ):
        super().__init__(block_elements)
        self.weights = weights.astype(np.float32)
        self.ranks = self.weights.ranks
        self.width = self.weights.width
        self.threads = int(threads)
        self.family = family
        self.ansatz = family.ansatz

    def _run(self, s32, x, t):
        return (lrnr_forward(self.weights, s32, x, t, self.family),)


class NumpyJetsEvaluator(NumpyFieldEvaluator):
    """(u, u_x, u_t, u_xx) by ``fastlrnr.numerics.lrnr.lrnr_jets`` in float32."""

    n_outputs = 4

    def _run(self, s32, x, t):
        return lrnr_jets(self.weights, s32, x, t, self.family)
