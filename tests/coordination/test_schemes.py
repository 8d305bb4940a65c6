"""Coordination schemes compared on the same systems."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from tsodso.coordination import SCHEMES, run_scheme
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path

REL = 1e-6  # solver tolerance on costs


def _small(pv_share: float) -> dict:
    """The default recipe cut to two Baran-Wu feeders (keeps the tests quick)."""
    recipe = yaml.safe_load(scenario_path("default").read_text())
    recipe["feeders"] = [dict(recipe["feeders"][0], at=[9, 14])]
    recipe["ders"]["pv"]["share"] = pv_share
    return recipe


@pytest.fixture(scope="module")
def high():
    return build_scenario(_small(1.5))


@pytest.fixture(scope="module")
def outcomes(high):
    return {name: run_scheme(high, name) for name in SCHEMES}


def test_common_is_the_lower_bound(outcomes):
    best = outcomes["common"].total_cost
    for name, o in outcomes.items():
        assert o.total_cost >= best * (1 - REL), name


def test_every_outcome_balances(outcomes):
    for name, o in outcomes.items():
        res = o.balance_residuals()
        assert abs(res["energy_mwh"]) < 1e-5, name
        assert abs(res["payments"]) < 1e-6 * max(1.0, abs(o.consumer_payments)), name


def test_tso_only_causes_violations_the_dso_aware_schemes_avoid(outcomes):
    assert outcomes["tso_only"].violation_summary()["thermal"] > 0
    for name in ("centralized", "local", "common", "admm", "hierarchical"):
        v = outcomes[name].violation_summary()
        assert v["voltage"] == 0 and v["thermal"] == 0, name
    # the correction is not free
    assert outcomes["tso_only"].total_cost > outcomes["common"].total_cost * (1 + 1e-3)


def test_admm_reaches_common(outcomes):
    admm, common = outcomes["admm"], outcomes["common"]
    assert admm.status == "optimal"
    assert admm.total_cost == pytest.approx(common.total_cost, rel=1e-3)
    np.testing.assert_allclose(admm.interface_schedules.to_numpy(),
                               common.interface_schedules.to_numpy(), atol=0.02)
    res = admm.residuals
    assert {"primal_residual", "dual_residual", "rho"} <= set(res.columns)
    assert res.primal_residual.iloc[-1] < 1e-2 * res.primal_residual.iloc[0]


def test_hierarchical_reports_iterations_and_residuals(outcomes):
    h = outcomes["hierarchical"]
    assert h.iterations == len(h.residuals) and h.iterations > 1
    assert h.status == "optimal"


def test_outcome_tables(outcomes, tmp_path):
    frame = outcomes["common"].to_frame()
    assert frame.loc["common", "total_cost"] == outcomes["common"].total_cost
    folder = outcomes["admm"].to_parquet(tmp_path)
    assert (folder / "summary.parquet").is_file() and (folder / "residuals.parquet").is_file()
    assert outcomes["hierarchical"].messages.loc["interface_price", "count"] > 0


def test_admm_with_two_dask_workers_matches_in_process(high):
    pytest.importorskip("distributed")
    from tsodso.parallel import make_executor

    def cached_models() -> int:  # models left in this process (run here and on each worker)
        from tsodso.coordination import admm

        return len(admm._PARTIES)  # noqa: SLF001

    small = copy.deepcopy(high)
    in_process = run_scheme(small, "admm")
    assert cached_models() == 0  # an in-process run leaves no models behind
    executor = make_executor(workers=2)
    try:
        distributed = run_scheme(small, "admm", executor=executor)
        left = executor.client.run(cached_models)
    finally:
        executor.close()
    assert len(left) == 2 and set(left.values()) == {0}  # the workers dropped their models
    assert distributed.iterations == in_process.iterations
    assert distributed.total_cost == pytest.approx(in_process.total_cost, rel=1e-7)
    # settled from the feeders' data (not their models) in the parent: same money and checks
    assert distributed.consumer_payments == pytest.approx(in_process.consumer_payments,
                                                          rel=1e-7)
    assert distributed.curtailed_mwh == pytest.approx(in_process.curtailed_mwh, abs=1e-6)
    assert len(distributed.violations) == len(in_process.violations)
    np.testing.assert_allclose(distributed.interface_schedules.to_numpy(),
                               in_process.interface_schedules.to_numpy(), atol=1e-6)


def test_admm_with_solvers_freed_matches(high, outcomes):
    """``keep_solvers=False`` (memory for thousands of feeders) reaches the same consensus."""
    lean = run_scheme(copy.deepcopy(high), "admm", keep_solvers=False)
    ref = outcomes["admm"]
    assert lean.iterations == ref.iterations
    assert lean.total_cost == pytest.approx(ref.total_cost, rel=1e-7)
    np.testing.assert_allclose(lean.interface_schedules.to_numpy(),
                               ref.interface_schedules.to_numpy(), atol=1e-5)


def test_admm_solver_budget_keeps_some_and_frees_the_rest(high, outcomes, monkeypatch):
    """With the default ``keep_solvers=None`` a process keeps solvers within its budget:
    with room for one feeder's solver, one keeps it and the other frees it every solve."""
    from tsodso.coordination import admm

    seen: list[bool] = []
    original = admm._keeps_solver  # noqa: SLF001

    def spy(key, op, keep_solvers):
        seen.append(original(key, op, keep_solvers))
        return seen[-1]

    from tsodso.actors.dso import CONSENSUS

    sizes = [admm.DsoOpf(high, f, CONSENSUS).model.num_vars for f in high.feeder_ids]
    assert len(sizes) == 2
    budget = (max(sizes) + 0.5 * min(sizes)) * admm.SOLVER_BYTES_PER_VARIABLE  # room for one
    monkeypatch.setattr(admm, "SOLVER_BUDGET_BYTES", budget)
    monkeypatch.setattr(admm, "_keeps_solver", spy)
    mixed = run_scheme(copy.deepcopy(high), "admm")
    assert seen == [True, False]
    assert admm._KEPT_BYTES == {}  # noqa: SLF001 - the run's budget is released
    ref = outcomes["admm"]
    assert mixed.total_cost == pytest.approx(ref.total_cost, rel=1e-7)
    np.testing.assert_allclose(mixed.interface_schedules.to_numpy(),
                               ref.interface_schedules.to_numpy(), atol=1e-4)


def test_admm_final_solve_prices_at_the_consensus(high, outcomes):
    """The DSO party's final solve is its last consensus subproblem with prices: its
    import is its last answer and its root price is rho (p - target), the consensus price
    (no feeder is held to a schedule it meets only to tolerance)."""
    from tsodso.actors import InterfaceSchedule, MessageBus, Party, new_envelope
    from tsodso.actors.dso import Dso

    fid = high.feeder_ids[0]
    party = Dso.of(high, [fid], name="d")
    rho = 20.0
    # the target whose consensus price at the settled import is the settled LMP
    settled = outcomes["admm"]
    target = (settled.interface_schedules[fid].to_numpy()
              - settled.interface_lmp[fid].to_numpy() / rho)
    with MessageBus() as bus:
        env = new_envelope("tso", Party.dso("d"), periods=len(target), period_hours=1.0)
        sent = bus.send(InterfaceSchedule(env, feeder_id=fid, p_mw=target,
                                          deviation_penalty=rho))
        reply = party.consensus_step(sent)
    assert reply.envelope.reply_to == sent.envelope.id and reply.envelope.recipient == Party.tso()
    got = party.consensus_prices(fid)
    p0 = got.interface_p_mw.to_numpy()
    np.testing.assert_allclose(p0, reply.p_mw, atol=1e-5)
    np.testing.assert_allclose(got.interface_marginal_price.to_numpy(), rho * (p0 - target),
                               atol=1e-6)
    assert party.model(fid) is not None
    party.forget_consensus()
    with pytest.raises(TsodsoError, match="received no consensus target"):
        party.consensus_prices(fid)


def test_the_initial_phase_dso_only_curtails_storage(high):
    """In tso_only the DSO may curtail a storage unit's scheduled charging or discharging,
    never move it to another period; with storage_redispatch it may (a DSO operating the
    storage itself) and its cost at the interface price is then no higher."""
    from tsodso.actors.dso import Dso

    ders = high.ders
    store = ders[ders.kind == "storage"].iloc[0]
    fid = store.feeder_id
    T = high.n_periods
    schedule = pd.DataFrame(0.0, index=range(T), columns=ders.der_id)  # PV curtailed
    p = min(float(store.p_max_mw), -float(store.p_min_mw)) / 2
    schedule.loc[12, store.der_id] = -p  # charge at noon
    schedule.loc[19, store.der_id] = p * 0.8  # discharge in the evening
    price = np.full(T, 40.0)
    price[3] = 5.0  # cheap at night: a free operator would charge then
    dso = Dso.of(high, [fid])
    held = dso.correct(fid, schedule, price)
    out = held.der_p_mw[store.der_id].to_numpy()
    sched = schedule[store.der_id].to_numpy()
    assert np.all(np.sign(out) * np.sign(sched) >= 0)  # never the other direction
    assert np.all(np.abs(out) <= np.abs(sched) + 1e-7)  # never more than scheduled
    assert np.abs(out[sched == 0]).max() < 1e-7  # never moved to another period
    free = dso.correct(fid, schedule, price, storage_redispatch=True)
    moved = free.der_p_mw[store.der_id].to_numpy()
    assert np.abs(moved[sched == 0]).max() > 1e-3  # a free operator moves it
    assert free.objective <= held.objective + 1e-6


def test_storage_redispatch_is_a_checked_option(high):
    with pytest.raises(TsodsoError, match="storage_redispatch"):
        run_scheme(high, "tso_only", storage_redispatch="yes")
