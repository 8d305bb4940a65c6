"""Logging in, the caller's identity and the parties' register."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from tsodso.platform import db
from tsodso.platform.access import NotFound, require
from tsodso.platform.auth import (
    ROLE_SCOPES,
    TOKEN_MINUTES,
    AuthError,
    issue_token,
    verify_password,
)
from tsodso.platform.routes.deps import CallerDep, DbDep, PlatformDep, writing
from tsodso.platform.schemas import ApiKeyIn, OrganisationIn, UserIn
from tsodso.platform.store import PlatformError, add_api_key, add_organisation, add_user

router = APIRouter()


@router.post("/token", tags=["auth"])
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], s: DbDep,
          platform: PlatformDep, request: Request) -> dict[str, Any]:
    """OAuth2 password flow: a bearer token (signed, expiring) for a user. The scopes
    asked for (``scope``, space-separated) are granted within the role's; none asked: all
    of the role's."""
    request.state.actor = f"login:{form.username[:100]}"  # the audit log names the attempt
    user = s.scalars(sa.select(db.User).where(db.User.username == form.username)).first()
    if user is None or not user.active or not verify_password(user.password_hash,
                                                              form.password):
        raise AuthError("wrong username or password")
    org = s.get(db.Organisation, user.organisation_id)
    request.state.organisation = org.name
    allowed = ROLE_SCOPES[org.role]
    asked = form.scopes or list(allowed)
    refused = sorted(set(asked) - set(allowed))
    if refused:
        raise PlatformError(403, f"scopes {', '.join(refused)} are not available to the "
                            f"role {org.role}")
    token = issue_token(platform.secret, user.id, asked)  # real time, not the market clock
    return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_MINUTES * 60,
            "scope": " ".join(asked)}


@router.get("/api/me", tags=["auth"])
def me(caller: CallerDep) -> dict[str, Any]:
    """Who the caller is: organisation, role, party, area and scopes."""
    return {"organisation": caller.organisation, "role": caller.role, "party": caller.party,
            "area": list(caller.area), "scopes": sorted(caller.scopes),
            "actor": caller.actor}


def _org_json(org: db.Organisation, full: bool) -> dict[str, Any]:
    out = {"id": org.id, "name": org.name, "role": org.role}
    if full:
        out |= {"party": org.party, "area": list(org.area or [])}
    return out


@router.get("/api/organisations", tags=["parties"])
def organisations(caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """The register of parties (names and roles; parties and areas for the market
    operator and auditors)."""
    rows = s.scalars(sa.select(db.Organisation).order_by(db.Organisation.id))
    return [_org_json(o, caller.sees_all) for o in rows]


@router.post("/api/organisations", status_code=201, tags=["parties"])
def create_organisation(body: OrganisationIn, caller: CallerDep,
                        request: Request, platform: PlatformDep) -> dict[str, Any]:
    """Register a party (market operator)."""
    require(caller, "organisations:write")
    with writing(request, platform, caller, 201) as s:
        return _org_json(add_organisation(s, body.name, body.role, body.party, body.area), True)


def _org(s: Any, org_id: int) -> db.Organisation:
    org = s.get(db.Organisation, org_id)
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


@router.post("/api/organisations/{org_id}/users", status_code=201, tags=["parties"])
def create_user(org_id: int, body: UserIn, caller: CallerDep,
                request: Request, platform: PlatformDep) -> dict[str, Any]:
    """A user of an organisation (market operator)."""
    require(caller, "organisations:write")
    with writing(request, platform, caller, 201) as s:
        user = add_user(s, _org(s, org_id), body.username, body.password)
        return {"id": user.id, "username": user.username, "organisation_id": org_id}


@router.post("/api/organisations/{org_id}/api-keys", status_code=201, tags=["parties"])
def create_api_key(org_id: int, body: ApiKeyIn, caller: CallerDep,
                   request: Request, platform: PlatformDep
                   ) -> dict[str, Any]:
    """An API key for an organisation's machine client (market operator); the key is
    shown once."""
    require(caller, "organisations:write")
    with writing(request, platform, caller, 201) as s:
        org = _org(s, org_id)
        key = add_api_key(s, org, body.name, body.scopes)
        return {"api_key": key, "organisation_id": org_id,
                "scopes": list(body.scopes or ROLE_SCOPES[org.role])}
