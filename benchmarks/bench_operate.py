"""A one-day operation of the built-in ``default`` scenario: day ahead plus 24 real-time steps.

Run: ``python benchmarks/bench_operate.py [--schemes centralized common ...]
[--load-error 0.05] [--renewable-error 0.2]``.

For each scheme, ``tsodso.operations.operate`` runs the day in a fresh folder (25 clearings
of the scheme: the day-ahead market and a receding-horizon real-time step per hour) and the
script prints the wall time, the mean time per step, and the day-ahead and first real-time
costs. The issue's target: a day under ``centralized`` in under 2 minutes on this machine
(2 cores). No peer tool runs this timeline, so there are no ratios: the figure is absolute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemes", nargs="+", default=["centralized", "common"])
    parser.add_argument("--load-error", type=float, default=0.05)
    parser.add_argument("--renewable-error", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from tsodso.io import load
    from tsodso.operations import ForecastErrors, operate

    system = load("default")
    errors = ForecastErrors(args.load_error, args.renewable_error, args.seed)
    print(f"default: {len(system.feeder_ids)} feeders, {len(system.ders)} DERs, "
          f"{system.n_periods} periods; errors load {args.load_error:g}, renewable "
          f"{args.renewable_error:g}, seed {args.seed}")
    print(f"{'scheme':<16}{'wall s':>9}{'s/step':>9}{'steps':>7}{'violations':>12}")
    for scheme in args.schemes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            op = operate(system, scheme, Path(tmp) / "op", errors=errors)
            wall = time.perf_counter() - t0
        steps = op.steps
        viol = int(steps.loc[steps.commits > 0, "violations"].sum())
        print(f"{scheme:<16}{wall:>9.1f}{wall / len(steps):>9.2f}{len(steps):>7}{viol:>12}")


if __name__ == "__main__":
    main()
