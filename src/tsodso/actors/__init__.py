"""The parties and their communication: typed messages, a message bus and a durable
append-only log.

The parties are :class:`~tsodso.actors.tso.Tso`, :class:`~tsodso.actors.dso.Dso` and
:class:`~tsodso.actors.aggregator.Aggregator` (imported on first use: they bring the
optimisation models with them).

Parties (TSO, DSOs, aggregators, market operator) exchange the frozen, typed messages of
:mod:`tsodso.actors.messages` through a :class:`MessageBus`, which writes every message to
a :class:`MessageLog` (SQLite file, memory or any SQLAlchemy database) and delivers it only
once the write is committed.
"""

from __future__ import annotations

from tsodso.actors.bus import MessageBus, new_envelope
from tsodso.actors.log import LOG_FILE_NAME, MessageLog
from tsodso.actors.messages import (
    MESSAGE_CLASSES,
    MESSAGE_TYPES,
    Acknowledgement,
    Activation,
    AvailabilitySchedule,
    CurtailmentRequest,
    DerSchedule,
    Envelope,
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
    from_json,
    message_type,
    size_bytes,
    to_json,
)

_PARTIES = {"Tso": "tsodso.actors.tso", "Dso": "tsodso.actors.dso",
            "Aggregator": "tsodso.actors.aggregator"}


def __getattr__(name: str) -> object:
    if name in _PARTIES:
        import importlib

        return getattr(importlib.import_module(_PARTIES[name]), name)
    raise AttributeError(f"module 'tsodso.actors' has no attribute {name!r}")


__all__ = [
    "Aggregator", "Dso", "Tso",
    "LOG_FILE_NAME", "MESSAGE_CLASSES", "MESSAGE_TYPES", "Acknowledgement", "Activation",
    "AvailabilitySchedule", "CurtailmentRequest", "DerSchedule", "Envelope", "FaultNotice",
    "GridState", "InterfacePrice", "InterfaceSchedule", "Message", "MessageBus", "MessageLog",
    "Offer", "Party", "PrequalificationLimits", "Price", "ScheduleChangeNotice",
    "SettlementStatement",
    "from_json", "message_type", "new_envelope", "size_bytes", "to_json",
]
