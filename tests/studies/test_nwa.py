"""Non-wires alternatives: the year of need from the feeder's own AC power flow, the
deferral with free flexibility equal to the years flexibility covers, the upgrade winning
above the break-even price, and the cost-plus DSO building at once."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.dso.ac_check import dispatch_power_flow
from tsodso.dso.inputs import FeederInputs
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.powerflow import FeederPowerFlow, der_injections
from tsodso.scenarios import scenario_path
from tsodso.studies import NwaOptions, non_wires_alternative
from tsodso.tso.offers import uncontrolled_dispatch

runner = CliRunner()
FEEDER = "case33bw@9"
BASE = {"growth": 0.03, "years": 10, "upgrade_cost": 1e6}


@pytest.fixture(scope="module")
def system():
    """low-penetration (PV 20 % of feeder peak) with storage at 30 % and demand response at
    20 % of feeder peak: enough flexibility to defer an upgrade."""
    r = yaml.safe_load(scenario_path("low-penetration").read_text())
    r["ders"]["storage"]["share"] = 0.3
    r["ders"]["demand_response"]["share"] = 0.2
    return build_scenario(r)


@pytest.fixture(scope="module")
def free(system):
    return non_wires_alternative(system, FEEDER, NwaOptions(**BASE))


def _year(system, year: int):
    s = system.subset_feeders([FEEDER], grid=False)
    loads = s.feeder_loads.copy()
    loads[["p_mw", "q_mvar"]] *= 1.03 ** year
    s.feeder_loads = loads
    return s


def test_the_flexibility_keeps_the_ratings_as_the_ac_power_flow_measures(system, free):
    """Loads scaled by hand: the peak loading with DERs uncontrolled is the feeder's AC
    power flow's; in the year of need the flexibility dispatch is within every rating in
    the AC power flow, and the MWh moved is its distance from the uncontrolled output."""
    ders = list(system.ders[system.ders.feeder_id == FEEDER].der_id)
    for year in range(free.cover_limit_year + 1):
        s = _year(system, year)
        inj, _ = der_injections(s, FEEDER, uncontrolled_dispatch(s)[ders])
        flow = FeederPowerFlow(s.feeder(FEEDER)).run_feeder_loads(inj, profiles=s.profiles)
        peak = max(flow.loading_pct.max().max(), flow.substation_loading_pct.max())
        assert free.years.peak_loading_pct[year] == pytest.approx(peak, rel=1e-9)
    need = free.need_year
    assert need is not None and need > 0
    # before the need year nothing moves; in it, flexibility moves DERs
    assert (free.years.flex_mwh_day[:need] < 1e-6).all()
    s = _year(system, need)
    result = free.dispatch[need]
    ac = dispatch_power_flow(FeederInputs.of(s, FEEDER), result)
    assert ac.loading_pct.max().max() <= 100.1
    assert ac.substation_loading_pct.max() <= 100.1
    moved = (result.der_p_mw[ders] - uncontrolled_dispatch(s)[ders].to_numpy()).abs()
    assert moved.to_numpy().sum() * s.profiles.period_hours == pytest.approx(
        free.years.flex_mwh_day[need], rel=1e-9)


def test_free_flexibility_defers_until_it_no_longer_covers(free):
    years = free.years.set_index("year")
    assert free.cover_limit_year is not None
    assert years.covered[free.need_year:free.cover_limit_year].all()
    assert not years.covered[free.cover_limit_year]
    assert (years.flex_mwh_day[free.need_year:free.cover_limit_year] > 0).all()
    # priced at zero, every year flexibility covers is a year deferred
    assert free.years_deferred == free.cover_limit_year - free.need_year
    value = free.deferrals.set_index("deferral").deferral_value[free.years_deferred]
    r = 0.05
    expected = 1e6 / (1 + r) ** free.need_year - 1e6 / (1 + r) ** free.cover_limit_year \
        - sum(365 * years.flex_cost_day[y] / (1 + r) ** y
              for y in range(free.need_year, free.cover_limit_year))
    assert value == pytest.approx(expected, rel=1e-9)


def test_above_the_break_even_price_the_upgrade_wins(system, free):
    price = free.break_even_price
    assert price is not None and price > 0
    below = non_wires_alternative(system, FEEDER, NwaOptions(**BASE,
                                                             flexibility_price=0.9 * price))
    above = non_wires_alternative(system, FEEDER, NwaOptions(**BASE,
                                                             flexibility_price=1.1 * price))
    assert below.years_deferred >= 1
    assert above.years_deferred == 0
    # the flexibility measured does not depend on its price (the least that keeps ratings)
    np.testing.assert_allclose(above.years.flex_mwh_day[free.need_year],
                               free.years.flex_mwh_day[free.need_year], rtol=1e-3)


def test_a_cost_plus_dso_builds_at_once(system, free):
    plus = non_wires_alternative(system, FEEDER, NwaOptions(**BASE, remuneration="cost_plus"))
    assert plus.years_deferred == 0 and plus.least_cost_deferral == free.years_deferred
    s = plus.summary()
    assert s["cost_of_the_choice"] == pytest.approx(
        free.deferrals.deferral_value.max(), rel=1e-9)


def test_bad_options_and_the_cli(system):
    for bad, key in (({"growth": float("nan")}, "growth"), ({"years": 0}, "years"),
                     ({"upgrade_cost": -1}, "upgrade_cost"),
                     ({"remuneration": "rate_of_return"}, "remuneration")):
        with pytest.raises(TsodsoError, match=f"nwa.{key}"):
            NwaOptions(**{**BASE, **bad})
    with pytest.raises(TsodsoError, match="unknown feeder"):
        non_wires_alternative(system, "nowhere", NwaOptions(**BASE))
    res = runner.invoke(app, ["nwa", FEEDER, "--scenario", "low-penetration",
                              "--upgrade-cost", "1e6", "--growth", "5%", "--years", "7",
                              "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["years_deferred"] == 0  # too little flexibility there: nothing to defer
    assert data["need_year"] == data["cover_limit_year"] and len(data["years"]) == 7
    res = runner.invoke(app, ["nwa", FEEDER, "--upgrade-cost", "1e6", "--growth", "x"])
    assert res.exit_code == 1 and "--growth" in res.output
