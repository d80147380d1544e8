"""The one exception raised by the market-data loaders on bad input.

A ``DataError`` names where the bad value is (file, 1-based line as a text editor shows it, field)
and what was expected, so that ``strict=True`` loading fails with a message a person can act on.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A row of a market-data file that breaks the format or an invariant of the canonical schema.

    :param path: the file the row comes from.
    :param line: 1-based line number in that file (the line of the decompressed text for gzip
        files); ``None`` when the problem is not tied to one line.
    :param field: the column or JSON field at fault (e.g. ``"price"``, ``"U"``, ``"bid_px_1"``).
    :param expected: what a valid value looks like, in words.
    :param got: the offending value, shown as given (optional).
    """

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        field: str,
        expected: str,
        got: object = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.got = got
        where = f"{self.path}, line {line}" if line is not None else self.path
        message = f"{where}, field {field!r}: expected {expected}"
        if got is not None:
            message += f", got {got!r}"
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:  # keep pickling (multiprocessing) working
        return (type(self), (self.path, self.line, self.field, self.expected, self.got))
