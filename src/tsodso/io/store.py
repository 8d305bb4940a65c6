"""Write a :class:`System` to a folder (``system.yaml`` + one table file each) and read it back.

The folder is self-describing: ``system.yaml`` holds the name, description, base MVA, market
rules, profile settings, provenance and the table format; ``tables/`` holds every component
table as CSV or Parquet and ``profiles`` as one more table. Reading gives identical tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from tsodso.errors import TsodsoError
from tsodso.model.network import TransmissionGrid
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import ALL_SCHEMAS
from tsodso.rules import MarketRules

Format = Literal["csv", "parquet"]
MANIFEST = "system.yaml"


def _plain(value: Any) -> Any:
    """Make numpy scalars and infinities YAML-safe."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return value


def write_system(system: System, folder: str | Path, fmt: Format = "parquet") -> Path:
    """Write ``system`` into ``folder`` (created if needed); returns the manifest's path."""
    if fmt not in ("csv", "parquet"):
        raise TsodsoError(f"unknown table format '{fmt}': use csv or parquet")
    folder = Path(folder)
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    tables = {**{k: getattr(system.grid, k) for k in TransmissionGrid.TABLES},
              **{k: getattr(system, k) for k in System.TABLES},
              "profiles": system.profiles.series.reset_index(drop=True)}
    for name, table in tables.items():
        path = folder / "tables" / f"{name}.{fmt}"
        if fmt == "csv":
            table.to_csv(path, index=False, float_format="%.17g")
        else:
            table.to_parquet(path, index=False)
    manifest = {
        "format": fmt,
        "name": system.name,
        "description": system.description,
        "grid": {"name": system.grid.name, "base_mva": system.grid.base_mva,
                 "notes": list(system.grid.notes)},
        "profiles": {"period_hours": system.profiles.period_hours,
                     "n_periods": system.profiles.n_periods},
        "rules": system.rules.to_dict(),
        "meta": system.meta,
        "tables": sorted(tables),
    }
    path = folder / MANIFEST
    path.write_text(yaml.safe_dump(_plain(manifest), sort_keys=False))
    return path


def _read_table(path: Path, fmt: str) -> pd.DataFrame:
    if fmt != "csv":
        return pd.read_parquet(path)
    schema = ALL_SCHEMAS.get(path.stem)
    if schema is None:  # profiles: all numeric
        return pd.read_csv(path, keep_default_na=False, na_values=["", "NaN", "nan"],
                           float_precision="round_trip")
    text = [c.name for c in schema.columns if c.dtype == "str"]
    numeric = [c.name for c in schema.columns if c.dtype != "str"]
    # '' is a meaningful string (no profile, no aggregator): never read it as missing
    return pd.read_csv(path, keep_default_na=False, dtype={c: str for c in text},
                       float_precision="round_trip",
                       na_values={c: ["", "NaN", "nan"] for c in numeric})


def read_system(folder: str | Path) -> System:
    """Read a folder written by :func:`write_system` and validate it."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST if folder.is_dir() else folder
    try:
        manifest = yaml.safe_load(manifest_path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise TsodsoError(f"{manifest_path}: cannot read system manifest ({err})") from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise TsodsoError(f"{manifest_path}: not a tsodso system manifest")
    fmt = manifest["format"]
    base = manifest_path.parent / "tables"

    def table(name: str) -> pd.DataFrame | None:
        path = base / f"{name}.{fmt}"
        return _read_table(path, fmt) if path.is_file() else None

    grid_info = manifest.get("grid", {})
    grid = TransmissionGrid(name=str(grid_info.get("name", "")),
                            base_mva=float(grid_info.get("base_mva", 100.0)),
                            notes=list(grid_info.get("notes", [])))
    for name, schema in TransmissionGrid.TABLES.items():
        setattr(grid, name, conform(table(name), schema)[0] if table(name) is None
                else table(name))
    series = table("profiles")
    prof = manifest.get("profiles", {})
    profiles = Profiles(float(prof.get("period_hours", 1.0)), int(prof.get("n_periods", 1)),
                        series if series is not None else pd.DataFrame())
    profiles.series.columns = profiles.series.columns.astype(str)
    rules = MarketRules.from_dict(manifest.get("rules", {}))
    system = System(name=str(manifest.get("name", "")),
                    description=str(manifest.get("description", "")), grid=grid,
                    profiles=profiles, rules=rules, meta=dict(manifest.get("meta") or {}))
    for name in System.TABLES:
        loaded = table(name)
        if loaded is not None:
            setattr(system, name, loaded)
    return system.check()
