"""Forecasts: what the parties expect ahead of time, against what happens.

The scenario's profiles are what happens (the *actual* series). A forecast multiplies each
load profile and each renewable availability profile by ``1 + e_t`` with ``e_t`` drawn from
a normal distribution of standard deviation ``load_sigma`` or ``renewable_sigma`` (a
fraction), independently per period and profile, seeded by ``seed`` and the profile's name:
the same seed gives the same forecast, whatever else the scenario holds. Renewable
availability stays within ``[0, 1]`` (never above the installed capacity) and loads at or
above zero. Zero sigmas give the actual series (a perfect forecast).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tsodso.errors import Issue, ValidationError
from tsodso.model.system import System

RENEWABLE_KINDS = ("pv", "wind")


@dataclass(frozen=True)
class ForecastErrors:
    """Forecast error model (see the module docstring).

    Attributes
    ----------
    load_sigma : float
        Standard deviation of the relative load forecast error (0.03 = 3 %).
    renewable_sigma : float
        Standard deviation of the relative PV and wind availability forecast error.
    seed : int
        Seed of the draws.
    """

    load_sigma: float = 0.0
    renewable_sigma: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        issues = [Issue("forecast", name, str(getattr(self, name)), "must be a number >= 0")
                  for name in ("load_sigma", "renewable_sigma")
                  if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0)]
        if not (isinstance(self.seed, int | np.integer) and self.seed >= 0):
            issues.append(Issue("forecast", "seed", str(self.seed), "must be an integer >= 0"))
        if issues:
            raise ValidationError(issues)

    @property
    def perfect(self) -> bool:
        """Whether forecasts equal what happens."""
        return self.load_sigma == 0 and self.renewable_sigma == 0


def _profile_roles(system: System) -> tuple[set[str], set[str]]:
    """Names of the profiles that scale loads, and of those that give renewable
    availability."""
    loads = set(system.grid.loads.profile) | set(system.feeder_loads.profile)
    d = system.ders
    renewable = set(d.profile[d.kind.isin(RENEWABLE_KINDS)])
    return loads - {""}, renewable - {""}


def forecast_system(system: System, errors: ForecastErrors) -> System:
    """``system`` with its load and renewable profiles replaced by their forecasts."""
    if errors.perfect:
        return system
    loads, renewable = _profile_roles(system)
    series = system.profiles.series.copy()
    for name in series.columns:
        sigma = errors.renewable_sigma if name in renewable else (
            errors.load_sigma if name in loads else 0.0)
        if sigma == 0:
            continue
        rng = np.random.default_rng([errors.seed, zlib.crc32(str(name).encode())])
        draw = 1.0 + sigma * rng.standard_normal(len(series))
        values = series[name].to_numpy(float) * draw
        high = 1.0 if name in renewable and name not in loads else np.inf
        series[name] = np.clip(values, 0.0, high)
    return replace(system, profiles=replace(system.profiles, series=series),
                   meta=dict(system.meta))


def realised_now(forecast: System, actual: System, period: int) -> System:
    """The forecast system with period ``period`` replaced by what happens (the real-time
    view: the current period is measured, later ones are still forecast)."""
    series = forecast.profiles.series.copy()
    now = actual.profiles.series.iloc[period]
    series.iloc[period] = now[series.columns].to_numpy()
    return replace(forecast, profiles=replace(forecast.profiles, series=series),
                   meta=dict(forecast.meta))


def forecast_errors_table(forecast: System, actual: System) -> pd.DataFrame:
    """Per period and profile, the forecast less the actual multiplier."""
    f, a = forecast.profiles.series, actual.profiles.series
    return f[a.columns] - a


__all__ = ["ForecastErrors", "forecast_errors_table", "forecast_system", "realised_now"]
