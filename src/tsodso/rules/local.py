"""The rules of a DSO's local market: who may offer what to the distribution side.

A scheme with a distribution market (``common``, ``admm``, ``hierarchical``, ``local``,
``shared_balancing``) dispatches a DER only if some market admits it: the TSO's
(:func:`tsodso.rules.admission.tso_admission`) or the DSO's under these rules
(:func:`tsodso.rules.admission.dso_admission`). A DER that no market admits is a
price-taker: it runs as nobody dispatched it (PV and wind at their availability, EVs
charging on arrival, the rest idle) and gives no reactive power.

Two services are modelled: ``energy`` (active power: the DSO may move the DER's output)
and ``reactive`` (the DSO sets the inverter's reactive power within its rating). Reactive
power is either bought at the reactive DLMP (``reactive_paid``) or, where the grid code asks
DERs to support voltage without payment, used by the DSO and not paid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from tsodso.errors import Issue, ValidationError

#: DER kinds the local rules may name.
DER_KINDS = ("pv", "wind", "dg", "storage", "ev", "demand_response")
#: DER kinds with an inverter that can give reactive power (within ``s_max_mva``).
INVERTER_KINDS = ("pv", "wind", "dg", "storage")


@dataclass(frozen=True)
class LocalMarketRules:
    """How DERs may take part in the DSO's local market.

    Attributes
    ----------
    min_offer_mw : float
        Smallest offer the local market accepts, MW (alone, or pooled per aggregator and
        feeder where ``aggregation_allowed``).
    aggregation_allowed : bool
        Whether an aggregator's DERs on one feeder may pool to reach ``min_offer_mw``.
    energy_kinds : tuple of str
        DER kinds that may offer active power (energy, flexibility) to the DSO.
    reactive_kinds : tuple of str
        DER kinds whose inverters the DSO may use for reactive power (only those with an
        inverter rating ``s_max_mva``; see :data:`INVERTER_KINDS`).
    reactive_paid : bool
        Reactive power is bought at the reactive DLMP (a line item of the settlement);
        ``False``: the grid code asks for it and nobody pays.
    sources : tuple of str
        Where each value comes from: ``"<rule>: <source> (<confidence>)"``.
    """

    min_offer_mw: float = 0.0
    aggregation_allowed: bool = True
    energy_kinds: tuple[str, ...] = DER_KINDS
    reactive_kinds: tuple[str, ...] = INVERTER_KINDS
    reactive_paid: bool = True
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists)."""
        out = asdict(self)
        for key in ("energy_kinds", "reactive_kinds", "sources"):
            out[key] = list(out[key])
        return out

    def replaced(self, data: Any, where: str = "rules.local") -> LocalMarketRules:
        """These rules with the values of the mapping ``data`` (unknown keys and wrong
        types are a :class:`ValidationError` naming ``where.<key>``); a value set here
        replaces its source with "set in the scenario"."""
        if not isinstance(data, dict):
            raise ValidationError([Issue(where, "", "", "expected a mapping")])
        known = {f.name: f for f in fields(self)}
        issues = [Issue(where, k, "", f"unknown local-market rule; known: "
                        f"{', '.join(n for n in known if n != 'sources')}")
                  for k in data if k not in known]
        values = {f: getattr(self, f) for f in known}
        changed = {}
        for key, value in data.items():
            if key not in known:
                continue
            if key in ("energy_kinds", "reactive_kinds", "sources"):
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(",") if v.strip()]
                if not isinstance(value, list | tuple) or not all(
                        isinstance(v, str) for v in value):
                    issues.append(Issue(where, key, "", "expected a list of names"))
                    continue
                value = tuple(value)
            elif key == "min_offer_mw":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    issues.append(Issue(where, key, "", "expected a number (MW)"))
                    continue
                value = float(value)
            elif not isinstance(value, bool):
                issues.append(Issue(where, key, "", "expected true or false"))
                continue
            if key != "sources" and value != values[key]:
                changed[key] = value
            values[key] = value
        if issues:
            raise ValidationError(issues)
        if "sources" not in data:
            values["sources"] = overridden(self.sources, changed)
        out = LocalMarketRules(**values)
        out.check(where)
        return out

    def check(self, where: str = "rules.local") -> None:
        """Raise :class:`ValidationError` for values outside their meaning."""
        issues = []
        if not self.min_offer_mw >= 0:
            issues.append(Issue(where, "min_offer_mw", "", "must be >= 0"))
        for key in ("energy_kinds", "reactive_kinds"):
            for kind in getattr(self, key):
                if kind not in DER_KINDS:
                    issues.append(Issue(where, key, kind, f"unknown DER kind; kinds: "
                                        f"{', '.join(DER_KINDS)}"))
        for kind in self.reactive_kinds:
            if kind in DER_KINDS and kind not in INVERTER_KINDS:
                issues.append(Issue(where, "reactive_kinds", kind, "has no inverter; kinds "
                                    f"with one: {', '.join(INVERTER_KINDS)}"))
        if issues:
            raise ValidationError(issues)


def overridden(sources: tuple[str, ...], changed: dict[str, Any]) -> tuple[str, ...]:
    """``sources`` with the entries of the rules in ``changed`` replaced by "set in the
    scenario" (a value a user sets is no longer the preset's sourced one)."""
    keep = tuple(s for s in sources if s.split(":", 1)[0] not in changed)
    return keep + tuple(f"{k}: set in the scenario ({v!r})" for k, v in changed.items())


_ASSUMED = "no source found: assumed"
# IEEE 1547a-2014 let DERs regulate voltage with the utility's agreement (1547-2003 had
# forbidden it); nobody paid for it
_IEEE_1547A = ("IEEE Std 1547a-2014 (amendment of 1547-2003): DERs may actively regulate "
               "voltage by reactive power with the distribution operator's agreement; "
               "no payment (high)")

#: The local market the US coordination studies assume, as New York's REV demonstrated it
#: (Con Edison's distribution load relief programme and its Brooklyn-Queens auction, 2016).
US_LOCAL = LocalMarketRules(
    min_offer_mw=0.05, aggregation_allowed=True,
    energy_kinds=("dg", "storage", "ev", "demand_response"),
    reactive_kinds=INVERTER_KINDS, reactive_paid=False,
    sources=(
        "min_offer_mw: Con Edison's Distribution Load Relief Program (tariff Rider T): "
        "customers join through an aggregator, or directly when they can reduce 50 kW or "
        "more (coned.com demand response page; high)",
        "aggregation_allowed: ibid.; Con Edison's Brooklyn-Queens Demand Management auction "
        "(Aug 2016, NY REV) cleared the bids of 10 demand response providers (Con Edison "
        "newsroom, 5 Aug 2016; high)",
        "energy_kinds: BQDM and Rider T buy load relief: demand response, storage, "
        "distributed generation, EV charging; PV only through the TSO market (medium)",
        f"reactive_kinds: {_IEEE_1547A}",
        f"reactive_paid: {_IEEE_1547A}"))

#: A German distribution grid before 2024: controllable consumption devices under
#: section 14a EnWG, one device at a time; PV, wind and DG only through the TSO market (or
#: curtailed under the EEG's feed-in management, a corrective action, not a market).
EU_LOCAL = LocalMarketRules(
    min_offer_mw=0.0, aggregation_allowed=False,
    energy_kinds=("storage", "ev", "demand_response"),
    reactive_kinds=INVERTER_KINDS, reactive_paid=False,
    sources=(
        "min_offer_mw: § 14a EnWG (2011): the DSO controls each controllable consumption "
        "device for a reduced network charge; no minimum size (high)",
        "aggregation_allowed: § 14a EnWG: an agreement per connection, not pooled (high)",
        "energy_kinds: § 14a EnWG: controllable consumption devices (heat pumps, storage "
        "heaters, EV chargers, batteries charging from the grid) (high)",
        "reactive_kinds: VDE-AR-N 4105 (2011) and the BDEW medium-voltage guideline (2008): "
        "PV and other inverters give reactive power on the DSO's set-point or "
        "characteristic (high)",
        "reactive_paid: ibid.: a connection condition, not paid (high)"))

#: The local market of the distribution-LMP literature: every DER, active and reactive
#: power, both paid at their DLMPs.
DLMP_LOCAL = LocalMarketRules(
    min_offer_mw=0.0, aggregation_allowed=True, energy_kinds=DER_KINDS,
    reactive_kinds=INVERTER_KINDS, reactive_paid=True,
    sources=(
        "all: the DLMP market of Papavasiliou, 'Analysis of distribution locational marginal "
        "prices', IEEE Trans. Smart Grid 9(5), 2018, and Bai et al., IEEE Trans. Power Syst. "
        "33(4), 2018: every DER offers P and Q, paid at the P- and Q-DLMPs (high)",))


__all__ = ["DER_KINDS", "DLMP_LOCAL", "EU_LOCAL", "INVERTER_KINDS", "LocalMarketRules",
           "US_LOCAL", "overridden"]
