"""SimBench loader: counts, totals and profiles checked against the simbench package's own net."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

simbench = pytest.importorskip("simbench")

from tsodso.errors import CaseNotFoundError, TsodsoError  # noqa: E402
from tsodso.io.simbench import (  # noqa: E402
    TRAFO_LINE_OFFSET,
    load_simbench,
    parse_code,
)

MV = "1-MV-rural--0-sw"
MV_2034 = "1-MV-rural--2-sw"
COUPLED = "1-HVMV-mixed-all-0-sw"
MVLV = "1-MVLV-rural-all-0-sw"  # LV grids folded into the MV feeder
LV = "1-LV-rural1--2-sw"
WINDOWS = {MV: (96, 1000), MV_2034: (8, 0), COUPLED: (24, 20000), MVLV: (4, 30000),
           LV: (4, 35132)}  # (n_periods, start)


# ------------------------------------------------------------------------------ fixtures
def _load(code: str, net=None):
    """load_simbench on the code's window; with ``net``, simbench hands out a copy of it.

    Reading a net from simbench's CSV files takes seconds; reusing the net the test compares
    against halves the module's runtime. ``mv`` goes the full way through simbench.
    """
    n, start = WINDOWS[code]
    if net is None:
        return load_simbench(code, n_periods=n, start=start)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simbench, "get_simbench_net", lambda c: copy.deepcopy(net))
        return load_simbench(code, n_periods=n, start=start)


@pytest.fixture(scope="module")
def mv_net():
    return simbench.get_simbench_net(MV)


@pytest.fixture(scope="module")
def mv():
    return _load(MV)


@pytest.fixture(scope="module")
def mv_2034_net():
    return simbench.get_simbench_net(MV_2034)


@pytest.fixture(scope="module")
def mv_2034(mv_2034_net):
    return _load(MV_2034, mv_2034_net)


@pytest.fixture(scope="module")
def coupled():
    net = simbench.get_simbench_net(COUPLED)
    return net, _load(COUPLED, net)


@pytest.fixture(scope="module", params=[MV, MV_2034, COUPLED, MVLV, LV])
def case(request):
    """(code, the simbench package's net, the loaded System) for each tested code."""
    code = request.param
    if code == MV:
        return code, request.getfixturevalue("mv_net"), request.getfixturevalue("mv")
    if code == MV_2034:
        return code, request.getfixturevalue("mv_2034_net"), request.getfixturevalue("mv_2034")
    if code == COUPLED:
        return (code, *request.getfixturevalue("coupled"))
    net = simbench.get_simbench_net(code)
    return code, net, _load(code, net)


# ------------------------------------------------------------------------------- helpers
def fused_bus_count(net) -> int:
    """Buses left after merging those joined by closed bus-bus switches."""
    pos = pd.Index(net.bus.index)
    sw = net.switch[(net.switch.et == "b") & net.switch.closed.astype(bool)]
    n = len(pos)
    graph = sp.coo_matrix((np.ones(len(sw)), (pos.get_indexer(sw.bus),
                                             pos.get_indexer(sw.element))), shape=(n, n))
    return connected_components(graph, directed=False)[0]


def live_lines(net) -> int:
    sw = net.switch
    opened = set(sw.element[(sw.et == "l") & ~sw.closed.astype(bool)])
    return int((net.line.in_service & ~net.line.index.isin(opened)).sum())


def live_trafos(net) -> int:
    sw = net.switch
    opened = set(sw.element[(sw.et == "t") & ~sw.closed.astype(bool)])
    return int((net.trafo.in_service & ~net.trafo.index.isin(opened)).sum())


def sources(system, prefix: str) -> list[int]:
    return [int(s.split(":")[1]) for s in system.meta["generator_source"] if
            s.startswith(prefix + ":")]


def absolute_at(net, step: int) -> dict:
    """simbench's absolute values at one time step (profiles cut to that step first)."""
    full = net.profiles
    net.profiles = {k: (v.iloc[step:step + 1] if len(v) else v) for k, v in full.items()}
    try:
        return simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    finally:
        net.profiles = full


# ---------------------------------------------------------------------------- the codes
def test_validates_without_issues(case):
    _, _, system = case
    assert system.validate() == []


def test_element_counts_match_the_net(case):
    _, net, s = case
    g = s.grid
    # buses: transmission + feeders = the net's buses after fusing closed bus-bus switches
    assert len(g.buses) + len(s.feeder_buses) == fused_bus_count(net)
    # in-service lines: transmission line branches + feeder lines (not folded transformers)
    kinds = pd.Series([b.split(":")[0] for b in s.meta["branch_source"]], dtype=object)
    live = g.branches.in_service.to_numpy()
    t_lines = int((live & (kinds == "line").to_numpy()).sum())
    t_trafos = int((live & (kinds == "trafo").to_numpy()).sum())
    fl = s.feeder_lines[s.feeder_lines.in_service]
    assert t_lines + int((fl.line_id < TRAFO_LINE_OFFSET).sum()) == live_lines(net)
    substation = sum(len(v) for v in s.meta["feeder_trafos"].values())
    folded = int((fl.line_id >= TRAFO_LINE_OFFSET).sum())
    assert t_trafos + folded + substation == live_trafos(net)
    # loads, sgens, storages
    assert not s.feeder_loads.profile.str.endswith(":neg").any()
    assert len(g.loads) + len(s.feeder_loads) == len(net.load)
    der_sgen = s.ders.der_id.str.startswith("sgen:")
    assert len(sources(s, "sgen")) + int(der_sgen.sum()) == len(net.sgen)
    assert int((s.ders.kind == "storage").sum()) == len(net.storage)
    assert len(sources(s, "ext_grid")) == len(net.ext_grid)


def test_totals_match_the_net(case):
    _, net, s = case
    assert g_load(s) == pytest.approx(net.load.p_mw.sum(), rel=1e-12)
    gens = s.grid.generators
    sgen_gens = gens.iloc[[s.meta["generator_source"].index(f"sgen:{i}")
                           for i in sources(s, "sgen")]]
    der_sgen = s.ders[s.ders.der_id.str.startswith("sgen:")]
    assert sgen_gens.pmax_mw.sum() + der_sgen.p_max_mw.sum() == pytest.approx(
        net.sgen.p_mw.sum(), rel=1e-12)
    storage = s.ders[s.ders.kind == "storage"]
    assert storage.p_max_mw.sum() == pytest.approx(net.storage.p_mw.abs().sum(), rel=1e-12)
    assert storage.energy_mwh.sum() == pytest.approx(net.storage.max_e_mwh.sum(), rel=1e-12)


def g_load(s) -> float:
    return float(s.grid.loads.p_mw.sum() + s.feeder_loads.p_mw.sum())


def test_profiles_have_the_window_and_are_finite(case):
    code, net, s = case
    n, start = WINDOWS[code]
    assert s.profiles.n_periods == n
    assert s.profiles.period_hours == 0.25
    assert s.profiles.series.shape[0] == n
    assert np.isfinite(s.profiles.series.to_numpy()).all()
    assert (s.profiles.series.to_numpy() >= 0).all()
    assert s.meta["start"] == start
    # elements share their SimBench profile's column ('zero' for nominal 0; loads with only
    # reactive power follow their q profile)
    n_names = 2 * net.load.profile.nunique() + net.sgen.profile.nunique() + 1
    assert s.profiles.series.shape[1] <= n_names


def test_first_period_reproduces_absolute_values(case):
    code, net, s = case
    _, start = WINDOWS[code]
    absolute = absolute_at(net, start)
    first = s.profiles.series.iloc[0]

    def mult(name: str) -> float:
        return 1.0 if name == "" else float(first[name])

    loads = pd.concat([s.grid.loads[["load_id", "p_mw", "profile"]],
                       s.feeder_loads[["load_id", "p_mw", "profile"]]]).set_index("load_id")
    want = absolute[("load", "p_mw")].iloc[0]
    for i in list(net.load.index[:5]) + list(net.load.index[-5:]):
        row = loads.loc[i]
        assert row.p_mw * mult(row.profile) == pytest.approx(want[i], abs=1e-12)
    ders = s.ders.set_index("der_id")
    want = absolute[("sgen", "p_mw")].iloc[0]
    for i in list(net.sgen.index[-8:]):
        der_id = f"sgen:{i}"
        if der_id not in ders.index:
            continue  # a transmission generator
        row = ders.loc[der_id]
        # negative availability (a wind turbine's own consumption) is reported and set to 0
        assert row.p_max_mw * mult(row.profile) == pytest.approx(max(want[i], 0.0), abs=1e-12)


def test_full_year_values_agree_with_the_window(mv, mv_net):
    """The window equals get_absolute_values over the year at the same steps."""
    n, start = WINDOWS[MV]
    year = simbench.get_absolute_values(mv_net, profiles_instead_of_study_cases=True)
    loads = mv.feeder_loads.set_index("load_id")
    mult = mv.profiles.multipliers(loads.profile)
    got = mult * loads.p_mw.to_numpy()
    want = year[("load", "p_mw")].iloc[start:start + n][loads.index].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------- MV specifics
def test_mv_code_has_a_single_slack_bus_and_one_feeder(mv, mv_net):
    g = mv.grid
    assert len(g.buses) == 1
    assert g.buses.bus_type.tolist() == [3]
    assert g.buses.base_kv.tolist() == [110.0]
    assert mv.meta["generator_source"] == ["ext_grid:0"]
    assert g.generators.pmin_mw.iloc[0] < 0 < g.generators.pmax_mw.iloc[0]
    f = mv.feeders.iloc[0]
    assert mv.feeder_ids == ["MV1.101"]
    assert f.interface_bus == g.buses.bus_id.iloc[0]
    assert f.root_bus == 2  # busbars 2 and 3 are fused by the closed sectionalizer
    assert f.substation_mva == pytest.approx(mv_net.trafo.sn_mva.sum())
    assert f.nominal_kv == 20.0
    assert (f.v_min_pu, f.v_max_pu) == (0.965, 1.055)
    # open ring switches leave their lines out of service
    opened = set(mv_net.switch.element[(mv_net.switch.et == "l") & ~mv_net.switch.closed])
    out = set(mv.feeder_lines.line_id[~mv.feeder_lines.in_service])
    assert out == opened


def test_feeder_lines_in_ohm(mv, mv_net):
    line = mv_net.line.loc[3]
    row = mv.feeder_lines.set_index("line_id").loc[3]
    assert row.r_ohm == pytest.approx(line.r_ohm_per_km * line.length_km)
    assert row.x_ohm == pytest.approx(line.x_ohm_per_km * line.length_km)
    assert row.rating_mva == pytest.approx(line.max_i_ka * 20.0 * math.sqrt(3))
    assert row.b_us == pytest.approx(2 * math.pi * 50 * line.c_nf_per_km * line.length_km * 1e-3)


def test_lines_point_away_from_the_root(mv):
    lines = mv.feeder_lines[mv.feeder_lines.in_service]
    parents = lines.groupby("to_bus").size()
    assert (parents == 1).all()  # every bus has one feeding line
    assert mv.feeders.root_bus.iloc[0] not in set(lines.to_bus)


def test_ders_and_aggregators(mv, mv_2034):
    for s in (mv, mv_2034):
        assert set(s.aggregators.aggregator_id) == {"agg_MV1.101"}
        assert (s.ders.aggregator_id == "agg_MV1.101").all()
        assert set(s.ders.kind) <= {"pv", "wind", "dg", "storage"}
    kinds = mv.ders.set_index("der_id").kind
    assert kinds["sgen:0"] == "wind"  # Wind_MV
    storage = mv_2034.ders[mv_2034.ders.kind == "storage"]
    assert len(storage) > 0
    assert (storage.p_min_mw == -storage.p_max_mw).all()
    assert (storage.energy_mwh > 0).all()


def test_scenario_digit_gives_the_penetration_phase(mv, mv_2034):
    assert mv.meta["penetration_phase"] == {"scenario": 0, "label": "today"}
    assert mv_2034.meta["penetration_phase"] == {"scenario": 2, "label": "2034"}
    assert mv.meta["source"] == f"simbench:{MV}"

    def capacity(s):
        return s.ders[s.ders.kind != "storage"].p_max_mw.sum()

    assert capacity(mv_2034) > capacity(mv)


def test_untranslatable_tables_are_noted(mv):
    notes = "\n".join(mv.grid.notes)
    assert "measurement" in notes
    assert "loadcases" in notes


# ------------------------------------------------------------------ coupled specifics
def test_coupled_code_transmission_and_feeders(coupled):
    net, s = coupled
    g = s.grid
    assert set(g.buses.base_kv) == {380.0, 220.0, 110.0}
    assert (g.buses.bus_type == 3).sum() >= 1
    assert set(s.feeders.interface_bus) <= set(g.buses.bus_id)
    assert set(s.feeders.nominal_kv) <= {10.0, 20.0}
    # every substation transformer is accounted for exactly once
    trafos = [t for v in s.meta["feeder_trafos"].values() for t in v]
    assert len(trafos) == len(set(trafos))
    for fid, ids in s.meta["feeder_trafos"].items():
        f = s.feeders.set_index("feeder_id").loc[fid]
        assert f.substation_mva == pytest.approx(net.trafo.sn_mva.loc[ids].sum())


def test_transmission_branches_match_pandapower(coupled):
    """Per-unit values equal pandapower's own internal model (except magnetising branches)."""
    net, s = coupled
    from pandapower.converter.pypower.to_ppc import to_ppc

    net = copy.deepcopy(net)
    net.sn_mva = 100.0
    ppc = to_ppc(net, calculate_voltage_angles=True, trafo_model="pi", init="flat")
    n_line = len(net.line)
    rows = [int(t.split(":")[1]) + (0 if t.startswith("line") else n_line)
            for t in s.meta["branch_source"]]
    theirs = ppc["branch"][rows].real
    mine = s.grid.branches
    np.testing.assert_allclose(mine.r_pu, theirs[:, 2], rtol=1e-9)
    np.testing.assert_allclose(mine.x_pu, theirs[:, 3], rtol=1e-9)
    is_line = np.array([t.startswith("line") for t in s.meta["branch_source"]])
    np.testing.assert_allclose(mine.b_pu[is_line], theirs[is_line, 4], rtol=1e-9)
    np.testing.assert_allclose(mine.rate_a_mva, theirs[:, 5], rtol=1e-9)
    np.testing.assert_allclose(mine.tap_ratio, np.where(theirs[:, 8] == 0, 1, theirs[:, 8]))
    np.testing.assert_allclose(mine.shift_deg, theirs[:, 9])


def test_lower_levels_fold_into_the_feeder_and_lv_codes_hang_off_an_mv_bus(case):
    code, net, s = case
    if code == LV:
        assert s.grid.buses.base_kv.tolist() == [20.0]
        assert s.feeders.nominal_kv.tolist() == [0.4]
        assert s.feeders.substation_mva.tolist() == [net.trafo.sn_mva.sum()]
    if code == MVLV:
        folded = s.feeder_lines[s.feeder_lines.line_id >= TRAFO_LINE_OFFSET]
        ids = folded.line_id - TRAFO_LINE_OFFSET
        assert len(folded) == int((net.trafo.vn_hv_kv == 20.0).sum())
        assert folded.rating_mva.tolist() == net.trafo.sn_mva.loc[ids].tolist()
        # a 0.4 kV line referred to 20 kV keeps its per-unit impedance
        line = s.feeder_lines.set_index("line_id").loc[net.line.index[net.line.voltLvl == 7][0]]
        raw = net.line.loc[line.name]
        assert line.r_ohm == pytest.approx(raw.r_ohm_per_km * raw.length_km * (20 / 0.4) ** 2)
        assert set(s.feeder_buses.v_min_pu) == {0.9, 0.965}
    assert "simbench" in s.meta["source"]


# ------------------------------------------------------------------------------ errors
def test_unknown_code_lists_valid_codes():
    with pytest.raises(CaseNotFoundError) as err:
        load_simbench("1-MV-rurall--0-sw")
    assert "1-MV-rural--0-sw" in str(err.value)
    assert "1-LV-rural1--0-sw" in str(err.value)


def test_parse_code():
    info = parse_code("1-HVMV-mixed-all-2-sw")
    assert info.voltage_levels == ("HV", "MV")
    assert info.scenario == 2 and info.label == "2034" and info.switches
    assert parse_code("simbench:1-EHV-mixed--1-no_sw").voltage_levels == ("EHV",)
    assert not parse_code("1-EHV-mixed--1-no_sw").switches


def test_window_outside_the_year():
    with pytest.raises(TsodsoError, match="35136"):
        load_simbench(MV, n_periods=10, start=35130)


def test_loop_names_the_feeder(mv_net, monkeypatch):
    net = copy.deepcopy(mv_net)
    net.switch["closed"] = True  # close the ring switches: the MV grid is meshed
    monkeypatch.setattr(simbench, "get_simbench_net", lambda code: net)
    with pytest.raises(TsodsoError, match="feeder MV1.101 is not radial .*: 6 loops"):
        load_simbench(MV, n_periods=4)
