"""The field stage against its floor: what the LRNR needs (matmul FLOPs, tanh evaluations) and
what bare float32 numpy does with exactly that work, timed in one run.

    OMP_NUM_THREADS=1 python benchmarks/field_floor.py [--quick] [--repeats 9] [--artifact artifacts/cdr]

Cases: (i) the 256×100 uniform grid for one parameter set (``evaluate_grid``); (ii) ``--sets``
(1000) sets × 16 scattered points (``evaluate``). Counts follow ``fastlrnr.numerics.lrnr`` from the weights'
shapes (N, ranks k_l): per point and set, 2·(3N + Σ_l 2·N·k_l + N) matmul FLOPs and (L + 1)·N
tanh; across sets on the same points h_0 = tanh(A z + a) and U_1ᵀ h_0 do not depend on the
coefficients, so they are needed once per point (the ONNX graph computes them once).

Timed in interleaved rounds (medians): the evaluator the service uses
(``fastlrnr.server.engine.field.FieldEvaluator``, the artifact's ``lrnr.onnx``, one thread); a bare numpy
float32 matmul of exactly those shapes (points as rows, whole and in the evaluator's chunks;
the faster is the achievable rate); a bare numpy float32 tanh of that many values (in place,
in cache-sized blocks). onnxruntime's profiler splits the evaluator's own time into MatMul,
Tanh and the rest (a separate profiling session, same options), so the matmul part's
GFLOP/s can be set against the bare rate (target: ≥ 60%).

Then candidate changes to the evaluator (chunk size, thread count, row grouping), each timed in
the same rounds as the current one, its values checked equal to the current evaluator's.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact import load_artifact
from fastlrnr.numerics.grid import X_PERIOD, standard_grid
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.server.engine.field import FieldEvaluator

try:
    from benchmarks.timing import interleaved, machine_line, median
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from timing import interleaved, machine_line, median

ROOT = Path(__file__).resolve().parents[1]
TANH_BLOCK = 1 << 18  # floats per in-place tanh call: the evaluator's hidden-state block


@dataclass(frozen=True)
class Work:
    """What one field evaluation needs: ``flops`` (matmul, 2 per multiply-add), ``tanh`` (evaluations),
    and the matmul shapes (m, k, n) in the points-as-rows layout of ``fastlrnr.numerics.lrnr``."""

    flops: int
    tanh: int
    shapes: tuple[tuple[int, int, int], ...]


def lrnr_work(weights: LRNRWeights, points: int, sets: int) -> Work:
    """The matmul FLOPs and tanh count of ``sets`` coefficient sets on the same ``points`` points.

    h_0 and U_1ᵀ h_0 are shared by the sets; everything after the first coefficient is per set."""
    N, ks = weights.width, weights.ranks
    P, M = points, points * sets
    shapes = [(P, 3, N), (P, N, ks[0]), (M, ks[0], N)]  # embedding; U_1ᵀ h_0 (shared); V_1 (s_1 ⊙ ·)
    for k in ks[1:]:
        shapes += [(M, N, k), (M, k, N)]
    shapes.append((M, N, 1))  # wᵀ h_L
    flops = sum(2 * m * k * n for m, k, n in shapes)
    return Work(flops, P * N + M * N * len(ks), tuple(shapes))


def matmul_floor(work: Work, chunk: int, rng: np.random.Generator) -> Callable[[], None]:
    """Bare float32 matmuls of exactly ``work.shapes``, ``chunk`` rows at a time (operands made once)."""
    ops = []
    for m, k, n in work.shapes:
        rows = min(m, chunk)
        a = rng.standard_normal((rows, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((rows, n), np.float32)
        ops.append((a, b, out, m))

    def run() -> None:
        for a, b, out, m in ops:
            rows = a.shape[0]
            for _ in range(m // rows):
                np.matmul(a, b, out=out)
            if m % rows:
                np.matmul(a[: m % rows], b, out=out[: m % rows])

    return run


def tanh_floor(count: int, rng: np.random.Generator) -> Callable[[], None]:
    """A bare float32 tanh of ``count`` values, in place, ``TANH_BLOCK`` at a time."""
    block = rng.standard_normal(min(count, TANH_BLOCK), dtype=np.float32)
    out = np.empty_like(block)

    def run() -> None:
        full, rest = divmod(count, block.size)
        for _ in range(full):
            np.tanh(block, out=out)
        if rest:
            np.tanh(block[:rest], out=out[:rest])

    return run


def profile_split(path: Path, evaluate: Callable[[FieldEvaluator], object], calls: int) -> dict[str, float]:
    """Seconds per call spent in MatMul, Tanh and other kernels, from onnxruntime's profiler on a
    session with the evaluator's options (one thread)."""
    import onnxruntime as ort

    ev = FieldEvaluator(path, threads=1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "field_floor")
        ev.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        evaluate(ev)  # warm-up, profiled too: subtracted below by counting calls
        for _ in range(calls):
            evaluate(ev)
        events = json.loads(Path(ev.session.end_profiling()).read_text())
    split = {"MatMul": 0.0, "Tanh": 0.0, "other": 0.0}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "")
            split[op if op in split else "other"] += e["dur"] * 1e-6
    return {k: v / (calls + 1) for k, v in split.items()}


@dataclass
class Case:
    label: str
    points: int
    sets: int
    evaluate: Callable[[FieldEvaluator], np.ndarray]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", default=str(ROOT / "artifacts" / "cdr"))
    ap.add_argument("--quick", action="store_true", help="fewer rounds (< 1 min)")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default 9; quick 3)")
    ap.add_argument("--sets", type=int, default=1000, help="coefficient sets of case (ii)")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    art = load_artifact(args.artifact)
    path = Path(args.artifact) / "lrnr.onnx"
    rng = np.random.default_rng(args.seed)
    big = rng.random((2048, 2048), dtype=np.float32)
    square = interleaved({"mm": lambda: big @ big}, 3)["mm"]
    square_rate = 2 * 2048**3 / median(square) / 1e9
    w = art.lrnr
    print(f"{machine_line()}; {repeats} interleaved rounds, medians")
    print(f"{art.name}: N {w.width}, ranks {w.ranks}; numpy float32 matmul 2048³ here: {square_rate:.0f} GFLOP/s")

    x_axis, t_axis = standard_grid()
    lo, hi = art.domain.low, art.domain.high
    mu = rng.uniform(lo, hi, (args.sets, 3))
    s_all = [sl.astype(np.float32) for sl in hyper_forward(art.hyper, mu)]
    s_one = [sl[0] for sl in s_all]
    xp, tp = rng.uniform(0.0, X_PERIOD, 16), rng.uniform(0.0, 1.0, 16)
    cases = [
        Case(
            "(i) 256×100 grid, 1 set", x_axis.size * t_axis.size, 1, lambda ev: ev.evaluate_grid(s_one, x_axis, t_axis)
        ),
        Case(f"(ii) {args.sets} sets × 16 points", 16, args.sets, lambda ev: ev.evaluate(s_all, xp, tp)),
    ]
    current = FieldEvaluator(path, threads=1)
    for case in cases:
        work = lrnr_work(w, case.points, case.sets)
        chunk = current.chunk_points(case.sets) * case.sets  # rows of one evaluator run, points × sets
        fns = {
            "evaluator": lambda case=case: case.evaluate(current),
            "matmul, whole": matmul_floor(work, max(m for m, _, _ in work.shapes), rng),
            "matmul, chunked": matmul_floor(work, chunk, rng),
            "tanh": tanh_floor(work.tanh, rng),
        }
        t = {k: median(v) for k, v in interleaved(fns, repeats).items()}
        mm = min(t["matmul, whole"], t["matmul, chunked"])
        rate = work.flops / mm / 1e9
        split = profile_split(path, case.evaluate, max(2, repeats // 2))
        share = {k: v / sum(split.values()) for k, v in split.items()}  # of the evaluator's kernel time
        ev_t, floor = t["evaluator"], mm + t["tanh"]
        part_mm, part_tanh = share["MatMul"] * ev_t, share["Tanh"] * ev_t
        print(f"\n{case.label}: {work.flops / 1e9:.3f} GFLOP of matmul, {work.tanh / 1e6:.2f} M tanh")
        print(f"  {'':<44} {'ms':>8}  rate")
        print(
            f"  {'evaluator (onnxruntime, 1 thread)':<44} {1e3 * ev_t:>8.2f}  {work.flops / ev_t / 1e9:.1f} GFLOP/s "
            f"overall: {work.flops / ev_t / 1e9 / rate:.0%} of the bare rate, "
            f"{work.flops / ev_t / 1e9 / square_rate:.0%} of 2048³"
        )
        print(
            f"  {'  its MatMul kernels (' + format(share['MatMul'], '.0%') + ' of its kernel time)':<44} "
            f"{1e3 * part_mm:>8.2f}  {work.flops / part_mm / 1e9:.1f} GFLOP/s: "
            f"{work.flops / part_mm / 1e9 / rate:.0%} of the bare rate, {work.flops / part_mm / 1e9 / square_rate:.0%} "
            "of 2048³"
        )
        print(
            f"  {'  its Tanh kernels (' + format(share['Tanh'], '.0%') + ')':<44} {1e3 * part_tanh:>8.2f}  "
            f"{work.tanh / part_tanh / 1e9:.2f} G tanh/s"
        )
        print(
            f"  {'  the rest: Pad, Mul, Add, ... (' + format(share['other'], '.0%') + ')':<44} "
            f"{1e3 * share['other'] * ev_t:>8.2f}"
        )
        print(
            f"  {'bare numpy matmul of these shapes':<44} {1e3 * mm:>8.2f}  {rate:.1f} GFLOP/s "
            f"(whole {1e3 * t['matmul, whole']:.2f} ms, in the evaluator's chunks {1e3 * t['matmul, chunked']:.2f} ms)"
        )
        tanh_rate = work.tanh / t["tanh"] / 1e9
        print(f"  {'bare numpy tanh of that many values':<44} {1e3 * t['tanh']:>8.2f}  {tanh_rate:.2f} G tanh/s")
        print(
            f"  {'floor: bare matmul + bare tanh':<44} {1e3 * floor:>8.2f}  evaluator / floor {ev_t / floor:.2f}; "
            f"bare matmul / evaluator {mm / ev_t:.0%}, bare tanh / evaluator {t['tanh'] / ev_t:.0%}"
        )
    candidates(path, cases, current, repeats)


def candidates(path: Path, cases: list[Case], current: FieldEvaluator, repeats: int) -> None:
    """Changes that keep the answer, timed against the current evaluator in the same rounds."""
    options = {
        "current": current,
        "block 2^16": FieldEvaluator(path, threads=1, block_elements=1 << 16),
        "block 2^17": FieldEvaluator(path, threads=1, block_elements=1 << 17),
        "block 2^19": FieldEvaluator(path, threads=1, block_elements=1 << 19),
        "block 2^20": FieldEvaluator(path, threads=1, block_elements=1 << 20),
        "2 intra-op threads": FieldEvaluator(path, threads=2),
    }
    print("\ncandidates, same rounds (time / current; max |difference| from the current values)")
    print("  (block size does not change case (ii): 256-point chunks either way, so its ratios there show the noise)")
    for case in cases:
        want = case.evaluate(current)
        fns = {name: (lambda ev=ev, case=case: case.evaluate(ev)) for name, ev in options.items()}
        t = {k: median(v) for k, v in interleaved(fns, repeats).items()}
        row = ", ".join(
            f"{name} {t[name] / t['current']:.3f} ({float(np.abs(case.evaluate(ev) - want).max()):.0e})"
            for name, ev in options.items()
            if name != "current"
        )
        print(f"  {case.label}: current {1e3 * t['current']:.2f} ms; {row}")


if __name__ == "__main__":
    main()
