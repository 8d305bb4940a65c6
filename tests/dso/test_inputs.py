"""``FeederInputs``: a feeder's data without its OPF, equal to what the OPF reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsodso.dso.inputs import FeederInputs
from tsodso.dso.opf import DsoOpf
from tsodso.io import load


def test_feeder_inputs_equal_the_opf_attributes():
    system = load("default")
    for f in system.feeder_ids[:3]:
        op = DsoOpf(system, f)
        data = FeederInputs.of(system, f)
        assert data.T == op.T == system.n_periods
        np.testing.assert_array_equal(data.tree.bus_ids, op.tree.bus_ids)
        np.testing.assert_array_equal(data.p_load, op.p_load)
        np.testing.assert_array_equal(data.q_load, op.q_load)
        assert data.p_load.sum() > 0
        pd.testing.assert_frame_equal(data.ders, op.ders)
        assert (data.ders.feeder_id == f).all() and len(data.ders) > 0
