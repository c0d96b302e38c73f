"""npz files without pickle: the writer's serialisation and the loader's safe parser."""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact.format import ARRAY_NAME, ArtifactError, array_problem


def npz_bytes(arrays: Mapping[str, np.ndarray], fname: str) -> bytes:
    """``arrays`` as npz bytes; names must be identifiers, arrays numeric and finite
    (else ValueError naming ``fname``)."""
    clean = {}
    for key, arr in arrays.items():
        arr = np.asarray(arr)
        if not isinstance(key, str) or not ARRAY_NAME.fullmatch(key):
            raise ValueError(f"{fname}: array names must be identifiers, got {key!r}")
        problem = array_problem(key, arr)
        if problem:
            raise ValueError(f"{fname}: {problem}")
        clean[key] = arr
    buf = io.BytesIO()
    np.savez(buf, **clean)
    return buf.getvalue()


def parse_npz(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """Every array of an npz held in ``data``; never unpickles; any damage → ArtifactError.

    The zip is read member by member (each must be ``<identifier>.npy``) with
    ``numpy.lib.format.read_array(..., allow_pickle=False)``, so no format sniffing
    ever reaches a pickle loader."""
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else None
                if key is None or not ARRAY_NAME.fullmatch(key):
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
        problem = array_problem(key, arr)
        if problem:
            raise ArtifactError(path, problem)
    return out
