"""Feeder AC power flow (power-grid-model batch) against MATPOWER runpf and pandapower."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from refdata import reference
from tsodso.errors import TsodsoError, ValidationError
from tsodso.io.feeders import feeder_system
from tsodso.model.network import Feeder
from tsodso.model.profiles import Profiles
from tsodso.powerflow import (
    FeederPowerFlow,
    NotConvergedError,
    der_injections,
    feeder_power_flow,
    power_flow,
)

PF = reference("matpower_pf.json")
CASES = ("case33bw", "case69", "case141", "case85")


def _copy(feeder: Feeder, **info) -> Feeder:
    row = feeder.info.copy()
    for key, value in info.items():
        row[key] = value
    return Feeder(row, feeder.buses.copy(), feeder.lines.copy(), feeder.loads.copy())


def _scaled(pf: FeederPowerFlow, scales: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    p, q = pf.feeder_loads()
    idx = pd.RangeIndex(len(scales), name="period")
    return (pd.DataFrame(np.outer(scales, p.iloc[0]), index=idx, columns=p.columns),
            pd.DataFrame(np.outer(scales, q.iloc[0]), index=idx, columns=q.columns))


# ----------------------------------------------------------------- accuracy
def test_case33bw_baran_wu(feeders):
    """Baran & Wu (1989): 202.68 kW losses, minimum voltage 0.9131 pu at bus 18."""
    result = power_flow(feeders["case33bw"])
    assert result.all_converged
    assert result.p_loss_mw.iloc[0] * 1e3 == pytest.approx(202.68, abs=0.01)
    vmin = result.vmin()
    assert round(vmin.value, 4) == 0.9131
    assert vmin.bus_id == 18
    assert result.vm_pu.loc[0, 1] == pytest.approx(1.0, abs=1e-12)  # ideal slack


@pytest.mark.parametrize("method", ["newton_raphson", "iterative_current"])
@pytest.mark.parametrize("case", CASES)
def test_matches_matpower_runpf(feeders, case, method):
    ref = PF[f"matpower:{case}"]
    result = power_flow(feeders[case], method=method)
    assert result.all_converged
    buses = result.vm_pu.columns
    vm_ref = np.array([ref["vm"][str(b)] for b in buses])
    va_ref = np.array([ref["va"][str(b)] for b in buses])
    np.testing.assert_allclose(result.vm_pu.iloc[0].to_numpy(), vm_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.va_deg.iloc[0].to_numpy(), va_ref, rtol=0, atol=1e-5)
    assert result.p_loss_mw.iloc[0] == pytest.approx(ref["loss_p_mw"], abs=1e-7)
    assert result.q_loss_mvar.iloc[0] == pytest.approx(ref["loss_q_mvar"], abs=1e-7)
    vmin = result.vmin()
    assert vmin.value == pytest.approx(ref["vm_min"], abs=1e-6)
    assert vmin.bus_id == ref["vm_min_bus"]


@pytest.mark.parametrize("case", CASES)
def test_matches_pandapower(feeders, pp_solve, case):
    feeder = feeders[case]
    result = power_flow(feeder)
    net = pp_solve(feeder)
    buses = result.vm_pu.columns
    np.testing.assert_allclose(result.vm_pu.iloc[0], net.res_bus.vm_pu.loc[buses], atol=1e-6)
    np.testing.assert_allclose(result.va_deg.iloc[0], net.res_bus.va_degree.loc[buses],
                               atol=1e-5)
    lines = result.p_from_mw.columns
    live = feeder.lines.set_index("line_id").in_service.loc[lines].to_numpy()
    np.testing.assert_allclose(result.p_from_mw.iloc[0], net.res_line.p_from_mw.loc[lines],
                               atol=1e-7)
    np.testing.assert_allclose(result.q_to_mvar.iloc[0], net.res_line.q_to_mvar.loc[lines],
                               atol=1e-7)
    np.testing.assert_allclose(result.i_ka.iloc[0][live], net.res_line.i_ka.loc[lines][live],
                               atol=1e-8)
    assert result.p_loss_mw.iloc[0] == pytest.approx(net.res_line.pl_mw.sum(), abs=1e-7)
    assert result.substation_p_mw.iloc[0] == pytest.approx(net.res_ext_grid.p_mw.iloc[0],
                                                           abs=1e-7)
    assert result.substation_q_mvar.iloc[0] == pytest.approx(
        net.res_ext_grid.q_mvar.iloc[0], abs=1e-7)


def test_pandapower_with_charging_ratings_reverse_flow_and_raised_root(feeders, pp_solve):
    """Line charging, ratings, v_root != 1 and DER injections larger than the load."""
    base = feeders["case33bw"]
    feeder = _copy(base, v_root_pu=1.03)
    feeder.lines["b_us"] = 50.0 + feeder.lines.line_id.to_numpy()  # uS
    feeder.lines["rating_mva"] = 1.0 + 0.1 * feeder.lines.line_id.to_numpy()
    pf = FeederPowerFlow(feeder)
    load_p, load_q = pf.feeder_loads()
    inj_p = pd.DataFrame({18: [2.5], 33: [1.5], 25: [0.8]})
    inj_q = pd.DataFrame({18: [-0.3], 33: [0.2]})
    result = pf.run(load_p, load_q, inj_p, inj_q)
    net_p = (load_p.iloc[0] - inj_p.reindex(columns=load_p.columns, fill_value=0.0).iloc[0])
    net_q = (load_q.iloc[0] - inj_q.reindex(columns=load_q.columns, fill_value=0.0).iloc[0])
    net = pp_solve(feeder, net_p, net_q)
    buses = result.vm_pu.columns
    np.testing.assert_allclose(result.vm_pu.iloc[0], net.res_bus.vm_pu.loc[buses], atol=1e-6)
    assert result.vm_pu.iloc[0].max() > 1.03  # reverse flow raises voltages above the root
    assert result.substation_p_mw.iloc[0] < 0  # export to the grid
    assert result.p_loss_mw.iloc[0] == pytest.approx(net.res_line.pl_mw.sum(), abs=1e-7)
    assert result.q_loss_mvar.iloc[0] == pytest.approx(net.res_line.ql_mvar.sum(), abs=1e-7)
    lines = result.loading_pct.columns
    live = feeder.lines.set_index("line_id").in_service.loc[lines].to_numpy()
    np.testing.assert_allclose(result.loading_pct.iloc[0][live],
                               net.res_line.loading_percent.loc[lines][live], atol=1e-5)


def test_meshed_feeder_matches_pandapower(feeders, pp_solve):
    """Closing the five tie switches of case33bw makes it meshed; PGM still solves it."""
    feeder = _copy(feeders["case33bw"])
    feeder.lines["in_service"] = True
    result = power_flow(feeder)
    net = pp_solve(feeder)
    buses = result.vm_pu.columns
    np.testing.assert_allclose(result.vm_pu.iloc[0], net.res_bus.vm_pu.loc[buses], atol=1e-6)
    assert result.p_loss_mw.iloc[0] == pytest.approx(net.res_line.pl_mw.sum(), abs=1e-7)
    assert result.p_loss_mw.iloc[0] < power_flow(feeders["case33bw"]).p_loss_mw.iloc[0]


# -------------------------------------------------------------------- batch
@pytest.mark.parametrize("method", ["newton_raphson", "iterative_current"])
def test_batch_equals_separate_runs(feeders, method):
    pf = FeederPowerFlow(feeders["case69"], method=method)
    scales = np.array([0.2, 0.55, 1.0, 1.3, 0.8, 1.1])
    load_p, load_q = _scaled(pf, scales)
    inj = pd.DataFrame({27: np.linspace(0, 0.6, len(scales)), 65: 0.3}, index=load_p.index)
    batch = pf.run(load_p, load_q, inj_p=inj)
    assert batch.n_periods == len(scales)
    assert batch.all_converged
    for t in range(len(scales)):
        single = pf.run(load_p.iloc[[t]], load_q.iloc[[t]], inj_p=inj.iloc[[t]])
        for name in ("vm_pu", "va_deg", "p_from_mw", "q_from_mvar", "p_to_mw", "i_ka"):
            np.testing.assert_allclose(getattr(batch, name).iloc[t],
                                       getattr(single, name).iloc[0], rtol=0, atol=1e-12)
        assert batch.p_loss_mw.iloc[t] == pytest.approx(single.p_loss_mw.iloc[0], abs=1e-12)
    # each period is the base case of a feeder whose loads are scaled
    feeder = _copy(feeders["case69"])
    feeder.loads[["p_mw", "q_mvar"]] *= 1.3
    ref = power_flow(feeder, method=method)
    np.testing.assert_allclose(pf.run(load_p.iloc[[3]], load_q.iloc[[3]]).vm_pu.iloc[0],
                               ref.vm_pu.iloc[0], atol=1e-12)


def test_parallel_batch_equals_sequential(feeders):
    pf_seq = FeederPowerFlow(feeders["case33bw"], threads=-1)
    pf_par = FeederPowerFlow(feeders["case33bw"], threads=0)
    scales = np.random.default_rng(1).uniform(0.1, 1.2, 300)
    load_p, load_q = _scaled(pf_seq, scales)
    a, b = pf_seq.run(load_p, load_q), pf_par.run(load_p, load_q)
    np.testing.assert_allclose(a.vm_pu, b.vm_pu, atol=1e-12)
    assert a.vm_pu.index.equals(load_p.index)


def test_profiles_scale_loads_per_period():
    system = feeder_system("matpower:case33bw", n_periods=4)
    feeder = system.feeder("case33bw")
    feeder.loads["profile"] = np.where(feeder.loads.bus_id <= 18, "res", "")
    profiles = Profiles(1.0, 4, pd.DataFrame({"res": [0.5, 0.7, 1.0, 1.2]}))
    result = feeder_power_flow(feeder, profiles=profiles)
    pf = FeederPowerFlow(feeder)
    for t, scale in enumerate([0.5, 0.7, 1.0, 1.2]):
        p, q = pf.feeder_loads()
        factor = np.where(p.columns <= 18, scale, 1.0)
        single = pf.run(p * factor, q * factor)
        np.testing.assert_allclose(result.vm_pu.iloc[t], single.vm_pu.iloc[0], atol=1e-12)
    # injections with the profiles' periods; a one-period table broadcasts
    pv = pd.DataFrame({18: [0.0, 0.3, 0.6, 0.2]})
    with_pv = feeder_power_flow(feeder, pv, profiles=profiles)
    assert (with_pv.vm_pu[18] >= result.vm_pu[18] - 1e-12).all()
    flat = feeder_power_flow(feeder, pd.DataFrame({18: [0.3]}, index=[7]), profiles=profiles)
    assert flat.n_periods == 4


# ---------------------------------------------------------- loading, limits
def test_loading_and_violations(feeders):
    base = feeders["case33bw"]
    probe = power_flow(base)
    s_mva = np.hypot(probe.p_from_mw, probe.q_from_mvar).iloc[0]
    feeder = _copy(base, substation_mva=4.0)
    lines = feeder.lines.set_index("line_id")
    over = [1, 2, 3, 6]  # rated below their flow
    rating = pd.Series(np.inf, index=lines.index)
    live = lines.index[lines.in_service]
    rating[live] = np.maximum(s_mva[live] * 1.25, 0.01)
    rating[over] = s_mva[over] * 0.9
    feeder.lines["rating_mva"] = rating.to_numpy()
    result = power_flow(feeder)
    kv = feeder.info["nominal_kv"]
    i_rated = (rating / (np.sqrt(3) * kv)).replace(np.inf, np.nan)
    expected = 100 * result.i_ka.iloc[0] / i_rated
    np.testing.assert_allclose(result.loading_pct.iloc[0], expected, rtol=1e-12)
    assert np.isnan(result.loading_pct.iloc[0][~lines.in_service]).all()  # unlimited ties
    # current-based loading = apparent power over the rating at nominal voltage, so an 0.9
    # rating is exceeded by ~1/0.9 at the head of the feeder (V ~ 1 pu)
    assert result.loading_pct.iloc[0][1] == pytest.approx(100 / 0.9, rel=0.01)
    # substation: |S| of about 4.6 MVA against 4 MVA
    sub = np.hypot(result.substation_p_mw, result.substation_q_mvar).iloc[0]
    assert result.substation_loading_pct.iloc[0] == pytest.approx(100 * sub / 4.0)

    v_limit = 0.93
    table = result.violations(v_min=v_limit, v_max=1.05)
    ref_vm = PF["matpower:case33bw"]["vm"]
    low = sorted(int(b) for b, v in ref_vm.items() if v < v_limit)
    assert list(table.columns) == ["period", "element", "element_id", "kind", "value", "limit"]
    got_bus = table[table.element == "bus"]
    assert sorted(got_bus.element_id) == low
    assert (got_bus.kind == "undervoltage").all() and (got_bus.limit == v_limit).all()
    got_line = table[table.element == "line"]
    assert sorted(got_line.element_id) == over
    assert (got_line.value > 100).all() and (got_line.limit == 100).all()
    got_sub = table[table.element == "substation"]
    assert list(got_sub.element_id) == ["case33bw"] and got_sub.value.iloc[0] > 100
    assert len(table) == len(low) + len(over) + 1
    # the feeder's own band (0.9 .. 1.1 in case33bw) is respected: no voltage violation
    assert (result.violations().element != "bus").all()
    # a looser thermal limit removes the line rows
    assert (result.violations(max_loading_pct=120).element != "line").all()


def test_overvoltage_and_per_period_violations(feeders):
    pf = FeederPowerFlow(feeders["case33bw"])
    load_p, load_q = _scaled(pf, np.array([1.0, 0.3]))
    inj = pd.DataFrame({18: [0.0, 3.0]}, index=load_p.index)
    result = pf.run(load_p, load_q, inj_p=inj)
    table = result.violations(v_min=0.9, v_max=1.05)
    assert set(table.period) == {1}
    assert set(table.kind) == {"overvoltage"}
    hot = result.vm_pu.iloc[1]
    assert sorted(table.element_id) == sorted(hot.index[hot > 1.05])
    assert result.vmax().period == 1 and result.vmax().bus_id == 18
    summary = result.summary()
    assert summary.loc[1, "vmax_bus"] == 18 and summary.loc[0, "vmin_bus"] == 18


# ----------------------------------------------------------- energy balance
@pytest.mark.parametrize("case", ["case33bw", "case141"])
def test_energy_balance(feeders, case):
    pf = FeederPowerFlow(feeders[case])
    rng = np.random.default_rng(7)
    scales = rng.uniform(0.2, 1.2, 12)
    load_p, load_q = _scaled(pf, scales)
    buses = rng.choice(pf.bus_ids[1:], 6, replace=False)
    inj_p = pd.DataFrame(rng.uniform(0, 0.8, (12, 6)), index=load_p.index, columns=buses)
    inj_q = pd.DataFrame(rng.uniform(-0.2, 0.2, (12, 6)), index=load_p.index, columns=buses)
    result = pf.run(load_p, load_q, inj_p, inj_q)
    assert result.all_converged
    balance_p = load_p.sum(axis=1) - inj_p.sum(axis=1) + result.p_loss_mw
    balance_q = load_q.sum(axis=1) - inj_q.sum(axis=1) + result.q_loss_mvar
    np.testing.assert_allclose(result.substation_p_mw, balance_p, atol=1e-9)
    np.testing.assert_allclose(result.substation_q_mvar, balance_q, atol=1e-9)
    assert (result.p_loss_mw > 0).all()


# ---------------------------------------------------------------- bad input
def test_unknown_bus_in_injections(feeders):
    pf = FeederPowerFlow(feeders["case33bw"])
    load_p, load_q = pf.feeder_loads()
    with pytest.raises(TsodsoError, match=r"inj_p.*99") as err:
        pf.run(load_p, load_q, inj_p=pd.DataFrame({5: [0.1], 99: [0.2]}))
    assert isinstance(err.value, ValidationError)
    assert err.value.issues[0].component == "inj_p" and err.value.issues[0].id == "99"


def test_nan_in_loads_names_period_and_bus(feeders):
    pf = FeederPowerFlow(feeders["case33bw"])
    load_p, load_q = _scaled(pf, np.array([1.0, 0.9, 0.8]))
    load_q.loc[2, 7] = np.nan
    with pytest.raises(TsodsoError, match=r"load_q.*period 2, bus 7.*nan"):
        pf.run(load_p, load_q)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"inj_p": np.zeros((3, 5))}, r"inj_p\.shape.*expected \(periods, 33\)"),
        ({"inj_p": np.zeros((5, 33))}, r"inj_p\.shape.*5 periods"),
        ({"inj_q": pd.DataFrame({3: [1.0, 2.0]}, index=[10, 11])}, r"inj_q\.index.*differs"),
        ({"inj_p": [1.0, 2.0]}, r"inj_p.*expected a DataFrame"),
        ({"inj_p": pd.DataFrame({3: ["x"]})}, r"inj_p.*non-numeric"),
        ({"inj_p": pd.DataFrame([[1.0, 2.0]], columns=[3, 3])}, r"inj_p\.bus_id\[3\].*twice"),
        ({"inj_p": pd.Series({4: np.inf})}, r"inj_p.*bus 4.*inf"),
    ],
)
def test_bad_input_shapes(feeders, kwargs, pattern):
    pf = FeederPowerFlow(feeders["case33bw"])
    load_p, load_q = _scaled(pf, np.array([1.0, 0.5, 0.7]))
    with pytest.raises(ValidationError, match=pattern):
        pf.run(load_p, load_q, **kwargs)


def test_bad_feeder_and_options(feeders):
    feeder = _copy(feeders["case33bw"])
    feeder.lines.loc[feeder.lines.index[4], "to_bus"] = 404
    with pytest.raises(ValidationError, match=r"feeder_lines\.to_bus\[case33bw/5\]"):
        FeederPowerFlow(feeder)
    with pytest.raises(ValidationError, match=r"root_bus.*77"):
        FeederPowerFlow(_copy(feeders["case33bw"], root_bus=77))
    with pytest.raises(ValidationError, match=r"method\[gauss_seidel\]"):
        FeederPowerFlow(feeders["case33bw"], method="gauss_seidel")
    zero = _copy(feeders["case33bw"])
    zero.lines.loc[zero.lines.index[2], ["r_ohm", "x_ohm"]] = 0.0
    with pytest.raises(ValidationError, match=r"r_ohm\[case33bw/3\]: zero impedance"):
        FeederPowerFlow(zero)
    with pytest.raises(ValidationError, match=r"feeder_loads\.profile\[peak\]"):
        loads = _copy(feeders["case33bw"])
        loads.loads["profile"] = "peak"
        FeederPowerFlow(loads).feeder_loads(Profiles(1.0, 2))
    nan_load = _copy(feeders["case33bw"])
    nan_load.loads.loc[nan_load.loads.index[3], "p_mw"] = np.nan
    with pytest.raises(ValidationError, match=r"feeder_loads\.p_mw.*NaN"):
        FeederPowerFlow(nan_load)
    with pytest.raises(ValidationError, match="expected a System or a Feeder"):
        power_flow("case33bw")


# ----------------------------------------------------------- divergence
def test_non_convergence_is_flagged_per_period(feeders):
    pf = FeederPowerFlow(feeders["case33bw"], max_iterations=15)
    load_p, load_q = _scaled(pf, np.array([1.0, 25.0, 0.5]))
    result = pf.run(load_p, load_q)
    assert result.converged.tolist() == [True, False, True]
    assert np.isnan(result.vm_pu.loc[1]).all() and np.isnan(result.p_loss_mw.loc[1])
    assert result.vmin().value == pytest.approx(result.vm_pu.loc[0].min())
    assert "converge" in result.messages[1]
    table = result.violations()
    assert table[["period", "element", "kind"]].values.tolist() == [
        [1, "feeder", "not_converged"]]
    with pytest.raises(NotConvergedError, match=r"1 of 3 periods.*period 1"):
        result.check()
    assert power_flow(feeders["case33bw"]).check().all_converged


# ---------------------------------------------------------------- wrappers
def test_power_flow_on_system_and_input_forms(feeders):
    system = feeder_system("matpower:case85")
    results = power_flow(system)
    assert list(results) == ["case85"]
    one = power_flow(system, "case85")
    np.testing.assert_allclose(results["case85"].vm_pu, one.vm_pu, atol=0)
    pf = FeederPowerFlow(system.feeder("case85"))
    load_p, load_q = pf.feeder_loads()
    as_array = pf.run(load_p.to_numpy()[0], load_q.to_numpy(), inj_p=np.zeros(85))
    as_series = pf.run(load_p.iloc[0], load_q.iloc[0])
    shuffled = pf.run(load_p[load_p.columns[::-1]], load_q)
    for other in (as_array, as_series, shuffled):
        np.testing.assert_allclose(other.vm_pu.to_numpy(), one.vm_pu.to_numpy(), atol=1e-14)
    # an array of 3 periods with a one-period table: broadcast
    three = pf.run(load_p, load_q, inj_p=np.zeros((3, 85)))
    assert three.n_periods == 3
    np.testing.assert_allclose(three.vm_pu.iloc[2], one.vm_pu.iloc[0], atol=1e-14)
    assert one.to_dict()["vmin_bus"] == [PF["matpower:case85"]["vm_min_bus"]]


def test_der_injections_sum_per_bus():
    system = feeder_system("matpower:case33bw")
    system.ders = pd.concat([system.ders, pd.DataFrame({
        "der_id": ["pv1", "pv2", "bat"], "kind": ["pv", "pv", "storage"],
        "feeder_id": "case33bw", "bus_id": [18, 18, 25], "p_max_mw": [0.5, 0.3, 0.2],
    })], ignore_index=True)
    dispatch = pd.DataFrame({"pv1": [0.1, 0.4], "pv2": [0.2, 0.3], "bat": [-0.2, 0.1]})
    inj_p, inj_q = der_injections(system, "case33bw", dispatch)
    assert inj_p.loc[:, 18].tolist() == pytest.approx([0.3, 0.7])
    assert inj_p.loc[:, 25].tolist() == pytest.approx([-0.2, 0.1])
    assert inj_q.shape == (2, 0)
    result = feeder_power_flow(system.feeder("case33bw"), inj_p, inj_q)
    assert result.n_periods == 2
    with pytest.raises(ValidationError, match=r"der_id\[wind9\].*unknown DER"):
        der_injections(system, "case33bw", pd.DataFrame({"wind9": [1.0]}))
    with pytest.raises(ValidationError, match="not other"):
        der_injections(system, "other", dispatch)
