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
