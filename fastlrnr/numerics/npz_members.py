"""The arrays of an ``.npz`` archive, sized from their headers before any of their data is read.

An ``.npz`` is a zip of ``.npy`` members. :func:`members` opens each member only as far as its
``.npy`` header (dtype, shape, order: at most ``MAX_HEADER_BYTES``) and checks that the data the
header declares, ``prod(shape) × itemsize`` bytes, is exactly what the zip's directory says the
member unpacks to; a member that declares (10¹¹, 3) float64 in 582 bytes is refused here, before
anything is allocated. A caller can then weigh every array (its bytes as stored, or widened to
another dtype) against a budget, and only then :func:`read` them; ``read`` allocates the declared
bytes once and fills them from the member (the zip module stops a member at its declared size
and checks its CRC). Pickled (object) arrays are refused; duplicate names are refused.

Pure numpy and the standard library: the artifact loader and the server's sweep parser share it.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

MAX_HEADER_BYTES = 10_000  # numpy's own default limit on an .npy header
READ_CHUNK = 1 << 20  # bytes copied at once from a member into its array
# what the zip and .npy readers raise for a damaged member
_DAMAGE = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


class NpzError(ValueError):
    """An archive or one of its members cannot be read; the message names the member."""

    def __init__(self, message: str, member: str | None = None):
        super().__init__(message)
        self.member = member


class ContentError(NpzError):
    """The archive is readable but holds what no caller accepts: an object array (it would need
    pickle) or a name given twice."""


@dataclass(frozen=True)
class Member:
    """One ``.npy`` member, as its header declares it: ``name`` (the file name without ``.npy``),
    its zip entry, dtype, shape, Fortran order and where its data starts (bytes into the member)."""

    name: str
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    offset: int

    @property
    def count(self) -> int:
        """Elements: prod(shape)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the data as stored: count × itemsize."""
        return self.count * self.dtype.itemsize

    def widened_bytes(self, itemsize: int = 8) -> int:
        """Bytes of the data once converted to a dtype of ``itemsize`` bytes (float64: 8)."""
        return self.count * itemsize


class _Counting:
    """A read-only stream that counts the bytes read from it (the header's length)."""

    def __init__(self, fh):
        self.fh, self.n = fh, 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.n += len(data)
        return data


def members(zf: zipfile.ZipFile) -> list[Member]:
    """Every member of ``zf`` with its header read and checked (NpzError otherwise): a name
    ending in ``.npy`` and given once, an ``.npy`` header of version 1.0 or 2.0 at most
    MAX_HEADER_BYTES long, no object dtype, and data of exactly the declared size."""
    out: list[Member] = []
    seen: set[str] = set()
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            raise NpzError(f"member {info.filename[:80]!r} is not an .npy array", info.filename[:80])
        name = info.filename[:-4]
        if name in seen:
            raise ContentError(f"array {name[:80]!r} is given twice", name[:80])
        seen.add(name)
        out.append(_header(zf, info, name))
    return out


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Member:
    try:
        with zf.open(info) as raw:
            fh = _Counting(raw)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=MAX_HEADER_BYTES)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=MAX_HEADER_BYTES)
            else:
                raise NpzError(f"{name}: .npy format version {version} is not supported (1.0 or 2.0)", name)
    except NpzError:
        raise
    except _DAMAGE as exc:
        raise NpzError(f"{name}: not a readable .npy header ({exc})", name) from None
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise ContentError(f"{name}: an object array, which would need pickle to load; refused", name)
    member = Member(name, info, dtype, tuple(int(d) for d in shape), bool(fortran), fh.n)
    if fh.n + member.nbytes != info.file_size:
        raise NpzError(
            f"{name}: its header declares shape {member.shape} of {dtype} ({member.nbytes} bytes); "
            f"the member holds {max(info.file_size - fh.n, 0)} bytes of data",
            name,
        )
    return member


def read(zf: zipfile.ZipFile, member: Member) -> np.ndarray:
    """The array of ``member`` (as :func:`members` found it): its declared bytes allocated once and
    filled from the member; NpzError when the member is damaged or shorter than declared."""
    flat = np.empty(member.count, dtype=member.dtype)
    view = flat.view(np.uint8).reshape(-1) if member.nbytes else None
    try:
        with zf.open(member.info) as fh:
            fh.read(member.offset)
            done = 0
            while done < member.nbytes:
                chunk = fh.read(min(READ_CHUNK, member.nbytes - done))
                if not chunk:
                    raise NpzError(f"{member.name}: the data ends after {done} of {member.nbytes} bytes", member.name)
                view[done : done + len(chunk)] = np.frombuffer(chunk, np.uint8)
                done += len(chunk)
    except NpzError:
        raise
    except _DAMAGE as exc:
        raise NpzError(f"{member.name}: the data cannot be read ({exc})", member.name) from None
    if member.fortran:
        return flat.reshape(member.shape[::-1]).transpose()
    return flat.reshape(member.shape)
