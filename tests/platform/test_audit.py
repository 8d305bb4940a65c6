"""The audit log: every state-changing request recorded (who, when, what), in a hash
chain that shows any change, insertion or deletion."""

from __future__ import annotations

import json

import sqlalchemy as sa
from typer.testing import CliRunner

from platform_helpers import A, der_of, make_service, offer_body
from tsodso.cli import app as cli
from tsodso.platform import db
from tsodso.platform.audit import verify_chain


def test_every_change_is_recorded_in_a_chain_that_shows_tampering(tmp_path, default_system):
    svc = make_service(tmp_path)
    svc.auth(A)
    svc.auth("market-operator")
    svc.auth("auditor")
    svc.client.post("/token", data={"username": A, "password": "not-the-password"})
    sid = svc.open_session("tso_only")
    der = der_of(default_system, A)
    ok = svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(der, "o1"))
    bad = svc.post(A, f"/api/sessions/{sid}/offers", json={"offer_id": "o2"})
    body = json.dumps({"steps": [{"quantity_mw": 0.01, "price_per_mwh": 9.0}]}).encode()
    put = svc.client.put(f"/api/offers/{ok.json()['id']}", content=body,
                         headers={**svc.auth(A), "Content-Type": "application/json"})
    svc.get(A, f"/api/sessions/{sid}/offers")  # reads are not recorded
    records = svc.get("auditor", "/api/audit").json()
    assert [(r["method"], r["path"], r["status_code"], r["organisation"], r["actor"])
            for r in records] == [
        ("POST", "/token", 200, A, f"login:{A}"),
        ("POST", "/token", 200, "market-operator", "login:market-operator"),
        ("POST", "/token", 200, "auditor", "login:auditor"),
        ("POST", "/token", 401, "", f"login:{A}"),
        ("POST", "/api/sessions", 201, "market-operator", "user:market-operator"),
        ("POST", f"/api/sessions/{sid}/offers", ok.status_code, A, f"user:{A}"),
        ("POST", f"/api/sessions/{sid}/offers", bad.status_code, A, f"user:{A}"),
        ("PUT", f"/api/offers/{ok.json()['id']}", put.status_code, A, f"user:{A}")]
    import hashlib
    assert records[-1]["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert records[0]["body_sha256"] == hashlib.sha256(b"").hexdigest()  # no password hash
    assert svc.get("auditor", "/api/audit/verify").json() == {
        "ok": True, "records": 8, "broken_at": None, "reason": ""}
    db_file = str(tmp_path / "platform.sqlite")
    res = CliRunner().invoke(cli, ["platform", "verify-audit", "--db", db_file])
    assert res.exit_code == 0 and json.loads(res.output)["ok"]
    maker = svc.app.state.platform.maker
    # an edited record breaks the chain at that record
    with maker.begin() as s:
        s.execute(sa.update(db.AuditRecord).where(db.AuditRecord.seq == 6)
                  .values(status_code=422))
    with maker() as s:
        check = verify_chain(s)
    assert (check.ok, check.broken_at) == (False, 6) and "content" in check.reason
    res = CliRunner().invoke(cli, ["platform", "verify-audit", "--db", db_file])
    assert res.exit_code == 1
    with maker.begin() as s:  # restore it: the chain is whole again
        s.execute(sa.update(db.AuditRecord).where(db.AuditRecord.seq == 6)
                  .values(status_code=records[5]["status_code"]))
    with maker() as s:
        assert verify_chain(s).ok
    # a deleted record is found, even if the next one's link is rewritten to hide it
    with maker.begin() as s:
        s.execute(sa.delete(db.AuditRecord).where(db.AuditRecord.seq == 5))
    with maker() as s:
        check = verify_chain(s)
    assert (check.ok, check.broken_at) == (False, 6) and "missing" in check.reason
