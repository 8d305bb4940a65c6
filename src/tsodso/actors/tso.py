"""The TSO party: its transmission grid and the structural data of its interfaces, never a
feeder's network or DERs.

:func:`tso_part` cuts a :class:`System` to that view: the grid, the ``feeders`` table (which
feeder hangs at which interface bus, its rating: the structural data a DSO gives its TSO,
as in SOGL Art. 43), the profiles and the rules; feeder buses, lines, loads and DERs are
empty. :class:`Tso` is the party built on it: the markets it clears with the feeders as
the imports the DSOs sent (its redispatch, the hierarchical and local schemes, the
settlement) or as consensus variables (ADMM), and the interface prices it publishes. It
cannot read what it was not sent.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.tso import TsoMarket, TsoOptions, TsoResult
from tsodso.tso.offers import TsoView, tso_view


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


def without_ders(system: System) -> System:
    """``system`` (a shallow copy) without DERs and their bids."""
    s = copy.copy(system)
    s.ders = system.ders.iloc[:0]
    s.der_bids = system.der_bids.iloc[:0]
    return s


def fixed_interface_view(system: System, imports: pd.DataFrame) -> TsoView:
    """A TSO view in which feeders are fixed loads equal to their ``imports``
    (periods x feeder_id, MW; summed per interface bus) and no DER offers: the TSO's
    real-time redispatch."""
    empty = tso_view(without_ders(system), system.rules)
    interface = system.feeders.set_index("feeder_id").interface_bus
    load = imports.T.groupby(imports.columns.map(interface)).sum().T
    load.columns = load.columns.astype(np.int64)
    empty.fixed_load = load
    return empty


class Tso:
    """The TSO and its part of the system.

    Parameters
    ----------
    system : System
        The TSO's view (:meth:`of` builds it with :func:`tso_part`); a view holding
        feeder networks, loads or DERs is refused.
    """

    def __init__(self, system: System) -> None:
        if holds_feeder_data(system):
            raise TsodsoError("TSO: its view must not hold feeder networks, loads or DERs "
                              "(build it with Tso.of)")
        self.system = system
        self._interface = system.feeders.set_index("feeder_id").interface_bus

    def __repr__(self) -> str:
        return (f"Tso({self.system.grid.name!r}, buses={len(self.system.grid.buses)}, "
                f"feeders={len(self.system.feeders)})")

    @classmethod
    def of(cls, system: System) -> Tso:
        """The TSO of ``system``, holding only its part (:func:`tso_part`)."""
        return cls(tso_part(system))

    def interface_bus(self, feeder_id: str) -> int:
        """The transmission bus a feeder hangs at."""
        return int(self._interface[feeder_id])

    def interface_prices(self, lmp: pd.DataFrame, feeder_ids: list[str] | None = None
                         ) -> dict[str, np.ndarray]:
        """Each feeder's interface price: the LMP of its interface bus ($/MWh per period;
        ``lmp`` is periods x bus_id)."""
        fids = self.system.feeder_ids if feeder_ids is None else feeder_ids
        return {f: lmp[self.interface_bus(f)].to_numpy() for f in fids}

    def market_on_imports(self, imports: pd.DataFrame, options: TsoOptions | None = None
                          ) -> TsoMarket:
        """Its market with each feeder a fixed load equal to the import the DSO sent
        (periods x feeder_id, MW) and no DER offers; re-solve it for new imports with
        :meth:`TsoMarket.set_interface_load` and :meth:`imports_load`."""
        return TsoMarket(self.system, options or TsoOptions(),
                         view=fixed_interface_view(self.system, imports))

    def imports_load(self, imports: pd.DataFrame) -> pd.DataFrame:
        """Feeder imports (periods x feeder_id, MW) as fixed load per interface bus."""
        return fixed_interface_view(self.system, imports).fixed_load

    def redispatch(self, imports: pd.DataFrame, periods: int | None = None) -> TsoResult:
        """Its generators redispatched around the feeders' final imports (periods x
        feeder_id, MW): the settled transmission operation and its LMPs."""
        return self.market_on_imports(imports, TsoOptions(periods=periods)).solve()

    def consensus_market(self, feeder_ids: list[str], rho: float) -> TsoMarket:
        """Its market with one free interface variable per feeder and period (MW) and the
        proximal cost ``rho / 2 w^2`` per period ($/MW^2h) of consensus ADMM; the DER
        offers are the DSOs' (none here)."""
        view = tso_view(self.system, self.system.rules)
        view.fixed_load = view.fixed_load.iloc[:, :0]
        market = TsoMarket(self.system, TsoOptions(solver="clarabel"), view=view,
                           interface_feeders=feeder_ids)
        T = market.T
        market.model.add_quadratic_cost(market.iface,
                                        np.full(T * len(feeder_ids), rho * market.dt))
        return market
