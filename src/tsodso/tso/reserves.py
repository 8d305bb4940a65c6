"""Reserve products co-optimised with energy in the TSO market."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ReserveProduct:
    """One reserve product.

    Attributes
    ----------
    name : str
        ``reg_up``, ``reg_down``, ``spin``, ``nonspin`` or any name.
    direction : {"up", "down"}
        Up reserve is headroom above the energy dispatch, down reserve footroom below it.
    share_of_load : float
        Requirement per period (and per zone when zonal) as a fraction of the load, MW/MW.
    response_minutes : float
        Time to deliver; a unit can offer at most ``ramp_mw_per_h * minutes / 60`` MW.
    """

    name: str
    direction: Literal["up", "down"]
    share_of_load: float
    response_minutes: float


DEFAULT_PRODUCTS: tuple[ReserveProduct, ...] = (
    ReserveProduct("reg_up", "up", 0.01, 5.0),
    ReserveProduct("reg_down", "down", 0.01, 5.0),
    ReserveProduct("spin", "up", 0.03, 10.0),
    ReserveProduct("nonspin", "up", 0.03, 30.0),
)
