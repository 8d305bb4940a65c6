"""TSO market clearing end to end: tsodso against pandapower and PyPSA on the same network.

Run (defaults: ``pglib:pglib_opf_case2869_pegase``, 1 and 24 periods, tsodso median of 3)::

    PYTHONPATH=src python benchmarks/bench_tso.py [CASE] [--periods 1 24] [--repeat 3]
        [--peer-repeat 1] [--pypsa-python PATH] [--pypsa-io-api lp|direct]
        [--pypsa-modes optimize lean] [--skip-pandapower] [--skip-pypsa] [--json out.json]
        [--profile]

Every tool solves the same lossless DC-OPF of the same MATPOWER file, all loads following the
same hourly shape: ``--load-shape rts`` (default) is the IEEE RTS-79 winter-weekday daily curve
(Table 4 of the 1979 RTS paper, 59-100 % of the daily peak) rescaled linearly to 75-100 %
(pandapower's PIPS stops converging on case2869_pegase below about 65 % of its load),
starting at the peak hour, so one period is the peak and 24 periods are one day; ``flat``
repeats the case's load.
Ramp limits are left out of every model (the case files have none), so the periods are
independent LPs; tsodso detects that from its constraint matrix and solves them one after
the other, each warm-started from the previous period's basis (``Model.solve(split=True)``),
PyPSA solves one LP of all periods and pandapower one OPF per period from scratch:

* **tsodso**: ``load(case, n_periods=T)`` + the load shape + ``clear_tso_market(system,
  TsoOptions())``, HiGHS. Median of ``--repeat`` runs (after one untimed warm-up).
* **pandapower**: ``from_mpc(path)`` + ``rundcopp(net)`` (PYPOWER's DC OPF, PIPS interior
  point). pandapower has no multi-period OPF: for T periods the only way is T successive
  ``rundcopp`` calls on the same net (loads scaled before each), which is what is timed.
* **PyPSA** (``n.optimize(solver_name="highs")``, linopy, HiGHS): PyPSA 1.x needs pandas 3, which
  pandapower and tsodso do not accept, so it runs in a subprocess with its own interpreter
  (``--pypsa-python``; default ``benchmarks/.venv-pypsa/bin/python``, then
  ``/tmp/pypsa-venv/bin/python``; make one with ``python -m venv benchmarks/.venv-pypsa &&
  benchmarks/.venv-pypsa/bin/pip install pypsa highspy``). The ``.m`` file is parsed here with
  tsodso's parser (``read_case``: the parse time is counted in PyPSA's end-to-end time) and the
  raw MATPOWER matrices are handed to the child as JSON; the child builds the network with the
  importer below (buses with ``v_nom`` = base kV, lines with x in ohm, branches with a tap or a
  phase shift as Transformers with x in per unit of ``s_nom``, shunt conductance as load,
  linear costs as ``marginal_cost``), then ``optimize()`` for ``T`` snapshots, after a warm-up
  on a 2-bus network. The solver time is HiGHS' own ``run()`` call. **PyPSA lean** is the same
  without ``optimize()``'s ``post_processing()``, whose voltage-angle recovery is a dense
  ``pinv`` of the bus susceptance matrix (most of PyPSA's time on this case).

pandapower and PyPSA run ``--peer-repeat`` times (default 1: they are slow; median otherwise).

The objectives ($ over the horizon) and LMPs ($/MWh) are compared so that the timings are of
the same problem; then the ratios and tsodso's non-solver share are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

CASE = "pglib:pglib_opf_case2869_pegase"
HERE = Path(__file__).resolve().parent
PYPSA_PYTHONS = (HERE / ".venv-pypsa" / "bin" / "python", Path("/tmp/pypsa-venv/bin/python"))
UNLIMITED_MVA = 1e6  # s_nom of branches without rating (MATPOWER rate_a = 0)


# ============================================================== PyPSA side (child process)
def _pypsa_network(case: dict[str, Any], periods: int, shape: list[float] | None = None
                   ) -> tuple[Any, float]:
    """A PyPSA network with the DC physics of a MATPOWER case, and the constant cost term.

    MATPOWER's DC model: a branch carries ``Pf = base / (x tap) (theta_f - theta_t - shift)``
    MW. PyPSA's per unit is on 1 MVA, lines ``x_pu = x_ohm / v_nom**2`` and transformers
    ``x_pu_eff = x / s_nom * tap_ratio``, so a line gets ``x_ohm = x v_nom**2 / base`` and a
    transformer ``x = x / base * s_nom`` with the same tap and phase shift (degrees).
    """
    import numpy as np
    import pypsa

    base = float(case["base_mva"])
    bus = np.asarray(case["bus"], dtype=float)
    gen = np.asarray(case["gen"], dtype=float)
    br = np.asarray(case["branch"], dtype=float)
    gc = np.asarray(case["gencost"], dtype=float)

    n = pypsa.Network()
    n.set_snapshots(range(periods))
    bus = bus[bus[:, 1] != 4]  # isolated buses are not in the model
    ids = bus[:, 0].astype(int)
    names = np.array([str(i) for i in ids], dtype=object)
    kv = np.where(bus[:, 9] > 0, bus[:, 9], 1.0)
    n.add("Bus", names, v_nom=kv)
    # Pd scaled by the load shape + Gs (shunt conductance is a constant load in DC)
    mult = np.ones(periods) if shape is None else np.asarray(shape[:periods], dtype=float)
    p_load = np.outer(mult, bus[:, 2]) + bus[:, 4]
    has = (p_load != 0).any(axis=0)
    import pandas as pd

    n.add("Load", "load " + names[has], bus=names[has],
          p_set=pd.DataFrame(p_load[:, has], index=n.snapshots, columns="load " + names[has]))

    f, t = br[:, 0].astype(int), br[:, 1].astype(int)
    on = (br[:, 10] > 0) & np.isin(f, ids) & np.isin(t, ids)
    k = np.flatnonzero(on)
    br, f, t = br[on], f[on], t[on]
    rate = np.where(br[:, 5] > 0, br[:, 5], UNLIMITED_MVA)
    trafo = (br[:, 8] != 0) | (br[:, 9] != 0)
    kv_of = dict(zip(ids, kv, strict=True))
    v0 = np.array([kv_of[b] for b in f])
    line = ~trafo
    n.add("Line", [f"br {i + 1}" for i in k[line]], bus0=f[line].astype(str),
          bus1=t[line].astype(str), x=br[line, 3] * v0[line] ** 2 / base,
          r=br[line, 2] * v0[line] ** 2 / base, s_nom=rate[line])
    n.add("Transformer", [f"br {i + 1}" for i in k[trafo]], bus0=f[trafo].astype(str),
          bus1=t[trafo].astype(str), x=br[trafo, 3] / base * rate[trafo],
          r=br[trafo, 2] / base * rate[trafo], s_nom=rate[trafo],
          tap_ratio=np.where(br[trafo, 8] == 0, 1.0, br[trafo, 8]), phase_shift=br[trafo, 9])

    n_gen = gen.shape[0]
    gc = gc[:n_gen]
    if (gc[:, 0] != 2).any():
        raise SystemExit("PyPSA importer: piecewise-linear costs are not supported")
    ncost = gc[:, 3].astype(int)
    coef = np.zeros((n_gen, 3))  # c2, c1, c0
    for j in range(n_gen):
        coef[j, 3 - ncost[j]:] = gc[j, 4:4 + ncost[j]]
    on = (gen[:, 7] > 0) & np.isin(gen[:, 0].astype(int), ids)
    pmax, pmin = gen[on, 8], gen[on, 9]
    p_nom = np.maximum(np.abs(pmax), np.abs(pmin))
    p_nom = np.where(p_nom > 0, p_nom, 1.0)
    extra = {"marginal_cost_quadratic": coef[on, 0]} if (coef[on, 0] != 0).any() else {}
    n.add("Generator", [f"gen {i + 1}" for i in np.flatnonzero(on)],
          bus=gen[on, 0].astype(int).astype(str), p_nom=p_nom, p_max_pu=pmax / p_nom,
          p_min_pu=pmin / p_nom, marginal_cost=coef[on, 1], **extra)
    return n, float(coef[on, 2].sum()) * periods


def _pypsa_child(data_path: str, out_path: str) -> None:
    """Build and solve the PyPSA networks; write timings, objectives and prices as JSON."""
    import logging

    import highspy
    import pypsa

    for name in ("pypsa", "linopy", "highspy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    run_times: list[float] = []
    original_run = highspy.Highs.run

    def timed_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original_run(self, *args, **kwargs)
        finally:
            run_times.append(time.perf_counter() - start)

    highspy.Highs.run = timed_run  # HiGHS' own solve time, as tsodso's solver_s
    data = json.loads(Path(data_path).read_text())
    io_api = data["io_api"]
    tiny = {"base_mva": 100.0, "bus": [[1, 3, 0, 0, 0, 0, 1, 1, 0, 110, 1, 1.1, 0.9],
                                       [2, 1, 50, 0, 0, 0, 1, 1, 0, 110, 1, 1.1, 0.9]],
            "gen": [[1, 0, 0, 0, 0, 1, 100, 1, 100, 0]],
            "branch": [[1, 2, 0.01, 0.1, 0, 100, 100, 100, 0, 0, 1, -360, 360]],
            "gencost": [[2, 0, 0, 2, 10, 0]]}
    warm, _ = _pypsa_network(tiny, 2)
    warm.optimize(solver_name="highs", io_api=io_api)  # lazy imports out of the timing
    out: dict[str, Any] = {"pypsa": pypsa.__version__, "highspy": _version("highspy"),
                           "runs": []}
    for mode in data["modes"]:
        for periods in data["periods"]:
            timings = []
            for _ in range(data["repeat"]):
                run_times.clear()
                t0 = time.perf_counter()
                n, constant = _pypsa_network(data["case"], periods, data["shape"])
                t1 = time.perf_counter()
                if mode == "optimize":
                    status, condition = n.optimize(solver_name="highs", io_api=io_api)
                else:  # optimize() less post_processing(), whose angles are a dense pinv(B)
                    n.optimize.create_model()
                    status, condition = n.model.solve(solver_name="highs", io_api=io_api)
                    n.optimize.assign_solution()
                    n.optimize.assign_duals()
                t2 = time.perf_counter()
                prices = n.buses_t.marginal_price
                lmp = prices.to_numpy()
                objective = float(n.objective) + constant
                t3 = time.perf_counter()
                timings.append({"build_s": t1 - t0, "optimize_s": t2 - t1, "extract_s": t3 - t2,
                                "solver_s": sum(run_times)})
            out["runs"].append({
                "mode": mode, "periods": periods, "status": f"{status}/{condition}",
                **_median_run(timings), "objective": objective,
                "buses": [int(c) for c in prices.columns], "lmp": lmp.tolist(),
            })
    Path(out_path).write_text(json.dumps(out))


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "?"


# ========================================================================== parent side
def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


RTS_DAILY = [67, 63, 60, 59, 59, 60, 74, 86, 95, 96, 96, 95,  # IEEE RTS-79 Table 4, winter
             95, 95, 93, 94, 99, 100, 100, 96, 91, 83, 73, 63]  # weekday, % of daily peak


def load_shape(kind: str, periods: int) -> list[float]:
    """Multiplier of every load per period: ``rts`` is the RTS-79 day rescaled from
    59-100 % to 75-100 %, starting at the peak hour (hour 18)."""
    if kind == "flat":
        return [1.0] * periods
    low = min(RTS_DAILY)
    return [1 - (100 - RTS_DAILY[(17 + t) % 24]) / (100 - low) * 0.25 for t in range(periods)]


def run_tsodso(case: str, periods: int, repeat: int, shape: list[float]) -> dict[str, Any]:
    """``load`` + load shape + ``clear_tso_market``, ``repeat`` times; the median of every
    timing."""
    import numpy as np

    from tsodso.io import load
    from tsodso.tso import TsoOptions, clear_tso_market

    runs = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        system = load(case, n_periods=periods)
        system.profiles.series["bench"] = shape
        system.grid.loads["profile"] = "bench"
        t1 = time.perf_counter()
        result = clear_tso_market(system, TsoOptions())
        t2 = time.perf_counter()
        runs.append({"e2e_s": t2 - t0, "load_s": t1 - t0, "clear_s": t2 - t1, **result.timings})
    assert result is not None
    med = _median_run(runs)
    med["handoff_s"] = med["solve_s"] - med["solver_s"]  # model -> HiGHS, solution back
    return {"timing": med, "objective": result.objective, "status": result.status.value,
            "buses": np.asarray(result.lmp.columns, dtype=int), "lmp": result.lmp.to_numpy(),
            "all_e2e_s": [r["e2e_s"] for r in runs]}


def run_pandapower(path: str, periods: int, shape: list[float], repeat: int = 1
                   ) -> dict[str, Any]:
    """``from_mpc`` + ``periods`` successive ``rundcopp`` calls (no multi-period OPF), the
    loads scaled by ``shape`` before each."""
    import logging

    import numpy as np
    import pandapower as pp
    from pandapower.converter.matpower import from_mpc

    logging.getLogger("pandapower").setLevel(logging.ERROR)
    timings = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            t0 = time.perf_counter()
            net = from_mpc(path)
            t1 = time.perf_counter()
            costs, lmps = [], []
            # from_mpc turns negative Pd into static generators: they follow the shape too
            base, base_sgen = net.load.p_mw.to_numpy().copy(), net.sgen.p_mw.to_numpy().copy()
            for t in range(periods):
                net.load["p_mw"] = base * shape[t]
                net.sgen["p_mw"] = base_sgen * shape[t]
                pp.rundcopp(net)
                costs.append(float(net.res_cost))
                lmps.append(net.res_bus.lam_p.loc[net.bus.index].to_numpy())
            t2 = time.perf_counter()
            timings.append({"e2e_s": t2 - t0, "load_s": t1 - t0, "opf_s": t2 - t1})
    return {"timing": _median_run(timings), "objective": float(sum(costs)),
            "status": "converged" if net.OPF_converged else "NOT converged",
            "lmp": np.array(lmps), "version": pp.__version__}


def _pypsa_python(option: str | None) -> Path | None:
    if option:
        return Path(option)
    return next((p for p in PYPSA_PYTHONS if p.exists()), None)


PYPSA_LABELS = {"optimize": "PyPSA", "lean": "PyPSA lean"}


def run_pypsa(case: str, periods: list[int], python: Path, io_api: str,
              modes: list[str], shape: list[float], repeat: int = 1
              ) -> dict[str, dict[int, Any]]:
    """Parse here (timed), solve in the PyPSA interpreter; results by label and periods."""
    import numpy as np

    from tsodso.io.matpower import read_case

    t0 = time.perf_counter()
    mpc = read_case(case)
    parse_s = time.perf_counter() - t0
    payload = {"periods": periods, "io_api": io_api, "modes": modes, "repeat": repeat,
               "shape": shape, "case": {
        "base_mva": mpc.base_mva, "bus": mpc.bus.tolist(), "gen": mpc.gen.tolist(),
        "branch": mpc.branch.tolist(),
        "gencost": mpc.gencost.tolist() if mpc.gencost is not None else []}}
    with tempfile.TemporaryDirectory(prefix="bench_tso_") as tmp:
        data_path, out_path = Path(tmp, "case.json"), Path(tmp, "out.json")
        data_path.write_text(json.dumps(payload))
        proc = subprocess.run([str(python), str(Path(__file__).resolve()), "--pypsa-child",
                               str(data_path), str(out_path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"PyPSA child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.loads(out_path.read_text())
    results: dict[str, dict[int, Any]] = {}
    for run in out["runs"]:
        e2e = parse_s + run["build_s"] + run["optimize_s"] + run["extract_s"]
        results.setdefault(PYPSA_LABELS[run["mode"]], {})[run["periods"]] = {
            "timing": {"e2e_s": e2e, "parse_s": parse_s, "build_s": run["build_s"],
                       "optimize_s": run["optimize_s"], "solver_s": run["solver_s"],
                       "extract_s": run["extract_s"]},
            "objective": run["objective"], "status": run["status"],
            "buses": np.asarray(run["buses"], dtype=int), "lmp": np.asarray(run["lmp"])}
    print(f"  (PyPSA {out['pypsa']}, highspy {out['highspy']}, io_api={io_api}, "
          f"interpreter {python})")
    return results


def _lmp_diff(ref: dict[str, Any], other: dict[str, Any]) -> float:
    """Max |LMP difference| over periods and buses, buses matched by number."""
    import numpy as np
    import pandas as pd

    pos = pd.Index(other["buses"]).get_indexer(ref["buses"])
    if (pos < 0).any():
        return float("nan")
    return float(np.max(np.abs(other["lmp"][:, pos] - ref["lmp"])))


def profile_tsodso(case: str, periods: int, top: int = 25) -> None:
    """cProfile of load + clear_tso_market; HiGHS' run() shows up as one line."""
    import cProfile
    import pstats

    from tsodso.io import load
    from tsodso.tso import TsoOptions, clear_tso_market

    prof = cProfile.Profile()
    prof.enable()
    result = clear_tso_market(load(case, n_periods=periods), TsoOptions())
    prof.disable()
    print(f"\nprofile of tsodso, {periods} periods, timings {_fmt_timings(result.timings)}")
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(r"tsodso|highspy|scipy|pandas", top)
    stats.sort_stats("tottime").print_stats(top)


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _fmt_timings(t: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in t.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", nargs="?", default=CASE)
    parser.add_argument("--periods", type=int, nargs="+", default=[1, 24])
    parser.add_argument("--repeat", type=int, default=3, help="tsodso runs (median)")
    parser.add_argument("--load-shape", default="rts", choices=["rts", "flat"],
                        help="hourly load multipliers: IEEE RTS-79 daily curve or flat")
    parser.add_argument("--pypsa-python", help="interpreter with pypsa and highspy installed")
    parser.add_argument("--pypsa-io-api", default="lp", choices=["lp", "direct"],
                        help="linopy's hand-off to HiGHS (PyPSA's default: lp file)")
    parser.add_argument("--pypsa-modes", nargs="+", default=["optimize", "lean"],
                        choices=["optimize", "lean"],
                        help="optimize(): as documented; lean: optimize() less post_processing")
    parser.add_argument("--peer-repeat", type=int, default=1,
                        help="pandapower and PyPSA runs (median; default 1, they are slow)")
    parser.add_argument("--skip-pandapower", action="store_true")
    parser.add_argument("--skip-pypsa", action="store_true")
    parser.add_argument("--json", help="write the figures (no LMPs) to this file")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile tsodso at the largest number of periods")
    parser.add_argument("--pypsa-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pypsa_child:
        _pypsa_child(*args.pypsa_child)
        return

    from tsodso.io import load
    from tsodso.io.matpower import case_path, read_case
    from tsodso.tso import TsoOptions, clear_tso_market

    path = str(case_path(args.case))
    case_buses = read_case(args.case).bus[:, 0].astype(int)  # pandapower keeps this order
    print(f"case: {args.case} ({path}), periods {args.periods}, load shape {args.load_shape}")
    clear_tso_market(load(args.case), TsoOptions())  # warm-up: imports, caches
    python = _pypsa_python(args.pypsa_python)
    if args.skip_pandapower:
        print("pandapower: skipped (--skip-pandapower)")
    if args.skip_pypsa:
        print("PyPSA: skipped (--skip-pypsa)")
    elif python is None or not python.exists():
        print(f"PyPSA: skipped, no interpreter at {python or ' or '.join(map(str, PYPSA_PYTHONS))}"
              " (python -m venv benchmarks/.venv-pypsa && "
              "benchmarks/.venv-pypsa/bin/pip install pypsa highspy)")
        python = None
    print(f"load average before: {_load_average()} (2-core machines: > 1 means other work "
          "is competing and the ratios are less reliable)")
    # Period count by period count, every tool in turn: same-T figures are close in time.
    res: dict[str, dict[int, Any]] = {"tsodso": {}}
    for periods in args.periods:
        shape = load_shape(args.load_shape, periods)
        res["tsodso"][periods] = run_tsodso(args.case, periods, args.repeat, shape)
        print(f"  tsodso      T={periods:<3d} {_fmt_timings(res['tsodso'][periods]['timing'])}",
              flush=True)
        if not args.skip_pandapower:
            r = res.setdefault("pandapower", {})[periods] = run_pandapower(
                path, periods, shape, args.peer_repeat)
            r["buses"] = case_buses
            print(f"  pandapower  T={periods:<3d} {_fmt_timings(r['timing'])}", flush=True)
        if python is not None and not args.skip_pypsa:
            pypsa_res = run_pypsa(args.case, [periods], python, args.pypsa_io_api,
                                  args.pypsa_modes, shape, args.peer_repeat)
            for label, by_periods in pypsa_res.items():
                r = res.setdefault(label, {})[periods] = by_periods[periods]
                print(f"  {label:<11s} T={periods:<3d} {_fmt_timings(r['timing'])}", flush=True)
    print(f"load average after: {_load_average()}")
    peers = [tool for tool in res if tool != "tsodso"]

    # ------------------------------------------------------------------ same problem?
    print("\nSame problem? objective against tsodso's, max |LMP - tsodso's LMP| over "
          "periods and buses")
    for periods in args.periods:
        ref = res["tsodso"][periods]
        for tool in peers:
            r = res[tool][periods]
            rel = (r["objective"] - ref["objective"]) / abs(ref["objective"])
            print(f"  T={periods:<3d} {tool:<11s} {r['objective']:.6f} vs {ref['objective']:.6f}"
                  f" $: rel diff {rel:+.1e} ({'ok' if abs(rel) <= 1e-6 else 'DIFFERENT'}), "
                  f"max |dLMP| {_lmp_diff(ref, r):.1e} $/MWh [{r['status']}]")

    # -------------------------------------------------------------------------- table
    runs = "1 run" if args.peer_repeat == 1 else f"median of {args.peer_repeat}"
    how = {"tsodso": f"load + clear_tso_market, median of {args.repeat}",
           "pandapower": f"from_mpc + one rundcopp per period (no multi-period OPF), {runs}",
           "PyPSA": f"parse + build + optimize(solver_name='highs') + prices, {runs}",
           "PyPSA lean": f"as PyPSA without post_processing (dense pinv(B) angles), {runs}"}
    print(f"\n{'tool':<12s}{'periods':>8s}{'end-to-end s':>14s}{'solver s':>10s}"
          f"{'objective $':>18s}  what is timed")
    for periods in args.periods:
        for tool in res:
            r = res[tool][periods]
            solver = r["timing"].get("solver_s")
            solver_txt = f"{solver:10.2f}" if solver is not None else f"{'n/a':>10s}"
            print(f"{tool:<12s}{periods:>8d}{r['timing']['e2e_s']:>14.2f}{solver_txt}"
                  f"{r['objective']:>18.2f}  {how[tool]}")
    print("\nratios of end-to-end times (targets: pandapower/tsodso >= 10x, PyPSA/tsodso >= 3x)"
          "\nand tsodso's non-solver time over HiGHS' own solve time (target < 25% at 24 "
          "periods)")
    targets = {"pandapower": 10.0, "PyPSA": 3.0, "PyPSA lean": 3.0}
    summary = []
    for periods in args.periods:
        t = res["tsodso"][periods]["timing"]
        row: dict[str, Any] = {"periods": periods, "tsodso": {
            **t, "objective": res["tsodso"][periods]["objective"]}}
        parts = []
        for tool in peers:
            r = res[tool][periods]
            ratio = r["timing"]["e2e_s"] / t["e2e_s"]
            row[tool] = {**r["timing"], "objective": r["objective"], "ratio": ratio}
            verdict = "met" if ratio >= targets[tool] else "NOT met"
            parts.append(f"{tool}/tsodso {ratio:.1f}x ({verdict})")
        share = (t["load_s"] + t["build_s"] + t["extract_s"]) / t["solver_s"]
        share_all = (t["e2e_s"] - t["solver_s"]) / t["solver_s"]
        row.update(non_solver_share=share, non_solver_share_all=share_all)
        summary.append(row)
        print(f"  T={periods:<3d} " + ", ".join(parts))
        print(f"        tsodso (load + build + extract) / solver_s = {share:.1%}"
              f" ({'met' if share < 0.25 else 'NOT met'}); every non-solver second "
              f"(end to end - solver_s, incl. the {t['handoff_s']:.2f} s model hand-off to "
              f"HiGHS) / solver_s = {share_all:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"case": args.case, "rows": summary}, indent=1))
    if args.profile:
        profile_tsodso(args.case, max(args.periods))


if __name__ == "__main__":
    sys.exit(main())
