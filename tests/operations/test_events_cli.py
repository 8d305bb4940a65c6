"""The operating events from the command line: reserves, emergency requests and faults, with
their JSON and their refusals of bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tsodso.cli import app

runner = CliRunner()


def _json(args: list[str]) -> dict:
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_reserves_cli():
    data = _json(["reserves", "--variant", "direct", "--event", "10-13:2",
                  "--event", "19-21:-2"])
    (row,) = data["rows"]
    assert row["variant"] == "direct" and row["new_violations"] > 0
    assert data["event"] == "2 MW short in periods [10, 11, 12, 13]; 2 MW long in periods " \
                            "[19, 20, 21]"
    # activated + uncovered energy is the event's 14 MWh
    assert row["activated_up_mwh"] + row["activated_down_mwh"] + row["uncovered_mwh"] == \
        pytest.approx(14.0, abs=1e-6)
    assert all(r["reason"] for r in data["refusals"]["direct"])


def test_emergency_cli():
    data = _json(["emergency", "--feeder", "case33bw@9", "--periods", "10-12",
                  "--amount", "0.6", "--direction", "reduce_load"])
    rows = {r["route"]: r for r in data["rows"]}
    assert rows["dso"]["met"] and rows["dso"]["violations_thermal"] == 0
    assert rows["bypass"]["violations_thermal"] > 0
    assert data["answers"]["dso"]


def test_fault_cli():
    data = _json(["fault", "--feeder", "case33bw@9", "--line", "2", "--start", "18",
                  "--duration", "4"])
    iso, sw = data["isolation only"]["unserved_mwh"], data["switching"]["unserved_mwh"]
    assert sw < iso - 1.0
    assert data["switching and microgrids"]["unserved_mwh"] <= sw + 1e-9
    assert {a["action"] for a in data["switching"]["actions"]} >= {"open", "close"}


@pytest.mark.parametrize(("args", "message"), [
    (["reserves", "--variant", "nope"], "--variant: unknown value 'nope'"),
    (["reserves", "--event", "10-13"], "--event: write PERIODS:MW"),
    (["reserves", "--event", "10-30:2"], "period 30 is outside the horizon"),
    (["reserves", "--event", "13-10:2"], "runs backwards"),
    (["emergency", "--via", "x"], "--via: unknown value 'x'"),
    (["emergency", "--periods", "ten"], "--periods: periods are written 10-12"),
    (["emergency", "--feeder", "nowhere"], "nowhere"),
    (["fault", "--line", "999"], "999"),
])
def test_bad_input_is_refused_by_name(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and message in res.output, res.output
