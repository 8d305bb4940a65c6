"""Fixtures of the actors tests: one message of every kind."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tsodso.actors import (
    Acknowledgement,
    Activation,
    AvailabilitySchedule,
    CurtailmentRequest,
    DerSchedule,
    FaultNotice,
    GridState,
    InterfacePrice,
    InterfaceSchedule,
    Message,
    Offer,
    Party,
    PrequalificationLimits,
    Price,
    ScheduleChangeNotice,
    SettlementStatement,
    new_envelope,
)

T = 3
# values whose decimal forms are long, tiny, huge or signed zero: JSON must keep them exactly
AWKWARD = np.array([[0.1 + 0.2, -0.0], [math.pi, 1e-300], [1 / 3, 2.5e17]])


def every_kind() -> list[Message]:
    """One message of every kind, with awkward float values."""
    tso, dso, agg = Party.tso(), Party.dso("case33bw@9"), Party.aggregator("agg1")
    env = new_envelope(agg, tso, periods=range(4, 4 + T), period_hours=0.25,
                       sim_time="2024-07-01T00:00:00", iteration=2)
    down = new_envelope(tso, dso, periods=T, period_hours=0.25, sim_time="day-ahead")
    up = new_envelope(dso, tso, periods=T, period_hours=0.25)
    ders = ("pv1", "ev2")
    return [
        AvailabilitySchedule(env, ders, AWKWARD + 5, AWKWARD + 4),
        Offer(env, "o1", 14, "up", AWKWARD, np.abs(AWKWARD), resource_ids=ders),
        PrequalificationLimits(up, ders, AWKWARD, AWKWARD - 0.5),
        InterfacePrice(down, "case33bw@9", Price(AWKWARD[:, 0] * 40, 0.25)),
        InterfaceSchedule(up, "case33bw@9", AWKWARD[:, 1]),
        DerSchedule(down, ders, -AWKWARD),
        ScheduleChangeNotice(up, ders, AWKWARD, AWKWARD * 0.5, "voltage at bus 18"),
        Activation(down, "act-7", ders, AWKWARD / 7),
        Acknowledgement(up, accepted=False, reason="line 5 would overload"),
        CurtailmentRequest(down, ders, np.abs(AWKWARD)),
        FaultNotice(down, "feeder_line", "case33bw@9:12", "tripped by protection"),
        GridState(up, "case33bw@9", "alert", "tie 33 closed"),
        SettlementStatement(down, agg, (("energy", 1234.5), ("imbalance", -0.1 - 0.2))),
    ]


@pytest.fixture
def messages() -> list[Message]:
    """One message of every kind (periods of 15 min, awkward float values)."""
    return every_kind()


@pytest.fixture
def samples() -> dict[str, Message]:
    """One message of every kind, by KIND."""
    return {m.KIND: m for m in every_kind()}
