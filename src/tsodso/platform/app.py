"""The operator platform's HTTP service (FastAPI): :func:`create_app`.

One process serves the API (``/api/...``, OpenAPI schema at ``/docs``), the login
endpoint (``/token``, OAuth2 password flow) and the web page (``/``). It needs nothing but
its database (SQLite file by default) and a data folder for the sessions' run folders.

Errors are JSON ``{"detail": ...}``: 401 (no or bad credentials), 403 (a scope the caller
lacks), 404 (no such object, or not the caller's), 409 (the gate, a duplicate id), 422
(bad input, with the field named). Every request that changes state (POST, PUT, PATCH,
DELETE) is written to the tamper-evident audit log (:mod:`tsodso.platform.audit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from tsodso.platform import db
from tsodso.platform.access import Forbidden, NotFound
from tsodso.platform.audit import append_record, body_digest
from tsodso.platform.auth import AuthError
from tsodso.platform.store import PlatformError, SystemCache

__all__ = ["Platform", "create_app"]

_CHANGES_STATE = ("POST", "PUT", "PATCH", "DELETE")
_log = logging.getLogger("tsodso.platform")


@dataclass
class Platform:
    """What the routes share: the database, the secret that signs tokens, the data
    folder, the clock (UTC; tests move it), loaded scenarios and the clearing worker."""

    maker: sessionmaker
    secret: str
    data_dir: Path
    clock: Callable[[], datetime]
    systems: SystemCache = field(default_factory=SystemCache)
    clearer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tsodso-clear"))
    clearing: dict[int, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        """The platform's current time (UTC)."""
        return self.clock()

    def start_clearing(self, session_id: int) -> Any:
        """Clear a session on the clearing worker (once); returns its future."""
        from tsodso.platform.store import clear

        with self.lock:
            fut = self.clearing.get(session_id)
            if fut is None:
                fut = self.clearer.submit(clear, self.maker, session_id, self.systems,
                                          self.data_dir, self.now())
                self.clearing[session_id] = fut
            return fut

    def resume_interrupted(self) -> list[int]:
        """Sessions left ``clearing`` by a stopped service go back to ``open`` (their
        results are stored in one transaction: none were), so they clear again."""
        with self.maker.begin() as s:
            ids = list(s.scalars(sa.select(db.MarketSession.id).where(
                db.MarketSession.state == "clearing")))
            if ids:
                s.execute(sa.update(db.MarketSession).where(db.MarketSession.id.in_(ids))
                          .values(state="open"))
        return ids

    def due_sessions(self) -> list[int]:
        """Open sessions whose gate has closed."""
        with self.maker() as s:
            return list(s.scalars(sa.select(db.MarketSession.id).where(
                db.MarketSession.state == "open",
                db.MarketSession.gate_close <= self.now())))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(db_url: str = "platform.sqlite", secret: str | None = None,
               data_dir: str | Path | None = None,
               clock: Callable[[], datetime] | None = None, gate_poll_s: float = 1.0,
               migrate: bool = True) -> FastAPI:
    """The service.

    Parameters
    ----------
    db_url : str
        A SQLAlchemy URL or a SQLite file path (created).
    secret : str, optional
        The key that signs tokens (at least 32 characters); default: a random one (tokens
        then end with the process).
    data_dir : path, optional
        Where the sessions' run folders go; default: beside a SQLite file, else
        ``./tsodso-platform``.
    clock : callable, optional
        The current time (UTC); tests pass their own.
    gate_poll_s : float
        How often the service looks for sessions whose gate has closed (s); 0: never
        (sessions then clear when the market operator closes them).
    migrate : bool
        Upgrade the database to the latest schema first (Alembic).
    """
    from tsodso.platform.routes import register

    engine = db.make_engine(db_url)
    if migrate:
        db.upgrade(engine)
    if secret is not None and len(secret) < 32:
        raise ValueError("the token secret must have at least 32 characters")
    if data_dir is None:
        base = Path(db_url).resolve().parent if "://" not in db_url else Path.cwd()
        data_dir = base / "tsodso-platform"
    platform = Platform(maker=db.make_sessionmaker(engine),
                        secret=secret or secrets.token_urlsafe(48),
                        data_dir=Path(data_dir), clock=clock or _utcnow)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(platform.resume_interrupted)
        task = asyncio.create_task(_watch_gates(platform, gate_poll_s)) if gate_poll_s > 0 \
            else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            platform.clearer.shutdown(wait=True, cancel_futures=False)
            engine.dispose()

    app = FastAPI(title="tsodso operator platform", lifespan=lifespan,
                  description="Market sessions where the TSO, DSOs and aggregators each see "
                              "only what is theirs. Units: MW, $/MWh, $; times UTC.")
    app.state.platform = platform
    _error_handlers(app)
    _audit_middleware(app, platform)
    register(app)
    return app


async def _watch_gates(platform: Platform, every_s: float) -> None:
    """Clear each session once its gate closes."""
    while True:
        await asyncio.sleep(every_s)
        try:
            due = await asyncio.to_thread(platform.due_sessions)
        except Exception:  # noqa: BLE001 - a database hiccup must not stop the watcher
            _log.exception("looking for sessions whose gate has closed failed; retrying")
            continue
        for sid in due:
            platform.start_clearing(sid)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PlatformError)
    async def _platform(_: Request, err: PlatformError) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's items (loc, msg, type) with the platform's keys as well: one format
        items = []
        for e in err.errors():
            loc = [str(x) for x in e.get("loc", ())]
            field_name = ".".join(loc[1:]) if loc[:1] == ["body"] else ".".join(loc)
            items.append({"loc": loc, "msg": e.get("msg", ""), "type": e.get("type", ""),
                          "component": loc[0] if loc else "request", "field": field_name,
                          "id": "", "message": e.get("msg", "")})
        return JSONResponse({"detail": items}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, err: IntegrityError) -> JSONResponse:
        return JSONResponse({"detail": "the request conflicts with a stored object (an offer "
                             "id taken, or a DER with an active offer): nothing was "
                             "stored"}, status_code=409)

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, err: Forbidden) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=403)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, err: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, err: AuthError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})


def _audit_middleware(app: FastAPI, platform: Platform) -> None:
    """Record the state-changing requests that no route recorded: a route that changes
    state records itself in its own transaction (:func:`~tsodso.platform.routes.deps.
    writing`); logins, gate closures and requests refused before a route ran (no
    credentials, malformed input, an unknown path, a crash) are recorded here."""

    @app.middleware("http")
    async def audit(request: Request, call_next: Callable) -> Any:
        if request.method not in _CHANGES_STATE:
            return await call_next(request)
        body = await request.body()
        # a login's body holds a password: its hash is not kept
        request.state.body_sha256 = body_digest(b"" if request.url.path == "/token"
                                                else body)
        try:
            response = await call_next(request)
        except Exception:
            await _record(request, platform, 500)
            raise  # the server logs it and answers 500
        await _record(request, platform, response.status_code)
        return response


async def _record(request: Request, platform: Platform, status: int) -> None:
    """Record a state-changing request that no route recorded."""
    if getattr(request.state, "audited", False):
        return
    caller = getattr(request.state, "caller", None)
    org = caller.organisation if caller else getattr(request.state, "organisation", "")
    actor = caller.actor if caller else getattr(request.state, "actor", "anonymous")
    await asyncio.to_thread(append_record, platform.maker, org, actor, request.method,
                            request.url.path, status, request.state.body_sha256)
