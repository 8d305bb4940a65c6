"""The aggregator party: it holds its portfolio (its DERs, their bids and the site loads of
its demand response) and is the one that says what its resources can offer.

An :class:`Aggregator` is built from its own view of the data (:meth:`Aggregator.of`): the
DERs it represents, their bid steps, the loads at the sites of its demand response (what
a demand-response contract measures against) and the structural table of feeders (which
interface bus each DER sits behind); no feeder network, no other aggregator's DERs and no
transmission grid. It pools its DERs into market offers as the market rules say
(:func:`~tsodso.tso.offers.tso_view` on its portfolio), sends their availability, and keeps
what the operators send it (curtailment requests).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from tsodso.actors.messages import (
    AvailabilitySchedule,
    CurtailmentRequest,
    Envelope,
    Message,
)
from tsodso.errors import TsodsoError
from tsodso.model.network import TransmissionGrid
from tsodso.model.system import System
from tsodso.rules import MarketRules
from tsodso.tso.offers import TsoView, tso_view


class Aggregator:
    """One aggregator and its portfolio.

    Parameters
    ----------
    name : str
        The aggregator's id (its party is ``aggregator:<name>``).
    portfolio : System
        Its view (:meth:`of` builds it): its DERs and their bids, site loads of its demand
        response, the feeders table, profiles and rules; no network and no other
        aggregator's DERs (refused).
    """

    def __init__(self, name: str, portfolio: System) -> None:
        others = set(portfolio.ders.aggregator_id.fillna("").astype(str)) - {name}
        if others:
            raise TsodsoError(f"aggregator {name}: its portfolio holds DERs of "
                              f"{', '.join(sorted(others))}")
        if len(portfolio.grid.buses) or len(portfolio.feeder_lines):
            raise TsodsoError(f"aggregator {name}: its view must not hold a network (build "
                              "it with Aggregator.of)")
        self.name = name
        self.portfolio = portfolio
        self.inbox: list[Message] = []

    def __repr__(self) -> str:
        return f"Aggregator({self.name!r}, ders={len(self.portfolio.ders)})"

    @classmethod
    def of(cls, system: System, name: str) -> Aggregator:
        """The aggregator ``name`` holding only its portfolio of ``system``."""
        d = system.ders
        mine = d[d.aggregator_id.fillna("").astype(str) == name].reset_index(drop=True)
        dr = mine[mine.kind == "demand_response"]
        sites = set(zip(dr.feeder_id, dr.bus_id, strict=True))
        loads = system.feeder_loads
        at_site = [(f, b) in sites for f, b in zip(loads.feeder_id, loads.bus_id, strict=True)]
        part = copy.copy(system)
        part.grid = TransmissionGrid(name=system.grid.name, base_mva=system.grid.base_mva)
        part.feeder_buses = system.feeder_buses.iloc[:0].copy()
        part.feeder_lines = system.feeder_lines.iloc[:0].copy()
        part.feeder_loads = loads[np.asarray(at_site, dtype=bool)].reset_index(drop=True)
        part.ders = mine
        part.der_bids = system.der_bids[system.der_bids.der_id.isin(mine.der_id)
                                        ].reset_index(drop=True)
        part.aggregators = system.aggregators[system.aggregators.aggregator_id == name
                                              ].reset_index(drop=True)
        return cls(name, part)

    @property
    def der_ids(self) -> list[str]:
        """The DERs it represents."""
        return [str(i) for i in self.portfolio.ders.der_id]

    def offers(self, rules: MarketRules | None = None) -> TsoView:
        """Its DERs pooled into TSO market offers under ``rules`` (default: the system's):
        energy offers, storage and EV pools, and the DERs the rules keep out with the
        reason (:func:`~tsodso.tso.offers.tso_view` on the portfolio; the fixed-load part
        of that view, site loads only, means nothing here)."""
        return tso_view(self.portfolio, rules or self.portfolio.rules)

    def availability(self, envelope: Envelope, rules: MarketRules | None = None
                     ) -> AvailabilitySchedule:
        """Its energy offers' power range per period (MW), as a message in ``envelope``."""
        e = self.offers(rules).energy
        T = envelope.n_periods
        return AvailabilitySchedule(envelope,
                                    resource_ids=tuple(map(str, e.table.offer_id)),
                                    p_max_mw=np.asarray(e.p_max, dtype=float)[:T],
                                    p_min_mw=np.asarray(e.p_min, dtype=float)[:T])

    def receive(self, messages: list[Message]) -> None:
        """Keep what the operators sent it (curtailment requests)."""
        self.inbox.extend(messages)

    def curtailment_caps(self) -> pd.DataFrame:
        """The caps of every curtailment request received (periods x der_id, MW; the
        lowest where several name the same DER); empty when none."""
        caps: pd.DataFrame | None = None
        for m in self.inbox:
            if isinstance(m, CurtailmentRequest):
                frame = pd.DataFrame(np.array(m.p_max_mw), columns=list(m.der_ids))
                caps = frame if caps is None else caps.combine(frame, np.fmin,
                                                               overwrite=False)
        return caps if caps is not None else pd.DataFrame()
