"""DSO OPF end to end: tsodso's SOC branch-flow OPF against pandapower, one feeder and batches.

Run (defaults: ``matpower:case33bw``, 5 repeats, batches of 10 and 100 feeders)::

    PYTHONPATH=src python benchmarks/bench_dso.py [--repeat 5] [--max-feeders 100]
        [--workers 2] [--batch-lean] [--skip-pandapower] [--skip-dask] [--profile]
        [--json out.json]

Sections (every time is wall clock, the median of ``--repeat`` runs after one untimed warm-up
unless said otherwise; imports are not timed):

**(a) case33bw, one period, against pandapower.** tsodso: ``feeder_system(case)`` +
``solve_dso(system, "case33bw", Boundary(price=20), DsoOptions(formulation="soc"))``, once with
the defaults ("full": DLMP decomposition and AC power-flow check) and once with
``decompose=False, ac_check=False`` ("lean"). pandapower: the same tables (``feeder_system``)
turned into a net (buses at the feeder's kV with its voltage band, 1 km lines with the same
ohms and ampacity, loads, an ext_grid at the root with a 20 $/MWh linear cost; built with
pandapower's vectorised ``create_buses`` / ``create_lines_from_parameters`` / ``create_loads``)
+ ``pp.runopp(net)`` (PIPS interior point on the full AC OPF). The SOC relaxation is exact on
this feeder, so both objectives must agree within 1 %. Ratios: pandapower end to end over
tsodso end to end (target 10x), and ``runopp`` alone over ``solve_dso`` alone.

**(b) one feeder x 24 periods.** case33bw with a daily load profile, a 1 MW PV at bus 18
(solar profile, 1.1 MVA inverter), a 0.5 MW / 2 MWh battery at bus 33, a 0.5 MW DG at bus 25
at 35 $/MWh and hourly interface prices of 15..52 $/MWh (``--no-ders``: loads only). Timed
end to end: ``feeder_system`` + profiles + DER table + ``solve_dso``, full and lean, against
the 0.3 s target, with tsodso's own stage timings (``DsoResult.timings``).

**(c) batches.** K copies ``F0..F{K-1}`` of the feeder of (b) in one System (the case is read
once with ``feeder_from_case`` and relabelled; building the System is timed apart), solved by
``solve_feeders(system, options=..., boundaries=...)`` in process for K = 10, 100, 1000 up to
``--max-feeders`` (1000 takes minutes on two cores). Printed: seconds, seconds per feeder and
the per-feeder time relative to the smallest batch (1.0 = linear growth). Then the largest
batch up to 100 again through ``make_executor(workers=--workers)`` (a Dask LocalCluster; its
start-up and a 2-feeder warm-up are timed apart) and the speed-up over in-process. Batches
use the full options unless ``--batch-lean``. One run per batch.

**--profile.** For the 24-period case: a stage breakdown (loading, model build, tsodso's
matrix assembly, Clarabel set-up measured as a ``max_iter=0`` solve, Clarabel iterations,
extraction, DLMP decomposition, AC check), a cProfile listing, and a sweep of Clarabel
settings passed through ``DsoOpf.model.solve("clarabel", options={...})`` on fresh models,
with iterations, time and the accuracy against a tol=1e-10 reference (relative objective
difference, largest DLMP difference in $/MWh, largest relaxation gap).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import json
import logging
import math
import pstats
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

CASE = "matpower:case33bw"
FEEDER = "case33bw"
PRICE_1 = 20.0  # $/MWh, section (a)
TARGET_RATIO = 10.0  # pandapower / tsodso, section (a)
TARGET_24 = 0.3  # s, section (b)
HOURS = np.arange(24)
LOAD_SHAPE = np.array([0.62, 0.58, 0.55, 0.54, 0.55, 0.60, 0.70, 0.82, 0.88, 0.86, 0.84, 0.83,
                       0.82, 0.80, 0.80, 0.83, 0.90, 0.98, 1.00, 0.99, 0.95, 0.88, 0.78, 0.68])
SOLAR_SHAPE = np.clip(np.sin((HOURS - 6) / 12 * np.pi), 0.0, None)
PRICE_24 = np.array([18, 16, 15, 15, 16, 20, 28, 35, 32, 27, 24, 22,
                     21, 22, 24, 28, 38, 48, 52, 47, 38, 30, 24, 20], dtype=float)
DER_ROWS = (  # every column given, so the schema's conform() has nothing to fill
    {"der_id": "pv18", "kind": "pv", "bus_id": 18, "p_max_mw": 1.0, "p_min_mw": 0.0,
     "s_max_mva": 1.1, "energy_mwh": 0.0, "soc_init": 0.5, "eta_charge": 1.0,
     "eta_discharge": 1.0, "cost_per_mwh": 0.0, "profile": "solar"},
    {"der_id": "bat33", "kind": "storage", "bus_id": 33, "p_max_mw": 0.5, "p_min_mw": -0.5,
     "s_max_mva": math.nan, "energy_mwh": 2.0, "soc_init": 0.5, "eta_charge": 0.95,
     "eta_discharge": 0.95, "cost_per_mwh": 0.0, "profile": ""},
    {"der_id": "dg25", "kind": "dg", "bus_id": 25, "p_max_mw": 0.5, "p_min_mw": 0.0,
     "s_max_mva": math.nan, "energy_mwh": 0.0, "soc_init": 0.5, "eta_charge": 1.0,
     "eta_discharge": 1.0, "cost_per_mwh": 35.0, "profile": ""},
)


# ================================================================== helpers
def _timed(func: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], Any]:
    """Run ``func`` once untimed (warm-up), then ``repeat`` times.

    Returns the wall-clock times, the CPU times of this process (``time.process_time``: less
    sensitive to other load on the machine; everything here is single-threaded) and the last
    result.
    """
    out = func()
    times, cpu = [], []
    for _ in range(repeat):
        start, c0 = time.perf_counter(), time.process_time()
        out = func()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - c0)
    return times, cpu, out


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f} ms" if seconds < 10 else f"{seconds:9.2f} s "


def _ders(feeder_ids: list[str]) -> pd.DataFrame:
    """The DER set of section (b) on every feeder of ``feeder_ids`` (ids ``F/pv18``...)."""
    from tsodso.model.schema import conform
    from tsodso.model.tables import DERS

    rows = [{**row, "der_id": f"{fid}/{row['der_id']}", "feeder_id": fid}
            for fid in feeder_ids for row in DER_ROWS]
    frame, issues = conform(pd.DataFrame(rows), DERS)
    if issues:
        raise RuntimeError(f"DER table: {issues[:3]}")
    return frame


def _daily(system: Any, ders: bool) -> Any:
    """Give ``system`` 24 hourly periods, the load profile and (optionally) the DERs."""
    from tsodso.model import Profiles

    system.profiles = Profiles(1.0, 24, pd.DataFrame({"load": LOAD_SHAPE, "solar": SOLAR_SHAPE}))
    system.feeder_loads["profile"] = "load"
    if ders:
        system.ders = _ders(system.feeder_ids)
    return system


def one_feeder_24(case: str, ders: bool) -> Any:
    """Section (b)'s System: one feeder, 24 periods."""
    from tsodso.io.feeders import feeder_system

    return _daily(feeder_system(case, n_periods=24), ders)


def feeder_fleet(case: str, k: int, ders: bool) -> Any:
    """A System with ``k`` copies ``F0..F{k-1}`` of the case's feeder, 24 periods."""
    from tsodso.io.feeders import feeder_from_case
    from tsodso.model.network import Feeder
    from tsodso.model.system import System

    base, _ = feeder_from_case(case, feeder_id="F0")
    system = System(name=f"{k} x {case}")
    for i in range(k):
        fid = f"F{i}"
        info = base.info.copy()
        info["feeder_id"] = fid
        system.add_feeder(Feeder(info, base.buses.assign(feeder_id=fid),
                                 base.lines.assign(feeder_id=fid),
                                 base.loads.assign(feeder_id=fid)))
    return _daily(system, ders)


def pandapower_net(system: Any, feeder_id: str, price: float) -> Any:
    """The feeder of ``system`` (period 0's loads) as a pandapower net for ``runopp``."""
    import pandapower as pp

    feeder = system.feeder(feeder_id)
    if (system.ders.feeder_id == feeder_id).any():
        raise NotImplementedError("the pandapower side models feeders without DERs only")
    info = feeder.info
    kv = float(info["nominal_kv"])
    buses = feeder.buses
    net = pp.create_empty_network(sn_mva=1.0, f_hz=50.0)
    idx = pp.create_buses(net, len(buses), vn_kv=kv,
                          min_vm_pu=buses.v_min_pu.fillna(float(info["v_min_pu"])).to_numpy(),
                          max_vm_pu=buses.v_max_pu.fillna(float(info["v_max_pu"])).to_numpy(),
                          name=buses.bus_id.astype(str).to_numpy())
    pos = pd.Series(np.asarray(idx), index=buses.bus_id.to_numpy())
    root = int(pos[int(info["root_bus"])])
    net.bus.loc[root, ["min_vm_pu", "max_vm_pu"]] = [0.0, 2.0]  # the ext_grid sets it
    lines = feeder.lines[feeder.lines.in_service]
    rating = lines.rating_mva.to_numpy(dtype=float)
    max_i_ka = np.where(np.isfinite(rating), rating / (math.sqrt(3) * kv), 1e3)
    c_nf = lines.b_us.to_numpy(dtype=float) * 1e3 / (2 * math.pi * 50.0)  # uS -> nF at 50 Hz
    pp.create_lines_from_parameters(
        net, pos[lines.from_bus].to_numpy(), pos[lines.to_bus].to_numpy(), 1.0,
        lines.r_ohm.to_numpy(dtype=float), lines.x_ohm.to_numpy(dtype=float), c_nf, max_i_ka,
        max_loading_percent=100.0)
    loads = feeder.loads
    mult = system.profiles.multipliers(loads.profile)[0]
    pp.create_loads(net, pos[loads.bus_id].to_numpy(), p_mw=loads.p_mw.to_numpy() * mult,
                    q_mvar=loads.q_mvar.to_numpy() * mult)
    grid = pp.create_ext_grid(net, root, vm_pu=float(info["v_root_pu"]), min_p_mw=-1e3,
                              max_p_mw=1e3, min_q_mvar=-1e3, max_q_mvar=1e3)
    pp.create_poly_cost(net, grid, "ext_grid", cp1_eur_per_mw=price)
    return net


def _options(full: bool) -> Any:
    from tsodso.dso import DsoOptions

    return DsoOptions(formulation="soc") if full else DsoOptions(
        formulation="soc", decompose=False, ac_check=False)


# ============================================================= (a) one period
def section_one_period(case: str, repeat: int, skip_pp: bool) -> dict[str, Any]:
    from tsodso.dso import Boundary, solve_dso
    from tsodso.io.feeders import feeder_system

    print(f"\n(a) {case}, one period, slack price {PRICE_1:g} $/MWh")
    out: dict[str, Any] = {}
    for label, full in (("full", True), ("lean", False)):
        load_s, solve_s = [], []

        def run(full: bool = full, load_s: list = load_s, solve_s: list = solve_s) -> Any:
            t0 = time.perf_counter()
            system = feeder_system(case, n_periods=1)
            t1 = time.perf_counter()
            res = solve_dso(system, FEEDER, Boundary(price=PRICE_1), _options(full))
            solve_s.append(time.perf_counter() - t1)
            load_s.append(t1 - t0)
            return res

        times, cpu, res = _timed(run, repeat)
        out[f"tsodso_{label}"] = {
            "e2e_s": _med(times), "e2e_cpu_s": _med(cpu), "load_s": _med(load_s[1:]),
            "solve_s": _med(solve_s[1:]),
            "objective": res.objective, "soc_gap_max": res.soc_gap_max,
            "timings": {k: float(v) for k, v in res.timings.items()},
        }
    if not skip_pp:
        import pandapower as pp

        numba = importlib.util.find_spec("numba") is not None
        load_s, build_s, opf_s = [], [], []

        def run_pp() -> Any:
            t0 = time.perf_counter()
            system = feeder_system(case, n_periods=1)
            t1 = time.perf_counter()
            net = pandapower_net(system, FEEDER, PRICE_1)
            t2 = time.perf_counter()
            pp.runopp(net, numba=numba)
            t3 = time.perf_counter()
            load_s.append(t1 - t0)
            build_s.append(t2 - t1)
            opf_s.append(t3 - t2)
            return net

        times, cpu, net = _timed(run_pp, repeat)
        if not net.OPF_converged:
            raise RuntimeError("pandapower runopp did not converge")
        out["pandapower"] = {"e2e_s": _med(times), "e2e_cpu_s": _med(cpu),
                             "load_s": _med(load_s[1:]),
                             "build_s": _med(build_s[1:]), "runopp_s": _med(opf_s[1:]),
                             "objective": float(net.res_cost), "numba": numba}

    print(f"  {'':18s} {'end to end':>12s} {'(CPU)':>12s} {'load':>12s} {'build':>12s} "
          f"{'OPF':>12s} {'objective $':>14s}")
    for label in ("full", "lean"):
        r = out[f"tsodso_{label}"]
        print(f"  {'tsodso ' + label:18s} {_fmt_s(r['e2e_s'])} {_fmt_s(r['e2e_cpu_s'])} "
              f"{_fmt_s(r['load_s'])} {_fmt_s(r['timings']['build_s'])} "
              f"{_fmt_s(r['solve_s'] - r['timings']['build_s'])} {r['objective']:14.6f}")
    print("  (load: feeder_system; build: DsoOpf model or pandapower net; OPF: the rest of "
          "solve_dso or runopp)")
    if "pandapower" in out:
        p = out["pandapower"]
        print(f"  {'pandapower runopp':18s} {_fmt_s(p['e2e_s'])} {_fmt_s(p['e2e_cpu_s'])} "
              f"{_fmt_s(p['load_s'])} {_fmt_s(p['build_s'])} {_fmt_s(p['runopp_s'])} "
              f"{p['objective']:14.6f}")
        if not p["numba"]:
            print("  (numba is not installed: pandapower runs without it)")
        t = out["tsodso_full"]
        rel = abs(t["objective"] - p["objective"]) / abs(p["objective"])
        ok = rel <= 0.01
        print(f"  objectives: relative difference {rel:.2e} ({'OK' if ok else 'FAIL'}: <= 1 %), "
              f"largest SOC relaxation gap {t['soc_gap_max']:.1e} pu^2")
        out["objective_rel_diff"] = rel
        for label in ("full", "lean"):
            r = out[f"tsodso_{label}"]
            e2e = p["e2e_s"] / r["e2e_s"]
            e2e_cpu = p["e2e_cpu_s"] / r["e2e_cpu_s"]
            opf = p["runopp_s"] / r["solve_s"]
            out[f"ratio_e2e_{label}"], out[f"ratio_opf_{label}"] = e2e, opf
            out[f"ratio_e2e_cpu_{label}"] = e2e_cpu
            verdict = "meets" if e2e >= TARGET_RATIO else "misses"
            print(f"  pandapower / tsodso {label}: end to end {e2e:5.1f}x ({verdict} the "
                  f"{TARGET_RATIO:g}x target; CPU {e2e_cpu:5.1f}x), "
                  f"runopp / solve_dso {opf:5.1f}x")
    return out


# ========================================================== (b) 24 periods
def section_24(case: str, repeat: int, ders: bool) -> dict[str, Any]:
    from tsodso.dso import Boundary, solve_dso

    print(f"\n(b) {case} x 24 periods{' with PV, battery and DG' if ders else ''}, "
          f"target {TARGET_24:g} s end to end")
    out: dict[str, Any] = {}
    print(f"  {'':6s} {'end to end':>12s} {'(CPU)':>12s} {'load':>12s} {'build':>12s} "
          f"{'solve':>12s} {'extract':>12s} {'ac_check':>12s}  verdict")
    for label, full in (("full", True), ("lean", False)):
        load_s, stages = [], []

        def run(full: bool = full, load_s: list = load_s, stages: list = stages) -> Any:
            t0 = time.perf_counter()
            system = one_feeder_24(case, ders)
            load_s.append(time.perf_counter() - t0)
            res = solve_dso(system, FEEDER, Boundary(price=PRICE_24), _options(full))
            stages.append(res.timings)
            return res

        times, cpu, res = _timed(run, repeat)
        med = {k: _med([s[k] for s in stages[1:]]) for k in stages[0]}
        r = {"e2e_s": _med(times), "e2e_min_s": min(times), "e2e_cpu_s": _med(cpu),
             "load_s": _med(load_s[1:]),
             **med, "objective": res.objective, "soc_gap_max": res.soc_gap_max,
             "tightened": res.tightened, "ac_check": res.ac_check}
        out[label] = r
        verdict = "meets" if r["e2e_s"] <= TARGET_24 else "misses"
        print(f"  {label:6s} {_fmt_s(r['e2e_s'])} {_fmt_s(r['e2e_cpu_s'])} {_fmt_s(r['load_s'])} "
              f"{_fmt_s(r['build_s'])} "
              f"{_fmt_s(r['solve_s'])} {_fmt_s(r['extract_s'])} {_fmt_s(r['ac_check_s'])}  "
              f"{verdict} ({r['e2e_s'] / TARGET_24:.2f}x target; fastest "
              f"{r['e2e_min_s'] * 1e3:.0f} ms)")
    f = out["full"]
    print(f"  objective {f['objective']:.4f} $, relaxation gap {f['soc_gap_max']:.1e} pu^2, "
          f"tightened: {f['tightened']}, AC check: {f['ac_check']}")
    return out


# ============================================================== (c) batches
def section_batches(case: str, sizes: list[int], ders: bool, full: bool, workers: int,
                    skip_dask: bool) -> dict[str, Any]:
    from tsodso.dso import Boundary, solve_feeders
    from tsodso.parallel import make_executor

    opts = _options(full)
    print(f"\n(c) batches of feeders x 24 periods ({'full' if full else 'lean'} options), "
          "solve_feeders in process")
    print(f"  {'feeders':>8s} {'system build':>13s} {'solve':>12s} {'per feeder':>12s} "
          f"{'(CPU)':>12s} {'per feeder / first':>19s}")
    out: dict[str, Any] = {"in_process": {}}
    first = None
    systems: dict[int, Any] = {}
    for k in sizes:
        t0 = time.perf_counter()
        system = feeder_fleet(case, k, ders)
        build = time.perf_counter() - t0
        bounds = {fid: Boundary(price=PRICE_24) for fid in system.feeder_ids}
        if first is None:  # warm-up on one feeder
            solve_feeders(system, system.feeder_ids[:1], bounds, opts)
        t0, c0 = time.perf_counter(), time.process_time()
        res = solve_feeders(system, None, bounds, opts)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        per = wall / k
        first = first or per
        objs = np.array([r.objective for r in res.values()])
        out["in_process"][k] = {"build_s": build, "solve_s": wall, "cpu_s": cpu,
                                "per_feeder_s": per, "per_feeder_cpu_s": cpu / k,
                                "ratio_to_first": per / first,
                                "objective_spread": float(objs.max() - objs.min())}
        print(f"  {k:8d} {_fmt_s(build)}  {_fmt_s(wall)} {_fmt_s(per)} {_fmt_s(cpu / k)} "
              f"{per / first:19.2f}")
        if k <= 100:
            systems[k] = (system, bounds)
        del res
    ratios = [v["ratio_to_first"] for v in out["in_process"].values()]
    if len(ratios) > 1:
        worst = max(ratios)
        print(f"  growth: per-feeder time at the largest batch is {ratios[-1]:.2f}x that of the "
              f"smallest ({'linear within 20 %' if worst <= 1.2 else 'NOT linear'})")
    if skip_dask or not systems:
        return out
    k = max(systems)
    system, bounds = systems[k]
    t0 = time.perf_counter()
    ex = make_executor(workers=workers)
    start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        solve_feeders(system, system.feeder_ids[:2], bounds, opts, executor=ex)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = solve_feeders(system, None, bounds, opts, executor=ex)
        wall = time.perf_counter() - t0
    finally:
        ex.close()
    serial = out["in_process"][k]["solve_s"]
    objs = np.array([r.objective for r in res.values()])
    ref = np.array([r.objective for r in solve_feeders(system, system.feeder_ids[:1], bounds,
                                                        opts).values()])
    out["dask"] = {"feeders": k, "workers": workers, "cluster_start_s": start,
                   "warmup_s": warm, "solve_s": wall, "speedup": serial / wall,
                   "objective_max_diff": float(np.abs(objs - ref[0]).max())}
    print(f"  make_executor(workers={workers}), {k} feeders: {wall:.2f} s "
          f"({wall / k * 1e3:.1f} ms per feeder), speed-up {serial / wall:.2f}x over in process "
          f"(cluster start {start:.1f} s and 2-feeder warm-up {warm:.1f} s not counted)")
    return out


# ================================================================ profiling
def section_profile(case: str, ders: bool, repeat: int) -> dict[str, Any]:
    from tsodso.dso import Boundary, DsoOpf, solve_dso

    print(f"\nprofile: {case} x 24 periods")
    out: dict[str, Any] = {}
    opts = _options(True)
    stages: dict[str, list[float]] = {k: [] for k in (
        "load", "model build", "assembly (tsodso)", "Clarabel set-up", "Clarabel iterations",
        "extract (no decomposition)", "DLMP decomposition", "AC check")}
    iters = 0
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        system = one_feeder_24(case, ders)
        load = time.perf_counter() - t0
        op = DsoOpf(system, FEEDER, opts, Boundary(price=PRICE_24))
        sol = op.model.solve("clarabel", tol=opts.tol)
        iters = sol.iterations
        op0 = DsoOpf(system, FEEDER, opts, Boundary(price=PRICE_24))
        sol0 = op0.model.solve("clarabel", tol=opts.tol, options={"max_iter": 0})
        full = solve_dso(system, FEEDER, Boundary(price=PRICE_24), opts)
        lean = solve_dso(system, FEEDER, Boundary(price=PRICE_24), _options(False))
        if i == 0:
            continue  # warm-up
        stages["load"].append(load)
        stages["model build"].append(op.timings["build_s"])
        stages["assembly (tsodso)"].append(sol.build_s)
        stages["Clarabel set-up"].append(sol0.solve_s)
        stages["Clarabel iterations"].append(sol.solve_s - sol0.solve_s)
        stages["extract (no decomposition)"].append(lean.timings["extract_s"])
        stages["DLMP decomposition"].append(full.timings["extract_s"] - lean.timings["extract_s"])
        stages["AC check"].append(full.timings["ac_check_s"])
    med = {k: _med(v) for k, v in stages.items()}
    total = sum(med.values())
    print(f"  stage breakdown (medians of {repeat}; Clarabel: {iters} iterations; set-up = a "
          "max_iter=0 solve: constructor, equilibration, first factorisation)")
    for k, v in med.items():
        print(f"    {k:28s} {_fmt_s(v)} {100 * v / total:5.1f} %")
    print(f"    {'sum':28s} {_fmt_s(total)}")
    out["stages_s"] = med
    out["iterations"] = iters

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        solve_dso(one_feeder_24(case, ders), FEEDER, Boundary(price=PRICE_24), opts)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(r"tsodso|clarabel", 22)
    print("  cProfile (3 runs, cumulative, tsodso and Clarabel frames; cProfile inflates Python):")
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    for ln in lines[start:]:
        print("    " + ln.replace("/work/main/src/", "")[:150])

    out["clarabel_sweep"] = clarabel_sweep(case, ders, repeat)
    return out


SWEEP: tuple[tuple[str, float, dict[str, Any], dict[str, Any]], ...] = (
    # (label, tol, Clarabel settings, DsoOptions changes)
    ("tsodso default (tol 1e-9)", 1e-9, {}, {}),
    ("tol 1e-8 (Clarabel default)", 1e-8, {}, {}),
    ("tol 1e-6", 1e-6, {}, {}),
    ("direct_solve_method qdldl", 1e-9, {"direct_solve_method": "qdldl"}, {}),
    ("direct_solve_method faer", 1e-9, {"direct_solve_method": "faer"}, {}),
    ("faer, max_threads 2", 1e-9, {"direct_solve_method": "faer", "max_threads": 2}, {}),
    ("equilibrate_enable off", 1e-9, {"equilibrate_enable": False}, {}),
    ("presolve_enable off", 1e-9, {"presolve_enable": False}, {}),
    ("chordal_decomposition off", 1e-9, {"chordal_decomposition_enable": False}, {}),
    ("static_regularization 1e-7", 1e-9, {"static_regularization_constant": 1e-7}, {}),
    ("static_regularization off", 1e-9, {"static_regularization_enable": False}, {}),
    ("max_iter 30", 1e-9, {"max_iter": 30}, {}),
    ("max_step_fraction 0.995", 1e-9, {"max_step_fraction": 0.995}, {}),
    ("iterative_refinement max_iter 1", 1e-9, {"iterative_refinement_max_iter": 1}, {}),
    ("iterative_refinement reltol 1e-10", 1e-9, {"iterative_refinement_reltol": 1e-10}, {}),
    ("iterative_refinement off", 1e-9, {"iterative_refinement_enable": False}, {}),
    ("refinement off, tol 1e-10", 1e-10, {"iterative_refinement_enable": False}, {}),
    ("refinement off, tol 1e-8", 1e-8, {"iterative_refinement_enable": False}, {}),
    ("DsoOptions(allow_shed=False)", 1e-9, {}, {"allow_shed": False}),
    ("allow_shed=False, refinement off", 1e-9, {"iterative_refinement_enable": False},
     {"allow_shed": False}),
)


def clarabel_sweep(case: str, ders: bool, repeat: int) -> list[dict[str, Any]]:
    """Clarabel settings on fresh 24-period models: iterations, time, accuracy."""
    from tsodso.dso import Boundary, DsoOpf, DsoOptions

    system = one_feeder_24(case, ders)

    def fresh(**changes: Any) -> Any:
        return DsoOpf(system, FEEDER, DsoOptions(**changes), Boundary(price=PRICE_24))

    ref_op = fresh()
    ref = ref_op.model.solve("clarabel", tol=1e-10)
    dt = float(system.profiles.period_hours)
    ref_lmp = ref.dual(ref_op.balance_p) / dt
    print(f"  Clarabel settings (model.solve('clarabel', tol, options) on a fresh DsoOpf; "
          f"min and median of {repeat}, ratio of the minima to the default's; errors against "
          "tol=1e-10)")
    print(f"    {'setting':36s} {'status':9s} {'iter':>4s} {'min':>8s} {'median':>8s} "
          f"{'min/dflt':>10s} {'obj rel':>8s} {'DLMP $/MWh':>10s} {'gap pu2':>8s}")
    rows: list[dict[str, Any]] = []
    base = None
    for label, tol, settings, changes in SWEEP:
        times = []
        sol = op = None
        for _ in range(repeat + 1):
            op = fresh(**changes)
            t0 = time.perf_counter()
            sol = op.model.solve("clarabel", tol=tol, options=settings)
            times.append(time.perf_counter() - t0)
        times = times[1:]
        assert sol is not None and op is not None
        ok = sol.status.value == "optimal"
        row = {"setting": label, "tol": tol, "options": settings, "dso_options": changes,
               "status": sol.status.value, "iterations": sol.iterations,
               "min_s": min(times), "median_s": _med(times)}
        if ok:
            row["objective_rel_err"] = abs(sol.objective - ref.objective) / abs(ref.objective)
            row["dlmp_max_err"] = float(np.abs(sol.dual(op.balance_p) / dt - ref_lmp).max())
            row["gap_max"] = float(np.nanmax(op._gap(sol)))  # noqa: SLF001
        base = base or row["min_s"]
        rows.append(row)
        acc = (f"{row['objective_rel_err']:8.1e} {row['dlmp_max_err']:10.1e} "
               f"{row['gap_max']:8.1e}") if ok else ""
        print(f"    {label:36s} {row['status'][:9]:9s} {row['iterations']:4d} "
              f"{row['min_s'] * 1e3:6.1f}ms {row['median_s'] * 1e3:6.1f}ms "
              f"{row['min_s'] / base:9.2f}x {acc}")
    return rows


# ===================================================================== main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default=CASE)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-feeders", type=int, default=100,
                        help="largest batch of (c): 10, 100 and 1000 up to this (default 100)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-lean", action="store_true",
                        help="batches without DLMP decomposition and AC check")
    parser.add_argument("--no-ders", action="store_true", help="24-period cases without DERs")
    parser.add_argument("--skip-pandapower", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"],
                        help="sections to leave out")
    parser.add_argument("--profile", action="store_true",
                        help="stage breakdown, cProfile and Clarabel settings sweep (24 periods)")
    parser.add_argument("--json", help="save all figures to this file")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.ERROR)

    import clarabel

    import tsodso.dso  # noqa: F401 - imports are not timed

    versions = {"clarabel": clarabel.__version__}
    if not args.skip_pandapower:
        import pandapower

        versions["pandapower"] = pandapower.__version__
    print(f"bench_dso: {args.case}, repeat {args.repeat}, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    ders = not args.no_ders
    results: dict[str, Any] = {"case": args.case, "versions": versions}
    if "a" not in args.skip:
        results["one_period"] = section_one_period(args.case, args.repeat, args.skip_pandapower)
    if "b" not in args.skip:
        results["periods_24"] = section_24(args.case, args.repeat, ders)
    if "c" not in args.skip:
        sizes = [k for k in (10, 100, 1000) if k <= args.max_feeders] or [args.max_feeders]
        results["batches"] = section_batches(args.case, sizes, ders, not args.batch_lean,
                                             args.workers, args.skip_dask)
    if args.profile:
        results["profile"] = section_profile(args.case, ders, args.repeat)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)
        print(f"\nfigures saved to {args.json}")


if __name__ == "__main__":
    main()
