"""Export then import gives identical tables."""

from __future__ import annotations

import pandas as pd
import pytest

from tsodso.io.store import read_system, write_system
from tsodso.model import TransmissionGrid
from tsodso.model.system import System


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_is_exact(default_system, tmp_path, fmt):
    write_system(default_system, tmp_path / "sys", fmt)
    back = read_system(tmp_path / "sys")
    for name in TransmissionGrid.TABLES:
        pd.testing.assert_frame_equal(getattr(default_system.grid, name),
                                      getattr(back.grid, name), check_exact=True)
    for name in System.TABLES:
        pd.testing.assert_frame_equal(getattr(default_system, name), getattr(back, name),
                                      check_exact=True)
    pd.testing.assert_frame_equal(default_system.profiles.series, back.profiles.series,
                                  check_exact=True)
    assert back.rules == default_system.rules
    assert back.profiles.period_hours == default_system.profiles.period_hours
    assert back.summary() == default_system.summary()


def test_edited_export_is_validated(default_system, tmp_path):
    write_system(default_system, tmp_path / "sys", "csv")
    path = tmp_path / "sys" / "tables" / "feeder_lines.csv"
    table = pd.read_csv(path)
    table.loc[3, "x_ohm"] = -1.0
    table.to_csv(path, index=False)
    from tsodso.errors import ValidationError

    with pytest.raises(ValidationError, match=r"feeder_lines.x_ohm\[case33bw@9/4\]: must be >= 0"):
        read_system(tmp_path / "sys")
