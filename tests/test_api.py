"""The short Python entry point: ``tsodso.load``, ``run_scheme``, ``SCHEMES``, ``compare``,
``open_run`` and a compact ``System`` repr."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

import tsodso
from tsodso import System, TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path


@pytest.fixture(scope="module")
def small():
    """The default recipe cut to one feeder and 3 periods (no EVs: they arrive at 17 h).
    ``load("default", n_periods=2)`` keeps the scenario's own 24 periods."""
    recipe = yaml.safe_load(scenario_path("default").read_text())
    recipe["name"] = "small"
    recipe["feeders"] = [dict(recipe["feeders"][0], at=[9])]
    recipe["horizon"]["periods"] = 3
    recipe["ders"].pop("ev")
    return build_scenario(recipe)


def test_import_is_light_and_exports_the_entry_points():
    code = ("import sys, tsodso; assert 'tsodso.coordination' not in sys.modules; "
            "assert callable(tsodso.load) and callable(tsodso.run_scheme); "
            "assert len(tsodso.SCHEMES) == 7 and callable(tsodso.open_run); "
            "assert 'tsodso.coordination' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    from tsodso.coordination import SCHEMES, run_scheme
    from tsodso.coordination.run_folder import open_run
    from tsodso.io import load

    assert tsodso.load is load and tsodso.run_scheme is run_scheme
    assert tsodso.SCHEMES is SCHEMES and tsodso.open_run is open_run
    for name in ("load", "run_scheme", "SCHEMES", "compare", "open_run"):
        assert name in tsodso.__all__
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tsodso.nothing  # noqa: B018


def test_system_repr_is_one_short_informative_line(default_system):
    text = repr(default_system)
    kinds = default_system.ders.kind.value_counts().sort_index()
    assert list(kinds.index) == ["demand_response", "ev", "pv", "storage"]
    by_kind = ", ".join(f"{k} {n}" for k, n in kinds.items())
    assert text == ("System('default': grid case14 (14 buses, 20 branches, 5 gens), 6 feeders, "
                    f"{len(default_system.ders)} DERs ({by_kind}), 24 periods x 1 h)")
    assert "\n" not in text and len(text) < 200
    assert str(default_system) == text
    assert repr(System()) == ("System('system': grid ? (0 buses, 0 branches, 0 gens), "
                              "0 feeders, 0 DERs, 1 periods x 1 h)")


def test_repr_never_fails_on_a_broken_system():
    broken = System(name="x")
    broken.ders = None  # type: ignore[assignment]
    broken.profiles = None  # type: ignore[assignment]
    assert repr(broken) == ("System('x': grid ? (0 buses, 0 branches, 0 gens), 0 feeders, "
                            "? DERs, ? periods x ? h)")


def test_compare_gives_one_row_per_scheme(small):
    frame = tsodso.compare(small, ["tso_only", "common", "hierarchical"],
                           options={"hierarchical": {"max_iterations": 1}})
    assert list(frame.index) == ["tso_only", "common", "hierarchical"]
    assert frame.index.name == "scheme"
    assert list(frame.columns[:12]) == list(tsodso.COMPARE_COLUMNS)
    assert frame.loc["common", "gap_to_common_pct"] == 0.0
    assert frame.loc["tso_only", "gap_to_common_pct"] >= -1e-6
    assert frame.loc["hierarchical", "status"] == "not converged"
    assert frame.loc["hierarchical", "iterations"] == 1
    assert (frame["messages"] > 0).all() and np.isfinite(frame["total_cost"]).all()
    one = tsodso.run_scheme(small, "tso_only")
    assert frame.loc["tso_only", "total_cost"] == pytest.approx(one.total_cost, rel=1e-9)


def test_compare_all_schemes_by_default(small):
    frame = tsodso.compare(small, options={"admm": {"rho": 10.0}})
    assert list(frame.index) == list(tsodso.SCHEMES)
    assert frame["gap_to_common_pct"].abs().max() < 1.0


@pytest.mark.parametrize(("schemes", "options", "expected"), [
    (["magic"], None, "unknown scheme 'magic'"),
    (["common", "common"], None, "given twice"),
    ("common", None, "must be a list of scheme names"),
    ([], None, "schemes is empty"),
    (["common"], {"admm": {"rho": 1.0}}, "options for scheme 'admm', which is not run"),
    (["admm"], {"admm": {"rhoo": 1.0}}, "has no option 'rhoo'"),
    (["admm"], {"admm": {"rho": -1.0}}, "rho must be"),
    (["admm"], {"admm": 10}, "must be a dict of option values"),
    (["admm"], [("admm", {})], "options must be a dict"),
])
def test_compare_refuses_bad_arguments_before_running(small, monkeypatch, schemes, options,
                                                      expected):
    import tsodso.coordination as coordination

    def never(*_args, **_kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("a scheme ran")

    monkeypatch.setattr(coordination, "run_scheme", never)
    with pytest.raises(TsodsoError, match=expected):
        tsodso.compare(small, schemes, options=options)


def test_compare_needs_feeders():
    with pytest.raises(TsodsoError, match="no feeders"):
        tsodso.compare(tsodso.load("matpower:case5"), ["common"])
