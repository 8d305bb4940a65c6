"""A DER penetration sweep of the built-in ``default`` scenario, in process and on Dask.

Run: ``python benchmarks/bench_sweep.py [--levels 0:2:0.5] [--seeds 3] [--workers 2]
[--schemes ...]``.

The same sweep (every scheme, 5 penetration levels x 3 seeds by default: 15 points, each
the seven schemes on one system) runs twice: in this process, then on a Dask
``LocalCluster`` of ``--workers`` processes. The script prints each wall time, the speed-up,
whether the rows are identical (they must be), and the value-of-coordination curve. No peer
tool runs this sweep, so the figures are absolute.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="0:2:0.5")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--schemes", nargs="+", default=None)
    args = parser.parse_args()

    import pandas as pd
    import yaml

    from tsodso.coordination import SCHEMES
    from tsodso.scenarios import scenario_path
    from tsodso.studies import penetration_levels, sweep

    recipe = yaml.safe_load(scenario_path("default").read_text())
    levels = penetration_levels(args.levels)
    first = int(recipe["seed"])
    seeds = list(range(first, first + args.seeds))
    schemes = args.schemes or list(SCHEMES)
    points = len(levels) * len(seeds)
    print(f"default: {len(levels)} levels x {len(seeds)} seeds = {points} points, "
          f"schemes {', '.join(schemes)}")
    walls, rows = {}, {}
    for where, workers in (("in process", None), (f"dask x{args.workers}", args.workers)):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = sweep(recipe, schemes, levels, seeds, out=tmp, workers=workers)
            walls[where] = time.perf_counter() - t0
            rows[where] = result.rows
        print(f"{where:<14}{walls[where]:8.1f} s  ({walls[where] / points:.1f} s per point)")
    here, there = rows.values()
    figures = [c for c in here.columns if c not in ("wall_s",)]
    same = here[figures].equals(there[figures])
    print(f"speed-up {walls['in process'] / walls[f'dask x{args.workers}']:.2f}x on "
          f"{args.workers} workers; rows identical: {same}")
    curve = result.curve()
    table = curve.pivot(index="scheme", columns="penetration",
                        values="value_of_coordination")
    table.columns = [f"p={p:g}" for p in table.columns]
    with pd.option_context("display.width", 120, "display.float_format", "{:,.0f}".format):
        print("mean cost above common, $ (value of coordination):")
        print(table)
    print("tso_only first violates at penetration", result.first_violation("tso_only"))


if __name__ == "__main__":
    main()
