"""The operator platform's tests need its extra (FastAPI, ...); helpers are in
``tests/platform_helpers.py``."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the platform extra is not installed")
