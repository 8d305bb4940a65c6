"""Coordination at scale: ``common`` and ``admm`` on 10, 100 (and 1,000) feeders x 24 periods.

Run: ``python benchmarks/bench_coordination.py [--feeders 10 100 1000] [--workers 2]``.
Each system is PGLib's IEEE 118-bus grid with K copies of the Baran-Wu feeder (loads scaled
to 0.1 so that any K fits under the transmission loads), PV at 150 % of feeder peak and the
default scenario's SimBench profiles. Prints wall time, time per feeder, ADMM iterations and
its gap to ``common``, and the speed-up of ADMM with Dask workers against in-process.
"""

from __future__ import annotations

import argparse
import time

import yaml


def recipe(feeders: int) -> dict:
    from tsodso.scenarios import scenario_path

    base = yaml.safe_load(scenario_path("default").read_text())
    base["transmission"] = {"case": "pglib:pglib_opf_case118_ieee"}
    # load buses of case118 with the most load, round-robin
    from tsodso.io.matpower import load_grid

    loads = load_grid("pglib:pglib_opf_case118_ieee").loads.sort_values("p_mw", ascending=False)
    buses = loads.bus_id.tolist()[:50]
    per_bus = -(-feeders // len(buses))
    at = buses[: -(-feeders // per_bus)]
    base["feeders"] = [{"case": "matpower:case33bw", "at": at, "per_bus": per_bus, "scale": 0.1,
                        "substation_margin": 1.5, "line_margin": 1.3}]
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeders", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-common", action="store_true")
    args = parser.parse_args()

    from tsodso.coordination import run_scheme
    from tsodso.io.scenario import build_scenario
    from tsodso.parallel import make_executor

    print(f"{'feeders':>8} {'scheme':>14} {'wall s':>9} {'s/feeder':>9} {'iter':>5} "
          f"{'gap %':>9}")
    for k in args.feeders:
        system = build_scenario(recipe(k))
        n = len(system.feeder_ids)
        common = None
        if not args.skip_common:
            t0 = time.perf_counter()
            common = run_scheme(system, "common")
            wall = time.perf_counter() - t0
            print(f"{n:>8} {'common':>14} {wall:>9.2f} {wall / n:>9.3f} {1:>5}")
        t0 = time.perf_counter()
        admm = run_scheme(system, "admm")
        wall1 = time.perf_counter() - t0
        gap = (None if common is None
               else 100 * (admm.total_cost - common.total_cost) / abs(common.total_cost))
        print(f"{n:>8} {'admm':>14} {wall1:>9.2f} {wall1 / n:>9.3f} {admm.iterations:>5} "
              f"{'' if gap is None else f'{gap:9.4f}'}")
        if args.workers > 1:
            executor = make_executor(workers=args.workers)
            try:
                t0 = time.perf_counter()
                dist = run_scheme(system, "admm", executor=executor)
                wall2 = time.perf_counter() - t0
            finally:
                executor.close()
            print(f"{n:>8} {f'admm {args.workers} wk':>14} {wall2:>9.2f} {wall2 / n:>9.3f} "
                  f"{dist.iterations:>5}   speed-up {wall1 / wall2:.2f}x")


if __name__ == "__main__":
    main()
