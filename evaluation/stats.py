"""Sample statistics with confidence intervals, shared by every report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanCI:
    """Sample mean of ``n`` values with its standard error and a two-sided interval.

    ``half_width = t_{(1+c)/2, n-1} * std / sqrt(n)`` (Student t), ``std`` with ``ddof=1``.
    """

    mean: float
    std: float
    stderr: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.half_width:.2g}"


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean, standard error and Student-t interval of ``values`` (at least two of them)."""
    x = np.asarray(values, np.float64).reshape(-1)
    n = x.size
    if n < 2:
        raise ValueError(f"need at least 2 values for an interval, got {n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    mean = float(x.mean())
    std = float(x.std(ddof=1))
    stderr = std / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * stderr
    return MeanCI(mean, std, stderr, mean - half, mean + half, n, confidence)
