"""Market-data loaders into the canonical schema of docs/data.md#canonical-schema.

- ``load_lobster(message_path, orderbook_path=None, *, strict=True, levels=None)``: LOBSTER files
  (L3).
- ``load_binance(paths, *, market="spot", symbol=None, strict=True, levels=10)``: Binance raw
  captures (L2).

Both return ``MarketData`` (``events``, ``book``, ``spec``, ``sources`` with SHA-256, ``report``)
and raise ``DataError`` (file, 1-based line, field, what was expected) on bad input under
``strict=True``.
"""

from data.binance import load_binance
from data.errors import DataError
from data.lobster import check_book_consistency, load_lobster
from data.schema import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    InstrumentSpec,
    MarketData,
    SourceFile,
    ValidationReport,
    book_columns,
    validate_book,
    validate_events,
)

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "DataError",
    "InstrumentSpec",
    "MarketData",
    "SourceFile",
    "ValidationReport",
    "book_columns",
    "check_book_consistency",
    "load_binance",
    "load_lobster",
    "validate_book",
    "validate_events",
]
