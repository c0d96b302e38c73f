"""manifest.json: parsed and checked into a :class:`Manifest` (no other file is read here)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact.format import (
    JSON_SECTIONS,
    MANIFEST,
    NPZ_FILES,
    PLAIN_NAME,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    SHA256_HEX,
    ArtifactError,
    is_int,
)
from fastlrnr.numerics.correction import CorrectionSpec
from fastlrnr.numerics.error_estimate import AprioriMap, ErrorModel
from fastlrnr.numerics.extrapolation_box import KEY as BOX_KEY
from fastlrnr.numerics.extrapolation_box import read_box
from fastlrnr.numerics.families import FAMILIES
from fastlrnr.numerics.family import Domain, PdeFamily
from fastlrnr.numerics.fast_phase import FastPhaseSettings


@dataclass(frozen=True)
class Dimensions:
    """The manifest's ``dimensions``: the LRNR's width ``N`` and ``L`` layers of ranks
    ``ranks`` (k_1..k_L), the rank before truncation ``K_max``, the hypernetwork's width
    ``hyper_width`` and the FastLRNR's EIM rank ``eim_rank`` (None: not recorded)."""

    N: int
    L: int
    ranks: tuple[int, ...]
    K_max: int
    hyper_width: int
    eim_rank: int | None

    @classmethod
    def from_dict(cls, mpath: Path, dims) -> Dimensions:
        """Checked: positive integers, one rank per layer; ArtifactError naming the key otherwise."""
        if not isinstance(dims, dict):
            raise ArtifactError(mpath, "dimensions must be an object")
        for key in ("N", "L", "K_max", "hyper_width"):
            if not is_int(dims.get(key), 1):
                raise ArtifactError(mpath, f"dimensions.{key} must be a positive integer, got {dims.get(key)!r}")
        ranks = dims.get("ranks")
        if not (isinstance(ranks, list) and len(ranks) == dims["L"] and all(is_int(k, 1) for k in ranks)):
            raise ArtifactError(mpath, f"dimensions.ranks must be {dims['L']} positive integers, got {ranks!r}")
        eim_rank = dims.get("eim_rank")
        if eim_rank is not None and not is_int(eim_rank, 1):
            raise ArtifactError(mpath, f"dimensions.eim_rank must be a positive integer or null, got {eim_rank!r}")
        return cls(dims["N"], dims["L"], tuple(ranks), dims["K_max"], dims["hyper_width"], eim_rank)

    def to_dict(self) -> dict:
        """The JSON object, as the manifest stores it."""
        return {
            "N": self.N,
            "L": self.L,
            "ranks": list(self.ranks),
            "K_max": self.K_max,
            "hyper_width": self.hyper_width,
            "eim_rank": self.eim_rank,
        }


@dataclass(frozen=True, eq=False)
class Manifest:
    """A checked manifest: typed views of the sections the loader checks; ``raw`` is the JSON
    object as read and ``sha256`` the checksum of the manifest's bytes."""

    raw: dict
    sha256: str
    name: str
    version: str
    created: str
    family: PdeFamily  # the manifest's ``family`` (absent: CDR, as written before families)
    domain: Domain
    test_domain: Domain
    served_domain: Domain
    extrapolation_domain: Domain  # error_estimate.extrapolation_domain, else the legacy rule's box
    extrapolation_stored: bool  # the manifest stores the box (else: the legacy rule's)
    dimensions: Dimensions
    fast_phase: FastPhaseSettings  # fast_phase.default
    error_model: ErrorModel  # error_estimate.model
    a_priori: AprioriMap | None  # error_estimate.a_priori (schema 3 artifacts may lack it)
    correction: CorrectionSpec
    files: dict  # {file name: {sha256, bytes}}

    @property
    def collocation(self) -> tuple[int, int]:
        """(points, seed) of the fast phase's collocation points."""
        c = self.raw["fast_phase"]["collocation"]
        return c["points"], c["seed"]


def read_manifest(directory: Path) -> Manifest:
    """Read and check ``directory``/manifest.json; raises ArtifactError naming the problem."""
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
    family = _check_identity(mpath, manifest)
    domain, test_domain, served = _domains(mpath, manifest, family)
    fast_phase = _fast_phase_settings(mpath, manifest["fast_phase"])
    error_model, correction, a_priori = _error_sections(mpath, manifest)
    try:
        box, stored = read_box(manifest["error_estimate"], domain, served)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ArtifactError(mpath, f"error_estimate.{BOX_KEY} is malformed: {exc!r}") from None
    dims = Dimensions.from_dict(mpath, manifest["dimensions"])
    files = _check_file_list(mpath, manifest["files"])
    return Manifest(
        raw=manifest,
        sha256=hashlib.sha256(raw).hexdigest(),
        name=manifest["name"],
        version=manifest["version"],
        created=manifest["created"],
        family=family,
        domain=domain,
        test_domain=test_domain,
        served_domain=served,
        extrapolation_domain=box,
        extrapolation_stored=stored,
        dimensions=dims,
        fast_phase=fast_phase,
        error_model=error_model,
        a_priori=a_priori,
        correction=correction,
        files=files,
    )


def _check_identity(mpath: Path, manifest: dict) -> PdeFamily:
    """Required keys, schema, family, its PDE and ansatz, the string keys and the free-form
    sections' types; returns the family the manifest names."""
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ArtifactError(mpath, f"missing keys {missing}")
    found = manifest["schema_version"]
    if found != SCHEMA_VERSION or isinstance(found, bool):
        raise ArtifactError(
            mpath, f"schema_version {found!r} is not supported; this loader reads schema_version {SCHEMA_VERSION}"
        )
    name = manifest["family"]
    if not isinstance(name, str) or name not in FAMILIES:
        raise ArtifactError(mpath, f"family {name!r} is not one of this code's {sorted(FAMILIES)}")
    family = FAMILIES[name]
    if manifest["ansatz"] != family.ansatz:
        raise ArtifactError(mpath, f"ansatz {manifest['ansatz']!r} differs from this code's {family.ansatz!r}")
    if manifest["pde"] != family.equation:
        raise ArtifactError(
            mpath, f"pde {manifest['pde']!r} differs from this code's {name!r} family: {family.equation!r}"
        )
    for key in ("name", "version", "created"):
        if not isinstance(manifest[key], str) or not manifest[key]:
            raise ArtifactError(mpath, f"{key} must be a non-empty string, got {manifest[key]!r}")
    for key in JSON_SECTIONS:
        if not isinstance(manifest[key], dict):
            raise ArtifactError(mpath, f"{key} must be an object, got {type(manifest[key]).__name__}")
    return family


def _domains(mpath: Path, manifest: dict, family: PdeFamily) -> tuple[Domain, Domain, Domain]:
    """domain, test_domain, served_domain over ``family``'s parameters; the served domain
    must lie inside the domain."""
    domains = []
    for key in ("domain", "test_domain", "served_domain"):
        try:
            domains.append(Domain.from_dict(manifest[key], params=family.params))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ArtifactError(mpath, f"{key} is malformed: {exc!r}") from None
        if domains[-1].params != family.params:
            raise ArtifactError(
                mpath,
                f"{key} has parameters {list(domains[-1].params)}, the {family.name!r} family {list(family.params)}",
            )
    domain, test_domain, served = domains
    if not (np.all(served.low >= domain.low - 1e-12) and np.all(served.high <= domain.high + 1e-12)):
        raise ArtifactError(mpath, f"served_domain {served.bounds} is not inside the domain {domain.bounds}")
    return domain, test_domain, served


def _fast_phase_settings(mpath: Path, fp: dict) -> FastPhaseSettings:
    """fast_phase.default as settings; the collocation points' count and seed and the check
    grid's size are validated."""
    try:
        colloc, check = fp.get("collocation"), fp.get("check")
        points, seed = (colloc.get("points"), colloc.get("seed")) if isinstance(colloc, dict) else (None, None)
        if not (is_int(points, 1) and is_int(seed, 0)):
            raise ValueError(f"collocation needs integer points ≥ 1 and seed ≥ 0, got {colloc!r}")
        nx, nt = (check.get("nx"), check.get("nt")) if isinstance(check, dict) else (None, None)
        if not (is_int(nx) and is_int(nt) and 4 <= nx <= 1024 and 2 <= nt <= 1024):
            raise ValueError(f"check needs an integer grid 4 ≤ nx ≤ 1024, 2 ≤ nt ≤ 1024, got {check!r}")
        return FastPhaseSettings.from_dict(fp["default"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(mpath, f"fast_phase is malformed: {exc!r}") from None


def _error_sections(mpath: Path, manifest: dict) -> tuple[ErrorModel, CorrectionSpec, AprioriMap | None]:
    """error_estimate.model, the correction and error_estimate.a_priori (None when absent)."""
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
    return error_model, correction, a_priori


def _check_file_list(mpath: Path, files) -> dict:
    if not isinstance(files, dict):
        raise ArtifactError(mpath, "files must be an object {name: {sha256, bytes}}")
    for fname, entry in files.items():
        if not PLAIN_NAME.fullmatch(fname) or fname == MANIFEST:
            raise ArtifactError(mpath, f"files lists an invalid name {fname!r} (plain names only)")
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and SHA256_HEX.fullmatch(entry["sha256"])
            and isinstance(entry.get("bytes"), int)
            and entry["bytes"] >= 0
        ):
            raise ArtifactError(mpath, f"files[{fname!r}] must be {{sha256: 64 hex digits, bytes: int}}, got {entry!r}")
    for fname in NPZ_FILES:
        if fname not in files:
            raise ArtifactError(mpath, f"files does not list the required {fname}")
    return files
