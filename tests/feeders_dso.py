"""Feeders for DSO tests, built from MATPOWER's case33bw (Baran & Wu)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsodso.io.feeders import feeder_system
from tsodso.model import System
from tsodso.model.schema import conform
from tsodso.model.tables import DERS


def constrained_case33bw(v_min: float = 0.975, rating_2_3: float = 2.5,
                         reactive: bool = True) -> System:
    """case33bw with a tight voltage band, line 2-3 rated below its base flow and three
    dispatchable DGs: the OPF then has both voltage and thermal limits binding."""
    system = feeder_system("matpower:case33bw")
    system.feeders.loc[0, "v_min_pu"] = v_min
    system.feeder_buses["v_min_pu"] = np.nan
    lines = system.feeder_lines
    lines.loc[(lines.from_bus == 2) & (lines.to_bus == 3), "rating_mva"] = rating_2_3
    s = (lambda v: v) if reactive else (lambda v: np.nan)
    system.ders = conform(pd.DataFrame([
        {"der_id": "dg18", "kind": "dg", "feeder_id": "case33bw", "bus_id": 18,
         "p_max_mw": 1.5, "cost_per_mwh": 35.0, "s_max_mva": s(1.6)},
        {"der_id": "dg33", "kind": "dg", "feeder_id": "case33bw", "bus_id": 33,
         "p_max_mw": 1.0, "cost_per_mwh": 45.0, "s_max_mva": s(1.2)},
        {"der_id": "dg25", "kind": "dg", "feeder_id": "case33bw", "bus_id": 25,
         "p_max_mw": 0.5, "cost_per_mwh": 28.0},
    ]), DERS)[0]
    return system.check()
