"""The parties: DSOs owning several feeders, aggregators holding their portfolios, the TSO
holding its part; a scenario's ``dso`` key."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tsodso.actors import Party
from tsodso.actors.aggregator import Aggregator
from tsodso.actors.tso import Tso
from tsodso.coordination import run_scheme
from tsodso.coordination.schemes import aggregators_of, dsos_of
from tsodso.errors import TsodsoError, ValidationError
from tsodso.io import load
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path
from tsodso.tso.offers import tso_view


@pytest.fixture(scope="module")
def system():
    return load("default", n_periods=4)


def _recipe(**extra) -> dict:
    recipe = yaml.safe_load(scenario_path("default").read_text())
    recipe.update(extra)
    return recipe


def test_by_default_one_dso_operates_the_feeders_of_each_interface_bus(system):
    assert system.dso_feeders == {"bus9": ["case33bw@9"], "bus10": ["case33bw@10"],
                                  "bus13": ["case33bw@13"], "bus14": ["case33bw@14"],
                                  "bus4": ["case69@4#1", "case69@4#2"]}
    parties = dsos_of(system)
    both = parties["case69@4#1"]
    assert parties["case69@4#2"] is both and both.name == "bus4"
    assert both.system.feeder_ids == ["case69@4#1", "case69@4#2"]
    assert set(both.system.ders.feeder_id) == {"case69@4#1", "case69@4#2"}


def test_a_dso_of_several_feeders_receives_each_feeders_messages(system):
    out = run_scheme(system, "hierarchical", max_iterations=2)
    assert out.iterations == 2
    with_log = run_scheme(system, "tso_only")
    assert with_log.total_cost > 0
    from tsodso.actors import MessageBus

    with MessageBus() as bus:
        run_scheme(system, "hierarchical", max_iterations=1, bus=bus)
        prices = bus.log.frame(kind="interface_price")
        schedules = bus.log.frame(kind="der_schedule")
    assert set(prices.recipient) == {"dso:bus9", "dso:bus10", "dso:bus13", "dso:bus14",
                                     "dso:bus4"}
    assert (prices.recipient == "dso:bus4").sum() == 2  # one per feeder it operates
    assert schedules.empty  # hierarchical sends prices, not DER schedules


def test_the_tso_sends_one_der_schedule_per_dso(system):
    from tsodso.actors import MessageBus

    with MessageBus() as bus:
        run_scheme(system, "tso_only", bus=bus)
        sent = bus.log.messages(kind="der_schedule")
    assert sorted(str(m.envelope.recipient) for m in sent) == sorted(
        f"dso:{d}" for d in system.dso_feeders)
    bus4 = next(m for m in sent if m.envelope.recipient == Party.dso("bus4"))
    ders = system.ders
    assert set(bus4.der_ids) == set(ders.der_id[ders.feeder_id.str.startswith("case69@4")])


def test_a_scenarios_dso_key_groups_feeders():
    s = build_scenario(_recipe(dso={"north": ["case33bw@9", "case33bw@10"],
                                    "east": ["case69@4#2"]}))
    assert s.dso_feeders == {"north": ["case33bw@9", "case33bw@10"], "bus13": ["case33bw@13"],
                             "bus14": ["case33bw@14"], "bus4": ["case69@4#1"],
                             "east": ["case69@4#2"]}
    parties = dsos_of(s)
    assert parties["case33bw@10"] is parties["case33bw@9"]
    assert parties["case33bw@9"].system.feeder_ids == ["case33bw@9", "case33bw@10"]


@pytest.mark.parametrize(("dso", "match"), [
    ({"north": ["case33bw@99"]}, r"scenario\.dso\.north\[0\].*no feeder 'case33bw@99'.*"
                                  r"did you mean"),
    ({"a": ["case33bw@9"], "b": ["case33bw@9"]}, r"dso\.b\[0\].*already operated by DSO 'a'"),
    ({"a": []}, r"dso\.a.*lists no feeders"),
    ({"a:b": ["case33bw@9"]}, r"without ':'"),
    (["case33bw@9"], r"scenario\.dso.*mapping"),
])
def test_a_bad_dso_key_names_the_field(dso, match):
    with pytest.raises(ValidationError, match=match):
        build_scenario(_recipe(dso=dso))


def test_an_aggregator_holds_only_its_portfolio(system):
    name = system.ders.aggregator_id.iloc[0]
    agg = Aggregator.of(system, name)
    p = agg.portfolio
    assert set(p.ders.aggregator_id) == {name}
    assert set(agg.der_ids) == set(system.ders.der_id[system.ders.aggregator_id == name])
    assert len(p.grid.buses) == 0 and len(p.feeder_lines) == 0 and len(p.feeder_buses) == 0
    dr = p.ders[p.ders.kind == "demand_response"]
    assert set(zip(p.feeder_loads.feeder_id, p.feeder_loads.bus_id, strict=True)) == set(
        zip(dr.feeder_id, dr.bus_id, strict=True))
    with pytest.raises(TsodsoError, match="holds DERs of"):
        Aggregator("someone-else", p)
    with pytest.raises(TsodsoError, match="must not hold a network"):
        Aggregator(name, system.subset_feeders(
            system.ders.feeder_id[system.ders.aggregator_id == name].unique()))


def test_the_aggregators_offers_are_the_markets_offers(system):
    """Pooled from their own portfolios, the aggregators' offers are those the TSO market
    lists (same ids, same availability)."""
    whole = tso_view(system, system.rules).energy
    parts = [a.offers().energy for a in aggregators_of(system)]
    ids = [i for e in parts for i in e.table.offer_id]
    assert sorted(ids) == sorted(whole.table.offer_id)
    by_id = {o: k for k, o in enumerate(whole.table.offer_id)}
    for e in parts:
        cols = [by_id[o] for o in e.table.offer_id]
        np.testing.assert_allclose(e.p_max, whole.p_max[:, cols], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(e.p_min, whole.p_min[:, cols], rtol=1e-12, atol=1e-12)


def test_aggregators_receive_the_curtailment_requests_of_tso_only(system, monkeypatch):
    from tsodso.actors import MessageBus
    from tsodso.coordination import schemes

    made: list[Aggregator] = []
    original = schemes.aggregators_of

    def spy(s):
        made.extend(original(s))
        return made

    monkeypatch.setattr(schemes, "aggregators_of", spy)
    with MessageBus() as bus:
        run_scheme(system, "tso_only", bus=bus)
        sent = bus.log.frame(kind="curtailment_request")
    to_parties = sent[sent.recipient != "aggregator:(none)"]
    assert len(to_parties) > 0
    assert sum(len(a.inbox) for a in made) == len(to_parties)
    caps = next(a for a in made if a.inbox).curtailment_caps()
    assert len(caps.columns) and np.isfinite(caps.to_numpy()).all()


def test_the_tso_party_refuses_feeder_data_and_publishes_interface_prices(system):
    with pytest.raises(TsodsoError, match="must not hold feeder"):
        Tso(system)
    tso = Tso.of(system)
    assert tso.interface_bus("case69@4#2") == 4
    result = tso.redispatch(system.feeders.set_index("feeder_id").assign(v=1.0).v.to_frame().T
                            .reindex(range(system.n_periods)).ffill())
    prices = tso.interface_prices(result.lmp)
    np.testing.assert_array_equal(prices["case33bw@9"], result.lmp[9].to_numpy())
