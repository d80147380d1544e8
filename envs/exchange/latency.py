"""Latency models: when the agent's orders go live and how old its observations are.

docs/exchange.md#latency-models. Three latencies per decision (time units): entry (decision to
orders live), response (age of the agent's own state in the observation) and feed (age of the
market's part). ``X_LATENCY`` selects the model (codes in :mod:`envs.exchange.models`):

- ``constant``: the configured values (each below ``dt``);
- ``exponential``: exponential draws with those means, one per positive latency and decision
  (entry, then response, then feed), an entry beyond the interval putting the orders live at its
  end, response and feed capped at ``dt``;
- ``recorded``: the entry latency is the next value of a recorded series (in order, cycling, or
  drawn uniformly at random from it), stored in ``p`` at ``X_LAT_SERIES``; response and feed
  stay constant. A value beyond the interval puts the orders live at its end.
"""

from __future__ import annotations

import numba

from envs.exchange.layout import I_LAT_DRAWS, X_LAT_N, X_LAT_RANDOM, X_LAT_SERIES, X_LATENCY
from envs.exchange.rng import exponential, uniform

LATENCY_CONSTANT, LATENCY_EXPONENTIAL, LATENCY_RECORDED = 0, 1, 2


@numba.njit(cache=True)
def draw_latencies(ist, rng, p, m, lat, resp, feed, dt):
    """This decision's (entry, response, feed) latencies from their configured values."""
    model = p[X_LATENCY]
    if model == LATENCY_EXPONENTIAL:
        lat = lat * exponential(rng, m) if lat > 0 else 0.0
        resp = min(resp * exponential(rng, m), dt) if resp > 0 else 0.0
        feed = min(feed * exponential(rng, m), dt) if feed > 0 else 0.0
    elif model == LATENCY_RECORDED:
        n = int(p[X_LAT_N])
        if p[X_LAT_RANDOM] > 0:
            k = min(int(uniform(rng, m) * n), n - 1)
        else:
            k = ist[m, I_LAT_DRAWS] % n
        ist[m, I_LAT_DRAWS] += 1
        lat = p[int(p[X_LAT_SERIES]) + k]
    return lat, resp, feed
