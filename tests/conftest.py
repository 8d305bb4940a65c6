"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_system():
    """The built-in default scenario (built once per session; tests must not mutate it)."""
    from tsodso.io import load

    return load("default")


@pytest.fixture(scope="session")
def builtin_outcome():
    """``builtin_outcome(scenario, scheme)``: the scheme's Outcome on a built-in scenario
    with default options, computed once per session (tests must not mutate it)."""
    from tsodso.coordination import run_scheme
    from tsodso.io import load

    systems: dict[str, object] = {}
    cache: dict[tuple[str, str], object] = {}

    def get(scenario: str, scheme: str):
        if (scenario, scheme) not in cache:
            if scenario not in systems:
                systems[scenario] = load(scenario)
            cache[(scenario, scheme)] = run_scheme(systems[scenario], scheme)
        return cache[(scenario, scheme)]

    return get


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    """On a pytest-xdist worker: hand the fuzzing counts to the controller."""
    from fuzzing import TRIED

    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["fuzz_tried"] = dict(TRIED)


def pytest_testnodedown(node, error):  # noqa: ARG001
    """On the pytest-xdist controller: add up the workers' fuzzing counts."""
    from fuzzing import TRIED

    TRIED.update(getattr(node, "workeroutput", {}).get("fuzz_tried", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Print the fuzzing suite's size: cases tried per entry point."""
    from fuzzing import TRIED

    if TRIED:
        parts = ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items()))
        terminalreporter.write_line(f"fuzzing: {sum(TRIED.values())} cases tried ({parts})")
