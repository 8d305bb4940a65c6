"""Typed messages exchanged between the TSO, DSOs, aggregators and the market operator.

Every message is a frozen dataclass whose first field is an :class:`Envelope` (who sends it
to whom, in which conversation, for which periods) followed by its payload. Payload arrays
are copied on construction into read-only ``float64`` arrays of shape
``(n_periods, n_items)`` (one row per period of the envelope), so a message cannot change
after it was sent or logged.

Units and signs
---------------
* Power in MW, energy in MWh, money in $ (USD), prices in $/MWh; a field's suffix says
  which (``_mw``, ``_mwh``, ``_usd``, ``_per_mwh``).
* A resource's or DER's power is positive when it injects into the grid; a change
  (``delta_mw``) is positive for more injection (or less consumption).
* Power at a feeder's interface is positive when it flows from transmission into the
  feeder (import into the feeder).
* Settlement amounts are positive when the party receives money.

The only conversion between $/MWh and $/MW per period is in :class:`Price`.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from tsodso.errors import TsodsoError

Role = Literal["tso", "dso", "aggregator", "market_operator"]
ROLES: tuple[str, ...] = get_args(Role)


@dataclass(frozen=True, order=True)
class Party:
    """A participant: the TSO, a DSO, an aggregator or the market operator.

    Attributes
    ----------
    role : {"tso", "dso", "aggregator", "market_operator"}
        What the party is.
    name : str
        Its name within the role, e.g. a feeder id for a DSO; ``"tso"`` for the TSO.

    Notes
    -----
    ``str(party)`` is ``"tso"`` for the TSO named ``"tso"`` and ``"ROLE:NAME"`` otherwise;
    :meth:`parse` reads it back.
    """

    role: Role
    name: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise TsodsoError(f"party role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.name, str) or not self.name:
            raise TsodsoError(f"party name must be a non-empty string, got {self.name!r}")

    def __str__(self) -> str:
        if self.role == "tso" and self.name == "tso":
            return "tso"
        return f"{self.role}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Party:
        """The party that ``str(party)`` printed as ``text`` (``"tso"``, ``"dso:NAME"``, ...)."""
        if not isinstance(text, str):
            raise TsodsoError(f"a party is written 'tso' or 'ROLE:NAME', got {text!r}")
        role, sep, name = text.partition(":")
        if not sep:
            if role == "tso":
                return cls.tso()
            raise TsodsoError(f"cannot read party {text!r}: write 'tso' or 'ROLE:NAME' with "
                              f"ROLE one of {', '.join(ROLES)}")
        return cls(role, name)  # type: ignore[arg-type]

    @classmethod
    def tso(cls, name: str = "tso") -> Party:
        """The transmission system operator."""
        return cls("tso", name)

    @classmethod
    def dso(cls, name: str) -> Party:
        """The distribution system operator of feeder (or area) ``name``."""
        return cls("dso", name)

    @classmethod
    def aggregator(cls, name: str) -> Party:
        """The aggregator ``name``."""
        return cls("aggregator", name)

    @classmethod
    def market_operator(cls, name: str = "market") -> Party:
        """The market operator."""
        return cls("market_operator", name)


def _require_int(where: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TsodsoError(f"{where} must be an integer, got {value!r}")
    if int(value) < low:
        raise TsodsoError(f"{where} must be >= {low}, got {value}")
    return int(value)


def _require_str(where: str, value: object, nonempty: bool = False) -> str:
    if not isinstance(value, str):
        raise TsodsoError(f"{where} must be a string, got {value!r}")
    if nonempty and not value:
        raise TsodsoError(f"{where} must not be empty")
    return value


@dataclass(frozen=True)
class Envelope:
    """Addressing and timing of a message.

    Attributes
    ----------
    id : str
        Unique id, assigned by the log when the message is sent (``""`` before).
    conversation : str
        Id of the conversation the message belongs to; ``""`` starts a new one, whose id is
        then the id of its first message.
    reply_to : str or None
        Id of the message this one answers.
    sender, recipient : Party
        Who sends the message and who receives it.
    sim_time : str
        Simulated time the message is sent at: an ISO 8601 time (e.g. the start of the
        horizon) or a stage label such as ``"day-ahead"``.
    first_period : int
        Index of the first period the payload covers (>= 0).
    n_periods : int
        Number of periods the payload covers (>= 1): the rows of its arrays.
    period_hours : float
        Length of one period, h (> 0).
    iteration : int
        Iteration of an iterative scheme (>= 0; 0 when not iterative).
    """

    id: str
    conversation: str
    reply_to: str | None
    sender: Party
    recipient: Party
    sim_time: str
    first_period: int
    n_periods: int
    period_hours: float
    iteration: int = 0

    def __post_init__(self) -> None:
        for name in ("sender", "recipient"):
            if not isinstance(getattr(self, name), Party):
                raise TsodsoError(f"envelope.{name} must be a Party, got "
                                  f"{getattr(self, name)!r}")
        _require_str("envelope.id", self.id)
        _require_str("envelope.conversation", self.conversation)
        _require_str("envelope.sim_time", self.sim_time)
        if self.reply_to is not None:
            _require_str("envelope.reply_to", self.reply_to, nonempty=True)
        set_ = functools.partial(object.__setattr__, self)
        set_("first_period", _require_int("envelope.first_period", self.first_period, 0))
        set_("n_periods", _require_int("envelope.n_periods", self.n_periods, 1))
        set_("iteration", _require_int("envelope.iteration", self.iteration, 0))
        hours = self.period_hours
        if (isinstance(hours, bool) or not isinstance(hours, numbers.Real)
                or not math.isfinite(hours) or hours <= 0):
            raise TsodsoError(f"envelope.period_hours must be a finite number of hours > 0, "
                              f"got {hours!r}")
        set_("period_hours", float(hours))

    @property
    def periods(self) -> range:
        """The period indices the payload covers."""
        return range(self.first_period, self.first_period + self.n_periods)


def _frozen(where: str, value: Any, dims: tuple[tuple[str, int | None], ...]) -> np.ndarray:
    """``value`` as a read-only float64 copy of shape ``dims`` (name, size or None = any)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TsodsoError(f"{where}: not an array of numbers ({err})") from None
    expected = "(" + ", ".join(f"{n}={'any' if s is None else s}" for n, s in dims) + ")"
    if arr.ndim != len(dims) or any(s is not None and s != a
                                    for (_, s), a in zip(dims, arr.shape, strict=False)):
        raise TsodsoError(f"{where}: shape {arr.shape}, expected {expected}")
    if not np.isfinite(arr).all():
        raise TsodsoError(f"{where}: values must be finite (no NaN or infinity)")
    arr.setflags(write=False)
    return arr


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.shape == b.shape and bool(np.array_equal(a, b)))
    return bool(a == b)


@dataclass(frozen=True, eq=False)
class Price:
    """A price per period: the one price type of the messages.

    Attributes
    ----------
    values_per_mwh : numpy.ndarray
        Price of each period, $/MWh, shape ``(n_periods,)``; positive = the buyer pays.
    period_hours : float
        Length of one period, h (> 0).
    """

    values_per_mwh: np.ndarray
    period_hours: float

    def __post_init__(self) -> None:
        hours = self.period_hours
        if (isinstance(hours, bool) or not isinstance(hours, numbers.Real)
                or not math.isfinite(hours) or hours <= 0):
            raise TsodsoError(f"price.period_hours must be a finite number of hours > 0, "
                              f"got {hours!r}")
        object.__setattr__(self, "period_hours", float(hours))
        object.__setattr__(self, "values_per_mwh", _frozen(
            "price.values_per_mwh", self.values_per_mwh, (("periods", None),)))

    def per_period(self) -> np.ndarray:
        """The price as $/MW per period: $/MWh times the period length (h)."""
        return self.values_per_mwh * self.period_hours

    @classmethod
    def from_per_period(cls, values: Any, period_hours: float) -> Price:
        """The price whose :meth:`per_period` is ``values`` ($/MW per period of
        ``period_hours`` h)."""
        if not isinstance(period_hours, numbers.Real) or not period_hours > 0:
            raise TsodsoError(f"price.period_hours must be a finite number of hours > 0, "
                              f"got {period_hours!r}")
        per_period = _frozen("price (per period)", values, (("periods", None),))
        return cls(per_period / float(period_hours), period_hours)

    def __len__(self) -> int:
        return len(self.values_per_mwh)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Price):
            return NotImplemented
        return (self.period_hours == other.period_hours
                and _same(self.values_per_mwh, other.values_per_mwh))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Price, (self.values_per_mwh, self.period_hours))


@dataclass(frozen=True, eq=False)
class Message:
    """Base of every message: an :class:`Envelope` followed by the payload fields.

    Messages compare equal when their types, envelopes and payloads are equal (arrays
    element by element); they are not hashable.
    """

    envelope: Envelope
    KIND: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not isinstance(self.envelope, Envelope):
            raise TsodsoError(f"{self.KIND}.envelope: must be an Envelope, got "
                              f"{type(self.envelope).__name__}")
        self._validate()

    def _validate(self) -> None:
        """Check and freeze the payload (subclasses)."""

    # helpers for subclasses --------------------------------------------------------------
    def _where(self, name: str) -> str:
        return f"{self.KIND}.{name}"

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _ids(self, name: str) -> tuple[str, ...]:
        raw = getattr(self, name)
        if isinstance(raw, str) or not isinstance(raw, typing.Iterable):
            raise TsodsoError(f"{self._where(name)}: must be a sequence of ids, got {raw!r}")
        ids = tuple(str(x) for x in raw)
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                raise TsodsoError(f"{self._where(name)}: id {i!r} is given twice")
            seen.add(i)
        self._set(name, ids)
        return ids

    def _array(self, name: str, *dims: tuple[str, int | None]) -> np.ndarray:
        arr = _frozen(self._where(name), getattr(self, name),
                      (("periods", self.envelope.n_periods), *dims))
        self._set(name, arr)
        return arr

    def _string(self, name: str, nonempty: bool = True) -> str:
        return _require_str(self._where(name), getattr(self, name), nonempty)

    def _not_above(self, low_name: str, high_name: str, ids: tuple[str, ...]) -> None:
        low, high = getattr(self, low_name), getattr(self, high_name)
        bad = np.argwhere(low > high)
        if len(bad):
            t, i = bad[0]
            raise TsodsoError(f"{self._where(low_name)}: {low[t, i]:g} MW above {high_name} "
                              f"{high[t, i]:g} MW for {ids[i]!r} in period "
                              f"{self.envelope.first_period + int(t)}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt through __init__, so arrays come back read-only
        return (type(self), tuple(getattr(self, f.name) for f in fields(self)))


@dataclass(frozen=True, eq=False)
class AvailabilitySchedule(Message):
    """Power range of resources per period (aggregator or DSO to TSO or DSO).

    Attributes
    ----------
    resource_ids : tuple of str
        The resources (columns of the arrays).
    p_max_mw, p_min_mw : numpy.ndarray
        Highest and lowest power each resource can take, MW, ``(n_periods, n_resources)``;
        positive = injection. ``p_min_mw <= p_max_mw``.
    """

    KIND: ClassVar[str] = "availability_schedule"
    resource_ids: tuple[str, ...]
    p_max_mw: np.ndarray
    p_min_mw: np.ndarray

    def _validate(self) -> None:
        ids = self._ids("resource_ids")
        self._array("p_max_mw", ("resources", len(ids)))
        self._array("p_min_mw", ("resources", len(ids)))
        self._not_above("p_min_mw", "p_max_mw", ids)


@dataclass(frozen=True, eq=False)
class Offer(Message):
    """A stepwise price-quantity offer of flexibility at a transmission bus.

    Attributes
    ----------
    offer_id : str
        Id of the offer.
    bus_id : int
        Transmission bus the offer is located at.
    direction : {"up", "down"}
        ``"up"``: more injection (or less consumption); ``"down"``: less injection.
    price_per_mwh : numpy.ndarray
        Price of each step, $/MWh, ``(n_periods, n_steps)``.
    quantity_mw : numpy.ndarray
        Size of each step, MW (>= 0), ``(n_periods, n_steps)``.
    resource_ids : tuple of str
        Resources behind the offer (may be empty).
    """

    KIND: ClassVar[str] = "offer"
    offer_id: str
    bus_id: int
    direction: Literal["up", "down"]
    price_per_mwh: np.ndarray
    quantity_mw: np.ndarray
    resource_ids: tuple[str, ...] = ()

    def _validate(self) -> None:
        self._string("offer_id")
        self._set("bus_id", _require_int(self._where("bus_id"), self.bus_id, 0))
        if self.direction not in ("up", "down"):
            raise TsodsoError(f"{self._where('direction')}: must be 'up' or 'down', got "
                              f"{self.direction!r}")
        price = self._array("price_per_mwh", ("steps", None))
        qty = self._array("quantity_mw", ("steps", price.shape[1]))
        if (qty < 0).any():
            raise TsodsoError(f"{self._where('quantity_mw')}: quantities must be >= 0 MW, got "
                              f"{qty.min():g}")
        self._ids("resource_ids")


@dataclass(frozen=True, eq=False)
class PrequalificationLimits(Message):
    """Range within which the DSO lets each DER be dispatched (DSO to TSO).

    Attributes
    ----------
    der_ids : tuple of str
        The DERs (columns).
    upper_mw, lower_mw : numpy.ndarray
        Highest and lowest power, MW, ``(n_periods, n_ders)``; positive = injection;
        ``lower_mw <= upper_mw``.
    """

    KIND: ClassVar[str] = "prequalification_limits"
    der_ids: tuple[str, ...]
    upper_mw: np.ndarray
    lower_mw: np.ndarray

    def _validate(self) -> None:
        ids = self._ids("der_ids")
        self._array("upper_mw", ("ders", len(ids)))
        self._array("lower_mw", ("ders", len(ids)))
        self._not_above("lower_mw", "upper_mw", ids)


@dataclass(frozen=True, eq=False)
class InterfacePrice(Message):
    """Price of power at a feeder's interface with transmission.

    Attributes
    ----------
    feeder_id : str
        The feeder.
    price : Price
        $/MWh per period (one value per period of the envelope, same period length);
        positive = the feeder pays for imported power.
    """

    KIND: ClassVar[str] = "interface_price"
    feeder_id: str
    price: Price

    def _validate(self) -> None:
        self._string("feeder_id")
        if not isinstance(self.price, Price):
            raise TsodsoError(f"{self._where('price')}: must be a Price, got "
                              f"{type(self.price).__name__}")
        if len(self.price) != self.envelope.n_periods:
            raise TsodsoError(f"{self._where('price')}: {len(self.price)} values, expected "
                              f"one per period ({self.envelope.n_periods})")
        if self.price.period_hours != self.envelope.period_hours:
            raise TsodsoError(f"{self._where('price')}: period of {self.price.period_hours:g} h "
                              f"but the envelope's is {self.envelope.period_hours:g} h")


@dataclass(frozen=True, eq=False)
class InterfaceSchedule(Message):
    """Power exchanged at a feeder's interface per period.

    Attributes
    ----------
    feeder_id : str
        The feeder.
    p_mw : numpy.ndarray
        Import into the feeder, MW, ``(n_periods,)``; positive = power flows from
        transmission into the feeder.
    deviation_penalty : float
        What deviating from ``p_mw`` costs the recipient, $/MW^2h: in each period
        ``deviation_penalty / 2 x (p - p_mw)^2 x period_hours`` (the proximal term of a
        consensus (ADMM) iteration); 0 (default) for a plain schedule.
    """

    KIND: ClassVar[str] = "interface_schedule"
    feeder_id: str
    p_mw: np.ndarray
    deviation_penalty: float = 0.0

    def _validate(self) -> None:
        self._string("feeder_id")
        self._array("p_mw")
        rho = self.deviation_penalty
        if (isinstance(rho, bool) or not isinstance(rho, numbers.Real)
                or not math.isfinite(rho) or rho < 0):
            raise TsodsoError(f"{self._where('deviation_penalty')}: must be a finite number "
                              f">= 0 ($/MW^2h), got {rho!r}")
        self._set("deviation_penalty", float(rho))


@dataclass(frozen=True, eq=False)
class DerSchedule(Message):
    """Cleared power of DERs: the TSO's schedules to a DSO after clearing, or an
    aggregator's baseline of its DERs (to the TSO and its DSOs).

    Attributes
    ----------
    der_ids : tuple of str
        The DERs (columns).
    p_mw : numpy.ndarray
        Power, MW, ``(n_periods, n_ders)``; positive = injection.
    """

    KIND: ClassVar[str] = "der_schedule"
    der_ids: tuple[str, ...]
    p_mw: np.ndarray

    def _validate(self) -> None:
        ids = self._ids("der_ids")
        self._array("p_mw", ("ders", len(ids)))


@dataclass(frozen=True, eq=False)
class ScheduleChangeNotice(Message):
    """A DSO changed DER schedules, e.g. to keep its feeder within limits (DSO to TSO).

    Attributes
    ----------
    der_ids : tuple of str
        The DERs (columns).
    old_p_mw, new_p_mw : numpy.ndarray
        Power before and after the change, MW, ``(n_periods, n_ders)``; positive = injection.
    reason : str
        Why the schedules changed.
    """

    KIND: ClassVar[str] = "schedule_change_notice"
    der_ids: tuple[str, ...]
    old_p_mw: np.ndarray
    new_p_mw: np.ndarray
    reason: str

    def _validate(self) -> None:
        ids = self._ids("der_ids")
        self._array("old_p_mw", ("ders", len(ids)))
        self._array("new_p_mw", ("ders", len(ids)))
        self._string("reason", nonempty=False)


@dataclass(frozen=True, eq=False)
class Activation(Message):
    """Request to change resources' power from their schedule.

    Attributes
    ----------
    activation_id : str
        Id of the activation.
    resource_ids : tuple of str
        The resources (columns).
    delta_mw : numpy.ndarray
        Change of power, MW, ``(n_periods, n_resources)``; positive = more injection (or
        less consumption).
    """

    KIND: ClassVar[str] = "activation"
    activation_id: str
    resource_ids: tuple[str, ...]
    delta_mw: np.ndarray

    def _validate(self) -> None:
        self._string("activation_id")
        ids = self._ids("resource_ids")
        self._array("delta_mw", ("resources", len(ids)))


@dataclass(frozen=True, eq=False)
class Acknowledgement(Message):
    """Acceptance or rejection of the message named by ``envelope.reply_to``.

    Attributes
    ----------
    accepted : bool
        Whether the request was accepted.
    reason : str
        Why; required when ``accepted`` is False.
    """

    KIND: ClassVar[str] = "acknowledgement"
    accepted: bool
    reason: str = ""

    def _validate(self) -> None:
        if not isinstance(self.accepted, bool | np.bool_):
            raise TsodsoError(f"{self._where('accepted')}: must be True or False, got "
                              f"{self.accepted!r}")
        self._set("accepted", bool(self.accepted))
        self._string("reason", nonempty=False)
        if not self.accepted and not self.reason.strip():
            raise TsodsoError(f"{self._where('reason')}: a rejection must give a reason")


@dataclass(frozen=True, eq=False)
class CurtailmentRequest(Message):
    """Upper limit on DERs' injection (e.g. DSO to aggregator).

    Attributes
    ----------
    der_ids : tuple of str
        The DERs (columns).
    p_max_mw : numpy.ndarray
        Highest power allowed, MW, ``(n_periods, n_ders)``; positive = injection.
    """

    KIND: ClassVar[str] = "curtailment_request"
    der_ids: tuple[str, ...]
    p_max_mw: np.ndarray

    def _validate(self) -> None:
        ids = self._ids("der_ids")
        self._array("p_max_mw", ("ders", len(ids)))


@dataclass(frozen=True, eq=False)
class FaultNotice(Message):
    """A network element failed or was switched out.

    Attributes
    ----------
    element : str
        Kind of element, e.g. ``"branch"``, ``"feeder_line"``, ``"generator"``.
    element_id : str
        Its id.
    description : str
        What happened.
    """

    KIND: ClassVar[str] = "fault_notice"
    element: str
    element_id: str
    description: str

    def _validate(self) -> None:
        self._string("element")
        self._string("element_id")
        self._string("description", nonempty=False)


@dataclass(frozen=True, eq=False)
class SettlementStatement(Message):
    """What a party is paid or charged.

    Attributes
    ----------
    party : Party
        The party settled.
    lines : tuple of (str, float)
        Item name and amount, $; positive = the party receives money.
    """

    KIND: ClassVar[str] = "settlement_statement"
    party: Party
    lines: tuple[tuple[str, float], ...]

    def _validate(self) -> None:
        if not isinstance(self.party, Party):
            raise TsodsoError(f"{self._where('party')}: must be a Party, got {self.party!r}")
        where = self._where("lines")
        if isinstance(self.lines, str) or not isinstance(self.lines, typing.Iterable):
            raise TsodsoError(f"{where}: must be a sequence of (item, amount $) pairs")
        lines = []
        for line in self.lines:
            if isinstance(line, str) or not isinstance(line, typing.Iterable):
                raise TsodsoError(f"{where}: {line!r} is not an (item, amount $) pair")
            pair = tuple(line)
            if len(pair) != 2 or not isinstance(pair[0], str):
                raise TsodsoError(f"{where}: {line!r} is not an (item, amount $) pair")
            amount = pair[1]
            if (isinstance(amount, bool) or not isinstance(amount, numbers.Real)
                    or not math.isfinite(amount)):
                raise TsodsoError(f"{where}: amount of {pair[0]!r} must be a finite number "
                                  f"of $, got {amount!r}")
            lines.append((pair[0], float(amount)))
        self._set("lines", tuple(lines))

    @property
    def total_usd(self) -> float:
        """Sum of the lines, $; positive = the party receives money."""
        return math.fsum(amount for _, amount in self.lines)


#: The operating states of a feeder a :class:`GridState` reports, from best to worst.
GRID_STATES: tuple[str, ...] = ("normal", "alert", "emergency")


@dataclass(frozen=True, eq=False)
class GridState(Message):
    """The operating state of a feeder over the envelope's periods (DSO to TSO).

    Attributes
    ----------
    feeder_id : str
        The feeder.
    state : {"normal", "alert", "emergency"}
        ``"normal"``: every load served, normal configuration, within limits with margin;
        ``"alert"``: every load served, but near a limit or in an abnormal configuration
        (a tie switch closed, a line open, a section islanded); ``"emergency"``: some load
        is not served. The sender says how it judged it in ``reason``.
    reason : str
        Why the feeder is in that state.
    """

    KIND: ClassVar[str] = "grid_state"
    feeder_id: str
    state: Literal["normal", "alert", "emergency"]
    reason: str

    def _validate(self) -> None:
        self._string("feeder_id")
        if self.state not in GRID_STATES:
            raise TsodsoError(f"{self._where('state')}: must be one of "
                              f"{', '.join(GRID_STATES)}, got {self.state!r}")
        self._string("reason", nonempty=False)


MESSAGE_CLASSES: tuple[type[Message], ...] = (
    AvailabilitySchedule, Offer, PrequalificationLimits, InterfacePrice, InterfaceSchedule,
    DerSchedule, ScheduleChangeNotice, Activation, Acknowledgement, CurtailmentRequest,
    FaultNotice, SettlementStatement, GridState)
MESSAGE_TYPES: dict[str, type[Message]] = {cls.KIND: cls for cls in MESSAGE_CLASSES}

ENVELOPE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Envelope))


def message_type(kind: str | type[Message]) -> type[Message]:
    """The message class of ``kind`` (a KIND string or a message class)."""
    if isinstance(kind, type) and issubclass(kind, Message) and kind in MESSAGE_CLASSES:
        return kind
    if isinstance(kind, str) and kind in MESSAGE_TYPES:
        return MESSAGE_TYPES[kind]
    raise TsodsoError(f"unknown message kind {kind!r}; kinds: {', '.join(MESSAGE_TYPES)}")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()  # Python floats: full precision
    if isinstance(value, Price):
        return {"values_per_mwh": value.values_per_mwh.tolist(),
                "period_hours": value.period_hours}
    if isinstance(value, Party):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def payload_json(msg: Message) -> dict[str, Any]:
    """The payload of ``msg`` (every field but the envelope) as plain JSON values."""
    return {f.name: _plain(getattr(msg, f.name)) for f in fields(msg)[1:]}


def to_json(msg: Message) -> dict[str, Any]:
    """``msg`` as plain JSON: its kind, the envelope's fields (parties as ``str(party)``)
    and ``payload``; arrays are nested lists of floats at full precision."""
    if not isinstance(msg, Message) or type(msg) not in MESSAGE_CLASSES:
        raise TsodsoError(f"not a message: {type(msg).__name__}")
    env = msg.envelope
    out: dict[str, Any] = {"kind": msg.KIND}
    for name in ENVELOPE_FIELDS:
        value = getattr(env, name)
        out[name] = str(value) if isinstance(value, Party) else value
    out["payload"] = payload_json(msg)
    return out


@functools.cache
def _hints(cls: type[Message]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(data: dict[str, Any]) -> Message:
    """The message that :func:`to_json` wrote as ``data`` (exact round trip)."""
    if not isinstance(data, dict):
        raise TsodsoError(f"a message in JSON is an object, got {type(data).__name__}")
    cls = message_type(data.get("kind", "<missing>"))
    missing = [n for n in (*ENVELOPE_FIELDS, "payload") if n not in data]
    if missing:
        raise TsodsoError(f"{cls.KIND} message in JSON lacks {', '.join(missing)}")
    env = {name: data[name] for name in ENVELOPE_FIELDS}
    env["sender"] = Party.parse(env["sender"])
    env["recipient"] = Party.parse(env["recipient"])
    payload = data["payload"]
    if not isinstance(payload, dict):
        raise TsodsoError(f"{cls.KIND} message in JSON: payload must be an object")
    hints = _hints(cls)
    expected = [f.name for f in fields(cls)[1:]]
    unknown = [k for k in payload if k not in expected]
    if unknown:
        raise TsodsoError(f"{cls.KIND} message in JSON: unknown field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, value in payload.items():
        if hints[name] is Price:
            if not isinstance(value, dict) or set(value) != {"values_per_mwh", "period_hours"}:
                raise TsodsoError(f"{cls.KIND}.{name}: a price in JSON is an object with "
                                  "values_per_mwh and period_hours")
            value = Price(value["values_per_mwh"], value["period_hours"])
        elif hints[name] is Party:
            value = Party.parse(value)
        values[name] = value
    try:
        return cls(Envelope(**env), **values)
    except TypeError as err:
        raise TsodsoError(f"{cls.KIND} message in JSON: {err}") from None


def size_bytes(msg: Message) -> int:
    """Size of the payload: bytes of its compact JSON (UTF-8)."""
    return len(json.dumps(payload_json(msg), separators=(",", ":"),
                          allow_nan=False).encode())


__all__ = [
    "ENVELOPE_FIELDS", "GRID_STATES", "MESSAGE_CLASSES", "MESSAGE_TYPES", "ROLES",
    "Acknowledgement", "Activation", "AvailabilitySchedule", "CurtailmentRequest",
    "DerSchedule", "Envelope", "FaultNotice", "GridState", "InterfacePrice",
    "InterfaceSchedule", "Message", "Offer", "Party", "Price", "PrequalificationLimits", "Role",
    "ScheduleChangeNotice", "SettlementStatement",
    "from_json", "message_type", "payload_json", "size_bytes", "to_json",
]
