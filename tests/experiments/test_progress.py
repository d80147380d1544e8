"""Progress of long work when the output is not a terminal: whole lines with rate and ETA."""

from __future__ import annotations

import io
import re

import experiments.progress as progress_module
from experiments.progress import progress


class _Clock:
    """tqdm's clock, advanced by hand: one second per item."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_pipe_gets_a_line_every_interval_with_rate_and_eta(monkeypatch) -> None:
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_S", 5.0)
    clock = _Clock()
    monkeypatch.setattr("tqdm.std.time", clock)
    out = io.StringIO()  # not a terminal
    bar = progress(range(30), stream=out, desc="Evaluating", unit="policy")
    for _ in bar:
        clock.now += 1.0
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # a line at the start, about one per 5 s of the 30, one at the end
    assert 6 <= len(lines) <= 9, lines
    middle = lines[2]
    assert middle.startswith("Evaluating:")
    assert re.search(r"\d+/30 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+policy/s\]", middle), middle
    assert lines[-1].split("|")[0].strip().endswith("100%")


def test_a_terminal_gets_a_redrawn_bar(monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    for _ in progress(range(3), stream=out, desc="x"):
        pass
    assert "\r" in out.getvalue()
