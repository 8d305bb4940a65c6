"""``tsodso run``: the main job."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tsodso.cli import app

runner = CliRunner()


def test_run_json_fields_on_the_builtin_scenario():
    result = runner.invoke(app, ["run", "--scheme", "common", "--scheme", "tso_only",
                                 "--scheme", "centralized", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["scenario"] == "default"
    for name in ("common", "tso_only", "centralized"):
        row = out["schemes"][name]
        for key in ("status", "total_cost", "gap_to_common_pct", "violations", "iterations",
                    "messages", "wall_s"):
            assert key in row
        assert set(row["violations"]) >= {"voltage", "thermal", "worst_voltage_pu"}
    assert out["schemes"]["common"]["gap_to_common_pct"] == 0.0
    assert out["schemes"]["tso_only"]["gap_to_common_pct"] > 0
    assert out["schemes"]["tso_only"]["violations"]["thermal"] > 0
    assert out["schemes"]["centralized"]["violations"]["thermal"] == 0


def test_unknown_scheme_is_one_clear_error():
    result = runner.invoke(app, ["run", "--scheme", "magic"])
    assert result.exit_code == 1
    assert "unknown scheme 'magic'" in result.output


def test_run_admm_low_memory_reaches_common():
    result = runner.invoke(app, ["run", "--scheme", "common", "--scheme", "admm",
                                 "--low-memory", "--json"])
    assert result.exit_code == 0, result.output
    admm = json.loads(result.stdout)["schemes"]["admm"]
    assert admm["status"] == "optimal"
    assert abs(admm["gap_to_common_pct"]) < 0.1
