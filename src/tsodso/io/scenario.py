"""YAML scenarios: a transmission case, feeders at named buses, a DER fleet, profiles, rules.

A scenario is a recipe, not data: it names published cases and says how to compose them. It is
turned into a :class:`~tsodso.model.System` by :func:`build_scenario`. The same recipe and seed
always give the same system. See ``scenarios/data/default.yaml`` for a commented example; the
keys, their types and bounds are::

    name, description                            text
    seed                                         integer >= 0 (default 0)
    horizon:      periods                        integer, 1 .. MAX_PERIODS (default 24)
                  period_hours                   number > 0 (default 1.0)
    transmission: case                           matpower:NAME, pglib:NAME or a path
    simbench:     code, start_day (0 .. 365), generation_cost (>= 0)
                                                 # instead of transmission, feeders, profiles
    feeders:      [{case, at: [bus, ...], per_bus (>= 1), scale (> 0),
                    substation_margin (> 0), line_margin (> 0), id,
                    oltc: {v_min, v_max, tap, discrete, tap_cost},
                    capacitors: [{bus, mvar, steps}]}]
                                                 # at most MAX_FEEDERS feeders in all
    ders:         {<kind>: {share (>= 0), bus_fraction (0 < f <= 1),
                            telemetry_min_mw (>= 0), <kind options>}}
                                                 # ev: v2g (0 .. 1) = discharge power as a
                                                 # share of the charging power; units below
                                                 # telemetry_min_mw have no telemetry
    dso:          {<DSO name>: [feeder id, ...]}  # who operates which feeders; feeders
                                                 # not listed: one DSO per interface bus
    aggregators:  {per_feeder: true | count (>= 1), markets}
    profiles:     {source: simbench, day (0 .. 365), series: {name: SimBench column},
                   normalize: [names], transmission_load: name, feeder_load: name}
    rules:        preset name or {preset, <rule>: value, ...,
                   local: {min_offer_mw, aggregation_allowed, energy_kinds,
                           reactive_kinds, reactive_paid}}   # the DSOs' local markets

Every key is checked and nothing is repaired: an unknown key is an error that names it with
a "did you mean" suggestion (a typo must not silently change a study), and so are a value of
the wrong type, NaN or infinite numbers, values out of bounds, interface buses that are not in
the transmission case, profile names that are not defined and SimBench columns that do not
exist: a :class:`~tsodso.errors.ValidationError` whose field is the key path, e.g.
``scenario.feeders[1].at[0]``. Cases that cannot be found keep their error type with the key
path in front; files that are not UTF-8 YAML (or repeat a key) are a
:class:`~tsodso.errors.ParseError` naming the file and line.

Bounds: ``MAX_PERIODS`` is 35,136, a leap year of quarter hours (SimBench's year);
``MAX_FEEDERS`` is 10,000, so that a typo such as ``per_bus: 1000000`` cannot exhaust memory.
Profiles from SimBench need ``period_hours`` to be a multiple of 0.25 h and the horizon to end
within 2016.

Two conversions are rules, not repairs: an EV's ``arrival_hour`` and ``departure_hour`` become
the period that contains that hour (``floor(hour / period_hours)``; both must lie within the
horizon), and a DER kind goes to ``round(bus_fraction x load buses)`` load buses of each feeder,
at least one when its share is above zero.

:class:`MappingReader`, :func:`read_yaml` and :func:`read_rules` are also used for the
manifests of exported system folders (:mod:`tsodso.io.store`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tsodso.errors import CaseNotFoundError, Issue, ParseError, TsodsoError, ValidationError
from tsodso.io.feeders import feeder_from_case
from tsodso.io.matpower import load_grid
from tsodso.io.profiles import STEPS_PER_DAY, simbench_columns, simbench_series
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import DER_KINDS, DERS, MARKETS
from tsodso.model.topology import downstream_load
from tsodso.resources import MAX_PERIODS  # a leap year of quarter hours
from tsodso.rules import PRESETS, MarketRules, get_rules
from tsodso.rules.presets import overridden

MAX_FEEDERS = 10_000  # feeders a scenario may attach (10x the largest benchmark)
DAYS_IN_YEAR = 366  # SimBench's profiles cover 2016
SCENARIO_KEYS = ("name", "description", "seed", "horizon", "transmission", "simbench",
                 "feeders", "dso", "ders", "aggregators", "profiles", "rules")


# ----------------------------------------------------------------------------- helpers
def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to ``word``, or ``""``."""
    by_lower = {str(o).lower(): str(o) for o in options}
    match = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[match[0]]}'?)" if match else ""


def as_path(value: Any, what: str) -> Path:
    """``value`` as a :class:`~pathlib.Path` if it is a ``str`` or ``os.PathLike``.

    Raises
    ------
    TsodsoError
        For any other type, bytes paths, empty strings and embedded NUL characters.
    """
    if not isinstance(value, str | os.PathLike):
        raise TsodsoError(f"{what}: expected a path (str or os.PathLike), got "
                          f"{type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TsodsoError(f"{what}: expected a text path, got {type(text).__name__}")
    if not text or "\0" in text:
        raise TsodsoError(f"{what}: {text!r} is not a usable path")
    return Path(text)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # unhashable key: the base class reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 reads ``1e-9`` and ``2E3`` as numbers; PyYAML (YAML 1.1) as the strings "1e-9" and
# "2E3". Where a number is expected they are read as YAML 1.2 does (text keys keep them).
_YAML12_EXPONENT = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+")


def _yaml_problem(err: Exception) -> str:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        problem = err.problem or err.context or type(err).__name__
        text = f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())


def read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file strictly (safe tags only, no duplicate keys).

    Raises
    ------
    ParseError
        Naming the file (and line) when it cannot be read, is not UTF-8 text, is empty or
        is not valid YAML.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ParseError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ParseError(f"{path}: {what} is not UTF-8 text (bad byte at offset {err.start})"
                         ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: safe tags only
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        raise ParseError(f"{path}: not valid YAML ({_yaml_problem(err)})") from None
    if data is None:
        raise ParseError(f"{path}: {what} is empty (no YAML content)")
    return data


class MappingReader:
    """Typed access to a nested YAML mapping that reports bad values by their key path.

    Parameters
    ----------
    data : Any
        The parsed mapping; ``None`` reads as an empty mapping.
    path : str
        Key path of ``data`` from the document root, e.g. ``"feeders[2]"`` (``""`` = root).
    component : str
        The document, used as the :class:`~tsodso.errors.Issue` component (``"scenario"``).
    source : str
        File the document came from, appended to messages; ``""`` if none.

    Raises
    ------
    ValidationError
        If ``data`` is not a mapping.
    """

    def __init__(self, data: Any, path: str = "", component: str = "scenario",
                 source: str = ""):
        self.path, self.component, self.source = path, component, source
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise self.issue("", f"expected a mapping, got {type(data).__name__} {_short(data)}")
        self.data: dict[Any, Any] = data

    def key(self, key: str) -> str:
        """Key path of ``key`` below this mapping."""
        if not key:
            return self.path
        if not self.path or key.startswith("["):
            return f"{self.path}{key}"
        return f"{self.path}.{key}"

    def issue(self, key: str, message: str, id: str = "") -> ValidationError:
        """A :class:`ValidationError` about ``key`` (``""`` = this mapping itself)."""
        where = f" ({self.source})" if self.source else ""
        return ValidationError([Issue(self.component, self.key(key), id, message + where)])

    def known(self, *keys: str) -> None:
        """Refuse any key not in ``keys``, suggesting the closest known one."""
        for key in self.data:
            if not isinstance(key, str) or key not in keys:
                raise self.issue(str(key), f"unknown key{did_you_mean(str(key), keys)}; "
                                           f"expected one of {', '.join(keys)}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """The value of ``key`` if it has type ``kind`` (ints and YAML 1.2 exponent numbers
        such as ``1e-9`` count as floats, bools never as numbers; floats must be finite);
        ``default`` if absent or null, else required."""
        if key not in self.data or self.data[key] is None:
            if default is ...:
                raise self.issue(key, "required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = "/".join(k.__name__ for k in kinds)
        if isinstance(value, bool) and bool not in kinds:
            raise self.issue(key, f"expected {expected}, got a bool")
        if (float in kinds and str not in kinds and isinstance(value, str)
                and _YAML12_EXPONENT.fullmatch(value)):
            value = float(value.replace("_", ""))
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise self.issue(key, "number too large") from None
        if not isinstance(value, kinds):
            raise self.issue(key, f"expected {expected}, got {type(value).__name__} "
                                  f"{_short(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.issue(key, "must be finite")
        return value

    def _bounds(self, key: str, value: float, low: float | None, high: float | None,
                positive: bool) -> None:
        if low is not None and value < low:
            raise self.issue(key, f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise self.issue(key, f"must be <= {high}, got {value}")
        if positive and not value > 0:
            raise self.issue(key, f"must be > 0, got {value}")

    def number(self, key: str, default: Any = ..., low: float | None = None,
               high: float | None = None, positive: bool = False) -> Any:
        """A finite number within the bounds (``default`` is returned unchecked)."""
        value = self.get(key, float, default)
        if key in self.data and self.data[key] is not None:
            self._bounds(key, value, low, high, positive)
        return value

    def integer(self, key: str, default: Any = ..., low: int | None = None,
                high: int | None = None) -> Any:
        """An integer within the bounds (``default`` is returned unchecked)."""
        value = self.get(key, int, default)
        if key in self.data and self.data[key] is not None:
            self._bounds(key, value, low, high, False)
        return value

    def items(self, key: str, kind: type, default: Any = ...) -> list[Any]:
        """A list whose every item is of ``kind`` (bools are not ints)."""
        values = self.get(key, list, default)
        for i, v in enumerate(values):
            if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
                raise self.issue(f"{key}[{i}]", f"expected {kind.__name__}, "
                                                f"got {type(v).__name__} {_short(v)}")
        return values

    def sub(self, key: str) -> MappingReader:
        """The mapping under ``key`` (empty if absent or null)."""
        return MappingReader(self.data.get(key), self.key(key), self.component, self.source)

    def item(self, key: str, index: int) -> MappingReader:
        """The mapping that is item ``index`` of the list under ``key``."""
        return MappingReader(self.data[key][index], self.key(f"{key}[{index}]"),
                             self.component, self.source)


def named(r: MappingReader, key: str, func: Callable[..., Any], *args: Any,
          **kwargs: Any) -> Any:
    """Call ``func``; a non-validation :class:`TsodsoError` gets ``key``'s path as prefix."""
    try:
        return func(*args, **kwargs)
    except ValidationError:
        raise
    except TsodsoError as err:
        cls = type(err) if type(err) in (TsodsoError, CaseNotFoundError, ParseError) else (
            TsodsoError)
        where = f" ({r.source})" if r.source else ""
        raise cls(f"{r.component}.{r.key(key)}: {err}{where}") from err


def read_rules(parent: MappingReader, key: str = "rules") -> MarketRules:
    """Market rules from a preset name or a ``{preset, <rule>: value}`` mapping.

    Without ``preset`` the base is the preset called ``name`` if there is one, else
    ``custom``; every rule given overrides the base. Absent or null means ``custom``.
    """
    spec = parent.data.get(key)
    if spec is None:
        return get_rules("custom")
    if isinstance(spec, str):
        return _preset(parent, key, spec)
    if not isinstance(spec, dict):
        raise parent.issue(key, f"expected a preset name or a mapping, got {type(spec).__name__}")
    r = parent.sub(key)
    names = [f.name for f in fields(MarketRules)]
    r.known("preset", *names)
    preset = r.get("preset", str, None)
    name = r.get("name", str, "")
    if preset is not None:
        base = _preset(r, "preset", preset)
    else:
        base = PRESETS.get(name.strip().lower(), PRESETS["custom"])
    values = base.to_dict()
    values["local"] = base.local
    if "local" in r.data:
        try:
            values["local"] = base.local.replaced(r.data["local"])
        except ValidationError as err:
            first = err.issues[0]
            raise r.sub("local").issue(first.field, first.message) from None
    for field_name in names:
        if field_name not in ("sources", "local"):
            values[field_name] = r.get(field_name, type(values[field_name]),
                                       values[field_name])
    if "sources" in r.data:  # a manifest written with its sources
        values["sources"] = tuple(r.items("sources", str))
    else:  # a value set here is no longer the preset's sourced one
        changed = {k: values[k] for k in names
                   if k not in ("sources", "name", "era", "description", "local")
                   and values[k] != getattr(base, k)}
        values["sources"] = overridden(base.sources, changed)
    rules = MarketRules(**values)
    try:
        rules.check()
    except ValidationError as err:
        first = err.issues[0]
        raise r.issue(first.field, first.message) from None
    return rules


def _preset(r: MappingReader, key: str, name: str) -> MarketRules:
    if name.strip().lower() not in PRESETS:
        raise r.issue(key, f"unknown preset '{name}'{did_you_mean(name.strip().lower(), PRESETS)}"
                           f"; choose from {', '.join(PRESETS)}")
    return get_rules(name)


# ---------------------------------------------------------------------------- scenarios
DER_DEFAULTS: dict[str, dict[str, Any]] = {
    "pv": {"profile": "pv", "inverter_oversize": 1.1, "cost_per_mwh": 0.0},
    "wind": {"profile": "wind", "inverter_oversize": 1.0, "cost_per_mwh": 0.0},
    "storage": {"hours": 2.0, "efficiency": 0.95, "cost_per_mwh": 2.0},
    "ev": {"hours": 4.0, "need": 0.6, "arrival_hour": 17.0, "departure_hour": None,
           "cost_per_mwh": 0.0, "v2g": 0.0},
    "demand_response": {"hours": 3.0, "cost_per_mwh": 150.0},
    "dg": {"cost_per_mwh": 60.0},
}
# bounds of the DER options: (low, high, positive)
_DER_BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    "inverter_oversize": (1.0, None, False), "cost_per_mwh": (0.0, None, False),
    "hours": (None, None, True), "efficiency": (None, 1.0, True), "need": (0.0, 1.0, False),
    "arrival_hour": (0.0, None, False), "departure_hour": (None, None, True),
    "v2g": (0.0, 1.0, False),
}


@dataclass(frozen=True)
class _Horizon:
    periods: int
    period_hours: float
    reader: MappingReader

    @property
    def hours(self) -> float:
        return self.periods * self.period_hours


def load_scenario_file(path: str | os.PathLike[str]) -> System:
    """Read a YAML scenario file and build its :class:`System`.

    Raises
    ------
    ParseError
        The file cannot be read, is empty or is not valid YAML (names the file and line).
    ValidationError
        A key is unknown or has a bad value (names its key path).
    """
    path = as_path(path, "scenario file")
    data = read_yaml(path, "scenario")
    return build_scenario(data, base_dir=path.parent, source=str(path))


def build_scenario(data: Any, base_dir: Path | None = None, source: str = "") -> System:
    """Build a validated :class:`System` from a parsed scenario mapping.

    ``base_dir`` resolves relative case paths; ``source`` (a file name) is quoted in errors.
    """
    top = MappingReader(data, "", "scenario", source)
    top.known(*SCENARIO_KEYS)
    seed = top.integer("seed", 0, low=0)
    name = top.get("name", str, None)
    description = top.get("description", str, None)
    horizon = _horizon(top.sub("horizon"))
    rules = read_rules(top, "rules")
    if "simbench" in top.data:
        system = _from_simbench(top, horizon)
    else:
        system = _compose(top, base_dir, horizon)
    system.name = name if name is not None else (system.name or "scenario")
    if description is not None:
        system.description = description
    system.rules = rules
    system.check()  # DERs are placed on a consistent network only
    _assign_dsos(system, top)
    rng = np.random.default_rng(seed)
    ders = _place_ders(system, top.sub("ders"), rng)
    if len(ders):
        system.ders = pd.concat([system.ders, ders], ignore_index=True)
    _assign_aggregators(system, top.sub("aggregators"))
    system.meta.update({"seed": seed})
    return system.check()


def _horizon(r: MappingReader) -> _Horizon:
    r.known("periods", "period_hours")
    periods = r.integer("periods", 24, low=1)
    if periods > MAX_PERIODS:
        raise r.issue("periods", f"must be <= {MAX_PERIODS} (a leap year of quarter hours), "
                                 f"got {periods}")
    return _Horizon(periods, r.number("period_hours", 1.0, positive=True), r)


def _from_simbench(top: MappingReader, horizon: _Horizon) -> System:
    from tsodso.io.simbench import STEPS_PER_YEAR, load_simbench

    for key in ("transmission", "feeders", "profiles"):
        if key in top.data:
            raise top.issue(key, "not used with simbench: a SimBench grid brings its own "
                                 "transmission grid, feeders and profiles")
    r = top.sub("simbench")
    r.known("code", "start_day", "generation_cost")
    if horizon.period_hours != 0.25:
        raise horizon.reader.issue("period_hours", "SimBench scenarios use 0.25 h periods, "
                                                   f"got {horizon.period_hours}")
    code = r.get("code", str)
    start_day = r.integer("start_day", 0, low=0, high=DAYS_IN_YEAR - 1)
    start = start_day * STEPS_PER_DAY
    if start + horizon.periods > STEPS_PER_YEAR:
        raise r.issue("start_day", f"day {start_day} plus {horizon.periods} quarter hours runs "
                                   f"past SimBench's year ({STEPS_PER_YEAR} quarter hours)")
    cost = r.number("generation_cost", 0.0, low=0.0)
    system = named(r, "code", load_simbench, code, n_periods=horizon.periods, start=start)
    # SimBench has no costs: price the power of the grids behind the transmission buses
    system.grid.generators["cost_c1"] = cost
    return system


def _compose(top: MappingReader, base_dir: Path | None, horizon: _Horizon) -> System:
    tx = top.sub("transmission")
    tx.known("case")
    case = tx.get("case", str)
    grid = named(tx, "case", load_grid, _resolve(case, base_dir))
    prof = top.sub("profiles")
    series = _profiles(prof, horizon)
    grid.loads["profile"] = _profile_name(prof, "transmission_load", series)
    feeder_profile = _profile_name(prof, "feeder_load", series)
    system = System(name=grid.name, grid=grid,
                    profiles=Profiles(horizon.period_hours, horizon.periods, series))
    feeders = top.data.get("feeders")
    if feeders is None:
        feeders = []
    if not isinstance(feeders, list):
        raise top.issue("feeders", f"expected a list of feeder entries, got "
                                   f"{type(feeders).__name__}")
    for k in range(len(feeders)):
        _attach_feeders(system, top.item("feeders", k), base_dir, feeder_profile)
    system.meta["source"] = case
    return system


def _resolve(spec: str, base_dir: Path | None) -> str:
    if ":" in spec or base_dir is None:
        return spec
    return str(base_dir / spec) if not Path(spec).is_absolute() else spec


def _profiles(r: MappingReader, horizon: _Horizon) -> pd.DataFrame:
    """The scenario's profiles: SimBench columns over the horizon, some normalised."""
    r.known("source", "day", "series", "normalize", "transmission_load", "feeder_load")
    if not r.data:
        return pd.DataFrame(index=range(horizon.periods))
    source = r.get("source", str, "simbench")
    if source != "simbench":
        raise r.issue("source", f"unknown source '{source}'; only 'simbench' is available")
    names = _series_names(r)
    steps = horizon.period_hours / 0.25
    if abs(steps - round(steps)) > 1e-9 or steps < 1:
        raise horizon.reader.issue("period_hours", "SimBench profiles need a multiple of "
                                                   f"0.25 h, got {horizon.period_hours}")
    day = r.integer("day", 0, low=0, high=DAYS_IN_YEAR - 1)
    if day * 24 + horizon.hours > DAYS_IN_YEAR * 24 + 1e-9:
        raise r.issue("day", f"day {day} plus the {horizon.hours:g} h horizon runs past the "
                             "end of SimBench's year (2016)")
    frame = simbench_series(names, day, horizon.periods, horizon.period_hours)
    for i, name in enumerate(r.items("normalize", str, [])):
        if name not in frame:
            raise r.issue(f"normalize[{i}]", f"'{name}' is not a profile of profiles.series"
                                             f"{did_you_mean(name, frame.columns)}")
        peak = frame[name].max()
        if not peak > 0:
            raise r.issue(f"normalize[{i}]", f"profile '{name}' is zero over the horizon and "
                                             "cannot be normalised to its peak")
        frame[name] = frame[name] / peak
    return frame


def _series_names(r: MappingReader) -> dict[str, str]:
    series = r.sub("series")
    if not series.data:
        raise r.issue("series", "required: {profile name: SimBench column}")
    columns = simbench_columns()
    for key in series.data:
        if not isinstance(key, str) or not key:
            raise series.issue(str(key), "profile names must be non-empty text")
        column = series.get(key, str)
        if column not in columns:
            raise series.issue(key, f"unknown SimBench column '{column}'"
                                    f"{did_you_mean(column, columns)}")
    return dict(series.data)


def _profile_name(r: MappingReader, key: str, series: pd.DataFrame) -> str:
    name = r.get(key, str, "")
    if name and name not in series.columns:
        raise r.issue(key, f"unknown profile '{name}'{did_you_mean(name, series.columns)}; "
                           f"profiles.series defines {', '.join(map(str, series.columns))}")
    return name


@dataclass(frozen=True)
class _FeederSpec:
    case: str
    at: list[int]
    per_bus: int
    scale: float
    substation_margin: float
    line_margin: float
    prefix: str
    oltc: dict[str, Any] | None = None
    capacitors: tuple[tuple[int, float, int], ...] = ()


def _oltc_spec(r: MappingReader) -> dict[str, Any] | None:
    """The ``oltc:`` mapping of a feeder entry as ``feeders`` columns (None: absent)."""
    if r.data.get("oltc") is None:
        return None
    o = r.sub("oltc")
    o.known("v_min", "v_max", "tap", "discrete", "tap_cost")
    v_min = o.number("v_min", 0.95, positive=True)
    v_max = o.number("v_max", 1.05, positive=True)
    if v_min > v_max:
        raise o.issue("v_min", f"must not exceed v_max ({v_min} > {v_max})")
    return {"oltc_v_min_pu": v_min, "oltc_v_max_pu": v_max,
            "oltc_tap_pu": o.number("tap", 0.00625, positive=True),
            "oltc_discrete": o.get("discrete", bool, True),
            "oltc_tap_cost": o.number("tap_cost", 0.0, low=0.0)}


def _capacitor_specs(r: MappingReader) -> tuple[tuple[int, float, int], ...]:
    """The ``capacitors:`` list of a feeder entry: (bus, MVAr at 1.0 pu, steps) each."""
    out = []
    for i in range(len(r.get("capacitors", list, []))):
        c = r.item("capacitors", i)
        c.known("bus", "mvar", "steps")
        out.append((c.get("bus", int), c.number("mvar", positive=True),
                    c.integer("steps", 1, low=1)))
    return tuple(out)


def _feeder_spec(r: MappingReader, base_dir: Path | None, buses: set[int]) -> _FeederSpec:
    r.known("case", "at", "per_bus", "scale", "substation_margin", "line_margin", "id", "oltc",
            "capacitors")
    case = _resolve(r.get("case", str), base_dir)
    at = r.items("at", int)
    if not at:
        raise r.issue("at", "expected at least one transmission bus")
    for i, bus in enumerate(at):
        if bus not in buses:
            raise r.issue(f"at[{i}]", f"bus {bus} is not a bus of the transmission case")
        if bus in at[:i]:
            raise r.issue(f"at[{i}]", f"bus {bus} is listed twice; use per_bus for several "
                                      "feeders at one bus")
    prefix = r.get("id", str, Path(case.split(":")[-1]).stem)
    if not prefix.strip():
        raise r.issue("id", "must not be empty")
    return _FeederSpec(case, at, r.integer("per_bus", 1, low=1),
                       r.number("scale", 1.0, positive=True),
                       r.number("substation_margin", math.inf, positive=True),
                       r.number("line_margin", math.inf, positive=True), prefix,
                       _oltc_spec(r), _capacitor_specs(r))


def _attach_feeders(system: System, r: MappingReader, base_dir: Path | None,
                    profile: str) -> None:
    """Attach copies of a feeder case at transmission buses, moving load from the bus."""
    spec = _feeder_spec(r, base_dir, set(system.grid.buses.bus_id.tolist()))
    total = len(system.feeders) + len(spec.at) * spec.per_bus
    if total > MAX_FEEDERS:
        raise r.issue("per_bus", f"{total} feeders in all; a scenario holds at most "
                                 f"{MAX_FEEDERS}")
    for i, bus in enumerate(spec.at):
        for copy in range(spec.per_bus):
            fid = f"{spec.prefix}@{bus}" + (f"#{copy + 1}" if spec.per_bus > 1 else "")
            if fid in system.feeder_ids:
                raise r.issue("id", f"feeder id '{fid}' is already used by another entry; "
                                    "give this entry its own id")
            feeder, ders = named(r, "case", feeder_from_case, spec.case, fid, bus, spec.scale,
                                 load_profile=profile)
            _move_load(system, feeder.loads, fid, r.issue, f"at[{i}]", bus)
            s_load = np.hypot(feeder.loads.p_mw, feeder.loads.q_mvar)
            if math.isfinite(spec.substation_margin):
                total = np.hypot(feeder.loads.p_mw.sum(), feeder.loads.q_mvar.sum())
                feeder.info["substation_mva"] = spec.substation_margin * float(total)
            if math.isfinite(spec.line_margin):
                flow = downstream_load(feeder, s_load.to_numpy())
                feeder.lines["rating_mva"] = np.where(feeder.lines.in_service,
                                                      spec.line_margin * np.maximum(flow, 1e-3),
                                                      feeder.lines.rating_mva)
            _add_tools(feeder, spec, r)
            system.add_feeder(feeder)
            if len(ders):
                system.ders = pd.concat([system.ders, ders], ignore_index=True)


def _add_tools(feeder: Any, spec: _FeederSpec, r: MappingReader) -> None:
    """Give a feeder its tap changer and capacitor banks (its DSO's voltage tools)."""
    for key, value in (spec.oltc or {}).items():
        feeder.info[key] = value
    if spec.oltc and not spec.oltc["oltc_v_min_pu"] <= float(feeder.info["v_root_pu"]) \
            <= spec.oltc["oltc_v_max_pu"]:
        raise r.issue("oltc", f"the band must contain the feeder's root voltage "
                              f"{float(feeder.info['v_root_pu'])} pu")
    if not spec.capacitors:
        return
    buses = feeder.buses
    if "cap_mvar" not in buses:
        buses["cap_mvar"] = 0.0
        buses["cap_steps"] = 1
    for i, (bus, mvar, steps) in enumerate(spec.capacitors):
        row = buses.index[buses.bus_id == bus]
        if not len(row):
            raise r.issue(f"capacitors[{i}].bus", f"bus {bus} is not a bus of "
                                                  f"{feeder.info['feeder_id']}")
        if bus == int(feeder.info["root_bus"]):
            raise r.issue(f"capacitors[{i}].bus", "the root bus is held by the substation; "
                                                  "place the bank downstream")
        buses.loc[row, "cap_mvar"] = mvar
        buses.loc[row, "cap_steps"] = steps


def _move_load(system: System, feeder_loads: pd.DataFrame, fid: str,
               issue: Callable[[str, str], ValidationError], key: str, bus: int) -> None:
    """Take the feeder's load off the first in-service load at ``bus`` (never below zero)."""
    loads = system.grid.loads
    total_p = float(feeder_loads.p_mw.sum())
    row = loads.index[(loads.bus_id == bus) & loads.in_service]
    have = float(loads.loc[row[0], "p_mw"]) if len(row) else 0.0
    if have < total_p - 1e-9:
        raise issue(key, f"feeder {fid} carries {total_p:.3f} MW but bus {bus} has only "
                         f"{have:.3f} MW of load left")
    loads.loc[row[0], "p_mw"] -= total_p
    loads.loc[row[0], "q_mvar"] -= float(feeder_loads.q_mvar.sum())


def _der_options(k: MappingReader, kind: str, horizon_hours: float,
                 profiles: list[str]) -> dict[str, Any]:
    """Checked options of one DER kind: share, bus_fraction and the kind's own options."""
    options = dict(DER_DEFAULTS[kind])
    k.known("share", "bus_fraction", "telemetry_min_mw", *options)
    out: dict[str, Any] = {"share": k.number("share", low=0.0),
                           "bus_fraction": k.number("bus_fraction", 0.3, high=1.0,
                                                    positive=True),
                           "telemetry_min_mw": k.number("telemetry_min_mw", 0.0, low=0.0)}
    for key, default in options.items():
        if key == "profile":
            out[key] = k.get(key, str, default)
            if out[key] and out[key] not in profiles:
                raise k.issue(key, f"unknown profile '{out[key]}'"
                                   f"{did_you_mean(out[key], profiles)}; profiles: "
                                   f"{', '.join(profiles) or 'none'}")
            continue
        low, high, positive = _DER_BOUNDS[key]
        if key == "hours" and kind == "demand_response":  # a budget of zero is allowed
            low, positive = 0.0, False
        out[key] = k.number(key, default, low=low, high=high, positive=positive)
    if kind == "ev":
        _check_ev_hours(k, out, horizon_hours)
    return out


def _check_ev_hours(k: MappingReader, o: dict[str, Any], horizon_hours: float) -> None:
    if o["arrival_hour"] >= horizon_hours:
        raise k.issue("arrival_hour", f"{o['arrival_hour']:g} h is not within the "
                                      f"{horizon_hours:g} h horizon")
    depart = o["departure_hour"]
    if depart is not None and not o["arrival_hour"] < depart <= horizon_hours:
        raise k.issue("departure_hour", f"{depart:g} h must be after arrival_hour "
                                        f"({o['arrival_hour']:g} h) and within the "
                                        f"{horizon_hours:g} h horizon")


def _place_ders(system: System, r: MappingReader, rng: np.random.Generator) -> pd.DataFrame:
    """DERs of each kind sized as a share of each feeder's peak load, on random load buses."""
    r.known(*DER_KINDS)
    hours = system.n_periods * system.profiles.period_hours
    profiles = [str(c) for c in system.profiles.series.columns]
    kinds = {kind: _der_options(r.sub(kind), kind, hours, profiles)
             for kind in DER_KINDS if kind in r.data}
    if not len(system.feeders):
        for kind, options in kinds.items():
            if options["share"] > 0:
                raise r.issue(kind, "the scenario has no feeders to place DERs on")
        return pd.DataFrame()
    peak = system.feeder_peak_load_mw()
    rows: list[pd.DataFrame] = []
    for kind, options in kinds.items():
        share, fraction = options["share"], options["bus_fraction"]
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


def _period(hour: float, period_hours: float) -> int:
    """The 0-based period that contains ``hour``."""
    return int(math.floor(hour / period_hours + 1e-9))


def _der_rows(kind: str, fid: str, buses: np.ndarray, p: np.ndarray, o: dict[str, Any],
              system: System) -> pd.DataFrame:
    ids = [f"{fid}/{kind}{b}" for b in buses]
    frame = pd.DataFrame({"der_id": ids, "kind": kind, "feeder_id": fid, "bus_id": buses,
                          "p_max_mw": p, "cost_per_mwh": o["cost_per_mwh"],
                          # units below the size that must be measured and controllable sit
                          # behind the meter without telemetry
                          "telemetry": p >= o["telemetry_min_mw"] - 1e-12})
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
        depart = o["departure_hour"]
        frame["p_max_mw"] = p * o["v2g"]  # vehicle-to-grid: a share of the charging power
        frame["p_min_mw"] = -p
        frame["energy_mwh"] = p * o["hours"]
        frame["soc_init"] = 0.2
        frame["soc_min"] = 0.0
        frame["energy_need_mwh"] = p * o["hours"] * o["need"]
        frame["arrival_period"] = _period(o["arrival_hour"], dt)
        frame["departure_period"] = -1 if depart is None else _period(depart, dt)
    elif kind == "demand_response":
        frame["energy_mwh"] = p * o["hours"]
    return conform(frame, DERS)[0]  # absent columns take their declared defaults


def _assign_dsos(system: System, top: MappingReader) -> None:
    """The ``dso`` key: each named DSO operates the feeders listed under it (feeder ids as
    built, e.g. ``case33bw@9``); a feeder not listed keeps the default, the DSO of its
    interface bus (``bus<N>``). A feeder listed twice, an unknown feeder id or a DSO
    without feeders is an error."""
    data = top.data.get("dso")
    if data is None:
        return
    if not isinstance(data, dict):
        raise top.issue("dso", "expected a mapping of DSO name to a list of feeder ids, got "
                               f"{type(data).__name__} {_short(data)}")
    r = top.sub("dso")
    known = system.feeder_ids
    owner: dict[str, str] = {}
    for name in data:
        if not isinstance(name, str) or not name.strip() or ":" in name:
            raise r.issue(str(name), "a DSO name is a non-empty text without ':'")
        feeders = r.items(name, str)
        if not feeders:
            raise r.issue(name, "lists no feeders")
        for i, fid in enumerate(feeders):
            if fid not in known:
                raise r.issue(f"{name}[{i}]", f"no feeder '{fid}' in the scenario"
                                              f"{did_you_mean(fid, known)}")
            if fid in owner:
                raise r.issue(f"{name}[{i}]", f"feeder '{fid}' is already operated by DSO "
                                              f"'{owner[fid]}'")
            owner[fid] = name
    f = system.feeders.copy()
    f["dso_id"] = [owner.get(str(fid), "") for fid in f.feeder_id]
    system.feeders = f


def _assign_aggregators(system: System, r: MappingReader) -> None:
    """One aggregator per feeder (default), ``count`` aggregators shared round-robin, or
    none (``per_feeder: false`` without ``count``: the DERs cannot bid)."""
    r.known("per_feeder", "count", "markets")
    markets = r.get("markets", str, "tso,dso")
    tokens = {t.strip() for t in markets.split(",") if t.strip()}
    if not tokens or tokens - set(MARKETS):
        raise r.issue("markets", f"'{markets}': use a comma-separated subset of "
                                 f"{', '.join(MARKETS)}")
    count = r.integer("count", None, low=1)
    per_feeder = r.get("per_feeder", bool, count is None)
    if count is not None and per_feeder:
        raise r.issue("per_feeder", "give per_feeder: true or count, not both")
    ders = system.ders
    if ders.empty or (count is None and not per_feeder):
        return
    needs = ders.aggregator_id.fillna("") == "" if "aggregator_id" in ders else pd.Series(
        True, index=ders.index)
    if count is not None:  # round-robin; aggregators without DERs are not created
        ders.loc[needs, "aggregator_id"] = [f"agg{i % count + 1}"
                                            for i in range(int(needs.sum()))]
    else:
        ders.loc[needs, "aggregator_id"] = "agg_" + ders.loc[needs, "feeder_id"].astype(str)
    used = sorted(set(ders.aggregator_id) - set(system.aggregators.get("aggregator_id", []))
                  - {""})
    new = pd.DataFrame({"aggregator_id": used, "name": used, "markets": markets})
    system.aggregators = pd.concat([system.aggregators, new], ignore_index=True)
    system.ders = ders
