"""The exchanges after the market: the TSO's DER schedules to the DSOs, the DSOs' notices of
what they changed, and what a dropped schedule message costs (the violations that follow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.actors import MessageBus, MessageLog
from tsodso.cli import app
from tsodso.coordination import run_scheme
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path

runner = CliRunner()


def test_a_dso_that_changes_schedules_tells_the_tso(default_system, tmp_path):
    """tso_only on default: every DSO that curtailed its DERs sends the TSO a schedule
    change notice with the schedules before and after (those the TSO sent, and the
    outcome's dispatch)."""
    with MessageLog(tmp_path / "log.sqlite", run_id="r") as log:
        outcome = run_scheme(default_system, "tso_only",
                             bus=MessageBus(log, scheme="tso_only"))
        sent = log.messages()
    schedules = [m for m in sent if m.KIND == "der_schedule"]
    notices = [m for m in sent if m.KIND == "schedule_change_notice"]
    assert schedules and notices
    assert all(str(m.envelope.recipient) == "tso" for m in notices)
    for notice in notices:
        ids = list(notice.der_ids)
        new = outcome.der_dispatch[ids].to_numpy()
        assert np.allclose(notice.new_p_mw, new)
        told = np.concatenate([np.array(s.p_mw)[:, [list(s.der_ids).index(d)]]
                               for d in ids for s in schedules if d in s.der_ids], axis=1)
        assert np.allclose(notice.old_p_mw, told)
        assert (notice.old_p_mw - notice.new_p_mw).max() > 1e-6  # something was curtailed
        assert "MWh of DER schedules curtailed" in notice.reason


def test_a_dropped_schedule_message_shows_the_violations_that_follow(default_system,
                                                                     builtin_outcome):
    """Without the TSO's schedule message the DSOs cannot correct: the feeders run as the
    market scheduled, and the AC power flow of what they deliver shows the violations the
    correction removed (tso_only on default; centralized takes the same path)."""
    kept = builtin_outcome("default", "tso_only")
    dropped = run_scheme(default_system, "tso_only", der_schedules_to_dso=False)
    assert "der_schedule" not in set(dropped.messages.index)
    assert len(dropped.delivered_violations) > 10 * max(len(kept.delivered_violations), 1)
    # the feeders delivered the market's schedule: nothing curtailed
    assert dropped.curtailed_mwh <= kept.curtailed_mwh
    assert any("dropped" in n for n in dropped.notes)
    assert any("delivered dispatch still violates" in n for n in dropped.notes)
    with pytest.raises(TsodsoError, match="has no option 'der_schedules_to_dso'"):
        run_scheme(default_system, "common", der_schedules_to_dso=False)


def test_operate_with_the_schedule_message_dropped(tmp_path):
    """One feeder of default, six 4-hour periods under tso_only: the realised operation
    delivers no violation with the message and some without it."""
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["horizon"] = {"periods": 6, "period_hours": 4.0}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(r))
    out = {}
    for flag in ([], ["--drop-der-schedules"]):
        res = runner.invoke(app, ["operate", str(path), "--scheme", "tso_only",
                                  "--load-error", "0.05", "--renewable-error", "0.2",
                                  "--seed", "1", "--out", str(tmp_path / f"op{len(flag)}"),
                                  "--json", *flag])
        assert res.exit_code == 0, res.output
        out[bool(flag)] = json.loads(res.output)
    assert out[False]["delivered_violations"] == 0
    assert out[True]["delivered_violations"] > 0
    assert out[True]["delivered_violations"] == out[True]["realised_violations"]


def test_after_day_ahead_the_parties_exchange_schedules_and_baselines(tmp_path):
    """Every scheme's day-ahead step ends with the TSO's final DER schedules to each DSO and
    each aggregator's baseline to the TSO and its DSOs: the day-ahead dispatch, as written
    to the operation's tables."""
    from tsodso.actors import LOG_FILE_NAME
    from tsodso.operations import operate

    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["horizon"] = {"periods": 6, "period_hours": 4.0}
    op = operate(build_scenario(r), "common", tmp_path / "op", stop_after=1)
    with MessageLog(tmp_path / "op" / "steps" / "00000-day_ahead" / LOG_FILE_NAME) as log:
        sent = log.messages(kind="der_schedule")
    routes = {(str(m.envelope.sender), str(m.envelope.recipient)) for m in sent}
    assert routes == {("tso", "dso:bus9"), ("aggregator:agg_case33bw@9", "tso"),
                      ("aggregator:agg_case33bw@9", "dso:bus9")}
    plan = op.day_ahead["der_p_mw"]
    for m in sent:
        np.testing.assert_allclose(m.p_mw, plan[list(m.der_ids)].to_numpy(), atol=1e-12)
        assert m.envelope.sim_time == "day_ahead, day 0"
