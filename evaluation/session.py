"""A replay's windows as one trading session, for the metrics of :mod:`evaluation.metrics`."""

from __future__ import annotations

import numpy as np

from evaluation.metrics import Fills, TradingRecord
from evaluation.rollout import EpisodeBatch

__all__ = ["session_record"]


def session_record(
    batch: EpisodeBatch, starts: np.ndarray, dt: float, currency_per_tick: float
) -> TradingRecord:
    """The windows of a replay laid end to end as one session (:class:`TradingRecord`).

    Times are seconds after the tape's first event (window ``w``'s decision ``j`` at
    ``starts[w] + j dt``, the replay's own clock, on which its fills are stamped); prices in
    currency per lot (ticks x ``currency_per_tick``); PnL cumulated over the windows. Where a
    window starts at the previous one's end, the shared instant is kept once (the previous
    window's final state, with the new window's first quotes). A fill stamped at the very
    instant its step starts (a marketable quote without entry latency) is moved one ulp after
    it, into the step it belongs to.
    """
    rec = batch.record
    if rec is None:
        raise ValueError("the rollout must record steps (record_steps=True)")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("time", "mid", "pnl", "q", "bid", "ask")}
    offset, last_end = 0.0, -np.inf
    for w, start in enumerate(starts):
        n = int(batch.steps[w]) + 1
        t = start + dt * np.arange(n)
        cols = {
            "time": t,
            "mid": rec.mid[w, :n],
            "pnl": rec.pnl[w, :n] + offset,
            "q": rec.inventory[w, :n],
            "bid": rec.bid[w, :n],
            "ask": rec.ask[w, :n],
        }
        if parts["time"] and t[0] <= last_end:  # contiguous: the previous end is this start
            parts["bid"][-1][-1], parts["ask"][-1][-1] = cols["bid"][0], cols["ask"][0]
            cols = {k: v[1:] for k, v in cols.items()}
        for k, v in cols.items():
            parts[k].append(np.array(v, np.float64))
        offset = float(rec.pnl[w, n - 1]) + offset
        last_end = float(t[-1])
    time = np.concatenate(parts["time"])
    f = rec.fills
    step_start = starts[f["episode"].to_numpy()] + dt * f["step"].to_numpy()
    fill_time = np.clip(
        f["time"].to_numpy(np.float64), np.nextafter(step_start, np.inf), step_start + dt
    )
    fills = Fills.from_arrays(
        fill_time,
        f["price"].to_numpy(np.float64) * currency_per_tick,
        f["size"].to_numpy(np.float64),
        f["side"].to_numpy(np.float64),
        fee=f["fee"].to_numpy(np.float64),
        taker=f["taker"].to_numpy(np.float64) > 0,
        queue_ahead=f["queue_ahead"].to_numpy(np.float64),
    )
    return TradingRecord.from_arrays(
        time,
        np.concatenate(parts["mid"]) * currency_per_tick,
        np.concatenate(parts["pnl"]),
        np.concatenate(parts["q"]),
        np.concatenate(parts["bid"]) * currency_per_tick,
        np.concatenate(parts["ask"]) * currency_per_tick,
        fills,
    )
