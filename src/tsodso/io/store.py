"""Write a :class:`System` to a folder (``system.yaml`` + one table file each) and read it back.

The folder is self-describing::

    system.yaml              format (csv | parquet), name, description,
                             grid {name, base_mva, notes}, profiles {period_hours, n_periods},
                             rules, meta, tables (the tables written, one name each)
    tables/<table>.csv       or tables/<table>.parquet, one per table listed under tables:

Writing writes every table, empty ones included (a header-only CSV, a zero-row Parquet file),
and lists them all under ``tables:``. Reading gives identical tables, for both formats;
profiles are read as float64. The ``profiles`` table holds a leading ``period`` column
(0 .. n_periods - 1) and one column per profile, so ``period`` cannot name a profile.

Required and optional tables. ``buses, branches, generators, loads, feeders, feeder_buses,
feeder_lines, feeder_loads, ders`` (:data:`REQUIRED_TABLES`) must always be listed and
present, even when empty: leaving one out would drop equipment or load silently.
``gen_cost_points, der_bids, aggregators, profiles`` (:data:`OPTIONAL_TABLES`) may be left
out of a hand-written manifest, which then means none (polynomial costs only, DERs offer at
their ``cost_per_mwh``, no aggregators, no profiles); whatever refers to them is still
validated (piecewise-linear costs need points, aggregator ids and profile names must exist).
A table listed under ``tables:`` must exist, and every table file in ``tables/`` must be
listed.

Reading refuses, with a one-line :class:`~tsodso.errors.TsodsoError` naming the file, the
manifest key or the table, column and row:

- a manifest that is not UTF-8 YAML, is empty or not a mapping, has unknown keys (with a
  suggestion), misses ``format``, ``grid.base_mva``, ``profiles.period_hours``,
  ``profiles.n_periods`` or ``tables``, or has values of the wrong type or out of bounds
  (``base_mva`` and ``period_hours`` finite and > 0, ``n_periods`` an integer in
  1 .. :data:`~tsodso.io.scenario.MAX_PERIODS`, rules as in scenarios);
- a format other than csv or parquet, a listed table whose file is missing (e.g.
  ``format: parquet`` over CSV files), an unlisted or unknown table file;
- table files that cannot be parsed (corrupt Parquet, CSV rows with too many or too few
  fields, not UTF-8, empty), empty, duplicate or unknown column names, Parquet columns of
  types other than numbers, booleans and text, a profiles table whose ``period`` column is
  not 0 .. n_periods - 1 or with text in a profile;
- then everything :meth:`System.check` refuses (text in numeric columns, NaN where not
  allowed, values out of bounds, missing required columns, duplicate ids, references).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from tsodso.errors import Issue, ParseError, TsodsoError, ValidationError, first_line
from tsodso.io.scenario import (
    MAX_PERIODS,
    MappingReader,
    as_path,
    did_you_mean,
    read_rules,
    read_yaml,
)
from tsodso.model.network import TransmissionGrid
from tsodso.model.profiles import Profiles
from tsodso.model.schema import TableSchema, as_numbers
from tsodso.model.system import System
from tsodso.model.tables import ALL_SCHEMAS
from tsodso.rules import MarketRules

Format = Literal["csv", "parquet"]
FORMATS = ("csv", "parquet")
MANIFEST = "system.yaml"
PERIOD = "period"
TABLES = (*TransmissionGrid.TABLES, *System.TABLES, "profiles")
REQUIRED_TABLES = ("buses", "branches", "generators", "loads", "feeders", "feeder_buses",
                   "feeder_lines", "feeder_loads", "ders")
OPTIONAL_TABLES = ("gen_cost_points", "der_bids", "aggregators", "profiles")
_MANIFEST_KEYS = ("format", "name", "description", "grid", "profiles", "rules", "meta",
                  "tables")
_NA = ["", "NaN", "nan"]


def _arrow_errors() -> tuple[type[BaseException], ...]:
    import pyarrow as pa

    return (pa.ArrowException, OSError, ValueError, TypeError)


# ------------------------------------------------------------------------------ writing
def _plain(value: Any) -> Any:
    """Make numpy scalars and tuples YAML-safe (YAML writes infinities as .inf itself)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _profiles_table(profiles: Profiles) -> pd.DataFrame:
    """The profile series with a leading ``period`` column (0 .. n - 1)."""
    series = profiles.series
    names = [str(c) for c in series.columns]
    if PERIOD in names:
        raise TsodsoError(f"profiles.series[{PERIOD}]: '{PERIOD}' names the period column of "
                          "exported profiles; rename that profile")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise TsodsoError(f"profiles.series[{dup}]: duplicate profile name")
    frame = series.reset_index(drop=True).set_axis(names, axis=1)
    n = len(frame) if names else int(profiles.n_periods)
    return pd.concat([pd.DataFrame({PERIOD: np.arange(n, dtype=np.int64)}), frame], axis=1)


def _tables_of(system: System) -> dict[str, pd.DataFrame]:
    tables = {k: getattr(system.grid, k) for k in TransmissionGrid.TABLES}
    tables.update({k: getattr(system, k) for k in System.TABLES})
    tables["profiles"] = _profiles_table(system.profiles)
    return tables


def _write_table(table: pd.DataFrame, path: Path, fmt: str) -> None:
    try:
        if fmt == "csv":
            table.to_csv(path, index=False, float_format="%.17g")
        else:
            table.to_parquet(path, index=False, write_page_checksum=True)
    except OSError as err:
        raise TsodsoError(f"{path}: cannot write ({err.strerror or first_line(err)})"
                          ) from None
    except _arrow_errors() as err:
        raise TsodsoError(f"{path}: cannot write table {path.stem} ({first_line(err)})"
                          ) from None


def _manifest(system: System, fmt: str, tables: list[str]) -> str:
    manifest = {
        "format": fmt,
        "name": str(system.name),
        "description": str(system.description),
        "grid": {"name": str(system.grid.name), "base_mva": system.grid.base_mva,
                 "notes": [str(n) for n in system.grid.notes]},
        "profiles": {"period_hours": system.profiles.period_hours,
                     "n_periods": system.profiles.n_periods},
        "rules": system.rules.to_dict(),
        "meta": system.meta,
        "tables": tables,
    }
    try:
        return yaml.safe_dump(_plain(manifest), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as err:
        raise TsodsoError(f"{MANIFEST}: meta or rules hold a value YAML cannot write "
                          f"({first_line(err)})") from None


def write_system(system: System, folder: str | os.PathLike[str],
                 fmt: Format = "parquet") -> Path:
    """Write ``system`` into ``folder`` (created if needed); returns the manifest's path.

    Every table is written, empty ones included, and listed in the manifest.

    Raises
    ------
    TsodsoError
        Unknown format, a folder that cannot be written, a profile named ``period``, or
        ``meta`` holding values that are not plain data.
    """
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise TsodsoError(f"unknown table format {fmt!r}: use csv or parquet")
    folder = as_path(folder, "output folder")
    tables = _tables_of(system)
    text = _manifest(system, fmt, list(tables))
    try:
        (folder / "tables").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TsodsoError(f"{folder}: cannot create the folder ({err.strerror or err})"
                          ) from None
    for name, table in tables.items():
        _write_table(table, folder / "tables" / f"{name}.{fmt}", fmt)
    path = folder / MANIFEST
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise TsodsoError(f"{path}: cannot write ({err.strerror or err})") from None
    return path


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class _Manifest:
    """The checked contents of ``system.yaml``."""

    path: Path
    fmt: str
    name: str
    description: str
    grid: TransmissionGrid
    period_hours: float
    n_periods: int
    rules: MarketRules
    meta: dict[str, Any]
    tables: list[str]

    @property
    def folder(self) -> Path:
        return self.path.parent / "tables"


def _manifest_path(folder: Any) -> Path:
    path = as_path(folder, "system folder")
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise ParseError(f"{path}: not a tsodso system folder (no {MANIFEST})")
        return path / MANIFEST
    if not path.is_file():
        raise ParseError(f"{path}: no such system folder or manifest")
    return path


def _parse_manifest(data: Any, path: Path) -> _Manifest:
    r = MappingReader(data, "", "manifest", str(path))
    r.known(*_MANIFEST_KEYS)
    fmt = r.get("format", str)
    if fmt not in FORMATS:
        raise r.issue("format", f"unknown format '{fmt}'{did_you_mean(fmt, FORMATS)}; "
                                "use csv or parquet")
    g = r.sub("grid")
    g.known("name", "base_mva", "notes")
    grid = TransmissionGrid(name=g.get("name", str, ""),
                            base_mva=g.number("base_mva", positive=True),
                            notes=list(g.items("notes", str, [])))
    p = r.sub("profiles")
    p.known("period_hours", "n_periods")
    period_hours = p.number("period_hours", positive=True)
    n_periods = p.integer("n_periods", low=1, high=MAX_PERIODS)
    meta = r.get("meta", dict, {})
    for key in meta:
        if not isinstance(key, str):
            raise r.issue(f"meta.{key}", "keys must be text")
    return _Manifest(path, fmt, r.get("name", str, ""), r.get("description", str, ""), grid,
                     period_hours, n_periods, read_rules(r, "rules"), dict(meta),
                     _listed_tables(r))


def _listed_tables(r: MappingReader) -> list[str]:
    names = r.items("tables", str)
    for i, name in enumerate(names):
        if name not in TABLES:
            raise r.issue(f"tables[{i}]", f"unknown table '{name}'{did_you_mean(name, TABLES)}")
        if name in names[:i]:
            raise r.issue(f"tables[{i}]", f"table '{name}' is listed twice")
    missing = [t for t in REQUIRED_TABLES if t not in names]
    if missing:
        raise r.issue("tables", f"required table(s) not listed: {', '.join(missing)} "
                                "(write them even when empty)")
    return names


def _check_files(m: _Manifest) -> None:
    """Every listed table has its file and every table file is listed."""
    base = m.folder
    present = {p.stem: p for p in base.glob(f"*.{m.fmt}")
               if p.is_file() and not p.name.startswith(".")} if base.is_dir() else {}
    absent = [name for name in m.tables if name not in present]
    if absent:
        missing = [f"{name}.{m.fmt}" for name in absent]
        others = sorted(p.name for name in absent for p in base.glob(f"{name}.*")
                        ) if base.is_dir() else []
        hint = (f"; found {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}: does "
                f"format '{m.fmt}' match the files?") if others else ""
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                          else "")
        raise ParseError(f"{base}: missing table file(s) {shown}, listed under tables: in "
                         f"{m.path}{hint}")
    for stem, file in sorted(present.items()):
        if stem not in m.tables:
            raise ParseError(f"{file}: table file not listed under tables: in {m.path}"
                             f"{did_you_mean(stem, m.tables)}")


def _check_columns(names: list[Any], table: str, allowed: list[str] | None,
                   path: Path) -> None:
    """Refuse empty, duplicate and (when ``allowed`` is given) unknown column names."""
    issues: list[Issue] = []
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            issues.append(Issue(table, "", "", f"column {i + 1} has no name in {path}"))
        elif name in names[:i]:
            issues.append(Issue(table, name, "", f"duplicate column in {path}"))
        elif allowed is not None and name not in allowed:
            issues.append(Issue(table, name, "", f"unknown column{did_you_mean(name, allowed)} "
                                                 f"in {path} (see `tsodso schema {table}`)"))
    if issues:
        raise ValidationError(issues)


def _csv_text(path: Path) -> tuple[str, list[str]]:
    """The text of a CSV file and its header; every row must have the header's width."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise ParseError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ParseError(f"{path}: not UTF-8 text (bad byte at offset {err.start})") from None
    if "\0" in text:
        raise ParseError(f"{path}: not a CSV text file (it holds NUL bytes)")
    header: list[str] | None = None
    try:
        rows = csv.reader(io.StringIO(text), strict=True)
        for row in rows:
            if not row:
                continue
            if header is None:
                header = row
            elif len(row) != len(header):
                raise ParseError(f"{path}: line {rows.line_num} has {len(row)} fields, the "
                                 f"header has {len(header)}")
    except csv.Error as err:
        raise ParseError(f"{path}: not valid CSV ({first_line(err)})") from None
    if header is None:
        raise ParseError(f"{path}: empty file (expected a header row with the column names)")
    return text, header


def _read_csv(path: Path, schema: TableSchema | None) -> pd.DataFrame:
    """A CSV table; text columns stay text ('' is a value), numbers round-trip exactly."""
    text, header = _csv_text(path)
    _check_columns(header, schema.name if schema else "profiles",
                   schema.names if schema else None, path)
    if schema is None:  # profiles: all numeric
        dtype: dict[str, Any] = {}
        na: Any = _NA
    else:
        dtype = {c.name: str for c in schema.columns if c.dtype == "str" and c.name in header}
        na = {c.name: _NA for c in schema.columns if c.dtype != "str" and c.name in header}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(io.StringIO(text), index_col=False, keep_default_na=False,
                               dtype=dtype, na_values=na, float_precision="round_trip")
    except (ValueError, pd.errors.ParserWarning) as err:
        raise ParseError(f"{path}: not valid CSV ({first_line(err)})") from None


def _parquet_type_ok(arrow_type: Any, numeric_only: bool) -> bool:
    import pyarrow as pa

    t = pa.types
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_null(arrow_type):
        return True
    return not numeric_only and (t.is_boolean(arrow_type) or t.is_string(arrow_type)
                                 or t.is_large_string(arrow_type))


def _read_parquet(path: Path, schema: TableSchema | None) -> pd.DataFrame:
    """A Parquet table whose columns hold numbers, booleans or text (numbers for profiles)."""
    import pyarrow.parquet as pq

    try:
        data = pq.ParquetFile(path, page_checksum_verification=True).read()
    except _arrow_errors() as err:
        raise ParseError(f"{path}: not a readable Parquet file ({first_line(err)})") from None
    table = schema.name if schema else "profiles"
    names = [n for n in data.column_names if not n.startswith("__index_level_")]
    _check_columns(names, table, schema.names if schema else None, path)
    wrong = [Issue(table, f.name, "", f"unsupported Parquet type {f.type} in {path}")
             for f in data.schema if f.name in names and not _parquet_type_ok(f.type,
                                                                              schema is None)]
    if wrong:
        raise ValidationError(wrong)
    try:
        # pandas' metadata is not needed (types are checked above) and not trusted: a
        # damaged one raises KeyError deep inside pyarrow's conversion
        return data.select(names).replace_schema_metadata(None).to_pandas()
    except (*_arrow_errors(), KeyError) as err:
        raise ParseError(f"{path}: cannot convert the Parquet table ({first_line(err)})"
                         ) from None


def _profile_series(frame: pd.DataFrame, n_periods: int, path: Path) -> pd.DataFrame:
    """Check the ``period`` column and that every profile holds numbers; float64 series."""
    if PERIOD not in frame.columns:
        raise ValidationError([Issue("profiles", PERIOD, "", f"required column is missing in "
                                                             f"{path}")])
    periods = as_numbers(frame[PERIOD]).to_numpy(dtype=float)
    if len(periods) != n_periods:
        raise ValidationError([Issue("profiles", PERIOD, "", f"{len(periods)} rows in {path}, "
                                     f"but manifest profiles.n_periods is {n_periods}")])
    wrong = np.flatnonzero(periods != np.arange(n_periods))
    if wrong.size:
        k = int(wrong[0])
        raise ValidationError([Issue("profiles", PERIOD, f"row {k}", f"expected period {k} "
                                     f"(0 .. {n_periods - 1} in order) in {path}")])
    series = frame.drop(columns=PERIOD)
    out = {}
    for name in series.columns:
        column = series[name]
        values = as_numbers(column)
        bad = np.flatnonzero((values.isna().to_numpy() & column.notna().to_numpy())
                             | (column.dtype == bool))
        if bad.size:
            raise ValidationError([Issue("profiles", str(name), f"period {int(bad[0])}",
                                         f"expected a number, got {column.iloc[bad[0]]!r} in "
                                         f"{path}")])
        out[str(name)] = values
    return pd.DataFrame(out, index=pd.RangeIndex(n_periods), columns=list(out))


def _read_tables(m: _Manifest) -> dict[str, pd.DataFrame]:
    """Every listed table as read (optional tables that are not listed are absent)."""
    read = _read_csv if m.fmt == "csv" else _read_parquet
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        if name not in m.tables:
            continue
        path = m.folder / f"{name}.{m.fmt}"
        if name == "profiles":
            out[name] = _profile_series(read(path, None), m.n_periods, path)
        else:
            out[name] = read(path, ALL_SCHEMAS[name])
    return out


def read_system(folder: str | os.PathLike[str]) -> System:
    """Read a folder (or its ``system.yaml``) written by :func:`write_system`; validate it.

    Raises
    ------
    ParseError
        Unreadable manifest or table file, missing or unlisted table files.
    ValidationError
        Bad manifest values (field ``manifest.<key>``) or table contents (table, column, id).
    """
    path = _manifest_path(folder)
    m = _parse_manifest(read_yaml(path, "system manifest"), path)
    _check_files(m)
    tables = _read_tables(m)
    for name in TransmissionGrid.TABLES:
        if name in tables:
            setattr(m.grid, name, tables[name])
    series = tables.get("profiles", pd.DataFrame(index=pd.RangeIndex(m.n_periods)))
    system = System(name=m.name, description=m.description, grid=m.grid,
                    profiles=Profiles(m.period_hours, m.n_periods, series), rules=m.rules,
                    meta=m.meta)
    for name in System.TABLES:
        if name in tables:
            setattr(system, name, tables[name])
    return system.check()

