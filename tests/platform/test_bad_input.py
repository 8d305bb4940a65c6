"""Bad input: each a clear 4xx with a message naming what is wrong, and nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from platform_helpers import START, A, der_of, make_service, offer_body
from tsodso.platform import db
from tsodso.platform.auth import issue_token


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    return make_service(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def sid(svc):
    return svc.open_session("tso_only", hours=2)


def _refused(svc, response, status, *words):
    """``response`` has ``status``, a message holding ``words``, and no offer was kept."""
    assert response.status_code == status, response.text
    text = str(response.json()["detail"])
    for w in words:
        assert w in text, text
    return text


def test_malformed_json_and_wrong_fields(svc, sid, default_system):
    before = svc.count(db.Offer)
    headers = {**svc.auth(A), "Content-Type": "application/json"}
    r = svc.client.post(f"/api/sessions/{sid}/offers", content=b'{"offer_id": "x", ',
                        headers=headers)
    _refused(svc, r, 422, "JSON")
    der = der_of(default_system, A)
    # wrong units: a kW field is not a field of an offer
    body = offer_body(der, "kw")
    body["steps"] = [{"quantity_kw": 50.0, "price_per_mwh": 30.0}]
    text = _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422,
                    "quantity_kw", "Extra inputs are not permitted", "quantity_mw")
    assert "Field required" in text
    # wrong units: kW figures in the MW field exceed the DER's rating, and it says so
    body = offer_body(der, "kw")
    body["steps"] = [{"quantity_mw": float(der.p_max_mw) * 1000, "price_per_mwh": 30.0}]
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422,
             "above DER", "rating", "MW, not kW")
    body["steps"] = [{"quantity_mw": 0.01, "price_per_mwh": 30.0}]
    body["max_mw"] = [5000.0] * 24
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422, "max_mw",
             "MW, not kW")
    body["max_mw"] = [0.01] * 23
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422, "max_mw",
             "one per period (24)")
    # a price beyond the cap, text for a number, an unknown direction
    body = offer_body(der, "p")
    body["steps"][0]["price_per_mwh"] = 1e6
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422,
             "price_per_mwh", "10,000")
    body["steps"][0]["price_per_mwh"] = "cheap"
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422,
             "price_per_mwh")
    body = {**offer_body(der, "d"), "direction": "sideways"}
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422, "direction")
    body = {**offer_body(der, "d"), "direction": "down"}
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422,
             "balancing product")
    storage = der_of(default_system, A, kind="storage")
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers",
                           json=offer_body(storage, "st")), 422, "storage")
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers",
                           json={**offer_body(der, "loc"), "feeder_id": "case69@4#1"}), 422,
             "feeder_id", "case33bw@9")
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers",
                           json={**offer_body(der, "id"), "offer_id": "has space"}), 422,
             "offer_id")
    assert svc.count(db.Offer) == before


def test_negative_and_empty_quantities(svc, sid, default_system):
    before = svc.count(db.Offer)
    der = der_of(default_system, A)
    body = offer_body(der, "neg")
    body["steps"][0]["quantity_mw"] = -0.1
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422,
             "quantity_mw", "greater than or equal to 0")
    body["steps"] = [{"quantity_mw": 0.0, "price_per_mwh": 1.0}]
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422, "sum to 0")
    body["steps"] = []
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422, "steps")
    body = offer_body(der, "neg")
    body["max_mw"] = [-1.0] * 24
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=body), 422, "max_mw")
    assert svc.count(db.Offer) == before


def test_gate_duplicates_revisions_and_withdrawals(tmp_path, default_system):
    svc = make_service(tmp_path)
    sid = svc.open_session("tso_only", hours=1)
    der = der_of(default_system, A)
    svc.clock.now = START - timedelta(minutes=1)
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(der, "early")),
             409, "opens at")
    svc.clock.now = START + timedelta(minutes=10)
    r = svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(der, "o1"))
    assert r.status_code == 201
    pk = r.json()["id"]
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers",
                           json=offer_body(der_of(default_system, A, k=1), "o1")),
             409, "offer id 'o1' is taken")
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(der, "o2")),
             409, "already has your offer 'o1'")
    r = svc.put(A, f"/api/offers/{pk}", json={"steps": [
        {"quantity_mw": float(der.p_max_mw) / 4, "price_per_mwh": 12.0}]})
    assert r.status_code == 200 and r.json()["revision"] == 2
    assert r.json()["offered_mw"] == pytest.approx(float(der.p_max_mw) / 4)
    _refused(svc, svc.put(A, f"/api/offers/{pk}", json={"steps": [
        {"quantity_mw": -1, "price_per_mwh": 12.0}]}), 422, "quantity_mw")
    assert svc.get(A, f"/api/offers/{pk}").json()["revision"] == 2  # nothing stored
    assert svc.delete(A, f"/api/offers/{pk}").json()["status"] == "withdrawn"
    _refused(svc, svc.delete(A, f"/api/offers/{pk}"), 409, "already withdrawn")
    # a withdrawn offer frees its DER for a new offer (a new id)
    assert svc.post(A, f"/api/sessions/{sid}/offers",
                    json=offer_body(der, "o3")).status_code == 201
    n = svc.count(db.Offer)
    svc.clock.now = START + timedelta(hours=1)  # the gate closes at START + 1 h
    _refused(svc, svc.post(A, f"/api/sessions/{sid}/offers",
                           json=offer_body(der_of(default_system, A, k=2), "late")),
             409, "closed at")
    _refused(svc, svc.put(A, f"/api/offers/{pk}", json={"steps": [
        {"quantity_mw": 0.01, "price_per_mwh": 1.0}]}), 409, "closed at")
    assert svc.count(db.Offer) == n


def test_tokens_expired_forged_or_missing(svc, sid):
    user_id = 1
    secret = svc.app.state.platform.secret
    old = issue_token(secret, user_id, ["sessions:read"], minutes=5,
                      now=datetime.now(UTC) - timedelta(hours=1))
    r = svc.client.get("/api/sessions", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    forged = issue_token("f" * 40, user_id, ["sessions:read"])
    r = svc.client.get("/api/sessions", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and "signature" in r.json()["detail"]
    # a token whose claims were edited (more scopes) fails its signature too
    good = svc.auth(A)["Authorization"].split()[1]
    head, _, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    claims["scope"] += " sessions:write"
    body = jwt.encode(claims, "x" * 40, algorithm="HS256").split(".")[1]
    r = svc.client.get("/api/sessions", headers={"Authorization": f"Bearer {head}.{body}.{sig}"})
    assert r.status_code == 401
    r = svc.client.get("/api/sessions", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and "not valid" in r.json()["detail"]
    r = svc.client.get("/api/sessions")
    assert r.status_code == 401 and "log in" in r.json()["detail"]
    r = svc.client.post("/token", data={"username": A, "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    r = svc.client.post("/token", data={"username": "nobody", "password": "wrong-password"})
    assert r.json()["detail"] == "wrong username or password"  # no user enumeration
    r = svc.client.post("/token", data={"username": A, "password": "password123",
                                        "scope": "sessions:write"})
    assert r.status_code == 403 and "sessions:write" in r.json()["detail"]


def test_sessions_refuse_bad_gates_schemes_and_scenarios(svc):
    n = svc.count(db.MarketSession)
    base = {"name": "x", "scenario": "default", "scheme": "tso_only",
            "gate_open": "2026-12-01T10:00:00Z", "gate_close": "2026-12-01T09:00:00Z"}
    _refused(svc, svc.post("market-operator", "/api/sessions", json=base), 422,
             "gate_close must be after gate_open")
    _refused(svc, svc.post("market-operator", "/api/sessions",
                           json={**base, "gate_close": "2026-12-01T11:00:00"}), 422,
             "time zone")
    _refused(svc, svc.post("market-operator", "/api/sessions",
                           json={**base, "gate_close": "2026-12-01T11:00:00Z",
                                 "scheme": "magic"}), 422, "magic")
    _refused(svc, svc.post("market-operator", "/api/sessions",
                           json={**base, "gate_close": "2026-12-01T11:00:00Z",
                                 "scenario": "no-such-scenario"}), 422, "no-such-scenario")
    assert svc.count(db.MarketSession) == n


def test_simultaneous_offers_for_one_der_store_one(tmp_path, default_system):
    """Eight clients offer the same DER (different ids) and eight the same id at once:
    one offer each is stored, the others are 409; the database itself refuses a second
    active offer for a DER."""
    from concurrent.futures import ThreadPoolExecutor

    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    svc = make_service(tmp_path)
    sid = svc.open_session("tso_only")
    headers = svc.auth(A)
    der, other = der_of(default_system, A), der_of(default_system, A, k=1)

    def send(body):
        return svc.client.post(f"/api/sessions/{sid}/offers", json=body,
                               headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        same_der = list(pool.map(send, [offer_body(der, f"d{k}") for k in range(8)]))
        same_id = list(pool.map(send, [offer_body(other, "same") for _ in range(8)]))
    assert sorted(same_der) == [201] + [409] * 7
    assert sorted(same_id) == [201] + [409] * 7
    assert svc.count(db.Offer) == 2
    with svc.app.state.platform.maker() as s:
        row = s.scalars(sa.select(db.Offer)).first()
        s.add(db.Offer(session_id=row.session_id, organisation_id=row.organisation_id,
                       offer_id="direct", der_id=row.der_id, feeder_id=row.feeder_id,
                       bus_id=row.bus_id, kind=row.kind, direction="up", steps=row.steps,
                       offered_mw=row.offered_mw))
        with pytest.raises(IntegrityError):
            s.commit()
    records = svc.get("auditor", "/api/audit").json()
    offers = [r for r in records if r["path"].endswith("/offers")]
    assert sorted(r["status_code"] for r in offers) == sorted(same_der + same_id)
