"""Transmission grid and single-feeder containers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from tsodso.errors import Issue
from tsodso.model.schema import conform
from tsodso.model.tables import (
    BRANCHES,
    BUSES,
    FEEDER_BUSES,
    FEEDER_LINES,
    FEEDER_LOADS,
    FEEDERS,
    GEN_COST_POINTS,
    GENERATORS,
    LOADS,
)


@dataclass
class TransmissionGrid:
    """A meshed transmission grid in MATPOWER's terms.

    Attributes
    ----------
    name : str
        Case name.
    base_mva : float
        System base for the per-unit impedances in ``branches``, MVA.
    buses, branches, generators, gen_cost_points, loads : pandas.DataFrame
        Tables with the columns declared in :mod:`tsodso.model.tables`.
    """

    name: str = ""
    base_mva: float = 100.0
    buses: pd.DataFrame = field(default_factory=BUSES.empty)
    branches: pd.DataFrame = field(default_factory=BRANCHES.empty)
    generators: pd.DataFrame = field(default_factory=GENERATORS.empty)
    gen_cost_points: pd.DataFrame = field(default_factory=GEN_COST_POINTS.empty)
    loads: pd.DataFrame = field(default_factory=LOADS.empty)
    notes: list[str] = field(default_factory=list)

    TABLES = {
        "buses": BUSES,
        "branches": BRANCHES,
        "generators": GENERATORS,
        "gen_cost_points": GEN_COST_POINTS,
        "loads": LOADS,
    }

    def conform(self) -> list[Issue]:
        """Conform every table to its schema in place; return the issues found."""
        issues: list[Issue] = []
        if not isinstance(self.base_mva, int | float) or not self.base_mva > 0:
            issues.append(Issue("grid", "base_mva", self.name, "must be a number > 0"))
        for attr, schema in self.TABLES.items():
            table, found = conform(getattr(self, attr), schema)
            if not found:  # a table with issues stays as the user gave it
                setattr(self, attr, table)
            issues += found
        return issues

    @property
    def in_service_buses(self) -> pd.DataFrame:
        """Buses that are not isolated (MATPOWER bus type 4)."""
        return self.buses[self.buses.bus_type != 4]


@dataclass
class Feeder:
    """One radial distribution feeder, detached from any system.

    ``info`` is a one-row view of the ``feeders`` table; the other tables carry the feeder's
    rows of the system-wide tables (including their ``feeder_id`` column).
    """

    info: pd.Series
    buses: pd.DataFrame
    lines: pd.DataFrame
    loads: pd.DataFrame

    @property
    def feeder_id(self) -> str:
        return str(self.info["feeder_id"])

    @classmethod
    def from_tables(
        cls,
        info: dict,
        buses: pd.DataFrame,
        lines: pd.DataFrame,
        loads: pd.DataFrame,
    ) -> Feeder:
        """Assemble a feeder from plain tables; ``feeder_id`` columns are filled from ``info``."""
        fid = info["feeder_id"]
        tables = []
        for df, schema in ((buses, FEEDER_BUSES), (lines, FEEDER_LINES), (loads, FEEDER_LOADS)):
            df = df.copy()
            df["feeder_id"] = fid
            tables.append(conform(df, schema)[0])
        row = conform(pd.DataFrame([info]), FEEDERS)[0].iloc[0]
        return cls(row, *tables)
