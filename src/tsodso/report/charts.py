"""Interactive charts of coordination outcomes (Plotly figures).

Every function takes results (one :class:`~tsodso.coordination.Outcome`, a mapping of
scheme name to outcome as a run folder holds them, and where it needs the grid the
:class:`~tsodso.model.System`) and returns a ``plotly.graph_objects.Figure``; nothing is
computed that the results do not hold. Units are in the axis titles: costs in $, prices in
$/MWh, power in MW, voltages in pu. Plotly is an optional dependency
(``pip install "tsodso[plot]"``); :func:`plotly_modules` says so when it is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tsodso.errors import TsodsoError
from tsodso.model.system import System

#: Colours of the schemes, in the order ``tsodso schemes`` lists them.
SCHEME_COLOURS = {"tso_only": "#d62728", "centralized": "#ff7f0e", "local": "#2ca02c",
                  "shared_balancing": "#9467bd", "common": "#1f77b4",
                  "hierarchical": "#8c564b", "admm": "#17becf"}
#: Colours of the DER kinds.
KIND_COLOURS = {"pv": "#f2c12e", "wind": "#6baed6", "storage": "#756bb1", "ev": "#31a354",
                "demand_response": "#e6550d", "dg": "#636363"}


def plotly_modules() -> tuple[Any, Any]:
    """``(plotly.graph_objects, plotly.subplots.make_subplots)``, or a clear error naming the
    extra to install."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise TsodsoError('charts need Plotly: pip install "tsodso[plot]"') from err
    return go, make_subplots


def _outcomes(outcomes: Mapping[str, Any]) -> dict[str, Any]:
    """The outcomes that finished (a scheme that failed is a SolveError in a run)."""
    from tsodso.coordination.outcome import Outcome

    return {k: v for k, v in outcomes.items() if isinstance(v, Outcome)}


def _colour(scheme: str) -> str:
    return SCHEME_COLOURS.get(scheme, "#7f7f7f")


# ------------------------------------------------------------------ comparison
def comparison(outcomes: Mapping[str, Any]) -> Any:
    """Four panels, one bar per scheme: total cost ($, the gap to ``common`` in % as text,
    or to the cheapest scheme when common did not run), AC violations (bus x period
    voltage and element x period thermal counts of the market dispatch), renewable
    curtailment (MWh) and messages exchanged."""
    go, make_subplots = plotly_modules()
    done = _outcomes(outcomes)
    names = list(done)
    costs = np.array([done[n].total_cost for n in names])
    # the gap to common (the joint optimum) where it ran, else to the cheapest scheme
    best = done["common"].total_cost if "common" in done else (
        costs.min() if len(costs) else 0.0)
    reference = "common" if "common" in done else "the cheapest"
    gap = 100 * (costs - best) / abs(best) if best else np.zeros_like(costs)
    fig = make_subplots(rows=2, cols=2, subplot_titles=(
        "Total cost ($)", "AC violations of the market dispatch (count)",
        "Renewable curtailment (MWh)", "Messages exchanged (count)"))
    colours = [_colour(n) for n in names]
    fig.add_trace(go.Bar(x=names, y=costs, marker_color=colours, name="total cost",
                         text=[f"{g:+.2f} %" for g in gap], customdata=gap,
                         hovertemplate="%{x}: %{y:,.0f} $ (%{customdata:+.3f} % against "
                                       f"{reference})<extra></extra>"), row=1, col=1)
    summary = [done[n].violation_summary() for n in names]
    fig.add_trace(go.Bar(x=names, y=[s["voltage"] for s in summary], name="voltage (bus x "
                         "period)", marker_color="#4c72b0"), row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=[s["thermal"] for s in summary], name="thermal (element "
                         "x period)", marker_color="#c44e52"), row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=[done[n].curtailed_mwh for n in names],
                         marker_color=colours, name="curtailment", showlegend=False),
                  row=2, col=1)
    fig.add_trace(go.Bar(x=names, y=[int(done[n].messages["count"].sum())
                                     if len(done[n].messages) else 0 for n in names],
                         marker_color=colours, name="messages", showlegend=False),
                  row=2, col=2)
    fig.update_layout(barmode="group", height=640, title="Coordination schemes compared",
                      legend={"orientation": "h", "y": -0.12})
    return fig


def money_flows(outcomes: Mapping[str, Any]) -> Any:
    """Who pays and who is paid, per scheme ($ over the horizon): consumers pay (shown
    negative), generators and each aggregator's DERs are paid, and the rents (transmission
    congestion, distribution losses and congestion, interface) close the balance."""
    go, _ = plotly_modules()
    done = _outcomes(outcomes)
    names = list(done)
    series: dict[str, list[float]] = {"consumers": [-done[n].consumer_payments for n in names],
                                      "generators": [done[n].generator_revenues
                                                     for n in names]}
    aggregators = sorted({a for n in names for a in done[n].der_revenues})
    for a in aggregators:
        series[f"DERs of {a}"] = [done[n].der_revenues.get(a, 0.0) for n in names]
    for rent in ("transmission", "distribution", "interface"):
        series[f"{rent} rent"] = [done[n].rents.get(rent, 0.0) for n in names]
    palette = ["#1b9e77", "#66a61e", "#e6ab02", "#a6761d", "#7570b3", "#e7298a",
               "#17becf", "#bcbd22", "#8c564b", "#9edae5"]
    colours = {"consumers": "#2b5c8a", "generators": "#7f7f7f",
               "transmission rent": "#d62728", "distribution rent": "#ff9896",
               "interface rent": "#c49c94"}
    for i, a in enumerate(aggregators):
        colours[f"DERs of {a}"] = palette[i % len(palette)]
    fig = go.Figure([go.Bar(x=names, y=v, name=k, marker_color=colours[k],
                            hovertemplate=f"{k}: %{{y:,.0f}} $<extra>%{{x}}</extra>")
                     for k, v in series.items()])
    fig.update_layout(barmode="relative", height=480, yaxis_title="$ over the horizon "
                      "(paid +, paying -)", title="Money flows per actor")
    return fig


# ------------------------------------------------------------------ prices
def dlmp_heatmap(outcome: Any, feeder_id: str, which: str = "p") -> Any:
    """Bus x period heatmap of a feeder's DLMPs (``which`` ``"p"``: $/MWh, ``"q"``:
    $/MVArh); hovering a cell shows its components (energy, loss, congestion, voltage)."""
    go, _ = plotly_modules()
    if which not in ("p", "q"):
        raise TsodsoError(f"which must be 'p' or 'q', got {which!r}")
    table = (outcome.dlmp if which == "p" else outcome.dlmp_q).get(feeder_id)
    if table is None:
        raise TsodsoError(f"{outcome.scheme}: no DLMPs for feeder {feeder_id}; have "
                          f"{', '.join(outcome.dlmp) or 'none'}")
    parts = {k.split(":", 1)[1]: v for k, v in
             outcome.dlmp_components.get(feeder_id, {}).items() if k.startswith(f"{which}:")}
    z = table.to_numpy().T
    hover = "bus %{y}, period %{x}: %{z:.2f}"
    custom = None
    if parts:
        names = list(parts)
        custom = np.stack([parts[n].reindex(columns=table.columns).to_numpy().T
                           for n in names], axis=-1)
        hover += "".join(f"<br>{n}: %{{customdata[{i}]:.2f}}" for i, n in enumerate(names))
    unit = "$/MWh" if which == "p" else "$/MVArh"
    fig = go.Figure(go.Heatmap(z=z, x=list(table.index), y=[str(b) for b in table.columns],
                               colorscale="Viridis", colorbar={"title": unit},
                               customdata=custom, hovertemplate=hover + "<extra></extra>"))
    fig.update_layout(title=f"{'Active' if which == 'p' else 'Reactive'}-power DLMPs of "
                            f"{feeder_id} ({outcome.scheme})",
                      xaxis_title="period", yaxis_title="bus", height=520)
    return fig


def interface_prices(outcomes: Mapping[str, Any], feeder_id: str) -> Any:
    """The interface LMP of one feeder per scheme ($/MWh per period)."""
    go, _ = plotly_modules()
    fig = go.Figure()
    for name, out in _outcomes(outcomes).items():
        if feeder_id in out.interface_lmp:
            fig.add_trace(go.Scatter(x=list(out.interface_lmp.index),
                                     y=out.interface_lmp[feeder_id], name=name,
                                     line={"color": _colour(name)}))
    fig.update_layout(title=f"Interface LMP of {feeder_id}", xaxis_title="period",
                      yaxis_title="$/MWh", height=420)
    return fig


# ------------------------------------------------------------------ operation
def interface_schedules(outcomes: Mapping[str, Any], feeder_id: str) -> Any:
    """The import of one feeder at its interface per scheme (MW per period, + = from
    transmission into the feeder)."""
    go, _ = plotly_modules()
    fig = go.Figure()
    for name, out in _outcomes(outcomes).items():
        if feeder_id in out.interface_schedules:
            fig.add_trace(go.Scatter(x=list(out.interface_schedules.index),
                                     y=out.interface_schedules[feeder_id], name=name,
                                     line={"color": _colour(name)}))
    fig.update_layout(title=f"Interface schedule of {feeder_id} (import +)",
                      xaxis_title="period", yaxis_title="MW", height=420)
    return fig


def voltage_profiles(outcomes: Mapping[str, Any], system: System, feeder_id: str) -> Any:
    """Voltage along a feeder (buses in order of electrical distance from the substation)
    per scheme, with the feeder's limits; a slider picks the period. Voltages are the AC
    power flow of the market dispatch, whose violations the run reports."""
    go, _ = plotly_modules()
    feeder = system.feeder(feeder_id)
    order = _distance_order(system, feeder_id)
    info = feeder.info
    done = {n: o for n, o in _outcomes(outcomes).items() if feeder_id in o.voltages}
    if not done:
        raise TsodsoError(f"no voltages of feeder {feeder_id} in these outcomes")
    periods = list(next(iter(done.values())).voltages[feeder_id].index)
    fig = go.Figure()
    labels = [str(b) for b in order]
    for k, t in enumerate(periods):
        for name, out in done.items():
            v = out.voltages[feeder_id].reindex(columns=order).loc[t]
            fig.add_trace(go.Scatter(x=labels, y=v, name=name, visible=k == 0,
                                     line={"color": _colour(name)},
                                     legendgroup=name, showlegend=True))
    n = len(done)
    for limit in ("v_min_pu", "v_max_pu"):
        fig.add_hline(y=float(info[limit]), line_dash="dash", line_color="#555",
                      annotation_text=limit)
    steps = []
    for k, t in enumerate(periods):
        visible = [False] * (n * len(periods))
        visible[k * n:(k + 1) * n] = [True] * n
        steps.append({"method": "update", "label": str(t), "args": [{"visible": visible}]})
    fig.update_layout(title=f"Voltage profile of {feeder_id}", xaxis_title="bus (from the "
                      "substation outwards)", yaxis_title="pu", height=480,
                      sliders=[{"active": 0, "currentvalue": {"prefix": "period "},
                                "steps": steps}])
    return fig


def der_dispatch(outcome: Any, system: System) -> Any:
    """DER output summed by kind per period (MW, injection +, consumption -), stacked."""
    go, _ = plotly_modules()
    d = outcome.der_dispatch
    if d.empty:
        raise TsodsoError(f"{outcome.scheme}: the outcome holds no DER dispatch")
    kinds = system.ders.set_index("der_id").kind.reindex(d.columns)
    by_kind = d.T.groupby(kinds.to_numpy()).sum().T
    fig = go.Figure([go.Bar(x=list(by_kind.index), y=by_kind[k], name=k,
                            marker_color=KIND_COLOURS.get(k, "#999")) for k in by_kind])
    fig.update_layout(barmode="relative", title=f"DER dispatch by kind ({outcome.scheme})",
                      xaxis_title="period", yaxis_title="MW (injection +)", height=420)
    return fig


def residuals(outcome: Any) -> Any:
    """Residuals per iteration of an iterative scheme (ADMM: primal and dual residual, MW;
    hierarchical: quantity residual, MW, and price residual, $/MWh), log scale."""
    go, _ = plotly_modules()
    r = outcome.residuals
    if r is None or r.empty:
        raise TsodsoError(f"{outcome.scheme}: no residuals (not an iterative scheme)")
    fig = go.Figure([go.Scatter(x=r.iteration, y=r[c].replace(np.inf, np.nan), name=c,
                                mode="lines+markers")
                     for c in r.columns if c not in ("iteration", "rho")])
    fig.update_layout(title=f"Convergence of {outcome.scheme}", xaxis_title="iteration",
                      yaxis_title="residual (MW or $/MWh)", yaxis_type="log", height=400)
    return fig


def hosting_capacity(table: pd.DataFrame, feeder_id: str, kind: str = "pv") -> Any:
    """Hosting capacity per bus (MW, AC-verified) with the OPF's estimate, each bar
    coloured by the limit that binds first (undervoltage, overvoltage, overload) and the
    period on hover; ``table`` as :func:`tsodso.dso.hosting_capacity.hosting_capacity`
    returns it."""
    go, _ = plotly_modules()
    limit_colours = {"overvoltage": "#d62728", "undervoltage": "#1f77b4",
                     "overload": "#ff7f0e"}
    fig = go.Figure()
    for limit, rows in table.groupby("limit", sort=True):
        fig.add_trace(go.Bar(x=rows.bus_id.astype(str), y=rows.hosting_mw, name=str(limit),
                             marker_color=limit_colours.get(str(limit), "#7f7f7f"),
                             customdata=rows.period,
                             hovertemplate="bus %{x}: %{y:.3f} MW (" + str(limit)
                                           + ", period %{customdata})<extra></extra>"))
    fig.add_trace(go.Scatter(x=table.bus_id.astype(str), y=table.opf_mw, mode="markers",
                             name="OPF estimate", marker={"symbol": "x", "color": "#222"}))
    fig.update_layout(title=f"Hosting capacity of {feeder_id} ({kind})", height=460,
                      xaxis_title="bus", yaxis_title="MW (AC-verified)",
                      xaxis={"categoryorder": "array",
                             "categoryarray": [str(b) for b in table.bus_id]})
    return fig


# ------------------------------------------------------------------ the grid
def _distance_order(system: System, feeder_id: str) -> list[int]:
    """A feeder's buses from the root outwards (breadth first, as its OPF orders them)."""
    from tsodso.dso.tree import feeder_tree

    return [int(b) for b in feeder_tree(system.feeder(feeder_id)).bus_ids]


def grid_layout(system: System, seed: int = 0) -> dict[tuple[str, int], tuple[float, float]]:
    """Positions of every bus to draw: transmission buses (``("tso", bus)``) by a
    Kamada-Kawai layout of the grid, each feeder's buses (``(feeder_id, bus)``) as a radial
    tree fanned out from its interface bus, away from the grid's centre (several feeders at
    one bus side by side). Deterministic (``seed`` only breaks ties of a degenerate grid)."""
    import networkx as nx

    grid = system.grid
    g = nx.Graph()
    g.add_nodes_from(int(b) for b in grid.buses.bus_id)
    br = grid.branches[grid.branches.in_service]
    g.add_edges_from(zip(br.from_bus.astype(int), br.to_bus.astype(int), strict=True))
    if len(g) > 1:
        tx = nx.kamada_kawai_layout(g, pos=nx.circular_layout(g))
    else:
        tx = {n: np.zeros(2) for n in g}
    pos: dict[tuple[str, int], tuple[float, float]] = {
        ("tso", int(n)): (float(p[0]), float(p[1])) for n, p in tx.items()}
    xy = np.array(list(pos.values())) if pos else np.zeros((1, 2))
    centre = xy.mean(axis=0)
    extent = float(np.ptp(xy, axis=0).max()) or 1.0
    by_bus: dict[int, list[str]] = {}
    for fid, bus in zip(system.feeders.feeder_id, system.feeders.interface_bus, strict=True):
        by_bus.setdefault(int(bus), []).append(str(fid))
    rng = np.random.default_rng(seed)
    for bus, feeders in by_bus.items():
        anchor = np.array(pos.get(("tso", bus), (0.0, 0.0)))
        out = anchor - centre
        base = (float(np.arctan2(out[1], out[0])) if np.hypot(*out) > 1e-9
                else float(rng.uniform(0, 2 * np.pi)))
        wedge = min(1.4, 2.4 / len(feeders))
        for k, fid in enumerate(feeders):
            mid = base + (k - (len(feeders) - 1) / 2) * wedge
            for b, (radius, angle) in _radial_tree(system, fid, wedge * 0.9).items():
                r = extent * (0.03 + 0.22 * radius)
                pos[(fid, b)] = (float(anchor[0] + r * np.cos(mid + angle)),
                                 float(anchor[1] + r * np.sin(mid + angle)))
    return pos


def _radial_tree(system: System, feeder_id: str, wedge: float
                 ) -> dict[int, tuple[float, float]]:
    """Each feeder bus's (radius in 0..1 by depth, angle within +-wedge/2 rad): leaves
    spread evenly in depth-first order, every other bus at the mean angle of its leaves."""
    from tsodso.dso.tree import feeder_tree

    tree = feeder_tree(system.feeder(feeder_id))
    n, parent = tree.n, tree.parent
    kids: list[list[int]] = [[] for _ in range(n)]
    depth = np.zeros(n, dtype=int)
    for j in range(1, n):  # breadth-first: a parent comes before its children
        kids[parent[j]].append(j)
        depth[j] = depth[parent[j]] + 1
    order, stack = [], [0]
    while stack:  # depth-first preorder from the root
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(kids[j]))
    leaves = [j for j in order if not kids[j]]
    slot = {j: i for i, j in enumerate(leaves)}
    angle = np.zeros(n)
    for j in reversed(order):
        angle[j] = (float(np.mean(angle[kids[j]])) if kids[j]
                    else ((slot[j] + 0.5) / len(leaves) - 0.5) * wedge)
    deepest = max(int(depth.max()), 1)
    return {int(tree.bus_ids[j]): (depth[j] / deepest, float(angle[j])) for j in range(n)}


def grid_prices(outcome: Any, system: System) -> Any:
    """The transmission grid and the feeders, each bus coloured by its price: LMP at
    transmission buses, DLMP at feeder buses ($/MWh); a slider picks the period. Drawn from
    a computed layout (:func:`grid_layout`)."""
    go, _ = plotly_modules()
    pos = grid_layout(system)
    g = system.grid
    br = g.branches[g.branches.in_service]
    ex, ey = [], []
    for a, b in zip(br.from_bus.astype(int), br.to_bus.astype(int), strict=True):
        (x0, y0), (x1, y1) = pos[("tso", a)], pos[("tso", b)]
        ex += [x0, x1, None]
        ey += [y0, y1, None]
    fx, fy = [], []
    for fid, bus in zip(system.feeders.feeder_id, system.feeders.interface_bus, strict=True):
        f = system.feeder(str(fid))
        lines = f.lines[f.lines.in_service]
        for a, b in zip(lines.from_bus.astype(int), lines.to_bus.astype(int), strict=True):
            (x0, y0), (x1, y1) = pos[(str(fid), a)], pos[(str(fid), b)]
            fx += [x0, x1, None]
            fy += [y0, y1, None]
        (x0, y0) = pos[("tso", int(bus))]
        (x1, y1) = pos[(str(fid), int(f.info.root_bus))]
        fx += [x0, x1, None]
        fy += [y0, y1, None]
    keys = list(pos)
    lmp = outcome.lmp
    periods = list(lmp.index) if len(lmp) else list(next(iter(outcome.dlmp.values())).index)
    values = np.full((len(periods), len(keys)), np.nan)
    for j, (where, bus) in enumerate(keys):
        table = lmp if where == "tso" else outcome.dlmp.get(where)
        if table is not None and bus in table.columns:
            values[:, j] = table[bus].to_numpy()[: len(periods)]
    lo, hi = np.nanmin(values), np.nanmax(values)
    text = [f"{'bus' if w == 'tso' else w + ' bus'} {b}" for w, b in keys]
    size = [11 if w == "tso" else 6 for w, _ in keys]
    fig = go.Figure([
        go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#444", "width": 2},
                   hoverinfo="skip", name="transmission", showlegend=False),
        go.Scatter(x=fx, y=fy, mode="lines", line={"color": "#aaa", "width": 1},
                   hoverinfo="skip", name="feeders", showlegend=False),
    ])
    for k, _t in enumerate(periods):
        fig.add_trace(go.Scatter(
            x=[pos[key][0] for key in keys], y=[pos[key][1] for key in keys], mode="markers",
            visible=k == 0, text=text, name=f"prices, period {periods[k]}",
            marker={"color": values[k], "size": size, "colorscale": "Viridis", "cmin": lo,
                    "cmax": hi, "colorbar": {"title": "$/MWh"}, "line": {"width": 0.5}},
            hovertemplate="%{text}: %{marker.color:.2f} $/MWh<extra></extra>",
            showlegend=False))
    steps = []
    for k, t in enumerate(periods):
        visible = [True, True] + [i == k for i in range(len(periods))]
        steps.append({"method": "update", "label": str(t), "args": [{"visible": visible}]})
    fig.update_layout(title=f"LMPs and DLMPs ({outcome.scheme})", height=640,
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
                      sliders=[{"active": 0, "currentvalue": {"prefix": "period "},
                                "steps": steps}])
    return fig


__all__ = ["KIND_COLOURS", "SCHEME_COLOURS", "comparison", "der_dispatch", "dlmp_heatmap",
           "grid_layout", "grid_prices", "hosting_capacity", "interface_prices",
           "interface_schedules", "money_flows", "plotly_modules", "residuals",
           "voltage_profiles"]

