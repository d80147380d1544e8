"""Market simulators (DESIGN.md section 4), registered with Gymnasium on import.

- ``mmrl/AnalyticMarket-v0``: the Avellaneda-Stoikov market (:mod:`envs.analytic`).

``gymnasium.make("mmrl/AnalyticMarket-v0", **params)`` gives one market;
``gymnasium.make_vec("mmrl/AnalyticMarket-v0", num_envs=N,
vectorization_mode="vector_entry_point", **params)`` the natively batched one.
"""

from gymnasium.envs.registration import register, registry

ANALYTIC_MARKET_ID = "mmrl/AnalyticMarket-v0"

if ANALYTIC_MARKET_ID not in registry:
    register(
        id=ANALYTIC_MARKET_ID,
        entry_point="envs.analytic:AnalyticMarketEnv",
        vector_entry_point="envs.analytic:AnalyticMarketVectorEnv",
    )

__all__ = ["ANALYTIC_MARKET_ID"]
