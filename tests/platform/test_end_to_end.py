"""End to end: three aggregators and a DSO take part in a session on ``default`` through
the API; the gate closes on the market clock and the service clears the session by itself;
its awards, prices and statements equal ``tsodso run default --offers`` on the same offers.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from platform_helpers import START, A, B, C, der_of, make_service, offer_body
from tsodso.cli import app as cli
from tsodso.coordination.run_folder import open_run

SCHEME = "local"


@pytest.fixture(scope="module")
def session(tmp_path_factory, default_system):
    tmp = tmp_path_factory.mktemp("e2e")
    svc = make_service(tmp, gate_poll_s=0.1)
    submitted = []
    with svc.client:  # runs the service's lifespan: the gate watcher
        sid = svc.open_session(SCHEME, hours=1)
        svc.clock.now = START + timedelta(minutes=5)
        plan = [(A, "demand_response", 0, 25.0, 1.0), (A, "demand_response", 1, 35.0, 0.6),
                (A, "pv", 0, 5.0, 1.0), (B, "demand_response", 0, 28.0, 1.0),
                (B, "demand_response", 2, 45.0, 0.5), (C, "demand_response", 0, 20.0, 1.0),
                (C, "demand_response", 3, 60.0, 0.8)]
        for k, (agg, kind, n, price, share) in enumerate(plan):
            der = der_of(default_system, agg, kind=kind, k=n)
            body = offer_body(der, f"offer-{k}", price=price, share=share)
            if k == 1:  # one offer caps its MW in the evening
                body["max_mw"] = [float(der.p_max_mw) * (0.3 if 17 <= t < 22 else 0.6)
                                  for t in range(24)]
            r = svc.post(agg, f"/api/sessions/{sid}/offers", json=body)
            assert r.status_code == 201, r.text
            submitted.append({**body, "aggregator_id": agg, "pk": r.json()["id"]})
        # one aggregator revises an offer before the gate closes: the revision counts
        rev = submitted[3]
        rev["steps"] = [{"quantity_mw": rev["steps"][0]["quantity_mw"], "price_per_mwh": 22.0}]
        r = svc.put(B, f"/api/offers/{rev['pk']}", json={"steps": rev["steps"]})
        assert r.status_code == 200 and r.json()["revision"] == 2
        # the DSO of A's feeder sees (to prequalify) exactly the offers on its feeder
        seen = svc.get("dso-bus9", f"/api/sessions/{sid}/offers").json()
        assert sorted(o["offer_id"] for o in seen) == ["offer-0", "offer-1", "offer-2"]
        svc.clock.now = START + timedelta(hours=1, seconds=1)  # the gate closes
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = svc.get("market-operator", f"/api/sessions/{sid}").json()
            if state["state"] in ("cleared", "failed"):
                break
            time.sleep(0.2)
        assert state["state"] == "cleared", state
        # the CLI on the same offers
        offers_file = tmp / "offers.json"
        offers_file.write_text(json.dumps({"offers": [
            {k: v for k, v in o.items() if k != "pk"} for o in submitted]}))
        out = tmp / "cli-run"
        res = CliRunner().invoke(cli, ["-q", "run", "default", "--scheme", SCHEME,
                                       "--offers", str(offers_file), "--out", str(out)])
        assert res.exit_code == 0, res.output
        yield {"svc": svc, "sid": sid, "state": state, "submitted": submitted,
               "cli": open_run(out).outcomes[SCHEME]}


def test_awards_equal_the_cli_run(session, builtin_outcome):
    svc, sid, cli_outcome = session["svc"], session["sid"], session["cli"]
    # the offers matter: the scenario's standing offers clear differently
    standing = builtin_outcome("default", SCHEME)
    assert abs(standing.total_cost - cli_outcome.total_cost) > 1.0
    awards = svc.get("market-operator", f"/api/sessions/{sid}/awards").json()
    assert len(awards) == len(session["submitted"]) * 24
    for a in awards:
        assert a["awarded_mw"] == cli_outcome.der_dispatch[a["der_id"]].iloc[a["period"]]
        dlmp = cli_outcome.dlmp[a["feeder_id"]][a["bus_id"]].iloc[a["period"]]
        assert a["settlement"] == "dlmp" and a["price_per_mwh"] == dlmp
    # each aggregator reads exactly its own awards, and they are the same numbers
    for agg in (A, B, C):
        own = svc.get(agg, f"/api/sessions/{sid}/awards").json()
        assert sorted((a["offer_id"], a["period"], a["awarded_mw"]) for a in own) == sorted(
            (a["offer_id"], a["period"], a["awarded_mw"]) for a in awards
            if a["organisation_id"] == own[0]["organisation_id"])
    assert session["state"]["total_cost"] == cli_outcome.total_cost
    # the offers moved the dispatch: the capped offer stays within its cap
    capped = session["submitted"][1]
    mw = cli_outcome.der_dispatch[capped["der_id"]].to_numpy()
    assert np.all(mw <= np.asarray(capped["max_mw"]) + 1e-7)


def test_prices_and_statements_equal_the_cli_run(session):
    svc, sid, cli_outcome = session["svc"], session["sid"], session["cli"]
    prices = svc.get(A, f"/api/sessions/{sid}/prices").json()
    lmp = [p for p in prices if p["kind"] == "lmp"]
    assert len(lmp) == cli_outcome.lmp.size
    for p in lmp:
        assert p["price"] == cli_outcome.lmp[p["bus_id"]].iloc[p["period"]]
    for kind, table in (("dlmp_p", cli_outcome.dlmp), ("dlmp_q", cli_outcome.dlmp_q)):
        rows = [p for p in prices if p["kind"] == kind]
        assert len(rows) == sum(f.size for f in table.values())
        for p in rows:
            assert p["price"] == table[p["feeder_id"]][p["bus_id"]].iloc[p["period"]]
    every = svc.get("auditor", f"/api/sessions/{sid}/statements").json()
    assert {(s["party"], s["line"]): s["amount"] for s in every} == {
        (party, line): v for party, lines in cli_outcome.statements.items()
        for line, v in lines.items()}
    assert sum(s["amount"] for s in every) == pytest.approx(0.0, abs=0.01)


def test_the_session_ran_through_the_schemes_parties_and_messages(session):
    svc, sid, cli_outcome = session["svc"], session["sid"], session["cli"]
    messages = svc.get("auditor", f"/api/sessions/{sid}/messages").json()
    kinds = {}
    for m in messages:
        kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
    assert kinds == cli_outcome.messages["count"].to_dict()
    mine = svc.get(C, f"/api/sessions/{sid}/messages").json()
    assert {m["kind"] for m in mine} == {"settlement_statement"}
    # the session's run folder holds the offers it cleared, readable by the CLI
    folder = svc.app.state.platform.data_dir / "sessions" / f"session-{sid}"
    cleared = json.loads((folder / "offers.json").read_text())["offers"]
    assert [(o["offer_id"], o["der_id"], o["steps"]) for o in cleared] == [
        (o["offer_id"], o["der_id"], o["steps"]) for o in session["submitted"]]


def test_the_dso_activates_and_the_aggregator_answers(session, default_system):
    svc, sid = session["svc"], session["sid"]
    awards = svc.get("dso-bus9", f"/api/sessions/{sid}/awards").json()
    dr = [a for a in awards if a["offer_id"] == "offer-0"]
    low = min(dr, key=lambda a: a["awarded_mw"])
    r = svc.post("dso-bus9", f"/api/sessions/{sid}/activations",
                 json={"der_id": low["der_id"], "period": low["period"], "mw": 1e6})
    assert r.status_code == 409 and "headroom" in r.json()["detail"]
    r = svc.post("dso-bus9", f"/api/sessions/{sid}/activations",
                 json={"der_id": low["der_id"], "period": low["period"], "mw": 0.002})
    assert r.status_code == 201, r.text
    act = r.json()["id"]
    r = svc.post(A, f"/api/activations/{act}/acknowledgement", json={"accepted": False})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = svc.post(A, f"/api/activations/{act}/acknowledgement",
                 json={"accepted": False, "reason": "site maintenance"})
    assert r.json()["state"] == "refused"
    # a B DER is not the bus9 DSO's to call
    b_award = next(a for a in svc.get(B, f"/api/sessions/{sid}/awards").json())
    r = svc.post("dso-bus9", f"/api/sessions/{sid}/activations",
                 json={"der_id": b_award["der_id"], "period": 0, "mw": 0.001})
    assert r.status_code == 404


def test_reports_and_charts_by_role(session):
    svc, sid = session["svc"], session["sid"]
    r = svc.get("auditor", f"/api/sessions/{sid}/report")
    assert r.status_code == 200 and "<html" in r.text[:500].lower()
    assert svc.get(A, f"/api/sessions/{sid}/report").status_code == 403
    fig = svc.get(A, f"/api/sessions/{sid}/charts/dlmp", params={"feeder_id": "case33bw@9"})
    assert fig.status_code == 200 and fig.json()["data"]
    assert svc.get(A, f"/api/sessions/{sid}/charts/money_flows").status_code == 403
    assert svc.get("market-operator", f"/api/sessions/{sid}/charts/money_flows"
                   ).status_code == 200


def test_a_session_left_clearing_by_a_stopped_service_clears_on_restart(tmp_path,
                                                                        default_system):
    from tsodso.platform import db

    svc = make_service(tmp_path, gate_poll_s=0.1)
    sid = svc.open_session("tso_only")
    svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(der_of(default_system, A), "a"))
    with svc.app.state.platform.maker.begin() as s:  # as if killed while clearing
        s.get(db.MarketSession, sid).state = "clearing"
    svc.clock.now = START + timedelta(hours=2)
    with svc.client:  # the service starts again
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = svc.get("market-operator", f"/api/sessions/{sid}").json()["state"]
            if state in ("cleared", "failed"):
                break
            time.sleep(0.2)
    assert state == "cleared"
    assert len(svc.get(A, f"/api/sessions/{sid}/awards").json()) == 24
