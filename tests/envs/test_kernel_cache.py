"""A package's numba cache is emptied exactly when one of its kernels' sources changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.kernel_cache import drop_stale_kernel_cache


def test_cache_survives_unchanged_sources_and_is_emptied_when_one_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    (tmp_path / "__pycache__").mkdir()
    book, core = tmp_path / "book.py", tmp_path / "core.py"
    book.write_text("x = 1\n")
    core.write_text("y = 2\n")
    cached = tmp_path / "__pycache__" / "core.step-1.py311.nbi"

    def run() -> None:
        drop_stale_kernel_cache(tmp_path, [book, core], "kernels.sha256")

    cached.write_text("old")
    run()  # no stamp yet: whatever is cached may be stale
    assert not cached.exists()
    cached.write_text("fresh")
    run()
    assert cached.exists()
    book.write_text("x = 3\n")  # the inlined source changed, the kernel's own file did not
    run()
    assert not cached.exists()


def test_a_custom_cache_location_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "elsewhere"))
    (tmp_path / "__pycache__").mkdir()
    source = tmp_path / "core.py"
    source.write_text("y = 2\n")
    cached = tmp_path / "__pycache__" / "core.step-1.py311.nbc"
    cached.write_text("kept")
    drop_stale_kernel_cache(tmp_path, [source], "kernels.sha256")
    assert cached.exists()
