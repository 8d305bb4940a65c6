"""The DSO side: branch-flow OPF of radial feeders with decomposed DLMPs."""

from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult, solve_dso, solve_feeders
from tsodso.dso.tree import FeederTree, feeder_tree

__all__ = ["Boundary", "DsoOpf", "DsoOptions", "DsoResult", "FeederTree", "feeder_tree",
           "solve_dso", "solve_feeders"]
