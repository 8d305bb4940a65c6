"""Clearing a market session: the scheme run on the submitted offers, and what it gives
each party (awards, schedules, prices, statements, messages).

:func:`clear_session` is the one path from offers to results: the service calls it when a
session's gate closes, ``tsodso run SCENARIO --offers FILE.json`` applies the same offers
with the same :func:`~tsodso.platform.offers.apply_offers` and runs the same scheme through
the same parties and message bus, so both give identical results.

The session's run folder (``run.json``, ``system/``, ``schemes/``, ``log.sqlite`` and the
``offers.json`` it cleared) is an ordinary tsodso run folder: ``tsodso show``,
``tsodso log`` and ``tsodso report`` read it.

Units and signs: MW (injection positive), $/MWh, $ over the horizon, statements positive
when the party receives money (:mod:`tsodso.coordination.settlement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsodso.coordination.outcome import Outcome
from tsodso.coordination.settlement import TSO_PRICE_SCHEMES
from tsodso.errors import SolveError
from tsodso.model.system import System
from tsodso.platform.offers import Offer, apply_offers, write_offers
from tsodso.tso.market import settled_zonal

__all__ = ["Clearing", "awards_of", "clear_session", "prices_of", "schedules_of",
           "statements_of"]

OFFERS_FILE = "offers.json"


@dataclass
class Clearing:
    """What a cleared session gives.

    Attributes
    ----------
    scheme : str
        The scheme run.
    status : str
        The outcome's status (``optimal``, ``shed``, ...), or the error's.
    error : str
        Why the scheme ended without an answer ('' when it has one).
    folder : Path
        The session's run folder.
    outcome : Outcome or None
        The scheme's outcome.
    awards : DataFrame
        One row per offer and period: ``offer_id, aggregator_id, der_id, feeder_id,
        bus_id, period, awarded_mw`` (the DER's final output, MW), ``price_per_mwh`` (the
        price its energy is settled at: the DLMP at its bus in a scheme with a
        distribution market, else the TSO's interface LMP; NaN where the rules settle it
        at a zonal price) and ``settlement`` (``dlmp``, ``interface_lmp`` or ``zonal``).
    schedules : DataFrame
        Final DER schedules: ``der_id, aggregator_id, feeder_id, bus_id, period, p_mw,
        q_mvar``.
    prices : DataFrame
        Public prices: ``kind`` (``lmp`` at transmission buses, ``dlmp_p`` $/MWh,
        ``dlmp_q`` $/MVArh at feeder buses), ``feeder_id`` ('' for LMPs), ``bus_id``,
        ``period``, ``price``.
    statements : DataFrame
        ``party, line, amount`` ($ over the horizon, positive = received).
    """

    scheme: str
    status: str
    error: str
    folder: Path
    outcome: Outcome | None
    awards: pd.DataFrame = field(default_factory=pd.DataFrame)
    schedules: pd.DataFrame = field(default_factory=pd.DataFrame)
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)
    statements: pd.DataFrame = field(default_factory=pd.DataFrame)


def clear_session(system: System, scheme: str, offers: Sequence[Offer],
                  folder: str | Path, scenario: str = "session",
                  options: dict[str, Any] | None = None) -> Clearing:
    """Run ``scheme`` on ``system`` with ``offers`` applied and write its run folder.

    Parameters
    ----------
    system : System
        The session's scenario (its feeders, DERs, standing offers).
    scheme : str
        A coordination scheme (``tsodso schemes``).
    offers : sequence of Offer
        The offers in force at gate closure (checked: :func:`apply_offers`).
    folder : str or Path
        The session's run folder (created; a previous run in it is replaced).
    scenario : str
        What the scenario was loaded from, for ``run.json``.
    options : dict, optional
        The scheme's options (``tsodso schemes`` lists them).
    """
    from tsodso.actors import LOG_FILE_NAME, MessageLog
    from tsodso.coordination import check_scheme_names, run_schemes
    from tsodso.coordination.run_folder import prepare_run_folder, write_run

    check_scheme_names([scheme])
    cleared = apply_offers(system, offers)
    path = prepare_run_folder(folder, force=True)
    path.mkdir(parents=True, exist_ok=True)
    write_offers(offers, path / OFFERS_FILE)
    log = MessageLog(path / LOG_FILE_NAME, run_id=system.name or "session")
    try:
        outcomes = run_schemes(cleared, [scheme], {scheme: dict(options or {})}, log)
    finally:
        log.close()
    write_run(path, cleared, outcomes, {"schemes": [scheme], "offers": len(offers),
                                        "scheme_options": {scheme: dict(options or {})}},
              scenario)
    result = outcomes[scheme]
    if isinstance(result, SolveError):
        return Clearing(scheme, result.status, str(result), path, None)
    return Clearing(scheme, result.status, "", path, result,
                    awards=awards_of(cleared, scheme, result, offers),
                    schedules=schedules_of(cleared, result),
                    prices=prices_of(result), statements=statements_of(result))


def _long(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """(periods x columns) -> rows ``column, period, value``."""
    out = frame.rename_axis(index="period", columns="key").stack().rename(value)
    return out.reset_index()


def schedules_of(system: System, outcome: Outcome) -> pd.DataFrame:
    """Every DER's final schedule (MW, MVAr per period; see :class:`Clearing`)."""
    d = system.ders.set_index("der_id")
    p = outcome.der_dispatch
    if p.empty:
        return pd.DataFrame(columns=["der_id", "aggregator_id", "feeder_id", "bus_id",
                                     "period", "p_mw", "q_mvar"])
    q = outcome.der_reactive.reindex(index=p.index, columns=p.columns).fillna(0.0)
    rows = _long(p, "p_mw").rename(columns={"key": "der_id"})
    rows["q_mvar"] = _long(q, "q_mvar")["q_mvar"].to_numpy()
    rows["aggregator_id"] = d.aggregator_id.reindex(rows.der_id).fillna("").to_numpy()
    rows["feeder_id"] = d.feeder_id.reindex(rows.der_id).to_numpy()
    rows["bus_id"] = d.bus_id.reindex(rows.der_id).to_numpy().astype(np.int64)
    rows["period"] = rows.period.astype(np.int64)
    return rows[["der_id", "aggregator_id", "feeder_id", "bus_id", "period", "p_mw",
                 "q_mvar"]]


def awards_of(system: System, scheme: str, outcome: Outcome,
              offers: Sequence[Offer]) -> pd.DataFrame:
    """Each offer's award per period and the price its energy is settled at (see
    :class:`Clearing`); the price follows :func:`~tsodso.coordination.settlement.
    settle_money`, so awarded MW x price x period hours sums to the aggregator's energy
    line where every DER of it has an offer."""
    columns = ["offer_id", "aggregator_id", "der_id", "feeder_id", "bus_id", "period",
               "awarded_mw", "price_per_mwh", "settlement"]
    if not offers:
        return pd.DataFrame(columns=columns)
    d = system.ders.set_index("der_id")
    interface = system.feeders.set_index("feeder_id").interface_bus
    tso_price = scheme in TSO_PRICE_SCHEMES
    T = len(outcome.der_dispatch)
    frames = []
    for o in offers:
        der = d.loc[o.der_id]
        feeder, bus = str(der.feeder_id), int(der.bus_id)
        mw = outcome.der_dispatch[o.der_id].to_numpy(float)
        if tso_price:
            size = max(float(der.p_max_mw), -float(der.p_min_mw))
            if bool(settled_zonal(system.rules, [size])[0]):
                price, how = np.full(T, np.nan), "zonal"
            else:
                price = outcome.lmp[int(interface[feeder])].to_numpy(float)
                how = "interface_lmp"
        else:
            price, how = outcome.dlmp[feeder][bus].to_numpy(float), "dlmp"
        frames.append(pd.DataFrame({
            "offer_id": o.offer_id, "aggregator_id": o.aggregator_id, "der_id": o.der_id,
            "feeder_id": feeder, "bus_id": bus, "period": np.arange(T, dtype=np.int64),
            "awarded_mw": mw, "price_per_mwh": price, "settlement": how}))
    return pd.concat(frames, ignore_index=True)[columns]


def prices_of(outcome: Outcome) -> pd.DataFrame:
    """The public prices of a cleared session (see :class:`Clearing`)."""
    frames = []
    if not outcome.lmp.empty:
        lmp = _long(outcome.lmp, "price").rename(columns={"key": "bus_id"})
        lmp["kind"], lmp["feeder_id"] = "lmp", ""
        frames.append(lmp)
    for kind, table in (("dlmp_p", outcome.dlmp), ("dlmp_q", outcome.dlmp_q)):
        for feeder, frame in table.items():
            rows = _long(frame, "price").rename(columns={"key": "bus_id"})
            rows["kind"], rows["feeder_id"] = kind, feeder
            frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=["kind", "feeder_id", "bus_id", "period", "price"])
    out = pd.concat(frames, ignore_index=True)
    out["bus_id"] = out.bus_id.astype(np.int64)
    out["period"] = out.period.astype(np.int64)
    return out[["kind", "feeder_id", "bus_id", "period", "price"]]


def statements_of(outcome: Outcome) -> pd.DataFrame:
    """Each party's statement lines (``party, line, amount``, $)."""
    rows = [(party, line, float(amount)) for party, lines in outcome.statements.items()
            for line, amount in lines.items()]
    return pd.DataFrame(rows, columns=["party", "line", "amount"])
