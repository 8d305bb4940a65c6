"""A tamper-evident audit log of every request that changes state.

Each record says who (organisation and actor), when (UTC), what (method, path, the
response's status code and the SHA-256 of the request body) and carries ``prev_hash``, the
hash of the record before, and its own ``hash`` = SHA-256 of the previous hash and the
record's canonical JSON. Changing, inserting or deleting a record breaks the chain at that
point, which :func:`verify_chain` finds.

A change and its record commit in one transaction (:func:`add_record` in the route's own
transaction; :func:`append_record` for requests refused before any change). Every write
transaction of the service holds :data:`WRITE_LOCK` from its start to its commit, within one
thread, so records get consecutive numbers (the service runs one process).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tsodso.platform.db import AuditRecord

__all__ = ["GENESIS", "WRITE_LOCK", "ChainCheck", "add_record", "append_record",
           "record_hash", "verify_chain"]

#: the ``prev_hash`` of the first record
GENESIS = "0" * 64
#: held by every write transaction of the service, from its start to its commit
WRITE_LOCK = threading.Lock()
_FIELDS = ("seq", "at", "organisation", "actor", "method", "path", "status_code",
           "body_sha256")


def record_hash(prev_hash: str, fields: dict[str, object]) -> str:
    """SHA-256 (hex) of ``prev_hash`` and the record's fields as canonical JSON."""
    body = json.dumps({k: fields[k] for k in _FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def add_record(s: Session, organisation: str, actor: str, method: str, path: str,
               status_code: int, body_sha256: str) -> AuditRecord:
    """Add one record to the transaction of ``s`` (the caller holds :data:`WRITE_LOCK` and
    commits)."""
    last = s.execute(sa.select(AuditRecord.seq, AuditRecord.hash)
                     .order_by(AuditRecord.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    fields: dict[str, object] = {
        "seq": seq, "at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "organisation": organisation, "actor": actor, "method": method, "path": path,
        "status_code": int(status_code), "body_sha256": body_sha256}
    rec = AuditRecord(**fields, prev_hash=prev, hash=record_hash(prev, fields))
    s.add(rec)
    return rec


def append_record(maker: sessionmaker, organisation: str, actor: str, method: str,
                  path: str, status_code: int, body_sha256: str) -> AuditRecord:
    """Append one record in its own transaction."""
    with WRITE_LOCK, maker.begin() as s:
        return add_record(s, organisation, actor, method, path, status_code, body_sha256)


def body_digest(body: bytes) -> str:
    """SHA-256 (hex) of a request body."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """The result of :func:`verify_chain`: ``ok``, the number of ``records`` read and the
    first broken record's ``seq`` with the reason (``None``/'' when intact)."""

    ok: bool
    records: int
    broken_at: int | None = None
    reason: str = ""


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every record's hash in order and check the links."""
    prev, n, expected_seq = GENESIS, 0, 1
    for rec in session.scalars(sa.select(AuditRecord).order_by(AuditRecord.seq)):
        n += 1
        if rec.seq != expected_seq:
            return ChainCheck(False, n, rec.seq, f"record {expected_seq} is missing")
        if rec.prev_hash != prev:
            return ChainCheck(False, n, rec.seq, "its prev_hash is not the hash of the "
                              "record before")
        fields = {k: getattr(rec, k) for k in _FIELDS}
        if record_hash(prev, fields) != rec.hash:
            return ChainCheck(False, n, rec.seq, "its content does not match its hash")
        prev, expected_seq = rec.hash, expected_seq + 1
    return ChainCheck(True, n)
