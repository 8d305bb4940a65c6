"""Progress reports: what long work reports, and that nothing is drawn unless asked."""

from __future__ import annotations

import io

import pytest
from typer.testing import CliRunner

from tsodso import progress
from tsodso.cli import app
from tsodso.coordination import run_schemes
from tsodso.io import load

runner = CliRunner()


@pytest.fixture(scope="module")
def system():
    return load("default")


def test_schemes_and_iterations_report_their_progress(system):
    rec = progress.RecordingReporter()
    with progress.reporting(rec):
        run_schemes(system, ["hierarchical", "tso_only"], {"hierarchical":
                                                          {"max_iterations": 3}})
    starts = [(d, total) for e, d, total in rec.events if e == "start"]
    assert starts[0] == ("schemes", 2)
    assert ("hierarchical iterations", 3) in starts
    iterations = [info for e, d, info in rec.events
                  if e == "advance" and d == "hierarchical iterations"]
    assert len(iterations) == 3 and all("MW" in i and "$/MWh" in i for i in iterations)
    done = [info for e, d, info in rec.events if e == "advance" and d == "schemes"]
    assert done == ["hierarchical done", "tso_only done"]
    assert [e for e, _, _ in rec.events].count("finish") == len(starts)


def test_nobody_listens_by_default():
    with progress.task("anything", total=2) as step:
        step()
        step(info="x")  # no reporter: nothing happens, nothing fails


def test_rich_bars_draw_on_their_stream_and_vanish():
    stream = io.StringIO()
    bars = progress.RichProgress(stream, force_terminal=True)
    with bars, progress.reporting(bars), progress.task("solving", total=2) as step:
        step(info="first")
        bars._progress.refresh()  # noqa: SLF001 - draw now, not at the next tick
        assert "solving" in stream.getvalue() and "1/2" in stream.getvalue()
        step(info="second")


def test_quiet_and_verbose(system):
    both = runner.invoke(app, ["--quiet", "--verbose", "scenarios"])
    assert both.exit_code == 1 and "not both" in both.output
    quiet = runner.invoke(app, ["--quiet", "run", "default", "--scheme", "tso_only"])
    assert quiet.exit_code == 0, quiet.output
    assert "tso_only" in quiet.output and "gap %: total cost" not in quiet.output
    verbose = runner.invoke(app, ["--verbose", "run", "default", "--scheme", "tso_only"])
    assert verbose.exit_code == 0, verbose.output
    assert "costs and money flows" in verbose.output and "consumers pay" in verbose.output
    assert "gap %: total cost" in verbose.output
