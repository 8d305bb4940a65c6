"""The :class:`System`: one transmission grid, its feeders, the DER fleet, profiles and rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tsodso.errors import Issue, UnknownFeederError, ValidationError
from tsodso.model.network import Feeder, TransmissionGrid
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform, defaults_filled
from tsodso.model.tables import (
    AGGREGATORS,
    DER_BIDS,
    DERS,
    FEEDER_BUSES,
    FEEDER_LINES,
    FEEDER_LOADS,
    FEEDERS,
    MARKETS,
)
from tsodso.model.topology import feeder_topology_issues
from tsodso.rules import MarketRules


@dataclass
class System:
    """Everything one study needs, as schema-checked tables.

    Distribution tables hold all feeders stacked, keyed by ``feeder_id``; use
    :meth:`feeder` for one feeder's rows. Build with the loaders in :mod:`tsodso.io` or by
    hand, then call :meth:`validate` (structured issues) or :meth:`check` (raises).
    ``meta`` holds provenance (source case, SimBench code and penetration phase, seed).
    """

    name: str = "system"
    description: str = ""
    grid: TransmissionGrid = field(default_factory=TransmissionGrid)
    feeders: pd.DataFrame = field(default_factory=FEEDERS.empty)
    feeder_buses: pd.DataFrame = field(default_factory=FEEDER_BUSES.empty)
    feeder_lines: pd.DataFrame = field(default_factory=FEEDER_LINES.empty)
    feeder_loads: pd.DataFrame = field(default_factory=FEEDER_LOADS.empty)
    ders: pd.DataFrame = field(default_factory=DERS.empty)
    der_bids: pd.DataFrame = field(default_factory=DER_BIDS.empty)
    aggregators: pd.DataFrame = field(default_factory=AGGREGATORS.empty)
    profiles: Profiles = field(default_factory=Profiles)
    rules: MarketRules = field(default_factory=MarketRules)
    meta: dict[str, Any] = field(default_factory=dict)

    TABLES = {
        "feeders": FEEDERS,
        "feeder_buses": FEEDER_BUSES,
        "feeder_lines": FEEDER_LINES,
        "feeder_loads": FEEDER_LOADS,
        "ders": DERS,
        "der_bids": DER_BIDS,
        "aggregators": AGGREGATORS,
    }

    def __repr__(self) -> str:
        """One line: name, grid counts, feeders, DERs by kind, horizon (not the tables)."""
        def count(table: Any) -> str:
            return str(len(table)) if isinstance(table, pd.DataFrame) else "?"

        try:
            kinds = self.ders["kind"].astype(str).value_counts().sort_index()
            ders = ", ".join(f"{k} {n}" for k, n in kinds.items())
        except (KeyError, AttributeError, TypeError):
            ders = ""
        try:
            hours = f"{float(self.profiles.period_hours):g}"
        except (AttributeError, TypeError, ValueError):
            hours = "?"
        g = self.grid
        grid = (f"grid {getattr(g, 'name', '') or '?'} ({count(getattr(g, 'buses', None))} "
                f"buses, {count(getattr(g, 'branches', None))} branches, "
                f"{count(getattr(g, 'generators', None))} gens)")
        return (f"System({self.name!r}: {grid}, {count(self.feeders)} feeders, "
                f"{count(self.ders)} DERs{f' ({ders})' if ders else ''}, "
                f"{getattr(self.profiles, 'n_periods', '?')} periods x {hours} h)")

    # ------------------------------------------------------------------ access
    @property
    def n_periods(self) -> int:
        return int(self.profiles.n_periods)

    @property
    def feeder_ids(self) -> list[str]:
        return [str(f) for f in self.feeders["feeder_id"]]

    def dso_of(self) -> dict[str, str]:
        """Feeder id -> the DSO that operates it: the feeder's ``dso_id``, or where that is
        empty, ``bus<interface_bus>`` (one DSO per interface bus, the default)."""
        f = self.feeders
        if "dso_id" not in f.columns:
            named = [""] * len(f)
        else:
            named = ["" if pd.isna(d) else str(d) for d in f.dso_id]
        return {str(fid): d or f"bus{int(bus)}"
                for fid, bus, d in zip(f.feeder_id, f.interface_bus, named, strict=True)}

    @property
    def dso_feeders(self) -> dict[str, list[str]]:
        """DSO name -> the feeders it operates (both in the order of the feeders table)."""
        out: dict[str, list[str]] = {}
        for fid, dso in self.dso_of().items():
            out.setdefault(dso, []).append(fid)
        return out

    def feeder(self, feeder_id: str) -> Feeder:
        """One feeder's tables (raises :class:`~tsodso.errors.UnknownFeederError`, a
        ``KeyError`` and a tsodso error, naming the feeder if unknown)."""
        match = self.feeders[self.feeders.feeder_id == feeder_id]
        if match.empty:
            raise UnknownFeederError(f"feeders[{feeder_id}]: no such feeder; have "
                                     f"{', '.join(self.feeder_ids) or 'none'}")
        return Feeder(
            match.iloc[0],
            self.feeder_buses[self.feeder_buses.feeder_id == feeder_id],
            self.feeder_lines[self.feeder_lines.feeder_id == feeder_id],
            self.feeder_loads[self.feeder_loads.feeder_id == feeder_id],
        )

    def add_feeder(self, feeder: Feeder) -> None:
        """Append a feeder's tables (ids must be new; :meth:`validate` checks)."""
        self.feeders = pd.concat([self.feeders, feeder.info.to_frame().T], ignore_index=True)
        self.feeder_buses = pd.concat([self.feeder_buses, feeder.buses], ignore_index=True)
        self.feeder_lines = pd.concat([self.feeder_lines, feeder.lines], ignore_index=True)
        self.feeder_loads = pd.concat([self.feeder_loads, feeder.loads], ignore_index=True)

    def subset_feeders(self, feeder_ids: Iterable[str], grid: bool = True) -> System:
        """A new system holding only the feeders ``feeder_ids`` (kept in this system's order).

        The feeder tables keep those feeders' rows; ``ders`` keeps their DERs, ``der_bids``
        those DERs' bids and ``aggregators`` the aggregators they name; every table gets a
        fresh 0..n-1 index. Profiles are kept whole (all feeders share them) and copied,
        as are the tables and ``meta``; ``rules`` is shared. ``grid=False`` leaves an empty
        transmission grid (same name and base MVA): enough for each feeder's DSO OPF
        (:class:`tsodso.dso.DsoOpf` reads no transmission data) and much smaller to send
        to a worker process; ``grid=True`` shares this system's grid object.

        Raises :class:`KeyError` naming any unknown feeder id.
        """
        ids = list(dict.fromkeys(str(f) for f in feeder_ids))
        unknown = sorted(set(ids) - set(self.feeder_ids))
        if unknown:
            raise KeyError(f"feeders{unknown}: no such feeder; have {self.feeder_ids}")

        def rows(table: pd.DataFrame, column: str, keep: Iterable[Any]) -> pd.DataFrame:
            return table[table[column].isin(list(keep))].reset_index(drop=True)

        ders = rows(self.ders, "feeder_id", ids)
        return replace(
            self,
            grid=self.grid if grid else TransmissionGrid(name=self.grid.name,
                                                         base_mva=self.grid.base_mva),
            feeders=rows(self.feeders, "feeder_id", ids),
            feeder_buses=rows(self.feeder_buses, "feeder_id", ids),
            feeder_lines=rows(self.feeder_lines, "feeder_id", ids),
            feeder_loads=rows(self.feeder_loads, "feeder_id", ids),
            ders=ders,
            der_bids=rows(self.der_bids, "der_id", ders.der_id),
            aggregators=rows(self.aggregators, "aggregator_id", ders.aggregator_id),
            profiles=replace(self.profiles, series=self.profiles.series.copy()),
            meta=dict(self.meta),
        )

    def window(self, start: int, stop: int | None = None) -> System:
        """The system over periods ``[start, stop)`` of its horizon (default: to its end),
        renumbered from 0: profiles sliced; EVs arrive at ``max(arrival - start, 0)`` and
        leave ``start`` periods earlier (an EV gone before ``start`` is never plugged and
        needs nothing). Storage and EV states are left as they are: set them with
        :meth:`with_energy`. Tables are copied; ``rules`` and the grid are shared."""
        T = self.n_periods
        stop = T if stop is None else stop
        if not (isinstance(start, int | np.integer) and isinstance(stop, int | np.integer)
                and 0 <= start < stop <= T):
            raise ValueError(f"window [{start}, {stop}) must lie within the horizon 0..{T}")
        ders = self.ders.copy()
        ev = (ders.kind == "ev").to_numpy()
        dep = ders.departure_period.to_numpy()
        gone = ev & (dep >= 0) & (dep <= start)
        new_dep = np.where(dep < 0, -1, np.maximum(dep - start, 0))
        new_dep = np.where(~ev, dep, np.minimum(new_dep, stop - start)
                           if stop < T else new_dep)
        ders["departure_period"] = np.where(gone, 0, new_dep).astype(np.int64)
        arr = ders.arrival_period.to_numpy()
        ders["arrival_period"] = np.where(ev, np.where(gone, 0, np.maximum(arr - start, 0)),
                                          arr).astype(np.int64)
        ders.loc[gone, "energy_need_mwh"] = 0.0
        series = self.profiles.series.iloc[start:stop].reset_index(drop=True)
        return replace(self, ders=ders,
                       profiles=replace(self.profiles, n_periods=int(stop - start),
                                        series=series),
                       meta=dict(self.meta))

    def with_energy(self, energy_mwh: Mapping[str, float]) -> System:
        """A copy whose storage and EVs start with the given energy (MWh per der_id):
        ``soc_init`` set to it; other DERs unchanged. An energy outside the unit's limits by
        more than solver accuracy (1e-5 MWh) is an error naming the DER (it is clipped
        within that accuracy). A
        storage unit keeps its end-of-horizon target (``soc_end``: the original start when
        it was NaN), so a window that ends where the day ends keeps the day's target."""
        ders = self.ders.copy()
        st = (ders.kind == "storage").to_numpy() & ders.soc_end.isna().to_numpy() \
            if "soc_end" in ders else np.zeros(len(ders), dtype=bool)
        if "soc_end" in ders:
            ders.loc[st, "soc_end"] = ders.loc[st, "soc_init"]
        index = pd.Index(ders.der_id)
        for der, value in energy_mwh.items():
            i = index.get_loc(der)
            cap = float(ders.at[i, "energy_mwh"])
            if cap <= 0:
                continue
            low = float(ders.at[i, "soc_min"]) * cap
            high = float(ders.at[i, "soc_max"]) * cap
            if not low - 1e-5 <= value <= high + 1e-5:
                raise ValidationError([Issue("ders", "soc_init", str(der),
                                             f"energy {value:.6g} MWh outside the unit's "
                                             f"limits [{low:.6g}, {high:.6g}] MWh")])
            ders.at[i, "soc_init"] = float(np.clip(value, low, high)) / cap
        return replace(self, ders=ders, meta=dict(self.meta))

    # -------------------------------------------------------------- validation
    def validate(self) -> list[Issue]:
        """Conform all tables to their schemas (in place) and check cross-references.

        Returns the list of issues; empty means the system is consistent. Nothing is repaired:
        data that does not fit is reported, never clipped or dropped.
        """
        issues = self.grid.conform()
        for attr, schema in self.TABLES.items():
            table, found = conform(getattr(self, attr), schema)
            if not found:  # a table with issues stays as the user gave it
                setattr(self, attr, table)
            issues += found
        if issues:  # cross-checks assume well-typed tables
            return issues
        issues += _grid_issues(self.grid)
        issues += _feeder_issues(self)
        issues += _der_issues(self)
        issues += self.profiles.issues(
            {
                "loads": set(self.grid.loads.profile),
                "feeder_loads": set(self.feeder_loads.profile),
                "ders": set(self.ders.profile),
            }
        )
        try:
            self.rules.check()
        except ValidationError as err:
            issues += err.issues
        return issues

    def check(self) -> System:
        """Validate and raise :class:`ValidationError` listing every issue; return self."""
        issues = self.validate()
        if issues:
            raise ValidationError(issues)
        return self

    # ----------------------------------------------------------------- summary
    def feeder_peak_load_mw(self) -> pd.Series:
        """Peak over the horizon of each feeder's total load (profiles applied), MW."""
        loads = self.feeder_loads
        per_period = self.profiles.multipliers(loads.profile) * loads.p_mw.to_numpy()
        frame = pd.DataFrame(per_period.T, index=loads.feeder_id.to_numpy())
        peak = frame.groupby(level=0).sum().max(axis=1) if len(loads) else pd.Series(dtype=float)
        return peak.reindex(self.feeder_ids, fill_value=0.0)

    def summary(self) -> dict[str, Any]:
        """Counts and totals of in-service elements (what ``tsodso inspect`` prints).

        Loads are the base (peak) values in MW and MVAr, before profiles. DER capacity is each
        DER's power rating, ``max(p_max_mw, -p_min_mw)`` (a charger's rating for EVs).
        Penetration is PV plus wind capacity as a percentage of the feeder's peak load.
        """
        g = self.grid
        live_buses = set(g.in_service_buses.bus_id)
        loads = g.loads[g.loads.in_service & g.loads.bus_id.isin(live_buses)]
        gens = g.generators[g.generators.in_service]
        ders = self.ders.assign(rating_mw=np.maximum(self.ders.p_max_mw, -self.ders.p_min_mw))
        der_by_kind = ders.groupby("kind").rating_mw.sum().round(6).to_dict()
        by_feeder = (
            ders.pivot_table(index="feeder_id", columns="kind", values="rating_mw", aggfunc="sum")
            .fillna(0.0)
            .round(6)
        )
        peak = self.feeder_peak_load_mw()
        renewable = ders[ders.kind.isin(["pv", "wind"])].groupby("feeder_id").p_max_mw.sum()
        penetration = (100 * renewable.reindex(peak.index, fill_value=0.0) / peak.where(peak > 0))
        return {
            "name": self.name,
            "buses": int(len(live_buses)),
            "branches": int(g.branches.in_service.sum()),
            "generators": int(len(gens)),
            "feeders": int(len(self.feeders)),
            "feeder_buses": int(len(self.feeder_buses)),
            "feeder_lines": int(self.feeder_lines.in_service.sum()),
            "ders": int(len(ders)),
            "aggregators": int(len(self.aggregators)),
            "total_load_mw": float(loads.p_mw.sum() + self.feeder_loads.p_mw.sum()),
            "total_load_mvar": float(loads.q_mvar.sum() + self.feeder_loads.q_mvar.sum()),
            "transmission_load_mw": float(loads.p_mw.sum()),
            "feeder_load_mw": float(self.feeder_loads.p_mw.sum()),
            "gen_capacity_mw": float(gens.pmax_mw.sum()),
            "der_capacity_mw": {str(k): float(v) for k, v in der_by_kind.items()},
            "der_capacity_by_feeder_mw": {
                str(f): {str(k): float(v) for k, v in row.items()}
                for f, row in by_feeder.iterrows()
            },
            "penetration_pct": {
                str(f): (None if pd.isna(v) else round(float(v), 3)) for f, v in penetration.items()
            },
            "periods": self.n_periods,
            "period_hours": float(self.profiles.period_hours),
            "rules": self.rules.name,
            "defaults_filled": self.defaults_filled(),
        }

    def defaults_filled(self) -> dict[str, Any]:
        """Optional columns the input did not give, filled with their declared default
        (``"table.column"`` -> default): what ``tsodso inspect`` lists, so that no value
        is assumed without a word."""
        tables = {**{k: getattr(self.grid, k) for k in self.grid.TABLES},
                  **{k: getattr(self, k) for k in self.TABLES}}
        def plain(value: Any) -> Any:  # JSON has no infinity: say "inf"
            return str(value) if isinstance(value, float) and not np.isfinite(value) else value

        return {f"{name}.{col}": plain(value) for name, table in tables.items()
                for col, value in sorted(defaults_filled(table).items())}


def _missing(values: pd.Series, known: set, table: str, column: str, ids: pd.Series,
             what: str) -> list[Issue]:
    bad = ~values.isin(known).to_numpy()
    return [
        Issue(table, column, str(i), f"refers to unknown {what} {v}")
        for i, v in zip(ids[bad][:10], values[bad][:10], strict=True)
    ]


def _grid_issues(g: TransmissionGrid) -> list[Issue]:
    issues: list[Issue] = []
    buses = set(g.buses.bus_id)
    br = g.branches
    for col in ("from_bus", "to_bus"):
        issues += _missing(br[col], buses, "branches", col, br.branch_id, "bus")
    issues += _missing(g.generators.bus_id, buses, "generators", "bus_id", g.generators.gen_id,
                       "bus")
    issues += _missing(g.loads.bus_id, buses, "loads", "bus_id", g.loads.load_id, "bus")
    # Negative r or x occur in real data (three-winding transformer equivalents, series
    # compensation); a branch with no impedance at all is a modelling error.
    zero = br.in_service & (br.x_pu == 0) & (br.r_pu == 0)
    issues += [Issue("branches", "x_pu", str(i), "zero impedance (r = x = 0) on an in-service "
                     "branch; model it as one bus or give it an impedance")
               for i in br.branch_id[zero][:10]]
    gens = g.generators
    wrong = gens.in_service & (gens.pmin_mw > gens.pmax_mw)
    issues += [Issue("generators", "pmin_mw", str(i), "pmin_mw exceeds pmax_mw")
               for i in gens.gen_id[wrong][:10]]
    pwl_ids = set(gens.gen_id[gens.cost_model == "piecewise_linear"])
    pts = g.gen_cost_points
    issues += _missing(pts.gen_id, pwl_ids, "gen_cost_points", "gen_id",
                       pts.gen_id, "piecewise-linear generator")
    counts = pts.groupby("gen_id").size()
    for gid in sorted(pwl_ids - set(counts[counts >= 2].index))[:10]:
        issues.append(Issue("generators", "cost_model", str(gid),
                            "piecewise-linear cost needs at least 2 points in gen_cost_points"))
    if len(pts):
        ordered = pts.sort_values(["gen_id", "point"])
        step = ordered.groupby("gen_id").p_mw.diff()
        bad = ordered.gen_id[step <= 0].unique()
        issues += [Issue("gen_cost_points", "p_mw", str(i), "breakpoints must increase in p_mw")
                   for i in bad[:10]]
    if len(g.buses) and not (g.buses.bus_type == 3).any():
        issues.append(Issue("buses", "bus_type", "", "no reference bus (bus_type 3)"))
    return issues


def _feeder_issues(s: System) -> list[Issue]:
    issues: list[Issue] = []
    f = s.feeders
    if len(s.grid.buses):
        issues += _missing(f.interface_bus, set(s.grid.buses.bus_id), "feeders", "interface_bus",
                           f.feeder_id, "transmission bus")
    fids = set(f.feeder_id)
    for name in ("feeder_buses", "feeder_lines", "feeder_loads"):
        table = getattr(s, name)
        issues += _missing(table.feeder_id, fids, name, "feeder_id", table.feeder_id, "feeder")
    known = set(zip(s.feeder_buses.feeder_id, s.feeder_buses.bus_id, strict=True))

    def unknown_bus(table: pd.DataFrame, col: str, name: str, key: str) -> list[Issue]:
        pairs = pd.Series(list(zip(table.feeder_id, table[col], strict=True)), dtype=object)
        bad = ~pairs.isin(known).to_numpy()
        return [Issue(name, col, f"{fid}/{i}", f"refers to unknown feeder bus {b}")
                for fid, i, b in zip(table.feeder_id[bad][:10], table[key][bad][:10],
                                     table[col][bad][:10], strict=True)]

    lines = s.feeder_lines
    issues += unknown_bus(lines, "from_bus", "feeder_lines", "line_id")
    issues += unknown_bus(lines, "to_bus", "feeder_lines", "line_id")
    issues += unknown_bus(s.feeder_loads, "bus_id", "feeder_loads", "load_id")
    issues += unknown_bus(f, "root_bus", "feeders", "feeder_id")
    zero = lines.in_service & (lines.r_ohm == 0) & (lines.x_ohm == 0)
    issues += [Issue("feeder_lines", "r_ohm", f"{a}/{b}", "zero impedance on an in-service line")
               for a, b in zip(lines.feeder_id[zero][:10], lines.line_id[zero][:10], strict=True)]
    wrong_v = f.v_min_pu >= f.v_max_pu
    issues += [Issue("feeders", "v_min_pu", str(i), "v_min_pu must be below v_max_pu")
               for i in f.feeder_id[wrong_v]]
    if not issues:
        issues += feeder_topology_issues(s.feeders, s.feeder_buses, s.feeder_lines)
    return issues


def _der_issues(s: System) -> list[Issue]:
    issues: list[Issue] = []
    d = s.ders
    known = set(zip(s.feeder_buses.feeder_id, s.feeder_buses.bus_id, strict=True))
    pairs = pd.Series(list(zip(d.feeder_id, d.bus_id, strict=True)), dtype=object)
    bad = ~pairs.isin(known).to_numpy()
    issues += [Issue("ders", "bus_id", str(i), f"refers to unknown feeder bus {f}/{b}")
               for i, f, b in zip(d.der_id[bad][:10], d.feeder_id[bad][:10], d.bus_id[bad][:10],
                                  strict=True)]
    aggs = set(s.aggregators.aggregator_id) | {""}
    issues += _missing(d.aggregator_id, aggs, "ders", "aggregator_id", d.der_id, "aggregator")
    checks = [
        (d.p_min_mw > d.p_max_mw, "p_min_mw", "p_min_mw exceeds p_max_mw"),
        ((d.soc_min > d.soc_init) | (d.soc_init > d.soc_max), "soc_init",
         "soc_init must lie within [soc_min, soc_max]"),
        (d.kind.isin(["storage", "ev"]) & (d.energy_mwh <= 0), "energy_mwh",
         "storage and EVs need energy_mwh > 0"),
        ((d.departure_period >= 0) & (d.departure_period <= d.arrival_period), "departure_period",
         "departure must come after arrival"),
        (d.arrival_period >= s.n_periods, "arrival_period", "arrival after the horizon ends"),
        (d.s_max_mva < np.maximum(d.p_max_mw, -d.p_min_mw) - 1e-9, "s_max_mva",
         "inverter rating below the active-power limit"),
    ]
    for mask, column, message in checks:
        issues += [Issue("ders", column, str(i), message) for i in d.der_id[mask][:10]]
    rules = s.rules
    if not rules.v2g_allowed:
        v2g = (d.kind == "ev") & (d.p_max_mw > 0)
        issues += [Issue("ders", "p_max_mw", str(i),
                         f"an EV that discharges (vehicle-to-grid) is not allowed under rules "
                         f"'{rules.name}' (v2g_allowed: false): set p_max_mw to 0, or allow "
                         "it with rules: {v2g_allowed: true}")
                   for i in d.der_id[v2g][:10]]
    b = s.der_bids
    issues += _missing(b.der_id, set(d.der_id), "der_bids", "der_id", b.der_id, "DER")
    if len(b):  # a DER's steps share its availability: they need a size to share it by
        total = b.groupby("der_id").quantity_mw.sum()
        issues += [Issue("der_bids", "quantity_mw", str(der), "the DER's bid steps sum to 0 "
                         "MW: give at least one step a size")
                   for der in total.index[total <= 0]]
    for aid, markets in zip(s.aggregators.aggregator_id, s.aggregators.markets, strict=True):
        tokens = {t.strip() for t in str(markets).split(",") if t.strip()}
        if not tokens or tokens - set(MARKETS):
            issues.append(Issue("aggregators", "markets", str(aid),
                                f"'{markets}': use a comma-separated subset of tso, dso"))
    return issues
