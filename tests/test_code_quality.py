"""ruff and mypy, configured in pyproject.toml, pass on the whole project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_passes():
    result = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes(tmp_path):
    result = run(str(BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy"), ".")
    assert result.returncode == 0, result.stdout + result.stderr
