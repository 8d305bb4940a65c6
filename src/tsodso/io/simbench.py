"""Load SimBench benchmark grids (the ``simbench`` package's own data) as a tsodso System.

SimBench codes name a voltage-level combination, a grid type, a scenario and the switch
representation, e.g. ``1-MV-rural--0-sw``, ``1-HV-mixed--2-sw`` or the coupled
``1-HVMV-mixed-all-0-sw``. The scenario digit is the DER penetration phase: 0 today, 1 2024,
2 2034. :func:`load_simbench` maps the pandapower net that ``simbench.get_simbench_net``
builds onto tsodso's tables:

Transmission grid
    Buses of the extra-high and high voltage levels (EHV and HV) form the
    :class:`~tsodso.model.network.TransmissionGrid` when the code contains one of them. For a
    code whose highest level is MV or LV there is no meshed transmission: the grid is the
    slack bus above the code's top transformer (HV for MV codes, MV for LV codes). Lines and
    transformers between transmission buses become branches in per unit of a 100 MVA base
    (lines from ohm/km times length, transformers from ``vk_percent``/``vkr_percent``, with
    their off-nominal ratio and phase shift). Each ``ext_grid`` becomes a generator with
    +-``EXT_GRID_LIMIT_MW`` limits at a reference bus (one per island, further ones are PV
    buses); ``gen`` and ``sgen`` at transmission buses become generators with ``pmax_mw`` =
    their nominal ``p_mw``; loads become transmission loads. Buses that no ``ext_grid`` can
    reach through in-service branches are isolated (type 4).

Feeders
    The buses below the transmission levels split into connected parts (in-service lines,
    closed switches). Each part fed by transformers from a transmission bus is one feeder:
    ``interface_bus`` = the transformers' upper-side bus, ``root_bus`` = their lower-side bus,
    ``substation_mva`` = the sum of their ratings, ``nominal_kv`` = the root's ``vn_kv``,
    ``v_root_pu`` = the transformers' automatic tap set point (``autoTapSetp``) where given.
    The feeder is named after the transformer's SimBench ``subnet`` (``MV1.101``). When a
    feeder contains a further level (the LV grids of an ``MVLV`` code), the MV/LV transformers
    are folded into it as series impedances and the LV lines are referred to the feeder's
    nominal voltage (ohm times ``(kV_feeder / kV_bus)**2``), so that per-unit values are kept.
    Feeder line ids are the pandapower line index; a folded transformer has line id
    ``TRAFO_LINE_OFFSET + trafo index``.

Switches
    Closed bus-bus switches fuse their buses (the smallest pandapower index names the fused
    bus); open line switches take their line out of service (SimBench MV grids are open rings
    operated radially); open transformer switches take the transformer out of service. A
    feeder whose in-service lines still form a loop raises :class:`~tsodso.errors.TsodsoError`
    naming it and lines closing the loops. This happens for the ``-no_sw`` variants of the
    urban and commercial MV grids, which lose the open bus-bar couplers of their ``-sw`` codes.

DERs and loads
    Feeder loads keep their nominal ``p_mw``/``q_mvar``. ``sgen`` become DERs
    (``sgen:<index>``) of kind ``pv`` (type contains PV), ``wind`` (Wind/WP) or ``dg`` (biomass,
    hydro, aggregated ``lv_RES`` equivalents, ...), with ``p_max_mw`` = nominal ``p_mw`` and
    ``s_max_mva`` = ``sn_mva``; ``storage`` become DERs of kind ``storage`` (``storage:<index>``;
    power ``|p_mw|`` both ways, energy ``max_e_mwh``, ``efficiency_percent`` read as a
    round-trip efficiency); ``gen`` on feeders become ``dg`` DERs (``gen:<index>``). Every
    feeder has one aggregator ``agg_<feeder>`` owning its DERs.

Profiles
    ``simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)`` is evaluated
    on the requested window (15-minute steps, ``start .. start + n_periods - 1`` of the year's
    35,136) and divided by each element's nominal value. Elements sharing a SimBench profile
    share one column (``load:<profile>``, ``sgen:<profile>``, ``gen:<profile>``); an element
    whose multipliers differ gets its own column (``load:<index>``); elements with nominal
    power 0 use the all-zero column ``zero``, except loads with ``p_mw`` = 0 but reactive
    power, which follow their reactive-power profile. Load multipliers below zero (net infeed of the
    ``hv_mixed`` equivalents) are split exactly: the load keeps the positive part and a
    companion load with negated nominal values takes ``<profile>:neg``. Negative generation
    multipliers (wind turbines' own consumption, about 1e-5) are set to zero and reported.

Anything the net holds that tsodso cannot represent (storage at transmission level, dc lines,
measurements, study cases, reactive-power profiles, ...) is listed in ``system.grid.notes``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from tsodso.errors import CaseNotFoundError, TsodsoError, ValidationError
from tsodso.model.network import TransmissionGrid
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import DERS

BASE_MVA = 100.0
EXT_GRID_LIMIT_MW = 1e6
TRAFO_LINE_OFFSET = 1_000_000
STEPS_PER_YEAR = 35136
PERIOD_HOURS = 0.25
SCENARIO_LABELS = {0: "today", 1: "2024", 2: "2034"}
LEVEL_RANK = {"EHV": 1, "HV": 3, "MV": 5, "LV": 7}
ZERO_PROFILE = "zero"

# Tables of a pandapower net that this loader maps (everything else non-empty gets a note).
_MAPPED = {"bus", "line", "trafo", "switch", "load", "sgen", "gen", "storage", "ext_grid",
           "shunt"}
_WHAT = {
    "measurement": "state-estimation measurements",
    "substation": "substation grouping of buses",
    "loadcases": "study-case scaling factors (profiles are used instead)",
    "dcline": "HVDC lines",
    "trafo3w": "three-winding transformers",
    "impedance": "series impedances",
    "ward": "ward equivalents",
    "xward": "extended ward equivalents",
}


# ------------------------------------------------------------------------------- codes
@dataclass(frozen=True)
class SimbenchCode:
    """The parts of a SimBench code such as ``1-HVMV-mixed-all-0-sw``."""

    code: str
    version: int
    voltage_levels: tuple[str, ...]
    grid_type: str
    lv_grids: str
    scenario: int
    switches: bool

    @property
    def label(self) -> str:
        """Penetration phase of the scenario digit: ``today``, ``2024`` or ``2034``."""
        return SCENARIO_LABELS[self.scenario]

    @property
    def penetration_phase(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "label": self.label}


def available_codes() -> list[str]:
    """All SimBench codes the installed ``simbench`` package can build."""
    import simbench

    return list(simbench.collect_all_simbench_codes())


def _unknown(code: str, valid: list[str]) -> CaseNotFoundError:
    close = difflib.get_close_matches(code, valid, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return CaseNotFoundError(
        f"unknown SimBench code '{code}'{hint} Valid codes ({len(valid)}): {', '.join(valid)}")


def parse_code(code: str) -> SimbenchCode:
    """Split and check a SimBench code; raise :class:`CaseNotFoundError` if it is unknown."""
    code = str(code).strip()
    if code.startswith("simbench:"):
        code = code.split(":", 1)[1]
    valid = available_codes()
    if code not in valid:
        raise _unknown(code, valid)
    parts = code.split("-")
    if len(parts) != 6:  # pragma: no cover - every listed code has six parts
        raise _unknown(code, valid)
    version, levels, grid_type, lv_grids, scenario, switches = parts
    if levels == "complete_data":
        voltage_levels: tuple[str, ...] = ("EHV", "HV", "MV", "LV")
    else:
        voltage_levels = tuple(re.findall(r"EHV|HV|MV|LV", levels))
    return SimbenchCode(code, int(version), voltage_levels, grid_type, lv_grids, int(scenario),
                        switches == "sw")


# ------------------------------------------------------------------------------ helpers
def _num(frame: pd.DataFrame, column: str, default: float) -> np.ndarray:
    """A numeric column as floats, ``default`` where absent or NaN."""
    if column not in frame.columns:
        return np.full(len(frame), default, dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isnan(values), default, values)


def _flag(frame: pd.DataFrame, column: str, default: bool = True) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), default, dtype=bool)
    values = frame[column].to_numpy(dtype=object).copy()
    values[pd.isna(values)] = default
    return values.astype(bool)


def _text(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A string column as an object array, ``None`` where missing."""
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    col = frame[column]
    return np.where(col.isna().to_numpy(), None, col.astype(str).to_numpy()).astype(object)


def _voltage_level(bus: pd.DataFrame) -> np.ndarray:
    """SimBench voltage level per bus (1 EHV, 3 HV, 5 MV, 7 LV), from ``vn_kv`` if missing."""
    kv = bus.vn_kv.to_numpy(dtype=float)
    from_kv = np.select([kv >= 200, kv >= 60, kv >= 1], [1, 3, 5], 7)
    level = _num(bus, "voltLvl", np.nan)
    return np.where(np.isnan(level), from_kv, level).astype(int)


def _ohm_rating(max_i_ka: np.ndarray, kv: np.ndarray) -> np.ndarray:
    rating = max_i_ka * kv * math.sqrt(3)
    return np.where(np.isfinite(rating) & (rating > 0), rating, np.inf)


def _kind(sgen_type: str | None) -> str:
    t = (sgen_type or "").lower()
    if "pv" in t:
        return "pv"
    if "wind" in t or t.startswith("wp"):
        return "wind"
    return "dg"


# ---------------------------------------------------------------------------- profiles
@dataclass
class _Series:
    """Multiplier columns built so far (name -> array over the window) and their notes."""

    n: int
    columns: dict[str, np.ndarray]
    notes: list[str]

    def assign(self, element: str, values: np.ndarray, nominal: np.ndarray,
               profile: np.ndarray, index: np.ndarray, split_negative: bool
               ) -> tuple[np.ndarray, np.ndarray]:
        """Profile name per element; for ``split_negative`` also the companion profile name.

        ``values`` holds the absolute values (periods x elements ``index``), ``nominal`` the
        values they are relative to, ``profile`` the SimBench profile names (None: none).
        Returns (names, companion names: '' where no companion is needed).
        """
        zero = nominal == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            mult = values / np.where(zero, 1.0, nominal)
        names = np.full(len(index), "", dtype=object)
        companion = np.full(len(index), "", dtype=object)
        if zero.any():
            names[zero] = ZERO_PROFILE
            self.columns.setdefault(ZERO_PROFILE, np.zeros(self.n))
        keys = np.array([p if p is not None else "" for p in profile], dtype=object)
        for key in pd.unique(keys[~zero]):
            members = np.flatnonzero((keys == key) & ~zero)
            ref = mult[:, members[0]]
            tol = 1e-9 * np.maximum(1.0, np.abs(ref))[:, None]
            same = np.all(np.abs(mult[:, members] - ref[:, None]) <= tol, axis=0)
            same &= np.all(np.isfinite(mult[:, members]), axis=0)
            shared = f"{element}:{key}" if key else ""
            if not key and same.all() and np.all(ref == 1.0):
                continue  # no profile: flat
            if not key:
                same[:] = False
            for i in members[~same]:
                names[i] = self._add(f"{element}:{index[i]}", mult[:, i], split_negative,
                                     companion, i)
            for i in members[same]:
                names[i] = shared
            if same.any():
                self._add(shared, ref, split_negative, companion, members[same])
        return names, companion

    def _add(self, name: str, series: np.ndarray, split_negative: bool, companion: np.ndarray,
             members: Any) -> str:
        if name in self.columns:
            return name
        negative = series < 0
        if negative.any() and split_negative:
            self.columns[name] = np.maximum(series, 0.0)
            self.columns[f"{name}:neg"] = np.maximum(-series, 0.0)
            companion[members] = f"{name}:neg"
        elif negative.any():
            self.columns[name] = np.maximum(series, 0.0)
            self.notes.append(
                f"profile {name}: {int(negative.sum())} negative multipliers in the window "
                f"(min {series.min():.3g}, e.g. wind turbines' own consumption) set to 0")
        else:
            self.columns[name] = series
        return name


# ---------------------------------------------------------------------------- converter
class _Converter:
    """Maps one pandapower net of a SimBench code onto a tsodso :class:`System`."""

    def __init__(self, net: Any, info: SimbenchCode, n_periods: int, start: int):
        self.net = net
        self.info = info
        self.n_periods = n_periods
        self.start = start
        self.notes: list[str] = []
        self.meta: dict[str, Any] = {}

    # ----------------------------------------------------------------- topology
    def _fuse_buses(self) -> None:
        net = self.net
        bus = net.bus
        index = bus.index.to_numpy()
        position = pd.Index(index)
        sw = net.switch
        closed = _flag(sw, "closed")
        bb = sw[(sw.et == "b").to_numpy() & closed]
        a = position.get_indexer(bb.bus)
        b = position.get_indexer(bb.element)
        n = len(index)
        graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        rep_of_label = pd.Series(index).groupby(label).min()
        self.rep = pd.Series(rep_of_label.to_numpy()[label], index=index)
        kv = bus.vn_kv.to_numpy(dtype=float)
        spread = pd.Series(kv).groupby(label).agg(lambda s: s.max() - s.min())
        if (spread > 1e-6).any():
            bad = int(rep_of_label[spread.index[spread > 1e-6][0]])
            raise TsodsoError(f"simbench {self.info.code}: closed bus-bus switches join buses "
                              f"of different nominal voltage (bus {bad})")
        z = _num(bb, "z_ohm", 0.0)
        if (z > 0).any():
            self.notes.append(f"switch: {int((z > 0).sum())} closed bus-bus switches with "
                              "z_ohm > 0 treated as ideal (buses fused)")
        self.meta["fused_buses"] = int(n - len(rep_of_label))
        self.live_bus = pd.Series(_flag(bus, "in_service"), index=index)
        self.level = pd.Series(_voltage_level(bus), index=index)
        self.kv = pd.Series(kv, index=index)
        # element status from switches
        open_sw = sw[~closed]
        self.open_lines = set(open_sw.element[open_sw.et == "l"].astype(int))
        self.open_trafos = set(open_sw.element[open_sw.et == "t"].astype(int))

    def _split_levels(self) -> None:
        ranks = [LEVEL_RANK[v] for v in self.info.voltage_levels]
        top = min(ranks)
        cutoff = 3 if top <= 3 else top - 2
        self.cutoff = cutoff
        reps = self.rep.unique()
        self.t_bus = np.sort(reps[self.level.loc[reps].to_numpy() <= cutoff])
        self.t_set = set(self.t_bus.tolist())
        self.f_bus = np.sort(reps[self.level.loc[reps].to_numpy() > cutoff])
        net = self.net
        ext_at = self.rep.loc[net.ext_grid.bus.to_numpy()].to_numpy()
        stray = [int(b) for b in ext_at if b not in self.t_set]
        if stray:
            raise TsodsoError(
                f"simbench {self.info.code}: external grids at distribution buses "
                f"{stray[:5]}: the code is a collection of separate grids, not one system; "
                "load its grids one by one")

    def _line_table(self) -> pd.DataFrame:
        line = self.net.line
        frm = self.rep.loc[line.from_bus.to_numpy()].to_numpy()
        to = self.rep.loc[line.to_bus.to_numpy()].to_numpy()
        live = _flag(line, "in_service") & ~line.index.isin(list(self.open_lines))
        live &= self.live_bus.loc[line.from_bus.to_numpy()].to_numpy()
        live &= self.live_bus.loc[line.to_bus.to_numpy()].to_numpy()
        par = np.maximum(_num(line, "parallel", 1.0), 1.0)
        length = _num(line, "length_km", 0.0)
        kv = self.kv.loc[frm].to_numpy()
        out = pd.DataFrame({
            "index": line.index.to_numpy(), "from_bus": frm, "to_bus": to, "live": live,
            "r_ohm": _num(line, "r_ohm_per_km", 0.0) * length / par,
            "x_ohm": _num(line, "x_ohm_per_km", 0.0) * length / par,
            "b_us": 2 * math.pi * float(self.net.f_hz) * _num(line, "c_nf_per_km", 0.0)
            * length * par * 1e-3,
            "rating_mva": _ohm_rating(_num(line, "max_i_ka", 0.0) * _num(line, "df", 1.0) * par,
                                      kv),
            "kv": kv, "subnet": _text(line, "subnet"),
        })
        if (np.abs(_num(line, "g_us_per_km", 0.0)) > 0).any():
            self.notes.append("line: shunt conductance g_us_per_km neglected")
        loop = out.live & (out.from_bus == out.to_bus)
        if loop.any():
            out.loc[loop, "live"] = False
            self.notes.append(f"line: {int(loop.sum())} lines shorted by closed bus-bus switches "
                              f"taken out of service: {out['index'][loop].tolist()[:10]}")
        return out

    def _trafo_table(self) -> pd.DataFrame:
        tr = self.net.trafo
        hv = self.rep.loc[tr.hv_bus.to_numpy()].to_numpy()
        lv = self.rep.loc[tr.lv_bus.to_numpy()].to_numpy()
        live = _flag(tr, "in_service") & ~tr.index.isin(list(self.open_trafos))
        live &= self.live_bus.loc[tr.hv_bus.to_numpy()].to_numpy()
        live &= self.live_bus.loc[tr.lv_bus.to_numpy()].to_numpy()
        par = np.maximum(_num(tr, "parallel", 1.0), 1.0)
        sn = _num(tr, "sn_mva", np.nan) * par
        vk = _num(tr, "vk_percent", 0.0) / 100
        vkr = _num(tr, "vkr_percent", 0.0) / 100
        vn_hv = _num(tr, "vn_hv_kv", np.nan)
        vn_lv = _num(tr, "vn_lv_kv", np.nan)
        bus_hv = self.kv.loc[hv].to_numpy()
        bus_lv = self.kv.loc[lv].to_numpy()
        # impedance in ohm at the rated high voltage, per unit on the trafo's own base
        x_rel = np.sqrt(np.maximum(vk**2 - vkr**2, 0.0))
        z_hv_ohm = vn_hv**2 / sn
        z_lv_ohm = vn_lv**2 / sn
        step = _num(tr, "tap_step_percent", 0.0) / 100
        pos = _num(tr, "tap_pos", 0.0) - _num(tr, "tap_neutral", 0.0)
        tap = 1 + pos * step
        side = _text(tr, "tap_side")
        ratio = (vn_hv / bus_hv) / (vn_lv / bus_lv)
        ratio = np.where(side == "lv", ratio / tap, ratio * tap)
        shift = _num(tr, "shift_degree", 0.0) + pos * _num(tr, "tap_step_degree", 0.0)
        set_point = np.where(_flag(tr, "autoTap", False), _num(tr, "autoTapSetp", np.nan),
                             np.nan)
        return pd.DataFrame({
            "index": tr.index.to_numpy(), "hv": hv, "lv": lv, "live": live, "sn_mva": sn,
            "r_ohm_hv": vkr * z_hv_ohm, "x_ohm_hv": x_rel * z_hv_ohm, "bus_hv_kv": bus_hv,
            "r_ohm_lv": vkr * z_lv_ohm, "x_ohm_lv": x_rel * z_lv_ohm, "bus_lv_kv": bus_lv,
            "ratio": ratio, "shift_deg": shift, "tapped": pos != 0, "set_point": set_point,
            "subnet": _text(tr, "subnet"),
        })

    # --------------------------------------------------------------- transmission
    def _transmission(self, lines: pd.DataFrame, trafos: pd.DataFrame) -> TransmissionGrid:
        net = self.net
        t_set = self.t_set
        buses = self.t_bus
        bus = net.bus.loc[buses]
        t_line = lines[lines.from_bus.isin(t_set) & lines.to_bus.isin(t_set)]
        mixed = lines.from_bus.isin(t_set) != lines.to_bus.isin(t_set)
        if mixed.any():
            first = int(lines["index"][mixed].iloc[0])
            raise TsodsoError(f"simbench {self.info.code}: line {first} joins a transmission bus "
                              "and a distribution bus")
        t_tr = trafos[trafos.hv.isin(t_set) & trafos.lv.isin(t_set)]
        up = ~trafos.hv.isin(t_set) & trafos.lv.isin(t_set)
        if up.any():
            first = int(trafos["index"][up].iloc[0])
            raise TsodsoError(f"simbench {self.info.code}: trafo {first} has its low-voltage side "
                              "at a transmission bus")
        kv_line = self.kv.loc[t_line.from_bus.to_numpy()].to_numpy()
        z_line = kv_line**2 / BASE_MVA
        # per unit of the system base on the low-voltage side (MATPOWER puts the ideal
        # transformer at the from side, the series impedance on the to side)
        z_tr = t_tr.bus_lv_kv.to_numpy() ** 2 / BASE_MVA
        branches = pd.DataFrame({
            "from_bus": np.concatenate([t_line.from_bus, t_tr.hv]),
            "to_bus": np.concatenate([t_line.to_bus, t_tr.lv]),
            "r_pu": np.concatenate([t_line.r_ohm / z_line, t_tr.r_ohm_lv / z_tr]),
            "x_pu": np.concatenate([t_line.x_ohm / z_line, t_tr.x_ohm_lv / z_tr]),
            "b_pu": np.concatenate([t_line.b_us * 1e-6 * z_line, np.zeros(len(t_tr))]),
            "rate_a_mva": np.concatenate([t_line.rating_mva, t_tr.sn_mva]),
            "tap_ratio": np.concatenate([np.ones(len(t_line)), t_tr.ratio]),
            "shift_deg": np.concatenate([np.zeros(len(t_line)), t_tr.shift_deg]),
            "in_service": np.concatenate([t_line.live, t_tr.live]),
        })
        branches["rate_b_mva"] = branches.rate_a_mva
        branches["rate_c_mva"] = branches.rate_a_mva
        branches.insert(0, "branch_id", np.arange(1, len(branches) + 1))
        self.meta["branch_source"] = ([f"line:{i}" for i in t_line["index"]]
                                      + [f"trafo:{i}" for i in t_tr["index"]])
        if len(t_tr):
            self.notes.append(f"trafo: {len(t_tr)} transmission transformers as pi branches "
                              "without magnetising admittance (pfe_kw, i0_percent neglected)")

        # islands and reference buses
        pos = pd.Index(buses)
        live = branches[branches.in_service]
        graph = sp.coo_matrix((np.ones(len(live)), (pos.get_indexer(live.from_bus),
                                                    pos.get_indexer(live.to_bus))),
                              shape=(len(buses), len(buses)))
        _, label = connected_components(graph, directed=False)
        ext = net.ext_grid
        ext_live = _flag(ext, "in_service")
        ext_bus = self.rep.loc[ext.bus.to_numpy()].to_numpy()
        bus_type = np.ones(len(buses), dtype=np.int64)
        energised = set(label[pos.get_indexer(ext_bus[ext_live])].tolist())
        bus_type[~np.isin(label, list(energised))] = 4
        gen = net.gen
        gen_bus = self.rep.loc[gen.bus.to_numpy()].to_numpy()
        t_gen = np.isin(gen_bus, buses)
        gen_live = _flag(gen, "in_service")
        pv = pos.get_indexer(gen_bus[t_gen & gen_live])
        bus_type[pv[bus_type[pv] != 4]] = 2
        seen: set[int] = set()
        for b in ext_bus[ext_live]:
            i = pos.get_loc(b)
            bus_type[i] = 2 if label[i] in seen else 3
            seen.add(int(label[i]))
        isolated = int((bus_type == 4).sum())
        if isolated:
            self.notes.append(f"bus: {isolated} transmission buses not reached from an external "
                              "grid through in-service branches are isolated (bus_type 4)")
        vm = np.ones(len(buses))
        vm[pos.get_indexer(gen_bus[t_gen])] = _num(gen, "vm_pu", 1.0)[t_gen]
        vm[pos.get_indexer(ext_bus)] = _num(ext, "vm_pu", 1.0)
        gs = np.zeros(len(buses))
        bs = np.zeros(len(buses))
        shunt = net.shunt if "shunt" in net else pd.DataFrame()
        if len(shunt):
            s_bus = self.rep.loc[shunt.bus.to_numpy()].to_numpy()
            on = np.isin(s_bus, buses) & _flag(shunt, "in_service")
            steps = _num(shunt, "step", 1.0)
            np.add.at(gs, pos.get_indexer(s_bus[on]), (_num(shunt, "p_mw", 0.0) * steps)[on])
            np.add.at(bs, pos.get_indexer(s_bus[on]), -(_num(shunt, "q_mvar", 0.0) * steps)[on])
            if (~on).any():
                self.notes.append(f"shunt: {int((~on).sum())} shunts on feeders or out of "
                                  "service not represented")
        buses_df = pd.DataFrame({
            "bus_id": buses.astype(np.int64), "bus_type": bus_type, "gs_mw": gs, "bs_mvar": bs,
            "vm_pu": vm, "base_kv": bus.vn_kv.to_numpy(dtype=float),
            "vmax_pu": _num(bus, "max_vm_pu", 1.1), "vmin_pu": _num(bus, "min_vm_pu", 0.9),
        })

        # generators: ext_grid, gen, sgen (in this order)
        big = EXT_GRID_LIMIT_MW
        sg = net.sgen
        sg_bus = self.rep.loc[sg.bus.to_numpy()].to_numpy()
        t_sg = np.isin(sg_bus, buses)
        g = gen[t_gen]
        s = sg[t_sg]
        p_gen = _num(g, "p_mw", 0.0)
        p_sg = _num(s, "p_mw", 0.0)
        q_sg = _num(s, "q_mvar", 0.0)  # static generators without limits keep their set point
        q_sg_max = np.where(np.isnan(_num(s, "max_q_mvar", np.nan)), q_sg,
                            _num(s, "max_q_mvar", 0.0))
        q_sg_min = np.where(np.isnan(_num(s, "min_q_mvar", np.nan)), q_sg,
                            _num(s, "min_q_mvar", 0.0))
        ext_pmax = _num(ext, "max_p_mw", big)
        ext_pmin = _num(ext, "min_p_mw", -big)
        gens = pd.DataFrame({
            "bus_id": np.concatenate([ext_bus, gen_bus[t_gen], sg_bus[t_sg]]).astype(np.int64),
            "pg_mw": np.concatenate([np.zeros(len(ext)), p_gen, p_sg]),
            "qg_mvar": np.concatenate([np.zeros(len(ext)), np.zeros(len(g)), q_sg]),
            "qmax_mvar": np.concatenate([_num(ext, "max_q_mvar", np.inf),
                                         _num(g, "max_q_mvar", np.inf), q_sg_max]),
            "qmin_mvar": np.concatenate([_num(ext, "min_q_mvar", -np.inf),
                                         _num(g, "min_q_mvar", -np.inf), q_sg_min]),
            "vg_pu": np.concatenate([_num(ext, "vm_pu", 1.0), _num(g, "vm_pu", 1.0),
                                     np.ones(len(s))]),
            "mbase_mva": np.concatenate([np.full(len(ext), BASE_MVA),
                                         _num(g, "sn_mva", BASE_MVA), _num(s, "sn_mva", 0.0)]),
            "in_service": np.concatenate([ext_live, gen_live[t_gen], _flag(s, "in_service")]),
            "pmax_mw": np.concatenate([ext_pmax, p_gen, p_sg]),
            "pmin_mw": np.concatenate([ext_pmin, np.zeros(len(g)), np.zeros(len(s))]),
        })
        gens.loc[gens.mbase_mva <= 0, "mbase_mva"] = BASE_MVA
        gens.insert(0, "gen_id", np.arange(1, len(gens) + 1))
        self.meta["generator_source"] = ([f"ext_grid:{i}" for i in ext.index]
                                         + [f"gen:{i}" for i in g.index]
                                         + [f"sgen:{i}" for i in s.index])
        if len(g) and (_num(g, "min_p_mw", 0.0) > 0).any():
            self.notes.append("gen: min_p_mw (technical minimum) not applied; pmin_mw = 0")
        with_profile = int(pd.notna(g.get("profile")).sum() if len(g) else 0) + int(
            pd.notna(s.get("profile")).sum() if len(s) else 0)
        if with_profile:
            self.notes.append(
                f"generators: {with_profile} transmission-level gen/sgen have SimBench profiles "
                "that the generators table cannot carry; pmax_mw is their nominal p_mw")
        self.notes.append("generators: SimBench has no generation costs; cost columns are 0")
        st = net.storage
        t_st = np.isin(self.rep.loc[st.bus.to_numpy()].to_numpy(), buses)
        if t_st.any():
            self.notes.append(
                f"storage: {int(t_st.sum())} storage units at transmission buses not represented "
                f"(total {np.abs(_num(st, 'p_mw', 0.0)[t_st]).sum():.3f} MW, "
                f"{_num(st, 'max_e_mwh', 0.0)[t_st].sum():.3f} MWh)")
        grid = TransmissionGrid(name=self.info.code, base_mva=BASE_MVA, buses=buses_df,
                                branches=branches, generators=gens)
        return grid

    # -------------------------------------------------------------------- feeders
    def _feeders(self, lines: pd.DataFrame, trafos: pd.DataFrame) -> dict[str, Any]:
        t_set = self.t_set
        fb = self.f_bus
        pos = pd.Index(fb)
        f_line = lines[~lines.from_bus.isin(t_set)].copy()
        folded = trafos[~trafos.hv.isin(t_set)].copy()
        supply = trafos[trafos.hv.isin(t_set) & ~trafos.lv.isin(t_set)]
        # edges: lines and folded transformers, keyed by feeder line id
        edges = pd.DataFrame({
            "line_id": np.concatenate([f_line["index"], TRAFO_LINE_OFFSET + folded["index"]]),
            "a": np.concatenate([f_line.from_bus, folded.hv]),
            "b": np.concatenate([f_line.to_bus, folded.lv]),
            "live": np.concatenate([f_line.live, folded.live]),
        })
        if len(folded):
            assert edges.line_id.is_unique, "feeder line ids collide"
        ia = pos.get_indexer(edges.a)
        ib = pos.get_indexer(edges.b)
        n = len(fb)
        on = edges.live.to_numpy()
        graph = sp.coo_matrix((np.ones(int(on.sum())), (ia[on], ib[on])), shape=(n, n))
        n_comp, label = connected_components(graph, directed=False)
        sup = supply[supply.live]
        sup_label = label[pos.get_indexer(sup.lv)] if len(sup) else np.zeros(0, dtype=int)
        rows: list[dict[str, Any]] = []
        comp_feeder = np.full(n_comp, None, dtype=object)
        used: set[str] = set()
        for comp in pd.unique(sup_label):
            mine = sup[sup_label == comp]
            interfaces = sorted(set(mine.hv.tolist()))
            roots = sorted(set(mine.lv.tolist()))
            subnet = next((str(x) for x in mine.subnet if x), f"feeder_{roots[0]}")
            fid = subnet
            k = 2
            while fid in used:
                fid = f"{subnet}_{k}"
                k += 1
            used.add(fid)
            if len(interfaces) > 1 or len(roots) > 1:
                raise TsodsoError(
                    f"simbench {self.info.code}: feeder {fid} is fed by transformers "
                    f"{mine['index'].tolist()} from transmission buses {interfaces} to feeder "
                    f"buses {roots}; a feeder needs one interface bus and one root bus, so this "
                    "topology cannot be made radial")
            comp_feeder[comp] = fid
            set_point = mine.set_point.dropna()
            rows.append({
                "feeder_id": fid, "interface_bus": int(interfaces[0]), "root_bus": int(roots[0]),
                "nominal_kv": float(self.kv.loc[roots[0]]),
                "substation_mva": float(mine.sn_mva.sum()),
                "v_root_pu": float(set_point.mean()) if len(set_point) else 1.0,
                "source": f"simbench:{self.info.code}", "_trafos": mine["index"].tolist(),
                "_comp": int(comp),
            })
        rows.sort(key=lambda r: r["feeder_id"])
        if supply.tapped.any():
            self.notes.append("trafo: tap positions of substation transformers not modelled "
                              "(feeders use v_root_pu)")
        feeder_of_bus = comp_feeder[label]
        # islands without supply
        orphan = pd.isna(feeder_of_bus)
        if orphan.any():
            self.notes.append(f"bus: {int(orphan.sum())} distribution buses in "
                              f"{len(set(label[orphan]))} parts without an in-service supply "
                              "transformer are not represented (their elements are listed "
                              "below)")
        self.feeder_of_bus = pd.Series(feeder_of_bus, index=fb)

        # lines, radiality, orientation
        edges["fa"] = feeder_of_bus[ia]
        edges["fb"] = feeder_of_bus[ib]
        cross = pd.isna(edges.fa) | (edges.fa != edges.fb)
        if cross.any():
            dropped = edges[cross]
            if dropped.live.any():  # pragma: no cover - live edges stay within a component
                raise TsodsoError("internal error: live line between feeders")
            self.notes.append(
                f"feeder_lines: {len(dropped)} out-of-service lines joining different feeders or "
                f"unsupplied parts not represented (ids {dropped.line_id.tolist()[:10]})")
        edges = edges[~cross].reset_index(drop=True)
        ia = pos.get_indexer(edges.a)
        ib = pos.get_indexer(edges.b)
        frm = edges.a.to_numpy().copy()
        to = edges.b.to_numpy().copy()
        live = edges.live.to_numpy()
        undirected = sp.coo_matrix((np.ones(int(live.sum())), (ia[live], ib[live])),
                                   shape=(n, n)).tocsr()
        pred = np.full(n, -9999)
        for row in rows:
            root = pos.get_loc(row["root_bus"])
            _, p = breadth_first_order(undirected, root, directed=False,
                                       return_predecessors=True)
            reached = p >= 0
            pred[reached] = p[reached]
        # a live line is a tree edge if one end is the other's predecessor (and the first of
        # any parallel lines); every other live line closes a loop
        lo, hi = np.minimum(ia, ib), np.maximum(ia, ib)
        parallel = pd.DataFrame({"lo": lo, "hi": hi, "live": live}).duplicated()
        closes = live & (((pred[ia] != ib) & (pred[ib] != ia)) | parallel.to_numpy())
        if closes.any():
            fid = str(edges.fa[closes].iloc[0])
            closing = edges.line_id[closes & (edges.fa == fid).to_numpy()].tolist()
            hint = ("; SimBench's '-no_sw' codes drop the open switches that keep some grids "
                    "radial: try the '-sw' code" if not self.info.switches else "")
            raise TsodsoError(
                f"simbench {self.info.code}: feeder {fid} is not radial after applying switches: "
                f"{len(closing)} loops, closed e.g. by lines {closing[:5]}; tsodso feeders must "
                f"be trees{hint}")
        flip = live & (pred[ia] == ib)
        frm[flip], to[flip] = edges.b.to_numpy()[flip], edges.a.to_numpy()[flip]

        # electrical data of feeder lines (referred to the feeder's nominal voltage)
        fkv = pd.Series({r["feeder_id"]: r["nominal_kv"] for r in rows})
        vf = fkv.loc[edges.fa].to_numpy()
        is_tr = edges.line_id.to_numpy() >= TRAFO_LINE_OFFSET
        ln = f_line.set_index("index")
        tr = folded.set_index("index")
        l_ids = edges.line_id[~is_tr].to_numpy()
        t_ids = edges.line_id[is_tr].to_numpy() - TRAFO_LINE_OFFSET
        r = np.empty(len(edges))
        x = np.empty(len(edges))
        b = np.zeros(len(edges))
        rating = np.empty(len(edges))
        ref_l = (vf[~is_tr] / ln.kv.loc[l_ids].to_numpy()) ** 2
        r[~is_tr] = ln.r_ohm.loc[l_ids].to_numpy() * ref_l
        x[~is_tr] = ln.x_ohm.loc[l_ids].to_numpy() * ref_l
        b[~is_tr] = ln.b_us.loc[l_ids].to_numpy() / ref_l
        rating[~is_tr] = ln.rating_mva.loc[l_ids].to_numpy()
        ref_t = (vf[is_tr] / tr.bus_hv_kv.loc[t_ids].to_numpy()) ** 2
        r[is_tr] = tr.r_ohm_hv.loc[t_ids].to_numpy() * ref_t
        x[is_tr] = tr.x_ohm_hv.loc[t_ids].to_numpy() * ref_t
        rating[is_tr] = tr.sn_mva.loc[t_ids].to_numpy()
        if is_tr.any():
            self.notes.append(
                f"trafo: {int(is_tr.sum())} transformers inside feeders folded into feeder_lines "
                f"(line_id = {TRAFO_LINE_OFFSET} + trafo index) as series impedances referred "
                "to the feeder's nominal voltage; their lower-voltage lines are referred likewise "
                "(off-nominal taps, phase shifts and magnetising admittance neglected)")
        feeder_lines = pd.DataFrame({
            "feeder_id": edges.fa.to_numpy(), "line_id": edges.line_id.to_numpy(),
            "from_bus": frm, "to_bus": to, "r_ohm": r, "x_ohm": x, "b_us": b,
            "rating_mva": np.where(np.isfinite(rating) & (rating > 0), rating, np.inf),
            "in_service": live,
        })

        # buses
        bus = self.net.bus.loc[fb[~orphan]]
        vmin = _num(bus, "min_vm_pu", np.nan)
        vmax = _num(bus, "max_vm_pu", np.nan)
        feeder_buses = pd.DataFrame({
            "feeder_id": feeder_of_bus[~orphan], "bus_id": fb[~orphan].astype(np.int64),
            "v_min_pu": vmin, "v_max_pu": vmax,
        })
        for row in rows:
            root = self.net.bus.loc[[row["root_bus"]]]
            lo, hi = _num(root, "min_vm_pu", np.nan)[0], _num(root, "max_vm_pu", np.nan)[0]
            if np.isfinite(lo) and np.isfinite(hi) and lo < hi:
                row["v_min_pu"], row["v_max_pu"] = lo, hi
        return {"rows": rows, "lines": feeder_lines, "buses": feeder_buses}

    # ------------------------------------------------------------------ profiles
    def _absolute(self) -> dict[Any, pd.DataFrame]:
        import simbench

        net = self.net
        end = self.start + self.n_periods
        full = net.profiles
        window = {}
        for key, frame in full.items():
            window[key] = frame.iloc[self.start:end] if len(frame) else frame
            if len(frame) and len(frame) < end:
                raise TsodsoError(f"simbench {self.info.code}: profiles '{key}' have {len(frame)} "
                                  f"steps; the window {self.start}..{end - 1} does not fit")
        net.profiles = window
        try:
            absolute = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
        finally:
            net.profiles = full
        first = window.get("load")
        if first is not None and "time" in first.columns and len(first):
            self.meta["time"] = [str(first.time.iloc[0]), str(first.time.iloc[-1])]
        return absolute

    # ---------------------------------------------------------------------- all
    def convert(self) -> System:
        net = self.net
        self._fuse_buses()
        self._split_levels()
        lines = self._line_table()
        trafos = self._trafo_table()
        grid = self._transmission(lines, trafos)
        fd = self._feeders(lines, trafos)
        absolute = self._absolute()
        series = _Series(self.n_periods, {}, self.notes)

        # loads: transmission and feeders
        load = net.load
        l_bus = self.rep.loc[load.bus.to_numpy()].to_numpy()
        l_live = _flag(load, "in_service")
        p = _num(load, "p_mw", 0.0)
        q = _num(load, "q_mvar", 0.0)
        # multipliers relative to p_mw; a load with p_mw = 0 but q_mvar != 0 follows its
        # reactive-power profile (the multiplier then only scales q)
        values = absolute[("load", "p_mw")].reindex(columns=load.index).to_numpy(dtype=float)
        nominal = p.copy()
        keys = _text(load, "profile")
        q_only = (p == 0) & (q != 0)
        if q_only.any():
            values[:, q_only] = absolute[("load", "q_mvar")].reindex(
                columns=load.index[q_only]).to_numpy(dtype=float)
            nominal[q_only] = q[q_only]
            keys[q_only] = [None if k is None else f"{k}_qload" for k in keys[q_only]]
        l_names, l_comp = series.assign("load", values, nominal, keys, load.index.to_numpy(),
                                        split_negative=True)
        t_mask = np.isin(l_bus, self.t_bus)
        f_of = self.feeder_of_bus.reindex(l_bus).to_numpy()
        f_mask = ~t_mask & pd.notna(f_of)
        has_comp = l_comp != ""
        next_id = int(load.index.max()) + 1 if len(load) else 0
        comp_ids = np.full(len(load), -1, dtype=np.int64)
        comp_ids[has_comp] = next_id + np.arange(int(has_comp.sum()))
        if has_comp.any():
            self.notes.append(
                f"load: {int(has_comp.sum())} loads with negative profile values (net infeed) "
                f"have a companion load (ids from {next_id}) with negated p_mw/q_mvar and the "
                "profile '<profile>:neg'; each pair sums to the SimBench values")
        t_l = t_mask
        grid.loads = pd.concat([
            pd.DataFrame({"load_id": load.index.to_numpy()[t_l], "bus_id": l_bus[t_l],
                          "p_mw": p[t_l], "q_mvar": q[t_l], "in_service": l_live[t_l],
                          "profile": l_names[t_l]}),
            pd.DataFrame({"load_id": comp_ids[t_l & has_comp], "bus_id": l_bus[t_l & has_comp],
                          "p_mw": -p[t_l & has_comp], "q_mvar": -q[t_l & has_comp],
                          "in_service": l_live[t_l & has_comp],
                          "profile": l_comp[t_l & has_comp]}),
        ], ignore_index=True)
        off = f_mask & ~l_live
        if off.any():
            self.notes.append(f"load: {int(off.sum())} out-of-service feeder loads not "
                              f"represented (ids {load.index[off].tolist()[:10]})")
        fl = f_mask & l_live
        fc = fl & has_comp
        feeder_loads = pd.concat([
            pd.DataFrame({"feeder_id": f_of[fl], "load_id": load.index.to_numpy()[fl],
                          "bus_id": l_bus[fl], "p_mw": p[fl], "q_mvar": q[fl],
                          "profile": l_names[fl]}),
            pd.DataFrame({"feeder_id": f_of[fc], "load_id": comp_ids[fc], "bus_id": l_bus[fc],
                          "p_mw": -p[fc], "q_mvar": -q[fc], "profile": l_comp[fc]}),
        ], ignore_index=True)
        self._orphans("load", load, l_bus, p)
        if len(load):
            self.notes.append("load: reactive power scales with the active-power profile "
                              "(SimBench's separate *_qload profiles are not represented)")

        # DERs: sgen, feeder gen, storage
        ders = []
        for element in ("sgen", "gen"):
            frame = net[element]
            bus = self.rep.loc[frame.bus.to_numpy()].to_numpy()
            below = ~np.isin(bus, self.t_bus)  # transmission units are generators already
            if not below.any():
                continue
            frame, bus = frame[below], bus[below]
            values = absolute[(element, "p_mw")].reindex(columns=frame.index).to_numpy(
                dtype=float)
            names, _ = series.assign(element, values, _num(frame, "p_mw", 0.0),
                                     _text(frame, "profile"), frame.index.to_numpy(),
                                     split_negative=False)
            ders.append(self._der_frame(element, frame, bus, names))
        st = net.storage
        ders.append(self._storage_frame(st, self.rep.loc[st.bus.to_numpy()].to_numpy()))
        # conform each part first so that columns one part lacks take their defaults
        parts = [conform(d, DERS)[0] for d in ders if len(d)]
        ders_df = pd.concat(parts, ignore_index=True) if parts else None

        feeders = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")}
                                for r in fd["rows"]]) if fd["rows"] else None
        aggregators = pd.DataFrame({
            "aggregator_id": [f"agg_{r['feeder_id']}" for r in fd["rows"]],
            "name": [f"Aggregator of feeder {r['feeder_id']}" for r in fd["rows"]],
            "markets": "tso,dso",
        })
        self.meta["feeder_trafos"] = {r["feeder_id"]: r["_trafos"] for r in fd["rows"]}

        used = set(grid.loads.profile) | set(feeder_loads.profile)
        if ders_df is not None:
            used |= set(ders_df.profile)
        columns = {k: v for k, v in series.columns.items() if k in used}
        profiles = Profiles(PERIOD_HOURS, self.n_periods,
                            pd.DataFrame(columns, index=pd.RangeIndex(self.n_periods)))
        self._table_notes()
        grid.notes = self.notes
        system = System(name=self.info.code,
                        description=f"SimBench {self.info.code} ({self.info.label} DER "
                                    "penetration)",
                        grid=grid, feeder_loads=feeder_loads, aggregators=aggregators,
                        profiles=profiles)
        if feeders is not None:
            system.feeders = feeders
            system.feeder_buses = fd["buses"]
            system.feeder_lines = fd["lines"]
        if ders_df is not None:
            system.ders = ders_df
        self.meta.update({
            "source": f"simbench:{self.info.code}",
            "penetration_phase": self.info.penetration_phase,
            "simbench_code": {"version": self.info.version,
                              "voltage_levels": list(self.info.voltage_levels),
                              "grid_type": self.info.grid_type, "lv_grids": self.info.lv_grids,
                              "switches": self.info.switches},
            "start": self.start, "n_periods": self.n_periods,
        })
        system.meta = self.meta
        return system

    def _orphans(self, element: str, frame: pd.DataFrame, bus: np.ndarray,
                 p: np.ndarray) -> None:
        t = np.isin(bus, self.t_bus)
        lost = ~t & pd.isna(self.feeder_of_bus.reindex(bus).to_numpy())
        if lost.any():
            self.notes.append(f"{element}: {int(lost.sum())} elements ({np.abs(p[lost]).sum():.4f}"
                              f" MW) on unsupplied distribution buses not represented "
                              f"(ids {frame.index[lost].tolist()[:10]})")

    def _der_frame(self, element: str, frame: pd.DataFrame, bus: np.ndarray,
                   names: np.ndarray) -> pd.DataFrame:
        f_of = self.feeder_of_bus.reindex(bus).to_numpy()
        on_feeder = pd.notna(f_of) & ~np.isin(bus, self.t_bus)
        live = _flag(frame, "in_service")
        p = _num(frame, "p_mw", 0.0)
        self._orphans(element, frame, bus, p)
        off = on_feeder & ~live
        if off.any():
            self.notes.append(f"{element}: {int(off.sum())} out-of-service units on feeders not "
                              f"represented (ids {frame.index[off].tolist()[:10]})")
        keep = on_feeder & live
        if (p[keep] < 0).any():
            raise TsodsoError(f"simbench {self.info.code}: {element} "
                              f"{frame.index[keep & (p < 0)].tolist()[:5]} have negative p_mw")
        sn = _num(frame, "sn_mva", np.nan)
        s_max = np.where((sn > 0) & (sn >= p - 1e-9), sn, np.nan)
        small = keep & (sn > 0) & (sn < p - 1e-9)
        if small.any():
            self.notes.append(f"{element}: {int(small.sum())} units with sn_mva below p_mw get "
                              "s_max_mva = NaN")
        kinds = [_kind(t) for t in _text(frame, "type")] if element == "sgen" else ["dg"] * len(
            frame)
        f_ids = f_of[keep]
        return pd.DataFrame({
            "der_id": [f"{element}:{i}" for i in frame.index[keep]],
            "kind": np.asarray(kinds, dtype=object)[keep], "feeder_id": f_ids,
            "bus_id": bus[keep].astype(np.int64),
            "aggregator_id": [f"agg_{f}" for f in f_ids], "p_max_mw": p[keep],
            "p_min_mw": 0.0, "s_max_mva": s_max[keep], "profile": names[keep],
        })

    def _storage_frame(self, frame: pd.DataFrame, bus: np.ndarray) -> pd.DataFrame:
        if not len(frame):
            return pd.DataFrame()
        f_of = self.feeder_of_bus.reindex(bus).to_numpy()
        on_feeder = pd.notna(f_of) & ~np.isin(bus, self.t_bus)
        p = np.abs(_num(frame, "p_mw", 0.0))
        sn = _num(frame, "sn_mva", np.nan)
        p = np.where(p > 0, p, np.where(sn > 0, sn, 0.0))
        self._orphans("storage", frame, bus, p)
        energy = _num(frame, "max_e_mwh", 0.0)
        live = _flag(frame, "in_service")
        unusable = on_feeder & live & ((energy <= 0) | (p <= 0))
        if unusable.any():
            self.notes.append(f"storage: {int(unusable.sum())} feeder storage units without "
                              "energy or power capacity not represented "
                              f"(ids {frame.index[unusable].tolist()[:10]})")
        off = on_feeder & ~live
        if off.any():
            self.notes.append(f"storage: {int(off.sum())} out-of-service units on feeders not "
                              "represented")
        keep = on_feeder & live & ~unusable
        if keep.any():
            self.notes.append("storage: SimBench storage schedules (profiles) not applied; "
                              "storage DERs are dispatchable, efficiency_percent read as "
                              "round-trip (sqrt per direction), self-discharge neglected")
        eff = _num(frame, "efficiency_percent", 1.0)
        eff = np.where(eff > 1.0, eff / 100.0, eff)
        eff = np.sqrt(np.clip(np.where(eff > 0, eff, 1.0), 1e-6, 1.0))
        e_min = np.clip(_num(frame, "min_e_mwh", 0.0) / np.where(energy > 0, energy, 1.0),
                        0.0, 1.0)
        soc = np.clip(_num(frame, "soc_percent", 0.0) / 100.0, e_min, 1.0)
        sn_ok = np.where((sn > 0) & (sn >= p - 1e-9), sn, np.nan)
        f_ids = f_of[keep]
        return pd.DataFrame({
            "der_id": [f"storage:{i}" for i in frame.index[keep]], "kind": "storage",
            "feeder_id": f_ids, "bus_id": bus[keep].astype(np.int64),
            "aggregator_id": [f"agg_{f}" for f in f_ids], "p_max_mw": p[keep],
            "p_min_mw": -p[keep], "s_max_mva": sn_ok[keep], "energy_mwh": energy[keep],
            "soc_init": soc[keep], "soc_min": e_min[keep], "soc_max": 1.0,
            "eta_charge": eff[keep], "eta_discharge": eff[keep], "profile": "",
        })

    def _table_notes(self) -> None:
        for key in list(self.net):
            if key in _MAPPED or key.startswith(("res_", "_")):
                continue
            value = self.net[key]
            if isinstance(value, pd.DataFrame) and len(value):
                what = _WHAT.get(key, "not represented in tsodso")
                self.notes.append(f"{key}: {len(value)} rows not represented ({what})")


# ------------------------------------------------------------------------------ public
def load_simbench(code: str, n_periods: int = 96, start: int = 0) -> System:
    """Build a :class:`System` from a SimBench code (see the module docstring for the mapping).

    Parameters
    ----------
    code : str
        A SimBench code such as ``1-MV-rural--0-sw`` (a ``simbench:`` prefix is accepted);
        :func:`available_codes` lists them.
    n_periods : int
        Number of 15-minute periods of the profiles (default one day).
    start : int
        First period, 0-based index into SimBench's year of 35,136 quarter hours.

    Raises
    ------
    CaseNotFoundError
        Unknown code (the message lists the valid ones).
    TsodsoError
        A window outside the year, or a topology tsodso cannot represent (names the feeder).
    ValidationError
        If the converted system does not validate (should not happen for SimBench data).
    """
    info = parse_code(code)
    if info.code.split("-")[1] == "complete_data":
        raise TsodsoError(f"simbench {info.code}: 'complete_data' is a collection of separate "
                          "grids, not one system; load the individual codes instead")
    if not isinstance(n_periods, int | np.integer) or n_periods < 1:
        raise TsodsoError(f"n_periods must be an integer >= 1, got {n_periods!r}")
    if not isinstance(start, int | np.integer) or start < 0:
        raise TsodsoError(f"start must be an integer >= 0, got {start!r}")
    if start + n_periods > STEPS_PER_YEAR:
        raise TsodsoError(f"periods {start}..{start + n_periods - 1} exceed SimBench's year of "
                          f"{STEPS_PER_YEAR} quarter hours")
    import simbench

    net = simbench.get_simbench_net(info.code)
    system = _Converter(net, info, int(n_periods), int(start)).convert()
    issues = system.validate()
    if issues:
        raise ValidationError(issues)
    return system


__all__ = ["SimbenchCode", "available_codes", "load_simbench", "parse_code"]
