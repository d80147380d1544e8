"""Keep numba's on-disk kernel cache honest when a kernel inlines code from other files.

numba (``njit(cache=True)``) checks a cached kernel against its own source file only. A step
kernel that inlines functions of another module would survive an edit of that module with the
old code. :func:`drop_stale_kernel_cache` prevents that: it hashes every source a package's
kernels are built from, compares the hash with the one stored beside the package's cache, and
empties that cache when they differ.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FunctionType
from typing import Any


def drop_stale_kernel_cache(package: Path, sources: Sequence[Path], stamp: str) -> None:
    """Empty ``package/__pycache__``'s numba files (``*.nbi``, ``*.nbc``) when a source changed.

    :param package: the folder of the package whose kernels are cached.
    :param sources: every file its kernels are compiled from.
    :param stamp: name of the file, in the cache folder, that keeps the sources' hash.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # a custom cache location is the user's to manage
    cache = package / "__pycache__"
    try:
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
        stamp_file = cache / stamp
        if stamp_file.is_file() and stamp_file.read_text() == digest:
            return
        for path in cache.glob("*.nb[ic]"):
            path.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp_file.write_text(digest)
    except OSError:  # read-only install: numba then cannot cache here either
        return


def renamed(fn: Callable[..., Any], suffix: str) -> Callable[..., Any]:
    """A copy of the plain function ``fn`` named ``<name><suffix>``.

    numba names a kernel's cache files after the function's qualified name and line, not its
    compile flags: a serial and a ``parallel=True`` build of one function share them, and
    the second to compile loads the first one's machine code from disk (the "parallel" step
    kernel ran on one thread). Compiling the parallel build from a renamed copy gives it its
    own cache files.
    """
    if not isinstance(fn, FunctionType):
        raise TypeError(f"renamed() copies plain functions, got {type(fn).__name__}")
    copy = FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__,
                        fn.__closure__)  # fmt: skip
    copy.__qualname__ = fn.__qualname__ + suffix
    copy.__doc__ = fn.__doc__
    copy.__module__ = fn.__module__
    return copy
