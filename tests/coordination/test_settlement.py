"""Settlement as the rules say: statements per party that balance, zonal DER prices, and
the compensation a DSO without a market pays for curtailing scheduled DERs."""

from __future__ import annotations

import pytest
import yaml

from tsodso.coordination import run_scheme
from tsodso.coordination.settlement import Statements
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path


def _system(rules):
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9, 14])]
    r["rules"] = rules
    return build_scenario(r)


def _total(book: dict[str, dict[str, float]]) -> float:
    return sum(v for lines in book.values() for v in lines.values())


def test_zonal_der_prices_keep_the_books_balanced():
    """Under zonal DER settlement (ERCOT pays DERs under 10 MW the load-zone price) the
    market operator keeps the difference to the nodal price: a line of its own."""
    o = run_scheme(_system({"preset": "ercot"}), "tso_only")
    assert "zonal settlement difference" in o.statements["tso"]
    assert abs(_total(o.statements)) < 0.005


def test_without_compensation_rules_the_dso_pays_nothing_for_curtailment():
    paid = run_scheme(_system({"preset": "pjm"}), "tso_only")
    free = run_scheme(_system({"preset": "pjm", "curtailment_compensation": "none"}),
                      "tso_only")
    paid_comp = sum(b.get("curtailment compensation", 0.0)
                    for p, b in paid.statements.items() if p.startswith("aggregator:"))
    assert paid_comp > 0
    assert all("curtailment compensation" not in b for b in free.statements.values())
    assert free.total_cost == pytest.approx(paid.total_cost, rel=1e-9)  # money, not cost
    assert abs(_total(free.statements)) < 0.005


def test_statements_book():
    s = Statements()
    s.add("a", "x", 2.0)
    s.add("a", "x", 1.0)
    s.add("b", "y", -3.0)
    assert s.total("a") == 3.0 and s.imbalance() == 0.0
    assert list(s.frame().columns) == ["party", "line", "amount"] and len(s.frame()) == 2


def test_run_reports_the_ders_the_rules_kept_out(tmp_path):
    """The same fleet under pjm and under a European market of 2012-2017 without pooling
    (5 MW per unit): the small DERs stay out of the TSO market, and run says which, how
    many MW and why."""
    import json

    from typer.testing import CliRunner

    from tsodso.cli import app

    runner = CliRunner()
    recipe = yaml.safe_load(scenario_path("default").read_text())
    recipe["feeders"] = [dict(recipe["feeders"][0], at=[9])]
    rows = {}
    eu = {"preset": "eu", "aggregation_allowed": False}
    for rules in ("pjm", "eu"):
        path = tmp_path / f"{rules}.yaml"
        path.write_text(yaml.safe_dump(dict(recipe, rules=eu if rules == "eu" else rules)))
        result = runner.invoke(app, ["run", str(path), "--scheme", "tso_only", "--json"])
        assert result.exit_code == 0, result.output
        rows[rules] = json.loads(result.stdout)["schemes"]["tso_only"]["kept_out"]
        if rules == "eu":
            text = runner.invoke(app, ["run", str(path), "--scheme", "tso_only"]).output
            assert "kept out of a market by its rules (TSO market:" in text
            assert "below the 5 MW minimum offer" in text
    assert rows["pjm"]["ders"] == 0
    system = build_scenario(dict(recipe, rules=eu))
    size = system.ders.p_max_mw.combine(-system.ders.p_min_mw, max)
    small = size[size < 5.0]  # 5 MW per unit, no pooling
    assert rows["eu"]["ders"] == len(small) > 0
    assert rows["eu"]["mw"] == pytest.approx(small.sum())
    assert rows["eu"]["by_reason"][0]["reason"].startswith("below the 5 MW minimum offer")


def test_reactive_power_is_paid_at_the_q_dlmp_where_the_dso_buys_it():
    """Under the DLMP literature's local market (Q paid) DERs receive their MVAr times the
    reactive DLMP at their bus, consumers pay theirs, the DSO keeps the difference, and the
    books still balance to the cent; under the grid code (pjm) nobody is paid for Q. Each
    party receives its statement as a message from the market operator."""

    paid = _system({"preset": "pjm", "local": {"reactive_paid": True,
                                               "energy_kinds": ["pv", "wind", "dg", "storage",
                                                                "ev", "demand_response"]}})
    o = run_scheme(paid, "common")
    assert abs(_total(o.statements)) < 0.005
    q_rev = {p: b["reactive power"] for p, b in o.statements.items() if "reactive power" in b}
    assert q_rev and any(abs(v) > 0.01 for v in q_rev.values())
    # the DERs' line items, recomputed from the published reactive DLMPs and dispatch
    ders = paid.ders.set_index("der_id")
    expected: dict[str, float] = {}
    for f, dq in o.dlmp_q.items():
        ids = ders.index[ders.feeder_id == f]
        price = dq[ders.bus_id[ids].to_numpy()].to_numpy()
        for der, v in zip(ids, (o.der_reactive[ids].to_numpy() * price).sum(axis=0),
                          strict=True):
            a = f"aggregator:{ders.aggregator_id[der]}"
            expected[a] = expected.get(a, 0.0) + v * paid.profiles.period_hours
    assert q_rev == pytest.approx(expected, abs=1e-6)
    consumers = {p: b["reactive energy"] for p, b in o.statements.items()
                 if p.startswith("consumers:") and p != "consumers:transmission"}
    rents = {p: b["reactive rent"] for p, b in o.statements.items() if p.startswith("dso:")}
    assert len(consumers) == len(rents) == len(paid.dso_feeders)
    assert sum(consumers.values()) + sum(rents.values()) + sum(q_rev.values()) == \
        pytest.approx(0.0, abs=1e-6)
    unpaid = run_scheme(_system("pjm"), "common")
    assert all("reactive power" not in b for b in unpaid.statements.values())
    # the statements as the parties received them
    got = o.messages.loc["settlement_statement", "count"]
    parties = [p for p in o.statements if p == "tso" or p.startswith(("dso:", "aggregator:"))]
    assert got == len(parties)
