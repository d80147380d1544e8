"""Daily series with an offline cache: cache round-trip, no network by default, named errors."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import datareader
from data.datareader import CacheMiss, cache_path, read_series


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection fails the test: the default path must stay offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


class Recorder:
    """A fetcher standing in for pandas-datareader: counts calls, returns a given frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.calls: list[tuple[str, str, pd.Timestamp, pd.Timestamp, int]] = []

    def __call__(
        self, name: str, source: str, start: pd.Timestamp, end: pd.Timestamp, table: int
    ) -> pd.DataFrame:
        self.calls.append((name, source, start, end, table))
        return self.frame


def daily(values: list[float], start: str = "2020-01-02", name: str = "DGS3MO") -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=len(values), name="DATE")
    return pd.DataFrame({name: values}, index=idx)


def test_shipped_fama_french_sample_reads_offline() -> None:
    ff = read_series("F-F_Research_Data_Factors", "famafrench", "2010-01-01", "2010-12-31")
    assert list(ff.columns) == ["Mkt-RF", "SMB", "HML", "RF"]
    assert len(ff) == 12 and ff.index[0] == pd.Timestamp("2010-01-01")
    # the quoted published values (pandas-datareader's own test of the live library)
    assert ff.loc["2010-01-01", "Mkt-RF"] == pytest.approx(-3.35)
    assert ff.loc["2010-09-01", "Mkt-RF"] == pytest.approx(9.55)
    assert set(ff["RF"]) == {0.0, 0.01}  # T-bill return, % per month, in 2010
    sub = read_series("F-F_Research_Data_Factors", "famafrench", "2010-03-01", "2010-05-31")
    assert list(sub.index.month) == [3, 4, 5]


def test_miss_without_network_names_series_and_path(tmp_path: Path) -> None:
    fetch = Recorder(daily([1.0]))
    with pytest.raises(CacheMiss) as err:
        read_series("DGS3MO", "fred", "2020-01-01", "2020-02-01", cache_dir=tmp_path, fetch=fetch)
    msg = str(err.value)
    assert "DGS3MO" in msg and str(tmp_path / "fred" / "DGS3MO.csv") in msg
    assert "allow_network=True" in msg
    assert fetch.calls == []


def test_uncovered_dates_are_a_miss_naming_the_cached_range() -> None:
    with pytest.raises(CacheMiss, match=r"2011-01-01\.\.2011-03-01 not covered.*2010-01-01"):
        read_series("F-F_Research_Data_Factors", "famafrench", "2011-01-01", "2011-03-01")


def test_fetch_once_then_served_from_cache(tmp_path: Path) -> None:
    values = [1.52, 1.54, 1.55, 1.53, 1.54]
    fetch = Recorder(daily(values))
    first = read_series(
        "DGS3MO",
        "fred",
        "2020-01-01",
        "2020-01-10",
        cache_dir=tmp_path,
        allow_network=True,
        fetch=fetch,
    )
    assert len(fetch.calls) == 1
    assert cache_path("DGS3MO", "fred", cache_dir=tmp_path).is_file()
    again = read_series("DGS3MO", "fred", "2020-01-01", "2020-01-10", cache_dir=tmp_path,
                        fetch=fetch)  # fmt: skip
    assert len(fetch.calls) == 1  # no second fetch
    pd.testing.assert_frame_equal(first, again, check_freq=False)
    np.testing.assert_array_equal(again["DGS3MO"].to_numpy(), values)
    assert again.index.name == "date"


def test_network_fetch_extends_an_uncovered_request(tmp_path: Path) -> None:
    read_series("DFF", "fred", "2020-01-02", "2020-01-03", cache_dir=tmp_path,
                allow_network=True, fetch=Recorder(daily([1.0, 2.0], name="DFF")))  # fmt: skip
    longer = Recorder(daily([1.0, 2.0, 3.0, 4.0], name="DFF"))
    got = read_series("DFF", "fred", "2020-01-02", "2020-01-07", cache_dir=tmp_path,
                      allow_network=True, fetch=longer)  # fmt: skip
    assert len(longer.calls) == 1 and len(got) == 4


def test_default_fetcher_is_datareader_and_not_called_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []
    monkeypatch.setattr(datareader, "fetch_datareader", lambda *a, **k: called.append("x"))
    with pytest.raises(CacheMiss):
        read_series("DGS10", "fred", "2020-01-01", "2020-01-31", cache_dir=tmp_path)
    assert called == []


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        cache_path("X", "yahoo")
    with pytest.raises(ValueError, match="file-safe"):
        cache_path("../etc", "fred")
    with pytest.raises(ValueError, match="before start"):
        read_series("DFF", "fred", "2020-02-01", "2020-01-01", cache_dir=tmp_path)
    path = cache_path("DFF", "fred", cache_dir=tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("date,DFF\n2020-01-02,1.5\n")
    with pytest.raises(ValueError, match="sidecar"):
        read_series("DFF", "fred", "2020-01-02", "2020-01-02", cache_dir=tmp_path)
