"""Market-making baselines with known (exact or closed-form) quotes (docs/agents.md#baselines)."""

from agents.baselines.avellaneda_stoikov import (
    AvellanedaStoikov,
    AvellanedaStoikovInfinite,
    SymmetricSpread,
)
from agents.baselines.cartea_jaimungal import CarteaJaimungal
from agents.baselines.fixed_spread import FixedSpread
from agents.baselines.glft import GLFT, GLFTAsymptotic

__all__ = [
    "GLFT",
    "AvellanedaStoikov",
    "AvellanedaStoikovInfinite",
    "CarteaJaimungal",
    "FixedSpread",
    "GLFTAsymptotic",
    "SymmetricSpread",
]
