"""DER penetration sweeps: one row per point, the value of coordination rising with
penetration, resumption after an interruption, and the same rows in process and on a
2-worker Dask cluster."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path
from tsodso.studies import (
    at_penetration,
    coordination_value,
    first_violation,
    penetration_levels,
    read_sweep,
    sweep,
)

runner = CliRunner()
FIGURES = ["total_cost", "gap_to_common_pct", "violations", "delivered_violations",
           "curtailment_mwh", "shed_mwh", "der_revenue", "consumer_payments",
           "der_capacity_mw"]


@pytest.fixture(scope="module")
def recipe():
    """default cut to one feeder and six 4-hour periods."""
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["horizon"] = {"periods": 6, "period_hours": 4.0}
    return r


@pytest.fixture(scope="module")
def full(recipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep") / "full"
    return sweep(recipe, ["tso_only", "local"], [0.0, 1.0, 2.0], [1, 2], out=folder)


def test_one_row_per_point_and_the_value_of_coordination(recipe, full):
    rows = full.rows
    assert len(rows) == 3 * 2 * 3  # levels x seeds x (common, tso_only, local)
    assert not rows.duplicated(["scheme", "penetration", "seed"]).any()
    assert (rows.status.isin(["optimal", "shed"])).all()
    # the penetration scales every DER kind's share: capacity proportional to the level
    cap = rows[rows.scheme == "common"].set_index(["penetration", "seed"]).der_capacity_mw
    for seed in (1, 2):
        assert cap[0.0, seed] == 0.0
        assert cap[2.0, seed] == pytest.approx(2 * cap[1.0, seed], rel=1e-9)
    # the gap is measured against common at the same point, from the rows' own costs
    for _, point in rows.groupby(["penetration", "seed"]):
        common = point[point.scheme == "common"].total_cost.iloc[0]
        np.testing.assert_allclose(point.gap_to_common_pct,
                                   100 * (point.total_cost - common) / common, atol=1e-9)
    curve = coordination_value(rows)
    tso = curve[curve.scheme == "tso_only"].set_index("penetration")
    # no DER, nothing to coordinate; then the value of coordination rises with penetration
    assert abs(tso.value_of_coordination[0.0]) < 1e-3
    assert 0 < tso.value_of_coordination[1.0] < tso.value_of_coordination[2.0]
    assert tso.violations[0.0] == 0 and tso.violations[2.0] > 0
    onset = first_violation(rows, "tso_only")
    violating = rows[(rows.scheme == "tso_only") & (rows.violations > 0)]
    assert onset == violating.penetration.min() == 2.0  # none at the scenario's own fleet
    assert onset == full.first_violation()
    # the system at a point is the scenario's: penetration 1 and its own seed
    same = build_scenario(at_penetration(recipe, 1.0, recipe["seed"]))
    assert list(same.ders.der_id) == list(build_scenario(recipe).ders.der_id)


def test_an_interrupted_sweep_finishes_only_the_missing_points(recipe, full, tmp_path):
    folder = tmp_path / "part"
    seen = []

    def kill_after_two(level, seed, computed):
        seen.append((level, seed))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(recipe, ["tso_only", "local"], [0.0, 1.0, 2.0], [1, 2], out=folder,
              on_point=kill_after_two)
    assert len(list((folder / "points").glob("*.json"))) == 2
    assert len(read_sweep(folder).rows) == 2 * 3
    again = sweep(recipe, ["tso_only", "local"], [0.0, 1.0, 2.0], [1, 2], out=folder)
    assert again.computed == 4 and again.skipped == 2
    pd.testing.assert_frame_equal(again.rows[FIGURES], full.rows[FIGURES])
    with pytest.raises(TsodsoError, match="holds another sweep"):
        sweep(recipe, ["common"], [1.0], [1], out=folder)


def test_a_dask_cluster_gives_the_same_rows(recipe, full):
    pytest.importorskip("distributed")
    on_dask = sweep(recipe, ["tso_only", "local"], [1.0, 2.0], [2], workers=2)
    here = full.rows[(full.rows.penetration > 0) & (full.rows.seed == 2)]
    pd.testing.assert_frame_equal(on_dask.rows[FIGURES].reset_index(drop=True),
                                  here[FIGURES].reset_index(drop=True))


def test_levels_and_bad_input():
    assert penetration_levels("0:2:0.5") == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert penetration_levels("0,1,2") == [0.0, 1.0, 2.0]
    for text, message in (("0:2", "START:STOP:STEP"), ("2:0:1", "START <= STOP"),
                          ("0:2:0", "STEP > 0"), ("-1", ">= 0"), ("1,1", "twice"),
                          ("a", "numbers")):
        with pytest.raises(TsodsoError, match=message):
            penetration_levels(text)
    simbench = {"simbench": {"code": "1-MV-rural--2-sw"}, "seed": 1}
    assert at_penetration(simbench, 0, 1)["simbench"]["code"] == "1-MV-rural--0-sw"
    with pytest.raises(TsodsoError, match="levels 0, 1 and 2"):
        at_penetration(simbench, 0.5, 1)
    with pytest.raises(TsodsoError, match="no DER fleet"):
        at_penetration({"seed": 1}, 1.0, 1)


def test_sweep_cli(recipe, tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(recipe))
    args = ["sweep", str(path), "--schemes", "tso_only", "--penetration", "0,1",
            "--out", str(tmp_path / "s")]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {r["scheme"] for r in data["rows"]} == {"common", "tso_only"}
    assert len(data["rows"]) == 4 and data["computed"] == 2
    assert set(data["rows"][0]) >= {"scheme", "penetration", "seed", "total_cost",
                                    "gap_to_common_pct", "violations", "curtailment_mwh"}
    again = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert again["computed"] == 0 and again["skipped"] == 2 and again["rows"] == data["rows"]
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "value of coordination" in text.output
    for bad, message in ((["--penetration", "x"], "numbers"), (["--seeds", "0"], "--seeds"),
                         (["--schemes", "nope"], "unknown scheme")):
        res = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "b"), *bad])
        assert res.exit_code == 1 and message in res.output, res.output
