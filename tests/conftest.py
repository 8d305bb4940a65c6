"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_system():
    """The built-in default scenario (built once per session; tests must not mutate it)."""
    from tsodso.io import load

    return load("default")
