"""Classical solvers of the burgers family at matched accuracy, timed in one run (issue #27).

    OMP_NUM_THREADS=1 python benchmarks/burgers_baseline.py [--quick] [--repeats 3] [--sets 1000]
        [--sweep-budget 20] [--weno-max 4096] [--artifact artifacts/burgers]

Solvers (``benchmarks/burgers_solvers.py``, vectorised over parameter sets, one thread): a
finite-volume scheme (WENO5-Z + Rusanov flux, SSP-RK3) and a pseudo-spectral one (Fourier,
Hou–Li filtered quadratic term, ETDRK4 — the reference's method at low resolution).

Matched accuracy: the hard parameter sets are the 3×3×3 tensor grid β ∈ {1, 2, 3},
ν ∈ {1e-3, 3.16e-3, 1e-2} (log-spaced), ρ ∈ {0, 0.5, 1} — the corners, edge and face centres of
the domain. For each query shape's own sites, each solver's resolution for a target (1 %,
0.1 %) is its cheapest n on a ladder whose worst relative L2 error over the 27 sets is within
the target, against the verified reference (``solve_reference_batch`` at its default
resolution, 1e-5; cached in ``runs/burgers_baseline/``, as are the ladder's errors). The ladder
is walked upwards; at each n the three sets of the sharpest corner (β = 3, ν = 1e-3) are
solved first, and the other 24 only when those meet the target. In the check, rows of one β
are solved together (the steps a set gets when queried alone).

Query shapes: (a) one 256×100 field (x_j = 2πj/256, t = linspace(0, 1, 100)); (b) one query of
16 scattered points (x, t); (c) a sweep of ``--sets`` parameter sets × the same 16 points.
(a), (b): ``--repeats`` interleaved rounds, each on a new set drawn uniformly from the domain
(the same sets for every solver), medians. (c): one call on S sets, S chosen so that the call
takes about ``--sweep-budget`` seconds (from (b)'s time; at most ``--sets``), reported as
sets/s and the time ``--sets`` would take (a solver's cost is linear in its sets: rows are
marched ``CHUNK`` at a time, sorted by β).

``--weno-max``: the finite-volume ladder's finest n. Above 4096 a check of the 27 sets costs
minutes per shape (n = 8192: about 20 s per β = 3 set); where the ladder ends below a target,
the table says so and the sharpest-corner set alone at twice that n is timed instead, with its
error — a lower bound on the solver's cost at that target.

The service: ``service_paths`` is the place where the service's answers for the same shapes are
timed beside the classical solvers (each a callable mu (B, 3) → u at the shape's sites); with
``--artifact`` it loads a burgers model and times the in-process default path.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastlrnr.numerics import shock_reference as sr
from fastlrnr.numerics.families import BURGERS_FAMILY
from fastlrnr.numerics.families.burgers import BURGERS
from fastlrnr.numerics.grid import X_PERIOD, standard_grid
from fastlrnr.numerics.reference import solve_reference_batch

try:
    from benchmarks.burgers_solvers import METHODS, Method, Sites, solver
    from benchmarks.timing import interleaved, machine_line, median
except ModuleNotFoundError:  # run as a script: benchmarks/ is sys.path[0]
    from burgers_solvers import METHODS, Method, Sites, solver
    from timing import interleaved, machine_line, median

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "burgers_baseline"
HARD = np.array([(b, n, r) for b in (1.0, 2.0, 3.0) for n in (1e-3, 10**-2.5, 1e-2) for r in (0.0, 0.5, 1.0)])
CORNER = (HARD[:, 0] == 3.0) & (HARD[:, 1] == 1e-3)
TARGETS = (1e-2, 1e-3)
LADDERS = {
    "spectral": [256, 320, 384, 512, 640, 768, 1024, 1280, 1536, 2048, 2560, 3072, 4096, 5120, 6144, 8192, 10240],
    "weno5": [256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384],
}
FULL_LADDERS = {k: list(v) for k, v in LADDERS.items()}


# ---------------------------------------------------------------------- references and errors


def digest(*arrays: np.ndarray, extra: str = "") -> str:
    h = hashlib.sha1(extra.encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:12]


def reference_settings() -> str:
    """What the cached references depend on: the reference solver's resolution rule and steps."""
    rule = [sr.REFERENCE_TOLERANCE, sr.COURANT, sr.RULE_MARGIN, sr.MIN_POINTS, sr.DEFAULT_SUBSTEPS]
    return json.dumps([rule, sr.RULE_SHOCK[0].tolist(), sr.RULE_SHOCK[1].tolist(), sr.RULE_BREAKING[0].tolist()])


def reference_at(sites: Sites, mu: np.ndarray) -> np.ndarray:
    """The verified reference at the sites, (B, nt, nx) or (B, P); cached in ``CACHE``."""
    path = CACHE / f"reference_{digest(mu, sites.x, sites.t, extra=sites.kind + reference_settings())}.npy"
    if path.exists():
        return np.load(path)
    t, where = sites.times()
    t0 = time.perf_counter()
    u = solve_reference_batch(mu, sites.x, t, family=BURGERS_FAMILY)
    u = u if where is None else u[:, where, np.arange(sites.x.size)]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, u)
    print(
        f"  reference at {sites.kind} sites for {len(mu)} sets: {time.perf_counter() - t0:.0f} s (cached: {path.name})"
    )
    return u


def rel_l2(u: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Relative L2 error per row: (B, ...) → (B,)."""
    axes = tuple(range(1, ref.ndim))
    return np.sqrt(np.sum((u - ref) ** 2, axis=axes) / np.sum(ref**2, axis=axes))


class ErrorCache:
    """Per-row errors of (method, n) at a site set, on disk (``CACHE/ladder.json``)."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, list[float]] = json.loads(path.read_text()) if path.exists() else {}

    def errors(self, name: str, method: Method, n: int, sites: Sites, rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
        key = f"{name}|{n}|{digest(rows, sites.x, sites.t, extra=sites.kind + reference_settings())}"
        if key not in self.data:
            fn = solver(method, sites, n)
            got = np.empty((len(rows),) + ref.shape[1:])
            for beta in np.unique(rows[:, 0]):  # rows of one β together: the steps a set gets alone
                sel = rows[:, 0] == beta
                got[sel] = fn(rows[sel])
            self.data[key] = rel_l2(got, ref).tolist()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data))
        return np.array(self.data[key])


@dataclass
class Resolution:
    """A solver's resolution for a target at a shape's sites (n None: the ladder does not reach it)."""

    method: str
    target: float
    n: int | None
    worst: float  # worst error over the hard sets (at the ladder's last n when not reached)
    where: str  # the hard set of the worst error
    last: int = 0  # the last n checked


def cheapest(name: str, sites: Sites, ref: np.ndarray, cache: ErrorCache, ladder: list[int]) -> list[Resolution]:
    """Each target's cheapest n of the ladder (walked upwards; the sharpest corner first)."""
    method = METHODS[name]
    out, start = [], 0
    for target in TARGETS:
        res = Resolution(name, target, None, np.inf, "")
        for i in range(start, len(ladder)):
            n = ladder[i]
            errors = cache.errors(name, method, n, sites, HARD[CORNER], ref[CORNER])
            rows = HARD[CORNER]
            if errors.max() <= target:  # the corner meets it: the other sets decide
                errors = np.concatenate([errors, cache.errors(name, method, n, sites, HARD[~CORNER], ref[~CORNER])])
                rows = np.concatenate([rows, HARD[~CORNER]])
            k = int(np.argmax(errors))
            res = Resolution(name, target, None, float(errors[k]), ", ".join(f"{v:.3g}" for v in rows[k]), n)
            if errors[k] <= target:
                res.n, start = n, i
                break
        else:
            start = len(ladder)
            if res.last == 0:  # an easier target was not reached either
                res = dataclasses.replace(out[-1], target=target)
        out.append(res)
    return out


# ---------------------------------------------------------------------- the service

ServicePath = Callable[[np.ndarray], np.ndarray]


def service_paths(args: argparse.Namespace, sites: Sites) -> dict[str, ServicePath]:
    """THE SERVICE, timed beside the classical solvers: {label: callable mu (B, 3) → u at the
    sites, shaped as the reference ((B, nt, nx) for a grid, (B, P) for points)}. Each callable
    returned here gets its worst error over the hard sets and is timed in the same rounds.

    With ``--artifact DIR`` (a built burgers model): the in-process default path
    (``ModelRuntime.solve``, as ``classical_baseline.in_process`` times it for cdr). Without it:
    none (no burgers model is trained yet)."""
    if not args.artifact:
        return {}
    try:
        from benchmarks.classical_baseline import in_process
    except ModuleNotFoundError:
        from classical_baseline import in_process
    from fastlrnr.server.engine.solver import ModelRuntime

    if "runtime" not in args.__dict__:
        args.runtime = ModelRuntime.load(Path(args.artifact))
        args.runtime.warm()
    return {"service, in-process default": in_process(args.runtime, sites, "default", {})}


# ---------------------------------------------------------------------- timing


@dataclass
class Shape:
    label: str
    sites: Sites
    sweep: bool  # (c): many sets per call
    resolutions: list[Resolution] = field(default_factory=list)
    paths: dict[str, tuple[Callable, float, str]] = field(default_factory=dict)  # label → (fn, worst error, note)
    targets: dict[str, float | None] = field(default_factory=dict)  # label → its target (None: the service)


def build_paths(shape: Shape, args: argparse.Namespace, ref: np.ndarray) -> None:
    for res in shape.resolutions:
        method = METHODS[res.method]
        pct = f"{100 * res.target:g} %"
        if res.n is not None:
            label = f"{res.method} at {pct} (n {res.n})"
            shape.paths[label] = (solver(method, shape.sites, res.n), res.worst, "")
            shape.targets[label] = res.target
        else:  # the ladder's next n on the sharpest corner's sets alone: a lower bound on the cost
            probe = next((n for n in FULL_LADDERS[res.method] if n > res.last), 2 * res.last)
            label = f"{res.method} at {pct}: corner only, n {probe}"
            note = f"the ladder ends at n {res.last} (worst {res.worst:.2e} at ({res.where})): a lower bound"
            shape.paths[label] = (solver(method, shape.sites, probe), np.nan, note)
            shape.targets[label] = res.target
    for label, fn in service_paths(args, shape.sites).items():
        add_service(shape, label, fn, ref)


def add_service(shape: Shape, label: str, fn: ServicePath, ref: np.ndarray) -> float:
    """Time ``fn`` (mu (B, 3) → u at ``shape.sites``) beside the classical solvers of ``shape``:
    its worst relative L2 error over the hard sets against ``ref`` (returned) goes in the table
    and it runs in the same interleaved rounds (or sweep)."""
    worst = float(rel_l2(fn(HARD), ref).max())
    shape.paths[label] = (fn, worst, "")
    shape.targets[label] = None
    return worst


def corner_probe_error(shape: Shape, ref: np.ndarray) -> None:
    """The corner-only paths' error on the sharpest corner's three sets (filled in place; a
    probe shared by both targets is solved once)."""
    seen: dict[str, float] = {}
    for label, (fn, worst, note) in list(shape.paths.items()):
        if note and np.isnan(worst) and shape.targets[label] is not None:
            key = label.split(" at ")[0] + label.split(":")[-1]
            if key not in seen:
                seen[key] = float(rel_l2(fn(HARD[CORNER]), ref[CORNER]).max())
            shape.paths[label] = (fn, seen[key], note + f"; its corner error {seen[key]:.2e}")


def time_single(shape: Shape, queries: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds per one-set query, interleaved rounds on the same sets."""
    counter = dict.fromkeys(shape.paths, 0)

    def call(label: str, fn: Callable) -> Callable[[], object]:
        def go() -> object:
            i = counter[label]
            counter[label] += 1
            return fn(queries[i % len(queries)][None])

        return go

    corner_only = {label for label, (_, _, note) in shape.paths.items() if note}
    fns = {label: call(label, fn) for label, (fn, _, _) in shape.paths.items() if label not in corner_only}
    times = {label: median(v) for label, v in interleaved(fns, repeats, warmup=1).items()}
    probes: dict[str, float] = {}
    for label in corner_only:  # one timed call on the sharpest set (the lower bound's cost), once per probe
        key = label.split(" at ")[0] + label.split(":")[-1]
        if key not in probes:
            t0 = time.perf_counter()
            shape.paths[label][0](HARD[CORNER][:1])
            probes[key] = time.perf_counter() - t0
        times[label] = probes[key]
    return times


def time_sweep(shape: Shape, queries: np.ndarray, per_set: dict[str, float], budget: float, sets: int):
    """(seconds, sets timed) per path: one call on S sets, S from the one-set time and the budget."""
    out = {}
    for label, (fn, _, note) in shape.paths.items():
        if note:
            out[label] = (per_set[label], 1)
            continue
        count = int(min(sets, max(1, round(budget / max(per_set[label], 1e-6)))))
        t0 = time.perf_counter()
        fn(queries[:count])
        out[label] = (time.perf_counter() - t0, count)
    return out


def print_table(shape: Shape, times: dict[str, float], sweep: dict | None, sets: int) -> None:
    print(f"\n{shape.label}")
    unit = "sets/s" if sweep else "ms / query"
    extra = f" {'sets timed':>10} {f'{sets} sets, s':>13}" if sweep else ""
    print(f"  {'path':<44} {'worst error':>11} {unit:>13}{extra} {'× spectral':>11}")
    for target in (*TARGETS, None):
        rows = [p for p in shape.paths if shape.targets[p] == target]
        base = next((p for p in rows if p.startswith("spectral") and "corner only" not in p), None)
        for label in rows:
            _, worst, note = shape.paths[label]
            if sweep:
                seconds, count = sweep[label]
                rate = count / seconds
                value = f"{('≤ ' if note else '') + f'{rate:.2f}':>13} {count:>10} {sets / rate:>13.1f}"
                ratio = (sweep[base][1] / sweep[base][0]) / rate if base else np.nan
            else:
                value = f"{('≥ ' if note else '') + f'{1e3 * times[label]:.1f}':>13}"
                ratio = times[label] / times[base] if base else np.nan
            print(f"  {label:<44} {worst:>11.2e} {value} {ratio:>11.2f}")
            if note:
                print(f"    ({note})")
    for res in shape.resolutions:
        if res.n is not None:
            print(f"  {res.method} at {100 * res.target:g} %: n {res.n}, worst {res.worst:.2e} at ({res.where})")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the ν = 1e-2 face only, short ladders, 2 rounds (smoke run)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds of (a), (b)")
    ap.add_argument("--sets", type=int, default=1000, help="parameter sets of (c)")
    ap.add_argument("--sweep-budget", type=float, default=20.0, help="seconds one (c) call should take")
    ap.add_argument("--weno-max", type=int, default=4096, help="the finite-volume ladder's finest n")
    ap.add_argument("--artifact", default=None, help="a built burgers model to time beside (service_paths)")
    ap.add_argument("--seed", type=int, default=7)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    global HARD, CORNER
    args = parse(argv)
    t_start = time.perf_counter()
    print(machine_line())
    if args.quick:
        keep = HARD[:, 1] == 1e-2
        HARD, CORNER = HARD[keep], (HARD[keep][:, 0] == 3.0)
        LADDERS["spectral"], LADDERS["weno5"] = [256, 512, 1024, 2048], [256, 512, 1024]
        args.repeats, args.sets = 2, 32
    LADDERS["weno5"] = [n for n in LADDERS["weno5"] if n <= args.weno_max]
    rng = np.random.default_rng(args.seed)
    x, t = standard_grid()
    points = Sites("points", rng.uniform(0.0, X_PERIOD, 16), rng.uniform(0.0, 1.0, 16))
    shapes = [
        Shape("(a) one 256×100 field", Sites("grid", x, t), False),
        Shape("(b) one query of 16 scattered points", points, False),
        Shape(f"(c) {args.sets} parameter sets × the same 16 points", points, True),
    ]
    queries = BURGERS.sample(max(args.sets, args.repeats + 1), rng)
    print(f"hard sets: {len(HARD)} (β × ν × ρ); references at tolerance {sr.REFERENCE_TOLERANCE:g}")
    cache = ErrorCache(CACHE / "ladder.json")
    refs = {}
    for shape in shapes[:2]:
        refs[shape.sites.kind] = ref = reference_at(shape.sites, HARD)
        for name in ("spectral", "weno5"):
            t0 = time.perf_counter()
            shape.resolutions += cheapest(name, shape.sites, ref, cache, LADDERS[name])
            print(f"  {shape.label[:3]} {name} ladder: {time.perf_counter() - t0:.0f} s")
    shapes[2].resolutions = shapes[1].resolutions
    print(f"accuracy part: {time.perf_counter() - t_start:.0f} s")

    per_set = {}
    for shape in shapes:
        if shape.sweep:  # the same sites and resolutions as (b)
            shape.paths, shape.targets = dict(shapes[1].paths), dict(shapes[1].targets)
        else:
            build_paths(shape, args, refs[shape.sites.kind])
            corner_probe_error(shape, refs[shape.sites.kind])
        if shape.sweep:
            print_table(shape, {}, time_sweep(shape, queries, per_set, args.sweep_budget, args.sets), args.sets)
        else:
            times = time_single(shape, queries, args.repeats)
            if shape.sites.kind == "points":
                per_set = times
            print_table(shape, times, None, args.sets)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
