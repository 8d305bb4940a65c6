"""What each party holds: a party uses only its own data and what it was sent."""

from __future__ import annotations

import numpy as np
import pytest

from tsodso.actors.dso import Dso
from tsodso.actors.tso import holds_feeder_data, tso_part
from tsodso.coordination import SCHEMES, VISIBILITY, run_scheme
from tsodso.errors import TsodsoError
from tsodso.io import load


@pytest.fixture(scope="module")
def system():
    return load("default", n_periods=4)


def test_a_dso_built_without_transmission_tables_runs(system):
    fid = system.feeder_ids[0]
    dso = Dso.of(system, [fid])
    assert len(dso.system.grid.buses) == 0 and len(dso.system.grid.branches) == 0
    assert set(dso.system.feeder_ids) == {fid}
    assert set(dso.system.ders.feeder_id) <= {fid}
    forecast = dso.forecast_import(fid)
    cleared = dso.clear_at_price(fid, np.full(system.n_periods, 30.0))
    held = dso.keep_schedule(fid, cleared.interface_p_mw.to_numpy())
    upper, lower = dso.prequalify(fid)
    assert len(forecast) == system.n_periods
    assert held.interface_p_mw.to_numpy() == pytest.approx(cleared.interface_p_mw.to_numpy(),
                                                           abs=1e-5)
    assert (upper.to_numpy() >= lower.to_numpy() - 1e-9).all()


def test_a_dso_refuses_a_view_holding_the_transmission_grid(system):
    with pytest.raises(TsodsoError, match="transmission grid"):
        Dso("d", system)


@pytest.mark.parametrize("scheme", ["local", "shared_balancing", "hierarchical", "admm"])
def test_the_tso_holds_no_feeder_data_where_it_only_receives_messages(system, scheme,
                                                                      monkeypatch):
    """In these schemes every TSO market (clearing, iterations, final redispatch) is built
    on the TSO's part: no feeder impedance, load or DER reaches it."""
    import tsodso.tso.market as market

    held = []
    init = market.TsoMarket.__init__

    def spy(self, sys_, *args, **kwargs):
        held.append(holds_feeder_data(sys_))
        init(self, sys_, *args, **kwargs)

    monkeypatch.setattr(market.TsoMarket, "__init__", spy)
    run_scheme(system, scheme)
    assert held and not any(held)


def test_the_tso_part_keeps_only_structural_interface_data(system):
    part = tso_part(system)
    assert not holds_feeder_data(part)
    assert list(part.feeders.interface_bus) == list(system.feeders.interface_bus)
    assert len(part.grid.buses) == len(system.grid.buses)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_schemes_send_only_the_messages_their_visibility_declares(system, scheme):
    outcome = run_scheme(system, scheme)
    sent = set(outcome.messages.index)
    assert sent, "every scheme exchanges at least the final interface schedules"
    assert sent <= set(VISIBILITY[scheme]["messages"]), sent
