"""``FeederInputs``: a feeder's data without its OPF, checked against the system's tables."""

from __future__ import annotations

import numpy as np

from tsodso.dso.inputs import FeederInputs
from tsodso.io import load


def test_feeder_inputs_match_the_system_tables():
    system = load("default")
    for f in system.feeder_ids[:3]:
        data = FeederInputs.of(system, f)
        assert system.n_periods == data.T
        loads = system.feeder_loads[system.feeder_loads.feeder_id == f]
        mult = system.profiles.multipliers(loads.profile)
        # total load per period, and each bus's load at the peak period
        np.testing.assert_allclose(data.p_load.sum(axis=1), mult @ loads.p_mw.to_numpy())
        np.testing.assert_allclose(data.q_load.sum(axis=1), mult @ loads.q_mvar.to_numpy())
        peak = int(np.argmax(mult @ loads.p_mw.to_numpy()))
        per_bus = (loads.assign(p=mult[peak] * loads.p_mw.to_numpy())
                   .groupby("bus_id").p.sum())
        at = data.tree.positions(per_bus.index.to_numpy())
        np.testing.assert_allclose(data.p_load[peak, at], per_bus.to_numpy())
        expected = sorted(system.ders.der_id[system.ders.feeder_id == f])
        assert sorted(data.ders.der_id) == expected and len(expected) > 0
        assert list(data.ders.index) == list(range(len(expected)))
        assert data.p_load.shape == (system.n_periods, data.tree.n)
        assert data.p_load.sum() > 0
        # a shorter horizon cuts the same data
        short = FeederInputs.of(system, f, periods=5)
        np.testing.assert_array_equal(short.p_load, data.p_load[:5])
