"""Operations: the timeline's plan, real time against day ahead, states of charge, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.errors import ValidationError
from tsodso.io.scenario import build_scenario
from tsodso.operations import ForecastErrors, Stage, Timeline, operate, plan, read_operation
from tsodso.operations.run import energy_after, initial_energy
from tsodso.scenarios import scenario_path

runner = CliRunner()


def _recipe(**changes):
    """default cut to one feeder and a day of 2-hour periods (12 steps of real time)."""
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["horizon"] = {"periods": 12, "period_hours": 2.0}
    r.update(changes)
    return r


@pytest.fixture(scope="module")
def small():
    return build_scenario(_recipe())


def test_the_plan_lists_every_run_in_order():
    p = plan(Timeline((Stage("day_ahead", 1.0, 24.0, 24.0, gate_closure_h=12.0),
                       Stage("real_time", 1.0, 1.0, None, commits_h=1.0,
                             receives=("states_of_charge",)))), 1.0, 24, days=2)
    assert len(p) == 2 * 25 and list(p.step) == list(range(50))
    rt = p[(p.stage == "real_time") & (p.day == 1)]
    assert list(rt.first_period) == list(range(24)) and list(rt.periods) == list(range(24, 0, -1))
    assert (rt.commits == 1).all() and (p[p.stage == "day_ahead"].commits == 0).all()
    da = p[p.stage == "day_ahead"].iloc[1]
    assert da.gate_closure_h == 12.0 and da.delivery_start_h == 24.0  # noon, the day before
    with pytest.raises(ValidationError, match="resolution_h"):
        plan(Timeline((Stage("rt", 0.25, 0.25, None),)), 1.0, 24)
    with pytest.raises(ValidationError, match="first stage"):
        plan(Timeline((Stage("rt", 1.0, 1.0, None, receives=("schedules",)),)), 1.0, 24)
    with pytest.raises(ValidationError, match="unknown"):
        plan(Timeline((Stage("da", 1.0, 24.0, 24.0), Stage("rt", 1.0, 1.0, None,
                                                           receives=("gossip",)))), 1.0, 24)


def test_with_a_perfect_forecast_real_time_reproduces_day_ahead(small, tmp_path):
    """No forecast error: every real-time step re-clears the rest of the day from the states
    of charge the plan left, and the realised day is the day-ahead plan (Bellman)."""
    op = operate(small, "common", tmp_path / "op")
    assert op.complete and (op.steps.status == "optimal").all()
    da, rt = op.day_ahead, op.realised
    assert list(rt["der_p_mw"].index.get_level_values("period")) == list(range(12))
    np.testing.assert_allclose(rt["der_p_mw"].to_numpy(), da["der_p_mw"].to_numpy(),
                               atol=1e-2)
    np.testing.assert_allclose(rt["lmp"].to_numpy(), da["lmp"].to_numpy(), atol=1e-3)
    np.testing.assert_allclose(rt["interface_mw"].to_numpy(), da["interface_mw"].to_numpy(),
                               atol=1e-2)
    first_rt = op.steps[op.steps.stage == "real_time"].iloc[0]
    assert first_rt.run_cost == pytest.approx(op.steps.iloc[0].run_cost, rel=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_storage_at_its_minimum_is_never_discharged(seed, tmp_path):
    """Storage starts empty (at its minimum state of charge); with random forecast errors
    (seeded) no stage discharges a unit below its minimum: tracked period by period from
    the realised output, the energy never drops under the floor."""
    system = build_scenario(_recipe(seed=seed))
    st = system.ders.kind == "storage"
    system.ders.loc[st, "soc_min"] = 0.1
    system.ders.loc[st, "soc_init"] = 0.1
    op = operate(system, "common", tmp_path / "op",
                 errors=ForecastErrors(0.05, 0.2, seed))
    assert op.complete
    ids = system.ders.der_id[st]
    energy = initial_energy(system)
    floor = (system.ders.soc_min * system.ders.energy_mwh)[st].set_axis(ids)
    for _, p in op.realised["der_p_mw"].iterrows():
        for der in ids:  # at the floor: no discharge
            if energy[der] <= floor[der] + 1e-6:
                assert p[der] <= 1e-6, (der, p[der])
        energy = energy_after(system, energy, p)
        assert all(energy[d] >= floor[d] - 1e-5 for d in ids)
    assert op.energy_mwh == pytest.approx(energy, abs=1e-9)


def test_a_killed_operation_resumes_to_the_same_results(tmp_path):
    """SIGKILL part way through, then the same command: it goes on from the last completed
    step and ends with the results of an uninterrupted run."""
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(_recipe()))
    args = [sys.executable, "-c", "from tsodso.cli import app; app()", "operate", str(path),
            "--scheme", "common",
            "--load-error", "0.05", "--renewable-error", "0.2", "--seed", "3", "--json"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = killed / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["next_step"] >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads(state.read_text())["next_step"]
    assert 4 <= done < 13
    again = subprocess.run([*args, "--out", str(killed)], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    whole = subprocess.run([*args, "--out", str(tmp_path / "whole")], capture_output=True,
                           text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    a, b = read_operation(killed), read_operation(tmp_path / "whole")
    assert a.complete and b.complete
    for name in ("der_p_mw", "lmp", "interface_mw"):
        pd.testing.assert_frame_equal(a.realised[name], b.realised[name])
        pd.testing.assert_frame_equal(a.day_ahead[name], b.day_ahead[name])
    assert a.energy_mwh == b.energy_mwh


def test_operate_cli_plan_and_refusals(tmp_path):
    result = runner.invoke(app, ["operate", "--plan", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["plan"]
    assert len(rows) == 25 and rows[0]["stage"] == "day_ahead"
    result = runner.invoke(app, ["operate", "--days", "2", "--plan"])
    assert result.exit_code == 1 and "48 periods" in result.output
    result = runner.invoke(app, ["operate", "--load-error", "-1", "--plan"])
    assert result.exit_code == 1 and "load_sigma" in result.output
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    result = runner.invoke(app, ["operate", "--out", str(tmp_path / "busy")])
    assert result.exit_code == 1 and "not an operation folder" in result.output


def test_storage_short_of_its_target_is_priced_and_reported(small):
    """A unit that cannot reach its end-of-horizon target (charging capped at zero, target
    full) makes the OPF infeasible; softened, it ends short, priced at the value of lost
    load and reported, and the result is not 'optimal'."""
    from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions
    from tsodso.errors import SolveError

    system = small.window(0)
    st = (system.ders.kind == "storage").to_numpy()
    system.ders.loc[st, "soc_end"] = 1.0
    fid = system.ders.feeder_id[st].iloc[0]
    op = DsoOpf(system, fid, DsoOptions(ac_check=False), Boundary(price=np.full(12, 30.0)))
    op.model.set_bounds(op.ch, ub=np.zeros(len(op.ch)))
    with pytest.raises(SolveError):
        op.solve()
    op.soften_storage_target()
    r = op.solve()
    d = system.ders[st & (system.ders.feeder_id == fid).to_numpy()]
    short = float(((1.0 - d.soc_init) * d.energy_mwh).sum())
    # discharging nothing is the best it can do: the whole gap is short
    assert r.shortfalls.unmet_storage_mwh == pytest.approx(short, rel=1e-4)
    assert r.status.value == "shed"
    assert any("short of its end-of-horizon target" in w for w in r.shortfalls.warnings())


def test_the_tso_market_also_reports_storage_short_of_its_target(small):
    """The same in the TSO market: storage offers that cannot reach their end target (no
    charging, target full) end short, priced and reported, instead of failing."""
    from tsodso.tso import TsoMarket, TsoOptions

    system = small.window(0)
    st = (system.ders.kind == "storage").to_numpy()
    system.ders.loc[st, "soc_end"] = 1.0
    system.ders.loc[st, "p_min_mw"] = 0.0  # cannot charge
    result = TsoMarket(system.check(), TsoOptions()).solve()
    d = system.ders[st]
    assert result.shortfalls.unmet_storage_mwh == pytest.approx(
        float(((1.0 - d.soc_init) * d.energy_mwh).sum()), rel=1e-6)
    assert result.shortfalls.uses_slack


def test_log_lists_every_completed_steps_messages(small, tmp_path):
    """tsodso log on an operation folder: each completed step's messages, named by step."""
    operate(small, "hierarchical", tmp_path / "op", stop_after=3)
    result = runner.invoke(app, ["log", str(tmp_path / "op"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    steps = {m["scheme"].split(":")[0] for m in data["messages"]}
    assert steps == {"00000-day_ahead", "00001-real_time", "00002-real_time"}
    assert data["summary"]["interface_price"]["count"] > 0
    only = runner.invoke(app, ["log", str(tmp_path / "op"), "--kind", "settlement_statement",
                               "--json"])
    kinds = {m["kind"] for m in json.loads(only.stdout)["messages"]}
    assert kinds == {"settlement_statement"}
    assert runner.invoke(app, ["log", str(tmp_path / "op")]).exit_code == 0
