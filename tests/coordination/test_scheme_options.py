"""``run --set SCHEME.OPTION=VALUE``, ``tsodso schemes`` and the run's message log in
``run --out``."""

from __future__ import annotations

import functools
import inspect
import json

import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.coordination import SCHEMES, VISIBILITY
from tsodso.coordination.run_folder import open_run
from tsodso.scenarios import scenario_path

runner = CliRunner()


@pytest.fixture(scope="module")
def small_yaml(tmp_path_factory):
    """The default recipe cut to one feeder and 3 periods (no EVs: they arrive at 17 h)."""
    recipe = yaml.safe_load(scenario_path("default").read_text())
    recipe["name"] = "small"
    recipe["feeders"] = [dict(recipe["feeders"][0], at=[9])]
    recipe["horizon"]["periods"] = 3
    recipe["ders"].pop("ev")
    path = tmp_path_factory.mktemp("scenario") / "small.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


# ------------------------------------------------------------------------- --set errors
@pytest.mark.parametrize(("sets", "expected"), [
    (["admm.rho"], "expected SCHEME.OPTION=VALUE"),
    (["rho=10"], "expected SCHEME.OPTION=VALUE"),
    (["magic.rho=1"], "unknown scheme 'magic'"),
    (["admm.rho=10"], "scheme 'admm' is not run; add --scheme admm"),
    (["hierarchical.rho=1"], "has no option 'rho'; its options: max_iterations, damping, "
                             "tol_price, tol_mw"),
    (["hierarchical.bus=x"], "not settable from the command line"),
    (["centralized.forecast=x"], "not settable from the command line"),
    (["hierarchical.max_iterations=1.5"], "'1.5' is not an integer"),
    (["hierarchical.max_iterations=0"], "max_iterations must be >= 1"),
    (["hierarchical.damping=fast"], "'fast' is not a number"),
    (["hierarchical.damping=2"], "damping must be"),
    (["common.tighten=maybe"], "'maybe' is not true or false"),
    (["local.levels=0.5,,2"], "'0.5,,2' is not comma-separated numbers"),
    (["local.levels=0.5,-1"], "levels entry must be > 0"),
    (["centralized.margin=nan"], "finite"),
    (["hierarchical.damping=0.3", "hierarchical.damping=0.4"], "given twice"),
])
def test_bad_set_is_one_line_before_anything_runs(tmp_path, sets, expected):
    args = ["run", "default", "--out", str(tmp_path / "x")]
    for name in ("hierarchical", "common", "local", "centralized"):
        args += ["--scheme", name]
    for item in sets:
        args += ["--set", item]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert result.output.startswith("error: --set") and result.output.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("option", ["executor", "keep_solvers", "bus"])
def test_admm_objects_are_not_set_from_the_command_line(option):
    result = runner.invoke(app, ["run", "--scheme", "admm", "--set", f"admm.{option}=1"])
    assert result.exit_code == 1
    assert "not settable from the command line" in result.output
    assert "its options: rho, max_iterations, tol_mw" in result.output


def test_compare_takes_set_and_checks_it_first():
    result = runner.invoke(app, ["compare", "default", "low-penetration", "--scheme", "local",
                                 "--set", "hierarchical.max_iterations=1"])
    assert result.exit_code == 1
    assert "scheme 'hierarchical' is not run" in result.output


def test_set_values_reach_the_schemes(small_yaml, monkeypatch):
    seen = {}
    original = SCHEMES["local"]

    @functools.wraps(original)
    def local(system, **options):
        seen.update(options)
        return original(system, **options)

    monkeypatch.setitem(SCHEMES, "local", local)
    result = runner.invoke(app, ["compare", small_yaml, "--scheme", "hierarchical",
                                 "--scheme", "local", "--set", "hierarchical.max_iterations=1",
                                 "--set", "local.levels=0.5, 2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)[0]["schemes"]
    assert rows["hierarchical"]["iterations"] == 1
    assert rows["hierarchical"]["status"] == "not converged"
    assert seen == {"levels": (0.5, 2.0)}  # typed: a tuple of floats


# ---------------------------------------------------------------- run --out with --set
@pytest.fixture(scope="module")
def run_dir(small_yaml, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    result = runner.invoke(app, ["run", small_yaml, "--scheme", "tso_only", "--scheme", "local",
                                 "--scheme", "hierarchical",
                                 "--set", "hierarchical.max_iterations=1",
                                 "--set", "local.levels=0.5,0.8,1.25,2", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_one_iteration_of_hierarchical_is_not_converged(run_dir):
    out, rows = run_dir
    row = rows["schemes"]["hierarchical"]
    assert row["iterations"] == 1 and row["status"] == "not converged"
    assert any("did not converge in 1 iterations" in n for n in row["notes"])
    stored = open_run(out).outcomes["hierarchical"]
    assert stored.iterations == 1 and stored.status == "not converged"


def test_run_json_records_the_scheme_options(run_dir):
    out, _ = run_dir
    options = open_run(out).options
    assert options["scheme_options"] == {"hierarchical": {"max_iterations": 1},
                                         "local": {"levels": (0.5, 0.8, 1.25, 2.0)}}
    assert options["schemes"] == ["tso_only", "local", "hierarchical"]
    assert json.loads((out / "run.json").read_text())["log"] is True


def test_the_run_folder_logs_every_message_of_every_scheme(run_dir):
    out, rows = run_dir
    result = runner.invoke(app, ["log", str(out), "--json"])
    assert result.exit_code == 0, result.output
    messages = json.loads(result.stdout)["messages"]
    run = open_run(out)
    per_scheme: dict[str, int] = {}
    for m in messages:
        per_scheme[m["scheme"]] = per_scheme.get(m["scheme"], 0) + 1
    assert set(per_scheme) == {"tso_only", "local", "hierarchical"}
    for name, outcome in run.outcomes.items():
        assert per_scheme[name] == int(outcome.messages["count"].sum()) > 0, name
        assert per_scheme[name] == rows["schemes"][name]["messages"]
        kinds = {m["kind"] for m in messages if m["scheme"] == name}
        assert kinds <= set(VISIBILITY[name]["messages"]), name
    assert {m["run_id"] for m in messages} == {"small"}
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert not list(out.glob("log.sqlite-*"))  # closed: no WAL files left behind
    filtered = runner.invoke(app, ["log", str(out), "--scheme", "local", "--json"])
    assert len(json.loads(filtered.stdout)["messages"]) == per_scheme["local"]


def test_run_without_out_writes_no_log(small_yaml, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", small_yaml, "--scheme", "tso_only", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schemes"]["tso_only"]["messages"] > 0
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- tsodso schemes
def test_schemes_json_lists_all_seven_with_options_and_visibility():
    result = runner.invoke(app, ["schemes", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert list(found) == list(SCHEMES)
    for name, info in found.items():
        assert info["description"] and "\n" not in info["description"]
        assert info["description"].endswith(".")
        assert {k: info[k] for k in ("tso_sees", "dso_sees", "messages")} == VISIBILITY[name]
        params = inspect.signature(SCHEMES[name]).parameters
        assert [o["name"] for o in info["options"]] == list(params)[1:]
        for o in info["options"]:
            default = params[o["name"]].default
            assert o["default"] == (list(default) if isinstance(default, tuple) else default)
            assert o["settable"] == (o["name"] not in {"executor", "keep_solvers", "bus",
                                                       "forecast"})
    admm = {o["name"]: o for o in found["admm"]["options"]}
    assert admm["rho"]["type"] == "float" and admm["max_iterations"]["type"] == "int"
    local = {o["name"]: o for o in found["local"]["options"]}
    assert local["levels"]["type"] == "tuple[float, ...]"
    assert found["common"]["options"][0] == {"name": "tighten", "default": True,
                                              "type": "bool", "settable": True, "note": None}


def test_schemes_table():
    result = runner.invoke(app, ["schemes"])
    assert result.exit_code == 0, result.output
    for name in SCHEMES:
        assert name in result.stdout
    assert "max_iterations=40 (int)" in result.stdout
    assert "levels=0.5,0.8,1.25,2 (tuple[float, ...])" in result.stdout
    assert "TSO sees:" in result.stdout and "messages: interface_schedule" in result.stdout
