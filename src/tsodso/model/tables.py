"""The component tables of tsodso and their declared columns.

Transmission tables follow MATPOWER's data (bus numbers are the case file's own; impedances in
per unit of the case's ``base_mva``); distribution tables are in physical units (ohm, MW, kV).
Sign convention everywhere: generation and injection positive, load positive as consumption.
"""

from __future__ import annotations

import math

from tsodso.model.schema import Column as C
from tsodso.model.schema import TableSchema

INF = math.inf

DER_KINDS = ("pv", "wind", "storage", "ev", "demand_response", "dg")
MARKETS = ("tso", "dso")

BUSES = TableSchema(
    "buses",
    ("bus_id",),
    (
        C("bus_id", "int", "", "bus number as in the case file"),
        C("bus_type", "int", "", "1 PQ, 2 PV, 3 reference, 4 isolated (MATPOWER codes)",
          default=1, minimum=1, maximum=4),
        C("gs_mw", "float", "MW", "shunt conductance, MW consumed at 1.0 pu voltage", default=0.0),
        C("bs_mvar", "float", "MVAr", "shunt susceptance, MVAr injected at 1.0 pu", default=0.0),
        C("area", "int", "", "area number", default=1),
        C("zone", "int", "", "loss / load zone number", default=1),
        C("vm_pu", "float", "pu", "voltage magnitude (initial or solved)", default=1.0),
        C("va_deg", "float", "deg", "voltage angle (initial or solved)", default=0.0),
        C("base_kv", "float", "kV", "nominal voltage", default=0.0, minimum=0.0),
        C("vmax_pu", "float", "pu", "upper voltage limit", default=1.1, positive=True),
        C("vmin_pu", "float", "pu", "lower voltage limit", default=0.9, minimum=0.0),
    ),
    "Transmission buses.",
)

BRANCHES = TableSchema(
    "branches",
    ("branch_id",),
    (
        C("branch_id", "int", "", "1-based row order in the case file"),
        C("from_bus", "int", "", "from bus number"),
        C("to_bus", "int", "", "to bus number"),
        C("r_pu", "float", "pu", "series resistance on the case base"),
        C("x_pu", "float", "pu", "series reactance on the case base (non-zero)"),
        C("b_pu", "float", "pu", "total line-charging susceptance", default=0.0),
        C("rate_a_mva", "float", "MVA", "long-term rating; inf = unlimited (MATPOWER's 0)",
          default=INF, positive=True),
        C("rate_b_mva", "float", "MVA", "short-term rating; inf = unlimited", default=INF,
          positive=True),
        C("rate_c_mva", "float", "MVA", "emergency rating; inf = unlimited", default=INF,
          positive=True),
        C("tap_ratio", "float", "", "off-nominal turns ratio at the from side (1 for lines)",
          default=1.0, positive=True),
        C("shift_deg", "float", "deg", "phase shift angle (positive: delay)", default=0.0),
        C("in_service", "bool", "", "branch status", default=True),
        C("angmin_deg", "float", "deg", "minimum angle difference", default=-360.0),
        C("angmax_deg", "float", "deg", "maximum angle difference", default=360.0),
    ),
    "Transmission lines and transformers (pi model, MATPOWER convention).",
)

GENERATORS = TableSchema(
    "generators",
    ("gen_id",),
    (
        C("gen_id", "int", "", "1-based row order in the case file"),
        C("bus_id", "int", "", "bus number"),
        C("pg_mw", "float", "MW", "active power set point", default=0.0),
        C("qg_mvar", "float", "MVAr", "reactive power set point", default=0.0),
        C("qmax_mvar", "float", "MVAr", "reactive power upper limit", default=INF),
        C("qmin_mvar", "float", "MVAr", "reactive power lower limit", default=-INF),
        C("vg_pu", "float", "pu", "voltage set point", default=1.0),
        C("mbase_mva", "float", "MVA", "machine base", default=100.0),
        C("in_service", "bool", "", "generator status", default=True),
        C("pmax_mw", "float", "MW", "active power upper limit; inf = none (MATPOWER's Inf)",
          allow_inf=True),
        C("pmin_mw", "float", "MW", "active power lower limit; -inf = none", default=0.0,
          allow_inf=True),
        C("ramp_up_mw_per_h", "float", "MW/h", "ramp-up limit per hour; inf = none",
          default=INF, positive=True),
        C("ramp_down_mw_per_h", "float", "MW/h", "ramp-down limit per hour; inf = none",
          default=INF, positive=True),
        C("cost_model", "str", "", "polynomial or piecewise_linear (points in gen_cost_points)",
          default="polynomial", choices=("polynomial", "piecewise_linear")),
        C("cost_c2", "float", "$/MW^2h", "quadratic cost coefficient", default=0.0),
        C("cost_c1", "float", "$/MWh", "linear cost coefficient (marginal cost)", default=0.0),
        C("cost_c0", "float", "$/h", "no-load cost while online", default=0.0),
        C("startup_cost", "float", "$", "start-up cost", default=0.0),
        C("shutdown_cost", "float", "$", "shut-down cost", default=0.0),
    ),
    "Transmission-connected generators (dispatchable loads have pmin_mw < 0 = pmax_mw).",
)

GEN_COST_POINTS = TableSchema(
    "gen_cost_points",
    ("gen_id", "point"),
    (
        C("gen_id", "int", "", "generator id"),
        C("point", "int", "", "breakpoint order, 0-based", minimum=0),
        C("p_mw", "float", "MW", "output at the breakpoint"),
        C("cost_per_h", "float", "$/h", "total cost at the breakpoint"),
    ),
    "Breakpoints of piecewise-linear generator costs (MATPOWER gencost model 1).",
)

LOADS = TableSchema(
    "loads",
    ("load_id",),
    (
        C("load_id", "int", "", "load id (for MATPOWER cases: the bus number)"),
        C("bus_id", "int", "", "bus number"),
        C("p_mw", "float", "MW", "active demand (positive = consumption)"),
        C("q_mvar", "float", "MVAr", "reactive demand", default=0.0),
        C("in_service", "bool", "", "load status", default=True),
        C("profile", "str", "", "profile name scaling p and q per period; '' = flat", default=""),
    ),
    "Transmission loads (the inflexible demand at each bus).",
)

FEEDERS = TableSchema(
    "feeders",
    ("feeder_id",),
    (
        C("feeder_id", "str", "", "feeder name, unique in the system"),
        C("interface_bus", "int", "", "transmission bus of the TSO-DSO interface (substation)"),
        C("root_bus", "int", "", "feeder bus fed by the substation transformer"),
        C("nominal_kv", "float", "kV", "nominal line-to-line voltage", positive=True),
        C("substation_mva", "float", "MVA", "substation transformer rating; inf = unlimited",
          default=INF, positive=True),
        C("v_root_pu", "float", "pu", "voltage at the root bus (substation secondary)",
          default=1.0, positive=True),
        C("v_min_pu", "float", "pu", "default lower voltage limit", default=0.95, positive=True),
        C("v_max_pu", "float", "pu", "default upper voltage limit", default=1.05, positive=True),
        C("load_scale", "float", "", "factor applied to the source case's loads", default=1.0,
          minimum=0.0),
        C("source", "str", "", "where the feeder came from (e.g. matpower:case33bw)", default=""),
        C("dso_id", "str", "", "the DSO operating the feeder; '' = the DSO of its interface "
          "bus, named bus<interface_bus>", default=""),
        C("oltc_v_min_pu", "float", "pu", "on-load tap changer: lowest root voltage it can "
          "set; NaN = no tap changer (root held at v_root_pu)", default=math.nan,
          allow_nan=True, positive=True),
        C("oltc_v_max_pu", "float", "pu", "on-load tap changer: highest root voltage it can "
          "set; NaN = no tap changer", default=math.nan, allow_nan=True, positive=True),
        C("oltc_tap_pu", "float", "pu", "voltage change of one tap (positions v_root_pu + "
          "k * tap within the band)", default=0.00625, positive=True),
        C("oltc_discrete", "bool", "", "the root voltage takes tap positions (else "
          "continuous)", default=True),
        C("oltc_tap_cost", "float", "$", "cost of one tap change (wear), $ per tap moved "
          "between consecutive periods", default=0.0, minimum=0.0),
    ),
    "Radial distribution feeders and their TSO-DSO interface.",
)

FEEDER_BUSES = TableSchema(
    "feeder_buses",
    ("feeder_id", "bus_id"),
    (
        C("feeder_id", "str", "", "feeder"),
        C("bus_id", "int", "", "bus number within the feeder (the source file's own)"),
        C("v_min_pu", "float", "pu", "lower voltage limit; NaN = the feeder's", default=math.nan,
          allow_nan=True, positive=True),
        C("v_max_pu", "float", "pu", "upper voltage limit; NaN = the feeder's", default=math.nan,
          allow_nan=True, positive=True),
        C("cap_mvar", "float", "MVAr", "switched capacitor bank at the bus: MVAr at 1.0 pu "
          "with every step in (0 = none)", default=0.0, minimum=0.0),
        C("cap_steps", "int", "", "equal steps the bank switches in (cap_mvar / cap_steps "
          "each)", default=1, minimum=1),
    ),
    "Buses of distribution feeders.",
)

FEEDER_LINES = TableSchema(
    "feeder_lines",
    ("feeder_id", "line_id"),
    (
        C("feeder_id", "str", "", "feeder"),
        C("line_id", "int", "", "line id, unique within the feeder"),
        C("from_bus", "int", "", "upstream bus"),
        C("to_bus", "int", "", "downstream bus"),
        C("r_ohm", "float", "ohm", "series resistance", minimum=0.0),
        C("x_ohm", "float", "ohm", "series reactance", minimum=0.0),
        C("b_us", "float", "uS", "total shunt susceptance", default=0.0, minimum=0.0),
        C("rating_mva", "float", "MVA", "thermal rating; inf = unlimited", default=INF,
          positive=True),
        C("in_service", "bool", "", "line status (open switches are out of service)",
          default=True),
    ),
    "Lines of distribution feeders (balanced, positive sequence).",
)

FEEDER_LOADS = TableSchema(
    "feeder_loads",
    ("feeder_id", "load_id"),
    (
        C("feeder_id", "str", "", "feeder"),
        C("load_id", "int", "", "load id, unique within the feeder"),
        C("bus_id", "int", "", "feeder bus"),
        C("p_mw", "float", "MW", "active demand (positive = consumption)"),
        C("q_mvar", "float", "MVAr", "reactive demand", default=0.0),
        C("profile", "str", "", "profile name scaling p and q per period; '' = flat", default=""),
    ),
    "Inflexible loads on distribution feeders.",
)

DERS = TableSchema(
    "ders",
    ("der_id",),
    (
        C("der_id", "str", "", "DER name, unique in the system"),
        C("kind", "str", "", "technology", choices=DER_KINDS),
        C("feeder_id", "str", "", "feeder the DER is connected to"),
        C("bus_id", "int", "", "feeder bus"),
        C("aggregator_id", "str", "", "owning aggregator; '' = none (cannot bid)", default=""),
        C("p_max_mw", "float", "MW", "maximum injection (generation or discharge)", minimum=0.0),
        C("p_min_mw", "float", "MW",
          "minimum injection; negative = consumption (storage charging, EV charging)",
          default=0.0),
        C("s_max_mva", "float", "MVA", "inverter apparent-power rating; NaN = no Q capability",
          default=math.nan, allow_nan=True, minimum=0.0),
        C("energy_mwh", "float", "MWh",
          "storage energy capacity (storage, ev) or daily energy budget (demand_response)",
          default=0.0, minimum=0.0),
        C("soc_init", "float", "", "initial state of charge, fraction of energy_mwh",
          default=0.5, minimum=0.0, maximum=1.0),
        C("soc_min", "float", "", "minimum state of charge, fraction", default=0.0,
          minimum=0.0, maximum=1.0),
        C("soc_max", "float", "", "maximum state of charge, fraction", default=1.0,
          minimum=0.0, maximum=1.0),
        C("soc_end", "float", "", "storage: lowest state of charge at the end of the "
          "horizon, fraction; NaN = soc_init (the horizon ends with at least the energy it "
          "started with)", default=math.nan, allow_nan=True, minimum=0.0, maximum=1.0),
        C("eta_charge", "float", "", "charging efficiency", default=1.0, positive=True,
          maximum=1.0),
        C("eta_discharge", "float", "", "discharging efficiency", default=1.0, positive=True,
          maximum=1.0),
        C("cost_per_mwh", "float", "$/MWh",
          "marginal cost of output (or of curtailed demand for demand_response)", default=0.0),
        C("arrival_period", "int", "", "EV: first period plugged in (0-based)", default=0,
          minimum=0),
        C("departure_period", "int", "",
          "EV: first period no longer plugged in; -1 = end of horizon", default=-1, minimum=-1),
        C("energy_need_mwh", "float", "MWh", "EV: energy to deliver before departure",
          default=0.0, minimum=0.0),
        C("profile", "str", "",
          "availability profile: p_max_mw is scaled by it per period; '' = always available",
          default=""),
        C("telemetry", "bool", "", "the operators measure the DER in real time and can "
          "instruct it; false = behind the meter without telemetry: no market can dispatch "
          "it (a price-taker, part of its bus's net load)", default=True),
    ),
    "Distributed energy resources on feeders.",
)

DER_BIDS = TableSchema(
    "der_bids",
    ("der_id", "step"),
    (
        C("der_id", "str", "", "DER"),
        C("step", "int", "", "step order, 0-based", minimum=0),
        C("quantity_mw", "float", "MW", "size of the step", minimum=0.0),
        C("price_per_mwh", "float", "$/MWh", "offer price of the step"),
    ),
    "Stepwise bid curves; a DER with steps offers them instead of its cost_per_mwh.",
)

AGGREGATORS = TableSchema(
    "aggregators",
    ("aggregator_id",),
    (
        C("aggregator_id", "str", "", "aggregator name"),
        C("name", "str", "", "display name", default=""),
        C("markets", "str", "", "comma-separated markets it bids into: tso, dso",
          default="tso,dso"),
    ),
    "Aggregators that bid DER portfolios into markets.",
)

ALL_SCHEMAS: dict[str, TableSchema] = {
    s.name: s
    for s in (BUSES, BRANCHES, GENERATORS, GEN_COST_POINTS, LOADS, FEEDERS, FEEDER_BUSES,
              FEEDER_LINES, FEEDER_LOADS, DERS, DER_BIDS, AGGREGATORS)
}
