"""Market sessions: open one, list them, close the gate, and the public order book."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request

from tsodso.platform import db
from tsodso.platform.access import get_visible, require, select_visible
from tsodso.platform.routes.deps import CallerDep, DbDep, PlatformDep, writing
from tsodso.platform.schemas import SessionIn
from tsodso.platform.store import create_session

router = APIRouter(tags=["sessions"])

#: an order-book band is shown only when at least this many owners offer in it
MIN_OWNERS = 2


def session_json(sess: db.MarketSession) -> dict[str, Any]:
    """The public view of a session."""
    return {"id": sess.id, "name": sess.name, "scenario": sess.scenario,
            "scheme": sess.scheme, "gate_open": sess.gate_open.isoformat(),
            "gate_close": sess.gate_close.isoformat(), "state": sess.state,
            "n_periods": sess.n_periods, "period_hours": sess.period_hours,
            "status": sess.status, "error": sess.error, "total_cost": sess.total_cost,
            "cleared_at": sess.cleared_at.isoformat() if sess.cleared_at else None}


def session_of(s: Any, caller: Any, sid: int) -> db.MarketSession:
    """The session ``sid`` (404 if none)."""
    require(caller, "sessions:read")
    return get_visible(s, caller, db.MarketSession, sid, "session")


@router.post("/api/sessions", status_code=201)
def open_session(body: SessionIn, caller: CallerDep, request: Request, platform: PlatformDep
                 ) -> dict[str, Any]:
    """Open a market session (market operator): scenario, scheme and gate times."""
    require(caller, "sessions:write")
    with writing(request, platform, caller, 201) as s:
        sess = create_session(s, caller, platform.systems, body.name, body.scenario,
                              body.scheme, body.gate_open, body.gate_close)
        return session_json(sess)


@router.get("/api/sessions")
def list_sessions(caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """Every session (sessions are public)."""
    require(caller, "sessions:read")
    rows = s.scalars(select_visible(caller, db.MarketSession).order_by(db.MarketSession.id))
    return [session_json(r) for r in rows]


@router.get("/api/sessions/{sid}")
def get_session(sid: int, caller: CallerDep, s: DbDep, platform: PlatformDep
                ) -> dict[str, Any]:
    """One session, with its scenario's feeders (``feeder_ids``; public, as the prices
    on them are)."""
    sess = session_of(s, caller, sid)
    return {**session_json(sess), "feeder_ids": platform.systems.get(sess.scenario).feeder_ids}


@router.post("/api/sessions/{sid}/close")
def close_session(sid: int, caller: CallerDep, s: DbDep, platform: PlatformDep,
                  wait: bool = Query(False, description="answer when cleared")
                  ) -> dict[str, Any]:
    """Close the gate now and clear the session (market operator); with ``wait`` the
    answer comes when the session is cleared."""
    require(caller, "sessions:write")
    sess = session_of(s, caller, sid)
    if sess.state == "open":
        s.commit()
        future = platform.start_clearing(sid)
        if wait:
            future.result()
    s.expire_all()
    return session_json(session_of(s, caller, sid))


@router.get("/api/sessions/{sid}/orderbook")
def orderbook(sid: int, caller: CallerDep, s: DbDep,
              band: float = Query(10.0, gt=0, description="price band width, $/MWh")
              ) -> dict[str, Any]:
    """The public order book: the offered MW per price band ($/MWh), summed over every
    active offer's steps. It names no owner; a band with fewer than two owners is not
    shown on its own but added to ``withheld_mw`` (so no single offer can be read off)."""
    require(caller, "orderbook:read")
    session_of(s, caller, sid)
    rows = s.execute(sa.select(db.Offer.organisation_id, db.Offer.steps).where(
        db.Offer.session_id == sid, db.Offer.status == "active")).all()
    mw: dict[float, float] = defaultdict(float)
    owners: dict[float, set[int]] = defaultdict(set)
    offers: dict[float, int] = defaultdict(int)
    for org, steps in rows:
        for step in steps:
            low = math.floor(step["price_per_mwh"] / band) * band
            mw[low] += step["quantity_mw"]
            owners[low].add(org)
            offers[low] += 1
    shown, withheld = [], 0.0
    for low in sorted(mw):
        if len(owners[low]) >= MIN_OWNERS:
            shown.append({"price_from": low, "price_to": low + band,
                          "quantity_mw": round(mw[low], 6), "steps": offers[low]})
        else:
            withheld += mw[low]
    cumulative = 0.0
    for b in shown:
        cumulative += b["quantity_mw"]
        b["cumulative_mw"] = round(cumulative, 6)
    return {"session": sid, "band_per_mwh": band, "bands": shown,
            "withheld_mw": round(withheld, 6), "offers": len(rows),
            "min_owners_per_band": MIN_OWNERS}
