"""Built-in scenarios shipped with tsodso (YAML recipes in ``scenarios/data``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from tsodso.errors import CaseNotFoundError


def _folder() -> Path:
    return Path(str(resources.files("tsodso.scenarios") / "data"))


def builtin_scenarios() -> dict[str, str]:
    """Name -> one-line description of every built-in scenario."""
    out = {}
    for path in sorted(_folder().glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        text = " ".join(str(data.get("description", "")).split())
        out[path.stem] = text
    return out


def scenario_path(name: str) -> Path:
    """Path of the built-in scenario ``name``."""
    path = _folder() / f"{name}.yaml"
    if not path.is_file():
        raise CaseNotFoundError(
            f"no built-in scenario '{name}'; built-in: {', '.join(builtin_scenarios())}")
    return path
