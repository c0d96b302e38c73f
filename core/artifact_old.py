"""The artifact format: a self-describing model directory ``artifacts/<model>/``.

Layout (every file except the manifest is listed in it with its sha256 and size)::

    manifest.json     schema_version, name, version, created, pde, ansatz, domain,
                      test_domain, served_domain, dimensions, training, eim, fast_phase,
                      error_estimate, quality, files
    lrnr.npz          LRNRWeights.to_arrays()           (A, a, U1.., V1.., b1.., w, c)
    hyper.npz         HyperWeights.to_arrays()          (W1..W3, c1..c3, H1.., e1.., low, high)
    fastlrnr.npz      the FastLRNR at the collocation points (core.fastlrnr.ReducedOperators)
    *.onnx            exported graphs, opaque bytes (``lrnr.onnx``, ``lrnr_jets.onnx``)

``dimensions`` = {N, L, ranks: [k_1..k_L], K_max, hyper_width, eim_rank}.
``served_domain``: the box (inside ``domain``) where the model meets its accuracy target.
``fast_phase`` = {collocation: {points, seed}, check: {nx, nt} (the error proxy's grid), default: the
FastPhaseSettings the model serves by default, measured: how they were chosen}.
``error_estimate`` = {model: the ErrorModel (core.error_estimate), how it was calibrated and
its measured quality}.
``correction`` = {nx, nt, coarse: {nx, nt}, default, error_model, ...}: the linearised
correction (core.correction) and the calibration of its two-grid difference.

Nothing is ever unpickled: npz files are parsed with ``allow_pickle=False`` from the
same bytes whose checksum was verified, and only files listed in the manifest are read.
Any problem — missing or non-JSON manifest, unsupported schema, foreign ansatz or PDE,
missing file, wrong size or sha256, a damaged zip, an object array, a shape that
disagrees with ``dimensions``, a non-finite value — raises :class:`ArtifactError`
naming the file and the problem. The checksums protect against damage, not forgery:
whoever can write the directory can rewrite the manifest too.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.correction import CorrectionSpec, ErrorCorrection
from core.error_estimate import AprioriMap, ErrorModel
from core.families import DEFAULT_FAMILY, FAMILIES
from core.fast_phase import FastPhaseModel, FastPhaseSettings
from core.fastlrnr import ReducedOperators
from core.hypernet import HyperWeights
from core.lrnr import ANSATZ, LRNRWeights
from core.pde import Domain, interior_points

SCHEMA_VERSION = 3
MANIFEST = "manifest.json"
PDE = FAMILIES[DEFAULT_FAMILY].equation
NPZ_FILES = ("lrnr.npz", "hyper.npz", "fastlrnr.npz")
ONNX_FILES = ("lrnr.onnx", "lrnr_jets.onnx")  # the usual graphs; any other *.onnx may be listed too
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_REQUIRED_KEYS = (
    "schema_version",
    "name",
    "version",
    "created",
    "pde",
    "ansatz",
    "domain",
    "test_domain",
    "served_domain",
    "dimensions",
    "training",
    "eim",
    "fast_phase",
    "error_estimate",
    "correction",
    "quality",
    "files",
)


class ArtifactError(ValueError):
    """An artifact is unreadable or inconsistent; ``path`` is the file at fault."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


@dataclass(frozen=True, eq=False)
class Artifact:
    """A loaded, verified artifact. ``lrnr`` is float64; ``onnx`` maps file name → path;
    ``reduced`` the FastLRNR; ``fast_phase`` the default settings; ``error_model`` the
    calibrated error estimate of uncorrected answers, ``correction`` the linearised
    correction (grids, default, its own error model); ``served_domain`` where the model
    meets its target."""

    name: str
    version: str
    manifest: dict
    domain: Domain
    test_domain: Domain
    served_domain: Domain
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

    @property
    def dimensions(self) -> dict:
        return self.manifest["dimensions"]

    def correction_model(self, dtype=np.float32) -> ErrorCorrection:
        """The linearised correction at the manifest's grids."""
        return self.correction.model(self.lrnr, dtype)

    def fast_phase_model(self, dtype=np.float32, collocation: int | None = None) -> FastPhaseModel:
        """The fast phase's per-model state at the manifest's collocation points and check
        grid (``collocation``: another number of collocation points, exact backend only)."""
        fp = self.manifest["fast_phase"]
        seed = fp["collocation"]["seed"]
        check = (fp["check"]["nx"], fp["check"]["nt"])
        if collocation is not None:
            return FastPhaseModel(self.lrnr, None, (collocation, seed), check, dtype)
        return FastPhaseModel(self.lrnr, self.reduced, (fp["collocation"]["points"], seed), check, dtype)


# --------------------------------------------------------------------------- writing


def write_artifact(
    directory: Path | str,
    *,
    name: str,
    version: str,
    domain: Domain,
    test_domain: Domain,
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    reduced_arrays: Mapping[str, np.ndarray],
    onnx_files: Mapping[str, bytes],
    training: dict,
    eim: dict,
    quality: dict,
    fast_phase: dict,
    served_domain: Domain,
    error_estimate: dict,
    correction: dict,
    eim_rank: int | None = None,
    k_max: int | None = None,
    created: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete artifact to ``directory`` atomically and return its path.

    Files are written to a temporary sibling directory, verified with the loader's own
    checks, then renamed into place; a failure leaves no partial artifact behind.
    ``reduced_arrays`` is a flat {name: ndarray} (e.g. ``ReducedOperators.to_arrays()``;
    an object with ``to_arrays()`` is accepted too). ``eim_rank`` defaults to
    ``eim["n"]``; ``k_max`` (the rank before truncation) to the hypernetwork width.
    ``fast_phase`` = {collocation, check, default, ...}, ``error_estimate`` = {model, ...} and
    ``correction`` = {nx, nt, coarse, default, error_model, ...}
    as described in the module docstring; ``served_domain`` must lie inside ``domain``.
    ``training``, ``eim`` and ``quality`` must be JSON-serialisable. With ``overwrite``
    an existing artifact at ``directory`` is replaced; otherwise FileExistsError.
    """
    directory = Path(directory)
    if not (isinstance(name, str) and _MODEL_NAME.fullmatch(name)):
        raise ValueError(f"model name must match {_MODEL_NAME.pattern}, got {name!r}")
    if not isinstance(version, str) or not version:
        raise ValueError(f"version must be a non-empty string, got {version!r}")
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} exists; pass overwrite=True to replace it")
    if hasattr(reduced_arrays, "to_arrays"):
        reduced_arrays = reduced_arrays.to_arrays()
    _check_pair(lrnr, hyper)
    if eim_rank is None:
        eim_rank = eim.get("n", eim.get("rank"))
    dims = {
        "N": lrnr.width,
        "L": len(lrnr.ranks),
        "ranks": list(lrnr.ranks),
        "K_max": int(k_max if k_max is not None else hyper.W[0].shape[0]),
        "hyper_width": int(hyper.W[0].shape[0]),
        "eim_rank": None if eim_rank is None else int(eim_rank),
    }
    payload: dict[str, bytes] = {
        "lrnr.npz": _npz_bytes(lrnr.to_arrays(), "lrnr.npz"),
        "hyper.npz": _npz_bytes(hyper.to_arrays(), "hyper.npz"),
        "fastlrnr.npz": _npz_bytes(dict(reduced_arrays), "fastlrnr.npz"),
    }
    for fname, data in onnx_files.items():
        if not (_FILE_NAME.fullmatch(fname) and fname.endswith(".onnx")):
            raise ValueError(f"ONNX file names must be plain names ending in .onnx, got {fname!r}")
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError(f"{fname}: expected non-empty bytes, got {type(data).__name__}")
        payload[fname] = bytes(data)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "created": created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "family": DEFAULT_FAMILY,
        "pde": PDE,
        "ansatz": ANSATZ,
        "domain": domain.to_dict(),
        "test_domain": test_domain.to_dict(),
        "served_domain": served_domain.to_dict(),
        "dimensions": dims,
        "training": training,
        "eim": eim,
        "fast_phase": fast_phase,
        "error_estimate": error_estimate,
        "correction": correction,
        "quality": quality,
        "files": {f: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for f, b in sorted(payload.items())},
    }
    try:
        manifest_text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"training/eim/quality must be JSON-serialisable with finite numbers: {exc}") from None

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        for fname, data in payload.items():
            _write_file(tmp / fname, data)
        _write_file(tmp / MANIFEST, manifest_text.encode())
        _read_verified(tmp)  # never publish what the loader would refuse
        if directory.exists():  # overwrite: move the old one aside, swap, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old-", dir=directory.parent))
            os.rename(directory, old / "artifact")
            os.rename(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _check_pair(lrnr: LRNRWeights, hyper: HyperWeights) -> None:
    if len(hyper.H) != len(lrnr.ranks):
        raise ValueError(f"hypernetwork has {len(hyper.H)} heads, LRNR has {len(lrnr.ranks)} layers")
    for l, (H, k) in enumerate(zip(hyper.H, lrnr.ranks), start=1):
        if H.shape[0] != k:
            raise ValueError(f"head {l}: expected {k} outputs (LRNR rank), got {H.shape[0]}")


def _npz_bytes(arrays: Mapping[str, np.ndarray], fname: str) -> bytes:
    clean = {}
    for key, arr in arrays.items():
        arr = np.asarray(arr)
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{fname}: array names must be identifiers, got {key!r}")
        if arr.dtype.kind not in "fiub":
            raise ValueError(f"{fname}: array {key!r} has dtype {arr.dtype}; only numeric arrays are stored")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ValueError(f"{fname}: array {key!r} has non-finite values")
        clean[key] = arr
    buf = io.BytesIO()
    np.savez(buf, **clean)
    return buf.getvalue()


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, eq=False)
class _Verified:
    manifest: dict
    sha256: str
    domain: Domain
    test_domain: Domain
    served_domain: Domain
    fast_phase: FastPhaseSettings
    error_model: ErrorModel
    correction: CorrectionSpec
    arrays: dict[str, dict[str, np.ndarray]]  # npz file name → arrays
    onnx: dict[str, Path]
    a_priori: AprioriMap | None


def verify_artifact(directory: Path | str) -> dict:
    """Run every check of :func:`load_artifact` without building model objects.

    Returns the manifest; raises ArtifactError naming the file and the problem."""
    return _read_verified(Path(directory)).manifest


def load_artifact(directory: Path | str) -> Artifact:
    """Verify and load an artifact; raises ArtifactError naming the file and the problem."""
    directory = Path(directory)
    v = _read_verified(directory)
    m = v.manifest
    try:
        lrnr = LRNRWeights.from_arrays(v.arrays["lrnr.npz"]).astype(np.float64)
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(directory / "lrnr.npz", f"cannot build the LRNR: {exc}") from None
    try:
        hyper = HyperWeights.from_arrays({k: np.asarray(a, np.float64) for k, a in v.arrays["hyper.npz"].items()})
    except (KeyError, ValueError, TypeError) as exc:
        raise ArtifactError(directory / "hyper.npz", f"cannot build the hypernetwork: {exc}") from None
    reduced = _reduced_operators(directory / "fastlrnr.npz", v.arrays["fastlrnr.npz"], m["dimensions"])
    colloc = m["fast_phase"]["collocation"]
    x, t = interior_points(colloc["points"], colloc["seed"])
    if reduced.x.shape != x.shape or not (np.allclose(reduced.x, x) and np.allclose(reduced.t, t)):
        raise ArtifactError(
            directory / "fastlrnr.npz",
            f"the reduced operators were not built at the collocation points the manifest names ({colloc})",
        )
    return Artifact(
        name=m["name"],
        version=m["version"],
        manifest=m,
        domain=v.domain,
        test_domain=v.test_domain,
        served_domain=v.served_domain,
        lrnr=lrnr,
        hyper=hyper,
        reduced=reduced,
        fast_phase=v.fast_phase,
        error_model=v.error_model,
        correction=v.correction,
        onnx=v.onnx,
        sha256=v.sha256,
        directory=directory,
        a_priori=v.a_priori,
    )


def list_artifacts(root: Path | str) -> list[Path]:
    """Sorted subdirectories of ``root`` that hold a manifest.json (unverified)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def _reduced_operators(path: Path, arrays: dict[str, np.ndarray], dims: dict) -> ReducedOperators:
    """The FastLRNR; its ranks and EIM rank must agree with the manifest's dimensions."""
    try:
        reduced = ReducedOperators.from_arrays(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ArtifactError(path, f"cannot build the reduced operators: {type(exc).__name__}: {exc}") from None
    if list(reduced.ranks) != list(dims["ranks"]):
        raise ArtifactError(
            path, f"reduced operators have ranks {list(reduced.ranks)}, the manifest says {dims['ranks']}"
        )
    if dims.get("eim_rank") is not None and reduced.n != dims["eim_rank"]:
        raise ArtifactError(path, f"reduced operators have EIM rank {reduced.n}, the manifest says {dims['eim_rank']}")
    return reduced


def _read_verified(directory: Path) -> _Verified:
    mpath = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(directory, "not a directory")
    try:
        raw = mpath.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(mpath, "missing") from None
    except OSError as exc:
        raise ArtifactError(mpath, f"unreadable: {exc}") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(mpath, f"not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(mpath, f"expected a JSON object, got {type(manifest).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ArtifactError(mpath, f"missing keys {missing}")
    found = manifest["schema_version"]
    if found != SCHEMA_VERSION or isinstance(found, bool):
        raise ArtifactError(
            mpath, f"schema_version {found!r} is not supported; this loader reads schema_version {SCHEMA_VERSION}"
        )
    if manifest["ansatz"] != ANSATZ:
        raise ArtifactError(mpath, f"ansatz {manifest['ansatz']!r} differs from this code's {ANSATZ!r}")
    if manifest["pde"] != PDE:
        raise ArtifactError(mpath, f"pde {manifest['pde']!r} differs from this code's {PDE!r}")
    family = manifest.get("family", DEFAULT_FAMILY)  # absent: an artifact from before families, CDR
    if not isinstance(family, str) or family not in FAMILIES:
        raise ArtifactError(mpath, f"family {family!r} is not one of this code's {sorted(FAMILIES)}")
    for key in ("name", "version", "created"):
        if not isinstance(manifest[key], str) or not manifest[key]:
            raise ArtifactError(mpath, f"{key} must be a non-empty string, got {manifest[key]!r}")
    for key in ("training", "eim", "quality", "fast_phase", "error_estimate", "correction"):
        if not isinstance(manifest[key], dict):
            raise ArtifactError(mpath, f"{key} must be an object, got {type(manifest[key]).__name__}")
    domains = []
    for key in ("domain", "test_domain", "served_domain"):
        try:
            domains.append(Domain.from_dict(manifest[key]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ArtifactError(mpath, f"{key} is malformed: {exc!r}") from None
    served = domains[2]
    if not (np.all(served.low >= domains[0].low - 1e-12) and np.all(served.high <= domains[0].high + 1e-12)):
        raise ArtifactError(mpath, f"served_domain {served.bounds} is not inside the domain {domains[0].bounds}")
    fast_phase = _fast_phase_settings(mpath, manifest["fast_phase"])
    try:
        error_model = ErrorModel.from_dict(manifest["error_estimate"]["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(mpath, f"error_estimate.model is malformed: {exc!r}") from None
    try:
        correction = CorrectionSpec.from_dict(manifest["correction"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(mpath, f"correction is malformed: {exc!r}") from None
    try:
        a_priori = manifest["error_estimate"].get("a_priori")
        a_priori = None if a_priori is None else AprioriMap.from_dict(a_priori)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(mpath, f"error_estimate.a_priori is malformed: {exc!r}") from None
    dims = _check_dimensions(mpath, manifest["dimensions"])
    listed = _check_file_list(mpath, manifest["files"])

    contents: dict[str, bytes] = {}
    for fname, entry in listed.items():
        path = directory / fname
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
        contents[fname] = data

    arrays = {fname: _parse_npz(directory / fname, contents[fname]) for fname in NPZ_FILES}
    _check_lrnr_arrays(directory / "lrnr.npz", arrays["lrnr.npz"], dims)
    _check_hyper_arrays(directory / "hyper.npz", arrays["hyper.npz"], dims, domains[0])
    onnx = {f: directory / f for f in listed if f.endswith(".onnx")}
    return _Verified(
        manifest,
        hashlib.sha256(raw).hexdigest(),
        domains[0],
        domains[1],
        served,
        fast_phase,
        error_model,
        correction,
        arrays,
        onnx,
        a_priori,
    )


def _integral(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fast_phase_settings(mpath: Path, fp: dict) -> FastPhaseSettings:
    """fast_phase.default as settings; the collocation points' count and seed and the check
    grid's size are validated."""
    try:
        colloc, check = fp.get("collocation"), fp.get("check")
        points, seed = (colloc.get("points"), colloc.get("seed")) if isinstance(colloc, dict) else (None, None)
        if not (_integral(points) and _integral(seed) and points >= 1 and seed >= 0):
            raise ValueError(f"collocation needs integer points ≥ 1 and seed ≥ 0, got {colloc!r}")
        nx, nt = (check.get("nx"), check.get("nt")) if isinstance(check, dict) else (None, None)
        if not (_integral(nx) and _integral(nt) and 4 <= nx <= 1024 and 2 <= nt <= 1024):
            raise ValueError(f"check needs an integer grid 4 ≤ nx ≤ 1024, 2 ≤ nt ≤ 1024, got {check!r}")
        return FastPhaseSettings.from_dict(fp["default"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(mpath, f"fast_phase is malformed: {exc!r}") from None


def _check_dimensions(mpath: Path, dims) -> dict:
    def is_int(v, low=1):
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    if not isinstance(dims, dict):
        raise ArtifactError(mpath, "dimensions must be an object")
    for key in ("N", "L", "K_max", "hyper_width"):
        if not is_int(dims.get(key)):
            raise ArtifactError(mpath, f"dimensions.{key} must be a positive integer, got {dims.get(key)!r}")
    ranks = dims.get("ranks")
    if not (isinstance(ranks, list) and len(ranks) == dims["L"] and all(is_int(k) for k in ranks)):
        raise ArtifactError(mpath, f"dimensions.ranks must be {dims['L']} positive integers, got {ranks!r}")
    if dims.get("eim_rank") is not None and not is_int(dims["eim_rank"]):
        raise ArtifactError(mpath, f"dimensions.eim_rank must be a positive integer or null, got {dims['eim_rank']!r}")
    return dims


def _check_file_list(mpath: Path, files) -> dict:
    if not isinstance(files, dict):
        raise ArtifactError(mpath, "files must be an object {name: {sha256, bytes}}")
    for fname, entry in files.items():
        if not _FILE_NAME.fullmatch(fname) or fname == MANIFEST:
            raise ArtifactError(mpath, f"files lists an invalid name {fname!r} (plain names only)")
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
            and isinstance(entry.get("bytes"), int)
            and entry["bytes"] >= 0
        ):
            raise ArtifactError(mpath, f"files[{fname!r}] must be {{sha256: 64 hex digits, bytes: int}}, got {entry!r}")
    for fname in NPZ_FILES:
        if fname not in files:
            raise ArtifactError(mpath, f"files does not list the required {fname}")
    return files


def _parse_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """Every array of an npz held in ``data``; never unpickles; any damage → ArtifactError.

    The zip is read member by member (each must be ``<identifier>.npy``) with
    ``numpy.lib.format.read_array(..., allow_pickle=False)``, so no format sniffing
    ever reaches a pickle loader."""
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else None
                if key is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                    raise ArtifactError(path, f"unexpected member {info.filename!r} (only <name>.npy arrays)")
                if key in out:
                    raise ArtifactError(path, f"duplicate array {key!r}")
                with zf.open(info) as fh:
                    out[key] = np.lib.format.read_array(fh, allow_pickle=False)
    except ArtifactError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ArtifactError(
                path, f"holds an object array, which would need pickle to load; refused ({exc})"
            ) from None
        raise ArtifactError(path, f"not a valid npz archive (damaged or truncated): {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, MemoryError) as exc:
        raise ArtifactError(path, f"not a valid npz archive (damaged or truncated): {exc!r}") from None
    for key, arr in out.items():
        if arr.dtype.kind not in "fiub":
            raise ArtifactError(path, f"array {key!r} has dtype {arr.dtype}; only numeric arrays are allowed")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise ArtifactError(path, f"array {key!r} has non-finite values")
    return out


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


def _check_lrnr_arrays(path: Path, arrays: dict[str, np.ndarray], dims: dict) -> None:
    N = dims["N"]
    expected: dict[str, tuple] = {"A": (N, 3), "a": (N,), "w": (N,), "c": ()}
    for l, k in enumerate(dims["ranks"], start=1):
        expected.update({f"U{l}": (N, k), f"V{l}": (N, k), f"b{l}": (N,)})
    _expect_shapes(path, arrays, expected, "LRNR")


def _check_hyper_arrays(path: Path, arrays: dict[str, np.ndarray], dims: dict, domain: Domain) -> None:
    K = dims["hyper_width"]
    expected: dict[str, tuple] = {
        "W1": (K, 3),
        "W2": (K, K),
        "W3": (K, K),
        "c1": (K,),
        "c2": (K,),
        "c3": (K,),
        "low": (3,),
        "high": (3,),
    }
    for l, k in enumerate(dims["ranks"], start=1):
        expected.update({f"H{l}": (k, K), f"e{l}": (k,)})
    _expect_shapes(path, arrays, expected, "hypernetwork")
    if not (np.allclose(arrays["low"], domain.low) and np.allclose(arrays["high"], domain.high)):
        raise ArtifactError(
            path,
            f"normalisation bounds low={arrays['low'].tolist()}, high={arrays['high'].tolist()} "
            f"differ from the manifest domain {domain.name!r} "
            f"({domain.low.tolist()}, {domain.high.tolist()})",
        )
