"""Offers and how they enter the market's data (:mod:`tsodso.platform.offers`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from platform_helpers import A, B, der_of
from tsodso.cli import app as cli
from tsodso.errors import TsodsoError, ValidationError
from tsodso.platform.offers import Offer, OfferStep, apply_offers, read_offers, write_offers
from tsodso.tso.offers import der_availability


def _offer(der, oid="o", steps=((0.5, 20.0), (0.5, 40.0)), agg=A, **kw):
    rating = float(der.p_max_mw)
    return Offer(oid, agg, der.der_id, tuple(OfferStep(q * rating, p) for q, p in steps), **kw)


def test_an_offer_replaces_the_standing_offer_and_caps_availability(default_system):
    s = default_system
    dr, pv = der_of(s, A), der_of(s, A, kind="pv")
    rating = float(pv.p_max_mw)
    caps = tuple(rating * (0.2 if t < 12 else 1.0) for t in range(24))
    offers = [_offer(dr, "dr", steps=((0.25, 15.0), (0.25, 30.0))),
              _offer(pv, "pv", steps=((0.4, 1.0), (0.4, 2.0)), max_mw=caps)]
    before = der_availability(s).copy()
    out = apply_offers(s, offers)
    assert np.array_equal(der_availability(s), before)  # the input is not changed
    assert len(s.der_bids) == 0 and s.ders.profile.equals(default_system.ders.profile)
    bids = out.der_bids.set_index(["der_id", "step"])
    assert bids.loc[(dr.der_id, 1), "price_per_mwh"] == 30.0
    assert bids.loc[(pv.der_id, 0), "quantity_mw"] == pytest.approx(0.4 * rating)
    avail = der_availability(out)
    i = {d: k for k, d in enumerate(s.ders.der_id)}
    expected_pv = np.minimum(np.minimum(before[:, i[pv.der_id]], 0.8 * rating), caps)
    assert np.allclose(avail[:, i[pv.der_id]], expected_pv)
    assert np.allclose(avail[:, i[dr.der_id]],
                       np.minimum(before[:, i[dr.der_id]], 0.5 * float(dr.p_max_mw)))
    others = [k for d, k in i.items() if d not in (pv.der_id, dr.der_id)]
    assert np.array_equal(avail[:, others], before[:, others])
    assert out.validate() == []


def test_refusals_name_the_offer_field_and_der(default_system):
    s = default_system
    dr = der_of(s, A)
    with pytest.raises(ValidationError) as err:
        apply_offers(s, [_offer(dr, "a"), _offer(dr, "b"), _offer(der_of(s, B), "c"),
                         _offer(dr, "a", steps=((2000.0, 1.0),))])
    text = [str(i) for i in err.value.issues]
    assert any("offer" in t and "'c'" not in t and "not in aggregator" in t for t in text)
    assert any("given twice" in t for t in text)
    assert any("several offers" in t for t in text)
    assert any("MW, not kW" in t for t in text)
    assert all(i.component == "offer" and i.id for i in err.value.issues)


def test_offers_files_round_trip_and_bad_files_are_refused(default_system, tmp_path):
    s = default_system
    offers = [_offer(der_of(s, A), "a", max_mw=tuple(0.01 for _ in range(24))),
              _offer(der_of(s, B), "b", agg=B)]
    path = write_offers(offers, tmp_path / "offers.json")
    assert read_offers(path) == offers
    with pytest.raises(TsodsoError, match="does not exist"):
        read_offers(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TsodsoError, match="not readable JSON"):
        read_offers(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text(json.dumps({"offers": [{"offer_id": "x"}]}))
    with pytest.raises(ValidationError, match="aggregator_id"):
        read_offers(tmp_path / "bad2.json")
    res = CliRunner().invoke(cli, ["run", "default", "--scheme", "tso_only", "--offers",
                                   str(tmp_path / "bad2.json")])
    assert res.exit_code == 1 and "aggregator_id" in res.output
