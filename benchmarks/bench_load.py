"""Time to load a MATPOWER/PGLib case: tsodso against pandapower's ``from_mpc``, same file.

Run: ``python benchmarks/bench_load.py [pglib:pglib_opf_case2869_pegase] [--repeat 7]``.
Prints the median of each and their ratio. pandapower reads ``.m`` files through
matpowercaseframes (``pip install matpowercaseframes``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable


def _median_time(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("case", nargs="?", default="pglib:pglib_opf_case2869_pegase")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from tsodso.io import load
    from tsodso.io.matpower import case_path, load_grid

    path = str(case_path(args.case))
    t_parse = _median_time(lambda: load_grid(args.case), args.repeat)
    t_full = _median_time(lambda: load(args.case), args.repeat)  # + System validation
    rows = [("tsodso load_grid (parse + schema)", t_parse),
            ("tsodso load (parse + schema + validate)", t_full)]
    try:
        import logging

        from pandapower.converter.matpower import from_mpc

        logging.getLogger("pandapower").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_pp = _median_time(lambda: from_mpc(path), args.repeat)
        rows.append(("pandapower from_mpc", t_pp))
    except ImportError as err:
        t_pp = float("nan")
        print(f"pandapower comparison skipped: {err}")
    print(f"case: {args.case} ({path})   median of {args.repeat} runs")
    for label, seconds in rows:
        print(f"  {label:<42s} {seconds * 1e3:9.1f} ms")
    print(f"  speed-up vs pandapower: {t_pp / t_full:.1f}x (validated), "
          f"{t_pp / t_parse:.1f}x (parse only)")


if __name__ == "__main__":
    main()
