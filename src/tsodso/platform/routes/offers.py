"""Offers: submit, list, read, revise and withdraw (before gate closure)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tsodso.platform import db
from tsodso.platform.access import NotFound, get_visible, require, select_visible, visible_ders
from tsodso.platform.offers import OFFERABLE_KINDS
from tsodso.platform.routes.deps import CallerDep, DbDep, PlatformDep, writing
from tsodso.platform.routes.sessions import session_of
from tsodso.platform.schemas import OfferIn, OfferRevisionIn
from tsodso.platform.store import revise_offer, submit_offer, withdraw_offer

router = APIRouter(tags=["offers"])


def offer_json(o: db.Offer) -> dict[str, Any]:
    """An offer as its owner (and those who may see it) read it."""
    return {"id": o.id, "session_id": o.session_id, "offer_id": o.offer_id,
            "der_id": o.der_id, "feeder_id": o.feeder_id, "bus_id": o.bus_id,
            "kind": o.kind, "direction": o.direction, "steps": o.steps, "max_mw": o.max_mw,
            "offered_mw": o.offered_mw, "status": o.status, "revision": o.revision,
            "created_at": o.created_at.isoformat(), "updated_at": o.updated_at.isoformat()}


@router.post("/api/sessions/{sid}/offers", status_code=201)
def post_offer(sid: int, body: OfferIn, caller: CallerDep, request: Request, platform: PlatformDep
               ) -> dict[str, Any]:
    """Submit an offer for one of your DERs while the gate is open."""
    require(caller, "offers:write")
    with writing(request, platform, caller, 201) as s:
        sess = session_of(s, caller, sid)
        system = platform.systems.get(sess.scenario)
        row = submit_offer(s, caller, sess, system, platform.now(), body.model_dump())
        return offer_json(row)


@router.get("/api/sessions/{sid}/offers")
def list_offers(sid: int, caller: CallerDep, s: DbDep, status: str | None = None
                ) -> list[dict[str, Any]]:
    """The session's offers the caller may see (its own; a DSO: those on its feeders)."""
    require(caller, "offers:read")
    session_of(s, caller, sid)
    where = [db.Offer.session_id == sid]
    if status is not None:
        where.append(db.Offer.status == status)
    rows = s.scalars(select_visible(caller, db.Offer, *where).order_by(db.Offer.id))
    return [offer_json(o) for o in rows]


@router.get("/api/sessions/{sid}/ders")
def list_ders(sid: int, caller: CallerDep, s: DbDep, platform: PlatformDep
              ) -> list[dict[str, Any]]:
    """The session scenario's DERs the caller may see (an aggregator: its portfolio; a
    DSO: those on its feeders): id, kind, location, rating (MW) and whether the energy
    product takes offers for it (``offerable``, else ``why_not``)."""
    require(caller, "offers:read")
    sess = session_of(s, caller, sid)
    system = platform.systems.get(sess.scenario)
    d = visible_ders(caller, system.ders, sess.scheme)
    out = []
    for r in d.itertuples(index=False):
        why = ("" if r.kind in OFFERABLE_KINDS else f"{r.kind}: scheduled by its state of "
               "charge, not by offers")
        if not why and "telemetry" in d.columns and not bool(r.telemetry):
            why = "no telemetry: no market can dispatch it"
        out.append({"der_id": r.der_id, "kind": r.kind, "aggregator_id": r.aggregator_id,
                    "feeder_id": r.feeder_id, "bus_id": int(r.bus_id),
                    "p_max_mw": float(r.p_max_mw), "offerable": not why, "why_not": why})
    return out


@router.get("/api/offers/{pk}")
def get_offer(pk: int, caller: CallerDep, s: DbDep) -> dict[str, Any]:
    """One offer (404 if it is not one the caller may see)."""
    require(caller, "offers:read")
    return offer_json(get_visible(s, caller, db.Offer, pk, "offer"))


def _own_offer(s: Any, caller: Any, pk: int) -> db.Offer:
    row = get_visible(s, caller, db.Offer, pk, "offer")
    if row.organisation_id != caller.organisation_id:  # only the owner changes an offer
        raise NotFound(f"offer {pk} not found")
    return row


@router.put("/api/offers/{pk}")
def put_offer(pk: int, body: OfferRevisionIn, caller: CallerDep, request: Request,
              platform: PlatformDep) -> dict[str, Any]:
    """Revise your offer (new steps and caps) before gate closure."""
    require(caller, "offers:write")
    with writing(request, platform, caller, 200) as s:
        row = _own_offer(s, caller, pk)
        sess = s.get(db.MarketSession, row.session_id)
        revise_offer(s, caller, row, sess, platform.systems.get(sess.scenario), platform.now(),
                     [x.model_dump() for x in body.steps], body.max_mw)
        return offer_json(row)


@router.delete("/api/offers/{pk}")
def delete_offer(pk: int, caller: CallerDep, request: Request, platform: PlatformDep
                 ) -> dict[str, Any]:
    """Withdraw your offer before gate closure (it stays listed as withdrawn)."""
    require(caller, "offers:write")
    with writing(request, platform, caller, 200) as s:
        row = _own_offer(s, caller, pk)
        withdraw_offer(row, s.get(db.MarketSession, row.session_id), platform.now())
        return offer_json(row)
