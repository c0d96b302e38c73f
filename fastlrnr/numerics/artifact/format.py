"""The artifact format: schema constants, the manifest's required keys, the file list, and
the checks the writer and the loader share (names, checksums, integers, array contents)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 3
MANIFEST = "manifest.json"
NPZ_FILES = ("lrnr.npz", "hyper.npz", "fastlrnr.npz")
OPTIONAL_NPZ_FILES = ("envelope.npz",)  # the site envelope's node values (error_estimate.site_envelope)
ONNX_FILES = ("lrnr.onnx", "lrnr_jets.onnx")  # the usual graphs; any other *.onnx may be listed too
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # model names and file names
ARRAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # array names inside an npz
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
JSON_SECTIONS = ("training", "eim", "quality", "fast_phase", "error_estimate", "correction")  # free-form objects
REQUIRED_KEYS = (
    "schema_version",
    "name",
    "version",
    "created",
    "family",
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


def is_int(v, low: int | None = None) -> bool:
    """``v`` is an int (not a bool), and ≥ ``low`` when given."""
    return isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)


def array_problem(key: str, arr: np.ndarray) -> str | None:
    """Why array ``key`` may not be stored in or read from an artifact (None: it may):
    only numeric dtypes, and floating-point arrays must be finite."""
    if arr.dtype.kind not in "fiub":
        return f"array {key!r} has dtype {arr.dtype}; only numeric arrays are allowed"
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        return f"array {key!r} has non-finite values"
    return None
