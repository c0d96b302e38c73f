"""Arrays of an .npz sized from their headers before their data is read (fastlrnr/numerics/npz_members.py)."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from fastlrnr.numerics.npz_members import ContentError, NpzError, members, read


def archive(**arrays) -> zipfile.ZipFile:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def npy_member(header_shape: str, data: bytes, name: str = "points.npy") -> zipfile.ZipFile:
    """A zip whose one member is an .npy with a hand-written header (what a hostile client sends)."""
    head = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {header_shape}, }}".encode()
    head += b" " * (63 - (len(head) + 10) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, npy)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def test_sizes_come_from_the_headers_and_the_data_reads_back():
    a, b = np.arange(12, dtype=np.int8).reshape(6, 2), np.asfortranarray(np.random.default_rng(0).random((3, 4)))
    with archive(a=a, b=b) as z:
        found = {m.name: m for m in members(z)}
        assert found["a"].shape == (6, 2) and found["a"].nbytes == 12 and found["a"].widened_bytes() == 96
        assert found["b"].fortran and found["b"].nbytes == 96
        np.testing.assert_array_equal(read(z, found["a"]), a)
        np.testing.assert_array_equal(read(z, found["b"]), b)


def test_a_header_that_declares_more_than_the_member_holds_is_refused_unallocated():
    """(10¹¹, 3) float64 declared in a few hundred bytes: refused from the header, nothing allocated."""
    tracemalloc.start()
    try:
        with npy_member("(100000000000, 3)", b"\0" * 24) as z, pytest.raises(NpzError, match="declares shape"):
            members(z)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_an_int8_bomb_is_weighed_before_it_is_unpacked():
    """2^20 int8 zeros compress to ~1 kB; the header says what they widen to."""
    with archive(points=np.zeros((1 << 19, 2), np.int8)) as z:
        (m,) = members(z)
        assert m.nbytes == 1 << 20 and m.widened_bytes(8) == 8 << 20
        assert z.infolist()[0].compress_size < 10_000


def test_object_arrays_and_repeated_names_are_refused():
    with archive(a=np.array([1, "x"], dtype=object)) as z, pytest.raises(ContentError, match="pickle"):
        members(z)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        for value in (1.0, 2.0):
            inner = io.BytesIO()
            np.save(inner, np.array([value]))
            z.writestr("params.npy", inner.getvalue())
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z, pytest.raises(ContentError, match="twice"):
        members(z)


def test_a_member_cut_short_or_not_npy_is_an_error_not_a_crash():
    with npy_member("(4,)", b"\0" * 32, "x.txt") as z, pytest.raises(NpzError, match="not an .npy"):
        members(z)
    with npy_member("(4,)", b"\0" * 16) as z, pytest.raises(NpzError, match="holds 16 bytes"):
        members(z)
