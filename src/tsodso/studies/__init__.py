"""Studies: system-level questions asked of many runs (DER penetration sweeps and the value
of coordination; non-wires alternatives to a feeder upgrade; reliability options for DG and
storage in distribution planning)."""

from tsodso.studies.nwa import NwaOptions, NwaResult, non_wires_alternative
from tsodso.studies.reliability import RoOptions, RoResult, reliability_options
from tsodso.studies.sweeps import (
    Sweep,
    at_penetration,
    coordination_value,
    first_violation,
    penetration_levels,
    read_sweep,
    sweep,
)

__all__ = ["NwaOptions", "NwaResult", "RoOptions", "RoResult", "Sweep", "at_penetration",
           "coordination_value", "first_violation", "non_wires_alternative",
           "penetration_levels", "read_sweep", "reliability_options", "sweep"]
