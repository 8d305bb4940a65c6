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


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Print the fuzzing suite's size: cases tried per entry point."""
    from fuzzing import TRIED

    if TRIED:
        parts = ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items()))
        terminalreporter.write_line(f"fuzzing: {sum(TRIED.values())} cases tried ({parts})")
