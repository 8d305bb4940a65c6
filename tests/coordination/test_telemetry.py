"""Visibility: DERs behind the meter without telemetry are in no market (price-takers that
no operator sees or instructs), so the initial phase differs from the later one in what the
operators see, not only in how much DER there is."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tsodso.coordination import run_scheme
from tsodso.errors import ValidationError
from tsodso.io.scenario import build_scenario
from tsodso.rules.admission import NO_TELEMETRY, dso_admission, kept_out, tso_admission
from tsodso.scenarios import scenario_path
from tsodso.tso.offers import der_availability


def _recipe(name: str = "default", **pv):
    r = yaml.safe_load(scenario_path(name).read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["ders"]["pv"] = {**r["ders"]["pv"], **pv}
    return r


def test_small_units_have_no_telemetry_and_no_market():
    """With telemetry only from 0.5 MW, the smaller PV units are kept out of the TSO
    market and of the DSO's for that reason, and run as price-takers at their availability
    in every scheme (the DSO may only spill them at the value of lost load)."""
    system = build_scenario(_recipe(telemetry_min_mw=0.5))
    d = system.ders
    pv = d.kind == "pv"
    unseen = pv & (d.p_max_mw < 0.5)
    assert unseen.any() and (pv & ~unseen).any()
    assert (d.telemetry == ~unseen).all()
    assert (tso_admission(system)[unseen] == NO_TELEMETRY).all()
    assert (dso_admission(system)[unseen] == NO_TELEMETRY).all()
    assert (tso_admission(system)[~unseen] == "").all()
    out = kept_out(system, distribution_market=True)
    takers = out[out.price_taker].der_id.unique()
    assert set(takers) == set(d.der_id[unseen])
    outcome = run_scheme(system, "common")
    avail = der_availability(system)
    ids = list(d.der_id[unseen])
    delivered = outcome.der_dispatch[ids].to_numpy()
    cols = [list(d.der_id).index(i) for i in ids]
    spilled = avail[:, cols] - delivered
    assert spilled.min() > -1e-6  # never above availability
    assert spilled.sum() * system.profiles.period_hours <= outcome.shortfalls.spill_mwh + 1e-6
    seen = build_scenario(_recipe())  # the same fleet, every unit with telemetry
    assert list(seen.ders.der_id) == list(d.der_id)
    assert seen.ders.telemetry.all()


def test_the_initial_phase_sees_less():
    """low-penetration (the initial phase) has PV behind the meter; default (the later
    phase, with telemetry for every unit as IEEE 1547-2018 asks) has none."""
    low = build_scenario(yaml.safe_load(scenario_path("low-penetration").read_text()))
    high = build_scenario(yaml.safe_load(scenario_path("default").read_text()))
    share = float((low.ders.p_max_mw * ~low.ders.telemetry).sum() / low.ders.p_max_mw.sum())
    assert 0.1 < share < 0.5
    assert high.ders.telemetry.all()


def test_a_negative_telemetry_size_is_refused_by_name():
    with pytest.raises(ValidationError, match=r"ders\.pv\.telemetry_min_mw"):
        build_scenario(_recipe(telemetry_min_mw=-1))
    assert np.isfinite(build_scenario(_recipe(telemetry_min_mw=0)).ders.p_max_mw).all()
