"""Market-participation rules: presets and custom rule sets."""

from tsodso.rules.presets import PRESETS, MarketRules, get_rules

__all__ = ["PRESETS", "MarketRules", "get_rules"]
