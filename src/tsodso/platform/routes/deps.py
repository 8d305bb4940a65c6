"""What every route needs: the platform, a database session and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tsodso.platform import db
from tsodso.platform.access import Forbidden, NotFound
from tsodso.platform.app import Platform
from tsodso.platform.audit import WRITE_LOCK, add_record
from tsodso.platform.auth import (
    ROLE_SCOPES,
    AuthError,
    Caller,
    hash_key,
    key_prefix,
    read_token,
)
from tsodso.platform.store import PlatformError

__all__ = ["CallerDep", "DbDep", "PlatformDep", "caller_of", "oauth2", "writing"]

oauth2 = OAuth2PasswordBearer(tokenUrl="/token", auto_error=False,
                              scopes={s: s for r in ROLE_SCOPES.values() for s in r})


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(platform_of)]


def database(platform: PlatformDep) -> Iterator[Session]:
    """One ORM session per request, committed when the route returns normally."""
    with platform.maker() as s:
        yield s
        s.commit()


DbDep = Annotated[Session, Depends(database, scope="function")]


def _caller(s: Session, org: db.Organisation, scopes: set[str], actor: str) -> Caller:
    allowed = set(ROLE_SCOPES.get(org.role, ()))
    return Caller(organisation_id=org.id, organisation=org.name, role=org.role,
                  party=org.party, area=tuple(org.area or ()),
                  scopes=frozenset(scopes & allowed), actor=actor)


def caller_of(request: Request, platform: PlatformDep,
              token: Annotated[str | None, Depends(oauth2)] = None) -> Caller:
    """The caller from an ``X-API-Key`` header or a bearer token (401 without either, or
    with one that is not valid). Read in its own short session: no connection is held
    while the request waits for its route."""
    with platform.maker() as s:
        caller = _identify(request, platform, s, token)
    request.state.caller = caller
    return caller


def _identify(request: Request, platform: Platform, s: Session, token: str | None
              ) -> Caller:
    key = request.headers.get("x-api-key")
    if key:
        row = s.scalars(sa.select(db.ApiKey).where(db.ApiKey.prefix == key_prefix(key))
                        ).first()
        if row is None or row.revoked or row.key_hash != hash_key(key):
            raise AuthError("the API key is not valid")
        org = s.get(db.Organisation, row.organisation_id)
        caller = _caller(s, org, set(row.scopes), f"key:{row.prefix}")
    elif token:
        claims = read_token(platform.secret, token)
        user = s.get(db.User, int(claims["sub"])) if str(claims["sub"]).isdigit() else None
        if user is None or not user.active:
            raise AuthError("the token's user is not active")
        org = s.get(db.Organisation, user.organisation_id)
        caller = _caller(s, org, set(str(claims.get("scope", "")).split()),
                         f"user:{user.username}")
    else:
        raise AuthError("log in (POST /token) or send an X-API-Key header")
    return caller


CallerDep = Annotated[Caller, Depends(caller_of)]

#: the status a refused write is recorded with, by exception type
_STATUS = ((PlatformError, None), (Forbidden, 403), (NotFound, 404), (AuthError, 401),
           (IntegrityError, 409))


def _failure_status(err: BaseException) -> int:
    for kind, status in _STATUS:
        if isinstance(err, kind):
            return err.status if status is None else status  # type: ignore[union-attr]
    return 500


@contextmanager
def writing(request: Request, platform: Platform, caller: Caller, status: int = 200
            ) -> Iterator[Session]:
    """The one write transaction of a state-changing route, run in the route's own thread:
    the change and its audit record commit together, or neither does (a refused change is
    rolled back and recorded with its status in a transaction of its own). Holds
    :data:`~tsodso.platform.audit.WRITE_LOCK` from start to commit."""
    digest = getattr(request.state, "body_sha256", "")
    where = (request.method, request.url.path)
    with WRITE_LOCK:
        s = platform.maker()
        try:
            yield s
            s.flush()
            add_record(s, caller.organisation, caller.actor, *where, status, digest)
            s.commit()
        except BaseException as err:
            s.rollback()
            with platform.maker.begin() as fresh:
                add_record(fresh, caller.organisation, caller.actor, *where,
                           _failure_status(err), digest)
            raise
        finally:
            s.close()
            request.state.audited = True
