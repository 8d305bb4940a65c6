"""System.subset_feeders: a smaller system that gives each of its feeders the same DSO OPF."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsodso.dso import Boundary, DsoOpf, DsoOptions


@pytest.fixture(scope="module")
def pair(default_system):
    """(full system, subset of its feeders except the first, without the grid)."""
    keep = default_system.feeder_ids[1:] or default_system.feeder_ids
    return default_system, default_system.subset_feeders(keep, grid=False)


def test_subset_keeps_only_the_feeders_and_their_ders(pair):
    full, sub = pair
    keep = set(sub.feeder_ids)
    assert sub.feeder_ids == [f for f in full.feeder_ids if f in keep]
    for name in ("feeder_buses", "feeder_lines", "feeder_loads", "ders"):
        table = getattr(sub, name)
        assert set(table.feeder_id) <= keep, name
        assert len(table) == full.__dict__[name].feeder_id.isin(keep).sum(), name
        assert table.index.equals(pd.RangeIndex(len(table))), name
    assert set(sub.der_bids.der_id) == set(full.der_bids.der_id) & set(sub.ders.der_id)
    assert set(sub.aggregators.aggregator_id) <= set(full.aggregators.aggregator_id)
    assert set(sub.ders.aggregator_id) - {""} <= set(sub.aggregators.aggregator_id)
    assert sub.grid.buses.empty and sub.n_periods == full.n_periods
    assert sub.profiles.period_hours == full.profiles.period_hours


def test_subsets_are_consistent_systems(default_system):
    ids = default_system.feeder_ids[:1]
    assert default_system.subset_feeders(ids).validate() == []
    assert default_system.subset_feeders(ids, grid=False).validate() == []


def test_subset_is_a_copy(default_system):
    sub = default_system.subset_feeders(default_system.feeder_ids)
    before = default_system.feeder_loads.p_mw.sum()
    sub.feeder_loads["p_mw"] *= 2
    sub.profiles.series.iloc[:, :] = 0.0
    assert default_system.feeder_loads.p_mw.sum() == before
    assert default_system.profiles.series.to_numpy().max() > 0


def test_unknown_feeder_is_named(default_system):
    with pytest.raises(KeyError, match="nowhere"):
        default_system.subset_feeders(["nowhere"])


def test_dso_opf_on_a_subset_equals_the_full_system(pair):
    full, sub = pair
    price = np.linspace(20.0, 60.0, full.n_periods)
    for fid in sub.feeder_ids:
        a = DsoOpf(full, fid, DsoOptions(), Boundary(price=price)).solve()
        b = DsoOpf(sub, fid, DsoOptions(), Boundary(price=price)).solve()
        assert a.objective == b.objective, fid
        for name in ("dlmp_p", "voltage_pu", "der_p_mw", "der_q_mvar", "storage_energy_mwh"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
        pd.testing.assert_series_equal(a.interface_p_mw, b.interface_p_mw)
        assert a.ac_check == b.ac_check
