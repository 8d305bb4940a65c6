"""The messages of one scheme run: built typed, sent through the bus, read by the recipient.

A scheme never hands one party's numbers to another directly: the sender builds a typed
message (:mod:`tsodso.actors.messages`), the :class:`~tsodso.actors.MessageBus` logs it
(committed) and delivers it, and the recipient's side of the scheme takes it from its inbox
and uses what it holds (:meth:`Exchange.post` returns the delivered messages as the
recipient read them). The log's counts and bytes are therefore those of the protocol the
code follows.

Parties: the TSO is ``tso``; a DSO is ``dso:<name>`` (the DSO operating a feeder:
:meth:`System.dso_of <tsodso.model.system.System.dso_of>`, by default one per interface bus,
``dso:bus<N>``); aggregators are ``aggregator:<aggregator_id>``. Messages about one feeder
(its price, its schedule) name the feeder in their payload.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tsodso.actors import (
    DerSchedule,
    Envelope,
    InterfacePrice,
    InterfaceSchedule,
    Message,
    MessageBus,
    Offer,
    Party,
    PrequalificationLimits,
    Price,
    new_envelope,
)
from tsodso.actors.aggregator import Aggregator
from tsodso.actors.messages import (
    CurtailmentRequest,
    ScheduleChangeNotice,
    SettlementStatement,
)
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.rules import MarketRules

TSO = Party.tso()


def aggregator(aggregator_id: str) -> Party:
    """An aggregator party (``(none)`` for DERs without one)."""
    return Party.aggregator(aggregator_id or "(none)")


class Exchange:
    """Builds, sends and receives the messages of one scheme run on ``system``.

    Parameters
    ----------
    system : System
        Gives the horizon (periods) and period length every envelope carries.
    scheme : str
        Logged with every message.
    bus : MessageBus, optional
        Where messages go (and are logged); a new bus with an in-memory log if omitted.
    """

    def __init__(self, system: System, scheme: str, bus: MessageBus | None = None) -> None:
        self.T = system.n_periods
        self.dt = system.profiles.period_hours
        self._dso_of = system.dso_of()
        self.scheme = scheme
        self._owns = bus is None
        self.bus = bus if bus is not None else MessageBus(scheme=scheme)
        if not self._owns:
            self.bus.scheme = scheme

    def dso(self, feeder_id: str) -> Party:
        """The party of the DSO operating ``feeder_id``."""
        return Party.dso(self._dso_of[feeder_id])

    def _env(self, sender: Party, recipient: Party, iteration: int = 0,
             periods: int | None = None) -> Envelope:
        return new_envelope(sender, recipient, periods=periods or self.T,
                            period_hours=self.dt, sim_time=self.scheme, iteration=iteration)

    def deliver(self, messages: Sequence[Message]) -> dict[Party, list[Message]]:
        """Send ``messages`` (one committed batch) and take them out of the recipients'
        inboxes: recipient -> its messages, in the order sent. The caller hands each list
        to its party, wherever that party lives (in this process or on a worker)."""
        return self._deliver(messages)[1]

    def _deliver(self, messages: Sequence[Message]
                 ) -> tuple[list[Message], dict[Party, list[Message]]]:
        delivered = self.bus.send_all(messages)
        return delivered, {party: self.bus.receive(party) for party in
                           dict.fromkeys(m.envelope.recipient for m in delivered)}

    def post(self, messages: Sequence[Message]) -> list[Message]:
        """Send ``messages`` (one committed batch) and return them as each recipient takes
        them from its inbox, in the order sent."""
        delivered, boxes = self._deliver(messages)
        order = {m.envelope.id: i for i, m in enumerate(delivered)}
        taken = [m for box in boxes.values() for m in box]
        return sorted(taken, key=lambda m: order.get(m.envelope.id, len(order)))

    def consensus_targets(self, targets: dict[str, np.ndarray], rho: float, iteration: int
                          ) -> dict[Party, list[Message]]:
        """TSO -> each DSO: the interface target of each of its feeders (MW per period)
        with the deviation penalty ``rho`` ($/MW^2h) of a consensus iteration; returns the
        DSOs' inboxes (:meth:`deliver`)."""
        return self.deliver([
            InterfaceSchedule(self._env(TSO, self.dso(f), iteration), feeder_id=f,
                              p_mw=np.asarray(t, dtype=float), deviation_penalty=rho)
            for f, t in targets.items()])

    # ------------------------------------------------------------- builders
    def interface_prices(self, prices: dict[str, np.ndarray], iteration: int = 0
                         ) -> dict[str, np.ndarray]:
        """TSO -> each DSO: interface price ($/MWh per period); returns what each DSO
        received, $/MWh."""
        msgs = [InterfacePrice(self._env(TSO, self.dso(f), iteration), feeder_id=f,
                               price=Price(np.asarray(p, dtype=float), self.dt))
                for f, p in prices.items()]
        return {m.feeder_id: np.array(m.price.values_per_mwh)
                for m in self.post(msgs)}  # type: ignore[attr-defined]

    def interface_schedules(self, schedules: dict[str, np.ndarray], to_tso: bool,
                            iteration: int = 0) -> dict[str, np.ndarray]:
        """Interface schedules (import into each feeder, MW per period), DSOs -> TSO
        (``to_tso``) or TSO -> DSOs; returns what the recipients received."""
        msgs = [InterfaceSchedule(self._env(self.dso(f), TSO, iteration) if to_tso
                                  else self._env(TSO, self.dso(f), iteration),
                                  feeder_id=f, p_mw=np.asarray(s, dtype=float))
                for f, s in schedules.items()]
        return {m.feeder_id: np.array(m.p_mw) for m in self.post(msgs)}  # type: ignore[attr-defined]

    def prequalification(self, feeder_id: str, upper: pd.DataFrame, lower: pd.DataFrame
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """DSO -> TSO: per-DER limits (periods x der_id, MW); returns what the TSO
        received."""
        msg = PrequalificationLimits(self._env(self.dso(feeder_id), TSO),
                                     der_ids=tuple(map(str, upper.columns)),
                                     upper_mw=upper.to_numpy(), lower_mw=lower.to_numpy())
        got = self.post([msg])[0]
        cols = list(got.der_ids)  # type: ignore[attr-defined]
        return (pd.DataFrame(np.array(got.upper_mw), columns=cols),  # type: ignore[attr-defined]
                pd.DataFrame(np.array(got.lower_mw), columns=cols))  # type: ignore[attr-defined]

    def availability(self, aggregators: Sequence[Aggregator], offers: pd.DataFrame,
                     rules: MarketRules | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Aggregators -> TSO: each aggregator sends the availability of its energy offers
        (:meth:`Aggregator.availability`, pooled from its own portfolio), one message per
        aggregator with offers; returns the limits as the TSO received them, one column per
        row of the TSO's ``offers`` table (MW per period; 0 for an offer nobody sent). An
        availability for an offer the TSO does not list is an error."""
        msgs = []
        for a in aggregators:
            msg = a.availability(self._env(aggregator(a.name), TSO), rules)
            if msg.resource_ids:
                msgs.append(msg)
        out_hi = np.zeros((self.T, len(offers)))
        out_lo = np.zeros((self.T, len(offers)))
        where = {o: i for i, o in enumerate(map(str, offers.offer_id))}
        for m in self.post(msgs):
            unknown = [r for r in m.resource_ids if r not in where]  # type: ignore[attr-defined]
            if unknown:
                raise TsodsoError(f"{m.envelope.sender} sent the availability of offer "
                                  f"{unknown[0]!r}, which the TSO's market does not list")
            cols = [where[r] for r in m.resource_ids]  # type: ignore[attr-defined]
            out_hi[:, cols] = m.p_max_mw  # type: ignore[attr-defined]
            out_lo[:, cols] = m.p_min_mw  # type: ignore[attr-defined]
        return out_hi, out_lo

    def der_schedules(self, system: System, schedule: pd.DataFrame) -> pd.DataFrame:
        """TSO -> each DSO: the market schedule of the DERs in its area, one message per DSO
        (periods x der_id, MW, + = injection); returns the schedules as the DSOs received
        them."""
        ders = system.ders
        msgs = []
        for name, feeders in system.dso_feeders.items():
            ids = [d for d in ders.der_id[ders.feeder_id.isin(feeders)]
                   if d in schedule.columns]
            if ids:
                msgs.append(DerSchedule(self._env(TSO, Party.dso(name)), der_ids=tuple(ids),
                                        p_mw=schedule[ids].to_numpy()[: self.T]))
        parts = [pd.DataFrame(np.array(m.p_mw), columns=list(m.der_ids))  # type: ignore[attr-defined]
                 for m in self.post(msgs)]
        return pd.concat(parts, axis=1) if parts else schedule.iloc[:, :0]

    def curtailment(self, feeder_id: str, result_p: pd.DataFrame,
                    aggregators: pd.Series) -> dict[Party, list[Message]]:
        """DSO -> each aggregator whose DERs it held below their schedule: the caps
        (periods x der_id, MW); returns the aggregators' inboxes (:meth:`deliver`)."""
        msgs = []
        for a in dict.fromkeys(aggregators.reindex(result_p.columns).fillna("")):
            ids = [d for d in result_p.columns if (aggregators.get(d, "") or "") == a]
            msgs.append(CurtailmentRequest(self._env(self.dso(feeder_id), aggregator(a)),
                                           der_ids=tuple(map(str, ids)),
                                           p_max_mw=result_p[ids].to_numpy()))
        return self.deliver(msgs)

    def schedule_change(self, feeder_id: str, old_p: pd.DataFrame, new_p: pd.DataFrame,
                        reason: str) -> None:
        """DSO -> TSO: the DSO changed the market's DER schedules on its feeder (periods x
        der_id, MW, + = injection, before and after), and why."""
        ids = list(map(str, old_p.columns))
        self.post([ScheduleChangeNotice(self._env(self.dso(feeder_id), TSO),
                                        der_ids=tuple(ids), old_p_mw=old_p.to_numpy(),
                                        new_p_mw=new_p[ids].to_numpy(), reason=reason)])

    def interface_offers(self, feeder_id: str, bus_id: int,
                         steps: list[tuple[str, float, np.ndarray, np.ndarray]]
                         ) -> list[tuple[str, float, np.ndarray, np.ndarray]]:
        """DSO -> TSO: the feeder's interface bid curve as offers at its interface bus, one
        per step: (offer_id, price $/MWh, up MW, down MW per period) with ``up`` an import
        reduction and ``down`` an import increase; returns them as the TSO received them."""
        msgs = []
        for offer_id, price, up, down in steps:
            direction = "up" if np.any(up > 0) or not np.any(down > 0) else "down"
            qty = up if direction == "up" else down
            msgs.append(Offer(self._env(self.dso(feeder_id), TSO), offer_id=offer_id,
                              bus_id=int(bus_id), direction=direction,
                              price_per_mwh=np.full((self.T, 1), float(price)),
                              quantity_mw=np.asarray(qty, dtype=float)[:, None]))
        out = []
        for m in self.post(msgs):
            q = np.array(m.quantity_mw)[:, 0]  # type: ignore[attr-defined]
            zero = np.zeros_like(q)
            up, down = (q, zero) if m.direction == "up" else (zero, q)  # type: ignore[attr-defined]
            out.append((m.offer_id, float(m.price_per_mwh[0, 0]), up, down))  # type: ignore[attr-defined]
        return out

    def statements(self, book: dict[str, dict[str, float]]) -> list[Message]:
        """Market operator -> the TSO, each DSO and each aggregator: its settlement
        statement (line items in $, positive received); consumers and generators are not
        parties of the exchange. Returns the statements as delivered."""
        operator = Party.market_operator()
        msgs = [SettlementStatement(self._env(operator, Party.parse(party)),
                                    party=Party.parse(party),
                                    lines=tuple(sorted(lines.items())))
                for party, lines in book.items()
                if party == "tso" or party.startswith(("dso:", "aggregator:"))]
        return self.post(msgs)

    def summary(self) -> pd.DataFrame:
        """Count and bytes of this run's messages by kind."""
        return self.bus.summary()

    def close(self) -> None:
        """Close the bus if this exchange created it."""
        if self._owns:
            self.bus.close()
