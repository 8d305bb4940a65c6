"""YAML scenarios: a transmission case, feeders at named buses, a DER fleet, profiles, rules.

A scenario is a recipe, not data: it names published cases and says how to compose them. It is
turned into a :class:`~tsodso.model.System` by :func:`build_scenario`. The same recipe and seed
always give the same system. See ``scenarios/data/default.yaml`` for a commented example; the
keys are::

    name, description, seed
    horizon:      {periods, period_hours}
    transmission: {case}                         # matpower:NAME, pglib:NAME or a path
    simbench:     {code, start_day, generation_cost}   # instead of transmission + feeders
    feeders:      [{case, at, per_bus, scale, substation_margin, line_margin, id}]
    ders:         {<kind>: {share, bus_fraction, ...}}   # share of each feeder's peak load
    aggregators:  {per_feeder | count, markets}
    profiles:     {source: simbench, day, series: {name: column}, normalize: [names],
                   transmission_load, feeder_load}
    rules:        preset name or {preset, overrides...}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tsodso.errors import Issue, TsodsoError, ValidationError
from tsodso.io.feeders import feeder_from_case
from tsodso.io.matpower import load_grid
from tsodso.io.profiles import simbench_series
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import DER_KINDS, DERS
from tsodso.model.topology import downstream_load
from tsodso.rules import MarketRules, get_rules


class _Reader:
    """Typed access to a nested YAML mapping that reports bad values by their key path."""

    def __init__(self, data: Any, path: str):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValidationError([Issue("scenario", path, "", "expected a mapping")])
        self.data, self.path = data, path

    def _issue(self, key: str, message: str) -> ValidationError:
        return ValidationError([Issue("scenario", f"{self.path}.{key}".strip("."), "", message)])

    def known(self, *keys: str) -> None:
        unknown = sorted(set(map(str, self.data)) - set(keys))
        if unknown:
            raise self._issue(unknown[0], f"unknown key; expected one of {', '.join(keys)}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self._issue(key, "required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self._issue(key, f"expected {'/'.join(k.__name__ for k in kinds)}, got a bool")
        if not isinstance(value, kinds):
            raise self._issue(key, f"expected {'/'.join(k.__name__ for k in kinds)}, "
                                   f"got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value) and key not in (
                "substation_mva",):
            raise self._issue(key, "must be finite")
        return value

    def number(self, key: str, default: Any = ..., low: float | None = None,
               high: float | None = None, positive: bool = False) -> float:
        value = self.get(key, float, default)
        if low is not None and value < low:
            raise self._issue(key, f"must be >= {low}")
        if high is not None and value > high:
            raise self._issue(key, f"must be <= {high}")
        if positive and not value > 0:
            raise self._issue(key, "must be > 0")
        return value

    def integer(self, key: str, default: Any = ..., low: int | None = None) -> int:
        value = self.get(key, int, default)
        if low is not None and value < low:
            raise self._issue(key, f"must be >= {low}")
        return value

    def items(self, key: str, kind: type, default: Any = ...) -> list[Any]:
        """A list whose every item is of ``kind`` (bools are not ints)."""
        values = self.get(key, list, default)
        for i, v in enumerate(values):
            if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
                raise self._issue(f"{key}[{i}]", f"expected {kind.__name__}, "
                                                 f"got {type(v).__name__}")
        return values

    def sub(self, key: str) -> _Reader:
        return _Reader(self.data.get(key), f"{self.path}.{key}".strip("."))


DER_DEFAULTS: dict[str, dict[str, Any]] = {
    "pv": {"profile": "pv", "inverter_oversize": 1.1, "cost_per_mwh": 0.0},
    "wind": {"profile": "wind", "inverter_oversize": 1.0, "cost_per_mwh": 0.0},
    "storage": {"hours": 2.0, "efficiency": 0.95, "cost_per_mwh": 2.0},
    "ev": {"hours": 4.0, "need": 0.6, "arrival_hour": 17.0, "departure_hour": None,
           "cost_per_mwh": 0.0},
    "demand_response": {"hours": 3.0, "cost_per_mwh": 150.0},
    "dg": {"cost_per_mwh": 60.0},
}


def load_scenario_file(path: str | Path) -> System:
    """Read a YAML scenario file and build its :class:`System`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise TsodsoError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except OSError as err:
        raise TsodsoError(f"{path}: cannot read ({err.strerror})") from None
    return build_scenario(data, base_dir=path.parent)


def build_scenario(data: Any, base_dir: Path | None = None) -> System:
    """Build a validated :class:`System` from a parsed scenario mapping."""
    top = _Reader(data, "")
    top.known("name", "description", "seed", "horizon", "transmission", "simbench", "feeders",
              "ders", "aggregators", "profiles", "rules")
    seed = top.integer("seed", 0, low=0)
    horizon = top.sub("horizon")
    horizon.known("periods", "period_hours")
    n_periods = horizon.integer("periods", 24, low=1)
    period_hours = horizon.number("period_hours", 1.0, positive=True)
    rules = _rules(top.data.get("rules", "custom"))

    if "simbench" in top.data:
        system = _from_simbench(top.sub("simbench"), n_periods, period_hours)
    else:
        system = _compose(top, base_dir, n_periods, period_hours)
    system.name = top.get("name", str, system.name or "scenario")
    system.description = top.get("description", str, system.description)
    system.rules = rules
    system.check()  # DERs are placed on a consistent network only
    rng = np.random.default_rng(seed)
    ders = _place_ders(system, top.sub("ders"), rng)
    if len(ders):
        system.ders = pd.concat([system.ders, ders], ignore_index=True)
    _assign_aggregators(system, top.sub("aggregators"))
    system.meta.update({"seed": seed})
    return system.check()


def _rules(spec: Any) -> MarketRules:
    if isinstance(spec, str):
        return get_rules(spec)
    return MarketRules.from_dict(spec)


def _from_simbench(r: _Reader, n_periods: int, period_hours: float) -> System:
    from tsodso.io.simbench import load_simbench

    r.known("code", "start_day", "generation_cost")
    if period_hours != 0.25:
        raise ValidationError([Issue("scenario", "horizon.period_hours", "",
                                     "SimBench scenarios use 0.25 h periods")])
    start = r.integer("start_day", 0, low=0) * 96
    system = load_simbench(r.get("code", str), n_periods=n_periods, start=start)
    # SimBench has no costs: price the power of the grids behind the transmission buses
    cost = r.number("generation_cost", 0.0, low=0.0)
    system.grid.generators["cost_c1"] = cost
    return system


def _compose(top: _Reader, base_dir: Path | None, n_periods: int,
             period_hours: float) -> System:
    tx = top.sub("transmission")
    tx.known("case")
    grid = load_grid(_resolve(tx.get("case", str), base_dir))
    prof = top.sub("profiles")
    prof.known("source", "day", "series", "normalize", "transmission_load", "feeder_load")
    series = _profiles(prof, n_periods, period_hours)
    tx_profile = prof.get("transmission_load", str, "")
    feeder_profile = prof.get("feeder_load", str, "")
    grid.loads["profile"] = tx_profile
    system = System(name=grid.name, grid=grid,
                    profiles=Profiles(period_hours, n_periods, series))
    feeders = top.data.get("feeders") or []
    if not isinstance(feeders, list):
        raise ValidationError([Issue("scenario", "feeders", "", "expected a list")])
    for k, spec in enumerate(feeders):
        _attach_feeders(system, _Reader(spec, f"feeders[{k}]"), base_dir, feeder_profile)
    system.meta["source"] = tx.get("case", str)
    return system


def _resolve(spec: str, base_dir: Path | None) -> str:
    if ":" in spec or base_dir is None:
        return spec
    return str(base_dir / spec) if not Path(spec).is_absolute() else spec


def _profiles(r: _Reader, n_periods: int, period_hours: float) -> pd.DataFrame:
    if not r.data:
        return pd.DataFrame(index=range(n_periods))
    source = r.get("source", str, "simbench")
    if source != "simbench":
        raise ValidationError([Issue("scenario", "profiles.source", source,
                                     "only 'simbench' is available")])
    names = r.get("series", dict)
    for key, value in names.items():
        if not isinstance(value, str):
            raise ValidationError([Issue("scenario", f"profiles.series.{key}", "",
                                         "expected a SimBench column name")])
    frame = simbench_series(dict(names), r.integer("day", 0, low=0), n_periods, period_hours)
    for name in r.items("normalize", str, []):
        if name not in frame:
            raise ValidationError([Issue("scenario", "profiles.normalize", str(name),
                                         "not a profile of profiles.series")])
        frame[name] = frame[name] / frame[name].max()
    return frame


def _attach_feeders(system: System, r: _Reader, base_dir: Path | None, profile: str) -> None:
    """Attach copies of a feeder case at transmission buses, moving load from the bus."""
    r.known("case", "at", "per_bus", "scale", "substation_margin", "line_margin", "id")
    case = _resolve(r.get("case", str), base_dir)
    at = r.items("at", int)
    per_bus = r.integer("per_bus", 1, low=1)
    scale = r.number("scale", 1.0, positive=True)
    sub_margin = r.number("substation_margin", math.inf, positive=True)
    line_margin = r.number("line_margin", math.inf, positive=True)
    prefix = r.get("id", str, Path(case.split(":")[-1]).stem)
    loads = system.grid.loads
    for bus in at:
        if not isinstance(bus, int) or isinstance(bus, bool):
            raise ValidationError([Issue("scenario", f"{r.path}.at", str(bus),
                                         "expected transmission bus numbers")])
        for copy in range(per_bus):
            fid = f"{prefix}@{bus}" + (f"#{copy + 1}" if per_bus > 1 else "")
            feeder, ders = feeder_from_case(case, fid, bus, scale, load_profile=profile)
            total_p = float(feeder.loads.p_mw.sum())
            total_q = float(feeder.loads.q_mvar.sum())
            row = loads.index[(loads.bus_id == bus) & loads.in_service]
            if len(row) == 0 or loads.loc[row, "p_mw"].sum() < total_p - 1e-9:
                have = float(loads.loc[row, "p_mw"].sum()) if len(row) else 0.0
                raise ValidationError([Issue("scenario", f"{r.path}.at", str(bus),
                                             f"feeder {fid} carries {total_p:.3f} MW but bus "
                                             f"{bus} has only {have:.3f} MW of load left")])
            first = row[0]
            loads.loc[first, "p_mw"] -= total_p
            loads.loc[first, "q_mvar"] -= total_q
            s_load = np.hypot(feeder.loads.p_mw, feeder.loads.q_mvar)
            if math.isfinite(sub_margin):
                feeder.info["substation_mva"] = sub_margin * float(np.hypot(total_p, total_q))
            if math.isfinite(line_margin):
                flow = downstream_load(feeder, s_load.to_numpy())
                feeder.lines["rating_mva"] = np.where(feeder.lines.in_service,
                                                      line_margin * np.maximum(flow, 1e-3),
                                                      feeder.lines.rating_mva)
            system.add_feeder(feeder)
            if len(ders):
                system.ders = pd.concat([system.ders, ders], ignore_index=True)


def _place_ders(system: System, r: _Reader, rng: np.random.Generator) -> pd.DataFrame:
    """DERs of each kind sized as a share of each feeder's peak load, on random load buses."""
    r.known(*DER_KINDS)
    if not len(system.feeders) or not r.data:
        return pd.DataFrame()
    peak = system.feeder_peak_load_mw()
    rows: list[pd.DataFrame] = []
    for kind in DER_KINDS:
        if kind not in r.data:
            continue
        k = r.sub(kind)
        options = dict(DER_DEFAULTS[kind])
        k.known("share", "bus_fraction", *options)
        share = k.number("share", low=0.0)
        fraction = k.number("bus_fraction", 0.3, low=0.0, high=1.0)
        for key, default in options.items():
            if key == "profile":
                options[key] = k.get(key, str, default)
            elif default is None:
                options[key] = k.data.get(key)
            else:
                options[key] = k.number(key, default, low=0.0)
        for fid in system.feeder_ids:
            loads = system.feeder_loads[system.feeder_loads.feeder_id == fid]
            if loads.empty or share == 0:
                continue
            n = max(1, int(round(fraction * len(loads))))
            pick = np.sort(rng.choice(len(loads), size=n, replace=False))
            chosen = loads.iloc[pick]
            weight = chosen.p_mw.to_numpy() / chosen.p_mw.sum()
            p = share * float(peak[fid]) * weight
            rows.append(_der_rows(kind, fid, chosen.bus_id.to_numpy(), p, options, system))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _der_rows(kind: str, fid: str, buses: np.ndarray, p: np.ndarray, o: dict[str, Any],
              system: System) -> pd.DataFrame:
    ids = [f"{fid}/{kind}{b}" for b in buses]
    frame = pd.DataFrame({"der_id": ids, "kind": kind, "feeder_id": fid, "bus_id": buses,
                          "p_max_mw": p, "cost_per_mwh": o["cost_per_mwh"]})
    if kind in ("pv", "wind"):
        frame["s_max_mva"] = p * o["inverter_oversize"]
        frame["profile"] = o["profile"]
    elif kind == "storage":
        frame["p_min_mw"] = -p
        frame["s_max_mva"] = p
        frame["energy_mwh"] = p * o["hours"]
        frame["eta_charge"] = frame["eta_discharge"] = math.sqrt(o["efficiency"])
    elif kind == "ev":
        dt = system.profiles.period_hours
        arrival = min(int(o["arrival_hour"] / dt), system.n_periods - 1)
        depart = o["departure_hour"]
        frame["p_max_mw"] = 0.0
        frame["p_min_mw"] = -p
        frame["energy_mwh"] = p * o["hours"]
        frame["soc_init"] = 0.2
        frame["soc_min"] = 0.0
        frame["energy_need_mwh"] = p * o["hours"] * o["need"]
        frame["arrival_period"] = arrival
        frame["departure_period"] = -1 if depart is None else int(float(depart) / dt)
    elif kind == "demand_response":
        frame["energy_mwh"] = p * o["hours"]
    return conform(frame, DERS)[0]  # absent columns take their declared defaults


def _assign_aggregators(system: System, r: _Reader) -> None:
    """One aggregator per feeder (default) or ``count`` aggregators shared round-robin."""
    r.known("per_feeder", "count", "markets")
    markets = r.get("markets", str, "tso,dso")
    ders = system.ders
    if ders.empty:
        return
    needs = ders.aggregator_id.fillna("") == "" if "aggregator_id" in ders else pd.Series(
        True, index=ders.index)
    count = r.integer("count", 0, low=0)
    if count:
        names = [f"agg{i + 1}" for i in range(count)]
        order = np.arange(needs.sum()) % count
        ders.loc[needs, "aggregator_id"] = [names[i] for i in order]
    else:
        ders.loc[needs, "aggregator_id"] = "agg_" + ders.loc[needs, "feeder_id"].astype(str)
    used = sorted(set(ders.aggregator_id) - set(system.aggregators.get("aggregator_id", [])))
    new = pd.DataFrame({"aggregator_id": used, "name": used, "markets": markets})
    system.aggregators = pd.concat([system.aggregators, new], ignore_index=True)
    system.ders = ders
