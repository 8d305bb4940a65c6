"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_system():
    """The built-in default scenario (built once per session; tests must not mutate it)."""
    from tsodso.io import load

    return load("default")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Print the fuzzing suite's size: cases tried per entry point."""
    from fuzzing import TRIED

    if TRIED:
        parts = ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items()))
        terminalreporter.write_line(f"fuzzing: {sum(TRIED.values())} cases tried ({parts})")
