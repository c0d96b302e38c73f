"""Issue #25: every array sized from what the request declares before anything is read or widened,
and weighed against one per-request memory budget (request_memory_bytes): .npz members, /v2
tensors, JSON grids; absurd declarations are 4xx, never a MemoryError."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from service_testkit import make_client, make_settings

from fastlrnr.server.app import create_app

NPZ = {"content-type": "application/x-npz"}
MU = [[2.0, 1.0, 1.0]]
BUDGET = 64 << 20  # the smallest budget the settings take


def npz(compressed: bool = True, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


@pytest.fixture(scope="module")
def small(artifact_root):
    """The app with a 64 MiB budget per request."""
    with make_client(create_app(make_settings(artifact_root, request_memory_bytes=BUDGET))) as c:
        yield c


def traced_peak(fn):
    """(fn(), the peak bytes Python and numpy allocated meanwhile, in every thread: the app's too)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_npz_that_widens_past_the_budget_is_refused_before_it_is_read(small):
    """2^21 int8 points: 4 MiB stored, a few kB compressed, 32 MiB once widened to float64 (+ the
    x, t copies and the answer): refused from the headers; nothing near that size is allocated."""
    body = npz(params=np.array(MU), points=np.zeros((1 << 21, 2), np.int8))
    assert len(body) < 64_000
    r, peak = traced_peak(lambda: small.post("/solve/sweep", content=body, headers=NPZ))
    assert r.status_code == 413 and r.json()["error"] == "over_memory_budget", r.text
    assert "MiB" in r.json()["message"] and "request_memory_bytes" in r.json()["message"]
    assert peak < 8 << 20, peak  # the 32 MiB never existed (not even the 4 MiB as stored)


def test_a_sweep_within_the_budget_stays_within_twice_it(small):
    """The same archive, small enough to fit: answered, its peak (traced) within twice the budget."""
    body = npz(params=np.array(MU * 4), points=np.zeros((1 << 17, 2), np.int8))
    r, peak = traced_peak(lambda: small.post("/solve/sweep", content=body, headers=NPZ))
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content)) as z:
        assert z["u"].shape == (4, 1 << 17) and z["solved"].all()
    assert peak <= 2 * BUDGET, peak


def test_a_header_declaring_1e11_rows_is_422_not_500(client):
    head = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000, 3), }"
    head += b" " * (63 - (len(head) + 10) % 64) + b"\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("params.npy", _npy(np.array(MU)))
        z.writestr("points.npy", b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + b"\0" * 24)
    r = client.post("/solve/sweep", content=buf.getvalue(), headers=NPZ)
    assert r.status_code == 422 and r.json()["error"] == "invalid_npz"
    assert "declares shape (100000000000, 3)" in r.json()["message"]


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_a_member_given_twice_is_422_not_silently_the_last(client):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("params.npy", _npy(np.array(MU)))
        z.writestr("params.npy", _npy(np.array([[2.5, 1.0, 1.0]])))
        z.writestr("points.npy", _npy(np.zeros((1, 2))))
    r = client.post("/solve/sweep", content=buf.getvalue(), headers=NPZ)
    assert r.status_code == 422 and r.json()["error"] == "validation_error" and "twice" in r.json()["message"]


def test_v2_tensors_are_sized_from_shape_and_datatype_first(small):
    """A declared shape whose values would not fit is 413 before its data is looked at; one that
    does not match the bytes it brings is 422; neither allocates what the shape declares."""
    huge = {"inputs": [{"name": "params", "shape": [10**12, 3], "datatype": "FP64", "data": [2.0, 1.0, 1.0]}]}
    r, peak = traced_peak(lambda: small.post("/v2/models/cdr/infer", json=huge))
    assert r.status_code == 413 and r.json()["error"].startswith("over_memory_budget: "), r.text
    assert peak < 8 << 20
    head = json.dumps(
        {
            "inputs": [
                {"name": "params", "shape": [10**9, 3], "datatype": "FP64", "parameters": {"binary_data_size": 24}}
            ]
        }
    ).encode()
    r = small.post(
        "/v2/models/cdr/infer",
        content=head + np.array(MU).tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert r.status_code in (413, 422) and r.status_code != 500, r.text
    # a request that breaks the protocol elsewhere is refused for that first (422), whatever it declares
    r = small.post("/v2/models/cdr/infer", json={**huge, "outputs": [{"parameters": {}}]})
    assert r.status_code == 422 and r.json()["error"].startswith("validation_error: ")


def test_a_json_batch_over_the_budget_is_413_before_its_grid_is_built(small):
    body = {"params": [{"beta": 2.0}] * 64, "grid": {"nx": 256, "nt": 128}}  # 2 097 152 values: within the limits
    r = small.post("/solve/batch", json=body)
    assert r.status_code == 413 and r.json()["error"] == "over_memory_budget", r.text
    assert r.json()["errors"][0]["loc"] == ["body", "grid"]
    ok = small.post("/solve/batch", json={**body, "params": [{"beta": 2.0}] * 2, "grid": {"nx": 64, "nt": 16}})
    assert ok.status_code == 200


def test_the_budget_is_a_setting_with_a_floor(artifact_root):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="request_memory_bytes"):
        make_settings(artifact_root, request_memory_bytes=1 << 20)
