"""Queue models: how much of a decrease of the agent's price level was ahead of it.

docs/exchange.md#queue-models. With order ids (``exact``, L3) the feed says which orders were
ahead. Otherwise a decrease (a cancellation by others) is taken from the queue ahead first with
probability ``f(ahead) / (f(ahead) + f(behind))``, else from behind first (as hftbacktest's
``ProbQueueModel``; Moallemi & Yuan 2017 for the queue position's value):

- ``risk_averse``: never ahead while there is volume behind (only trades advance the agent);
- ``prob``: ``f(x) = x^n`` with ``n = X_QUEUE_POWER``;
- ``prob_log``: ``f(x) = log(1 + x)``;
- ``exact`` in the simulated book: every resting lot is cancelled at the same rate, so the
  cancelled one is a uniform pick: ``prob`` with ``n = 1``;
- a model registered with a weight function ``f`` (:class:`envs.exchange.models.NamedModel`):
  ``f`` tabulated on ``0 .. n - 1`` lots (``X_QUEUE_TABLE``); a queue longer than the table
  takes ``f(n - 1)`` (the table's size is the model's, docs/exchange.md#adding-a-model).

Codes (``X_QUEUE``) and names are listed once, in :mod:`envs.exchange.models`.
"""

from __future__ import annotations

import numba
import numpy as np

from envs.exchange.layout import X_QUEUE, X_QUEUE_POWER, X_QUEUE_TABLE, X_QUEUE_TABLE_N
from envs.exchange.rng import uniform

QUEUE_RISK_AVERSE, QUEUE_PROB, QUEUE_PROB_LOG, QUEUE_EXACT, QUEUE_TABLE = 0, 1, 2, 3, 4


@numba.njit(cache=True)
def ahead_first(rng, m, p, a, b):
    """Whether a decrease of a level with ``a`` lots ahead of the agent and ``b`` behind is
    taken from the queue ahead first (draws one uniform unless the answer is certain)."""
    model = p[X_QUEUE]
    if model == QUEUE_RISK_AVERSE or a <= 0:
        return False
    if b <= 0:
        return True
    if model == QUEUE_PROB_LOG:
        fa, fb = np.log1p(a), np.log1p(b)
    elif model == QUEUE_TABLE:
        base = int(p[X_QUEUE_TABLE])
        last = int(p[X_QUEUE_TABLE_N]) - 1
        fa, fb = p[base + min(a, last)], p[base + min(b, last)]
    else:  # QUEUE_PROB; QUEUE_EXACT without order ids is a uniform pick (n = 1)
        n = p[X_QUEUE_POWER] if model == QUEUE_PROB else 1.0
        fa, fb = float(a) ** n, float(b) ** n
    return uniform(rng, m) * (fa + fb) < fa


@numba.njit(cache=True)
def cancel_from_ahead(rng, m, p, a, b, size):
    """Lots of a cancellation of ``size`` lots taken from the ``a`` lots ahead (``b`` behind)."""
    if ahead_first(rng, m, p, a, b):
        return min(size, a)
    return min(max(size - b, 0), a)
