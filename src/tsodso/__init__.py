"""tsodso: TSO-DSO coordination with distributed energy resources."""

from tsodso.errors import Issue, TsodsoError, ValidationError
from tsodso.model import Feeder, Profiles, System, TransmissionGrid
from tsodso.rules import MarketRules, get_rules

__version__ = "0.1.0"

__all__ = [
    "Feeder",
    "Issue",
    "MarketRules",
    "Profiles",
    "System",
    "TransmissionGrid",
    "TsodsoError",
    "ValidationError",
    "__version__",
    "get_rules",
]
