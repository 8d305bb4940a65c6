"""Settling an operation: every scheme's books balance to the cent over the realised periods,
the DSO recovers its residual through the network charge, and the amounts are those of the
committed periods (recomputed here from the operation's own tables)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.coordination import SCHEMES
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.operations import ForecastErrors, operate, read_operation, settle_operation
from tsodso.operations.run import STATEMENTS
from tsodso.scenarios import scenario_path

runner = CliRunner()


@pytest.fixture(scope="module")
def system():
    """default cut to one feeder and four 6-hour periods, with forecast errors."""
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["horizon"] = {"periods": 4, "period_hours": 6.0}
    return build_scenario(r)


@pytest.fixture(scope="module")
def operations(system, tmp_path_factory):
    root = tmp_path_factory.mktemp("settle")
    return {s: operate(system, s, root / s, errors=ForecastErrors(0.05, 0.2, 7))
            for s in SCHEMES}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_schemes_books_balance_to_the_cent(operations, scheme):
    op = operations[scheme]
    books = settle_operation(op.folder)
    assert books.complete and books.periods == 4
    assert abs(books.imbalance) < 0.005
    # every settled period balances on its own, not only the sum
    assert np.abs(books.by_period.sum(axis=1).to_numpy()).max() < 0.005
    # the DSO ends at zero: its consumers carry its residual through the network charge
    for actor, lines in books.actors.items():
        if actor.startswith("dso:"):
            assert abs(books.total(actor)) < 1e-6
            own = sum(v for k, v in lines.items() if k != "network charge")
            consumers = books.actors[f"consumers:{actor.split(':', 1)[1]}"]
            assert consumers["network charge"] == pytest.approx(own, abs=1e-9)
    # only committed periods: one settlement per realised period, not the runs' tails
    money = op.realised[STATEMENTS]
    assert sorted(money.period.unique()) == list(range(4))
    # an aggregator's metered energy against its day-ahead baseline, from the tables
    dt = 6.0
    d = books.deliveries.iloc[0]
    assert d.metered_mwh == pytest.approx(op.realised["der_p_mw"].to_numpy().sum() * dt)
    assert d.baseline_mwh == pytest.approx(op.day_ahead["der_p_mw"].to_numpy().sum() * dt)
    assert d.deviation_mwh == pytest.approx(d.metered_mwh - d.baseline_mwh)


def test_energy_is_paid_at_the_realised_price(operations, system):
    """Without a distribution market (tso_only), the aggregator's energy is its DERs'
    realised output at the realised LMP of the interface bus (pjm: nodal), period by
    period."""
    op = operations["tso_only"]
    books = settle_operation(op)
    bus = int(system.feeders.interface_bus.iloc[0])
    der = op.realised["der_p_mw"]
    lmp = op.realised["lmp"][str(bus)]
    expected = float((der.sum(axis=1) * lmp).sum() * 6.0)
    (agg,) = [a for a in books.actors if a.startswith("aggregator:")]
    assert books.actors[agg]["energy"] == pytest.approx(expected, rel=1e-9)
    # day ahead was settled too, on its own schedule and prices: a different figure
    da = op.day_ahead[STATEMENTS]
    da_energy = da[(da.party == agg) & (da.line == "energy")].amount.sum()
    assert abs(da_energy - expected) > 1e-3


def test_settle_cli(operations, tmp_path):
    folder = str(operations["common"].folder)
    res = runner.invoke(app, ["settle", folder, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data) >= {"actors", "imbalance"} and abs(data["imbalance"]) < 0.005
    assert any(a.startswith("aggregator:") for a in data["actors"])
    assert all(isinstance(v, float) for b in data["actors"].values() for v in b.values())
    res = runner.invoke(app, ["settle", folder])
    assert res.exit_code == 0 and "imbalance (sum over all actors): 0.00" in res.output
    res = runner.invoke(app, ["settle", str(tmp_path)])
    assert res.exit_code == 1 and "not an operation folder" in res.output


def test_a_partial_operation_settles_what_happened(system, tmp_path):
    op = operate(system, "common", tmp_path / "part", stop_after=3)
    books = settle_operation(op)
    assert not books.complete and books.periods == 2  # day ahead + 2 real-time steps
    assert abs(books.imbalance) < 0.005
    with pytest.raises(TsodsoError, match="no real-time period"):
        settle_operation(operate(system, "common", tmp_path / "da", stop_after=1))
    assert isinstance(read_operation(tmp_path / "part").realised[STATEMENTS], pd.DataFrame)
