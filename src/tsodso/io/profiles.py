"""Real load and renewable profiles from the SimBench data set (installed ``simbench`` package).

SimBench's standard load profiles (``H0-A`` households, ``G0-A`` commerce, ...) are scaled so
that each series' annual peak is 1.0, and its renewable profiles (``PV1``..``PV8``,
``WP1``..``WP12``) are per unit of installed capacity, so both are used as tsodso multipliers
directly: a load's ``p_mw`` is its annual peak, a DER's ``p_max_mw`` its installed capacity.
Data: SimBench (simbench.de), distributed with the simbench package under the ODbL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tsodso.errors import Issue, TsodsoError, ValidationError
from tsodso.io.matpower import _package_dir

STEPS_PER_DAY = 96  # SimBench resolution: 15 minutes
_FILES = {"load": "LoadProfile.csv", "res": "RESProfile.csv"}


def _folder() -> Path:
    return _package_dir("simbench") / "networks" / "1-complete_data-mixed-all-0-sw"


def simbench_columns() -> list[str]:
    """Every SimBench profile column (load then renewable file), without the ``time`` column."""
    columns: list[str] = []
    for fname in _FILES.values():
        header = pd.read_csv(_folder() / fname, sep=";", nrows=0).columns
        columns += [str(c) for c in header if c != "time"]
    return columns


def simbench_series(
    names: dict[str, str], day: int = 180, n_periods: int = 24, period_hours: float = 1.0
) -> pd.DataFrame:
    """Profiles for ``n_periods`` periods starting at 00:00 of ``day`` (0 = 1 January 2016).

    Parameters
    ----------
    names : dict
        tsodso profile name -> SimBench column, e.g. ``{"load": "H0-A_pload", "pv": "PV3"}``.
    day : int
        First day of the horizon, 0..365.
    n_periods : int
        Number of periods.
    period_hours : float
        0.25 (native 15-minute data) or a multiple of it; coarser periods are averages.

    Returns
    -------
    pandas.DataFrame
        One column per tsodso profile name, ``n_periods`` rows of multipliers.
    """
    steps = period_hours / 0.25
    if steps < 1 or abs(steps - round(steps)) > 1e-9:
        raise ValidationError([Issue("profiles", "period_hours", "",
                                     "SimBench profiles need a multiple of 0.25 h")])
    steps = int(round(steps))
    rows = n_periods * steps
    first = day * STEPS_PER_DAY
    if day < 0 or first + rows > 366 * STEPS_PER_DAY:
        raise ValidationError([Issue("profiles", "day", str(day), "horizon runs past the year")])
    header = {kind: pd.read_csv(_folder() / f, sep=";", nrows=0).columns
              for kind, f in _FILES.items()}
    out: dict[str, np.ndarray] = {}
    for kind, fname in _FILES.items():
        wanted = {k: v for k, v in names.items() if v in header[kind] and v != "time"}
        if not wanted:
            continue
        data = pd.read_csv(_folder() / fname, sep=";", usecols=list(set(wanted.values())),
                           skiprows=range(1, 1 + first), nrows=rows)
        for ours, theirs in wanted.items():
            values = data[theirs].to_numpy(dtype=float)
            out[ours] = values.reshape(n_periods, steps).mean(axis=1)
    missing = [f"{k}={v}" for k, v in names.items() if k not in out]
    if missing:
        known = sorted((set(header["load"]) | set(header["res"])) - {"time"})
        raise TsodsoError(f"unknown SimBench profile(s) {', '.join(missing)}; "
                          f"known: {', '.join(known[:12])} ...")
    return pd.DataFrame(out)[list(names)]
