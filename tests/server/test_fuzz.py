"""Hypothesis fuzz of /solve and /solve/batch bodies: no input may cause a 5xx or leak a traceback."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testkit import make_client, make_settings

from fastlrnr.server.app import create_app

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-5, 5),
    st.sampled_from([0, 1, 2, 0.5, -0.0, 1e-300, 1e308]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
maybe = lambda s: st.one_of(s, json_values)

params = maybe(st.dictionaries(st.sampled_from(["beta", "nu", "rho", "gamma"]), maybe(numbers), max_size=4))
small_int = st.integers(-3, 70)
grid = maybe(
    st.one_of(
        st.fixed_dictionaries({}, optional={"nx": maybe(small_int), "nt": maybe(small_int)}),
        st.fixed_dictionaries({"nx": st.integers(-1, 10**7), "nt": st.integers(-1, 10**7)}),
        st.fixed_dictionaries(
            {},
            optional={
                "x": maybe(st.lists(numbers, max_size=8)),
                "t": maybe(st.lists(st.floats(-0.5, 1.5), max_size=8)),
            },
        ),
        st.fixed_dictionaries({"points": maybe(st.lists(st.lists(numbers, min_size=1, max_size=3), max_size=8))}),
    )
)
fast_phase = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "steps": maybe(st.integers(-5, 40)),
            "locality": maybe(st.one_of(st.just("auto"), numbers)),
            "enabled": maybe(st.booleans()),
        },
    )
)
body = st.fixed_dictionaries(
    {},
    optional={
        "model": maybe(st.sampled_from(["cdr", "convection", "nope", ""])),
        "params": params,
        "grid": grid,
        "fast_phase": fast_phase,
        "allow_extrapolation": maybe(st.booleans()),
        "extra": json_values,
    },
)

# Near-valid bodies, so that the fuzz also reaches the solver (edges of domains, grids, options).
good_params = st.fixed_dictionaries(
    {"beta": st.floats(0.5, 4.5)}, optional={"nu": st.floats(0.0, 2.5), "rho": st.floats(0.0, 2.5)}
)
good_grid = st.one_of(
    st.fixed_dictionaries({"nx": st.integers(1, 24), "nt": st.integers(1, 6)}),
    st.fixed_dictionaries(
        {
            "x": st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=6),
            "t": st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
        }
    ),
    st.fixed_dictionaries(
        {"points": st.lists(st.tuples(st.floats(-1e300, 1e300), st.floats(0.0, 1.0)), min_size=1, max_size=6)}
    ),
)
good_fp = st.fixed_dictionaries(
    {},
    optional={
        "steps": st.integers(0, 30),
        "enabled": st.booleans(),
        "locality": st.one_of(st.just("auto"), st.floats(0.0, 1e6)),
    },
)
near_valid = st.fixed_dictionaries(
    {"params": good_params, "grid": good_grid, "fast_phase": good_fp},
    optional={"model": st.sampled_from(["cdr", "convection"]), "allow_extrapolation": st.booleans()},
)
body = st.one_of(near_valid, near_valid, body)
batch_body = st.one_of(
    st.fixed_dictionaries(
        {"params": st.lists(good_params, min_size=1, max_size=9), "grid": good_grid, "fast_phase": good_fp},
        optional={"allow_extrapolation": st.booleans()},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "model": maybe(st.sampled_from(["cdr", "convection"])),
            "params": maybe(st.lists(params, max_size=10)),
            "grid": grid,
            "fast_phase": fast_phase,
            "allow_extrapolation": maybe(st.booleans()),
        },
    ),
)


@pytest.fixture(scope="module")
def fuzz_client(artifact_root):
    s = make_settings(artifact_root, max_grid_points=4096, max_steps=30, max_batch_size=8, warmup=False)
    with make_client(create_app(s)) as c:
        yield c


def check(r) -> None:
    assert r.status_code < 500, r.text[:500]
    assert "Traceback" not in r.text
    if r.status_code >= 400:
        d = r.json()
        assert set(d) == {"error", "message", "request_id", "errors"}
    elif r.headers["content-type"] == "application/json":
        d = r.json()
        for u in [d["u"]] if "u" in d else [it["u"] for it in d["results"]]:
            assert np.all(np.isfinite(np.asarray(u, dtype=float)))


def raw(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()  # NaN / Infinity literals reach the server too


@FUZZ
@given(body=body, npy=st.booleans())
def test_fuzz_solve(fuzz_client, body, npy):
    r = fuzz_client.post(
        "/solve" + ("?format=npy" if npy else ""), content=raw(body), headers={"content-type": "application/json"}
    )
    check(r)


@FUZZ
@given(body=batch_body)
def test_fuzz_batch(fuzz_client, body):
    check(fuzz_client.post("/solve/batch", content=raw(body), headers={"content-type": "application/json"}))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.binary(max_size=64), ctype=st.sampled_from(["application/json", "text/plain", "", "application/x-npy"]))
def test_fuzz_raw_bytes(fuzz_client, data, ctype):
    check(fuzz_client.post("/solve", content=data, headers={"content-type": ctype} if ctype else {}))


def test_fuzz_found_values_are_finite_json():
    # json.dumps(allow_nan=True) writes NaN/Infinity; make sure the strategies produce them at all
    assert "NaN" in raw({"a": math.nan}).decode() and "Infinity" in raw({"a": math.inf}).decode()
