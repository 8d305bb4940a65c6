"""Coordination at scale: ``common`` and ``admm`` on 10, 100 (and 1,000) feeders x 24 periods.

Run: ``python benchmarks/bench_coordination.py [--feeders 10 100 1000] [--runs ...]``.
Each system is PGLib's IEEE 118-bus grid with K copies of the Baran-Wu feeder (loads scaled
to 0.1 so that any K fits under the transmission loads), PV at 150 % of feeder peak and the
default scenario's SimBench profiles.

Runs (``--runs``, all by default): ``common`` (the joint SOCP), ``admm`` (in process),
``admm-dask1`` and ``admm-dask2`` (a Dask LocalCluster of 1 and 2 worker processes, cluster
start-up not timed), all with ADMM's default ``keep_solvers=None`` (each process keeps
feeder solvers within a 2 GB budget), and in process ``admm-keep`` (every feeder keeps its
Clarabel solver: ``keep_solvers=True``) and ``admm-lean`` (every solver freed after each
solve: ``keep_solvers=False``). Every run is a fresh Python process, so no run inherits
another's memory; a thread samples the summed resident memory of that process and its
children (the Dask workers) every 0.2 s. Prints wall time, time per feeder, ADMM iterations,
the gap to ``common``, the largest interface-schedule difference to in-process ``admm`` and
the peak memory, the messages exchanged (count, and count and bytes per iteration: every
message goes through the bus and its log), then the Dask speed-ups (1 worker against 2, in
process against 2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import yaml

RUNS = ("common", "admm", "admm-keep", "admm-lean", "admm-dask1", "admm-dask2")


def recipe(feeders: int) -> dict:
    from tsodso.io.matpower import load_grid
    from tsodso.scenarios import scenario_path

    base = yaml.safe_load(scenario_path("default").read_text())
    base["transmission"] = {"case": "pglib:pglib_opf_case118_ieee"}
    # load buses of case118 with the most load, round-robin
    loads = load_grid("pglib:pglib_opf_case118_ieee").loads.sort_values("p_mw", ascending=False)
    buses = loads.bus_id.tolist()[:50]
    per_bus = -(-feeders // len(buses))
    at = buses[: -(-feeders // per_bus)]
    base["feeders"] = [{"case": "matpower:case33bw", "at": at, "per_bus": per_bus, "scale": 0.1,
                        "substation_margin": 1.5, "line_margin": 1.3}]
    return base


class PeakMemory:
    """Peak of the summed RSS (bytes) of this process and all its descendants."""

    def __init__(self, every_s: float = 0.2) -> None:
        import psutil

        self._proc = psutil.Process()
        self._every = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            # a worker may exit between listing and reading
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self._every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def child(feeders: int, run: str) -> dict:
    """One timed run in this process; returns its figures."""
    import numpy as np

    from tsodso.coordination import run_scheme
    from tsodso.io.scenario import build_scenario
    from tsodso.parallel import DaskExecutor

    system = build_scenario(recipe(feeders))
    executor = DaskExecutor(workers=int(run[-1])) if run.startswith("admm-dask") else None
    try:
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            if run == "common":
                out = run_scheme(system, "common")
            else:
                extra = {"executor": executor} if executor else {}
                keep = {"admm-keep": True, "admm-lean": False}.get(run)  # None: the default
                out = run_scheme(system, "admm", keep_solvers=keep, **extra)
            wall = time.perf_counter() - t0
    finally:
        if executor is not None:
            executor.close()
    schedule = out.interface_schedules
    msgs = out.messages
    count = int(msgs["count"].sum()) if len(msgs) else 0
    size = int(msgs["bytes"].sum()) if len(msgs) else 0
    return {"feeders": len(system.feeder_ids), "run": run, "wall_s": wall,
            "messages": count, "message_bytes": size,
            "messages_per_iteration": count / max(out.iterations, 1),
            "bytes_per_iteration": size / max(out.iterations, 1),
            "iterations": out.iterations, "total_cost": out.total_cost,
            "peak_rss_gb": mem.peak / 1e9, "status": out.status,
            "schedule": np.asarray(schedule.to_numpy(), dtype=float).round(9).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--feeders", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--json", help="save the figures to this file")
    parser.add_argument("--child", nargs=2, metavar=("FEEDERS", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(int(args.child[0]), args.child[1])))
        return

    import numpy as np

    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"{'feeders':>8} {'run':>11} {'wall s':>9} {'s/feeder':>9} {'iter':>5} {'peak GB':>8}")
    figures = []
    for k in args.feeders:
        got: dict[str, dict] = {}
        for run in args.runs:
            proc = subprocess.run([sys.executable, __file__, "--child", str(k), run],
                                  capture_output=True, text=True, check=False)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{k:>8} {run:>11} failed (exit {proc.returncode}): "
                      f"{proc.stderr.strip().splitlines()[-1:] or ''}")
                continue
            r = got[run] = json.loads(line[0][7:])
            n = r["feeders"]
            print(f"{n:>8} {run:>11} {r['wall_s']:>9.2f} {r['wall_s'] / n:>9.3f} "
                  f"{r['iterations']:>5} {r['peak_rss_gb']:>8.2f}", flush=True)
        for run, r in got.items():
            if "common" in got and run != "common":
                c = got["common"]["total_cost"]
                r["gap_to_common_pct"] = 100 * (r["total_cost"] - c) / abs(c)
            if "admm" in got and run.startswith("admm") and run != "admm":
                diff = np.array(r["schedule"]) - np.array(got["admm"]["schedule"])
                r["max_schedule_diff_mw"] = float(np.abs(diff).max())
            extra = [f"{key} {r[key]:.2e}" for key in ("gap_to_common_pct", "max_schedule_diff_mw")
                     if key in r]
            extra.append(f"messages {r['messages']} ({r['messages_per_iteration']:.0f} and "
                         f"{r['bytes_per_iteration'] / 1e3:.1f} kB per iteration)")
            if extra:
                print(f"{'':>8} {run:>11} " + ", ".join(extra))
            figures.append({key: v for key, v in r.items() if key != "schedule"})
        if "admm-dask2" in got:
            two = got["admm-dask2"]["wall_s"]
            for base in ("admm-dask1", "admm"):
                if base in got:
                    print(f"{'':>8} speed-up of 2 Dask workers against {base}: "
                          f"{got[base]['wall_s'] / two:.2f}x", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()
