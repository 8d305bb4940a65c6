"""Reserves through distribution (#13 items 4 and 5): procurement around a day-ahead
schedule, activation by messages with acknowledgements, states of charge, and the feeders'
AC power flow of what was activated, under the direct, prequalified and common variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsodso.actors import Acknowledgement, Activation, MessageBus
from tsodso.operations.reserves import (
    VARIANTS,
    Imbalance,
    ReserveRequirement,
    ResourceBook,
    activate_in_merit_order,
    resource_book,
    run_reserves,
)
from tsodso.operations.run import energy_after, initial_energy

#: midday: PV curtailed by the feeders' limits, storage soaking it up; evening: storage
#: discharging into the peak, EVs arriving
UP_PERIODS, DOWN_PERIODS, EVENT_MW = [10, 11, 12, 13], [19, 20, 21], 2.0


@pytest.fixture(scope="module")
def runs(default_system, builtin_outcome):
    """The three variants on default around the common scheme's day-ahead dispatch, each
    with its own bus (kept open to read the log)."""
    system = default_system
    base = builtin_outcome("default", "common")
    T = system.n_periods
    event = (Imbalance.in_periods(T, UP_PERIODS, EVENT_MW)
             + Imbalance.in_periods(T, DOWN_PERIODS, -EVENT_MW))
    requirement = ReserveRequirement.flat(T, 3.0, 3.0)
    out = {}
    for v in VARIANTS:
        bus = MessageBus()
        out[v] = (run_reserves(system, base, requirement, event, v, bus=bus), bus)
    return system, base, event, out


def test_direct_activation_violates_the_feeders_prequalified_and_common_do_not(runs):
    system, base, event, out = runs
    for result, _ in out.values():
        assert result.base_violations.empty  # the schedule alone is within limits
    direct = out["direct"][0]
    assert len(direct.new_violations) > 0
    assert set(direct.violations.period) <= set(UP_PERIODS + DOWN_PERIODS)
    for v in ("prequalified", "common"):
        assert out[v][0].violations.empty, v
    for v, (result, _) in out.items():
        a = result.activated_mw
        # the event is covered, or what is not is reported: activated + uncovered = event
        np.testing.assert_allclose(a.sum(axis=1) + result.uncovered_mw, event.mw, atol=1e-6,
                                   err_msg=v)
        quiet = [t for t in range(system.n_periods) if t not in UP_PERIODS + DOWN_PERIODS]
        assert np.abs(a.loc[quiet].to_numpy()).max() < 1e-9
        assert (a.loc[UP_PERIODS].to_numpy() >= -1e-9).all()  # up only when short
        assert (a.loc[DOWN_PERIODS].to_numpy() <= 1e-9).all()
        # activation never beyond what was procured
        assert (a.clip(lower=0) <= result.procured_up_mw + 1e-9).all().all()
        assert ((-a).clip(lower=0) <= result.procured_down_mw + 1e-9).all().all()
        assert a.abs().to_numpy().sum() > 0.5  # something was activated


def test_the_activated_energy_is_that_of_the_accepted_activations(runs):
    system, _, _, out = runs
    dt = system.profiles.period_hours
    for result, bus in out.values():
        acts = {m.envelope.id: m for m in bus.log.messages(kind=Activation)}
        acks = bus.log.messages(kind=Acknowledgement)
        assert len(acks) == len(acts) == len(result.calls) > 0
        energy: dict[str, float] = {}
        refused = 0
        for ack in acks:
            act = acts[ack.envelope.reply_to]
            assert ack.envelope.sender == act.envelope.recipient
            if not ack.accepted:
                assert ack.reason.strip()
                refused += 1
                continue
            for k, der in enumerate(act.resource_ids):
                mwh = float(np.asarray(act.delta_mw)[:, k].sum()) * dt
                energy[der] = energy.get(der, 0.0) + mwh
        assert refused == len(result.refusals)
        from_result = (result.activated_mw.sum() * dt)
        from_result = from_result[from_result.abs() > 1e-12]
        got = pd.Series(energy)
        got = got[got.abs() > 1e-12]
        pd.testing.assert_series_equal(got.sort_index(), from_result.sort_index(),
                                       check_names=False, atol=1e-9)


def test_states_of_charge_stay_in_range_and_evs_leave_with_their_energy(runs):
    system, base, _, out = runs
    d = system.ders.set_index("der_id")
    for v, (result, _) in out.items():
        output = base.der_dispatch.copy().set_axis(result.activated_mw.index)
        output[result.activated_mw.columns] += result.activated_mw
        energy = initial_energy(system)
        path = [energy]
        for _, p in output.iterrows():  # run.energy_after: an independent account
            energy = energy_after(system, energy, p)
            path.append(energy)
        path = pd.DataFrame(path)[result.energy_mwh.columns]
        np.testing.assert_allclose(path.to_numpy(), result.energy_mwh.to_numpy(), atol=1e-9)
        for der in path.columns:
            e_min = d.at[der, "soc_min"] * d.at[der, "energy_mwh"]
            e_max = d.at[der, "soc_max"] * d.at[der, "energy_mwh"]
            if d.at[der, "kind"] == "storage":  # 1e-6 MWh: the schedule's solver accuracy
                assert path[der].min() >= e_min - 1e-6 and path[der].max() <= e_max + 1e-6
            else:
                dep = d.at[der, "departure_period"]
                dep = system.n_periods if dep < 0 else dep
                assert path[der].iloc[dep] >= d.at[der, "energy_need_mwh"] - 1e-6, (v, der)
        if v == "direct":
            assert len(result.refusals) > 0  # the evening calls drain storage
            assert result.refusals.reason.str.contains("below its minimum").any()


# ---------------------------------------------------------- activation alone
def _random_book(rng: np.random.Generator, T: int) -> ResourceBook:
    """Storage units (some empty at the start), EVs with a departure need and PV, with a
    random schedule that respects their own limits."""
    n_st, n_ev, n_pv = rng.integers(2, 6), rng.integers(0, 3), rng.integers(0, 3)
    N = n_st + n_ev + n_pv
    kind = np.array(["storage"] * n_st + ["ev"] * n_ev + ["pv"] * n_pv)
    dt = float(rng.choice([0.25, 1.0]))
    p_max = rng.uniform(0.1, 1.0, N)
    cap = p_max * rng.uniform(0.5, 3.0, N)
    eta_c, eta_d = rng.uniform(0.85, 1.0, N), rng.uniform(0.85, 1.0, N)
    lo = np.zeros((T, N))
    hi = np.zeros((T, N))
    s = np.zeros((T, N))
    st = kind == "storage"
    lo[:, st], hi[:, st] = -p_max[st], p_max[st]
    e_min = cap * rng.uniform(0.0, 0.2, N)
    e0 = np.where(rng.random(N) < 0.5, e_min, cap * rng.uniform(0.2, 0.9, N))
    departure = np.full(N, -1)
    need = np.zeros(N)
    for j in range(N):
        if kind[j] == "pv":
            hi[:, j] = p_max[j] * rng.random(T)
            s[:, j] = hi[:, j] * rng.random(T)
        elif kind[j] == "ev":
            departure[j] = int(rng.integers(T // 2, T + 1))
            lo[:departure[j], j] = -p_max[j]
            e0[j] = e_min[j]
            cap[j] = e_min[j] + p_max[j] * dt * rng.uniform(0.6, 1.2) * T  # room, or not
            s[:departure[j], j] = -p_max[j] * rng.random(departure[j]) * 0.5
            need[j] = e0[j] - s[:departure[j], j].sum() * eta_c[j] * dt * rng.uniform(0.5, 1)
        else:  # storage: a schedule that keeps its energy in range, built period by period
            e = e0[j]
            for t in range(T):
                p = rng.uniform(-p_max[j], p_max[j])
                stored = -p * eta_c[j] if p < 0 else -p / eta_d[j]
                if not e_min[j] <= e + stored * dt <= cap[j]:
                    p = 0.0
                    stored = 0.0
                s[t, j] = p
                e += stored * dt
    energy = np.full((T + 1, N), np.nan)
    floor = np.full((T + 1, N), -np.inf)
    ceil = np.full((T + 1, N), np.inf)
    book = ResourceBook(np.array([f"{k}{j}" for j, k in enumerate(kind)]), kind,
                        np.array([f"agg{j % 2}" for j in range(N)]), s, lo, hi, energy, floor,
                        ceil, eta_c, eta_d, np.where(kind == "ev", departure, -1), dt)
    holds = np.flatnonzero(kind != "pv")
    stored = book.stored(s[:, holds], holds) * dt
    book.energy[:, holds] = e0[holds] + np.vstack([np.zeros(len(holds)),
                                                   np.cumsum(stored, axis=0)])
    book.e_floor[:, holds] = e_min[holds]
    book.e_ceil[:, holds] = cap[holds]
    for j in np.flatnonzero(kind == "ev"):
        dep = departure[j]
        book.e_floor[dep, j] = max(e_min[j], min(need[j], book.energy[dep, j]))
        book.e_floor[dep + 1:, j], book.e_ceil[dep + 1:, j] = -np.inf, np.inf
    return book


@pytest.mark.parametrize("seed", range(60))
def test_an_empty_storage_unit_is_never_called_to_discharge(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(3, 9))
    book = _random_book(rng, T)
    # the TSO holds each unit's whole power range, period by period (as if each period
    # were alone): the energy the earlier calls took is the aggregator's to know
    up = np.maximum(book.p_hi - book.schedule, 0.0)
    down = np.maximum(book.schedule - book.p_lo, 0.0)
    price_up = rng.uniform(0, 50, up.shape)
    price_dn = rng.uniform(0, 50, up.shape)
    imbalance = rng.uniform(-1.5, 1.5, T) * up.sum(axis=1).mean()
    with MessageBus() as bus:
        caller, uncovered = activate_in_merit_order(book, up, down, price_up, price_dn,
                                                    imbalance, bus)
        calls = caller.calls()
        acks = {m.envelope.reply_to: m for m in bus.log.messages(kind=Acknowledgement)}
    out = book.schedule + caller.delivered()
    # energies recomputed here from the outputs, with the efficiencies
    for j in np.flatnonzero(np.isfinite(book.energy[0])):
        e = book.energy[0, j]
        for t in range(T):
            if book.kind[j] == "storage" and e <= book.e_floor[t, j] + 1e-12:
                assert out[t, j] <= max(book.schedule[t, j], 0.0) + 1e-12  # no discharge
            p = out[t, j]
            e += (-p * book.eta_charge[j] if p < 0 else -p / book.eta_discharge[j]) * book.dt
            assert book.e_floor[t + 1, j] - 1e-9 <= e <= book.e_ceil[t + 1, j] + 1e-9
    # every call answered; a refusal has a reason and the next resource is called
    assert len(acks) == len(calls)
    for t, group in calls.groupby("period"):
        rows = group.reset_index(drop=True)
        for k, row in rows.iterrows():
            assert acks[row.activation].accepted == row.accepted
            if not row.accepted:
                assert row.reason.strip() and acks[row.activation].reason == row.reason
                if k + 1 < len(rows):
                    assert rows.der_id[k + 1] != row.der_id
        held = up[t] if imbalance[t] > 0 else down[t]
        if abs(uncovered[t]) > 1e-9:  # short only after every holder was called
            assert set(book.ids[held > 1e-6]) <= set(rows.der_id)
        got = caller.delivered()[t].sum() + uncovered[t]
        assert got == pytest.approx(imbalance[t], abs=1e-6)


def test_refusals_happen_in_the_randomised_books():
    """The randomised test is not vacuous: empty units are called and refuse."""
    refused = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        T = int(rng.integers(3, 9))
        book = _random_book(rng, T)
        up = np.maximum(book.p_hi - book.schedule, 0.0)
        down = np.maximum(book.schedule - book.p_lo, 0.0)
        price_up, price_dn = rng.uniform(0, 50, up.shape), rng.uniform(0, 50, up.shape)
        imbalance = rng.uniform(-1.5, 1.5, T) * up.sum(axis=1).mean()
        with MessageBus() as bus:
            caller, _ = activate_in_merit_order(book, up, down, price_up, price_dn,
                                                imbalance, bus)
        c = caller.calls()
        refused += int((~c.accepted.astype(bool)).sum()) if len(c) else 0
    assert refused > 10


def test_the_book_keeps_only_admitted_ders_and_their_headroom(default_system,
                                                              builtin_outcome):
    system = default_system
    base = builtin_outcome("default", "common")
    book = resource_book(system, base.der_dispatch.set_axis(range(system.n_periods)))
    up, down = book.headroom()
    assert (up >= 0).all() and (down >= 0).all()
    assert (book.schedule + up <= book.p_hi + 1e-9).all()
    assert (book.schedule - down >= book.p_lo - 1e-9).all()
    ev = book.kind == "ev"
    # an EV that is not plugged in gives nothing
    d = system.ders.set_index("der_id")
    for j in np.flatnonzero(ev):
        arrival = d.at[book.ids[j], "arrival_period"]
        assert max(up[:arrival, j].max(initial=0), down[:arrival, j].max(initial=0)) < 1e-9
