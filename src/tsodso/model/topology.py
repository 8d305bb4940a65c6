"""Graph checks for distribution feeders: every feeder must be one radial tree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg  # noqa: F401 - sp.linalg
from scipy.sparse.csgraph import connected_components

from tsodso.errors import Issue


def feeder_topology_issues(
    feeders: pd.DataFrame, buses: pd.DataFrame, lines: pd.DataFrame
) -> list[Issue]:
    """Report feeders that are not connected or not radial (in-service lines only).

    All feeders are checked at once on one graph whose nodes are (feeder, bus) pairs: a feeder
    is a tree iff its buses form one connected component and it has exactly one line fewer than
    buses.
    """
    issues: list[Issue] = []
    if buses.empty:
        return issues
    node = pd.MultiIndex.from_arrays([buses.feeder_id, buses.bus_id])
    live = lines[lines.in_service]
    src = node.get_indexer(pd.MultiIndex.from_arrays([live.feeder_id, live.from_bus]))
    dst = node.get_indexer(pd.MultiIndex.from_arrays([live.feeder_id, live.to_bus]))
    n = len(node)
    graph = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    root_idx = node.get_indexer(pd.MultiIndex.from_arrays([feeders.feeder_id, feeders.root_bus]))
    root_label = dict(zip(feeders.feeder_id, label[root_idx], strict=True))
    n_bus = buses.groupby("feeder_id").size()
    n_line = live.groupby("feeder_id").size().reindex(n_bus.index, fill_value=0)
    self_loop = live.from_bus == live.to_bus
    for fid, lid in zip(live.feeder_id[self_loop], live.line_id[self_loop], strict=True):
        issues.append(
            Issue("feeder_lines", "to_bus", f"{fid}/{lid}", "line connects a bus to itself"))
    for fid in feeders.feeder_id:
        mine = (buses.feeder_id == fid).to_numpy()
        unreached = buses.bus_id.to_numpy()[mine & (label != root_label[fid])]
        if len(unreached):
            listed = ", ".join(map(str, unreached[:8])) + (" ..." if len(unreached) > 8 else "")
            issues.append(Issue("feeders", "root_bus", str(fid),
                                f"feeder is not connected: buses {listed} cannot be reached "
                                "from the root through in-service lines"))
        elif n_line.get(fid, 0) != n_bus.get(fid, 0) - 1:
            issues.append(Issue("feeders", "", str(fid),
                                f"feeder is not radial: {n_line.get(fid, 0)} in-service lines "
                                f"for {n_bus.get(fid, 0)} buses (a tree has one fewer); "
                                "open a switch (in_service: false) to break the loop"))
    return issues


def downstream_load(feeder, values: np.ndarray) -> np.ndarray:  # noqa: ANN001 - Feeder
    """Sum of ``values`` (one per load row) downstream of each line of a radial feeder.

    Returns one value per row of ``feeder.lines``; out-of-service lines get 0. Computed with
    one sparse triangular solve: with ``A`` the child->parent matrix of the tree in
    breadth-first order, the subtree sums ``s`` solve ``(I - A.T) s = load``.
    """
    from scipy.sparse.csgraph import breadth_first_order

    buses = feeder.buses.bus_id.to_numpy()
    pos = pd.Index(buses)
    live = feeder.lines.in_service.to_numpy()
    f = pos.get_indexer(feeder.lines.from_bus.to_numpy()[live])
    t = pos.get_indexer(feeder.lines.to_bus.to_numpy()[live])
    n = len(buses)
    adj = sp.coo_matrix((np.ones(len(f)), (f, t)), shape=(n, n)).tocsr()
    root = pos.get_loc(int(feeder.info["root_bus"]))
    _, parent = breadth_first_order(adj, root, directed=False)
    child = np.flatnonzero(parent >= 0)
    up = sp.coo_matrix((np.ones(len(child)), (child, parent[child])), shape=(n, n))
    bus_load = np.bincount(pos.get_indexer(feeder.loads.bus_id.to_numpy()), weights=values,
                           minlength=n)
    subtree = sp.linalg.spsolve((sp.identity(n) - up.T).tocsc(), bus_load)
    # a line carries the subtree of whichever end is farther from the root
    lower = np.where(parent[t] == f, t, f)
    out = np.zeros(len(feeder.lines))
    out[live] = subtree[lower]
    return out
