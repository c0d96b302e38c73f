"""The artifact format: a self-describing model directory ``artifacts/<model>/``.

Layout (every file except the manifest is listed in it with its sha256 and size)::

    manifest.json     schema_version, name, version, created, family, pde, ansatz, domain,
                      test_domain, served_domain, dimensions, training, eim, fast_phase,
                      error_estimate, quality, files
    lrnr.npz          LRNRWeights.to_arrays()           (A, a, U1.., V1.., b1.., w, c)
    hyper.npz         HyperWeights.to_arrays()          (W1..W3, c1..c3, H1.., e1.., low, high)
    fastlrnr.npz      the FastLRNR at the collocation points (fastlrnr.numerics.fastlrnr.ReducedOperators)
    *.onnx            exported graphs, opaque bytes (``lrnr.onnx``, ``lrnr_jets.onnx``)

``dimensions`` = {N, L, ranks: [k_1..k_L], K_max, hyper_width, eim_rank}.
``served_domain``: the box (inside ``domain``) where the model meets its accuracy target.
``fast_phase`` = {collocation: {points, seed}, check: {nx, nt} (the error proxy's grid), default: the
FastPhaseSettings the model serves by default, measured: how they were chosen}.
``error_estimate`` = {model: the ErrorModel (fastlrnr.numerics.error_estimate), how it was calibrated and
its measured quality}.
``correction`` = {nx, nt, coarse: {nx, nt}, default, error_model, ...}: the linearised
correction (fastlrnr.numerics.correction) and the calibration of its two-grid difference.

Modules: ``format`` (schema constants, required keys, file names, shared checks), ``manifest``
(:class:`Manifest`, the checked manifest.json), ``npz`` (npz bytes and the safe parser),
``reading`` (:func:`load_artifact`, :func:`verify_artifact`, :class:`Artifact`) and ``writing``
(:func:`write_artifact`).

Nothing is ever unpickled: npz files are parsed with ``allow_pickle=False`` from the
same bytes whose checksum was verified, and only files listed in the manifest are read.
Any problem — missing or non-JSON manifest, unsupported schema, foreign ansatz or PDE,
missing file, wrong size or sha256, a damaged zip, an object array, a shape that
disagrees with ``dimensions``, a non-finite value — raises :class:`ArtifactError`
naming the file and the problem. The checksums protect against damage, not forgery:
whoever can write the directory can rewrite the manifest too.
"""

from fastlrnr.numerics.artifact.format import (
    MANIFEST,
    NPZ_FILES,
    ONNX_FILES,
    REQUIRED_KEYS,
    SCHEMA_VERSION,
    ArtifactError,
)
from fastlrnr.numerics.artifact.manifest import Dimensions, Manifest, read_manifest
from fastlrnr.numerics.artifact.npz import parse_npz
from fastlrnr.numerics.artifact.reading import Artifact, list_artifacts, load_artifact, read_verified, verify_artifact
from fastlrnr.numerics.artifact.writing import Sections, republish, write_artifact

__all__ = [
    "MANIFEST",
    "NPZ_FILES",
    "ONNX_FILES",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "Sections",
    "Artifact",
    "ArtifactError",
    "Dimensions",
    "Manifest",
    "list_artifacts",
    "load_artifact",
    "parse_npz",
    "read_manifest",
    "read_verified",
    "verify_artifact",
    "republish",
    "write_artifact",
]
