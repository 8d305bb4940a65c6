"""Market-rule presets: two eras per market, every value with its source."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.rules import PRESETS, MarketRules, get_rules

SOURCED = ("min_offer_mw", "aggregation_allowed", "dr_export_ban", "storage_as",
           "der_settlement", "v2g_allowed")


def test_every_market_has_two_eras_and_every_value_a_source():
    for market in ("pjm", "nyiso", "caiso", "miso", "isone"):
        assert get_rules(market).era == "pre-2222"
        assert get_rules(f"{market}-2222").era == "order-2222"
        assert get_rules(f"{market}-2222").min_offer_mw == 0.1  # Order 2222's 100 kW
    assert {"ercot", "ercot-ader", "eu", "eu-ebgl"} <= set(PRESETS)
    for name, rules in PRESETS.items():
        if name == "custom":
            continue
        said = {s.split(":", 1)[0] for s in rules.sources}
        assert set(SOURCED) <= said, (name, set(SOURCED) - said)
        for line in rules.sources:
            # a cited source with its confidence, or an explicit assumption
            assert re.search(r"\b(high|medium|low|medium-high)\)", line) or \
                "assumed" in line, (name, line)


def test_the_values_the_sources_give():
    assert get_rules("caiso").min_offer_mw == 0.5  # 155 FERC ¶ 61,229 (2016)
    assert get_rules("eu").min_offer_mw == 5.0 and get_rules("eu").aggregation_allowed
    assert get_rules("eu-ebgl").min_offer_mw == 1.0
    assert get_rules("miso").min_offer_mw == 1.0  # DRR type I
    assert get_rules("ercot").zonal_settlement_below_mw == 10.0  # until NPRR917 (2022)
    assert get_rules("ercot-ader").zonal_settlement_below_mw == 1.0
    assert get_rules("nyiso").storage_as == "load"  # batteries regulation only before 2020


def test_rules_command_lists_presets_with_sources():
    runner = CliRunner()
    out = runner.invoke(app, ["rules", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)["presets"]
    assert set(data) == set(PRESETS)
    assert data["caiso"]["min_offer_mw"] == 0.5 and data["caiso"]["sources"]
    assert any("155 FERC" in s for s in data["caiso"]["sources"])
    one = runner.invoke(app, ["rules", "eu"])
    assert one.exit_code == 0 and "regelleistung" in one.output
    bad = runner.invoke(app, ["rules", "pjn"])
    assert bad.exit_code == 1 and "unknown preset" in bad.output


def test_a_value_set_in_a_scenario_loses_the_presets_source():
    r = MarketRules.from_dict({"preset": "caiso", "min_offer_mw": 0.2})
    assert "min_offer_mw: set in the scenario (0.2)" in r.sources
    assert not any(s.startswith("min_offer_mw: FERC") for s in r.sources)
    same = MarketRules.from_dict({"preset": "caiso", "min_offer_mw": 0.5})
    assert same.sources == get_rules("caiso").sources  # the preset's own value: its source


@pytest.mark.parametrize("name", ["pjm", "eu-ebgl"])
def test_presets_round_trip(name):
    rules = get_rules(name)
    assert MarketRules.from_dict(rules.to_dict()) == rules
