"""The sample data carried by the project: complete, unaltered, and found without any folder
beside the clone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from data.samples import (
    AAPL_FIXTURE,
    AAPL_MESSAGES,
    CHECKSUMS,
    GOOG_MESSAGES,
    NEXO_CAPTURES,
    SAMPLES_DIR,
    checksums,
    data_dir,
    data_file,
    relative_name,
)
from data.schema import sha256_file

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ("../" + "shared", "/work/" + "shared")
"""Folders beside a checkout that a clone does not have (spelled in parts so this file passes)."""


def test_every_sample_file_matches_its_checksum() -> None:
    expected = checksums()
    on_disk = {
        p.relative_to(SAMPLES_DIR).as_posix()
        for p in SAMPLES_DIR.rglob("*")
        if p.is_file() and p.name not in {"README.md", CHECKSUMS.name}
    }
    assert on_disk == set(expected), "data/samples/ and SHA256SUMS list different files"
    for name, digest in expected.items():
        assert sha256_file(SAMPLES_DIR / name) == digest, f"data/samples/{name} was altered"


def test_the_readme_gives_each_data_files_checksum() -> None:
    readme = (SAMPLES_DIR / "README.md").read_text()
    for name, digest in checksums().items():
        if name.endswith((".gz", ".csv")):
            assert digest[:16] in readme, f"data/samples/README.md lacks the SHA-256 of {name}"


def test_named_samples_exist() -> None:
    for name in (GOOG_MESSAGES, AAPL_MESSAGES, AAPL_FIXTURE, *NEXO_CAPTURES):
        assert (SAMPLES_DIR / name).is_file(), name


def test_data_dir_is_the_samples_unless_mm_data_dir_is_set(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MM_DATA_DIR", raising=False)
    assert data_dir() == SAMPLES_DIR
    assert data_file(GOOG_MESSAGES) == SAMPLES_DIR / GOOG_MESSAGES
    assert relative_name(SAMPLES_DIR / GOOG_MESSAGES) == GOOG_MESSAGES
    monkeypatch.setenv("MM_DATA_DIR", str(tmp_path))
    assert data_file("x/y.csv") == tmp_path / "x" / "y.csv"
    assert data_file(SAMPLES_DIR / AAPL_FIXTURE) == SAMPLES_DIR / AAPL_FIXTURE  # absolute: kept
    assert relative_name(SAMPLES_DIR / AAPL_FIXTURE) == str(SAMPLES_DIR / AAPL_FIXTURE)


@pytest.mark.parametrize("suffix", ["*.py", "*.yaml", "*.ipynb", "Makefile", "*.md"])
def test_nothing_reads_a_folder_beside_the_clone(suffix: str) -> None:
    """A clone alone runs every command: no file points at a folder beside the checkout."""
    files = subprocess.run(
        ["git", "ls-files", suffix], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = []
    for name in files:
        for n, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1):
            if any(folder in line for folder in OUTSIDE):
                bad.append(f"{name}:{n}: {line.strip()[:80]}")
    assert not bad, "\n".join(bad)
