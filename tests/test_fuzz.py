"""Property-based fuzzing: malformed scenarios and tables end in a tsodso error, never a crash
and never a silent repair."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import error_or_result
from tsodso.errors import TsodsoError
from tsodso.io.feeders import feeder_system
from tsodso.io.scenario import build_scenario
from tsodso.model import Profiles

BASE_RECIPE = {
    "name": "fuzz",
    "seed": 3,
    "horizon": {"periods": 4, "period_hours": 1.0},
    "transmission": {"case": "matpower:case5"},
    "feeders": [{"case": "matpower:case33bw", "at": [2, 3], "line_margin": 1.3,
                 "substation_margin": 1.5}],
    "ders": {"pv": {"share": 1.0, "bus_fraction": 0.3},
             "storage": {"share": 0.2, "hours": 2.0}},
    "aggregators": {"per_feeder": True},
    "profiles": {"source": "simbench", "day": 146, "series": {"load": "mv_rural_pload",
                                                               "pv": "PV3"},
                 "normalize": ["load"], "feeder_load": "load"},
    "rules": "pjm",
}

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.integers(-5, 50), max_size=3), st.dictionaries(st.text(max_size=5),
                                                               st.integers(), max_size=2),
)


def _paths(node, prefix=()):
    """Every key path in a nested recipe (dict keys and list indices)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


PATHS = list(_paths(BASE_RECIPE))


def _mutate(recipe, path, action, value):
    target = recipe
    for key in path[:-1]:
        target = target[key]
    if action == "delete" and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return recipe


def test_base_recipe_is_valid():
    assert build_scenario(copy.deepcopy(BASE_RECIPE)).validate() == []


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["set", "delete"]), value=ANY_VALUE)
def test_mutated_recipe_builds_or_raises_tsodso_error(path, action, value):
    recipe = _mutate(copy.deepcopy(BASE_RECIPE), path, action, value)
    system = error_or_result("scenarios", lambda: build_scenario(recipe))
    if system is None:
        return
    assert system.validate() == []  # accepted: then it really is consistent


@pytest.fixture(scope="module")
def feeder_tables():
    return feeder_system("matpower:case33bw", n_periods=3)


DEFECTS = ["unknown_bus", "negative_impedance", "cycle", "nan_profile", "wrong_type",
           "missing_column", "duplicate_id", "short_profile", "zero_impedance"]


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture])
@given(defect=st.sampled_from(DEFECTS), row=st.integers(0, 31), junk=ANY_VALUE,
       period=st.integers(0, 2))
def test_table_defects_are_always_reported(feeder_tables, defect, row, junk, period):
    system = copy.deepcopy(feeder_tables)
    lines = system.feeder_lines
    system.profiles = Profiles(1.0, 3, pd.DataFrame({"load": [0.5, 0.8, 1.0]}))
    system.feeder_loads["profile"] = "load"
    if defect == "unknown_bus":
        lines.loc[row, "to_bus"] = 1000 + row
    elif defect == "negative_impedance":
        lines.loc[row, "x_ohm"] = -abs(junk) if isinstance(junk, float) and math.isfinite(
            junk) and junk != 0 else -0.5
    elif defect == "zero_impedance":
        lines.loc[row, ["r_ohm", "x_ohm"]] = 0.0
    elif defect == "cycle":
        lines.loc[32 + row % 5, "in_service"] = True
    elif defect == "nan_profile":
        system.profiles.series.loc[period, "load"] = np.nan
    elif defect == "short_profile":
        system.profiles = Profiles(1.0, 3, pd.DataFrame({"load": [0.5] * (1 + period % 2)}))
    elif defect == "wrong_type":
        lines["r_ohm"] = lines["r_ohm"].astype(object)
        lines.loc[row, "r_ohm"] = "abc" if not isinstance(junk, str) or junk == "" else \
            f"x{junk}"
    elif defect == "missing_column":
        system.feeder_lines = lines.drop(columns=["x_ohm"])
    elif defect == "duplicate_id":
        lines.loc[row, "line_id"] = lines.loc[(row + 1) % 37, "line_id"]
    issues = system.validate()
    assert issues, f"{defect} was not reported"
    assert all(i.component and i.message for i in issues)
    with pytest.raises(TsodsoError):
        system.check()
