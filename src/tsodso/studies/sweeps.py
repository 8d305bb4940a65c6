"""DER penetration sweeps: every chosen scheme over a grid of penetration levels and seeds.

A *point* of the sweep is one penetration level and one seed. Its system is the scenario
recipe with

* **penetration** ``p``: every DER kind's ``share`` (installed capacity as a share of each
  feeder's peak load) times ``p``, so ``1`` is the scenario as written, ``0`` has no DER
  and ``2`` twice its fleet. A SimBench scenario (``simbench: {code: ...}``) has its own
  fleets instead, published for three phases: the scenario digit of its code (``0`` today,
  ``1`` 2024, ``2`` 2034); its levels are those digits, nothing in between.
* **seed** ``s``: the recipe's ``seed`` (where the DERs go, which buses) set to ``s``.

Each point runs ``common`` (the first-best benchmark: the gap of every scheme is measured
against it, so it runs even when not chosen, and its row is kept) and then the chosen
schemes on the same system. A point's rows are written to the sweep folder
(``points/p<level>-s<seed>.json``, atomically) as soon as it finishes, wherever it ran; a
sweep started again with the same arguments skips the points it finds there and runs the
rest. Points run through a :mod:`tsodso.parallel` executor: in process, on a Dask
``LocalCluster`` of ``workers`` processes, or on a Dask scheduler (a sweep that outgrows one
machine runs on a cluster unchanged); results do not depend on where they ran.

Rows (:data:`ROW_COLUMNS`): ``scheme``, ``penetration``, ``seed``, ``status``,
``total_cost`` ($ over the horizon), ``gap_to_common_pct`` (100 (cost - common) / common),
``violations`` (what an AC power flow of the market's schedule finds beyond the
tolerances of :class:`~tsodso.coordination.outcome.Outcome`: bus x period and line x
period), ``delivered_violations`` (the same for what the feeders delivered after any DSO
correction), ``curtailment_mwh`` (renewable energy available but not produced),
``shed_mwh``, ``der_revenue`` (every aggregator's settlement, $), ``consumer_payments`` ($
paid by all consumers), ``der_capacity_mw`` and ``wall_s``. A scheme that ends without an
answer has its error in ``status`` and NaN figures.

:func:`coordination_value` reduces the rows to the value-of-coordination curve (per scheme
and penetration, the mean over seeds) and :func:`first_violation` finds the penetration at
which a scheme first violates distribution limits.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsodso.errors import SolveError, TsodsoError

FORMAT = "tsodso-sweep/1"
CONFIG_FILE = "sweep.json"
POINTS_DIR = "points"
#: Columns of the sweep table, one row per scheme, penetration and seed.
ROW_COLUMNS = ("scheme", "penetration", "seed", "status", "total_cost", "gap_to_common_pct",
               "violations", "delivered_violations", "curtailment_mwh", "shed_mwh",
               "der_revenue", "consumer_payments", "der_capacity_mw", "wall_s")
_SIMBENCH_DIGIT = re.compile(r"^(?P<head>.+--)(?P<digit>[012])(?P<tail>-(?:sw|no_sw))$")


@dataclass
class Sweep:
    """A sweep's rows and where they are (see the module docstring).

    ``rows`` has :data:`ROW_COLUMNS`, ordered by penetration, seed and scheme (``common``
    first); ``computed`` counts the points this call ran (the others were in the folder)."""

    folder: Path | None
    config: dict[str, Any]
    rows: pd.DataFrame
    computed: int = 0
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def curve(self) -> pd.DataFrame:
        """The value-of-coordination curve (:func:`coordination_value`)."""
        return coordination_value(self.rows)

    def first_violation(self, scheme: str = "tso_only") -> float | None:
        """The lowest penetration at which ``scheme`` violates (:func:`first_violation`)."""
        return first_violation(self.rows, scheme)


def penetration_levels(text: str) -> list[float]:
    """Levels written ``START:STOP:STEP`` (both ends included, e.g. ``0:2:0.25``), or a
    comma-separated list (``0,1,2``)."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise TsodsoError(f"penetration: write START:STOP:STEP (e.g. 0:2:0.25), got "
                              f"{text!r}")
        try:
            start, stop, step = (float(p) for p in parts)
        except ValueError:
            raise TsodsoError(f"penetration {text!r}: START, STOP and STEP must be numbers") \
                from None
        if not all(map(math.isfinite, (start, stop, step))) or step <= 0 or stop < start:
            raise TsodsoError(f"penetration {text!r}: needs finite START <= STOP and STEP > 0")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        if n > 1000:
            raise TsodsoError(f"penetration {text!r}: {n} levels; at most 1000")
        levels = [round(start + k * step, 12) for k in range(n)]
    else:
        try:
            levels = [float(p) for p in text.split(",")]
        except ValueError:
            raise TsodsoError(f"penetration: levels must be numbers, got {text!r}") from None
    for level in levels:
        if not math.isfinite(level) or level < 0:
            raise TsodsoError(f"penetration: level {level:g} must be a finite number >= 0")
    if len(set(levels)) != len(levels):
        raise TsodsoError(f"penetration: a level is given twice in {text!r}")
    return levels


def at_penetration(recipe: dict[str, Any], level: float, seed: int) -> dict[str, Any]:
    """The recipe at penetration ``level`` with DER placement ``seed`` (module docstring)."""
    out = copy.deepcopy(recipe)
    out["seed"] = int(seed)
    if "simbench" in out:
        sb = out["simbench"] if isinstance(out["simbench"], dict) else {}
        m = _SIMBENCH_DIGIT.match(str(sb.get("code", "")))
        if m is None:
            raise TsodsoError(f"penetration: SimBench code {sb.get('code')!r} has no scenario "
                              "digit (…--0-sw, --1-sw, --2-sw)")
        if level not in (0, 1, 2):
            raise TsodsoError(f"penetration {level:g}: a SimBench scenario has its fleets at "
                              "levels 0, 1 and 2 (today, 2024, 2034) only")
        sb["code"] = f"{m['head']}{int(level)}{m['tail']}"
        return out
    ders = out.get("ders")
    if not isinstance(ders, dict) or not ders:
        raise TsodsoError("penetration: the scenario has no DER fleet (ders:) to scale")
    for kind, options in ders.items():
        if not isinstance(options, dict) or "share" not in options:
            raise TsodsoError(f"penetration: ders.{kind} has no share to scale")
        options["share"] = float(options["share"]) * level
    return out


def run_point(recipe: dict[str, Any], level: float, seed: int, schemes: Sequence[str],
              options: dict[str, dict[str, Any]], base_dir: str | None = None
              ) -> list[dict[str, Any]]:
    """The rows of one point (``common`` first, then ``schemes``); runs anywhere (a Dask
    worker too): it takes plain data and returns plain data. ``base_dir`` resolves the
    recipe's relative case paths."""
    from tsodso.coordination import run_scheme
    from tsodso.io.scenario import build_scenario

    system = build_scenario(at_penetration(recipe, level, seed),
                            base_dir=None if base_dir is None else Path(base_dir))
    capacity = float(np.maximum(system.ders.p_max_mw, -system.ders.p_min_mw).sum()) \
        if len(system.ders) else 0.0
    rows: list[dict[str, Any]] = []
    common = math.nan
    for scheme in ["common", *[s for s in schemes if s != "common"]]:
        t0 = time.perf_counter()
        row: dict[str, Any] = {"scheme": scheme, "penetration": float(level),
                               "seed": int(seed), "der_capacity_mw": capacity}
        try:
            o = run_scheme(system, scheme, **options.get(scheme, {}))
        except SolveError as err:
            row.update(status=f"error: {err}", **{k: math.nan for k in (
                "total_cost", "gap_to_common_pct", "violations", "delivered_violations",
                "curtailment_mwh", "shed_mwh", "der_revenue", "consumer_payments")})
        else:
            if scheme == "common":
                common = o.total_cost
            row.update(
                status=o.status, total_cost=float(o.total_cost),
                gap_to_common_pct=100.0 * (o.total_cost - common) / common
                if common else math.nan,
                violations=int(len(o.violations)),
                delivered_violations=int(len(o.delivered_violations)),
                curtailment_mwh=float(o.curtailed_mwh),
                shed_mwh=float(o.shortfalls.shed_mwh),
                der_revenue=float(sum(o.der_revenues.values())),
                consumer_payments=float(o.consumer_payments))
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
    return rows


def _point_file(folder: Path, level: float, seed: int) -> Path:
    return folder / POINTS_DIR / f"p{level:g}-s{seed}.json"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=True),
                   encoding="utf-8")
    os.replace(tmp, path)


def sweep(recipe: dict[str, Any], schemes: Sequence[str], levels: Sequence[float],
          seeds: Sequence[int], out: str | os.PathLike[str] | None = None,
          options: dict[str, dict[str, Any]] | None = None, workers: int | None = None,
          scheduler: str | None = None, scenario: str = "", base_dir: str | None = None,
          on_point: Callable[[float, int, bool], None] | None = None) -> Sweep:
    """Run (or finish) the sweep of ``schemes`` over ``levels`` x ``seeds`` (module
    docstring) and return its rows.

    ``out`` is the sweep folder (None: nothing stored, nothing resumed); ``options`` go to
    each scheme (by scheme name); ``workers`` > 1 runs points on a Dask ``LocalCluster``,
    ``scheduler`` on an existing Dask cluster (whose workers must reach ``base_dir``, the
    folder relative case paths of the recipe start from). ``on_point(level, seed,
    computed)`` is called as each point is stored or found."""
    from tsodso.coordination import check_scheme_names, check_scheme_options
    from tsodso.parallel import check_executor_options, make_executor

    schemes = check_scheme_names(list(schemes))
    options = dict(options or {})
    for name, opts in options.items():
        if name not in schemes:
            raise TsodsoError(f"sweep: options for {name!r}, which the sweep does not run")
        check_scheme_options(name, opts)
        for key in ("executor", "bus"):
            if key in opts:
                raise TsodsoError(f"sweep: {name} option {key!r} cannot travel to a worker; "
                                  "the sweep parallelises points instead")
    levels = [float(v) for v in levels]
    seeds = [int(s) for s in seeds]
    if not levels or not seeds:
        raise TsodsoError("sweep: give at least one penetration level and one seed")
    check_executor_options(workers, scheduler)
    # refuse a bad recipe before any worker starts: every level at the first seed
    for level in levels:
        at_penetration(recipe, level, seeds[0])
    config = {"format": FORMAT, "scenario": scenario, "recipe": recipe,
              "schemes": list(schemes), "options": options}
    folder = Path(out) if out is not None else None
    done: dict[tuple[float, int], list[dict[str, Any]]] = {}
    if folder is not None:
        done = _open(folder, config)
    todo = [(lv, sd) for lv in levels for sd in seeds if (lv, sd) not in done]
    for lv, sd in [(lv, sd) for lv in levels for sd in seeds if (lv, sd) in done]:
        if on_point is not None:
            on_point(lv, sd, False)
    computed = 0
    if todo:
        executor = make_executor(workers, scheduler)
        try:
            n = len(todo)
            for i, rows in executor.as_completed(
                    run_point, [recipe] * n, [p[0] for p in todo], [p[1] for p in todo],
                    [list(schemes)] * n, [options] * n, [base_dir] * n):
                level, seed = todo[i]
                done[level, seed] = rows
                if folder is not None:
                    _write_json(_point_file(folder, level, seed), rows)
                computed += 1
                if on_point is not None:
                    on_point(level, seed, True)
        finally:
            executor.close()
    rows = [r for lv in levels for sd in seeds for r in done[lv, sd]
            if r["scheme"] in schemes or r["scheme"] == "common"]
    table = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    return Sweep(folder=folder, config=config, rows=table, computed=computed,
                 skipped=len(levels) * len(seeds) - computed)


def _open(folder: Path, config: dict[str, Any]) -> dict[tuple[float, int], list[dict]]:
    """Start the sweep folder, or check it holds this sweep and read its finished points
    (any level and seed: a rerun with more levels reuses them)."""
    path = folder / CONFIG_FILE
    if path.exists():
        held = json.loads(path.read_text(encoding="utf-8"))
        if held != json.loads(json.dumps(config)):
            raise TsodsoError(f"{folder} holds another sweep ({held.get('scenario')}, "
                              f"schemes {', '.join(held.get('schemes', []))}); choose another "
                              "--out or remove it")
    elif folder.exists() and any(folder.iterdir()):
        raise TsodsoError(f"{folder} exists and is not a sweep folder; choose another --out")
    (folder / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _write_json(path, config)
    done = {}
    for file in sorted((folder / POINTS_DIR).glob("p*-s*.json")):
        rows = json.loads(file.read_text(encoding="utf-8"))
        if rows:
            done[float(rows[0]["penetration"]), int(rows[0]["seed"])] = rows
    return done


def read_sweep(folder: str | os.PathLike[str]) -> Sweep:
    """A sweep folder's finished points as rows (ordered by penetration and seed)."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.exists():
        raise TsodsoError(f"{folder} is not a sweep folder (no {CONFIG_FILE})")
    config = json.loads(path.read_text(encoding="utf-8"))
    done = _open(folder, config)
    rows = [r for key in sorted(done) for r in done[key]]
    return Sweep(folder=folder, config=config,
                 rows=pd.DataFrame(rows, columns=list(ROW_COLUMNS)))


def coordination_value(rows: pd.DataFrame) -> pd.DataFrame:
    """Per scheme and penetration, the mean over seeds of the total cost, the gap to
    ``common`` (%), the violations (market schedule and delivered) and the curtailment;
    ``value_of_coordination`` is the scheme's mean cost above ``common``'s ($: what full
    coordination saves against that scheme)."""
    ok = rows[~rows.status.astype(str).str.startswith("error")]
    curve = ok.groupby(["scheme", "penetration"], sort=False).agg(
        total_cost=("total_cost", "mean"), gap_to_common_pct=("gap_to_common_pct", "mean"),
        violations=("violations", "mean"),
        delivered_violations=("delivered_violations", "mean"),
        curtailment_mwh=("curtailment_mwh", "mean"), seeds=("seed", "nunique"))
    common = curve.xs("common", level="scheme").total_cost
    curve["value_of_coordination"] = curve.total_cost - common.reindex(
        curve.index.get_level_values("penetration")).to_numpy()
    return curve.reset_index().sort_values(["scheme", "penetration"], kind="stable",
                                           ignore_index=True)


def first_violation(rows: pd.DataFrame, scheme: str = "tso_only") -> float | None:
    """The lowest penetration at which ``scheme``'s market schedule violates a distribution
    limit for some seed (None: never within the sweep)."""
    hit = rows[(rows.scheme == scheme) & (rows.violations > 0)]
    return float(hit.penetration.min()) if len(hit) else None


__all__ = ["CONFIG_FILE", "FORMAT", "ROW_COLUMNS", "Sweep", "at_penetration",
           "coordination_value", "first_violation", "penetration_levels", "read_sweep",
           "run_point", "sweep"]
