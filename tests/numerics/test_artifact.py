"""fastlrnr/numerics/artifact.py: round trip, and a clear refusal for every kind of damage."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.artifact import (
    SCHEMA_VERSION,
    ArtifactError,
    list_artifacts,
    load_artifact,
    verify_artifact,
    write_artifact,
)
from fastlrnr.numerics.error_estimate import ErrorModel
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.fast_phase import FastPhaseSettings
from fastlrnr.numerics.hypernet import hyper_forward
from fastlrnr.numerics.lrnr import lrnr_forward
from fastlrnr.numerics.random_model import random_hyper, random_lrnr
from fastlrnr.training.synthetic_artifact import synthetic_parts

N, RANKS, K = 32, (4, 3, 2), 8


ONNX = {"lrnr.onnx": b"\x08\x08fake-onnx-bytes", "lrnr_jets.onnx": b"\x08\x08fake-jets"}


def parts(lrnr, hyper, points=16, rank=3) -> dict:
    """The fast-phase keyword arguments of write_artifact (reduced operators at ``points``)."""
    return synthetic_parts(lrnr, hyper, CDR, points=points, rank=rank, family=CDR_FAMILY)


@pytest.fixture
def weights():
    return random_lrnr(N, RANKS, seed=7), random_hyper(RANKS, CDR, width=K, seed=7)


@pytest.fixture
def art(tmp_path, weights) -> Path:
    lrnr, hyper = weights
    return write_artifact(
        tmp_path / "cdr",
        name="cdr",
        version="0.1.0",
        domain=CDR,
        test_domain=CDR,
        lrnr=lrnr,
        hyper=hyper,
        onnx_files=ONNX,
        training={"epochs": 3, "lr": 1e-3},
        eim={"n": 3},
        quality={"eim_error": [1e-3, 2e-3, 3e-3]},
        **parts(lrnr, hyper),
    )


def rewrite_manifest(directory: Path, **changes) -> dict:
    m = json.loads((directory / "manifest.json").read_text())
    m.update(changes)
    (directory / "manifest.json").write_text(json.dumps(m))
    return m


def relist(directory: Path, fname: str) -> None:
    """Update the manifest's sha256/size of ``fname`` so only deeper checks can catch it."""
    m = json.loads((directory / "manifest.json").read_text())
    data = (directory / fname).read_bytes()
    m["files"][fname] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (directory / "manifest.json").write_text(json.dumps(m))


def refused(directory: Path, *fragments: str) -> str:
    for check in (verify_artifact, load_artifact):
        with pytest.raises(ArtifactError) as info:
            check(directory)
        msg = str(info.value)
        for frag in fragments:
            assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def test_round_trip(art, weights):
    lrnr, hyper = weights
    a = load_artifact(art)
    assert (a.name, a.version, a.directory) == ("cdr", "0.1.0", art)
    assert a.domain == CDR and a.test_domain == CDR
    assert a.manifest["schema_version"] == SCHEMA_VERSION and a.manifest["ansatz"] == CDR_FAMILY.ansatz
    assert a.manifest["dimensions"] == {
        "N": N,
        "L": 3,
        "ranks": list(RANKS),
        "K_max": K,
        "hyper_width": K,
        "eim_rank": 3,
    }
    assert a.sha256 == hashlib.sha256((art / "manifest.json").read_bytes()).hexdigest()
    assert set(a.manifest["files"]) == {"lrnr.npz", "hyper.npz", "fastlrnr.npz", "lrnr.onnx", "lrnr_jets.onnx"}
    assert a.lrnr.A.dtype == np.float64
    for key, arr in lrnr.to_arrays().items():
        np.testing.assert_array_equal(a.lrnr.to_arrays()[key], arr)
    for key, arr in hyper.to_arrays().items():
        np.testing.assert_array_equal(a.hyper.to_arrays()[key], arr)
    expected = parts(lrnr, hyper)
    for key, arr in expected["reduced_arrays"].to_arrays().items():
        np.testing.assert_array_equal(a.reduced.to_arrays()[key], arr)
    assert {k: p.read_bytes() for k, p in a.onnx.items()} == ONNX
    assert a.fast_phase == FastPhaseSettings.from_dict(expected["fast_phase"]["default"])
    assert a.served_domain == CDR
    np.testing.assert_array_equal(a.error_model.coef, ErrorModel.from_dict(expected["error_estimate"]["model"]).coef)
    mu = np.array([2.0, 1.0, 0.5])
    x, t = np.linspace(0, 6, 7), np.linspace(0, 1, 7)
    np.testing.assert_array_equal(
        lrnr_forward(a.lrnr, hyper_forward(a.hyper, mu), x, t, family=CDR_FAMILY),
        lrnr_forward(lrnr, hyper_forward(hyper, mu), x, t, family=CDR_FAMILY),
    )
    assert verify_artifact(art) == a.manifest
    assert list_artifacts(art.parent) == [art]
    assert not any(p.name.startswith(".") for p in art.parent.iterdir())  # no temp dirs left


def test_write_refuses_to_clobber_and_overwrites_on_request(art, weights):
    lrnr, hyper = weights
    kw = dict(
        name="cdr",
        domain=CDR,
        test_domain=CDR,
        lrnr=lrnr,
        hyper=hyper,
        onnx_files={},
        training={},
        eim={},
        quality={},
        **parts(lrnr, hyper),
    )
    with pytest.raises(FileExistsError):
        write_artifact(art, version="0.2.0", **kw)
    write_artifact(art, version="0.2.0", overwrite=True, **kw)
    a = load_artifact(art)
    assert a.version == "0.2.0" and a.onnx == {} and a.manifest["dimensions"]["eim_rank"] is None
    assert [p.name for p in art.parent.iterdir()] == ["cdr"]


def test_write_refuses_bad_inputs(tmp_path, weights):
    lrnr, hyper = weights
    kw = dict(
        name="m",
        version="1",
        domain=CDR,
        test_domain=CDR,
        lrnr=lrnr,
        hyper=hyper,
        onnx_files={},
        training={},
        eim={},
        quality={},
        **parts(lrnr, hyper),
    )
    with pytest.raises(ValueError, match="non-finite"):
        write_artifact(tmp_path / "a", **{**kw, "reduced_arrays": {"M": np.array([1.0, np.nan])}})
    with pytest.raises(ValueError, match="JSON"):
        write_artifact(tmp_path / "b", **{**kw, "quality": {"err": float("nan")}})
    with pytest.raises(ValueError, match="heads"):
        write_artifact(tmp_path / "c", **{**kw, "lrnr": random_lrnr(N, (4, 3), seed=1)})
    with pytest.raises(ValueError, match=".onnx"):
        write_artifact(tmp_path / "d", **{**kw, "onnx_files": {"../evil.onnx": b"x"}})
    assert list(tmp_path.iterdir()) == []


def test_corrupted_byte_fails_checksum(art):
    data = bytearray((art / "lrnr.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (art / "lrnr.npz").write_bytes(bytes(data))
    msg = refused(art, "lrnr.npz", "sha256 mismatch")
    assert json.loads((art / "manifest.json").read_text())["files"]["lrnr.npz"]["sha256"] in msg


def test_truncated_file_fails_size(art):
    data = (art / "hyper.npz").read_bytes()
    (art / "hyper.npz").write_bytes(data[: len(data) // 2])
    refused(art, "hyper.npz", "size mismatch", str(len(data)), str(len(data) // 2))


def test_truncated_zip_with_matching_manifest(art):
    data = (art / "lrnr.npz").read_bytes()
    (art / "lrnr.npz").write_bytes(data[: len(data) - 100])
    relist(art, "lrnr.npz")
    refused(art, "lrnr.npz", "not a valid npz")


def test_corrupted_zip_member_with_matching_manifest(art):
    data = bytearray((art / "lrnr.npz").read_bytes())
    data[200] ^= 0xFF  # inside the first member's array data: the zip CRC catches it
    (art / "lrnr.npz").write_bytes(bytes(data))
    relist(art, "lrnr.npz")
    refused(art, "lrnr.npz", "not a valid npz")


def test_wrong_sha_in_manifest(art):
    m = json.loads((art / "manifest.json").read_text())
    m["files"]["fastlrnr.npz"]["sha256"] = "0" * 64
    (art / "manifest.json").write_text(json.dumps(m))
    refused(art, "fastlrnr.npz", "sha256 mismatch", "0" * 64)


def test_onnx_file_is_checksummed_too(art):
    (art / "lrnr_jets.onnx").write_bytes(b"\x08\x08fake-jetz")
    refused(art, "lrnr_jets.onnx", "sha256 mismatch")


def test_unsupported_schema_version(art):
    rewrite_manifest(art, schema_version=999)
    refused(art, "manifest.json", "schema_version 999", f"schema_version {SCHEMA_VERSION}")


def test_foreign_ansatz(art):
    rewrite_manifest(art, ansatz="u = w.h_L + c")
    refused(art, "manifest.json", "ansatz")


def test_missing_file(art):
    (art / "hyper.npz").unlink()
    refused(art, "hyper.npz", "missing")


def test_missing_manifest(art):
    (art / "manifest.json").unlink()
    refused(art, "manifest.json", "missing")


def test_required_npz_must_be_listed(art):
    m = json.loads((art / "manifest.json").read_text())
    del m["files"]["fastlrnr.npz"]
    (art / "manifest.json").write_text(json.dumps(m))
    refused(art, "manifest.json", "fastlrnr.npz")


def test_path_outside_the_directory_is_refused(art):
    m = json.loads((art / "manifest.json").read_text())
    m["files"]["../lrnr.npz"] = m["files"]["lrnr.npz"]
    (art / "manifest.json").write_text(json.dumps(m))
    refused(art, "manifest.json", "invalid name")


def test_object_array_is_refused_without_unpickling(art):
    arrays = dict(np.load(art / "fastlrnr.npz", allow_pickle=False))
    arrays["evil"] = np.array([{"a": 1}, None], dtype=object)
    np.savez(art / "fastlrnr.npz", allow_pickle=True, **arrays)
    relist(art, "fastlrnr.npz")  # checksums agree: only the pickle guard stands in the way
    msg = refused(art, "fastlrnr.npz", "object array")
    assert "pickle" in msg


def test_non_npy_member_is_refused(art):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("A.pkl", b"not an array")
    (art / "lrnr.npz").write_bytes(buf.getvalue())
    relist(art, "lrnr.npz")
    refused(art, "lrnr.npz", "unexpected member 'A.pkl'")


def test_shape_disagreeing_with_manifest(art):
    arrays = dict(np.load(art / "lrnr.npz", allow_pickle=False))
    arrays["U2"] = arrays["U2"][:, :2]
    arrays["V2"] = arrays["V2"][:, :2]
    np.savez(art / "lrnr.npz", **arrays)
    relist(art, "lrnr.npz")
    refused(art, "lrnr.npz", "'U2'", f"({N}, 3)", f"({N}, 2)")


def test_dimensions_disagreeing_with_arrays(art):
    m = json.loads((art / "manifest.json").read_text())
    m["dimensions"]["N"] = 64
    (art / "manifest.json").write_text(json.dumps(m))
    refused(art, "lrnr.npz", "expected shape (64, 3)")


def test_missing_and_extra_arrays(art):
    arrays = dict(np.load(art / "hyper.npz", allow_pickle=False))
    arrays["H4"] = arrays.pop("H3")
    np.savez(art / "hyper.npz", **arrays)
    relist(art, "hyper.npz")
    refused(art, "hyper.npz", "missing ['H3']", "unexpected ['H4']")


def test_reduced_operators_must_build_and_agree(tmp_path, weights):
    lrnr, hyper = weights
    base = parts(lrnr, hyper)
    kw = dict(
        name="m",
        version="1",
        domain=CDR,
        test_domain=CDR,
        lrnr=lrnr,
        hyper=hyper,
        onnx_files={},
        training={},
        eim={"n": 3},
        quality={},
        fast_phase=base["fast_phase"],
        served_domain=base["served_domain"],
        error_estimate=base["error_estimate"],
        correction=base["correction"],
        family=CDR_FAMILY,
    )
    arrays = base["reduced_arrays"].to_arrays()
    write_artifact(tmp_path / "a", reduced_arrays={k: v for k, v in arrays.items() if k != "w"}, **kw)
    verify_artifact(tmp_path / "a")  # raw arrays pass; building the operators does not
    with pytest.raises(ArtifactError, match="fastlrnr.npz: cannot build the reduced operators"):
        load_artifact(tmp_path / "a")
    write_artifact(tmp_path / "b", reduced_arrays=parts(lrnr, hyper, rank=4)["reduced_arrays"], **kw)
    with pytest.raises(ArtifactError, match="fastlrnr.npz: reduced operators have EIM rank 4, the manifest says 3"):
        load_artifact(tmp_path / "b")
    write_artifact(tmp_path / "c", reduced_arrays=parts(lrnr, hyper, points=20)["reduced_arrays"], **kw)
    with pytest.raises(ArtifactError, match="collocation points"):
        load_artifact(tmp_path / "c")


def test_served_domain_error_model_and_fast_phase_are_checked(art):
    m = json.loads((art / "manifest.json").read_text())
    wide = {**m["served_domain"], "bounds": {**m["served_domain"]["bounds"], "beta": [0.5, 3.0]}}
    rewrite_manifest(art, served_domain=wide)
    refused(art, "manifest.json", "served_domain", "not inside")
    rewrite_manifest(art, served_domain=m["served_domain"], error_estimate={"model": {"coef": [1, 2]}})
    refused(art, "manifest.json", "error_estimate.model")
    rewrite_manifest(
        art, error_estimate=m["error_estimate"], fast_phase={**m["fast_phase"], "default": {"backend": "gpu"}}
    )
    refused(art, "manifest.json", "fast_phase", "backend")
    for bad in ({"points": 256, "seed": 1}, {"nx": 2, "nt": 17}, {"nx": 16.0, "nt": 17}):
        rewrite_manifest(art, fast_phase={**m["fast_phase"], "check": bad})
        refused(art, "manifest.json", "fast_phase", "check")
    rewrite_manifest(art, fast_phase=m["fast_phase"])
    c = m["correction"]
    for bad in (
        {**c, "coarse": {"nx": 16, "nt": 9}},  # not coarser
        {**c, "default": 1},
        {**c, "nx": 4000},
        {**c, "error_model": {"coef": [1.0]}},
        {**c, "substeps": 3},  # not the first rung's
        {**c, "rungs": []},
        {k: v for k, v in c.items() if k != "coarse"},
    ):
        rewrite_manifest(art, correction=bad)
        refused(art, "manifest.json", "correction")


def test_non_finite_values(art):
    arrays = dict(np.load(art / "lrnr.npz", allow_pickle=False))
    arrays["w"][3] = np.inf
    np.savez(art / "lrnr.npz", **arrays)
    relist(art, "lrnr.npz")
    refused(art, "lrnr.npz", "'w'", "non-finite")


def test_hyper_bounds_must_match_domain(art):
    arrays = dict(np.load(art / "hyper.npz", allow_pickle=False))
    arrays["high"] = arrays["high"] * 2
    np.savez(art / "hyper.npz", **arrays)
    relist(art, "hyper.npz")
    refused(art, "hyper.npz", "normalisation bounds")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe"])
def test_non_json_manifest(art, text):
    (art / "manifest.json").write_bytes(text.encode("latin-1"))
    refused(art, "manifest.json")


def test_list_artifacts_skips_non_artifacts(tmp_path, art):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert list_artifacts(tmp_path) == [art]
    assert list_artifacts(tmp_path / "nowhere") == []
