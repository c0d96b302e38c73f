"""Writing: build the manifest and the files, verify them with the loader, publish atomically."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact.format import MANIFEST, OPTIONAL_NPZ_FILES, PLAIN_NAME, SCHEMA_VERSION
from fastlrnr.numerics.artifact.npz import npz_bytes
from fastlrnr.numerics.artifact.reading import Artifact, read_verified
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.hypernet import HyperWeights
from fastlrnr.numerics.lrnr import LRNRWeights


@dataclass(frozen=True)
class Sections:
    """The manifest's JSON sections a builder supplies (JSON-serialisable, finite numbers):
    ``training``, ``eim`` and ``quality`` are free-form; ``fast_phase`` = {collocation, check,
    default, ...}, ``error_estimate`` = {model, ...} and ``correction`` = {nx, nt, coarse,
    default, error_model, ...} are read by the loader (see the package docstring)."""

    training: dict
    eim: dict
    fast_phase: dict
    error_estimate: dict
    correction: dict
    quality: dict


def write_artifact(
    directory: Path | str,
    *,
    name: str,
    version: str,
    domain: Domain,
    test_domain: Domain,
    served_domain: Domain,
    lrnr: LRNRWeights,
    hyper: HyperWeights,
    reduced_arrays: Mapping[str, np.ndarray],
    onnx_files: Mapping[str, bytes],
    sections: Sections | None = None,
    eim_rank: int | None = None,
    k_max: int | None = None,
    created: str | None = None,
    overwrite: bool = False,
    family: PdeFamily,
    extra_arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    **section_kwargs: dict,
) -> Path:
    """Write a complete artifact to ``directory`` atomically and return its path.

    Files are written to a temporary sibling directory, verified with the loader's own
    checks, then renamed into place; a failure leaves no partial artifact behind.
    ``reduced_arrays`` is a flat {name: ndarray} (e.g. ``ReducedOperators.to_arrays()``;
    an object with ``to_arrays()`` is accepted too). ``sections``: the manifest's JSON
    sections, or each of them as a keyword (``training=..., eim=..., ...``). ``eim_rank``
    defaults to ``eim["n"]``; ``k_max`` (the rank before truncation) to the hypernetwork
    width. ``family``: the PDE family the model solves (the domains are over its parameters).
    ``served_domain`` must lie inside ``domain``. With ``overwrite`` an existing
    artifact at ``directory`` is replaced; otherwise FileExistsError.
    """
    if sections is None:
        sections = Sections(**section_kwargs)
    elif section_kwargs:
        raise TypeError(f"pass the sections either as sections= or as keywords, not both: {sorted(section_kwargs)}")
    directory = Path(directory)
    if not (isinstance(name, str) and PLAIN_NAME.fullmatch(name)):
        raise ValueError(f"model name must match {PLAIN_NAME.pattern}, got {name!r}")
    if not isinstance(version, str) or not version:
        raise ValueError(f"version must be a non-empty string, got {version!r}")
    if directory.exists() and not overwrite:
        raise FileExistsError(f"{directory} exists; pass overwrite=True to replace it")
    if hasattr(reduced_arrays, "to_arrays"):
        reduced_arrays = reduced_arrays.to_arrays()
    _check_pair(lrnr, hyper)
    payload = _payload(lrnr, hyper, reduced_arrays, onnx_files)
    for fname, arrays in (extra_arrays or {}).items():
        if fname not in OPTIONAL_NPZ_FILES:
            raise ValueError(f"extra arrays go to one of {OPTIONAL_NPZ_FILES}, got {fname!r}")
        payload[fname] = npz_bytes(dict(arrays), fname)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "created": created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "family": family.name,
        "pde": family.equation,
        "ansatz": family.ansatz,
        "domain": domain.to_dict(),
        "test_domain": test_domain.to_dict(),
        "served_domain": served_domain.to_dict(),
        "dimensions": _dimensions(lrnr, hyper, _eim_rank(sections.eim) if eim_rank is None else eim_rank, k_max),
        "training": sections.training,
        "eim": sections.eim,
        "fast_phase": sections.fast_phase,
        "error_estimate": sections.error_estimate,
        "correction": sections.correction,
        "quality": sections.quality,
        "files": {f: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for f, b in sorted(payload.items())},
    }
    try:
        manifest_text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"fastlrnr/training/eim/quality must be JSON-serialisable with finite numbers: {exc}"
        ) from None
    _publish(directory, {**payload, MANIFEST: manifest_text.encode()})
    return directory


def republish(
    art: Artifact,
    directory: Path | str | None = None,
    extra_arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    **changes: dict,
) -> Path:
    """Publish the loaded artifact ``art`` again — to its own directory by default, atomically
    replacing it — with some of its manifest's JSON sections replaced (``changes``: section name
    → new section, e.g. ``correction=...``). Every file but the manifest is copied byte for byte
    and every other manifest entry stays; the loader verifies the result before it replaces
    anything. How a recalibration reaches an artifact: never by editing its manifest in place.
    ``extra_arrays`` adds or replaces optional npz files (``OPTIONAL_NPZ_FILES``)."""
    unknown = set(changes) - set(Sections.__dataclass_fields__)
    if unknown:
        raise TypeError(f"not manifest sections: {sorted(unknown)}")
    manifest = {k: changes.get(k, v) for k, v in art.manifest.items()}
    payload = {fname: (art.directory / fname).read_bytes() for fname in art.manifest["files"]}
    for fname, arrays in (extra_arrays or {}).items():
        if fname not in OPTIONAL_NPZ_FILES:
            raise ValueError(f"extra arrays go to one of {OPTIONAL_NPZ_FILES}, got {fname!r}")
        payload[fname] = npz_bytes(dict(arrays), fname)
    manifest["files"] = {
        f: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for f, b in sorted(payload.items())
    }
    try:
        manifest_text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sections must be JSON-serialisable with finite numbers: {exc}") from None
    directory = art.directory if directory is None else Path(directory)
    _publish(directory, {**payload, MANIFEST: manifest_text.encode()})
    return directory


def _check_pair(lrnr: LRNRWeights, hyper: HyperWeights) -> None:
    if len(hyper.H) != len(lrnr.ranks):
        raise ValueError(f"hypernetwork has {len(hyper.H)} heads, LRNR has {len(lrnr.ranks)} layers")
    for l, (H, k) in enumerate(zip(hyper.H, lrnr.ranks), start=1):
        if H.shape[0] != k:
            raise ValueError(f"head {l}: expected {k} outputs (LRNR rank), got {H.shape[0]}")


def _eim_rank(eim: dict) -> int | None:
    return eim.get("n", eim.get("rank"))


def _dimensions(lrnr: LRNRWeights, hyper: HyperWeights, eim_rank: int | None, k_max: int | None) -> dict:
    """The manifest's ``dimensions``: {N, L, ranks, K_max, hyper_width, eim_rank}."""
    return {
        "N": lrnr.width,
        "L": len(lrnr.ranks),
        "ranks": list(lrnr.ranks),
        "K_max": int(k_max if k_max is not None else hyper.W[0].shape[0]),
        "hyper_width": int(hyper.W[0].shape[0]),
        "eim_rank": None if eim_rank is None else int(eim_rank),
    }


def _payload(
    lrnr: LRNRWeights, hyper: HyperWeights, reduced_arrays: Mapping[str, np.ndarray], onnx_files: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Every file but the manifest: file name → bytes."""
    payload: dict[str, bytes] = {
        "lrnr.npz": npz_bytes(lrnr.to_arrays(), "lrnr.npz"),
        "hyper.npz": npz_bytes(hyper.to_arrays(), "hyper.npz"),
        "fastlrnr.npz": npz_bytes(dict(reduced_arrays), "fastlrnr.npz"),
    }
    for fname, data in onnx_files.items():
        if not (PLAIN_NAME.fullmatch(fname) and fname.endswith(".onnx")):
            raise ValueError(f"ONNX file names must be plain names ending in .onnx, got {fname!r}")
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise ValueError(f"{fname}: expected non-empty bytes, got {type(data).__name__}")
        payload[fname] = bytes(data)
    return payload


def _publish(directory: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a temporary sibling, verify it with the loader, rename it into place
    (replacing an artifact already there); a failure leaves nothing behind."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        for fname, data in files.items():
            _write_file(tmp / fname, data)
        read_verified(tmp)  # never publish what the loader would refuse
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


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
