"""The sample data carried by the project, and where a command looks for data files.

The samples live in ``data/samples/`` (provenance, licences and SHA-256 in its ``README.md``):
LOBSTER files of GOOG and AAPL for 2012-06-21 and Binance raw captures of NEXO/USDT and BTCUSDT.
``$MM_DATA_DIR`` replaces that folder by a user's own data folder with the same layout; a
relative data path in a config or on a command line is taken in :func:`data_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
"""The project's own copy of the sample files."""

DATA_DIR_ENV = "MM_DATA_DIR"
"""Environment variable naming a data folder to use instead of :data:`SAMPLES_DIR`."""

GOOG_MESSAGES = "lobster/GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
"""GOOG, 2012-06-21, 10 levels, the full regular session (LOBSTER)."""
AAPL_MESSAGES = "lobster/AAPL_2012-06-21_34200000_57600000_message_1.csv.gz"
"""AAPL, 2012-06-21, level 1, the full regular session (LOBSTER)."""
AAPL_FIXTURE = "lobster/AAPL_first49s_L10/AAPL_2012-06-21_34200000_57600000_message_10.csv"
"""AAPL, the first 49 seconds of 2012-06-21, 10 levels, plain CSV: the tiny fixture."""
NEXO_CAPTURES = (
    "binance_raw/spot_nexousdt_20240723.dat.gz",
    "binance_raw/spot_nexousdt_20240724.dat.gz",
)
"""NEXO/USDT spot, about 24 hours from 2024-07-23 15:39 UTC (Binance raw websocket capture)."""

CHECKSUMS = SAMPLES_DIR / "SHA256SUMS"
"""SHA-256 of every sample file, in ``sha256sum`` format (``sha256sum -c SHA256SUMS``)."""


def data_dir() -> Path:
    """The data folder: ``$MM_DATA_DIR`` when set, else the project's :data:`SAMPLES_DIR`."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else SAMPLES_DIR


def data_file(name: str | Path) -> Path:
    """``name`` as it is when absolute, else taken in :func:`data_dir`."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else data_dir() / path


def relative_name(path: str | Path) -> str:
    """``path`` relative to :func:`data_dir` when it lies there (as configs name data), else whole.

    Provenance written with a result (a calibration's data files) then names the file the same
    way on every machine.
    """
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(data_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def checksums() -> dict[str, str]:
    """The expected SHA-256 of each sample file, by its path under :data:`SAMPLES_DIR`."""
    expected = {}
    for line in CHECKSUMS.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        expected[name.lstrip("*")] = digest
    return expected
