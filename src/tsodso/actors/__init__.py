"""Actors' communication: typed messages, a message bus and a durable append-only log.

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

__all__ = [
    "LOG_FILE_NAME", "MESSAGE_CLASSES", "MESSAGE_TYPES", "Acknowledgement", "Activation",
    "AvailabilitySchedule", "CurtailmentRequest", "DerSchedule", "Envelope", "FaultNotice",
    "InterfacePrice", "InterfaceSchedule", "Message", "MessageBus", "MessageLog", "Offer",
    "Party", "PrequalificationLimits", "Price", "ScheduleChangeNotice", "SettlementStatement",
    "from_json", "message_type", "new_envelope", "size_bytes", "to_json",
]
