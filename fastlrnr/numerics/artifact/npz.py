"""npz files without pickle: the writer's serialisation and the loader's safe parser."""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from fastlrnr.numerics.artifact.format import ARRAY_NAME, ArtifactError, array_problem
from fastlrnr.numerics.npz_members import NpzError, members, read


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

    Each member (``<identifier>.npy``, given once) is sized from its ``.npy`` header before
    its data is read (``fastlrnr.numerics.npz_members``), so a header that declares more data
    than the member holds is refused without allocating it, and no format sniffing ever
    reaches a pickle loader."""
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [info.filename for info in zf.infolist()]
            for i, fname in enumerate(names):
                key = fname[:-4] if fname.endswith(".npy") else None
                if key is None or not ARRAY_NAME.fullmatch(key):
                    raise ArtifactError(path, f"unexpected member {fname!r} (only <name>.npy arrays)")
                if fname in names[:i]:
                    raise ArtifactError(path, f"duplicate array {key!r}")
            for member in members(zf):
                out[member.name] = read(zf, member)
    except ArtifactError:
        raise
    except NpzError as exc:
        if "pickle" in str(exc):
            problem = f"holds an object array, which would need pickle to load; refused ({exc})"
            raise ArtifactError(path, problem) from None
        raise ArtifactError(path, f"not a valid npz archive (damaged or truncated): {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, MemoryError) as exc:
        raise ArtifactError(path, f"not a valid npz archive (damaged or truncated): {exc!r}") from None
    for key, arr in out.items():
        problem = array_problem(key, arr)
        if problem:
            raise ArtifactError(path, problem)
    return out
