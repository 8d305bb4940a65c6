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


@pytest.fixture(scope="module")
def default():
    return build_scenario(yaml.safe_load(scenario_path("default").read_text()))


def test_a_dso_that_changes_schedules_tells_the_tso(default, tmp_path):
    """tso_only on default: every DSO that curtailed its DERs sends the TSO a schedule
    change notice with the schedules before and after (those the TSO sent, and the
    outcome's dispatch)."""
    with MessageLog(tmp_path / "log.sqlite", run_id="r") as log:
        outcome = run_scheme(default, "tso_only", bus=MessageBus(log, scheme="tso_only"))
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


@pytest.mark.parametrize("scheme", ["tso_only", "centralized"])
def test_a_dropped_schedule_message_shows_the_violations_that_follow(default, scheme):
    """Without the TSO's schedule message the DSOs cannot correct: the feeders run as the
    market scheduled, and the AC power flow of what they deliver shows the violations the
    correction removed."""
    kept = run_scheme(default, scheme)
    dropped = run_scheme(default, scheme, der_schedules_to_dso=False)
    assert "der_schedule" not in set(dropped.messages.index)
    assert len(dropped.delivered_violations) > 10 * max(len(kept.delivered_violations), 1)
    # the feeders delivered the market's schedule: nothing curtailed
    assert dropped.curtailed_mwh <= kept.curtailed_mwh
    assert any("dropped" in n for n in dropped.notes)
    assert any("delivered dispatch still violates" in n for n in dropped.notes)
    with pytest.raises(TsodsoError, match="has no option 'der_schedules_to_dso'"):
        run_scheme(default, "common", der_schedules_to_dso=False)


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
