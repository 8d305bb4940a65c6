"""Market-participation rules for DERs, as presets named after the markets that use them.

The figures are simplifications of each market's rules for DER aggregations (FERC Order 2222
implementations in the US; the European standard balancing products), chosen to make the
differences that matter for TSO-DSO coordination explicit. Change any of them with
``dataclasses.replace`` or in a scenario's ``rules:`` mapping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from tsodso.errors import Issue, ValidationError


@dataclass(frozen=True)
class MarketRules:
    """How DERs may take part in the TSO's wholesale market.

    Attributes
    ----------
    name : str
        Preset name or ``"custom"``.
    min_offer_mw : float
        Smallest offer the market accepts, MW.
    aggregation_allowed : bool
        Whether an aggregator's DERs at one interface bus may pool to reach ``min_offer_mw``.
    dr_export_ban : bool
        Demand response may reduce consumption but never inject into the grid.
    storage_as : {"generation", "load"}
        Storage offers as a generator that can go negative, or as a dispatchable load only.
    der_settlement : {"nodal", "zonal"}
        Price paid to DER energy: the interface-bus LMP, or the load-zone average price.
    zonal_settlement_below_mw : float
        DER offers smaller than this are settled at the zonal price even under nodal settlement
        (ERCOT pays resources under 10 MW the load-zone price).
    value_of_lost_load : float
        Price of explicit load shedding, $/MWh.
    reserve_shortfall_penalty : float
        Price of unmet reserve requirement, $/MWh.
    curtailment_compensation : {"lost_margin", "none"}
        What a DSO without a market pays for curtailing a DER below its market schedule:
        the margin lost (curtailed energy times the settlement price less the DER's offer
        cost) or nothing.
    v2g_allowed : bool
        Whether an EV may feed power back to the grid (vehicle-to-grid: ``p_max_mw > 0``).
        Where it may not, an EV with discharge capability is refused when the system is
        checked (never silently treated as charge-only).
    description : str
        One line shown by ``tsodso inspect``.
    """

    name: str = "custom"
    min_offer_mw: float = 0.1
    aggregation_allowed: bool = True
    dr_export_ban: bool = True
    storage_as: Literal["generation", "load"] = "generation"
    der_settlement: Literal["nodal", "zonal"] = "nodal"
    zonal_settlement_below_mw: float = 0.0
    value_of_lost_load: float = 10_000.0
    reserve_shortfall_penalty: float = 1_000.0
    curtailment_compensation: Literal["lost_margin", "none"] = "lost_margin"
    v2g_allowed: bool = False
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketRules:
        """Build rules from a mapping: ``preset`` (optional) then overrides."""
        if not isinstance(data, dict):
            raise ValidationError([Issue("rules", "", "", "expected a mapping or a preset name")])
        data = dict(data)
        base = get_rules(str(data.pop("preset", data.get("name", "custom"))))
        known = {f.name: f for f in fields(cls)}
        issues = [Issue("rules", k, "", "unknown rule") for k in data if k not in known]
        values = base.to_dict()
        for key, value in data.items():
            if key not in known:
                continue
            expected = type(values[key])
            if expected is float and isinstance(value, int | float) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected):
                issues.append(Issue("rules", key, "", f"expected {expected.__name__}"))
                continue
            values[key] = value
        if issues:
            raise ValidationError(issues)
        rules = cls(**values)
        rules.check()
        return rules

    def check(self) -> None:
        """Raise :class:`ValidationError` for values outside their meaning."""
        issues = []
        for name in ("min_offer_mw", "zonal_settlement_below_mw", "value_of_lost_load",
                     "reserve_shortfall_penalty"):
            if getattr(self, name) < 0:
                issues.append(Issue("rules", name, self.name, "must be >= 0"))
        if self.storage_as not in ("generation", "load"):
            issues.append(Issue("rules", "storage_as", self.name, "must be generation or load"))
        if self.der_settlement not in ("nodal", "zonal"):
            issues.append(Issue("rules", "der_settlement", self.name, "must be nodal or zonal"))
        if self.curtailment_compensation not in ("lost_margin", "none"):
            issues.append(Issue("rules", "curtailment_compensation", self.name,
                                "must be lost_margin or none"))
        if issues:
            raise ValidationError(issues)


PRESETS: dict[str, MarketRules] = {
    "pjm": MarketRules(
        "pjm", min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True,
        description="PJM: 100 kW minimum (FERC 2222), aggregation allowed, no DR export, nodal",
    ),
    "nyiso": MarketRules(
        "nyiso", min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True,
        description="NYISO: 100 kW aggregations of DERs from 10 kW, no DR export, nodal",
    ),
    "ercot": MarketRules(
        "ercot", min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        der_settlement="nodal", zonal_settlement_below_mw=10.0,
        description="ERCOT: aggregated DERs, resources under 10 MW paid the load-zone price",
    ),
    "caiso": MarketRules(
        "caiso", min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        description="CAISO: DER aggregations from 100 kW, exports allowed, nodal",
    ),
    "eu": MarketRules(
        "eu", min_offer_mw=1.0, aggregation_allowed=False, dr_export_ban=False,
        der_settlement="zonal",
        description="EU balancing products: 1 MW minimum per unit, zonal (bidding-zone) price",
    ),
    "custom": MarketRules("custom", description="custom rules (defaults: 100 kW, nodal)"),
}


def get_rules(name: str) -> MarketRules:
    """Return the preset called ``name`` (case-insensitive)."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise ValidationError(
            [Issue("rules", "preset", name, f"unknown preset; choose from {', '.join(PRESETS)}")]
        )
    return PRESETS[key]
