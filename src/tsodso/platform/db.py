"""The operator platform's database: tables (SQLAlchemy 2 ORM) and the engine.

The schema is created and upgraded by Alembic (:func:`upgrade`, the migrations in
``tsodso/platform/migrations``), never by ``create_all`` in production: ``tsodso serve``
upgrades the database to the latest revision before it starts. SQLite in a file is the
default; any SQLAlchemy URL (``postgresql+psycopg://...``) works.

Units in the tables are those of the rest of tsodso: MW, $/MWh, $; times are UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["ROLES", "SESSION_STATES", "Activation", "ApiKey", "AuditRecord", "Award", "Base",
           "EmergencyRequest", "MarketSession", "Message", "Offer", "Organisation", "Price",
           "Schedule", "Statement", "User", "make_engine", "make_sessionmaker", "upgrade",
           "utcnow"]

#: organisation roles
ROLES = ("tso", "dso", "aggregator", "market_operator", "auditor")
#: a market session's states, in order
SESSION_STATES = ("open", "clearing", "cleared", "failed")


def utcnow() -> datetime:
    """The current time, UTC, without microseconds below the millisecond."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class UTCDateTime(sa.types.TypeDecorator):
    """A time stored as UTC and always read back with its time zone (SQLite keeps none)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a time without a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the platform's tables."""

    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON,
                           datetime: UTCDateTime}


class Organisation(Base):
    """A party: the TSO, a DSO (with its area: feeders), an aggregator, the market
    operator or an auditor. ``party`` is its name in the scenario's messages
    (``tso``, ``dso:<name>``, ``aggregator:<id>``, ``market_operator:market``)."""

    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    party: Mapped[str] = mapped_column(sa.String(120), default="")
    area: Mapped[list[Any]] = mapped_column(default=list)  # feeder ids (DSO)


class User(Base):
    """A person who logs in (OAuth2 password flow); the password is an Argon2 hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    active: Mapped[bool] = mapped_column(default=True)


class ApiKey(Base):
    """A machine client's key: only its SHA-256 is stored; ``prefix`` (the key's first
    characters) finds it; ``scopes`` are within its organisation's role."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    revoked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MarketSession(Base):
    """A market session: a scenario, a scheme and its gate (UTC). Offers are taken while
    ``gate_open <= now < gate_close``; at gate closure the session clears."""

    __tablename__ = "market_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    scenario: Mapped[str] = mapped_column(sa.String(500))
    scheme: Mapped[str] = mapped_column(sa.String(40))
    gate_open: Mapped[datetime] = mapped_column(UTCDateTime())
    gate_close: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(sa.String(20), default="open")
    n_periods: Mapped[int] = mapped_column(default=0)
    period_hours: Mapped[float] = mapped_column(default=1.0)
    created_by: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                         nullable=True)
    status: Mapped[str] = mapped_column(sa.String(40), default="")
    error: Mapped[str] = mapped_column(sa.Text, default="")
    total_cost: Mapped[float | None] = mapped_column(nullable=True)
    folder: Mapped[str] = mapped_column(sa.String(1000), default="")


class Offer(Base):
    """An aggregator's offer (see :mod:`tsodso.platform.offers`). ``offer_id`` is unique
    among its organisation's offers in the session; ``revision`` counts revisions."""

    __tablename__ = "offers"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "organisation_id", "offer_id", name="uq_offer_id"),
        # one active offer per DER: the database holds it even for simultaneous requests
        sa.Index("uq_offer_active_der", "session_id", "organisation_id", "der_id",
                 unique=True, sqlite_where=sa.text("status = 'active'"),
                 postgresql_where=sa.text("status = 'active'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"),
                                                 index=True)
    offer_id: Mapped[str] = mapped_column(sa.String(100))
    der_id: Mapped[str] = mapped_column(sa.String(100))
    feeder_id: Mapped[str] = mapped_column(sa.String(100), index=True)
    bus_id: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(30))
    direction: Mapped[str] = mapped_column(sa.String(10))
    steps: Mapped[list[Any]] = mapped_column()
    max_mw: Mapped[list[Any] | None] = mapped_column(sa.JSON, nullable=True)
    offered_mw: Mapped[float] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(20), default="active")  # or withdrawn
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Award(Base):
    """An offer's award in one period: MW and the price its energy is settled at."""

    __tablename__ = "awards"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    offer_pk: Mapped[int] = mapped_column(sa.ForeignKey("offers.id"))
    offer_id: Mapped[str] = mapped_column(sa.String(100))
    der_id: Mapped[str] = mapped_column(sa.String(100))
    feeder_id: Mapped[str] = mapped_column(sa.String(100))
    bus_id: Mapped[int] = mapped_column()
    period: Mapped[int] = mapped_column()
    awarded_mw: Mapped[float] = mapped_column()
    price_per_mwh: Mapped[float | None] = mapped_column(nullable=True)
    settlement: Mapped[str] = mapped_column(sa.String(20))


class Schedule(Base):
    """A DER's final schedule in one period (MW, MVAr; injection positive)."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"),
                                                        nullable=True)
    der_id: Mapped[str] = mapped_column(sa.String(100))
    aggregator_id: Mapped[str] = mapped_column(sa.String(100))
    feeder_id: Mapped[str] = mapped_column(sa.String(100), index=True)
    bus_id: Mapped[int] = mapped_column()
    period: Mapped[int] = mapped_column()
    p_mw: Mapped[float] = mapped_column()
    q_mvar: Mapped[float] = mapped_column()


class Price(Base):
    """A public price: LMP ($/MWh) at a transmission bus, DLMP P ($/MWh) or Q ($/MVArh) at
    a feeder bus, in one period."""

    __tablename__ = "prices"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    feeder_id: Mapped[str] = mapped_column(sa.String(100))
    bus_id: Mapped[int] = mapped_column()
    period: Mapped[int] = mapped_column()
    price: Mapped[float] = mapped_column()


class Statement(Base):
    """One line of a party's settlement statement ($, positive = received)."""

    __tablename__ = "statements"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    party: Mapped[str] = mapped_column(sa.String(120))
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"),
                                                        nullable=True)
    line: Mapped[str] = mapped_column(sa.String(200))
    amount: Mapped[float] = mapped_column()


class Message(Base):
    """A message of the session's clearing (from its message log) or of the platform
    (activations, acknowledgements, emergency requests)."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    seq: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(sa.String(40))
    sender: Mapped[str] = mapped_column(sa.String(120))
    recipient: Mapped[str] = mapped_column(sa.String(120))
    sender_org: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"),
                                                   nullable=True)
    recipient_org: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"),
                                                      nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Activation(Base):
    """An operator's call on an awarded DER (MW more in one period), and the
    aggregator's acknowledgement (``accepted`` or ``refused`` with a reason)."""

    __tablename__ = "activations"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    issuer_org: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    target_org: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    der_id: Mapped[str] = mapped_column(sa.String(100))
    feeder_id: Mapped[str] = mapped_column(sa.String(100))
    period: Mapped[int] = mapped_column()
    mw: Mapped[float] = mapped_column()
    state: Mapped[str] = mapped_column(sa.String(20), default="sent")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(),
                                                             nullable=True)


class EmergencyRequest(Base):
    """The TSO asks a DSO to change a feeder's import (MW, positive = less import) over
    some periods; the DSO's answer (deliverable MW, accepted or rejected) is kept."""

    __tablename__ = "emergency_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("market_sessions.id"), index=True)
    issuer_org: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    dso_org: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    feeder_id: Mapped[str] = mapped_column(sa.String(100))
    periods: Mapped[list[Any]] = mapped_column()
    reduction_mw: Mapped[float] = mapped_column()
    state: Mapped[str] = mapped_column(sa.String(20), default="sent")
    answer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditRecord(Base):
    """One state-changing request: who, when, what; ``hash`` chains it to the record
    before (see :mod:`tsodso.platform.audit`)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[str] = mapped_column(sa.String(40))
    organisation: Mapped[str] = mapped_column(sa.String(100))
    actor: Mapped[str] = mapped_column(sa.String(120))
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(500))
    status_code: Mapped[int] = mapped_column()
    body_sha256: Mapped[str] = mapped_column(sa.String(64))
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (a SQLAlchemy URL or a file path, taken as SQLite). SQLite
    runs with write-ahead logging and a 30 s busy timeout (many clients write at once);
    ``sqlite://`` (memory) is shared by every thread of the process."""
    if "://" not in url:
        url = f"sqlite:///{Path(url).resolve()}"
    kwargs: dict[str, Any] = {}
    memory = url in ("sqlite://", "sqlite:///:memory:")
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if memory:
            kwargs["poolclass"] = StaticPool
    if not memory:
        # more connections than the server's worker threads (40): a request never waits
        # for a connection that another request, waiting for a thread, holds
        kwargs["pool_size"], kwargs["max_overflow"] = 20, 60
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    """ORM sessions on ``engine`` (objects stay readable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` with the Alembic migrations shipped in
    ``tsodso/platform/migrations`` (creates the tables on an empty database)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
