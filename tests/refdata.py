"""Reference values computed outside tsodso (MATPOWER in Octave; see data/reference)."""

from __future__ import annotations

import json
from pathlib import Path

REFERENCE = Path(__file__).parent / "data" / "reference"


def reference(name: str) -> dict:
    """A JSON file of values computed by MATPOWER in Octave (see data/reference/README.md)."""
    return json.loads((REFERENCE / name).read_text())
