"""Market-participation rules for DERs, as presets named after the markets that use them.

Each market has two eras where its rules differ: the name alone (``pjm``) is the era before
FERC Order No. 2222 (the rules of about 2012-2017 that the field's TSO-DSO coordination
studies assume); ``pjm-2222`` is the Order 2222 compliance design. ERCOT is not under FERC's
jurisdiction: ``ercot-ader`` is its aggregated-DER pilot. For Europe ``eu`` is a national
balancing market before the 2017 Electricity Balancing Guideline (Germany's, the largest)
and ``eu-ebgl`` its standard products. Every value carries its source in ``sources`` (shown
by ``tsodso rules``), with the confidence of the evidence; where no source was found the
value is marked as assumed. The figures simplify each market to the fields tsodso models.
Change any of them with ``dataclasses.replace`` or in a scenario's ``rules:`` mapping.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from tsodso.errors import Issue, ValidationError
from tsodso.rules.local import DLMP_LOCAL, EU_LOCAL, US_LOCAL, LocalMarketRules, overridden


@dataclass(frozen=True)
class MarketRules:
    """How DERs may take part in the TSO's wholesale market, and (``local``) in the DSO's.

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
    era : str
        The period the values describe (e.g. ``pre-2222``, ``order-2222``).
    sources : tuple of str
        Where each value comes from: ``"<rule>: <source> (<confidence>)"``.
    local : LocalMarketRules
        The rules of the DSOs' local markets (minimum offer, pooling, which DER kinds may
        offer energy and reactive power, whether reactive power is paid), with their own
        sources.
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
    era: str = ""
    sources: tuple[str, ...] = ()
    local: LocalMarketRules = DLMP_LOCAL

    def to_dict(self) -> dict[str, Any]:
        """The rules as plain values (``sources`` as a list, ``local`` as a mapping)."""
        out = asdict(self)
        out["sources"] = list(self.sources)
        out["local"] = self.local.to_dict()
        return out

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
        values["sources"] = base.sources
        values["local"] = base.local
        if "local" in data:
            try:
                values["local"] = base.local.replaced(data["local"])
            except ValidationError as err:
                issues += err.issues
        for key, value in data.items():
            if key not in known or key in ("sources", "local"):
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
        if "sources" in data:  # given as written (e.g. read back from a manifest)
            values["sources"] = tuple(str(x) for x in data["sources"])
        else:  # a value set here is no longer the preset's sourced one
            changed = {k: v for k, v in data.items() if k in known
                       and k not in ("name", "era", "description", "local")
                       and v != getattr(base, k)}
            values["sources"] = overridden(base.sources, changed)
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
        self.local.check()


# Sources (full references in the README's "Market rules" section and `tsodso rules`):
ORDER_2222 = ("FERC Order No. 2222, 172 FERC ¶ 61,247 (RM18-9-000, 17 Sept 2020), 85 Fed. Reg. "
              "67094: minimum size for DER aggregations no larger than 100 kW; EVs and their "
              "supply equipment are DERs")
_ASSUMED = "no source found: assumed"


def _rules(name: str, era: str, description: str, sources: dict[str, str],
           **values: Any) -> MarketRules:
    # the local market: New York REV's design for the US markets, Germany's § 14a EnWG for
    # Europe (tsodso.rules.local); Order 2222 left distribution markets to the states
    local = EU_LOCAL if name.startswith("eu") else US_LOCAL
    return MarketRules(name, era=era, description=description,
                       sources=tuple(f"{k}: {v}" for k, v in sources.items()),
                       local=values.pop("local", local), **values)


PRESETS: dict[str, MarketRules] = {
    "pjm": _rules(
        "pjm", "pre-2222", "PJM before Order 2222: DER through curtailment service providers "
        "(100 kW), storage as generation, nodal, V2G in the regulation market",
        {"min_offer_mw": "PJM demand response through curtailment service providers, "
                         "typically at least 100 kW (PJM DR programme pages; Manual 11 not "
                         "read: medium)",
         "aggregation_allowed": "PJM: end-use customers take part through curtailment service "
                                "providers who aggregate them (pjm.com demand response; high)",
         "dr_export_ban": "PJM: DR is paid for load reduction; injection needs a wholesale "
                          "market participation agreement (RTO Insider, PJM MIC 2025; PJM "
                          "2017: 700 of 1,100 MW of DR under such agreements; medium)",
         "storage_as": "PJM: storage sold regulation and energy under generator rules before "
                       "Order 841 (PJM Inside Lines 2017; high)",
         "der_settlement": "PJM: distribution-connected generators and storage sell at their "
                           "pricing node (nodal LMP); DR used its zone by default (medium)",
         "v2g_allowed": "University of Delaware / NRG eV2g EVs became a PJM regulation market "
                        "participant on 27 Feb 2013 (Reuters, 26 Apr 2013; high)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "pjm-2222": _rules(
        "pjm-2222", "order-2222", "PJM's Order 2222 design: 100 kW aggregations, multi-node "
        "up to 167 MW, DER may inject, nodal",
        {"min_offer_mw": ORDER_2222 + " (high)",
         "aggregation_allowed": "FERC accepted PJM's multi-node aggregations with a 167 MW cap "
                                "on 25 July 2024 (ER22-962; medium-high)",
         "dr_export_ban": "PJM DER aggregations: component DERs may inject (ER22-962; "
                          "medium)",
         "storage_as": "PJM electric storage participation model, live 3 Dec 2019 (Order 841; "
                       "high)",
         "der_settlement": "PJM: aggregations settle at their pricing node (medium)",
         "v2g_allowed": ORDER_2222 + " (high)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "nyiso": _rules(
        "nyiso", "pre-2222", "NYISO before Order 2222: 100 kW DR per load zone, batteries "
        "regulation only, zonal",
        {"min_offer_mw": "NYISO Services Tariff Att. G § 22.2: a CSP must be able to reduce "
                         "at least 100 kW of load in one load zone (high)",
         "aggregation_allowed": "NYISO Services Tariff Att. G § 22.2: aggregation within a "
                                "load zone (high)",
         "dr_export_ban": "NYISO EDRP/SCR: load reduction by curtailing or by on-site "
                          "generation serving the load (medium)",
         "storage_as": "NYISO: limited energy storage resources could provide regulation only "
                       "(NYISO 2010 report); no energy sales until 2020: modelled as "
                       "dispatchable load (high)",
         "der_settlement": "NYISO DR aggregated and priced by load zone (medium)",
         "v2g_allowed": _ASSUMED + " false (no NYISO V2G rule found)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True, storage_as="load",
        der_settlement="zonal", v2g_allowed=False),
    "nyiso-2222": _rules(
        "nyiso-2222", "order-2222", "NYISO's DER model: 100 kW aggregations of DERs of at "
        "least 10 kW at one transmission node, nodal",
        {"min_offer_mw": ORDER_2222 + "; NYISO DERs at least 10 kW each, 187 FERC ¶ 61,022 "
                                      "(ER23-2040, 15 Apr 2024; high)",
         "aggregation_allowed": "NYISO: all facilities of a DER aggregation on one "
                                "transmission node, 179 FERC ¶ 61,198 (ER21-2460; high)",
         "dr_export_ban": "NYISO DER aggregations: injecting facilities need an "
                          "interconnection agreement, then may inject (high)",
         "storage_as": "NYISO energy storage resource model, live Aug 2020 (high)",
         "der_settlement": "NYISO aggregations priced at the transmission node (medium)",
         "v2g_allowed": ORDER_2222 + " (medium)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "ercot": _rules(
        "ercot", "pre-2022", "ERCOT before 2022: 100 kW ERS, distributed generation up to "
        "10 MW paid the load-zone price",
        {"min_offer_mw": "ERCOT Emergency Response Service technical requirements (2019): "
                         "100 kW minimum (high)",
         "aggregation_allowed": "16 TAC § 25.507: an ERS resource may be an aggregation of "
                                "loads or of unregistered generators (high)",
         "dr_export_ban": "ERCOT load ERS and Load Resources curtail only (medium)",
         "storage_as": "ERCOT storage as generation resource plus controllable load (PUCT "
                       "Project 39917, 2012; high)",
         "der_settlement": "ERCOT settlement-only distributed generators up to 10 MW paid the "
                           "load-zone price until NPRR917 (Feb 2022) (high)",
         "zonal_settlement_below_mw": "as der_settlement (high)",
         "v2g_allowed": _ASSUMED + " false (no ERCOT V2G rule found)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True,
        storage_as="generation", der_settlement="nodal", zonal_settlement_below_mw=10.0,
        v2g_allowed=False),
    "ercot-ader": _rules(
        "ercot-ader", "ader-pilot", "ERCOT's aggregated DER pilot: 100 kW per aggregation in "
        "one load zone, premises may inject; DG up to 1 MW at the load-zone price",
        {"min_offer_mw": "ERCOT ADER pilot: at least 100 kW per aggregation, at most 1 MW per "
                         "premise (PUCT Project 53911, 2022; high)",
         "aggregation_allowed": "ADER: one load zone, same LSE and DSP (high)",
         "dr_export_ban": "ADER: each premise may be net load or net generation (high)",
         "storage_as": "ERCOT storage as generation resource plus load (high)",
         "der_settlement": "ERCOT NPRR917 (1-3 Feb 2022): settlement-only DG and storage "
                           "priced at their node; unregistered DG of 1 MW or less keeps the "
                           "load-zone price (high)",
         "zonal_settlement_below_mw": "as der_settlement (high)",
         "v2g_allowed": _ASSUMED + " false (only controllable EV chargers named)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        storage_as="generation", der_settlement="nodal", zonal_settlement_below_mw=1.0,
        v2g_allowed=False),
    "caiso": _rules(
        "caiso", "pre-2222", "CAISO's 2016 DER provider model: 0.5-20 MW aggregations at one "
        "node or sub-LAP, DR curtails only, nodal",
        {"min_offer_mw": "FERC, California ISO, 155 FERC ¶ 61,229 (ER16-1085, 2 June 2016) "
                         "P 2: aggregations of 0.5 MW or more (high)",
         "aggregation_allowed": "ibid.: aggregations at one pricing node or within one "
                                "sub-LAP, at most 20 MW; units of 1 MW or more not aggregated "
                                "(high)",
         "dr_export_ban": "CAISO Demand Response FAQs: proxy demand resources only curtail, "
                          "never export (high)",
         "storage_as": "CAISO non-generator resource model: generation and load (high)",
         "der_settlement": "CAISO DER aggregations priced at their pricing node (medium)",
         "v2g_allowed": "CAISO DER provider framework: plug-in EVs may join an aggregation "
                        "(Troutman, July 2015; medium)"},
        min_offer_mw=0.5, aggregation_allowed=True, dr_export_ban=True,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "caiso-2222": _rules(
        "caiso-2222", "order-2222", "CAISO's Order 2222 design: 100 kW heterogeneous "
        "multi-node aggregations, DR still curtails only, nodal",
        {"min_offer_mw": "CAISO Order 2222 compliance (ER21-2455): DER aggregation minimum "
                         "lowered from 500 kW to 100 kW (high)",
         "aggregation_allowed": "ER21-2455: heterogeneous, multi-node aggregations (high)",
         "dr_export_ban": "CAISO proxy demand resources still curtail only (2025 stakeholder "
                          "process on exports; high)",
         "storage_as": "CAISO non-generator resource model (high)",
         "der_settlement": "CAISO aggregations priced at their pricing nodes (medium)",
         "v2g_allowed": ORDER_2222 + "; CAISO's definition aligned with it (medium)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "miso": _rules(
        "miso", "pre-2222", "MISO before Order 2222: 1 MW demand response resources that "
        "curtail only, storage restricted",
        {"min_offer_mw": "MISO demand response resource type I: 1 MW minimum (FERC, Jan 2025, "
                         "as reported by RTO Insider; medium)",
         "aggregation_allowed": "MISO: aggregators of retail customers where the state allows "
                                "them (Order 719 opt-out; Michigan barred them in 2010; high)",
         "dr_export_ban": "MISO DRR type I allows load curtailment, no injection (medium)",
         "storage_as": "MISO stored energy resources restricted before 2017 (RTO Insider; "
                       "low): modelled as dispatchable load",
         "der_settlement": _ASSUMED + " nodal (commercial pricing node)",
         "v2g_allowed": _ASSUMED + " false (no MISO V2G rule found)"},
        min_offer_mw=1.0, aggregation_allowed=True, dr_export_ban=True, storage_as="load",
        der_settlement="nodal", v2g_allowed=False),
    "miso-2222": _rules(
        "miso-2222", "order-2222", "MISO's Order 2222 design: 100 kW aggregations at one "
        "pricing node (go-live 2030), storage as generation, nodal",
        {"min_offer_mw": "FERC (16 Jan 2025): MISO's 1 MW threshold too large, Order 2222's "
                         "minimum is 100 kW (ER22-1640; high)",
         "aggregation_allowed": "FERC accepted single-pricing-node aggregations; full "
                                "participation in 2030 (ER22-1640; high)",
         "dr_export_ban": "MISO DER aggregations built on the storage model may inject "
                          "(medium)",
         "storage_as": "MISO electric storage resources in energy and reserves since Sept 2022 "
                       "(high)",
         "der_settlement": "single pricing node (medium)",
         "v2g_allowed": ORDER_2222 + " (medium)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "isone": _rules(
        "isone", "pre-2222", "ISO-NE before Order 2222: aggregated DR that curtails, "
        "batteries regulation only until 2018, zonal",
        {"min_offer_mw": _ASSUMED + " 0.1 MW (the ISO-NE load response manual's minimum "
                                    "was not read)",
         "aggregation_allowed": "ISO-NE load response manual, section 2.4 load aggregation "
                                "(medium)",
         "dr_export_ban": "ISO-NE demand resources reduce consumption (medium)",
         "storage_as": "ISO-NE: batteries (ATRR) limited to regulation until the storage "
                       "rules FERC accepted in Dec 2016 took effect (ISO Newswire, 13 Jan "
                       "2017; high): modelled as dispatchable load",
         "der_settlement": "ISO-NE demand response reported and priced by load zone (medium)",
         "v2g_allowed": _ASSUMED + " false (no ISO-NE V2G rule found)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=True, storage_as="load",
        der_settlement="zonal", v2g_allowed=False),
    "isone-2222": _rules(
        "isone-2222", "order-2222", "ISO-NE's Order 2222 design: 100 kW aggregations, "
        "storage as generation",
        {"min_offer_mw": "ISO-NE Order 2222 proposal (ER22-983): 100 kW minimum for DER "
                         "aggregations in all models (RTO Insider, Jan 2022; medium-high)",
         "aggregation_allowed": "ER22-983, partly accepted 1 Mar 2023 (medium)",
         "dr_export_ban": "ISO-NE DER aggregations may include injecting DERs (low)",
         "storage_as": "ISO-NE electric storage facilities (binary or continuous) (high)",
         "der_settlement": _ASSUMED + " nodal",
         "v2g_allowed": ORDER_2222 + " (medium)"},
        min_offer_mw=0.1, aggregation_allowed=True, dr_export_ban=False,
        storage_as="generation", der_settlement="nodal", v2g_allowed=True),
    "eu": _rules(
        "eu", "pre-2017", "A European balancing market before the 2017 guideline (Germany's): "
        "5 MW bids, pooling within the control area, zonal",
        {"min_offer_mw": "regelleistung.net: minimum mFRR bid 5 MW from 3 July 2012 (10 MW "
                         "before), 1 MW from 12 July 2018 (BNetzA BK6-15-158/159); UK STOR 3 "
                         "MW, Nordic mFRR 10 MW, French NEBEF 0.1 MW (high)",
         "aggregation_allowed": "regelleistung.net: pooling within a control area, across "
                                "control areas only to reach the minimum (high)",
         "dr_export_ban": "German pools mix loads and generating units; UK STOR lets "
                          "on-site generation export (medium)",
         "storage_as": "storage pooled as a technical unit giving positive and negative "
                       "reserve (low)",
         "der_settlement": "European markets price by bidding zone (medium)",
         "v2g_allowed": "EVs have delivered FCR-N to Energinet (DK2) since Sept 2016 "
                        "(Nuvve/Enel/Nissan; high)"},
        min_offer_mw=5.0, aggregation_allowed=True, dr_export_ban=False,
        storage_as="generation", der_settlement="zonal", v2g_allowed=True),
    "eu-ebgl": _rules(
        "eu-ebgl", "ebgl", "European standard balancing products (Regulation (EU) 2017/2195): "
        "1 MW bids, pooling, zonal",
        {"min_offer_mw": "standard aFRR/mFRR products, 1 MW (regelleistung.net; Fingrid mFRR "
                         "capacity market 1 MW; ACER Decision 02/2020 not read in full; "
                         "medium-high)",
         "aggregation_allowed": "Directive (EU) 2019/944 Art. 17: independent aggregators; "
                                "pooling within a control area (high)",
         "dr_export_ban": "Directive (EU) 2019/944 Art. 2(20): demand response is a change "
                          "of load; export is an active customer's (medium)",
         "storage_as": "Directive (EU) 2019/944: active customers may store and sell "
                       "(medium)",
         "der_settlement": "Regulation (EU) 2017/2195 Art. 54: imbalance price area = bidding "
                           "zone (medium)",
         "v2g_allowed": "national rules allow bidirectional charging in several countries "
                        "(FfE, Energies 17(15):3637, 2024; medium)"},
        min_offer_mw=1.0, aggregation_allowed=True, dr_export_ban=True,
        storage_as="generation", der_settlement="zonal", v2g_allowed=True),
    "custom": MarketRules("custom", description="custom rules (defaults: 100 kW, nodal)",
                          era="", sources=("all: tsodso's defaults, no market's rules",)),
}


def get_rules(name: str) -> MarketRules:
    """Return the preset called ``name`` (case-insensitive)."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise ValidationError(
            [Issue("rules", "preset", name, f"unknown preset; choose from {', '.join(PRESETS)}")]
        )
    return PRESETS[key]
