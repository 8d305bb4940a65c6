"""Typed messages: JSON round trip, read-only arrays, validation, prices."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest

from tsodso.actors import (
    MESSAGE_TYPES,
    Acknowledgement,
    AvailabilitySchedule,
    DerSchedule,
    FaultNotice,
    InterfacePrice,
    InterfaceSchedule,
    Offer,
    Party,
    PrequalificationLimits,
    Price,
    SettlementStatement,
    from_json,
    new_envelope,
    size_bytes,
    to_json,
)
from tsodso.errors import TsodsoError

T = 3
ENV = new_envelope("tso", "dso:f1", periods=T, period_hours=0.5)


def test_samples_cover_every_kind(messages):
    assert sorted(m.KIND for m in messages) == sorted(MESSAGE_TYPES)
    assert all(MESSAGE_TYPES[m.KIND] is type(m) for m in messages)


@pytest.mark.parametrize("kind", list(MESSAGE_TYPES))
def test_json_round_trip_is_exact(samples, kind):
    msg = samples[kind]
    logged = dataclasses.replace(msg, envelope=dataclasses.replace(
        msg.envelope, id="run-0000009", conversation="run-0000003", reply_to="run-0000003"))
    for m in (msg, logged):
        text = json.dumps(to_json(m), allow_nan=False)  # plain JSON
        back = from_json(json.loads(text))
        assert type(back) is type(m) and back == m
        assert to_json(back) == to_json(m)
        for f in dataclasses.fields(m):
            value = getattr(back, f.name)
            if isinstance(value, np.ndarray):  # bit for bit, signed zero included
                assert value.tobytes() == getattr(m, f.name).tobytes()


def test_to_json_layout(messages):
    data = to_json(messages[1])
    assert data["kind"] == "offer" and data["sender"] == "aggregator:agg1"
    assert data["recipient"] == "tso" and data["first_period"] == 4
    assert data["payload"]["price_per_mwh"][1][0] == np.pi
    assert size_bytes(messages[1]) == len(json.dumps(data["payload"],
                                                     separators=(",", ":")).encode())


def test_messages_pickle_with_read_only_arrays(messages):
    for msg in messages:
        back = pickle.loads(pickle.dumps(msg))
        assert back == msg
        for f in dataclasses.fields(back):
            value = getattr(back, f.name)
            if isinstance(value, np.ndarray):
                assert not value.flags.writeable


def test_arrays_are_read_only_copies():
    source = np.ones((T, 2))
    msg = DerSchedule(ENV, ["a", "b"], source)
    source[0, 0] = 99.0
    assert msg.p_mw[0, 0] == 1.0 and msg.p_mw.dtype == np.float64
    with pytest.raises(ValueError, match="read-only"):
        msg.p_mw[0, 0] = 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.p_mw = source  # type: ignore[misc]
    assert msg.der_ids == ("a", "b")  # lists become tuples


@pytest.mark.parametrize(("make", "kind", "field"), [
    (lambda: AvailabilitySchedule(ENV, ["a"], np.ones((T, 2)), np.zeros((T, 1))),
     "availability_schedule", "p_max_mw"),
    (lambda: AvailabilitySchedule(ENV, ["a"], np.ones((T, 1)), np.zeros((T + 1, 1))),
     "availability_schedule", "p_min_mw"),
    (lambda: Offer(ENV, "o", 3, "up", np.ones((T, 2)), np.ones((T, 3))),
     "offer", "quantity_mw"),
    (lambda: Offer(ENV, "o", 3, "up", np.ones(T), np.ones(T)), "offer", "price_per_mwh"),
    (lambda: InterfaceSchedule(ENV, "f1", np.ones((T, 1))), "interface_schedule", "p_mw"),
    (lambda: DerSchedule(ENV, ["a", "b"], [[1, 2], [3]]), "der_schedule", "p_mw"),
    (lambda: PrequalificationLimits(ENV, ["a"], np.ones((T, 1)), np.ones((1, 1))),
     "prequalification_limits", "lower_mw"),
])
def test_shape_errors_name_kind_and_field(make, kind, field):
    with pytest.raises(TsodsoError, match=rf"{kind}\.{field}") as err:
        make()
    assert "shape" in str(err.value) or "not an array" in str(err.value)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Offer(ENV, "o", 3, "up", np.ones((T, 1)), -np.ones((T, 1))),
     r"offer\.quantity_mw: quantities must be >= 0"),
    (lambda: Offer(ENV, "o", 3, "sideways", np.ones((T, 1)), np.ones((T, 1))),
     r"offer\.direction"),
    (lambda: DerSchedule(ENV, ["a"], np.full((T, 1), np.nan)), r"der_schedule\.p_mw: .*finite"),
    (lambda: DerSchedule(ENV, ["a", "a"], np.ones((T, 2))), r"der_schedule\.der_ids: .*twice"),
    (lambda: PrequalificationLimits(ENV, ["a"], np.zeros((T, 1)), np.ones((T, 1))),
     r"prequalification_limits\.lower_mw: 1 MW above upper_mw 0 MW for 'a' in period 0"),
    (lambda: FaultNotice(ENV, "", "x", "y"), r"fault_notice\.element"),
    (lambda: SettlementStatement(ENV, Party.tso(), [("fee", float("inf"))]),
     r"settlement_statement\.lines"),
    (lambda: InterfacePrice(ENV, "f1", Price(np.ones(T), 1.0)),
     r"interface_price\.price: period of 1 h but the envelope's is 0.5 h"),
    (lambda: InterfacePrice(ENV, "f1", Price(np.ones(T + 1), 0.5)),
     r"interface_price\.price: 4 values"),
])
def test_payload_errors(make, match):
    with pytest.raises(TsodsoError, match=match):
        make()


def test_rejection_needs_a_reason():
    with pytest.raises(TsodsoError, match=r"acknowledgement\.reason: a rejection must give"):
        Acknowledgement(ENV, accepted=False)
    with pytest.raises(TsodsoError, match="rejection"):
        Acknowledgement(ENV, accepted=False, reason="  ")
    assert Acknowledgement(ENV, accepted=True).reason == ""
    with pytest.raises(TsodsoError, match="True or False"):
        Acknowledgement(ENV, accepted="no")  # type: ignore[arg-type]


def test_price_conversion_per_period():
    price = Price([40.0, 50.0, 60.0], 0.25)
    assert price.per_period().tolist() == [10.0, 12.5, 15.0]  # $/MW per 15 min
    back = Price.from_per_period([10.0, 12.5, 15.0], 0.25)
    assert back == price and back.values_per_mwh.tolist() == [40.0, 50.0, 60.0]
    assert not price.values_per_mwh.flags.writeable
    with pytest.raises(TsodsoError, match="period_hours"):
        Price([1.0], 0.0)
    with pytest.raises(TsodsoError, match="period_hours"):
        Price.from_per_period([1.0], -1.0)


def test_party_text():
    assert str(Party.tso()) == "tso" and Party.parse("tso") == Party.tso()
    dso = Party.parse("dso:case33bw@9")
    assert dso == Party.dso("case33bw@9") and str(dso) == "dso:case33bw@9"
    assert Party.parse(str(Party.aggregator("a:b"))) == Party.aggregator("a:b")
    assert Party.parse("market_operator:pjm").role == "market_operator"
    with pytest.raises(TsodsoError, match="role must be one of"):
        Party.parse("retailer:x")
    with pytest.raises(TsodsoError, match="cannot read party"):
        Party.parse("dso")
    with pytest.raises(TsodsoError, match="non-empty"):
        Party.dso("")


def test_envelope_checks():
    with pytest.raises(TsodsoError, match="n_periods must be >= 1"):
        new_envelope("tso", "dso:f", periods=0, period_hours=1.0)
    with pytest.raises(TsodsoError, match="period_hours"):
        new_envelope("tso", "dso:f", periods=1, period_hours=float("nan"))
    with pytest.raises(TsodsoError, match="step 1"):
        new_envelope("tso", "dso:f", periods=range(0, 4, 2), period_hours=1.0)
    env = new_envelope("tso", "dso:f", periods=range(6, 9), period_hours=1.0)
    assert (env.first_period, env.n_periods, list(env.periods)) == (6, 3, [6, 7, 8])


def test_settlement_total(messages):
    statement = messages[-1]
    assert statement.total_usd == pytest.approx(1234.5 - 0.3)
    assert statement.lines[1] == ("imbalance", -0.1 - 0.2)


def test_from_json_errors(messages):
    with pytest.raises(TsodsoError, match="unknown message kind 'bid'; kinds: availability"):
        from_json({"kind": "bid"})
    data = to_json(messages[0])
    data["payload"]["colour"] = "red"
    with pytest.raises(TsodsoError, match="unknown field 'colour'"):
        from_json(data)
    data = to_json(messages[0])
    del data["payload"]["p_min_mw"]
    with pytest.raises(TsodsoError, match="availability_schedule message in JSON"):
        from_json(data)
