"""Studies: system-level questions asked of many runs (DER penetration sweeps and the value
of coordination)."""

from tsodso.studies.sweeps import (
    Sweep,
    at_penetration,
    coordination_value,
    first_violation,
    penetration_levels,
    read_sweep,
    sweep,
)

__all__ = ["Sweep", "at_penetration", "coordination_value", "first_violation",
           "penetration_levels", "read_sweep", "sweep"]
