"""MATPOWER distribution cases as feeders, in physical units."""

from __future__ import annotations

import pytest

from refdata import reference
from tsodso.io.feeders import feeder_system

LOADCASE = reference("matpower_loadcase.json")


@pytest.mark.parametrize(
    ("spec", "p_mw", "q_mvar", "buses"),
    [
        # Baran & Wu (1989): 3715 kW, 2300 kVAr on 33 buses
        ("matpower:case33bw", 3.715, 2.300, 33),
        # Baran & Wu 69-bus as MATPOWER ships it (loadcase in Octave: 3802.1 kW, 2694.6 kVAr)
        ("matpower:case69", LOADCASE["matpower:case69"]["total_load_mw"],
         LOADCASE["matpower:case69"]["total_load_mvar"], 69),
    ],
)
def test_feeder_totals(spec, p_mw, q_mvar, buses):
    system = feeder_system(spec)
    assert system.validate() == []
    summary = system.summary()
    assert summary["total_load_mw"] == pytest.approx(p_mw, rel=1e-9)
    assert summary["total_load_mvar"] == pytest.approx(q_mvar, rel=1e-9)
    assert summary["feeder_buses"] == buses
    assert summary["feeder_lines"] == buses - 1  # tie switches open


def test_case33bw_impedances_in_ohm():
    """Baran & Wu's line data (ohm): 1-2 is 0.0922 + j0.0470, 8-9 is 1.030 + j0.7400."""
    lines = feeder_system("matpower:case33bw").feeder_lines.set_index(["from_bus", "to_bus"])
    assert lines.loc[(1, 2), "r_ohm"] == pytest.approx(0.0922, rel=1e-9)
    assert lines.loc[(1, 2), "x_ohm"] == pytest.approx(0.0470, rel=1e-9)
    assert lines.loc[(8, 9), "r_ohm"] == pytest.approx(1.030, rel=1e-9)
    assert lines.loc[(8, 9), "x_ohm"] == pytest.approx(0.7400, rel=1e-9)
    assert int((~lines.in_service).sum()) == 5  # the five tie lines


@pytest.mark.parametrize("spec", ["matpower:case141", "matpower:case85", "matpower:case10ba",
                                  "matpower:case12da", "matpower:case28da"])
def test_other_distribution_cases_are_radial_feeders(spec):
    assert feeder_system(spec).validate() == []
