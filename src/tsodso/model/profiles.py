"""Per-period series: load scaling and renewable availability."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsodso.errors import Issue
from tsodso.model.schema import as_numbers


@dataclass
class Profiles:
    """Time series shared by the loads and DERs of a system.

    Attributes
    ----------
    period_hours : float
        Length of one period, hours (1.0 hourly, 0.25 for 15-minute data).
    n_periods : int
        Number of periods in the horizon.
    series : pandas.DataFrame
        One column per profile name, ``n_periods`` rows (index = period 0..n-1). Values are
        dimensionless multipliers: a load's ``p_mw`` or a DER's ``p_max_mw`` times the value
        gives the period's MW. A component whose ``profile`` is ``""`` is flat (multiplier 1).
    """

    period_hours: float = 1.0
    n_periods: int = 1
    series: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        if self.series is None:
            self.series = pd.DataFrame()

    def multipliers(self, names: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        """Matrix (periods x components) of multipliers for the given profile names."""
        names = np.asarray(names, dtype=object)
        out = np.ones((self.n_periods, len(names)))
        for name in pd.unique(names):
            if name == "":
                continue
            out[:, names == name] = self.series[name].to_numpy(dtype=float)[:, None]
        return out

    def issues(self, referenced: dict[str, set[str]]) -> list[Issue]:
        """Problems with the series themselves and with the names ``referenced`` by tables."""
        issues: list[Issue] = []
        if not isinstance(self.n_periods, int | np.integer) or self.n_periods < 1:
            issues.append(Issue("profiles", "n_periods", "", "must be an integer >= 1"))
        if not (isinstance(self.period_hours, float | int) and self.period_hours > 0):
            issues.append(Issue("profiles", "period_hours", "", "must be > 0"))
        for name in self.series.columns:
            # text is parsed by Python (pandas' to_numeric crashes on huge exponents)
            values = as_numbers(self.series[name]).to_numpy(dtype=float)
            if len(values) != self.n_periods:
                issues.append(Issue("profiles", "series", str(name),
                                    f"has {len(values)} periods, the horizon has {self.n_periods}"))
            bad = ~np.isfinite(values)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                issues.append(Issue("profiles", "series", str(name),
                                    f"NaN, infinite or non-numeric value at period {first}"))
            elif (values < 0).any():
                issues.append(Issue("profiles", "series", str(name), "negative multiplier"))
        for table, names in referenced.items():
            for name in sorted(names - set(map(str, self.series.columns)) - {""}):
                issues.append(Issue(table, "profile", name, "refers to an unknown profile"))
        return issues
