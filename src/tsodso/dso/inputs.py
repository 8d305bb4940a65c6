"""A feeder's data as the DSO OPF sees it, without the optimisation model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsodso.dso.tree import FeederTree, feeder_tree
from tsodso.model.network import Feeder
from tsodso.model.system import System
from tsodso.resources import check_periods


def feeder_load_pq(system: System, feeder: Feeder, tree: FeederTree, periods: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(periods x n) active and reactive load per bus in tree order, MW and MVAr (loads
    times their profile multipliers; positive: consumption)."""
    loads = feeder.loads
    mult = system.profiles.multipliers(loads.profile)[:periods]
    pos = tree.positions(loads.bus_id)
    p = np.zeros((periods, tree.n))
    q = np.zeros((periods, tree.n))
    np.add.at(p.T, pos, (mult * loads.p_mw.to_numpy()).T)
    np.add.at(q.T, pos, (mult * loads.q_mvar.to_numpy()).T)
    return p, q


@dataclass
class FeederInputs:
    """The attributes of a :class:`~tsodso.dso.opf.DsoOpf` that settlement and the AC check
    of a dispatch read (``feeder``, ``tree``, ``T``, ``ders``, ``p_load``, ``q_load``), for a
    feeder whose OPF was solved elsewhere (a Dask worker): a tenth of the cost of building
    the OPF."""

    feeder: Feeder
    tree: FeederTree
    T: int
    ders: pd.DataFrame
    p_load: np.ndarray
    q_load: np.ndarray

    @classmethod
    def of(cls, system: System, feeder_id: str, periods: int | None = None) -> FeederInputs:
        """The inputs of ``feeder_id`` over ``periods`` (default: the system's horizon)."""
        feeder = system.feeder(feeder_id)
        tree = feeder_tree(feeder)
        T = check_periods(periods, system.n_periods, f"system '{system.name}'")
        ders = system.ders[(system.ders.feeder_id == feeder_id).to_numpy()]
        p, q = feeder_load_pq(system, feeder, tree, T)
        return cls(feeder, tree, T, ders.reset_index(drop=True), p, q)
