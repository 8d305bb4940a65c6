"""Fuzzing every entry point: MATPOWER case files, exported folders, CLI options, price
files and the Python API. The property everywhere: a one-line error or a valid result;
never a traceback, a hang or a silent repair (an accepted input is solved as given).

The suite's size is printed at the end of the session ("fuzzing: N cases tried").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fuzzing import assert_cli_clean, error_or_result
from tsodso.cli import app
from tsodso.io import load
from tsodso.io.matpower import case_path
from tsodso.io.store import write_system
from tsodso.model.network import TransmissionGrid
from tsodso.model.system import System
from tsodso.tso import TsoOptions, clear_tso_market

runner = CliRunner()
TIGHT = str(Path(__file__).parent / "data" / "scenarios" / "tight_lines.yaml")
#: Examples per entry point: about 40 s for the whole suite on CI's 2 cores.
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------- MATPOWER files
CASE5 = case_path("matpower:case5").read_text()
NUMBER_SPANS = [m.span() for m in
                __import__("re").finditer(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?(?![\w.])", CASE5)]
BAD_TOKENS = ["Inf", "-Inf", "NaN", "2.5", "-1", "0", "1e400", "9^9^9", "2^3^2", "abc", "",
              "[", "]", ";", "'x'", "(1+", "1/0", "1e-400", "999999999999", "-0", "0x10",
              "__import__('os')", "1,2", "3 4"]
BAD_LINES = ["mpc.dcline = [1 2 1 10 10 0 0 1.01 1 10 -10 0 0 0 0 0 0];",
             "mpc.bus(:, 3) = mpc.bus(:, 3) / 0;", "x = 9^9^9;", "mpc.baseMVA = -1;",
             "system('ls')", "mpc.gen(:, 9) = [];", "mpc.bus = [];", "end", "if 1",
             "mpc.A = [1 0 0];", "mpc.bus(1, 1) = 2.5;", "mpc.gencost(1, 4) = -3;",
             "mpc.branch(1, 2) = 99;", "mpc.bus(2, 12) = 0.5;", "mpc.version = '1';"]


def _mutate_case(kind: str, index: int, token: str, line: str) -> str:
    if kind == "number":
        start, end = NUMBER_SPANS[index % len(NUMBER_SPANS)]
        return CASE5[:start] + token + CASE5[end:]
    lines = CASE5.splitlines()
    at = index % len(lines)
    if kind == "delete_line":
        return "\n".join(lines[:at] + lines[at + 1:])
    if kind == "insert_line":
        return "\n".join(lines[:at] + [line] + lines[at:])
    return CASE5[: index % len(CASE5)]  # truncate


@FUZZ
@given(kind=st.sampled_from(["number", "delete_line", "insert_line", "truncate"]),
       index=st.integers(0, 10_000), token=st.sampled_from(BAD_TOKENS) | st.text(max_size=6),
       line=st.sampled_from(BAD_LINES) | st.text(max_size=20))
def test_matpower_file_fuzz(tmp_path_factory, kind, index, token, line):
    path = tmp_path_factory.mktemp("case") / "case5_fuzz.m"
    path.write_text(_mutate_case(kind, index, token, line))
    system = error_or_result("matpower", lambda: load(str(path)))
    if system is None:
        return
    assert system.validate() == []
    # accepted: then the market clears it (or says why not, in one line)
    error_or_result("matpower", lambda: clear_tso_market(system, TsoOptions()))


# ------------------------------------------------------------------- exported folders
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    system = load("matpower:case5", n_periods=3)
    folders = {}
    for fmt in ("csv", "parquet"):
        folder = tmp_path_factory.mktemp(f"export_{fmt}")
        write_system(system, folder, fmt)
        folders[fmt] = folder
    return system, folders


def _tables(system: System) -> dict[str, pd.DataFrame]:
    return {**{k: getattr(system.grid, k) for k in TransmissionGrid.TABLES},
            **{k: getattr(system, k) for k in System.TABLES}}


MANIFEST_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**9),
                            st.floats(allow_nan=True), st.text(max_size=8),
                            st.lists(st.integers(), max_size=2),
                            st.sampled_from(["csv", "parquet", "xlsx", ".inf"]))


@FUZZ
@given(fmt=st.sampled_from(["csv", "parquet"]),
       kind=st.sampled_from(["delete", "truncate", "garbage", "manifest", "swap_format"]),
       pick=st.integers(0, 1000), data=st.binary(max_size=64), value=MANIFEST_VALUES)
def test_exported_folder_fuzz(tmp_path_factory, exported, fmt, kind, pick, data, value):
    original, folders = exported
    folder = tmp_path_factory.mktemp("folder")
    shutil.copytree(folders[fmt], folder, dirs_exist_ok=True)
    files = sorted((folder / "tables").iterdir())
    target = files[pick % len(files)]
    manifest = folder / "system.yaml"
    if kind == "delete":
        target.unlink()
    elif kind == "truncate":
        raw = target.read_bytes()
        target.write_bytes(raw[: pick % max(len(raw), 1)])
    elif kind == "garbage":
        target.write_bytes(data)
    elif kind == "swap_format":
        text = yaml.safe_load(manifest.read_text())
        text["format"] = "parquet" if fmt == "csv" else "csv"
        manifest.write_text(yaml.safe_dump(text))
    else:
        text = yaml.safe_load(manifest.read_text())
        keys = ["format", "name", "grid", "profiles", "rules", "meta", "tables"]
        text[keys[pick % len(keys)]] = value
        manifest.write_text(yaml.safe_dump(text))
    system = error_or_result("folders", lambda: load(str(folder)))
    if system is None:
        return
    # accepted: the tables are exactly what was exported (nothing dropped or repaired)
    for name, table in _tables(original).items():
        got = _tables(system)[name]
        assert len(got) == len(table), f"{kind} {target.name}: {name} silently changed"
        pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                      table.reset_index(drop=True), check_dtype=False)


# --------------------------------------------------------------------------- CLI options
PERIODS = st.one_of(st.integers(-3, 30), st.sampled_from(["100000", "1e3", "x", "", "2.5"]))
PRICES = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["nan", "inf", "-inf", "1e400", "abc", "", "-50"]))
WORDS = st.sampled_from(["", "foo", "soc", "lindist", "pjm", "eu", "pv", "load", "csv",
                         "parquet", "common", "tso_only", "not a url", "tcp://127.0.0.1:1"])


@FUZZ
@given(command=st.sampled_from(["tso-opf", "dso-opf", "pf", "hosting-capacity", "inspect",
                                "run", "export", "schema"]),
       periods=PERIODS, price=PRICES, word=WORDS,
       workers=st.none() | st.none() | st.integers(-2, 3))
def test_cli_option_fuzz(tmp_path_factory, command, periods, price, word, workers):
    args = {
        "tso-opf": ["tso-opf", "matpower:case5", "--periods", str(periods), "--rules", word],
        "dso-opf": ["dso-opf", "matpower:case33bw", "--price", price, "--periods",
                    str(periods), "--formulation", word],
        "pf": ["pf", word or "matpower:case33bw"],
        "hosting-capacity": ["hosting-capacity", "matpower:case33bw", "--kind", word],
        "inspect": ["inspect", word],
        "run": ["run", TIGHT, "--scheme", word,
                *([] if workers is None else ["--workers", str(workers)])],
        "export": ["export", "matpower:case5", str(tmp_path_factory.mktemp("out")),
                   "--format", word],
        "schema": ["schema", word],
    }[command]
    assert_cli_clean("cli", runner.invoke(app, args))


@FUZZ
@given(content=st.one_of(
    st.binary(max_size=80),
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.sampled_from(["price", "", "a,b", "1;2", "45"])), max_size=6)
    .map(lambda rows: "\n".join(rows).encode())),
    periods=st.integers(1, 4))
def test_price_file_fuzz(tmp_path_factory, content, periods):
    path = tmp_path_factory.mktemp("prices") / "prices.csv"
    path.write_bytes(content)
    result = runner.invoke(app, ["dso-opf", "matpower:case33bw", "--price-file", str(path),
                                 "--periods", str(periods), "--json"])
    assert_cli_clean("prices", result)


# ---------------------------------------------------------------------------- Python API
@FUZZ
@given(spec=st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8),
                      st.text(max_size=20), st.sampled_from(
                          ["matpower:", "pglib:", "simbench:", "matpower:nope", ":", ".m",
                           "x.yaml", "system.yaml", "default:", "default:nope"]),
                      st.lists(st.integers(), max_size=2)),
       periods=st.one_of(st.none(), st.integers(-2, 5)))
def test_python_load_fuzz(spec, periods):
    system = error_or_result("api", lambda: load(spec, n_periods=periods))
    if system is not None:
        assert system.validate() == []
        assert np.isfinite(system.grid.loads.p_mw.to_numpy(float)).all()
