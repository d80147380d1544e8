"""Market simulators (docs/markets.md), registered with Gymnasium on import.

- ``mmrl/AnalyticMarket-v0``: the Avellaneda-Stoikov market (:mod:`envs.analytic`).
- ``mmrl/LOBMarket-v0``: the event-driven Cont-Stoikov-Talreja order book with queue
  position, latency and fees (:mod:`envs.lob`).
- ``mmrl/ReplayMarket-v0``: recorded LOBSTER / Binance events with the agent's orders matched
  against them (:mod:`envs.replay`).

``gymnasium.make("mmrl/AnalyticMarket-v0", **params)`` gives one market;
``gymnasium.make_vec("mmrl/AnalyticMarket-v0", num_envs=N,
vectorization_mode="vector_entry_point", **params)`` the natively batched one.
"""

from gymnasium.envs.registration import register, registry

ANALYTIC_MARKET_ID = "mmrl/AnalyticMarket-v0"
LOB_MARKET_ID = "mmrl/LOBMarket-v0"
REPLAY_MARKET_ID = "mmrl/ReplayMarket-v0"

if ANALYTIC_MARKET_ID not in registry:
    register(
        id=ANALYTIC_MARKET_ID,
        entry_point="envs.analytic:AnalyticMarketEnv",
        vector_entry_point="envs.analytic:AnalyticMarketVectorEnv",
    )

if LOB_MARKET_ID not in registry:
    register(
        id=LOB_MARKET_ID,
        entry_point="envs.lob.env:LOBMarketEnv",
        vector_entry_point="envs.lob.env:LOBMarketVectorEnv",
    )

if REPLAY_MARKET_ID not in registry:
    register(
        id=REPLAY_MARKET_ID,
        entry_point="envs.replay.env:ReplayMarketEnv",
        vector_entry_point="envs.replay.env:ReplayMarketVectorEnv",
    )

__all__ = ["ANALYTIC_MARKET_ID", "LOB_MARKET_ID", "REPLAY_MARKET_ID"]
