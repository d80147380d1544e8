"""Daily (and monthly) economic series through pandas-datareader, with an offline cache.

Sources (docs/data.md#daily-series):

- ``fred``: a FRED series by its id (``DGS3MO``, ``DFF``, ``CPIAUCSL``...), Federal Reserve Bank of
  St. Louis; one column named after the series, values in the series' own unit.
- ``famafrench``: a table of Kenneth R. French's data library (``F-F_Research_Data_Factors``,
  ``F-F_Research_Data_Factors_daily``...); returns in percent per period. pandas-datareader returns
  several tables per dataset; ``table`` picks one (0: the first, e.g. monthly factors).

Reading never touches the network unless asked: :func:`read_series` looks in the cache first
(``<cache_dir>/<source>/<name>[__<table>].csv`` with a ``.json`` sidecar recording what it covers
and where it came from); only when the cache lacks the series or the requested dates and
``allow_network=True`` does it fetch, then writes the cache. Otherwise it raises
:class:`CacheMiss`, naming the series and the cache path.

Frames: a ``DatetimeIndex`` named ``date`` (a monthly or annual period is stored as its first day),
float64 columns as the source names them.

The cache shipped in ``data/cache/`` holds only published values whose provenance is stated in its
sidecar (``source_note``); see ``data/cache/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

Source = Literal["fred", "famafrench"]
SOURCES: tuple[str, ...] = ("fred", "famafrench")

DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / "cache"
"""The cache shipped with the project (small published samples)."""

Fetcher = Callable[[str, str, pd.Timestamp, pd.Timestamp, int], pd.DataFrame]
"""``fetch(name, source, start, end, table) -> frame`` (the network call)."""


class CacheMiss(LookupError):
    """A series (or the requested dates) is not in the cache and the network was not allowed.

    :param name: the series or dataset name.
    :param source: ``fred`` or ``famafrench``.
    :param path: the cache file that was looked for.
    :param reason: what is missing.
    """

    def __init__(self, name: str, source: str, path: Path, reason: str) -> None:
        self.name = name
        self.source = source
        self.path = path
        super().__init__(
            f"{source} series {name!r}: {reason} in the cache {path}; pass allow_network=True "
            "to fetch it (and write the cache), or put the file there"
        )


@dataclass(frozen=True)
class CacheEntry:
    """What a cache file covers (the sidecar JSON).

    :param name: series or dataset name.   :param source: ``fred`` / ``famafrench``.
    :param table: table index (Fama-French; 0 for FRED).
    :param start: first date requested when it was fetched (ISO).
    :param end: last date requested when it was fetched (ISO).
    :param fetched: when (ISO, UTC), or the provenance date of a shipped sample.
    :param source_note: where the values come from (URL, publication, vintage).
    """

    name: str
    source: str
    table: int
    start: str
    end: str
    fetched: str
    source_note: str

    def covers(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        return pd.Timestamp(self.start) <= start and end <= pd.Timestamp(self.end)


def cache_path(name: str, source: str, table: int = 0, cache_dir: Path | None = None) -> Path:
    """The CSV file of a series in the cache (its sidecar is the same path with ``.json``)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"series name must be a plain file-safe id, got {name!r}")
    root = DEFAULT_CACHE_DIR if cache_dir is None else Path(cache_dir)
    suffix = f"__{table}" if source == "famafrench" else ""
    return root / source / f"{name}{suffix}.csv"


def _normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """DatetimeIndex named ``date`` (periods -> their start), float64 columns, sorted."""
    out = frame.copy()
    if isinstance(out.index, pd.PeriodIndex):
        out.index = out.index.to_timestamp(how="start")
    out.index = pd.DatetimeIndex(out.index, name="date")
    out.columns = [str(c) for c in out.columns]
    return out.astype("float64").sort_index()


def fetch_datareader(
    name: str, source: str, start: pd.Timestamp, end: pd.Timestamp, table: int = 0
) -> pd.DataFrame:
    """The live fetch through ``pandas_datareader.data.DataReader`` (needs the network)."""
    from pandas_datareader import data as web

    got = web.DataReader(name, source, start, end)
    frame = got[table] if isinstance(got, dict) else got
    return _normalize(frame)


def read_cache(
    name: str, source: str, table: int = 0, cache_dir: Path | None = None
) -> tuple[pd.DataFrame, CacheEntry] | None:
    """The cached frame and its sidecar, or ``None`` when absent.

    :raises ValueError: a cache file without a valid sidecar, or a CSV that does not parse
        (named).
    """
    path = cache_path(name, source, table, cache_dir)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        return None
    try:
        entry = CacheEntry(**json.loads(meta_path.read_text()))
    except (OSError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{meta_path}: expected the cache sidecar beside {path.name} (JSON with keys "
            f"{list(CacheEntry.__annotations__)}): {exc}"
        ) from exc
    try:
        frame = pd.read_csv(path, index_col="date", parse_dates=["date"])
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: expected a CSV with a 'date' column and numbers: {exc}") from exc
    return _normalize(frame), entry


def write_cache(
    frame: pd.DataFrame,
    name: str,
    source: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    table: int = 0,
    cache_dir: Path | None = None,
    source_note: str = "",
) -> Path:
    """Write a fetched frame and its sidecar; returns the CSV path."""
    path = cache_path(name, source, table, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    _normalize(frame).to_csv(path, index_label="date")
    entry = CacheEntry(
        name=name,
        source=source,
        table=table,
        start=start.date().isoformat(),
        end=end.date().isoformat(),
        fetched=datetime.now(UTC).isoformat(timespec="seconds"),
        source_note=source_note or f"pandas_datareader.DataReader({name!r}, {source!r})",
    )
    path.with_suffix(".json").write_text(json.dumps(entry.__dict__, indent=2) + "\n")
    return path


def read_series(
    name: str,
    source: Source,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    *,
    table: int = 0,
    cache_dir: str | Path | None = None,
    allow_network: bool = False,
    fetch: Fetcher | None = None,
) -> pd.DataFrame:
    """A series between ``start`` and ``end`` (inclusive), from the cache or (if allowed) fetched.

    :param name: FRED series id or Fama-French dataset name.
    :param source: ``"fred"`` or ``"famafrench"``.
    :param start: first date (anything ``pd.Timestamp`` reads).
    :param end: last date.
    :param table: Fama-French table index (0 for FRED).
    :param cache_dir: the cache root (default: the project's ``data/cache``).
    :param allow_network: fetch when the cache lacks the series or the dates, then write the
        cache; False (default) never touches the network.
    :param fetch: the fetch function (default :func:`fetch_datareader`).
    :raises CacheMiss: not cached (or not for these dates) and ``allow_network`` is False.
    """
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    if t1 < t0:
        raise ValueError(f"end ({t1.date()}) is before start ({t0.date()})")
    root = None if cache_dir is None else Path(cache_dir)
    path = cache_path(name, source, table, root)
    cached = read_cache(name, source, table, root)
    if cached is not None and cached[1].covers(t0, t1):
        frame = cached[0]
        return frame.loc[(frame.index >= t0) & (frame.index <= t1)]
    if not allow_network:
        reason = (
            "not found"
            if cached is None
            else f"dates {t0.date()}..{t1.date()} not covered (cached {cached[1].start}.."
            f"{cached[1].end})"
        )
        raise CacheMiss(name, source, path, reason)
    fetcher = fetch or fetch_datareader
    frame = _normalize(fetcher(name, source, t0, t1, table))
    write_cache(frame, name, source, t0, t1, table, root)
    return frame.loc[(frame.index >= t0) & (frame.index <= t1)]
