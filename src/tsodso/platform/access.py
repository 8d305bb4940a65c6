"""Who may see what: the platform's one access layer.

Every read of a party's objects goes through :func:`select_visible` or :func:`get_visible`,
which filter by the caller's organisation and role; no endpoint filters on its own. A
caller without the scope an action needs gets 403 (:func:`require`); an object that exists
but is not the caller's answers 404, exactly as one that does not exist, so ids reveal
nothing.

The rules (the field's data-security practice: an aggregator sees only its own, a DSO sees
what is located in its area because it must prequalify it, the TSO sees what the session's
scheme lets cross the TSO-DSO boundary, prices are public):

==================  ==============  =====================  ============================  ========
object              aggregator      DSO                    TSO                           MO/aud.
==================  ==============  =====================  ============================  ========
offers, awards      its own         on its feeders         where the scheme shows DER    all
                                                           offers to the TSO (*)
schedules           its DERs'       on its feeders         as offers (*)                 all
activations         sent to it      on its feeders         those it sent                 all
emergency requests  none            sent to it             those it sent                 all
DERs (scenario)     its portfolio   on its feeders         as offers (*)                 all
statements          its own         its own                its own                       all
messages            sent/received   sent/received          sent/received                 all
sessions, prices    all             all                    all                           all
==================  ==============  =====================  ============================  ========

(*) :data:`TSO_SEES_DER_OFFERS`: ``tso_only`` and ``centralized`` (the TSO's market takes
the aggregators' offers) and ``common`` (one joint market); in ``local``,
``shared_balancing``, ``hierarchical`` and ``admm`` the TSO sees feeders' aggregated bids,
imports or prices, never a DER's offer.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tsodso.platform import db
from tsodso.platform.auth import Caller

__all__ = ["TSO_SEES_DER_OFFERS", "Forbidden", "NotFound", "get_visible", "require",
           "select_visible", "visible", "visible_ders"]

TSO_SEES_DER_OFFERS = ("tso_only", "centralized", "common")


class Forbidden(Exception):
    """The caller lacks a scope (403)."""


class NotFound(Exception):
    """No such object, or not the caller's (404)."""


def require(caller: Caller, scope: str) -> None:
    """Raise :class:`Forbidden` unless ``caller`` holds ``scope``."""
    if scope not in caller.scopes:
        raise Forbidden(f"this needs the scope '{scope}', which your "
                        f"{'key' if caller.actor.startswith('key:') else 'login'} "
                        f"({caller.role}) does not hold")


def _sessions_tso_sees() -> Any:
    return sa.select(db.MarketSession.id).where(
        db.MarketSession.scheme.in_(TSO_SEES_DER_OFFERS))


def _in_area(column: Any, caller: Caller) -> ColumnElement[bool]:
    return column.in_(list(caller.area)) if caller.area else sa.false()


def visible(caller: Caller, model: type[db.Base]) -> ColumnElement[bool]:
    """The condition on ``model``'s rows that ``caller`` may see (see the module table)."""
    if caller.sees_all:
        return sa.true()
    org, role = caller.organisation_id, caller.role
    if model in (db.MarketSession, db.Price):
        return sa.true()
    if model in (db.Offer, db.Award):
        if role == "aggregator":
            return model.organisation_id == org
        if role == "dso":
            return _in_area(model.feeder_id, caller)
        if role == "tso":
            return model.session_id.in_(_sessions_tso_sees())
        return sa.false()
    if model is db.Schedule:
        if role == "aggregator":
            return db.Schedule.organisation_id == org
        if role == "dso":
            return _in_area(db.Schedule.feeder_id, caller)
        if role == "tso":
            return db.Schedule.session_id.in_(_sessions_tso_sees())
        return sa.false()
    if model is db.Activation:
        if role == "aggregator":
            return db.Activation.target_org == org
        if role == "dso":
            return sa.or_(_in_area(db.Activation.feeder_id, caller),
                          db.Activation.issuer_org == org)
        return db.Activation.issuer_org == org
    if model is db.EmergencyRequest:
        if role == "dso":
            return db.EmergencyRequest.dso_org == org
        if role == "tso":
            return db.EmergencyRequest.issuer_org == org
        return sa.false()
    if model is db.Statement:
        return db.Statement.organisation_id == org
    if model is db.Message:
        return sa.or_(db.Message.sender_org == org, db.Message.recipient_org == org)
    return sa.false()  # anything not listed: only the market operator and auditors


def select_visible(caller: Caller, model: type[db.Base], *where: Any) -> sa.Select:
    """``SELECT model WHERE visible AND where...``."""
    return sa.select(model).where(visible(caller, model), *where)


def get_visible(session: Session, caller: Caller, model: type[db.Base], pk: int,
                what: str) -> Any:
    """The ``model`` row ``pk`` if ``caller`` may see it, else :class:`NotFound` (the same
    answer as for a row that does not exist)."""
    pk_column = sa.inspect(model).primary_key[0]
    row = session.scalars(select_visible(caller, model, pk_column == pk)).first()
    if row is None:
        raise NotFound(f"{what} {pk} not found")
    return row


def visible_ders(caller: Caller, ders: pd.DataFrame, scheme: str) -> pd.DataFrame:
    """The rows of a scenario's DER table (not in the database) ``caller`` may see in a
    session of ``scheme`` (the same rule as for offers)."""
    if caller.sees_all:
        return ders
    if caller.role == "aggregator":
        return ders[ders.aggregator_id.fillna("").astype(str) == caller.aggregator_id]
    if caller.role == "dso":
        return ders[ders.feeder_id.isin(list(caller.area))]
    if caller.role == "tso" and scheme in TSO_SEES_DER_OFFERS:
        return ders
    return ders.iloc[:0]
