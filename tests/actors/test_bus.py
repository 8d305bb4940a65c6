"""The message bus: log first, then deliver; inboxes; replies."""

from __future__ import annotations

import numpy as np
import pytest

from tsodso.actors import (
    Acknowledgement,
    DerSchedule,
    InterfaceSchedule,
    MessageBus,
    MessageLog,
    Party,
    new_envelope,
)
from tsodso.errors import TsodsoError

TSO, DSO = Party.tso(), Party.dso("case33bw@9")


def _schedule(value: float = 1.0, **envelope) -> DerSchedule:
    env = new_envelope(TSO, DSO, periods=2, period_hours=1.0, **envelope)
    return DerSchedule(env, ["pv1"], np.full((2, 1), value))


def test_send_logs_then_delivers():
    with MessageLog() as log:
        bus = MessageBus(log, scheme="admm")
        sent = bus.send(_schedule())
        assert sent.envelope.id == "run-0000001"
        assert log.messages() == [sent]  # in the log with its id
        assert bus.peek(DSO) == [sent] and bus.peek("dso:case33bw@9") == [sent]
        assert bus.receive(TSO) == []
        assert bus.receive(DSO) == [sent]
        assert bus.receive(DSO) == []  # taken out


def test_receive_by_kind_keeps_the_rest():
    bus = MessageBus(scheme="s")
    a, b = bus.send_all([_schedule(1.0), _schedule(2.0)])
    env = new_envelope(TSO, DSO, periods=2, period_hours=1.0)
    c = bus.send(InterfaceSchedule(env, "case33bw@9", [0.5, 0.25]))
    assert bus.peek(DSO, "interface_schedule") == [c]
    assert bus.receive(DSO, DerSchedule) == [a, b]
    assert bus.receive(DSO) == [c]
    with pytest.raises(TsodsoError, match="unknown message kind 'bid'"):
        bus.receive(DSO, "bid")
    bus.close()


def test_reply_swaps_parties_and_threads_the_conversation():
    bus = MessageBus(scheme="s")
    request = bus.send(_schedule(sim_time="2024-07-01T00:00:00", iteration=3))
    reply = bus.reply(request, Acknowledgement, accepted=False, reason="bus 18 below 0.95 pu")
    env = reply.envelope
    assert (env.sender, env.recipient) == (DSO, TSO)
    assert env.reply_to == request.envelope.id
    assert env.conversation == request.envelope.conversation == request.envelope.id
    assert (env.sim_time, env.iteration, env.n_periods) == ("2024-07-01T00:00:00", 3, 2)
    assert env.id == ""
    answered = bus.send(reply)
    assert answered.envelope.conversation == request.envelope.id
    assert bus.receive(TSO) == [answered]
    later = bus.reply(answered, Acknowledgement, accepted=True, iteration=4)
    assert later.envelope.iteration == 4 and later.envelope.recipient == DSO
    with pytest.raises(TsodsoError, match="not sent"):
        bus.reply(_schedule(), Acknowledgement, accepted=True)
    with pytest.raises(TsodsoError, match="follows from the message"):
        bus.reply(request, Acknowledgement, accepted=True, sender=TSO)


def test_nothing_is_delivered_when_logging_fails(monkeypatch):
    bus = MessageBus(scheme="s")

    def fail(messages, scheme):
        raise TsodsoError("disk full")

    monkeypatch.setattr(bus.log, "append", fail)
    with pytest.raises(TsodsoError, match="disk full"):
        bus.send_all([_schedule(), _schedule()])
    assert bus.peek(DSO) == []
    with pytest.raises(TsodsoError, match="only messages can be sent"):
        bus.send("hello")  # type: ignore[arg-type]


def test_summary_is_per_scheme():
    with MessageLog() as log:
        one, two = MessageBus(log, "one"), MessageBus(log, "two")
        one.send_all([_schedule(), _schedule()])
        two.send(_schedule())
        assert one.summary()["count"].to_dict() == {"der_schedule": 2}
        assert two.summary()["count"].to_dict() == {"der_schedule": 1}
        assert log.summary()["count"].to_dict() == {"der_schedule": 3}
        assert [m.envelope.id for m in log.messages()] == [f"run-000000{i}" for i in (1, 2, 3)]
