"""Operations on a cleared session: activations with acknowledgements, emergency
requests with the DSO's answer, and the audit log."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Request

from tsodso.errors import TsodsoError
from tsodso.platform import db
from tsodso.platform.access import get_visible, require, select_visible
from tsodso.platform.audit import verify_chain
from tsodso.platform.routes.deps import CallerDep, DbDep, PlatformDep, writing
from tsodso.platform.routes.results import _cleared
from tsodso.platform.routes.sessions import session_of
from tsodso.platform.schemas import AckIn, ActivationIn, EmergencyAnswerIn, EmergencyIn
from tsodso.platform.store import PlatformError, post_message
from tsodso.tso.offers import der_availability, feeder_load_by_bus

router = APIRouter(tags=["operations"])


def activation_json(a: db.Activation) -> dict[str, Any]:
    return {"id": a.id, "session_id": a.session_id, "der_id": a.der_id,
            "feeder_id": a.feeder_id, "period": a.period, "mw": a.mw, "state": a.state,
            "reason": a.reason, "created_at": a.created_at.isoformat(),
            "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None}


@router.post("/api/sessions/{sid}/activations", status_code=201)
def activate(sid: int, body: ActivationIn, caller: CallerDep, request: Request,
             platform: PlatformDep) -> dict[str, Any]:
    """Call an awarded DER (one the caller may see) for ``mw`` more than its award in one
    period; no more than its offer's headroom (offered MW available in that period less
    the award and earlier accepted or pending calls)."""
    require(caller, "activations:write")
    with writing(request, platform, caller, 201) as s:
        sess = _cleared(s, caller, sid)
        if body.period >= sess.n_periods:
            raise PlatformError(422, f"period {body.period}: the session has periods 0 to "
                                f"{sess.n_periods - 1}")
        award = s.scalars(select_visible(caller, db.Award, db.Award.session_id == sid,
                                         db.Award.der_id == body.der_id,
                                         db.Award.period == body.period)).first()
        if award is None:
            raise PlatformError(404, f"no award you may see for DER '{body.der_id}' in period "
                                f"{body.period} of session {sid}")
        offer = s.get(db.Offer, award.offer_pk)
        system = platform.systems.get(sess.scenario)
        i = int(np.flatnonzero(system.ders.der_id.to_numpy() == body.der_id)[0])
        cap = min(float(der_availability(system)[body.period, i]), offer.offered_mw,
                  float(offer.max_mw[body.period]) if offer.max_mw else np.inf)
        der = system.ders.iloc[i]
        if der.kind == "demand_response" and system.rules.dr_export_ban:
            # no more than the load at its site (as the market clears it: tso_view)
            site = feeder_load_by_bus(system).get((der.feeder_id, der.bus_id))
            cap = min(cap, 0.0 if site is None else float(site.iloc[body.period]))
        called = s.scalar(sa.select(sa.func.coalesce(sa.func.sum(db.Activation.mw), 0.0)).where(
            db.Activation.session_id == sid, db.Activation.der_id == body.der_id,
            db.Activation.period == body.period, db.Activation.state != "refused")) or 0.0
        headroom = cap - award.awarded_mw - float(called)
        if body.mw > headroom + 1e-9:
            raise PlatformError(409, f"DER '{body.der_id}' has {max(headroom, 0.0):.6g} MW of "
                                f"headroom in period {body.period} (offered {cap:.6g} MW, "
                                f"awarded {award.awarded_mw:.6g} MW, called {float(called):.6g} "
                                "MW)")
        act = db.Activation(session_id=sid, issuer_org=caller.organisation_id,
                            target_org=award.organisation_id, der_id=body.der_id,
                            feeder_id=award.feeder_id, period=body.period, mw=body.mw)
        s.add(act)
        s.flush()
        post_message(s, sid, "activation", s.get(db.Organisation, caller.organisation_id),
                     s.get(db.Organisation, award.organisation_id),
                     {"activation": act.id, "der_id": act.der_id, "period": act.period,
                      "mw": act.mw})
        return activation_json(act)


@router.get("/api/sessions/{sid}/activations")
def list_activations(sid: int, caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """The activations the caller may see (sent to it, sent by it, on its feeders)."""
    require(caller, "activations:read")
    session_of(s, caller, sid)
    rows = s.scalars(select_visible(caller, db.Activation, db.Activation.session_id == sid)
                     .order_by(db.Activation.id))
    return [activation_json(a) for a in rows]


@router.get("/api/activations/{pk}")
def get_activation(pk: int, caller: CallerDep, s: DbDep) -> dict[str, Any]:
    """One activation."""
    require(caller, "activations:read")
    return activation_json(get_visible(s, caller, db.Activation, pk, "activation"))


@router.post("/api/activations/{pk}/acknowledgement")
def acknowledge(pk: int, body: AckIn, caller: CallerDep,
                request: Request, platform: PlatformDep) -> dict[str, Any]:
    """The aggregator accepts or refuses (with its reason) an activation sent to it."""
    require(caller, "activations:ack")
    with writing(request, platform, caller, 200) as s:
        act = get_visible(s, caller, db.Activation, pk, "activation")
        if act.target_org != caller.organisation_id:
            raise PlatformError(404, f"activation {pk} not found")
        if act.state != "sent":
            raise PlatformError(409, f"activation {pk} was already {act.state}")
        if not body.accepted and not body.reason.strip():
            raise PlatformError(422, "reason: say why the activation is refused")
        act.state = "accepted" if body.accepted else "refused"
        act.reason = body.reason
        act.acknowledged_at = db.utcnow()
        post_message(s, act.session_id, "acknowledgement",
                     s.get(db.Organisation, caller.organisation_id),
                     s.get(db.Organisation, act.issuer_org),
                     {"activation": act.id, "accepted": body.accepted, "reason": body.reason})
        return activation_json(act)


def emergency_json(e: db.EmergencyRequest) -> dict[str, Any]:
    return {"id": e.id, "session_id": e.session_id, "feeder_id": e.feeder_id,
            "periods": e.periods, "reduction_mw": e.reduction_mw, "state": e.state,
            "answer": e.answer, "created_at": e.created_at.isoformat()}


@router.post("/api/sessions/{sid}/emergencies", status_code=201)
def request_emergency(sid: int, body: EmergencyIn, caller: CallerDep,
                      request: Request, platform: PlatformDep
                      ) -> dict[str, Any]:
    """The TSO asks the DSO of a feeder for ``reduction_mw`` less import in ``periods``."""
    require(caller, "emergencies:write")
    with writing(request, platform, caller, 201) as s:
        sess = _cleared(s, caller, sid)
        bad = [t for t in body.periods if not 0 <= t < sess.n_periods]
        if bad:
            raise PlatformError(422, f"periods {bad}: the session has periods 0 to "
                                f"{sess.n_periods - 1}")
        dso = next((o for o in s.scalars(sa.select(db.Organisation).where(
            db.Organisation.role == "dso")) if body.feeder_id in (o.area or [])), None)
        if dso is None:
            raise PlatformError(422, f"feeder_id '{body.feeder_id}': no DSO on the platform "
                                "operates it")
        req = db.EmergencyRequest(session_id=sid, issuer_org=caller.organisation_id,
                                  dso_org=dso.id, feeder_id=body.feeder_id,
                                  periods=sorted(set(body.periods)),
                                  reduction_mw=body.reduction_mw)
        s.add(req)
        s.flush()
        post_message(s, sid, "emergency_request", s.get(db.Organisation, caller.organisation_id),
                     dso, {"request": req.id, "feeder_id": req.feeder_id,
                           "periods": req.periods, "reduction_mw": req.reduction_mw})
        return emergency_json(req)


@router.get("/api/sessions/{sid}/emergencies")
def list_emergencies(sid: int, caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """The emergency requests the caller sent or received."""
    require(caller, "emergencies:read")
    session_of(s, caller, sid)
    rows = s.scalars(select_visible(caller, db.EmergencyRequest,
                                    db.EmergencyRequest.session_id == sid))
    return [emergency_json(e) for e in rows]


@router.get("/api/emergencies/{pk}/assessment")
def assess_emergency(pk: int, caller: CallerDep, s: DbDep, platform: PlatformDep
                     ) -> dict[str, Any]:
    """What the DSO can deliver (its desk's own study, before it answers): its OPF on the
    feeder from the cleared session's dispatch chooses DERs and loads within the feeder's
    limits, checks the plan by AC power flow and says whether it can deliver the request
    (:func:`tsodso.operations.emergency.emergency_request`, route ``dso``). The DSO asked
    and the market operator may run it; nothing is sent or stored."""
    require(caller, "emergencies:ack" if not caller.sees_all else "emergencies:read")
    req = get_visible(s, caller, db.EmergencyRequest, pk, "emergency request")
    sess = s.get(db.MarketSession, req.session_id)
    from tsodso.coordination.run_folder import open_run
    from tsodso.operations.emergency import emergency_request

    run = open_run(sess.folder)
    try:
        result = emergency_request(run.system, run.outcomes[sess.scheme], req.feeder_id,
                                   req.periods, req.reduction_mw, "reduce_load", via="dso")
    except TsodsoError as err:
        raise PlatformError(422, f"emergency request {pk}: {err}") from None
    window = result.delivered_mw  # the window's periods
    return {"request": pk, "accepted": bool(result.accepted), "reason": result.reason,
            "deliverable_mw": float(result.deliverable_mw),
            "delivered_mw_by_period": {int(t): float(v) for t, v in window.items()},
            "cost_usd": float(result.cost_usd), "violations": int(len(result.violations)),
            "ders_moved": int(len(result.moved))}


@router.post("/api/emergencies/{pk}/answer")
def answer_emergency(pk: int, body: EmergencyAnswerIn, caller: CallerDep,
                     request: Request, platform: PlatformDep
                     ) -> dict[str, Any]:
    """The DSO's answer: accepted (all of it) or rejected with the MW it can deliver."""
    require(caller, "emergencies:ack")
    with writing(request, platform, caller, 200) as s:
        req = get_visible(s, caller, db.EmergencyRequest, pk, "emergency request")
        if req.state != "sent":
            raise PlatformError(409, f"emergency request {pk} was already {req.state}")
        if body.accepted and body.deliverable_mw + 1e-9 < req.reduction_mw:
            raise PlatformError(422, f"deliverable_mw {body.deliverable_mw:g} is below the "
                                f"{req.reduction_mw:g} MW asked: reject it with what you can "
                                "deliver")
        if not body.accepted and not body.reason.strip():
            raise PlatformError(422, "reason: say why the request is rejected")
        req.state = "accepted" if body.accepted else "rejected"
        req.answer = body.model_dump()
        post_message(s, req.session_id, "emergency_answer",
                     s.get(db.Organisation, caller.organisation_id),
                     s.get(db.Organisation, req.issuer_org), {"request": req.id, **req.answer})
        return emergency_json(req)


@router.get("/api/audit", tags=["audit"])
def audit_log(caller: CallerDep, s: DbDep, after: int = 0, limit: int = 1000
              ) -> list[dict[str, Any]]:
    """Audit records after ``after`` (market operator, auditors)."""
    require(caller, "audit:read")
    rows = s.scalars(sa.select(db.AuditRecord).where(db.AuditRecord.seq > after)
                     .order_by(db.AuditRecord.seq).limit(min(limit, 10_000)))
    cols = [c.key for c in sa.inspect(db.AuditRecord).columns]
    return [{c: getattr(r, c) for c in cols} for r in rows]


@router.get("/api/audit/verify", tags=["audit"])
def audit_verify(caller: CallerDep, s: DbDep) -> dict[str, Any]:
    """Recompute the audit chain: ``ok``, the records read, the first broken record."""
    require(caller, "audit:read")
    check = verify_chain(s)
    return {"ok": check.ok, "records": check.records, "broken_at": check.broken_at,
            "reason": check.reason}

