"""Settle an operation: what every actor is paid or charged for the periods that happened.

Each real-time step of :func:`~tsodso.operations.run.operate` settles its run period by
period (:mod:`tsodso.coordination.settlement`: every line is one side of a physical balance
priced once, so each period's statements sum to zero) and writes the amounts; only the
period the step commits is kept. :func:`settle_operation` adds up the committed periods of
every day and closes the books of the DSOs:

``network charge``
    A regulated DSO recovers its residual cost from the consumers of its area (and returns
    a surplus to them): whatever its rents, loss purchases and curtailment compensation left
    it over the operation, its consumers pay (or receive), so the DSO ends at zero. The
    charge is allocated to nobody else, as a distribution tariff would be.

Delivery is checked against the baselines the aggregators' DERs were scheduled to in day
ahead: for each aggregator and day, the metered energy (what its DERs delivered in real
time: injection positive, MWh), the baseline (the day-ahead schedule of the same periods)
and the deviation (metered minus baseline). Energy is settled on the metered quantities at
the real-time prices (a single settlement: day-ahead schedules are baselines, not financial
positions); the real-time dispatch is what each DER was instructed and delivered, so no
non-delivery penalty arises in a simulated operation.

Amounts in $ (positive: the actor receives money), energies in MWh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tsodso.errors import TsodsoError
from tsodso.operations.run import STATEMENTS, Operation, read_operation


@dataclass
class OperationSettlement:
    """The settled books of an operation (see the module docstring).

    ``actors`` maps each actor (``tso``, ``dso:<name>``, ``aggregator:<id>``,
    ``consumers:<dso>``, ``consumers:transmission``, ``generators``) to its line items, $
    over the settled periods (+ received). ``imbalance`` is their sum (zero to the cent when
    the money balances). ``deliveries`` has one row per aggregator and day: ``metered_mwh``,
    ``baseline_mwh``, ``deviation_mwh``. ``periods`` counts the settled (realised) periods;
    ``complete`` says whether the operation ran every planned step."""

    actors: dict[str, dict[str, float]]
    imbalance: float
    deliveries: pd.DataFrame
    periods: int
    complete: bool
    by_period: pd.DataFrame = field(default_factory=pd.DataFrame)

    def total(self, actor: str) -> float:
        """What ``actor`` received in all, $ (negative: paid)."""
        return float(sum(self.actors.get(actor, {}).values()))

    def to_json(self) -> dict[str, Any]:
        """``{"actors": {actor: {line: $}}, "imbalance": $, "periods", "complete",
        "deliveries": [...]}``."""
        return {"actors": self.actors, "imbalance": self.imbalance,
                "periods": self.periods, "complete": self.complete,
                "deliveries": self.deliveries.to_dict(orient="records")}


def settle_operation(folder: str | os.PathLike[str] | Operation) -> OperationSettlement:
    """The books of the operation in ``folder`` over its realised periods (those completed
    so far; see :class:`OperationSettlement`)."""
    op = folder if isinstance(folder, Operation) else read_operation(folder)
    money = op.realised.get(STATEMENTS)
    if money is None or money.empty:
        raise TsodsoError(f"{op.folder}: no real-time period has been operated yet; nothing "
                          "to settle")
    periods = int(money[["day", "period"]].drop_duplicates().shape[0])
    grouped = money.groupby(["party", "line"], sort=False).amount.sum()
    actors: dict[str, dict[str, float]] = {}
    for (party, line), amount in grouped.items():
        actors.setdefault(str(party), {})[str(line)] = float(amount)
    for party in [p for p in actors if p.startswith("dso:")]:
        residual = sum(actors[party].values())
        consumers = f"consumers:{party.split(':', 1)[1]}"
        actors[party]["network charge"] = -residual
        actors.setdefault(consumers, {})["network charge"] = residual
    imbalance = float(sum(sum(book.values()) for book in actors.values()))
    by_period = money.pivot_table(index=["day", "period"], columns=["party", "line"],
                                  values="amount", aggfunc="sum", sort=False)
    return OperationSettlement(actors=actors, imbalance=imbalance,
                               deliveries=_deliveries(op), periods=periods,
                               complete=op.complete, by_period=by_period)


def _deliveries(op: Operation) -> pd.DataFrame:
    """Metered (real-time) against baseline (day-ahead) energy per aggregator and day, MWh,
    over the realised periods."""
    columns = ["aggregator", "day", "metered_mwh", "baseline_mwh", "deviation_mwh"]
    metered = op.realised.get("der_p_mw")
    baseline = op.day_ahead.get("der_p_mw")
    if metered is None or baseline is None or metered.empty:
        return pd.DataFrame(columns=columns)
    dt = float(op.config.get("period_hours", 1.0))
    base = baseline.reindex(index=metered.index, columns=metered.columns)
    owner = pd.Series(op.config.get("aggregators", {}), dtype=object).reindex(
        metered.columns).fillna("(none)").replace("", "(none)")
    rows = []
    for (agg, day), cols in _groups(owner, metered.index.get_level_values("day")):
        m = metered.loc[day, cols].to_numpy().sum() * dt
        b = base.loc[day, cols].to_numpy().sum() * dt
        rows.append({"aggregator": agg, "day": int(day), "metered_mwh": float(m),
                     "baseline_mwh": float(b), "deviation_mwh": float(m - b)})
    return pd.DataFrame(rows, columns=columns)


def _groups(owner: pd.Series, days: pd.Index) -> list[tuple[tuple[str, int], list[str]]]:
    """(aggregator, day) -> its DERs, in order of first appearance."""
    by_agg: dict[str, list[str]] = {}
    for der, agg in owner.items():
        by_agg.setdefault(str(agg), []).append(str(der))
    return [((agg, int(day)), ders) for day in dict.fromkeys(days)
            for agg, ders in by_agg.items()]


__all__ = ["OperationSettlement", "settle_operation"]
