"""The platform's operations on its database: parties, sessions, offers, clearing and
activations. The HTTP routes (:mod:`tsodso.platform.routes`) call these after checking
the caller's scopes; each function checks the domain rules (gate, ownership, limits) and
raises :class:`PlatformError` with the HTTP status and a message saying why.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tsodso.errors import TsodsoError, ValidationError
from tsodso.model.system import System
from tsodso.platform import db
from tsodso.platform.auth import ROLE_SCOPES, Caller, hash_password, new_api_key
from tsodso.platform.offers import Offer, OfferStep, offer_issues

__all__ = ["PlatformError", "SystemCache", "add_api_key", "add_organisation", "add_user",
           "clear", "create_session", "offers_in_force", "seed_scenario_parties",
           "submit_offer"]


class PlatformError(Exception):
    """A refused request: ``status`` (HTTP) and ``detail`` (a message, or a list of
    ``{component, field, id, message}``)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else str(detail))
        self.status = status
        self.detail = detail


def _issues(err: ValidationError) -> list[dict[str, Any]]:
    """Problems as the service reports every 422 item: ``component, field, id, message``
    and FastAPI's ``loc, msg`` (the same in both)."""
    return [{"component": i.component, "field": i.field, "id": i.id, "message": i.message,
             "loc": [i.component, *i.field.split(".")] if i.field else [i.component],
             "msg": i.message} for i in err.issues]


class SystemCache:
    """Scenarios loaded once per process (loading ``default`` takes about a second)."""

    def __init__(self) -> None:
        self._systems: dict[str, System] = {}
        self._lock = threading.Lock()

    def get(self, scenario: str) -> System:
        """The scenario's system (:func:`tsodso.io.load`); :class:`PlatformError` 422 if
        it cannot be loaded or has no feeders."""
        with self._lock:
            if scenario not in self._systems:
                from tsodso.io import load

                try:
                    system = load(scenario)
                except ValidationError as err:
                    raise PlatformError(422, _issues(err)) from None
                except TsodsoError as err:
                    raise PlatformError(422, f"scenario '{scenario}': {err}") from None
                if not system.feeder_ids:
                    raise PlatformError(422, f"scenario '{scenario}' has no feeders")
                self._systems[scenario] = system
            return self._systems[scenario]


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------------------ parties
def add_organisation(s: Session, name: str, role: str, party: str = "",
                     area: Sequence[str] = ()) -> db.Organisation:
    """Register a party (409 if the name is taken, 422 for an unknown role)."""
    if role not in db.ROLES:
        raise PlatformError(422, f"role '{role}': use one of {', '.join(db.ROLES)}")
    if s.scalars(sa.select(db.Organisation).where(db.Organisation.name == name)).first():
        raise PlatformError(409, f"organisation '{name}' exists")
    if role == "aggregator" and not party.startswith("aggregator:"):
        party = f"aggregator:{party or name}"
    if role == "dso" and not party.startswith("dso:"):
        party = f"dso:{party or name}"
    if role == "tso":
        party = party or "tso"
    if role == "market_operator":
        party = party or "market_operator:market"
    org = db.Organisation(name=name, role=role, party=party, area=list(area))
    s.add(org)
    s.flush()
    return org


def add_user(s: Session, org: db.Organisation, username: str, password: str) -> db.User:
    """A user of ``org`` (409 if the username is taken)."""
    if s.scalars(sa.select(db.User).where(db.User.username == username)).first():
        raise PlatformError(409, f"user '{username}' exists")
    user = db.User(username=username, password_hash=hash_password(password),
                   organisation_id=org.id)
    s.add(user)
    s.flush()
    return user


def add_api_key(s: Session, org: db.Organisation, name: str = "",
                scopes: Sequence[str] | None = None) -> str:
    """A new API key for ``org`` (returned once; scopes within its role's, 422 else)."""
    allowed = ROLE_SCOPES[org.role]
    chosen = list(allowed if scopes is None else scopes)
    extra = sorted(set(chosen) - set(allowed))
    if extra:
        raise PlatformError(422, f"scopes {', '.join(extra)} are not available to the "
                            f"role {org.role}")
    key, prefix, digest = new_api_key()
    s.add(db.ApiKey(prefix=prefix, key_hash=digest, organisation_id=org.id, name=name,
                    scopes=chosen))
    s.flush()
    return key


def seed_scenario_parties(s: Session, system: System, password: str) -> dict[str, str]:
    """One organisation per party of ``system`` (the TSO, each DSO with its feeders, each
    aggregator) plus a market operator and an auditor, each with a user named after the
    organisation and ``password``. Existing names are kept. Returns name -> role."""
    wanted: list[tuple[str, str, str, list[str]]] = [
        ("tso", "tso", "tso", []), ("market-operator", "market_operator", "", []),
        ("auditor", "auditor", "", [])]
    for dso, feeders in system.dso_feeders.items():
        wanted.append((f"dso-{dso}", "dso", f"dso:{dso}", feeders))
    for agg in sorted(set(system.ders.aggregator_id.fillna("").astype(str)) - {""}):
        wanted.append((agg, "aggregator", f"aggregator:{agg}", []))
    out = {}
    for name, role, party, area in wanted:
        org = s.scalars(sa.select(db.Organisation).where(db.Organisation.name == name)
                        ).first()
        if org is None:
            org = add_organisation(s, name, role, party, area)
            add_user(s, org, name, password)
        out[name] = role
    return out


# ------------------------------------------------------------------------------ sessions
def create_session(s: Session, caller: Caller, systems: SystemCache, name: str,
                   scenario: str, scheme: str, gate_open: datetime,
                   gate_close: datetime) -> db.MarketSession:
    """Open a session (422: unknown scheme or scenario, gate closing before it opens)."""
    from tsodso.coordination import check_scheme_names

    try:
        check_scheme_names([scheme])
    except TsodsoError as err:
        raise PlatformError(422, str(err)) from None
    if _as_utc(gate_close) <= _as_utc(gate_open):
        raise PlatformError(422, "gate_close must be after gate_open")
    system = systems.get(scenario)
    sess = db.MarketSession(name=name, scenario=scenario, scheme=scheme,
                            gate_open=_as_utc(gate_open), gate_close=_as_utc(gate_close),
                            n_periods=system.n_periods,
                            period_hours=float(system.profiles.period_hours),
                            created_by=caller.organisation_id, state="open")
    s.add(sess)
    s.flush()
    return sess


def gate_check(sess: db.MarketSession, now: datetime) -> None:
    """409 unless ``sess`` takes offers at ``now``, saying why."""
    if sess.state != "open":
        raise PlatformError(409, f"session {sess.id} is {sess.state}: it takes no offers")
    now = _as_utc(now)
    if now < _as_utc(sess.gate_open):
        raise PlatformError(409, f"the gate of session {sess.id} opens at "
                            f"{_as_utc(sess.gate_open).isoformat()}")
    if now >= _as_utc(sess.gate_close):
        raise PlatformError(409, f"the gate of session {sess.id} closed at "
                            f"{_as_utc(sess.gate_close).isoformat()}")


def _steps(steps: Sequence[dict[str, float]]) -> tuple[OfferStep, ...]:
    return tuple(OfferStep(float(x["quantity_mw"]), float(x["price_per_mwh"])) for x in steps)


def _offer(caller: Caller, offer_id: str, der_id: str, direction: str,
           steps: Sequence[dict[str, float]], max_mw: Sequence[float] | None,
           feeder_id: str | None = None, bus_id: int | None = None) -> Offer:
    return Offer(offer_id=offer_id, aggregator_id=caller.aggregator_id, der_id=der_id,
                 steps=_steps(steps),
                 direction=direction,
                 max_mw=None if max_mw is None else tuple(float(v) for v in max_mw),
                 feeder_id=feeder_id, bus_id=bus_id)


def _check_offer(system: System, offer: Offer) -> None:
    issues = offer_issues(system, offer)
    if issues:
        raise PlatformError(422, _issues(ValidationError(issues)))


def submit_offer(s: Session, caller: Caller, sess: db.MarketSession, system: System,
                 now: datetime, data: dict[str, Any]) -> db.Offer:
    """Store a new offer of ``caller`` (gate, ownership, limits and uniqueness checked;
    nothing stored when refused)."""
    gate_check(sess, now)
    offer = _offer(caller, data["offer_id"], data["der_id"], data.get("direction", "up"),
                   data["steps"], data.get("max_mw"), data.get("feeder_id"),
                   data.get("bus_id"))
    _check_offer(system, offer)
    mine = sa.select(db.Offer).where(db.Offer.session_id == sess.id,
                                     db.Offer.organisation_id == caller.organisation_id)
    if s.scalars(mine.where(db.Offer.offer_id == offer.offer_id)).first():
        raise PlatformError(409, f"offer id '{offer.offer_id}' is taken among your offers "
                            f"in session {sess.id}: revise that offer or use a new id")
    held = s.scalars(mine.where(db.Offer.der_id == offer.der_id,
                                db.Offer.status == "active")).first()
    if held is not None:
        raise PlatformError(409, f"DER '{offer.der_id}' already has your offer "
                            f"'{held.offer_id}' (id {held.id}) in session {sess.id}: revise "
                            "it instead")
    der = system.ders.set_index("der_id").loc[offer.der_id]
    row = db.Offer(session_id=sess.id, organisation_id=caller.organisation_id,
                   offer_id=offer.offer_id, der_id=offer.der_id, feeder_id=str(der.feeder_id),
                   bus_id=int(der.bus_id), kind=str(der.kind), direction=offer.direction,
                   steps=[{"quantity_mw": x.quantity_mw, "price_per_mwh": x.price_per_mwh}
                          for x in offer.steps],
                   max_mw=None if offer.max_mw is None else list(offer.max_mw),
                   offered_mw=offer.offered_mw)
    s.add(row)
    s.flush()
    return row


def revise_offer(s: Session, caller: Caller, row: db.Offer, sess: db.MarketSession,
                 system: System, now: datetime, steps: Sequence[dict[str, float]],
                 max_mw: Sequence[float] | None) -> db.Offer:
    """New steps and caps for an active offer before gate closure (revision + 1)."""
    gate_check(sess, now)
    if row.status != "active":
        raise PlatformError(409, f"offer {row.id} was withdrawn: submit a new offer")
    offer = _offer(caller, row.offer_id, row.der_id, row.direction, steps, max_mw)
    _check_offer(system, offer)
    row.steps = [{"quantity_mw": x.quantity_mw, "price_per_mwh": x.price_per_mwh}
                 for x in offer.steps]
    row.max_mw = None if offer.max_mw is None else list(offer.max_mw)
    row.offered_mw = offer.offered_mw
    row.revision += 1
    row.updated_at = db.utcnow()
    return row


def withdraw_offer(row: db.Offer, sess: db.MarketSession, now: datetime) -> db.Offer:
    """Withdraw an active offer before gate closure."""
    gate_check(sess, now)
    if row.status != "active":
        raise PlatformError(409, f"offer {row.id} is already withdrawn")
    row.status = "withdrawn"
    row.updated_at = db.utcnow()
    return row


def offers_in_force(s: Session, session_id: int) -> list[tuple[db.Offer, Offer]]:
    """The session's active offers (rows and :class:`Offer`), in submission order."""
    orgs = {o.id: o for o in s.scalars(sa.select(db.Organisation))}
    rows = s.scalars(sa.select(db.Offer).where(db.Offer.session_id == session_id,
                                               db.Offer.status == "active")
                     .order_by(db.Offer.id)).all()
    out = []
    for r in rows:
        agg = orgs[r.organisation_id].party.removeprefix("aggregator:")
        out.append((r, Offer(offer_id=r.offer_id, aggregator_id=agg, der_id=r.der_id,
                             steps=_steps(r.steps),
                             direction=r.direction,
                             max_mw=None if r.max_mw is None else tuple(r.max_mw))))
    return out


# ------------------------------------------------------------------------------ clearing
def clear(maker: sessionmaker, session_id: int, systems: SystemCache, data_dir: Path,
          now: datetime) -> db.MarketSession:
    """Close the gate of an open session and clear it: the scheme on the offers in force
    (:func:`tsodso.platform.clearing.clear_session`), then store its awards, schedules,
    prices, statements and message log. A scheme that ends without an answer leaves the
    session ``failed`` with the reason."""
    from tsodso.platform.clearing import clear_session

    with maker.begin() as s:
        sess = s.get(db.MarketSession, session_id, with_for_update=True)
        if sess is None:
            raise PlatformError(404, f"session {session_id} not found")
        if sess.state != "open":
            raise PlatformError(409, f"session {session_id} is {sess.state}")
        sess.state = "clearing"
        if _as_utc(sess.gate_close) > _as_utc(now):
            sess.gate_close = _as_utc(now)
        pairs = offers_in_force(s, session_id)
        scenario, scheme = sess.scenario, sess.scheme
    folder = data_dir / "sessions" / f"session-{session_id}"
    try:
        result = clear_session(systems.get(scenario), scheme, [o for _, o in pairs], folder,
                               scenario)
    except (TsodsoError, PlatformError) as err:
        with maker.begin() as s:
            sess = s.get(db.MarketSession, session_id)
            sess.state, sess.status, sess.error = "failed", "error", str(err)
            sess.cleared_at = db.utcnow()
        return sess
    with maker.begin() as s:
        sess = s.get(db.MarketSession, session_id)
        orgs = {o.party: o.id for o in s.scalars(sa.select(db.Organisation)) if o.party}
        sess.folder = str(folder)
        sess.status = result.status
        sess.cleared_at = db.utcnow()
        if result.outcome is None:
            sess.state, sess.error = "failed", result.error
        else:
            sess.state = "cleared"
            sess.total_cost = float(result.outcome.total_cost)
            _store_results(s, session_id, result, pairs, orgs)
        _store_messages(s, session_id, folder, orgs)
    return sess


def _store_results(s: Session, sid: int, result: Any, pairs: list[tuple[db.Offer, Offer]],
                   orgs: dict[str, int]) -> None:
    pk = {(r.organisation_id, r.offer_id): r for r, _ in pairs}
    agg_org = {o.aggregator_id: r.organisation_id for r, o in pairs}
    rows: list[dict[str, Any]] = []
    for a in result.awards.itertuples(index=False):
        org = agg_org[a.aggregator_id]
        price = float(a.price_per_mwh)
        rows.append(dict(session_id=sid, organisation_id=org,
                         offer_pk=pk[(org, a.offer_id)].id, offer_id=a.offer_id,
                         der_id=a.der_id, feeder_id=a.feeder_id, bus_id=int(a.bus_id),
                         period=int(a.period), awarded_mw=float(a.awarded_mw),
                         price_per_mwh=price if np.isfinite(price) else None,
                         settlement=a.settlement))
    if rows:
        s.execute(sa.insert(db.Award), rows)
    sch = result.schedules
    if len(sch):
        s.execute(sa.insert(db.Schedule), [
            dict(session_id=sid, organisation_id=orgs.get(f"aggregator:{agg}"), der_id=der,
                 aggregator_id=agg, feeder_id=f, bus_id=int(b), period=int(t),
                 p_mw=float(p), q_mvar=float(q))
            for der, agg, f, b, t, p, q in zip(
                sch.der_id, sch.aggregator_id, sch.feeder_id, sch.bus_id, sch.period,
                sch.p_mw, sch.q_mvar, strict=True)])
    pr = result.prices
    if len(pr):
        s.execute(sa.insert(db.Price), [
            dict(session_id=sid, kind=k, feeder_id=f, bus_id=int(b), period=int(t),
                 price=float(v))
            for k, f, b, t, v in zip(pr.kind, pr.feeder_id, pr.bus_id, pr.period, pr.price,
                                     strict=True)])
    st = result.statements
    if len(st):
        s.execute(sa.insert(db.Statement), [
            dict(session_id=sid, party=p, organisation_id=orgs.get(p), line=line,
                 amount=float(v))
            for p, line, v in zip(st.party, st.line, st.amount, strict=True)])


def _store_messages(s: Session, sid: int, folder: Path, orgs: dict[str, int]) -> None:
    from tsodso.actors import LOG_FILE_NAME, MessageLog
    from tsodso.actors.messages import to_json

    path = folder / LOG_FILE_NAME
    if not path.exists():
        return
    log = MessageLog(path, create=False)
    try:
        messages = [to_json(m) for m in log.messages()]
    finally:
        log.close()
    rows = []
    for k, m in enumerate(messages, start=1):
        rows.append(dict(session_id=sid, seq=k, kind=m["kind"], sender=m["sender"],
                         recipient=m["recipient"], sender_org=orgs.get(m["sender"]),
                         recipient_org=orgs.get(m["recipient"]),
                         payload={k2: v for k2, v in m.items() if k2 != "kind"}))
    if rows:
        s.execute(sa.insert(db.Message), rows)


def post_message(s: Session, sid: int, kind: str, sender: db.Organisation,
                 recipient: db.Organisation, payload: dict[str, Any]) -> None:
    """A platform message (activation, acknowledgement, emergency request, answer)."""
    last = s.scalar(sa.select(sa.func.max(db.Message.seq)).where(db.Message.session_id == sid))
    s.add(db.Message(session_id=sid, seq=int(last or 0) + 1, kind=kind, sender=sender.party,
                     recipient=recipient.party, sender_org=sender.id,
                     recipient_org=recipient.id, payload=payload))
