"""A durable, append-only log of every message sent (SQLAlchemy Core).

The log is one table, ``messages``, in SQLite (a file, or memory) or any database SQLAlchemy
reaches (PostgreSQL, ...). Each :meth:`MessageLog.append` writes a batch in one transaction
and returns only after the commit, so a message that was delivered is in the log. A SQLite
file uses write-ahead logging with ``synchronous=NORMAL``: a committed batch survives a
crash or kill of the process (not necessarily a power cut of the machine), and a batch that
was being written when the process died is absent as a whole. Triggers make SQLite refuse
any UPDATE or DELETE of a logged message.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from tsodso.actors.messages import (
    ENVELOPE_FIELDS,
    Message,
    Party,
    from_json,
    message_type,
    payload_json,
)
from tsodso.errors import TsodsoError

LOG_FILE_NAME = "log.sqlite"
"""Name of the message log in a run folder."""

APPEND_ONLY = "the message log is append-only"

_metadata = sa.MetaData()
MESSAGES = sa.Table(
    "messages", _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.Text, nullable=False, unique=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("scheme", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("conversation", sa.Text, nullable=False),
    sa.Column("reply_to", sa.Text, nullable=True),
    sa.Column("sim_time", sa.Text, nullable=False),
    sa.Column("iteration", sa.Integer, nullable=False),
    sa.Column("first_period", sa.Integer, nullable=False),
    sa.Column("n_periods", sa.Integer, nullable=False),
    sa.Column("period_hours", sa.Double, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("logged_at", sa.Text, nullable=False),
    sa.Index("ix_messages_scheme_kind", "scheme", "kind"),
    sqlite_autoincrement=True,
)
COLUMNS: tuple[str, ...] = tuple(c.name for c in MESSAGES.columns)
FRAME_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "payload")
_INT_COLUMNS = ("seq", "iteration", "first_period", "n_periods", "bytes")

_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS messages_no_update BEFORE UPDATE ON messages "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
    "CREATE TRIGGER IF NOT EXISTS messages_no_delete BEFORE DELETE ON messages "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END",
)


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for memory or another database."""
    if not url.drivername.startswith("sqlite"):
        return None
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(db).absolute()


def _check_columns(where: str, columns: Sequence[str]) -> None:
    if set(columns) != set(COLUMNS):
        raise TsodsoError(f"{where} is not a tsodso message log: its table 'messages' has "
                          f"columns {', '.join(columns)}")


def _check_sqlite_file(path: Path, create: bool) -> None:
    """Refuse a file that is not a tsodso log before anything writes to it."""
    if not path.exists():
        if not create:
            raise TsodsoError(f"no message log at {path}")
        if not path.parent.is_dir():
            raise TsodsoError(f"cannot create the message log {path}: no folder {path.parent}")
        return
    if not path.is_file():
        raise TsodsoError(f"{path} is not a message log file")
    if path.stat().st_size == 0:
        if not create:
            raise TsodsoError(f"{path} is not a tsodso message log: the file is empty")
        return
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            columns = [r[1] for r in con.execute("PRAGMA table_info(messages)")]
        finally:
            con.close()
    except sqlite3.Error as err:
        raise TsodsoError(f"{path} is not a tsodso message log: {err}") from None
    if "messages" in tables:
        _check_columns(str(path), columns)
    elif not create or [t for t in tables if not t.startswith("sqlite_")]:
        raise TsodsoError(f"{path} is not a tsodso message log: it has no table 'messages'"
                          + (f" (tables: {', '.join(tables)})" if tables else ""))


class MessageLog:
    """Durable, append-only log of messages.

    Parameters
    ----------
    url : str, os.PathLike or None
        None: an in-memory SQLite database (gone when closed). A path (``str`` without
        ``://`` or ``os.PathLike``): a SQLite file, created if missing. A string with
        ``://``: any SQLAlchemy database URL, e.g. ``postgresql+psycopg://host/db``.
    run_id : str
        Prefix of the message ids this log assigns: ``f"{run_id}-{seq:07d}"``.
    create : bool
        Create the log if it does not exist (default); False refuses a missing log.

    Raises
    ------
    TsodsoError
        If the file or database holds something other than a tsodso message log (nothing
        is then written to it), or cannot be opened.

    Notes
    -----
    ``seq`` numbers messages 1, 2, ... in the order they were logged and continues from the
    largest ``seq`` when a log is reopened, so the same messages logged in the same order
    get the same ids. Append-only is enforced by triggers in SQLite; on other databases,
    restrict the privileges of the log's user to SELECT and INSERT.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, run_id: str = "run", *,
                 create: bool = True) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise TsodsoError(f"run_id must be a non-empty string, got {run_id!r}")
        self.run_id = run_id
        self._lock = threading.RLock()
        self._closed = False
        if url is None:
            self.url = sa.make_url("sqlite://")
        elif isinstance(url, str) and "://" in url:
            try:
                self.url = sa.make_url(url)
            except SQLAlchemyError as err:
                raise TsodsoError(f"cannot read database URL {url!r}: {err}") from None
        elif isinstance(url, str | os.PathLike):
            self.url = URL.create("sqlite", database=os.fspath(Path(url).absolute()))
        else:
            raise TsodsoError(f"a message log is a path, a database URL or None, got {url!r}")
        self.path = _sqlite_file(self.url)
        self._sqlite = self.url.drivername.startswith("sqlite")
        if self.path is not None:
            _check_sqlite_file(self.path, create)
        self._engine = self._make_engine()
        try:
            self._prepare(create)
            with self._engine.connect() as conn:
                self._seq = int(conn.execute(sa.select(sa.func.max(MESSAGES.c.seq))).scalar()
                                or 0)
        except BaseException:
            self._engine.dispose()
            raise

    # opening ------------------------------------------------------------------------------
    def _make_engine(self) -> Engine:
        try:
            if self._sqlite and self.path is None:  # memory: one connection shared by threads
                engine = sa.create_engine(self.url, poolclass=StaticPool,
                                          connect_args={"check_same_thread": False})
            else:
                engine = sa.create_engine(self.url)
        except (SQLAlchemyError, ImportError) as err:
            raise TsodsoError(f"cannot open the message log {self._where}: {err}") from None
        if self._sqlite:
            in_file = self.path is not None

            @event.listens_for(engine, "connect")
            def _connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN (see _begin)
                if in_file:
                    cursor = dbapi_conn.cursor()
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
                    cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: sa.Connection) -> None:
                # a writer takes the write lock at once: no lock upgrade that can fail
                write = conn.get_execution_options().get("tsodso_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @property
    def _where(self) -> str:
        return str(self.path) if self.path is not None else self.url.render_as_string()

    def _prepare(self, create: bool) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execution_options(tsodso_write=True)
                with conn.begin():
                    inspector = sa.inspect(conn)
                    if inspector.has_table("messages"):
                        _check_columns(self._where,
                                       [c["name"] for c in inspector.get_columns("messages")])
                    elif not create:
                        raise TsodsoError(f"{self._where} is not a tsodso message log: it has "
                                          "no table 'messages'")
                    if create:
                        _metadata.create_all(conn)
                        if self._sqlite:
                            for ddl in _TRIGGERS:
                                conn.exec_driver_sql(ddl)
        except SQLAlchemyError as err:
            raise TsodsoError(f"cannot open the message log {self._where}: "
                              f"{getattr(err, 'orig', None) or err}") from None

    # writing ------------------------------------------------------------------------------
    def append(self, messages: Sequence[Message], scheme: str) -> list[Message]:
        """Log a batch of messages in one transaction.

        Parameters
        ----------
        messages : sequence of Message
            Messages not logged yet (``envelope.id == ""``).
        scheme : str
            Name of the coordination scheme that sends them.

        Returns
        -------
        list of Message
            The messages with their envelopes filled: ``id`` assigned, and ``conversation``
            set to the id for a message that starts a conversation (``conversation == ""``).
            Returned only after the batch is committed; if anything fails, none of the
            batch is logged.
        """
        batch = list(messages)
        if not isinstance(scheme, str):
            raise TsodsoError(f"scheme must be a string, got {scheme!r}")
        for msg in batch:
            if not isinstance(msg, Message) or not msg.KIND:
                raise TsodsoError(f"only messages can be logged, got {type(msg).__name__}")
            if msg.envelope.id:
                raise TsodsoError(f"{msg.KIND} message {msg.envelope.id!r} is already logged")
        if not batch:
            return []
        with self._lock:
            self._check_open()
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(tsodso_write=True)
                    with conn.begin():
                        top = conn.execute(sa.select(sa.func.max(MESSAGES.c.seq))).scalar()
                        first = max(self._seq, int(top or 0)) + 1
                        out, rows = self._rows(batch, scheme, first)
                        conn.execute(sa.insert(MESSAGES), rows)
            except SQLAlchemyError as err:
                raise TsodsoError(f"{self._where}: the batch of {len(batch)} message(s) was "
                                  f"not logged: {getattr(err, 'orig', None) or err}") from None
            self._seq = first + len(batch) - 1
        return out

    def _rows(self, batch: list[Message], scheme: str,
              first: int) -> tuple[list[Message], list[dict[str, Any]]]:
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        out, rows = [], []
        for seq, msg in enumerate(batch, first):
            mid = f"{self.run_id}-{seq:07d}"
            env = replace(msg.envelope, id=mid, conversation=msg.envelope.conversation or mid)
            logged = replace(msg, envelope=env)
            payload = json.dumps(payload_json(logged), separators=(",", ":"), allow_nan=False)
            rows.append({
                "seq": seq, "id": mid, "run_id": self.run_id, "scheme": scheme,
                "kind": msg.KIND, "sender": str(env.sender), "recipient": str(env.recipient),
                "conversation": env.conversation, "reply_to": env.reply_to,
                "sim_time": env.sim_time, "iteration": env.iteration,
                "first_period": env.first_period, "n_periods": env.n_periods,
                "period_hours": env.period_hours, "bytes": len(payload.encode()),
                "payload": payload, "logged_at": now,
            })
            out.append(logged)
        return out, rows

    # reading ------------------------------------------------------------------------------
    def _select(self, columns: Sequence[str], kind: str | type[Message] | None,
                sender: Party | str | None, recipient: Party | str | None,
                scheme: str | None) -> list[sa.Row[Any]]:
        query = sa.select(*[MESSAGES.c[c] for c in columns]).order_by(MESSAGES.c.seq)
        if kind is not None:
            query = query.where(MESSAGES.c.kind == message_type(kind).KIND)
        for column, party in (("sender", sender), ("recipient", recipient)):
            if party is not None:
                text = str(party if isinstance(party, Party) else Party.parse(party))
                query = query.where(MESSAGES.c[column] == text)
        if scheme is not None:
            query = query.where(MESSAGES.c.scheme == scheme)
        return self._read(query)

    def _read(self, query: sa.Executable) -> list[sa.Row[Any]]:
        with self._lock:
            self._check_open()
            try:
                with self._engine.connect() as conn:
                    return list(conn.execute(query).all())
            except SQLAlchemyError as err:
                raise TsodsoError(f"cannot read the message log {self._where}: "
                                  f"{getattr(err, 'orig', None) or err}") from None

    def frame(self, kind: str | type[Message] | None = None,
              sender: Party | str | None = None, recipient: Party | str | None = None,
              scheme: str | None = None) -> pd.DataFrame:
        """The logged messages' metadata (every column but the payload), in log order.

        Parameters
        ----------
        kind : str or message class, optional
            Only messages of this kind (``"offer"`` or ``Offer``).
        sender, recipient : Party or str, optional
            Only messages from / to this party (``Party`` or ``"dso:NAME"``).
        scheme : str, optional
            Only messages of this scheme.

        Returns
        -------
        pandas.DataFrame
            Columns ``seq, id, run_id, scheme, kind, sender, recipient, conversation,
            reply_to, sim_time, iteration, first_period, n_periods, period_hours, bytes,
            logged_at``; ``bytes`` is the size of the payload's compact JSON.
        """
        rows = self._select(FRAME_COLUMNS, kind, sender, recipient, scheme)
        frame = pd.DataFrame([tuple(r) for r in rows], columns=list(FRAME_COLUMNS))
        return frame.astype({c: "int64" for c in _INT_COLUMNS} | {"period_hours": "float64"})

    def messages(self, kind: str | type[Message] | None = None,
                 sender: Party | str | None = None, recipient: Party | str | None = None,
                 scheme: str | None = None) -> list[Message]:
        """The logged messages (filtered as in :meth:`frame`), decoded, in log order."""
        columns = ("kind", *ENVELOPE_FIELDS, "payload")
        out = []
        for row in self._select(columns, kind, sender, recipient, scheme):
            data = dict(zip(columns, row, strict=True))
            data["payload"] = json.loads(data["payload"])
            out.append(from_json(data))
        return out

    def summary(self, scheme: str | None = None) -> pd.DataFrame:
        """Count and bytes (payload JSON) by message kind, indexed by kind."""
        query = (sa.select(MESSAGES.c.kind, sa.func.count().label("count"),
                           sa.func.sum(MESSAGES.c.bytes).label("bytes"))
                 .group_by(MESSAGES.c.kind).order_by(MESSAGES.c.kind))
        if scheme is not None:
            query = query.where(MESSAGES.c.scheme == scheme)
        frame = pd.DataFrame([tuple(r) for r in self._read(query)],
                             columns=["kind", "count", "bytes"])
        return frame.astype({"count": "int64", "bytes": "int64"}).set_index("kind")

    def per_iteration(self, scheme: str | None = None) -> pd.DataFrame:
        """Count and bytes (payload JSON) of the messages of each iteration.

        Returns
        -------
        pandas.DataFrame
            Columns ``iteration, count, bytes``, one row per iteration with messages.
        """
        query = (sa.select(MESSAGES.c.iteration, sa.func.count().label("count"),
                           sa.func.sum(MESSAGES.c.bytes).label("bytes"))
                 .group_by(MESSAGES.c.iteration).order_by(MESSAGES.c.iteration))
        if scheme is not None:
            query = query.where(MESSAGES.c.scheme == scheme)
        frame = pd.DataFrame([tuple(r) for r in self._read(query)],
                             columns=["iteration", "count", "bytes"])
        return frame.astype("int64")

    def count(self) -> int:
        """Number of messages in the log (every run and scheme)."""
        return int(self._read(sa.select(sa.func.count()).select_from(MESSAGES))[0][0])

    @property
    def last_seq(self) -> int:
        """The largest ``seq`` this log assigned or found (0 for an empty log)."""
        return self._seq

    def integrity_ok(self) -> bool:
        """Whether SQLite's ``PRAGMA integrity_check`` finds the database intact (always
        True on other databases)."""
        if not self._sqlite:
            return True
        rows = self._read(sa.text("PRAGMA integrity_check"))
        return [tuple(r) for r in rows] == [("ok",)]

    # closing ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise TsodsoError(f"the message log {self._where} is closed")

    def close(self) -> None:
        """Release the database connections; the log cannot be used afterwards."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._engine.dispose()

    def __enter__(self) -> MessageLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MessageLog({self._where!r}, run_id={self.run_id!r})"


__all__ = ["APPEND_ONLY", "COLUMNS", "LOG_FILE_NAME", "MESSAGES", "MessageLog"]
