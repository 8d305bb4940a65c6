"""The message bus: every message is logged (committed) before it is delivered.

Parties exchange typed messages (:mod:`tsodso.actors.messages`) through a
:class:`MessageBus`. ``send`` appends the message to the bus's :class:`MessageLog` and only
after the commit puts it into the recipient's inbox, so the log holds every message any
party has received; ``receive`` takes messages out of a party's inbox.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import fields
from types import TracebackType
from typing import Any, TypeVar

import pandas as pd

from tsodso.actors.log import MessageLog
from tsodso.actors.messages import ENVELOPE_FIELDS, Envelope, Message, Party, message_type
from tsodso.errors import TsodsoError

M = TypeVar("M", bound=Message)


def _party(where: str, value: Party | str) -> Party:
    if isinstance(value, Party):
        return value
    if isinstance(value, str):
        return Party.parse(value)
    raise TsodsoError(f"{where} must be a Party (or 'tso', 'dso:NAME', ...), got {value!r}")


def new_envelope(sender: Party | str, recipient: Party | str, *, periods: int | range,
                 period_hours: float, sim_time: str = "", iteration: int = 0,
                 conversation: str | None = None, reply_to: str | None = None) -> Envelope:
    """The envelope of a new message (its id is assigned when it is sent).

    Parameters
    ----------
    sender, recipient : Party or str
        Who sends and who receives (``Party`` or its text, e.g. ``"dso:case33bw@9"``).
    periods : int or range
        The periods the payload covers: ``n`` means periods ``0 .. n-1``; a ``range`` with
        step 1 gives the first period and their number.
    period_hours : float
        Length of one period, h.
    sim_time : str
        Simulated time of sending (ISO 8601) or a stage label.
    iteration : int
        Iteration of an iterative scheme (0 if not iterative).
    conversation : str, optional
        Conversation to join; None starts a new one, named after the message's id.
    reply_to : str, optional
        Id of the message this one answers.
    """
    if isinstance(periods, range):
        if periods.step != 1 or len(periods) == 0:
            raise TsodsoError(f"periods must be a non-empty range with step 1, got {periods}")
        first, n = periods.start, len(periods)
    else:
        first, n = 0, periods
    return Envelope(id="", conversation="" if conversation is None else conversation,
                    reply_to=reply_to, sender=_party("sender", sender),
                    recipient=_party("recipient", recipient), sim_time=sim_time,
                    first_period=first, n_periods=n, period_hours=period_hours,
                    iteration=iteration)


def _kind_filter(kind: str | type[Message] | None) -> type[Message] | None:
    return None if kind is None else message_type(kind)


class MessageBus:
    """Delivers messages between parties after logging them.

    Parameters
    ----------
    log : MessageLog, optional
        Where every message is logged before delivery; a new in-memory log if omitted
        (closed with the bus).
    scheme : str
        Name of the coordination scheme, logged with every message.
    """

    new_envelope = staticmethod(new_envelope)

    def __init__(self, log: MessageLog | None = None, scheme: str = "") -> None:
        if log is not None and not isinstance(log, MessageLog):
            raise TsodsoError(f"log must be a MessageLog, got {type(log).__name__}")
        if not isinstance(scheme, str):
            raise TsodsoError(f"scheme must be a string, got {scheme!r}")
        self._owns_log = log is None
        self.log = MessageLog() if log is None else log
        self.scheme = scheme
        self._inbox: dict[Party, list[Message]] = {}
        self._lock = threading.RLock()

    def send(self, msg: M) -> M:
        """Log ``msg`` and deliver it; returns it as delivered (with its id)."""
        return self.send_all([msg])[0]

    def send_all(self, msgs: Iterable[M]) -> list[M]:
        """Log a batch of messages in one transaction, then deliver them in order.

        Returns
        -------
        list of Message
            The delivered messages, with their ids. Nothing is delivered if logging fails.
        """
        batch = list(msgs)
        for msg in batch:
            if not isinstance(msg, Message):
                raise TsodsoError(f"only messages can be sent, got {type(msg).__name__}")
            env = msg.envelope
            for name in ("sender", "recipient"):
                if not isinstance(getattr(env, name), Party):
                    raise TsodsoError(f"{msg.KIND}.envelope.{name} must be a Party")
        with self._lock:
            delivered = self.log.append(batch, self.scheme)
            for msg in delivered:
                self._inbox.setdefault(msg.envelope.recipient, []).append(msg)
        return delivered  # type: ignore[return-value]

    def receive(self, party: Party | str, kind: str | type[Message] | None = None
                ) -> list[Message]:
        """Take ``party``'s delivered messages (only those of ``kind`` if given) out of its
        inbox, in the order they were sent."""
        who, cls = _party("party", party), _kind_filter(kind)
        with self._lock:
            box = self._inbox.get(who, [])
            taken = [m for m in box if cls is None or type(m) is cls]
            self._inbox[who] = [m for m in box if not (cls is None or type(m) is cls)]
        return taken

    def peek(self, party: Party | str, kind: str | type[Message] | None = None
             ) -> list[Message]:
        """``party``'s delivered messages (of ``kind`` if given), left in its inbox."""
        who, cls = _party("party", party), _kind_filter(kind)
        with self._lock:
            return [m for m in self._inbox.get(who, []) if cls is None or type(m) is cls]

    @staticmethod
    def reply(to_msg: Message, kind_cls: type[M], **payload: Any) -> M:
        """A reply to ``to_msg`` (not sent yet): same conversation, ``reply_to`` its id,
        sender and recipient swapped, same periods, time and iteration.

        Keyword arguments named like envelope fields (``sim_time``, ``iteration``,
        ``first_period``, ``n_periods``, ``period_hours``) change the envelope; the others
        are the payload of ``kind_cls``.
        """
        env = to_msg.envelope
        if not env.id:
            raise TsodsoError(f"cannot reply to a {to_msg.KIND} message that was not sent")
        cls = message_type(kind_cls)
        changes = {k: payload.pop(k) for k in list(payload)
                   if k in ENVELOPE_FIELDS and k not in {f.name for f in fields(cls)}}
        blocked = set(changes) & {"id", "conversation", "reply_to", "sender", "recipient"}
        if blocked:
            raise TsodsoError(f"a reply's {', '.join(sorted(blocked))} follows from the "
                              "message it answers")
        values = {name: getattr(env, name) for name in ENVELOPE_FIELDS} | changes
        values |= {"id": "", "conversation": env.conversation or env.id, "reply_to": env.id,
                   "sender": env.recipient, "recipient": env.sender}
        return cls(Envelope(**values), **payload)  # type: ignore[return-value]

    def summary(self) -> pd.DataFrame:
        """Count and bytes by kind of this bus's scheme's messages in the log."""
        return self.log.summary(scheme=self.scheme)

    def close(self) -> None:
        """Close the log if the bus created it."""
        if self._owns_log:
            self.log.close()

    def __enter__(self) -> MessageBus:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["MessageBus", "new_envelope"]
