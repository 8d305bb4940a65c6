"""MATPOWER and PGLib cases load with the totals MATPOWER's own ``loadcase`` gives.

Expected values: tests/data/reference/matpower_loadcase.json, computed by Octave running
MATPOWER's ``loadcase`` on the very same files (so the kW->MW and ohm->pu statements at the
end of distribution cases are MATPOWER's own interpretation).
"""

from __future__ import annotations

import numpy as np
import pytest

from refdata import reference
from tsodso.errors import CaseNotFoundError, ParseError, ValidationError
from tsodso.io import load
from tsodso.io.matpower import load_grid, read_case

LOADCASE = {k: v for k, v in reference("matpower_loadcase.json").items()
            if not k.startswith("_") and k != "skipped"}
# Published cases tsodso refuses because they hold physics it does not model.
REFUSED = {"matpower:case_RTS_GMLC": "DC lines are not modelled"}  # one in-service DC line


def test_every_case_up_to_3000_buses_is_covered():
    from tsodso.io.matpower import available_cases

    ours = {f"matpower:{n}" for n in available_cases("matpower")} | {
        f"pglib:{n}" for n in available_cases("pglib")}
    skipped = {s["key"] for s in reference("matpower_loadcase.json")["skipped"]}
    assert ours - skipped - set(LOADCASE) <= {"matpower:case_SyntheticUSA"} | {
        k for k in ours if "ACTIVSg" in k and k not in LOADCASE}
    assert len(LOADCASE) >= 100


@pytest.mark.parametrize("spec", sorted(REFUSED))
def test_case_with_unmodelled_physics_is_refused(spec):
    with pytest.raises(ValidationError, match=REFUSED[spec]):
        load(spec)


@pytest.mark.parametrize("spec", sorted(set(LOADCASE) - set(REFUSED)))
def test_case_matches_matpower_loadcase(spec):
    ref = LOADCASE[spec]
    system = load(spec)
    summary = system.summary()
    grid = system.grid
    assert len(grid.buses) == ref["n_bus"]
    assert summary["buses"] == ref["n_bus"] - ref["n_bus_isolated"]
    assert summary["branches"] == ref["n_branch_in_service"]
    assert summary["generators"] == ref["n_gen_in_service"]
    assert grid.base_mva == pytest.approx(ref["base_mva"], rel=1e-12)
    assert summary["total_load_mw"] == pytest.approx(ref["total_load_mw"], rel=1e-9, abs=1e-9)
    assert summary["total_load_mvar"] == pytest.approx(ref["total_load_mvar"], rel=1e-9, abs=1e-9)
    if ref["gen_capacity_mw"] in (None, np.inf):  # case59: every PMAX is Inf
        assert np.isinf(summary["gen_capacity_mw"])
    else:
        assert summary["gen_capacity_mw"] == pytest.approx(ref["gen_capacity_mw"], rel=1e-9,
                                                           abs=1e-9)
    br = grid.branches
    assert br.r_pu.sum() == pytest.approx(ref["sum_branch_r"], rel=1e-9, abs=1e-12)
    assert br.x_pu.sum() == pytest.approx(ref["sum_branch_x"], rel=1e-9, abs=1e-12)
    assert br.b_pu.sum() == pytest.approx(ref["sum_branch_b"], rel=1e-9, abs=1e-12)
    models = sorted({1 if m == "piecewise_linear" else 2 for m in grid.generators.cost_model})
    if ref["n_gencost_rows"]:
        assert models == ref["gencost_models"]


def test_case5_costs_and_limits():
    """PJM 5-bus as published (Li & Bo 2010): linear costs 14/15/30/40/10, 400 and 240 MW lines."""
    grid = load_grid("matpower:case5")
    assert grid.generators.cost_c1.tolist() == [14, 15, 30, 40, 10]
    rated = grid.branches.set_index(["from_bus", "to_bus"]).rate_a_mva
    assert rated[(1, 2)] == 400 and rated[(4, 5)] == 240
    assert np.isinf(load_grid("matpower:case14").branches.rate_a_mva).all()  # RATE_A = 0


def test_piecewise_linear_costs():
    grid = load_grid("matpower:case30pwl")
    pwl = grid.generators[grid.generators.cost_model == "piecewise_linear"]
    assert len(pwl) == len(grid.generators)
    points = grid.gen_cost_points[grid.gen_cost_points.gen_id == 1]
    assert points.p_mw.is_monotonic_increasing and len(points) >= 2


def test_non_consecutive_bus_numbers_and_out_of_service():
    grid = load_grid("pglib:pglib_opf_case2869_pegase")
    ids = grid.buses.bus_id.to_numpy()
    assert not np.array_equal(ids, np.arange(1, len(ids) + 1))
    assert set(grid.branches.from_bus) <= set(ids)


def test_conversion_statements_are_run():
    case = read_case("matpower:case141")  # pf = 0.85 then PD, QD scaled in code
    assert case.bus[:, 3].sum() == pytest.approx(case.bus[:, 2].sum() * np.tan(np.arccos(0.85)))
    assert read_case("matpower:case533mt_hi").bus[0, 9] == pytest.approx(135 / np.sqrt(3))


def test_unknown_case_and_bad_file(tmp_path):
    with pytest.raises(CaseNotFoundError, match="case3x.*did you mean"):
        load_grid("matpower:case3x")
    bad = tmp_path / "bad.m"
    bad.write_text("function mpc = bad\nmpc.baseMVA = 100;\nmpc.bus = [1 3 0;\n")
    with pytest.raises(ParseError, match="never closed"):
        load_grid(bad)
    weird = tmp_path / "weird.m"
    weird.write_text("function mpc = weird\nmpc.baseMVA = 100;\n"
                     "mpc.bus = [1 3 0 0 0 0 1 1 0 10 1 1.1 0.9];\n"
                     "mpc.gen = [1 0 0 0 0 1 100 1 10 0];\n"
                     "mpc.branch = [1 1 0 0.1 0 0 0 0 0 0 1 -360 360];\n"
                     "system('touch /tmp/x');\n")
    with pytest.raises(ParseError, match="unsupported statement"):
        load_grid(weird)


def test_version1_case_files_load_as_matpowers_loadcase_reads_them(tmp_path):
    """MATPOWER's own test case t_case9_opf.m is a version-1 function (outputs baseMVA, bus,
    gen, branch, areas, gencost); it loads like its version-2 twin t_case9_opfv2.m and its
    DC-OPF gives MATPOWER's own solution (soln9_dcopf.mat, shipped with the package)."""
    import json

    import scipy.io
    from typer.testing import CliRunner

    from tsodso.cli import app
    from tsodso.io.matpower import case_path

    t = next(p for p in case_path("matpower:case9").parents
             if (p / "lib" / "t" / "t_case9_opf.m").is_file()) / "lib" / "t"
    v1 = read_case(t / "t_case9_opf.m")
    assert v1.gen.shape == (3, 10) and v1.branch.shape == (9, 11) and "areas" in v1.extra
    runner = CliRunner()
    out = {}
    for name in ("t_case9_opf.m", "t_case9_opfv2.m"):
        result = runner.invoke(app, ["tso-opf", str(t / name), "--json"])
        assert result.exit_code == 0, result.output
        out[name] = json.loads(result.stdout)
    ref = scipy.io.loadmat(t / "soln9_dcopf.mat")
    f_ref = float(ref["f_soln"][0, 0])
    lam = dict(zip(ref["bus_soln"][:, 0].astype(int), ref["bus_soln"][:, 13], strict=True))
    for name, data in out.items():
        assert data["objective"] == pytest.approx(f_ref, rel=1e-6), name
        lmp = {int(b): v[0] for b, v in data["lmp"].items()}
        assert lmp == pytest.approx(lam, abs=1e-5), name
    assert out["t_case9_opf.m"]["objective"] == out["t_case9_opfv2.m"]["objective"]
    bad = tmp_path / "odd.m"
    bad.write_text("function [bus, gen] = odd\nbus = [1 3 0 0 0 0 1 1 0 1 1 1.1 0.9];\n")
    with pytest.raises(ParseError, match="version-1 outputs are"):
        read_case(bad)
