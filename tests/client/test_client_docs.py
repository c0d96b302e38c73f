"""The client examples in README.md and docs/service.md run as written (against the app, with
the clients' HTTP connections routed to it in-process)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from fastlrnr.client.clients import BatchResult, FitResult, SolveResult

REPO = Path(__file__).resolve().parents[2]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture
def routed(client, monkeypatch):
    """httpx.Client / AsyncClient built by the service clients talk to the test app."""
    real_sync, real_async = httpx.Client, httpx.AsyncClient
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(f"{request.url.scheme}://{request.url.host}:{request.url.port}{request.url.path}")
        r = client.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers=dict(request.headers),
        )
        # r.content is already decoded: pass the headers on without the encoding and length
        headers = {k: v for k, v in r.headers.items() if k.lower() not in ("content-encoding", "content-length")}
        return httpx.Response(r.status_code, headers=headers, content=r.content)

    monkeypatch.setattr(httpx, "Client", lambda **kw: real_sync(transport=httpx.MockTransport(handler), **kw))
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real_async(transport=httpx.MockTransport(handler), **kw))
    return urls


def test_readme_client_example(routed, capsys):
    readme = (REPO / "README.md").read_text()
    [block] = [b for b in python_blocks(readme) if "from fastlrnr.client import" in b]
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    assert isinstance(ns["res"], SolveResult) and ns["res"].u.shape == (100, 256)
    assert routed == ["http://127.0.0.1:8000/solve"]
    assert str(ns["res"].error_estimate) in capsys.readouterr().out


def test_service_doc_client_examples(routed):
    doc = (REPO / "docs" / "service.md").read_text()
    section = doc[doc.index("## Python client") : doc.index("## Load test")]
    sync_block, async_block = python_blocks(section)
    ns: dict = {}
    exec(compile(sync_block, "docs/service.md", "exec"), ns)
    res, batch, many = ns["res"], ns["batch"], ns["many"]
    assert res.u.shape == (100, 256) and res.diagnostics.fast_phase.steps_requested == 8
    assert res.within_tolerance is not None
    assert isinstance(batch, BatchResult) and batch.u.shape == (2, 100, 256)
    assert [r.params["beta"] for r in many] == [1.0 + 0.1 * i for i in range(20)]
    assert ns["sweep"].u.shape == (100, 3) and ns["sweep"].requests == 1 and ns["sweep"].within_tolerance.all()
    assert isinstance(ns["fit"], FitResult) and ns["fit"].free == ["beta", "nu", "rho"]
    ns = {}
    exec(compile(async_block, "docs/service.md", "exec"), ns)
    assert [r.params for r in ns["results"]] == [
        {"beta": 1.5, "nu": 0.2, "rho": 0.3},
        {"beta": 2.5, "nu": 1.0, "rho": 1.0},
    ]
    assert routed.count("http://127.0.0.1:8000/readyz") == 2
