"""YAML scenarios compose published cases reproducibly."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from tsodso.errors import TsodsoError, ValidationError
from tsodso.io.matpower import load_grid
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import builtin_scenarios, scenario_path


def _recipe(name="default"):
    return yaml.safe_load(scenario_path(name).read_text())


def test_builtin_scenarios_listed_with_descriptions():
    found = builtin_scenarios()
    assert {"default", "low-penetration"} <= set(found)
    assert all(text for text in found.values())


def test_default_keeps_the_case_total_load(default_system):
    case = load_grid("matpower:case14")
    summary = default_system.summary()
    assert summary["total_load_mw"] == pytest.approx(case.loads.p_mw.sum(), rel=1e-12)
    # six feeders: four Baran-Wu 33-bus (3.715 MW each) and two 69-bus (3.8021 MW each)
    assert summary["feeders"] == 6
    assert summary["feeder_load_mw"] == pytest.approx(4 * 3.715 + 2 * 3.8021, rel=1e-9)
    assert summary["periods"] == 24
    for fid, pct in summary["penetration_pct"].items():
        assert pct == pytest.approx(150.0), fid


def test_same_seed_same_system_other_seed_other_placement():
    a = build_scenario(_recipe())
    b = build_scenario(_recipe())
    pd.testing.assert_frame_equal(a.ders, b.ders)
    other = _recipe()
    other["seed"] = 1
    c = build_scenario(other)
    assert not a.ders.bus_id.equals(c.ders.bus_id)
    assert c.summary()["der_capacity_mw"] == pytest.approx(a.summary()["der_capacity_mw"])


def test_profiles_are_simbench_data(default_system):
    series = default_system.profiles.series
    assert series.shape == (24, 3)
    assert np.isclose(series["load"].max(), 1.0)
    assert series["pv"].iloc[0] == 0.0 and series["pv"].max() > 0.3  # night and a sunny noon


def test_feeder_too_big_for_bus_is_refused():
    recipe = _recipe()
    recipe["feeders"][0]["at"] = [11]  # bus 11 has 3.5 MW, case33bw needs 3.715 MW
    with pytest.raises(ValidationError, match="bus 11 has only 3.500 MW"):
        build_scenario(recipe)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("horizon", "periods"), "many", "horizon.periods: expected int"),
        (("ders", "pv", "share"), -1, "ders.pv.share: must be >= 0"),
        (("ders", "hydrogen"), {"share": 1}, "ders.hydrogen: unknown key"),
        (("rules",), "moon", "unknown preset"),
        (("transmission", "case"), "matpower:nope", "not found"),
    ],
)
def test_bad_recipes_name_the_key(path, value, message):
    recipe = copy.deepcopy(_recipe())
    target = recipe
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(TsodsoError, match=message):
        build_scenario(recipe)
