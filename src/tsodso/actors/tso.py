"""What the TSO party holds: its transmission grid and the structural data of its
interfaces, never a feeder's network or DERs.

:func:`tso_part` cuts a :class:`System` to that view: the grid, the ``feeders`` table (which
feeder hangs at which interface bus, its rating: the structural data a DSO gives its TSO,
as in SOGL Art. 43), the profiles and the rules; feeder buses, lines, loads and DERs are
empty. Schemes whose TSO only receives messages about the distribution side build its
market on this part, so it cannot read what it was not sent.
"""

from __future__ import annotations

import copy

from tsodso.model.system import System


def tso_part(system: System) -> System:
    """``system`` without any feeder network, load or DER (see module docstring)."""
    part = copy.copy(system)
    part.feeder_buses = system.feeder_buses.iloc[:0].copy()
    part.feeder_lines = system.feeder_lines.iloc[:0].copy()
    part.feeder_loads = system.feeder_loads.iloc[:0].copy()
    part.ders = system.ders.iloc[:0].copy()
    part.der_bids = system.der_bids.iloc[:0].copy()
    return part


def holds_feeder_data(system: System) -> bool:
    """Whether ``system`` holds any feeder network, load or DER data."""
    return bool(len(system.feeder_buses) or len(system.feeder_lines) or len(system.feeder_loads)
                or len(system.ders))
