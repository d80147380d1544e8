"""A package's numba cache is emptied exactly when one of its kernels' sources changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.kernel_cache import drop_stale_kernel_cache, renamed


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


def test_each_parallel_kernel_has_cache_files_of_its_own():
    """numba names cache files after the function, not the compile flags: a parallel build of
    the serial kernel's function would load the serial machine code (one thread)."""
    from envs.lob import book, core
    from envs.replay import core as replay_core

    for serial, parallel in (
        (book.simulate, book.simulate_parallel),
        (core.step_kernel, core.step_kernel_parallel),
        (replay_core.step_kernel, replay_core.step_kernel_parallel),
    ):
        assert parallel.targetoptions.get("parallel") is True
        assert parallel.py_func.__qualname__ != serial.py_func.__qualname__
        assert parallel.py_func.__code__ is serial.py_func.__code__  # one implementation


def test_renamed_copies_a_function_under_a_new_name_only():
    def scale(x, factor=2):
        """Doc."""
        return x * factor

    copy = renamed(scale, "_twin")
    assert copy.__qualname__.endswith("scale_twin") and copy.__name__ == "scale_twin"
    assert copy(3) == scale(3) == 6 and copy.__doc__ == "Doc."
    with pytest.raises(TypeError, match="plain functions"):
        renamed(len, "_twin")
