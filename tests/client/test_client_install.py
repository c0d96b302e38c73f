"""The client stands alone: ``pip install ".[client]"`` (httpx + numpy) is all it needs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER_ONLY = (
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "uvicorn",
    "onnxruntime",
    "onnx",
    "torch",
)

# Makes every server-only package unimportable, then drives the client through both transports
# against a mock server (so that any import done lazily, on first use, is caught too); the
# numerics (beyond the answer's definition and the grid) must not be imported either.
SCRIPT = textwrap.dedent("""
    import io, json, sys
    BLOCKED = set(sys.argv[1].split(","))
    PURE = {"fastlrnr.numerics", "fastlrnr.numerics.answer", "fastlrnr.numerics.grid"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the client must not need it")
            return None

    sys.meta_path.insert(0, Blocker())
    if sys.argv[2] == "control":
        import fastlrnr.server.api.schemas  # must fail: proves the blocker works

    import httpx, numpy as np
    from client_testkit import solve_body
    from fastlrnr.client.clients import AsyncSolveClient, SolveClient, SolveResult

    def handler(request):
        if request.headers["accept"] == "application/x-npy":
            buf = io.BytesIO(); np.save(buf, np.ones((2, 3), np.float32))
            head = {k: v for k, v in solve_body().items() if k not in ("x", "t", "u")}
            return httpx.Response(200, content=buf.getvalue(), headers={
                "content-type": "application/x-npy", "x-solve-diagnostics": json.dumps(head)})
        return httpx.Response(200, json=solve_body())

    http = httpx.Client(base_url="http://s", transport=httpx.MockTransport(handler))
    with SolveClient("http://s", http_client=http) as c:
        a = c.solve({"beta": 2.0, "nu": 0.5, "rho": 1.0}, tolerance=0.1)
        b = c.solve({"beta": 2.0, "nu": 0.5, "rho": 1.0}, grid={"nx": 3, "nt": 2}, transport="npy")
        many = c.solve_many([{"beta": 1.0}] * 3, concurrency=2)
    assert isinstance(a, SolveResult) and b.u.shape == (2, 3) and len(many) == 3
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    # the answer's definition and the grid's size are pure Python; nothing else of core
    numerics = sorted(m for m in sys.modules if m.startswith("fastlrnr.numerics") and m not in PURE)
    assert not numerics, f"the client imported the numerics: {numerics}"
    print("client ok without", len(BLOCKED), "server packages")
""")


def run(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(SERVER_ONLY), mode],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=120,
        env={"PYTHONPATH": f"{REPO}:{REPO / 'tests' / 'kits'}", "PATH": "/usr/bin:/bin"},
    )


def test_client_imports_and_works_without_server_packages():
    done = run("client")
    assert done.returncode == 0, done.stderr
    assert "client ok without 9 server packages" in done.stdout


def test_the_blocker_does_block():
    done = run("control")
    assert done.returncode != 0 and "is blocked: the client must not need it" in done.stderr


def test_client_extra_is_httpx_on_a_numpy_only_base():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert [d.split(">")[0].split("<")[0].split("=")[0] for d in project["dependencies"]] == ["numpy"]
    assert [d.split(">")[0] for d in project["optional-dependencies"]["client"]] == ["httpx"]


def test_importing_the_client_loads_neither_the_numerics_nor_the_server():
    """``import fastlrnr.client.clients`` as it is (nothing blocked): the answer's definition and the grid's
    size come with it (``fastlrnr.numerics.answer``, ``fastlrnr.numerics.grid``: pure Python), the numerics, the solver
    and onnxruntime do not (``fastlrnr/numerics/__init__`` loads its names on first use)."""
    code = "import json, sys; import fastlrnr.client.clients; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert {"fastlrnr.numerics.answer", "fastlrnr.numerics.grid", "fastlrnr.client.results"} <= loaded
    server_side = (
        "fastlrnr.numerics.correction",
        "fastlrnr.numerics.jet_chain",
        "fastlrnr.numerics.lrnr",
        "fastlrnr.numerics.fast_phase",
        "onnxruntime",
        "fastlrnr.server.engine.solver",
        "fastlrnr.server.api.responses",
        "fastlrnr.server.api.schemas",
    )
    assert not loaded & set(server_side), sorted(loaded & set(server_side))
