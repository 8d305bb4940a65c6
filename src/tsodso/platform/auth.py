"""Who is calling: passwords (Argon2), signed expiring tokens (JWT, HS256), API keys and the
scopes each role may hold.

People log in with the OAuth2 password flow (``POST /token``) and get a bearer token
signed with the service's secret that expires (``TOKEN_MINUTES``); machine clients send an
API key in the ``X-API-Key`` header (only its SHA-256 is stored). Either way the caller is
a :class:`Caller`: an organisation, its role and the scopes granted, which are always
within :data:`ROLE_SCOPES` of the role.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["ALL_SCOPES", "ROLE_SCOPES", "TOKEN_MINUTES", "AuthError", "Caller", "hash_key",
           "hash_password", "issue_token", "new_api_key", "read_token", "verify_password"]

TOKEN_MINUTES = 60
_ALGORITHM = "HS256"
_READ = ("sessions:read", "offers:read", "orderbook:read", "prices:read", "awards:read",
         "schedules:read", "activations:read", "emergencies:read", "statements:read",
         "messages:read")
#: scopes each role may hold
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "aggregator": (*_READ, "offers:write", "activations:ack"),
    "dso": (*_READ, "activations:write", "emergencies:ack"),
    "tso": (*_READ, "activations:write", "emergencies:write"),
    "market_operator": (*_READ, "sessions:write", "organisations:write", "audit:read"),
    "auditor": (*_READ, "audit:read"),
}
ALL_SCOPES = tuple(sorted({s for scopes in ROLE_SCOPES.values() for s in scopes}))
# Argon2id with the library's defaults (RFC 9106 low-memory profile)
_hasher = PasswordHasher()


class AuthError(Exception):
    """Credentials that do not identify a caller (401)."""


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    Attributes
    ----------
    organisation_id : int
        Its organisation.
    organisation : str
        The organisation's name.
    role : str
        The organisation's role (:data:`~tsodso.platform.db.ROLES`).
    party : str
        The organisation's party in the scenario's messages (``aggregator:<id>``, ...).
    area : tuple of str
        A DSO's feeders ('' for other roles).
    scopes : frozenset of str
        What it may do.
    actor : str
        ``user:<name>`` or ``key:<prefix>``, for the audit log.
    """

    organisation_id: int
    organisation: str
    role: str
    party: str
    area: tuple[str, ...]
    scopes: frozenset[str]
    actor: str

    @property
    def aggregator_id(self) -> str:
        """The aggregator's id in the scenario ('' for other roles)."""
        prefix = "aggregator:"
        return self.party[len(prefix):] if self.party.startswith(prefix) else ""

    @property
    def sees_all(self) -> bool:
        """Whether the caller reads every party's objects (market operator, auditor)."""
        return self.role in ("market_operator", "auditor")


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (constant time in the library)."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(secret: str, user_id: int, scopes: list[str], minutes: float = TOKEN_MINUTES,
                now: datetime | None = None) -> str:
    """A bearer token for ``user_id`` with ``scopes``, expiring after ``minutes``."""
    now = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "scope": " ".join(scopes), "iat": now,
              "exp": now + timedelta(minutes=minutes), "typ": "access"}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(secret: str, token: str) -> dict[str, Any]:
    """The claims of a valid token; :class:`AuthError` saying why one is not (expired,
    bad signature, malformed)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM],
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired: log in again") from None
    except jwt.InvalidSignatureError:
        raise AuthError("the token's signature is not valid") from None
    except jwt.PyJWTError as err:
        raise AuthError(f"the token is not valid ({err})") from None
    if claims.get("typ") != "access":
        raise AuthError("the token is not an access token")
    return claims


def new_api_key() -> tuple[str, str, str]:
    """A new API key: ``(key, prefix, sha256)``; only the prefix and hash are stored, the
    key is shown once."""
    prefix = secrets.token_hex(4)
    key = f"tsk_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_key(key)


def hash_key(key: str) -> str:
    """The SHA-256 (hex) of an API key (keys are random, 256 bits: no slow hash needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The prefix of a key as :func:`new_api_key` makes them ('' if it is not one)."""
    parts = key.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] == "tsk" else ""
