"""Vehicle-to-grid: honoured where the rules allow it, refused with a clear message where
they do not, in both markets, with the departure energy kept."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tsodso.coordination import run_scheme
from tsodso.errors import ValidationError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path
from tsodso.tso import clear_tso_market


def _recipe(v2g: float, rules) -> dict:
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]  # one feeder keeps it quick
    r["ders"]["ev"]["v2g"] = v2g
    r["rules"] = rules
    return r


def test_an_ev_that_discharges_is_refused_where_the_rules_do_not_allow_it():
    with pytest.raises(ValidationError, match=r"ders\.p_max_mw\[case33bw@9/ev\d+\].*"
                                              r"vehicle-to-grid.*'pjm'.*v2g_allowed"):
        build_scenario(_recipe(1.0, {"preset": "pjm", "v2g_allowed": False}))
    plain = build_scenario(_recipe(0.0, {"preset": "pjm", "v2g_allowed": False}))
    assert (plain.ders.p_max_mw[plain.ders.kind == "ev"] == 0).all()  # charge-only stays
    build_scenario(_recipe(1.0, "pjm"))  # PJM's preset allows V2G (its 2013 regulation EVs)


@pytest.fixture(scope="module")
def pair():
    allowed = {"preset": "pjm", "v2g_allowed": True}
    return build_scenario(_recipe(0.0, allowed)), build_scenario(_recipe(1.0, allowed))


def test_vehicle_to_grid_in_both_markets(pair):
    plain, v2g = pair
    ev = v2g.ders[v2g.ders.kind == "ev"].der_id
    tso = clear_tso_market(v2g)
    assert tso.der_dispatch[ev].to_numpy().max() > 1e-3  # the TSO market uses the discharge
    without, with_v2g = (run_scheme(s, "common") for s in pair)
    out = with_v2g.der_dispatch[ev].to_numpy()
    assert out.max() > 1e-3  # the joint market discharges EVs at some point
    assert with_v2g.total_cost <= without.total_cost + 1e-6  # one more option, never dearer
    assert with_v2g.shortfalls.unmet_ev_mwh < 1e-6  # departure energy kept
    # every EV ends at least at its need: energy in + charged x eta - discharged / eta
    d = v2g.ders.set_index("der_id").loc[ev]
    dt = v2g.profiles.period_hours
    charged = np.clip(-out, 0, None).sum(axis=0) * dt * d.eta_charge.to_numpy()
    given = np.clip(out, 0, None).sum(axis=0) * dt / d.eta_discharge.to_numpy()
    final = d.soc_init.to_numpy() * d.energy_mwh.to_numpy() + charged - given
    assert (final >= d.energy_need_mwh.to_numpy() - 1e-5).all()
