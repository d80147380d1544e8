"""Progress of long work: a bar on a terminal, a line every few seconds elsewhere.

On a terminal :func:`progress` is an ordinary tqdm bar. When the output is a file, a pipe or a
CI log, a bar redrawn with carriage returns would show nothing until the end (or one very long
line), so each refresh is written as its own line, at most every :data:`LOG_INTERVAL_S` seconds,
with the count, the rate and the time left (ETA).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO, Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")

LOG_INTERVAL_S = float(os.environ.get("MMRL_PROGRESS_INTERVAL", "5"))
"""Seconds between two progress lines when the output is not a terminal."""


class _Lines:
    """A text stream that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        text = text.replace("\r", "").replace("\x1b[A", "").strip()
        if text:
            self.stream.write(text + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress(
    iterable: Iterable[T] | None = None, *, stream: IO[str] | None = None, **kwargs: Any
) -> tqdm:
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), on ``stream`` (stderr).

    :param kwargs: tqdm's own (``total``, ``desc``, ``unit``, ``initial``, ...).
    """
    stream = stream or sys.stderr
    if stream.isatty():
        return tqdm(iterable, file=stream, dynamic_ncols=True, **kwargs)
    interval = LOG_INTERVAL_S
    lines = _Lines(stream)
    return tqdm(iterable, file=lines, mininterval=interval, ncols=100, ascii=True, **kwargs)
