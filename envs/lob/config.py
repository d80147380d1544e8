"""Typed configuration of the order-book market (``kind: lob``): defined with every other
config model in :mod:`configs.schema`, re-exported here for the market's modules."""

from configs.schema import LOBMarketConfig

__all__ = ["LOBMarketConfig"]
