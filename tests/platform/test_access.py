"""Two-tenant leakage tests: every resource answers each party only what is theirs.

Aggregator A (``agg_case33bw@9``) and aggregator B (``agg_case33bw@10``) offer in the same
session (behind different DSOs); aggregator C (``agg_case69@4#1``) too. A must never read,
list or infer B's offers, awards, schedules, activations, statements or messages (404 for
B's ids, the same answer as for ids that do not exist); a DSO sees only the offers on its
feeders; the TSO sees DER offers only where the scheme shows them to it; the order book
names no owner.
"""

from __future__ import annotations

import pytest

from platform_helpers import A, B, C, der_of, make_service, offer_body
from tsodso.platform import db


@pytest.fixture(scope="module")
def world(tmp_path_factory, default_system):
    """A cleared tso_only session with offers of A, B and C, an activation of B's DER by
    the TSO (acknowledged by B) and an emergency request to A's DSO."""
    svc = make_service(tmp_path_factory.mktemp("access"))
    sid = svc.open_session("tso_only")
    ids = {}
    for agg, k, oid in ((A, 0, "shared-id"), (A, 1, "a-2"), (B, 0, "shared-id"),
                        (C, 0, "c-1")):
        der = der_of(default_system, agg, k=k)
        r = svc.post(agg, f"/api/sessions/{sid}/offers", json=offer_body(der, oid))
        assert r.status_code == 201, r.text
        ids[(agg, oid)] = r.json()["id"]
    r = svc.post("market-operator", f"/api/sessions/{sid}/close?wait=true")
    assert r.json()["state"] == "cleared", r.text
    # the TSO calls B's DER where its award leaves most headroom
    awards = svc.get("tso", f"/api/sessions/{sid}/awards").json()
    b_awards = [a for a in awards if a["offer_id"] == "shared-id" and
                a["der_id"] == der_of(default_system, B).der_id]
    low = min(b_awards, key=lambda a: a["awarded_mw"])
    r = svc.post("tso", f"/api/sessions/{sid}/activations",
                 json={"der_id": low["der_id"], "period": low["period"], "mw": 0.001})
    assert r.status_code == 201, r.text
    act_b = r.json()["id"]
    r = svc.post(B, f"/api/activations/{act_b}/acknowledgement", json={"accepted": True})
    assert r.status_code == 200, r.text
    r = svc.post("tso", f"/api/sessions/{sid}/emergencies",
                 json={"feeder_id": "case33bw@9", "periods": [10, 11], "reduction_mw": 0.5})
    assert r.status_code == 201, r.text
    return {"svc": svc, "sid": sid, "ids": ids, "act_b": act_b,
            "emergency": r.json()["id"]}


def test_offers_of_another_aggregator_answer_404(world, default_system):
    svc, sid, ids = world["svc"], world["sid"], world["ids"]
    b_offer = ids[(B, "shared-id")]
    for call in (lambda: svc.get(A, f"/api/offers/{b_offer}"),
                 lambda: svc.put(A, f"/api/offers/{b_offer}",
                                 json={"steps": [{"quantity_mw": 0.01, "price_per_mwh": 1}]}),
                 lambda: svc.delete(A, f"/api/offers/{b_offer}")):
        r = call()
        assert r.status_code == 404, r.text
        # the same answer as an id that does not exist: nothing to tell them apart
        assert r.json() == {"detail": f"offer {b_offer} not found"}
    assert svc.get(A, "/api/offers/999999").json() == {"detail": "offer 999999 not found"}
    listed = svc.get(A, f"/api/sessions/{sid}/offers").json()
    assert {o["offer_id"] for o in listed} == {"shared-id", "a-2"}
    a_ders = set(default_system.ders[default_system.ders.aggregator_id == A].der_id)
    assert {o["der_id"] for o in listed} <= a_ders
    # B's offer is unchanged by A's attempts
    assert svc.get(B, f"/api/offers/{b_offer}").json()["revision"] == 1


def test_offer_ids_and_ders_reveal_nothing(world, default_system, tmp_path):
    """B may reuse A's offer id (ids are per owner, so a 409 cannot reveal A's); offering
    B's DER gets the same answer as offering a DER that does not exist."""
    svc = make_service(tmp_path)
    sid = svc.open_session("tso_only")
    b_der = der_of(default_system, B)
    assert svc.post(A, f"/api/sessions/{sid}/offers",
                    json=offer_body(der_of(default_system, A), "x")).status_code == 201
    assert svc.post(B, f"/api/sessions/{sid}/offers",
                    json=offer_body(b_der, "x")).status_code == 201
    other = svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(b_der, "y"))
    ghost = svc.post(A, f"/api/sessions/{sid}/offers",
                     json={**offer_body(b_der, "y"), "der_id": "no-such-der"})
    assert other.status_code == ghost.status_code == 422
    message = other.json()["detail"][0]["message"]
    assert message == f"DER '{b_der.der_id}' is not in aggregator '{A}''s portfolio"
    assert ghost.json()["detail"][0]["message"] == message.replace(b_der.der_id,
                                                                   "no-such-der")


def test_awards_schedules_statements_messages_are_the_callers(world, default_system):
    svc, sid = world["svc"], world["sid"]
    a_ders = set(default_system.ders[default_system.ders.aggregator_id == A].der_id)
    awards = svc.get(A, f"/api/sessions/{sid}/awards").json()
    assert awards and {a["der_id"] for a in awards} <= a_ders
    assert len(awards) == 2 * 24
    schedules = svc.get(A, f"/api/sessions/{sid}/schedules").json()
    assert schedules and {s["der_id"] for s in schedules} == a_ders  # all its DERs
    statements = svc.get(A, f"/api/sessions/{sid}/statements").json()
    assert statements and {s["party"] for s in statements} == {f"aggregator:{A}"}
    messages = svc.get(A, f"/api/sessions/{sid}/messages").json()
    assert messages
    assert all(f"aggregator:{A}" in (m["sender"], m["recipient"]) for m in messages)
    text = str([awards, schedules, statements, messages])
    assert B not in text and "agg_case33bw@10" not in text
    # the market operator and the auditor read everything
    every = svc.get("auditor", f"/api/sessions/{sid}/statements").json()
    assert len({s["party"] for s in every}) > 5


def test_activations_are_seen_by_their_parties_only(world):
    svc, sid, act = world["svc"], world["sid"], world["act_b"]
    assert svc.get(A, f"/api/activations/{act}").status_code == 404
    assert svc.post(A, f"/api/activations/{act}/acknowledgement",
                    json={"accepted": False, "reason": "no"}).status_code == 404
    assert svc.get(A, f"/api/sessions/{sid}/activations").json() == []
    assert [x["id"] for x in svc.get(B, f"/api/sessions/{sid}/activations").json()] == [act]
    assert svc.get(B, f"/api/activations/{act}").json()["state"] == "accepted"
    assert svc.get("tso", f"/api/activations/{act}").status_code == 200
    assert svc.get("dso-bus10", f"/api/activations/{act}").status_code == 200  # its feeder
    assert svc.get("dso-bus9", f"/api/activations/{act}").status_code == 404
    # the activation and its acknowledgement are messages between the TSO and B only
    kinds = {m["kind"] for m in svc.get(B, f"/api/sessions/{sid}/messages").json()}
    assert {"activation", "acknowledgement"} <= kinds
    kinds_a = {m["kind"] for m in svc.get(A, f"/api/sessions/{sid}/messages").json()}
    assert not {"activation", "acknowledgement"} & kinds_a


def test_emergency_requests_reach_their_dso_only(world):
    svc, sid, e = world["svc"], world["sid"], world["emergency"]
    assert [x["id"] for x in svc.get("dso-bus9", f"/api/sessions/{sid}/emergencies").json()
            ] == [e]
    assert svc.get("dso-bus10", f"/api/sessions/{sid}/emergencies").json() == []
    assert svc.get(A, f"/api/sessions/{sid}/emergencies").json() == []
    r = svc.post("dso-bus10", f"/api/emergencies/{e}/answer",
                 json={"accepted": True, "deliverable_mw": 0.5})
    assert r.status_code == 404
    assert svc.get("dso-bus10", f"/api/emergencies/{e}/assessment").status_code == 404
    assert svc.get(A, f"/api/emergencies/{e}/assessment").status_code == 403
    # the DSO's desk studies the request on its feeder (OPF + AC power flow) and answers
    study = svc.get("dso-bus9", f"/api/emergencies/{e}/assessment").json()
    assert study["accepted"] and study["deliverable_mw"] == pytest.approx(0.5)
    assert study["violations"] == 0
    assert min(study["delivered_mw_by_period"].values()) >= 0.5 - 1e-3
    r = svc.post("dso-bus9", f"/api/emergencies/{e}/answer",
                 json={"accepted": True, "deliverable_mw": study["deliverable_mw"]})
    assert r.json()["state"] == "accepted"
    tso_msgs = svc.get("tso", f"/api/sessions/{sid}/messages", params={
        "kind": "emergency_answer"}).json()
    assert [m["payload"]["request"] for m in tso_msgs] == [e]
    assert svc.get(A, "/api/sessions/999/emergencies").status_code == 404


def test_dso_sees_offers_on_its_feeders_only(world, default_system):
    svc, sid = world["svc"], world["sid"]
    for dso, feeders in (("dso-bus9", {"case33bw@9"}), ("dso-bus10", {"case33bw@10"}),
                         ("dso-bus4", {"case69@4#1", "case69@4#2"})):
        listed = svc.get(dso, f"/api/sessions/{sid}/offers").json()
        assert listed and {o["feeder_id"] for o in listed} <= feeders
        awards = svc.get(dso, f"/api/sessions/{sid}/awards").json()
        assert {a["feeder_id"] for a in awards} <= feeders
    assert len(svc.get("dso-bus9", f"/api/sessions/{sid}/offers").json()) == 2
    b_offer = world["ids"][(B, "shared-id")]
    assert svc.get("dso-bus9", f"/api/offers/{b_offer}").status_code == 404
    assert svc.get("dso-bus14", f"/api/sessions/{sid}/offers").json() == []


def test_tso_sees_der_offers_only_where_the_scheme_shows_them(world, tmp_path,
                                                               default_system):
    svc, sid = world["svc"], world["sid"]
    assert len(svc.get("tso", f"/api/sessions/{sid}/offers").json()) == 4  # tso_only
    other = make_service(tmp_path)
    local = other.open_session("local")
    r = other.post(A, f"/api/sessions/{local}/offers",
                   json=offer_body(der_of(default_system, A), "a"))
    assert r.status_code == 201
    assert other.get("tso", f"/api/sessions/{local}/offers").json() == []
    assert other.get("tso", f"/api/offers/{r.json()['id']}").status_code == 404
    assert len(other.get("dso-bus9", f"/api/sessions/{local}/offers").json()) == 1


def test_order_book_names_no_owner(world, tmp_path, default_system):
    svc, sid = world["svc"], world["sid"]
    book = svc.get(B, f"/api/sessions/{sid}/orderbook").json()
    text = str(book)
    for name in (A, B, C, "organisation", "der", "offer_id", "feeder"):
        assert name not in text
    # bands: 30 $/MWh steps of A, B, C (3 owners) and 50 $/MWh steps (3 owners)
    assert [(b["price_from"], b["steps"]) for b in book["bands"]] == [(30.0, 4), (50.0, 4)]
    offers = svc.get("market-operator", f"/api/sessions/{sid}/offers").json()
    total = sum(s["quantity_mw"] for o in offers for s in o["steps"])
    assert book["bands"][-1]["cumulative_mw"] + book["withheld_mw"] == pytest.approx(
        total, abs=1e-5)  # the book rounds to 1e-6 MW
    # a band with one owner is withheld: a lone offer cannot be read off the book
    lone = make_service(tmp_path)
    s2 = lone.open_session("tso_only")
    lone.post(A, f"/api/sessions/{s2}/offers",
              json=offer_body(der_of(default_system, A), "a", price=77.0))
    book2 = lone.get(B, f"/api/sessions/{s2}/orderbook").json()
    assert book2["bands"] == [] and book2["withheld_mw"] > 0


def test_missing_scope_is_403_and_keys_carry_scopes(world):
    svc, sid = world["svc"], world["sid"]
    r = svc.post(A, "/api/sessions", json={"name": "x", "gate_open": "2026-12-01T00:00:00Z",
                                           "gate_close": "2026-12-02T00:00:00Z"})
    assert r.status_code == 403 and "sessions:write" in r.json()["detail"]
    assert svc.get(A, "/api/audit").status_code == 403
    assert svc.post("auditor", f"/api/sessions/{sid}/offers",
                    json={"offer_id": "z", "der_id": "z", "steps": [
                        {"quantity_mw": 1, "price_per_mwh": 1}]}).status_code == 403
    # an API key limited to reading offers cannot write them
    with svc.app.state.platform.maker.begin() as s:
        from tsodso.platform.store import add_api_key

        org = s.query(db.Organisation).filter_by(name=A).one()
        key = add_api_key(s, org, "reader", ["offers:read", "sessions:read"])
    headers = {"X-API-Key": key}
    assert svc.client.get(f"/api/sessions/{sid}/offers", headers=headers).status_code == 200
    r = svc.client.post(f"/api/sessions/{sid}/offers", headers=headers,
                        json={"offer_id": "k", "der_id": "z",
                              "steps": [{"quantity_mw": 1, "price_per_mwh": 1}]})
    assert r.status_code == 403
    assert svc.client.get(f"/api/sessions/{sid}/offers",
                          headers={"X-API-Key": key[:-2] + "xx"}).status_code == 401
    from typer.testing import CliRunner

    from tsodso.cli import app as cli

    db_file = str(svc.app.state.platform.data_dir.parent / "platform.sqlite")
    res = CliRunner().invoke(cli, ["platform", "revoke-key", key.split("_")[1], "--db",
                                   db_file])
    assert res.exit_code == 0, res.output
    r = svc.client.get(f"/api/sessions/{sid}/offers", headers=headers)
    assert r.status_code == 401 and "not valid" in r.json()["detail"]


def test_der_lists_follow_the_same_rules(world, default_system):
    svc, sid = world["svc"], world["sid"]
    d = default_system.ders
    mine = svc.get(A, f"/api/sessions/{sid}/ders").json()
    assert {x["der_id"] for x in mine} == set(d[d.aggregator_id == A].der_id)
    assert {x["offerable"] for x in mine} == {True, False}
    assert all(x["why_not"] for x in mine if not x["offerable"])
    area = svc.get("dso-bus4", f"/api/sessions/{sid}/ders").json()
    assert {x["der_id"] for x in area} == set(d[d.feeder_id.isin(["case69@4#1",
                                                                  "case69@4#2"])].der_id)
    assert len(svc.get("tso", f"/api/sessions/{sid}/ders").json()) == len(d)  # tso_only
    assert len(svc.get("auditor", f"/api/sessions/{sid}/ders").json()) == len(d)
