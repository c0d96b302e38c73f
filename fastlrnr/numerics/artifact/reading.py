"""Reading: verify an artifact's files against its manifest and build the model objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact.format import MANIFEST, NPZ_FILES, OPTIONAL_NPZ_FILES, ArtifactError
from fastlrnr.numerics.artifact.manifest import Dimensions, Manifest, read_manifest
from fastlrnr.numerics.artifact.npz import parse_npz
from fastlrnr.numerics.correction import CorrectionSpec, ErrorCorrection
from fastlrnr.numerics.error_estimate import AprioriMap, ErrorModel
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseModel, FastPhaseSettings
from fastlrnr.numerics.fastlrnr import ReducedOperators
from fastlrnr.numerics.grid import interior_points
from fastlrnr.numerics.hypernet import HyperWeights
from fastlrnr.numerics.lrnr import LRNRWeights
from fastlrnr.numerics.site_envelope import SiteEnvelope


@dataclass(frozen=True, eq=False)
class Artifact:
    """A loaded, verified artifact. ``lrnr`` is float64; ``onnx`` maps file name → path;
    ``reduced`` the FastLRNR; ``fast_phase`` the default settings; ``error_model`` the
    calibrated error estimate of uncorrected answers, ``correction`` the linearised
    correction (grids, default, its own error model); ``served_domain`` where the model
    meets its target; ``extrapolation_domain`` how far beyond it answers are given
    (``fastlrnr.numerics.extrapolation_box``)."""

    name: str
    version: str
    manifest: dict
    domain: Domain
    test_domain: Domain
    served_domain: Domain
    family: PdeFamily
    lrnr: LRNRWeights
    hyper: HyperWeights
    reduced: ReducedOperators
    fast_phase: FastPhaseSettings
    error_model: ErrorModel
    correction: CorrectionSpec
    onnx: dict[str, Path]
    sha256: str
    directory: Path
    a_priori: AprioriMap | None = None  # the hypernetwork's a-priori error map (schema 3 artifacts may lack it)
    envelope: SiteEnvelope | None = None  # the pointwise bound of the uncorrected answer's error (optional)
    extrapolation_domain: Domain | None = None  # where answers outside the served domain are given (None: none)
    extrapolation_stored: bool = False  # the manifest stores that box (else the legacy rule's)

    @property
    def dimensions(self) -> Dimensions:
        """The manifest's ``dimensions``, checked."""
        return Dimensions.from_dict(self.directory / MANIFEST, self.manifest["dimensions"])

    def correction_model(self, dtype=np.float32) -> ErrorCorrection:
        """The correction at the manifest's grids."""
        return self.correction.model(self.lrnr, dtype, family=self.family)

    def fast_phase_model(self, dtype=np.float32, collocation: int | None = None) -> FastPhaseModel:
        """The fast phase's per-model state at the manifest's collocation points and check
        grid (``collocation``: another number of collocation points, exact backend only)."""
        fp = self.manifest["fast_phase"]
        seed = fp["collocation"]["seed"]
        check = (fp["check"]["nx"], fp["check"]["nt"])
        if collocation is not None:
            return FastPhaseModel(self.lrnr, None, (collocation, seed), check, dtype, family=self.family)
        points = fp["collocation"]["points"]
        return FastPhaseModel(self.lrnr, self.reduced, (points, seed), check, dtype, family=self.family)


def verify_artifact(directory: Path | str) -> dict:
    """Run every check of :func:`load_artifact` without building model objects.

    Returns the manifest; raises ArtifactError naming the file and the problem."""
    return read_verified(Path(directory))[0].raw


def load_artifact(directory: Path | str) -> Artifact:
    """Verify and load an artifact; raises ArtifactError naming the file and the problem."""
    directory = Path(directory)
    m, arrays = read_verified(directory)
    try:
        lrnr = LRNRWeights.from_arrays(arrays["lrnr.npz"]).astype(np.float64)
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(directory / "lrnr.npz", f"cannot build the LRNR: {exc}") from None
    try:
        hyper = HyperWeights.from_arrays({k: np.asarray(a, np.float64) for k, a in arrays["hyper.npz"].items()})
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(directory / "hyper.npz", f"cannot build the hypernetwork: {exc}") from None
    reduced = _reduced_operators(directory / "fastlrnr.npz", arrays["fastlrnr.npz"], m.dimensions)
    x, t = interior_points(*m.collocation)
    if reduced.x.shape != x.shape or not (np.allclose(reduced.x, x) and np.allclose(reduced.t, t)):
        raise ArtifactError(
            directory / "fastlrnr.npz",
            "the reduced operators were not built at the collocation points the manifest names "
            f"({m.raw['fast_phase']['collocation']})",
        )
    return Artifact(
        name=m.name,
        version=m.version,
        manifest=m.raw,
        domain=m.domain,
        test_domain=m.test_domain,
        served_domain=m.served_domain,
        family=m.family,
        lrnr=lrnr,
        hyper=hyper,
        reduced=reduced,
        fast_phase=m.fast_phase,
        error_model=m.error_model,
        correction=m.correction,
        onnx={f: directory / f for f in m.files if f.endswith(".onnx")},
        sha256=m.sha256,
        directory=directory,
        a_priori=m.a_priori,
        envelope=_envelope(directory, m, arrays),
        extrapolation_domain=m.extrapolation_domain,
        extrapolation_stored=m.extrapolation_stored,
    )


def _envelope(directory: Path, m: Manifest, arrays: dict[str, dict[str, np.ndarray]]) -> SiteEnvelope | None:
    """The site envelope when the manifest describes one and lists its file; None when neither."""
    meta = m.raw["error_estimate"].get("site_envelope")
    if meta is None and "envelope.npz" not in arrays:
        return None
    if meta is None or "envelope.npz" not in arrays:
        raise ArtifactError(directory / MANIFEST, "error_estimate.site_envelope and envelope.npz come together")
    try:
        env = SiteEnvelope.from_parts(meta, arrays["envelope.npz"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(directory / "envelope.npz", f"cannot build the site envelope: {exc}") from None
    if len(env.axes) != len(m.domain.params):
        raise ArtifactError(
            directory / MANIFEST, f"site_envelope has {len(env.axes)} axes, the family {len(m.domain.params)}"
        )
    return env


def list_artifacts(root: Path | str) -> list[Path]:
    """Sorted subdirectories of ``root`` that hold a manifest.json (unverified)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def read_verified(directory: Path) -> tuple[Manifest, dict[str, dict[str, np.ndarray]]]:
    """The checked manifest and the arrays of every npz file (file name → arrays), after
    each listed file's size and sha256 and the arrays' shapes were checked."""
    m = read_manifest(directory)
    contents = {fname: _read_listed(directory / fname, entry) for fname, entry in m.files.items()}
    present = [f for f in OPTIONAL_NPZ_FILES if f in m.files]
    arrays = {fname: parse_npz(directory / fname, contents[fname]) for fname in (*NPZ_FILES, *present)}
    _check_lrnr_arrays(directory / "lrnr.npz", arrays["lrnr.npz"], m.dimensions)
    _check_hyper_arrays(directory / "hyper.npz", arrays["hyper.npz"], m.dimensions, m.domain)
    return m, arrays


def _read_listed(path: Path, entry: dict) -> bytes:
    """A file the manifest lists, checked against its size and sha256."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(path, "listed in manifest.json but missing") from None
    except OSError as exc:
        raise ArtifactError(path, f"unreadable: {exc}") from None
    if len(data) != entry["bytes"]:
        raise ArtifactError(path, f"size mismatch: manifest says {entry['bytes']} bytes, file has {len(data)}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ArtifactError(path, f"sha256 mismatch: manifest says {entry['sha256']}, file has {digest}")
    return data


def _reduced_operators(path: Path, arrays: dict[str, np.ndarray], dims: Dimensions) -> ReducedOperators:
    """The FastLRNR; its ranks and EIM rank must agree with the manifest's dimensions."""
    try:
        reduced = ReducedOperators.from_arrays(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ArtifactError(path, f"cannot build the reduced operators: {type(exc).__name__}: {exc}") from None
    if tuple(reduced.ranks) != dims.ranks:
        raise ArtifactError(
            path, f"reduced operators have ranks {list(reduced.ranks)}, the manifest says {list(dims.ranks)}"
        )
    if dims.eim_rank is not None and reduced.n != dims.eim_rank:
        raise ArtifactError(path, f"reduced operators have EIM rank {reduced.n}, the manifest says {dims.eim_rank}")
    return reduced


def _expect_shapes(path: Path, arrays: dict[str, np.ndarray], expected: dict[str, tuple], what: str) -> None:
    if set(arrays) != set(expected):
        extra, missing = sorted(set(arrays) - set(expected)), sorted(set(expected) - set(arrays))
        raise ArtifactError(path, f"{what} arrays: missing {missing}, unexpected {extra}")
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise ArtifactError(
                path, f"array {key!r}: expected shape {shape} from the manifest dimensions, got {arrays[key].shape}"
            )
        if arrays[key].dtype.kind != "f":
            raise ArtifactError(path, f"array {key!r}: expected floating point, got {arrays[key].dtype}")


def _check_lrnr_arrays(path: Path, arrays: dict[str, np.ndarray], dims: Dimensions) -> None:
    N = dims.N
    expected: dict[str, tuple] = {"A": (N, 3), "a": (N,), "w": (N,), "c": ()}
    for l, k in enumerate(dims.ranks, start=1):
        expected.update({f"U{l}": (N, k), f"V{l}": (N, k), f"b{l}": (N,)})
    _expect_shapes(path, arrays, expected, "LRNR")


def _check_hyper_arrays(path: Path, arrays: dict[str, np.ndarray], dims: Dimensions, domain: Domain) -> None:
    K, p = dims.hyper_width, len(domain.params)
    expected: dict[str, tuple] = {
        "W1": (K, p),
        "W2": (K, K),
        "W3": (K, K),
        "c1": (K,),
        "c2": (K,),
        "c3": (K,),
        "low": (p,),
        "high": (p,),
    }
    for l, k in enumerate(dims.ranks, start=1):
        expected.update({f"H{l}": (k, K), f"e{l}": (k,)})
    _expect_shapes(path, arrays, expected, "hypernetwork")
    if not (np.allclose(arrays["low"], domain.low) and np.allclose(arrays["high"], domain.high)):
        raise ArtifactError(
            path,
            f"normalisation bounds low={arrays['low'].tolist()}, high={arrays['high'].tolist()} "
            f"differ from the manifest domain {domain.name!r} "
            f"({domain.low.tolist()}, {domain.high.tolist()})",
        )
