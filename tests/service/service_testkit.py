"""Helpers for the service tests: small synthetic artifacts, settings and test clients.

A random LRNR (N = 32, ranks (4, 3)) and hypernetwork, reduced operators built by
``core.fastlrnr.build_fastlrnr`` and ONNX graphs by ``training.onnx_export`` (onnx only,
no torch), written with ``core.artifact.write_artifact``. The numbers mean nothing
physically; the tests check the service contract, not accuracy.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from core.artifact import write_artifact
from core.fastlrnr import FastLRNRSettings, build_fastlrnr
from core.hypernet import HyperWeights, hyper_forward
from core.lrnr import LRNRWeights
from service.settings import ServiceSettings
from training.onnx_export import lrnr_onnx

N, RANKS, K = 32, (4, 3), 8
TEST_EPOCHS = 20  # fast-phase epochs the tests ask for (keeps the suite quick on a shared CPU)


def synthetic_model(seed: int, domain) -> tuple[LRNRWeights, HyperWeights]:
    rng = np.random.default_rng(seed)
    lrnr = LRNRWeights(rng.normal(size=(N, 3)), 0.5 * rng.normal(size=N),
                       tuple(rng.normal(size=(N, k)) / np.sqrt(N) for k in RANKS),
                       tuple(rng.normal(size=(N, k)) for k in RANKS),
                       tuple(0.1 * rng.normal(size=N) for _ in RANKS), rng.normal(size=N) / np.sqrt(N), 0.1)
    hyper = HyperWeights((rng.normal(size=(K, 3)), rng.normal(size=(K, K)) / np.sqrt(K),
                          rng.normal(size=(K, K)) / np.sqrt(K)), tuple(0.1 * rng.normal(size=K) for _ in range(3)),
                         tuple(0.3 * rng.normal(size=(k, K)) for k in RANKS), tuple(np.full(k, 0.8) for k in RANKS),
                         domain.low, domain.high)
    return lrnr, hyper


def write_synthetic(directory: Path, name: str, domain, test_domain, seed: int) -> Path:
    lrnr, hyper = synthetic_model(seed, domain)
    settings = FastLRNRSettings(rank=4, params_per_axis=2, heldout=2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    as_sets = lambda mu: [[sl[i] for sl in hyper_forward(hyper, mu)] for i in range(mu.shape[0])]
    ops, eim_quality = build_fastlrnr(lrnr, as_sets(domain.grid(2)), as_sets(domain.sample(2, rng)), settings)
    return write_artifact(directory, name=name, version="0.0.1-test", domain=domain, test_domain=test_domain,
                          lrnr=lrnr, hyper=hyper, reduced_arrays=ops,
                          onnx_files={"lrnr.onnx": lrnr_onnx(lrnr), "lrnr_jets.onnx": lrnr_onnx(lrnr, jets=True)},
                          training={"synthetic": True, "seed": seed}, eim={"n": settings.rank, **eim_quality},
                          quality={"rel_l2_hyper": 0.5, "note": "synthetic test model"})


def make_settings(root: Path, **overrides) -> ServiceSettings:
    base = dict(artifact_dir=root, log_json=True, solver_threads=2, queue_capacity=8)
    base.update(overrides)
    return ServiceSettings(**base)


def make_client(app, **kwargs):
    """``fastapi.testclient.TestClient`` (its import warns that httpx2 is preferred; harmless here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, **kwargs)
