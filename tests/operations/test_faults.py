"""Feeder faults: isolation, restoration by tie switches, microgrids, unserved energy, the
DSO's messages to the TSO.

The case: the default scenario cut to one case33bw feeder (with MATPOWER's five tie switches,
kept out of service), its loads beyond bus 22 moved to the scenario's second load profile
(two customer groups) and its storage units held above 20 % state of charge. Expected
values are computed here from the data (a breadth-first search of the feeder's lines, the
profiles), the AC power flow (power-grid-model) and the messages read back from the log.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pytest
import yaml

from tsodso.actors import FaultNotice, GridState, MessageBus, MessageLog, Party
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.model.network import Feeder
from tsodso.operations.faults import FaultOptions, restore
from tsodso.powerflow import FeederPowerFlow
from tsodso.scenarios import scenario_path

FID = "case33bw@9"
EVENING = 18  # 18:00-22:00: evening peak, no sun
OUTAGE = 4
TOL = 1e-6  # MWh


@pytest.fixture(scope="module")
def system():
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    s = build_scenario(r)
    loads = s.feeder_loads
    loads.loc[loads.bus_id > 22, "profile"] = "load_tx"  # a second customer group
    st = s.ders.kind == "storage"
    s.ders.loc[st, "soc_min"] = 0.2
    s.ders.loc[st, "soc_init"] = 0.6
    return s.check()


@pytest.fixture(scope="module")
def variants(system):
    """Fault on line 2 (bus 2 to 3, next to the substation) and on line 1 (the substation's
    own line), at the evening peak, with no action, switching, switching and microgrids."""
    out = {}
    for line in (1, 2):
        for name, sw, mg in (("none", False, False), ("switching", True, False),
                             ("both", True, True)):
            out[line, name] = restore(system, FID, line, EVENING, OUTAGE, switching=sw,
                                      microgrids=mg)
    return out


def _downstream(system, line_id):
    """Buses cut off from the root when ``line_id`` opens (breadth-first search)."""
    lines = system.feeder_lines[(system.feeder_lines.feeder_id == FID)
                                & system.feeder_lines.in_service
                                & (system.feeder_lines.line_id != line_id)]
    adj = {}
    for f, t in zip(lines.from_bus, lines.to_bus, strict=True):
        adj.setdefault(int(f), []).append(int(t))
        adj.setdefault(int(t), []).append(int(f))
    root = int(system.feeders.set_index("feeder_id").root_bus[FID])
    seen, todo = {root}, deque([root])
    while todo:
        for nxt in adj.get(todo.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    buses = system.feeder_buses[system.feeder_buses.feeder_id == FID].bus_id
    return {int(b) for b in buses} - seen


def _load_mwh(system, buses, start, stop):
    """Load energy of ``buses`` over periods [start, stop), MWh, per profile."""
    loads = system.feeder_loads[(system.feeder_loads.feeder_id == FID)
                                & system.feeder_loads.bus_id.isin(list(buses))]
    dt = system.profiles.period_hours
    out = {}
    for profile, group in loads.groupby("profile"):
        mult = system.profiles.series[profile].to_numpy()[start:stop]
        out[profile] = float(mult.sum() * group.p_mw.sum() * dt)
    return out


def test_without_switching_the_downstream_load_is_unserved(system, variants):
    res = variants[2, "none"]
    down = _downstream(system, 2)
    assert down == set(range(3, 19)) | set(range(23, 34))
    expected = _load_mwh(system, down, EVENING, EVENING + OUTAGE)
    assert res.unserved_mwh == pytest.approx(sum(expected.values()), abs=TOL)
    by_group = res.unserved_by_group()
    assert set(by_group.index) == {"load", "load_tx"}
    for group, mwh in expected.items():
        assert by_group[group] == pytest.approx(mwh, abs=TOL)
    assert res.unserved_cost_usd == pytest.approx(
        res.unserved_mwh * system.rules.value_of_lost_load, rel=1e-12)
    sec = res.sections.set_index("section")
    assert list(sec.index) == ["upstream", "unserved@3"]
    assert sec.at["upstream", "unserved_mwh"] == pytest.approx(0.0, abs=TOL)
    assert set(res.buses.bus_id[res.buses.means == "none"]) == down
    assert list(res.actions.action) == ["open"] and list(res.actions.line_id) == [2]
    assert res.state == "emergency"
    # per period and bus: the downstream buses' whole load
    assert res.unserved_mw.index.tolist() == list(range(EVENING, EVENING + OUTAGE))
    assert res.unserved_mw[sorted(down)].sum().sum() * system.profiles.period_hours == \
        pytest.approx(res.unserved_mwh, abs=TOL)


def test_switching_then_microgrids_lower_unserved_energy(system, variants):
    """Line 2: a tie reaches the cut-off part and re-energises it, up to the thermal limits
    of the lines behind the tie (shedding the rest); its storage then serves inside the
    restored part, so islands add nothing (equal). Line 1: no tie reaches the substation's
    bus, switching cannot help, and the feeder runs as an island around its storage."""
    u = {k: r.unserved_mwh for k, r in variants.items()}
    assert u[2, "switching"] < u[2, "none"] - 1.0
    assert u[2, "both"] <= u[2, "switching"] + 1e-4
    assert u[1, "switching"] == pytest.approx(u[1, "none"], abs=TOL)
    assert u[1, "both"] < u[1, "switching"] - 1.0
    sw = variants[2, "switching"]
    closed = sw.actions[sw.actions.action == "close"]
    ties = set(system.feeder_lines.line_id[(system.feeder_lines.feeder_id == FID)
                                           & ~system.feeder_lines.in_service])
    assert len(closed) >= 1 and set(closed.line_id) <= ties
    assert "tie_switch" in set(sw.sections.means)
    mg = variants[1, "both"]
    assert list(mg.sections.means) == ["substation", "microgrid"]
    island = mg.sections.iloc[1]
    kinds = system.ders.set_index("bus_id").kind
    assert "storage" in set(np.atleast_1d(kinds.get(int(island.root_bus))))
    # the island serves part of its load; sections add up
    assert 0 < island.served_mwh < island.load_mwh
    for r in variants.values():
        s = r.sections
        np.testing.assert_allclose(s.load_mwh, s.served_mwh + s.unserved_mwh
                                   + s.demand_response_mwh, atol=1e-9)
        assert r.groups.unserved_mwh.sum() == pytest.approx(r.unserved_mwh, abs=1e-9)


def test_at_noon_switching_serves_every_load(system):
    """With the sun up the restored part's PV and storage cover what the tie cannot carry:
    nothing is unserved, and the feeder is on alert (abnormal configuration)."""
    res = restore(system, FID, 2, 11, 2)
    assert res.unserved_mwh < 1e-4
    # an island could serve it too, but the grid behind a tie is preferred
    assert set(res.sections.means) == {"substation", "tie_switch"}
    assert list(res.actions.action) == ["open", "close"]
    assert res.state == "alert" and "closed" in res.messages[2].reason.split(";")[0]


def _part_feeder(system, res, name):
    """The energised part ``name`` as a feeder of its own, built from the data."""
    info = system.feeders.set_index("feeder_id").loc[FID].to_dict()
    info["feeder_id"] = FID
    info["root_bus"] = res.roots[name]
    if name.startswith("microgrid"):
        info["v_root_pu"] = 1.0
    sections = res.buses.set_index("bus_id").section
    buses = [b for b, s in sections.items()
             if (s == name) or (name == "substation" and s in ("upstream", "tie"))]
    fb = system.feeder_buses[(system.feeder_buses.feeder_id == FID)
                             & system.feeder_buses.bus_id.isin(buses)]
    closed = set(res.lines.line_id[res.lines.restored])
    fl = system.feeder_lines[(system.feeder_lines.feeder_id == FID)
                             & system.feeder_lines.line_id.isin(list(closed))
                             & system.feeder_lines.from_bus.isin(buses)
                             & system.feeder_lines.to_bus.isin(buses)].copy()
    fl["in_service"] = True
    ld = system.feeder_loads[(system.feeder_loads.feeder_id == FID)
                             & system.feeder_loads.bus_id.isin(buses)]
    return Feeder.from_tables(info, fb, fl, ld), buses


@pytest.mark.parametrize("key", [(2, "both"), (1, "both"), (2, "none")])
def test_served_configuration_is_radial_and_within_limits(system, variants, key):
    res = variants[key]
    start, stop = res.periods.start, res.periods.stop
    ders = system.ders.set_index("der_id")
    for name, opf in res.opf.items():
        feeder, buses = _part_feeder(system, res, name)
        # radial: connected (breadth-first search from the root) with n - 1 lines
        assert len(feeder.lines) == len(buses) - 1
        adj = {}
        for f, t in zip(feeder.lines.from_bus, feeder.lines.to_bus, strict=True):
            adj.setdefault(f, []).append(t)
            adj.setdefault(t, []).append(f)
        seen, todo = {res.roots[name]}, [res.roots[name]]
        while todo:
            for nxt in adj.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen == set(buses)
        # AC power flow of the dispatch: loads less what was shed, DER injections
        pf = FeederPowerFlow(feeder)
        mult = system.profiles.multipliers(feeder.loads.profile)[start:stop]
        p = pd.DataFrame(0.0, index=range(stop - start), columns=sorted(buses))
        q = p.copy()
        for k, (b, pl, ql) in enumerate(zip(feeder.loads.bus_id, feeder.loads.p_mw,
                                            feeder.loads.q_mvar, strict=True)):
            p[b] += mult[:, k] * pl
            q[b] += mult[:, k] * ql
        shed = opf.shed_mw.set_axis(p.index)[p.columns]
        ratio = (q / p.where(p > 0)).fillna(0.0)
        load_p, load_q = p - shed, q - shed * ratio
        bus_of = ders.bus_id.loc[opf.der_p_mw.columns]
        inj_p = opf.der_p_mw.T.groupby(bus_of.to_numpy()).sum().T.set_axis(p.index)
        inj_q = opf.der_q_mvar.T.groupby(bus_of.to_numpy()).sum().T.set_axis(p.index)
        out = pf.run(load_p, load_q, inj_p.reindex(columns=p.columns, fill_value=0.0),
                     inj_q.reindex(columns=p.columns, fill_value=0.0))
        assert out.converged.all()
        vm = out.vm_pu[p.columns]
        assert (vm.to_numpy() >= pf.v_min_limit[p.columns].to_numpy() - 1e-4).all()
        assert (vm.to_numpy() <= pf.v_max_limit[p.columns].to_numpy() + 1e-4).all()
        assert np.nanmax(out.loading_pct.to_numpy(), initial=0.0) <= 100.5
        np.testing.assert_allclose(vm.to_numpy(), opf.voltage_pu[p.columns].to_numpy(),
                                   atol=1e-3)
        if name.startswith("microgrid"):  # an island imports nothing
            assert np.abs(out.substation_p_mw.to_numpy()).max() < 2e-3
            assert np.abs(out.substation_q_mvar.to_numpy()).max() < 2e-3


def test_storage_energy_stays_within_its_limits(system, variants):
    """Tracked here from the dispatch: e_t = e_(t-1) - dt (discharge / eta_d - eta_c
    charge), from the state of charge at the start; never below soc_min."""
    ders = system.ders.set_index("der_id")
    dt = system.profiles.period_hours
    checked = 0
    for res in variants.values():
        for opf in res.opf.values():
            ids = [d for d in opf.der_p_mw.columns if ders.at[d, "kind"] == "storage"]
            for d in ids:
                cap = ders.at[d, "energy_mwh"]
                pw = opf.der_p_mw[d].to_numpy()
                step = dt * (np.maximum(pw, 0) / ders.at[d, "eta_discharge"]
                             + np.minimum(pw, 0) * ders.at[d, "eta_charge"])
                energy = ders.at[d, "soc_init"] * cap - np.cumsum(step)
                np.testing.assert_allclose(opf.storage_energy_mwh[d].to_numpy(), energy,
                                           atol=1e-5)
                assert energy.min() >= ders.at[d, "soc_min"] * cap - 1e-6
                assert energy.max() <= ders.at[d, "soc_max"] * cap + 1e-6
                checked += 1
    assert checked >= 3
    island = variants[1, "both"].opf[next(k for k in variants[1, "both"].opf
                                          if k.startswith("microgrid"))]
    used = [d for d in island.storage_energy_mwh.columns
            if island.storage_energy_mwh[d].iloc[-1]
            < ders.at[d, "soc_init"] * ders.at[d, "energy_mwh"] - 1e-3]
    assert used  # the island's storage served load


def test_messages_reach_the_log_in_order(system, tmp_path):
    path = tmp_path / "faults.sqlite"
    with MessageLog(path, run_id="f") as log:
        res = restore(system, FID, 2, EVENING, OUTAGE, bus=MessageBus(log, scheme="fault"))
    with MessageLog(path, run_id="f", create=False) as log:
        logged = log.messages()
    assert [m.KIND for m in logged] == ["fault_notice", "grid_state", "grid_state",
                                        "grid_state"]
    assert logged == res.messages
    notice, isolated, restored, repaired = logged
    assert isinstance(notice, FaultNotice) and isinstance(repaired, GridState)
    assert (notice.element, notice.element_id) == ("feeder_line", f"{FID}:2")
    dso = Party.dso(system.dso_of()[FID])
    for m in logged:
        assert (m.envelope.sender, m.envelope.recipient) == (dso, Party.tso())
        assert m.envelope.conversation == notice.envelope.id
    assert [m.state for m in (isolated, restored, repaired)] == [
        "emergency", res.state, res.state_after]
    assert res.state == "emergency"  # load is shed at the evening peak
    assert res.state_after in ("normal", "alert")
    assert list(restored.envelope.periods) == list(range(EVENING, EVENING + OUTAGE))
    assert repaired.envelope.first_period == EVENING + OUTAGE


def test_results_are_deterministic(system, variants):
    again = restore(system, FID, 2, EVENING, OUTAGE)
    first = variants[2, "both"]
    pd.testing.assert_frame_equal(again.sections, first.sections)
    pd.testing.assert_frame_equal(again.unserved_mw, first.unserved_mw)
    pd.testing.assert_frame_equal(again.candidates, first.candidates)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"feeder_id": "nope"}, r"feeder_id 'nope'"),
    ({"line_id": 999}, r"line_id 999: no such line"),
    ({"line_id": 33}, r"line_id 33 .*already out of service"),
    ({"line_id": "2"}, r"line_id must be an integer"),
    ({"start": -1}, r"start must be an integer >= 0"),
    ({"duration_periods": 0}, r"duration_periods must be an integer >= 1"),
    ({"start": 22, "duration_periods": 3}, r"start 22 \+ duration_periods 3 .*horizon"),
    ({"options": FaultOptions(price_per_mwh=(1.0, 2.0))}, r"price_per_mwh: 2 prices"),
])
def test_bad_inputs_are_refused_by_name(system, kwargs, match):
    args = {"feeder_id": FID, "line_id": 2, "start": EVENING, "duration_periods": OUTAGE,
            **kwargs}
    with pytest.raises(TsodsoError, match=match):
        restore(system, **args)


def test_bad_options_are_refused_by_name():
    with pytest.raises(TsodsoError, match="FaultOptions.max_ties"):
        FaultOptions(max_ties=0)
    with pytest.raises(TsodsoError, match="FaultOptions.alert_loading"):
        FaultOptions(alert_loading=1.5)
    with pytest.raises(TsodsoError, match=r"FaultOptions.price_per_mwh\[1\]"):
        FaultOptions(price_per_mwh=(1.0, float("nan")))
