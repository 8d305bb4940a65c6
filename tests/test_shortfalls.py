"""Every result states what it cost besides production, and is ``optimal`` only when it is.

References from outside the code under test: the system's own load and generation capacity
(shedding = load - capacity), Baran & Wu's 202.68 kW of losses on case33bw (MATPOWER), and
counts of power flows that did not converge.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.coordination import outcome as outcome_module
from tsodso.coordination import run_scheme
from tsodso.dso import Boundary, DsoOptions, solve_dso
from tsodso.io import load, load_feeder
from tsodso.opt import SolveStatus
from tsodso.shortfalls import Shortfalls
from tsodso.tso import TsoOptions, clear_tso_market

runner = CliRunner()
TIGHT = str(Path(__file__).parent / "data" / "scenarios" / "tight_lines.yaml")


def test_status_precedence():
    assert Shortfalls().status() is SolveStatus.OPTIMAL
    assert Shortfalls(shed_mwh=1.0).status() is SolveStatus.SHED
    assert Shortfalls(shed_mwh=1e-5).status() is SolveStatus.OPTIMAL  # solver tolerance
    assert Shortfalls(shed_mwh=1.0, fictitious_loss_mw=0.1).status() is SolveStatus.INEXACT
    assert Shortfalls(optimality_gap=5.0, optimality_gap_tol=1.0).status() is \
        SolveStatus.FEASIBLE
    assert Shortfalls(pf_not_converged=1).status() is SolveStatus.INEXACT
    assert Shortfalls().status(SolveStatus.NUMERICAL) is SolveStatus.NUMERICAL
    both = Shortfalls(shed_mwh=1.0, slack_cost=10.0) + Shortfalls(unmet_ev_mwh=2.0)
    assert (both.shed_mwh, both.unmet_ev_mwh, both.slack_cost) == (1.0, 2.0, 10.0)


def test_tso_with_a_tenth_of_its_generation_sheds_and_says_so():
    system = load("matpower:case5")
    system.grid.generators = system.grid.generators.assign(
        pmax_mw=system.grid.generators.pmax_mw * 0.1)
    result = clear_tso_market(system, TsoOptions())
    load_mw = float(system.grid.loads.p_mw.sum())
    capacity = float(system.grid.generators.pmax_mw.sum())
    assert capacity < load_mw
    sf = result.shortfalls
    assert result.status is SolveStatus.SHED
    assert sf.shed_mwh == pytest.approx(load_mw - capacity, rel=1e-6)
    assert sf.slack_cost == pytest.approx(system.rules.value_of_lost_load * sf.shed_mwh,
                                          rel=1e-6)
    assert sf.slack_cost < result.objective  # the slack is part of the reported cost
    out = result.to_json()
    assert out["status"] == "shed"
    assert out["load_shed_mwh"] == pytest.approx(load_mw - capacity, rel=1e-6)
    assert any("load shed" in w for w in out["shortfalls"]["warnings"])


def test_tso_load_shed_is_in_mwh_not_summed_mw():
    system = load("matpower:case5", n_periods=2)
    system.profiles.period_hours = 0.5
    system.grid.generators = system.grid.generators.assign(
        pmax_mw=system.grid.generators.pmax_mw * 0.1)
    result = clear_tso_market(system, TsoOptions())
    shed_mw = float(result.shed.to_numpy().sum())  # MW summed over 2 periods
    assert result.shortfalls.shed_mwh == pytest.approx(shed_mw * 0.5, rel=1e-9)


def test_run_shows_shedding_in_the_table_and_the_json():
    """Lines rated at 1 % of their flow: shedding is the cheapest (only) answer."""
    res = runner.invoke(app, ["run", TIGHT, "--scheme", "common", "--scheme", "tso_only",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    system = load(TIGHT)
    for name in ("common", "tso_only"):
        row = out["schemes"][name]
        assert row["status"] == "shed"
        assert row["shed_mwh"] > 1.0
        assert row["slack_cost"] == pytest.approx(
            system.rules.value_of_lost_load * (row["shed_mwh"] + row["unmet_ev_mwh"]),
            rel=1e-3)
        assert row["shortfalls"]["warnings"]
    table = runner.invoke(app, ["run", TIGHT, "--scheme", "common"])
    assert table.exit_code == 0, table.output
    assert "shed" in table.stdout
    assert "MWh of load shed at the value of lost load" in table.stdout


def test_non_converged_power_flow_is_counted_not_hidden(monkeypatch):
    """A market dispatch whose AC power flow fails in a period must not read as 'no
    violations' (its rows carry NaN, which a value filter drops)."""
    real = outcome_module.dispatch_power_flow

    def failing_first_period(op, result):
        pf = real(op, result)
        pf.converged = pf.converged.copy()
        pf.converged.iloc[0] = False
        return pf

    monkeypatch.setattr(outcome_module, "dispatch_power_flow", failing_first_period)
    system = load(TIGHT)
    o = run_scheme(system, "tso_only")
    summary = o.violation_summary()
    assert summary["not_converged"] == len(system.feeder_ids)
    assert any("did not converge" in w for w in o.shortfalls.warnings())
    o = run_scheme(system, "common")  # final dispatch = checked dispatch
    assert o.shortfalls.pf_not_converged == len(system.feeder_ids)
    assert o.status == "inexact"


def test_negative_price_relaxation_is_tightened_and_prices_withheld():
    """At -50 $/MWh consuming is paid, so the SOC relaxation burns power in fictitious
    losses (1071 % AC flow error before). The result must be exact physics (Baran & Wu's
    202.68 kW of losses) and must not present its duals as prices."""
    system, fid = load_feeder("matpower:case33bw")
    relaxed = solve_dso(system, fid, Boundary(price=np.array([-50.0])),
                        DsoOptions(tighten=False))
    assert relaxed.status is SolveStatus.INEXACT
    assert relaxed.shortfalls.fictitious_loss_mw > 1.0
    assert not relaxed.prices_valid
    res = solve_dso(system, fid, Boundary(price=np.array([-50.0])))
    assert res.losses_mw.iloc[0] * 1e3 == pytest.approx(202.68, abs=0.05)
    assert res.shortfalls.ac_flow_error_pct < 1e-3
    load_mw = float(system.feeder_loads.p_mw.sum())
    # the true cost of the exact dispatch: the price times the import (load + losses)
    assert res.objective == pytest.approx(-50 * (load_mw + 0.20268), rel=1e-4)
    assert res.status is SolveStatus.FEASIBLE  # between the relaxation's bound and this
    assert res.shortfalls.optimality_gap > 0
    assert not res.prices_valid
    assert res.to_json()["dlmp_p"] is None
    cli = runner.invoke(app, ["dso-opf", "matpower:case33bw", "--price", "-50"])
    assert cli.exit_code == 0, cli.output
    assert "DLMPs withheld" in cli.stdout
    assert "DLMP P" not in cli.stdout


def test_positive_price_stays_optimal_with_prices():
    system, fid = load_feeder("matpower:case33bw")
    res = solve_dso(system, fid, Boundary(price=np.array([50.0])))
    assert res.status is SolveStatus.OPTIMAL
    assert res.prices_valid and res.to_json()["dlmp_p"] is not None
    assert res.losses_mw.iloc[0] * 1e3 == pytest.approx(202.68, abs=0.05)


def test_feeder_shedding_and_unmet_ev_energy_reported_by_dso_opf():
    system = load(TIGHT)
    fid = system.feeder_ids[0]
    res = solve_dso(copy.deepcopy(system), fid, Boundary(price=np.full(4, 30.0)))
    assert res.status is SolveStatus.SHED
    shed = float(res.shed_mw.to_numpy().sum()) * system.profiles.period_hours
    assert res.shortfalls.shed_mwh == pytest.approx(shed, rel=1e-9)
    assert res.to_json()["shed_mwh"] == pytest.approx(shed, rel=1e-9)


def test_run_folder_carries_the_shortfalls(tmp_path):
    o = run_scheme(load(TIGHT), "common")
    folder = o.to_parquet(tmp_path)
    saved = json.loads((folder / "shortfalls.json").read_text())
    assert saved["status"] == "shed"
    assert saved["shed_mwh"] == pytest.approx(o.shortfalls.shed_mwh)
    import pandas as pd

    summary = pd.read_parquet(folder / "summary.parquet")
    assert summary["shed_mwh"].iloc[0] == pytest.approx(o.shortfalls.shed_mwh)


def test_outcome_says_when_feeder_prices_are_not_prices():
    from types import SimpleNamespace

    import pandas as pd

    from tsodso.coordination.outcome import _outcome_shortfalls

    tso = SimpleNamespace(shortfalls=Shortfalls())
    results = {"f1": SimpleNamespace(shortfalls=Shortfalls(), prices_valid=True),
               "f2": SimpleNamespace(shortfalls=Shortfalls(fictitious_loss_mw=2.0),
                                     prices_valid=False)}
    total = _outcome_shortfalls(tso, results, pd.DataFrame(columns=["kind"]), True)
    assert total.status() is SolveStatus.INEXACT
    assert any("DLMPs of f2 are not prices" in w for w in total.warnings())
    assert tso.shortfalls.notes == []  # the TSO result keeps its own


def test_a_scheme_without_an_answer_does_not_hide_the_others():
    """shared_balancing's fixed interface schedule cannot be met on lines rated at 1 %: that
    scheme says 'infeasible' with the reason; the other schemes are still reported."""
    res = runner.invoke(app, ["run", TIGHT, "--scheme", "common", "--scheme",
                              "shared_balancing", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["schemes"]
    assert out["shared_balancing"]["status"] == "infeasible"
    assert "infeasible" in out["shared_balancing"]["error"]
    assert out["shared_balancing"]["total_cost"] is None
    assert out["common"]["status"] == "shed"
    table = runner.invoke(app, ["run", TIGHT, "--scheme", "common", "--scheme",
                                "shared_balancing"])
    assert table.exit_code == 0, table.output
    assert "infeasible" in table.stdout


def test_an_unmeasured_ac_error_is_unknown_not_zero():
    """When no period's power flow converged, the AC error is NaN (null in JSON), and the
    non-converged periods make the result inexact."""
    from tsodso.dso.ac_check import _nanmax

    assert np.isnan(_nanmax(np.array([np.nan, np.nan])))
    assert _nanmax(np.array([np.nan, 2.0])) == 2.0
    sf = Shortfalls(ac_voltage_error_pu=float("nan"), ac_flow_error_pct=float("nan"),
                    pf_not_converged=2)
    assert sf.status() is SolveStatus.INEXACT
    out = sf.to_json()
    assert out["ac_voltage_error_pu"] is None and out["ac_flow_error_pct"] is None
    json.dumps(out, allow_nan=False)
