"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they would catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_contracts_hold():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_a_numerics_module_importing_the_server_breaks_them(tmp_path):
    shutil.copytree(REPO / "fastlrnr", tmp_path / "fastlrnr", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    grid = tmp_path / "fastlrnr" / "numerics" / "grid.py"
    grid.write_text(grid.read_text() + "\nimport fastlrnr.server.settings  # a breach\n")
    done = lint(tmp_path)
    assert done.returncode != 0 and "BROKEN" in done.stdout
    assert "fastlrnr.numerics.grid -> fastlrnr.server.settings" in done.stdout
