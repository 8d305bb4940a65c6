"""Run folders: outcomes written and read back field by field, ``run --out`` and ``show``."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.coordination import Outcome, run_scheme
from tsodso.coordination.run_folder import (
    SIGN_CONVENTION,
    _read_dataclass,
    comparison_frame,
    comparison_rows,
    open_run,
    read_outcome,
    write_outcome,
    write_run,
)
from tsodso.errors import SolveError, TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path
from tsodso.shortfalls import Shortfalls

runner = CliRunner()


@pytest.fixture(scope="module")
def small():
    """The default recipe cut to two feeders with high PV (tso_only overloads lines)."""
    recipe = yaml.safe_load(scenario_path("default").read_text())
    recipe["feeders"] = [dict(recipe["feeders"][0], at=[9, 14])]
    return build_scenario(recipe)


@pytest.fixture(scope="module")
def outcomes(small):
    return {name: run_scheme(small, name) for name in ("tso_only", "common")}


def _assert_same(a, b, where="outcome"):
    """Equal values: frames by assert_frame_equal, NaN equal to NaN, types kept."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, obj=where)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
        assert a.dtype == b.dtype, where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:  # numpy scalars are read back as the Python numbers they equal
        same_type = type(a) is type(b) or isinstance(a, np.generic) and type(b) is type(
            a.item())
        assert a == b and same_type, f"{where}: {a!r} != {b!r}"


def test_every_outcome_field_reads_back_equal(outcomes, tmp_path):
    assert len(outcomes["tso_only"].violations) > 0  # a non-empty violations table
    for name, o in outcomes.items():
        back = read_outcome(write_outcome(o, tmp_path / name))
        assert isinstance(back, Outcome)
        for f in dataclasses.fields(Outcome):
            _assert_same(getattr(o, f.name), getattr(back, f.name), f"{name}.{f.name}")
        assert back.to_frame().equals(o.to_frame())


def test_odd_keys_nested_tables_and_special_values(outcomes, tmp_path):
    """Keys with '/', '@', dots and case-only differences; nested dicts of frames, series,
    arrays, NaN and tuples: every kind of value a field may hold."""

    @dataclasses.dataclass
    class Extended(Outcome):
        parts: dict = dataclasses.field(default_factory=dict)
        series: pd.Series = dataclasses.field(default_factory=pd.Series)
        array: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
        mixed: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
        extra: dict = dataclasses.field(default_factory=dict)

    o = outcomes["common"]
    frame = next(iter(o.dlmp.values()))
    keys = ["a/b", "x@1", "A", "a", "..", "", "keys", "with space:colon"]
    parts = {k: {"energy": frame * 2, "loss/congestion": frame.iloc[:3]} for k in keys}
    multi = pd.DataFrame(np.arange(6.0).reshape(3, 2),
                         index=pd.MultiIndex.from_tuples([(1, "x"), (1, "y"), (2, "x")],
                                                         names=["period", "bus"]),
                         columns=pd.MultiIndex.from_tuples([("p", 1), ("q", 1)]))
    parts["a"]["multi"] = multi
    ext = Extended(**{f.name: getattr(o, f.name) for f in dataclasses.fields(Outcome)},
                   parts=parts,
                   series=pd.Series([1.0, np.nan], index=pd.Index([7, 8], name="bus"),
                                    name="v"),
                   array=np.arange(6, dtype=np.int32).reshape(2, 3),
                   mixed=pd.DataFrame({"id": [1, "a", None], 3: [1.0, np.inf, np.nan],
                                       "period": [0, 1, 2]}).set_index("period"),
                   extra={"nan": np.nan, "inf": -np.inf, 3: (1, 2), "$x": [np.float64(1.5)]})
    ext.shortfalls = Shortfalls(ac_voltage_error_pu=float("nan"), notes=["n"], shed_mwh=1.0)
    back = _read_dataclass(Extended, write_outcome(ext, tmp_path / "ext"))
    for f in dataclasses.fields(Extended):
        _assert_same(getattr(ext, f.name), getattr(back, f.name), f.name)
    names = {p.name for p in (tmp_path / "ext" / "parts").iterdir()}
    assert "x@1" in names and len(names) == len(keys) + 1  # + keys.json


def test_run_folder_round_trip_and_comparison(small, outcomes, tmp_path):
    failed = SolveError("fixed interface schedule is infeasible", "infeasible")
    mixed = {**outcomes, "shared_balancing": failed}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.sqlite").write_bytes(b"not ours")
    folder = write_run(tmp_path / "run", small, mixed, {"schemes": list(mixed)}, "small")
    assert (folder / "log.sqlite").read_bytes() == b"not ours"  # left alone
    info = json.loads((folder / "run.json").read_text())
    assert info["schemes"] == list(mixed) and info["log"] is True
    assert info["status"] == {"tso_only": outcomes["tso_only"].status,
                              "common": outcomes["common"].status,
                              "shared_balancing": "infeasible"}
    run = open_run(folder)
    assert list(run.outcomes) == list(mixed)
    err = run.outcomes["shared_balancing"]
    assert isinstance(err, SolveError) and err.status == "infeasible"
    assert str(err) == str(failed)
    pd.testing.assert_frame_equal(run.comparison(), comparison_frame(mixed))
    assert run.comparison().loc["common", "gap_to_common_pct"] == 0.0
    assert run.rows() == comparison_rows(mixed, "small", small.description)
    assert run.log_path == folder / "log.sqlite"
    assert run.options == {"schemes": list(mixed)}
    assert run.system.summary() == small.summary()


def test_money_flows_in_the_rows(outcomes):
    rows = comparison_rows(outcomes, "small", "")
    assert rows["sign_convention"] == SIGN_CONVENTION
    for name, o in outcomes.items():
        money = rows["schemes"][name]["money"]
        assert money["consumer_payments"] == o.consumer_payments > 0
        assert money["generator_revenues"] == o.generator_revenues > 0
        assert money["dso_costs"] == o.dso_costs and money["rents"] == o.rents
        assert money["der_revenues"] == o.der_revenues and money["tso_cost"] == o.tso_cost
        paid = money["generator_revenues"] + sum(money["der_revenues"].values()) + sum(
            money["rents"].values())
        assert money["consumer_payments"] == pytest.approx(paid, rel=1e-6)
    failed = comparison_rows({"x": SolveError("no", "infeasible")}, "s", "")
    assert failed["schemes"]["x"]["money"] is None


def test_run_out_then_show_gives_the_same_output(tmp_path):
    out = tmp_path / "run"
    args = ["run", "default", "--scheme", "tso_only", "--scheme", "common", "--out", str(out)]
    ran = runner.invoke(app, [*args, "--json"])
    assert ran.exit_code == 0, ran.output
    shown = runner.invoke(app, ["show", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    live, stored = json.loads(ran.stdout), json.loads(shown.stdout)
    assert stored == live  # wall times included: they are stored
    assert list(live["schemes"]) == ["tso_only", "common"]
    assert live["schemes"]["common"]["money"]["consumer_payments"] > 0
    assert f"run folder: {out}" in ran.stderr
    # the table as run printed it (run prints the folder last)
    text = runner.invoke(app, ["show", str(out)])
    assert text.exit_code == 0, text.output
    assert "coordination schemes" in text.stdout and "tso_only" in text.stdout
    # replacing the run needs --force; the old run is gone, nothing else touched
    (out / "mine.txt").write_text("keep")
    refused = runner.invoke(app, [*args, "--json"])
    assert refused.exit_code == 1 and "not empty" in refused.output
    forced = runner.invoke(app, ["run", "default", "--scheme", "tso_only", "--out", str(out),
                                 "--force"])
    assert forced.exit_code == 0, forced.output
    assert f"run folder: {out}" in forced.stdout
    assert list(open_run(out).outcomes) == ["tso_only"]
    assert (out / "mine.txt").read_text() == "keep"
    again = runner.invoke(app, ["show", str(out)])
    assert again.stdout == forced.stdout.replace(f"run folder: {out}\n", "")


def test_out_into_a_non_empty_folder_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["run", "default", "--scheme", "common", "--out",
                                 str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output and "--force" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    # bad options are refused before the folder is touched too
    result = runner.invoke(app, ["run", "--scheme", "magic", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def stored(outcomes, small, tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("stored") / "run", small, outcomes, {}, "small")


def _copy(stored, tmp_path):
    return shutil.copytree(stored, tmp_path / "run")


def test_bad_folders_are_clear_errors(stored, tmp_path):
    with pytest.raises(TsodsoError, match="no such run folder"):
        open_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TsodsoError, match=r"empty: not a run folder \(no run.json\)"):
        open_run(tmp_path / "empty")
    folder = _copy(stored, tmp_path)
    (folder / "run.json").write_text("{not json")
    with pytest.raises(TsodsoError, match=r"run.json: cannot read run manifest"):
        open_run(folder)
    (folder / "run.json").write_text("[1, 2]")
    with pytest.raises(TsodsoError, match=r"run.json: run manifest is not a JSON object"):
        open_run(folder)
    (folder / "run.json").write_text(json.dumps({"format": "other", "scenario": "s",
                                                 "schemes": [], "folders": {}}))
    with pytest.raises(TsodsoError, match="not a tsodso run"):
        open_run(folder)


def test_missing_or_corrupt_tables_are_named(stored, tmp_path):
    folder = _copy(stored, tmp_path)
    (folder / "schemes" / "common" / "interface_lmp.parquet").unlink()
    with pytest.raises(TsodsoError, match=r"common/interface_lmp.parquet: missing table"):
        open_run(folder)
    (folder / "schemes" / "common" / "interface_lmp.parquet").write_bytes(b"garbage")
    with pytest.raises(TsodsoError, match=r"interface_lmp.parquet: cannot read the table"):
        open_run(folder)
    shutil.copy(stored / "schemes" / "common" / "interface_lmp.parquet",
                folder / "schemes" / "common" / "interface_lmp.parquet")
    (folder / "schemes" / "common" / "dlmp" / "keys.json").unlink()
    with pytest.raises(TsodsoError, match=r"common/dlmp/keys.json: missing \(key map\)"):
        open_run(folder)
    shutil.rmtree(folder / "schemes" / "tso_only")
    with pytest.raises(TsodsoError, match=r"schemes/tso_only: missing"):
        open_run(folder)


def test_missing_outcome_manifest_and_field(stored, tmp_path):
    folder = _copy(stored, tmp_path) / "schemes" / "common"
    data = json.loads((folder / "outcome.json").read_text())
    del data["fields"]["total_cost"]
    (folder / "outcome.json").write_text(json.dumps(data))
    with pytest.raises(TsodsoError, match=r"outcome.json: the outcome lacks field "
                                          r"'total_cost'"):
        read_outcome(folder)
    (folder / "dlmp" / "keys.json").unlink()
    (folder / "outcome.json").unlink()
    with pytest.raises(TsodsoError, match=r"common/outcome.json: missing"):
        read_outcome(folder)


def test_show_reports_a_bad_folder_in_one_line(tmp_path):
    result = runner.invoke(app, ["show", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "no run.json" in result.output
