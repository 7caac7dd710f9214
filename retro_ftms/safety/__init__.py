"""Safety (layer 3): the caps and rules, the trigger checks, and the guard that enforces them."""

from retro_ftms.safety.guard import LINK_LOST_DETAIL, UNCONFIRMED_DETAIL, SafetyGuard
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from retro_ftms.safety.rules import CommandRefused, Rule, Step

__all__ = [
    "LINK_LOST_DETAIL",
    "UNCONFIRMED_DETAIL",
    "CommandRefused",
    "EffectiveLimits",
    "Rule",
    "SafetyConfig",
    "SafetyGuard",
    "Step",
]
