"""fastlrnr/numerics/artifact/: the Manifest view, the sections= call path and the shared checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastlrnr.numerics.artifact import (
    ArtifactError,
    Manifest,
    Sections,
    load_artifact,
    read_manifest,
    republish,
    write_artifact,
)
from fastlrnr.numerics.artifact.format import array_problem, is_int
from fastlrnr.numerics.artifact.npz import npz_bytes, parse_npz
from fastlrnr.numerics.correction import CorrectionSpec
from fastlrnr.numerics.error_estimate import ErrorModel
from fastlrnr.numerics.families.cdr import CDR, CDR_FAMILY
from fastlrnr.numerics.fast_phase import FastPhaseSettings
from fastlrnr.numerics.random_model import random_hyper, random_lrnr
from fastlrnr.training.synthetic_artifact import synthetic_parts

RANKS = (4, 3)
SECTION_KEYS = ("training", "eim", "fast_phase", "error_estimate", "correction", "quality")


def _arguments() -> tuple[dict, dict]:
    """(the model's keywords, the six sections' keywords) of a small artifact."""
    lrnr, hyper = random_lrnr(16, RANKS, seed=3), random_hyper(RANKS, CDR, width=6, seed=3)
    parts = synthetic_parts(lrnr, hyper, CDR, points=16, rank=3, family=CDR_FAMILY)
    model = {
        "name": "m",
        "version": "1.0",
        "domain": CDR,
        "test_domain": CDR,
        "served_domain": parts.pop("served_domain"),
        "family": parts.pop("family"),
        "lrnr": lrnr,
        "hyper": hyper,
        "reduced_arrays": parts.pop("reduced_arrays"),
        "onnx_files": {"lrnr.onnx": b"\x08\x08fake"},
        "created": "2026-01-01T00:00:00+00:00",
    }
    sections = {"training": {"seed": 3}, "eim": {"n": 3}, "quality": {"note": "test"}, **parts}
    return model, sections


def test_sections_and_keywords_write_the_same_bytes(tmp_path):
    model, sections = _arguments()
    a = write_artifact(tmp_path / "a", **model, **sections)
    b = write_artifact(tmp_path / "b", **model, sections=Sections(**sections))
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_sections_one_way_only(tmp_path):
    model, sections = _arguments()
    with pytest.raises(TypeError, match="not both"):
        write_artifact(tmp_path / "a", **model, sections=Sections(**sections), training={})
    del sections["quality"]
    with pytest.raises(TypeError):
        write_artifact(tmp_path / "b", **model, **sections)
    assert not (tmp_path / "b").exists()


def test_manifest_view_matches_the_artifact(tmp_path):
    model, sections = _arguments()
    path = write_artifact(tmp_path / "a", **model, **sections)
    m = read_manifest(path)
    art = load_artifact(path)
    assert isinstance(m, Manifest)
    assert (m.name, m.version, m.created, m.family.name) == ("m", "1.0", model["created"], "cdr")
    assert m.raw == art.manifest and m.sha256 == art.sha256
    assert m.domain.bounds == art.domain.bounds and m.served_domain.bounds == art.served_domain.bounds
    assert m.dimensions == art.dimensions and m.dimensions.ranks == tuple(RANKS)
    assert m.dimensions.to_dict() == m.raw["dimensions"]
    assert isinstance(m.fast_phase, FastPhaseSettings) and isinstance(m.error_model, ErrorModel)
    assert isinstance(m.correction, CorrectionSpec) and m.a_priori is not None
    assert m.collocation == (16, 0)
    assert set(m.files) == {"lrnr.npz", "hyper.npz", "fastlrnr.npz", "lrnr.onnx"}
    assert set(json.loads((path / "manifest.json").read_text())) >= set(SECTION_KEYS)


def test_republish_replaces_sections_and_copies_every_other_byte(tmp_path):
    """A recalibration reaches an artifact by republishing it (atomically, verified), never by
    editing its manifest in place: unchanged, it is byte for byte the same; a new section changes
    that section alone; a section the loader refuses replaces nothing."""
    model, sections = _arguments()
    path = write_artifact(tmp_path / "a", **model, **sections)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    art = load_artifact(path)
    republish(art, tmp_path / "copy")
    assert {p.name: p.read_bytes() for p in (tmp_path / "copy").iterdir()} == before
    corr = {**art.manifest["correction"], "note": "recalibrated"}
    assert republish(art, correction=corr) == path
    after = {p.name: p.read_bytes() for p in path.iterdir()}
    assert {k for k in before if before[k] != after[k]} == {"manifest.json"}
    m_before, m_after = json.loads(before["manifest.json"]), json.loads(after["manifest.json"])
    assert m_after["correction"]["note"] == "recalibrated"
    assert {k for k in m_before if m_before[k] != m_after[k]} == {"correction"}
    with pytest.raises(ArtifactError, match="correction"):
        republish(load_artifact(path), correction={**corr, "nx": -3})
    assert {p.name: p.read_bytes() for p in path.iterdir()} == after  # nothing was replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "copy"]  # no staging left behind
    with pytest.raises(TypeError, match="not manifest sections"):
        republish(art, files={})


def test_read_manifest_reads_no_other_file(tmp_path):
    model, sections = _arguments()
    path = write_artifact(tmp_path / "a", **model, **sections)
    (path / "lrnr.npz").write_bytes(b"damaged")
    assert read_manifest(path).name == "m"  # the manifest alone is fine
    with pytest.raises(ArtifactError, match="size mismatch"):
        load_artifact(path)


def test_shared_checks_agree_for_writer_and_reader():
    assert is_int(3) and is_int(0, 0) and not is_int(0, 1) and not is_int(True) and not is_int(2.0)
    assert array_problem("a", np.zeros(2)) is None
    assert "non-finite" in array_problem("a", np.array([np.nan]))
    assert "only numeric" in array_problem("a", np.array(["x"]))
    with pytest.raises(ValueError, match="non-finite"):
        npz_bytes({"a": np.array([np.inf])}, "x.npz")
    with pytest.raises(ValueError, match="identifiers"):
        npz_bytes({"1a": np.zeros(1)}, "x.npz")
    arrays = parse_npz(Path("x.npz"), npz_bytes({"a": np.arange(3.0), "b": np.eye(2)}, "x.npz"))
    assert set(arrays) == {"a", "b"} and np.array_equal(arrays["b"], np.eye(2))
