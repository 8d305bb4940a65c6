"""Operate a system through a timeline of market stages, with forecasts, writing as it goes.

:func:`operate` runs every step of :func:`~tsodso.operations.timeline.plan`:

* **day ahead**: the chosen coordination scheme clears the day on the *forecast* system
  (:mod:`tsodso.operations.forecast`); its schedules (DER dispatch, interface flows, LMPs)
  are what the parties plan to do and what the TSO sends the DSOs;
* **real time**, every period ``t``: the same scheme clears the rest of the day on a
  system whose period ``t`` is what happens and whose later periods are still forecast,
  starting from the storage and EV energy that the periods before left (a receding
  horizon). Only period ``t`` is committed: its DER output moves the states of charge, and
  its dispatch, prices and interface flows are the realised operation. Storage ends the
  day with at least the energy it started it with, as in day ahead, so with a perfect
  forecast the real-time steps reproduce the day-ahead plan (Bellman's principle: the
  rest of an optimal plan is optimal for the rest of the day).

Each step writes its own folder (``steps/<step>-<stage>/``: tables as Parquet, a summary,
its messages) and then the operation's ``state.json`` (the next step, the energies) by
atomic rename: a run killed at any point is resumed by the same command, which discards a
step left half written and goes on from the last completed one, ending with the same
results as an uninterrupted run. :func:`read_operation` assembles the tables.

Units: MW, MWh, $/MWh; periods are those of the day's data (0-based, per day).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsodso import progress
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.operations.forecast import ForecastErrors, forecast_system, realised_now
from tsodso.operations.timeline import Timeline, default_timeline, plan

FORMAT = "tsodso-operation/1"
STATE_FILE = "state.json"
CONFIG_FILE = "operation.json"
#: Tables each step writes (periods x column): DER output, LMPs at every transmission bus,
#: interface imports per feeder.
TABLES = ("der_p_mw", "lmp", "interface_mw")
#: The settlement table each step writes (long: period, party, line, amount in $).
STATEMENTS = "statements"


@dataclass
class Operation:
    """An operation's results as read back from its folder (see :func:`read_operation`).

    ``realised`` holds the committed real-time periods (index: ``(day, period)``),
    ``day_ahead`` the day-ahead schedules; each maps a table name (:data:`TABLES`) to a
    frame, and :data:`STATEMENTS` to the settlement per period (columns ``day``,
    ``period``, ``party``, ``line``, ``amount`` in $, + received). ``steps`` has one row
    per completed step (stage, status, cost of the run, AC violations in the committed
    periods of the market's schedule and of the dispatch the feeders delivered, wall
    time)."""

    folder: Path
    config: dict[str, Any]
    plan: pd.DataFrame
    steps: pd.DataFrame
    day_ahead: dict[str, pd.DataFrame] = field(default_factory=dict)
    realised: dict[str, pd.DataFrame] = field(default_factory=dict)
    energy_mwh: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every planned step ran."""
        return len(self.steps) == len(self.plan)


def periods_per_day(system: System) -> int:
    """Periods in a day of the system's data (a day must be a whole number of them)."""
    per_day = 24.0 / system.profiles.period_hours
    if not np.isclose(per_day, round(per_day)):
        raise TsodsoError("operate: a day is not a whole number of "
                          f"{system.profiles.period_hours:g} h periods")
    return int(round(per_day))


def check_days(system: System, days: int) -> None:
    """Refuse ``days`` the system's horizon does not hold."""
    per_day = periods_per_day(system)
    if system.n_periods < days * per_day:
        raise TsodsoError(f"operate: {days} day(s) need {days * per_day} periods of data; "
                          f"system '{system.name}' has {system.n_periods}")


def initial_energy(system: System) -> dict[str, float]:
    """Storage and EV energy at the start of the horizon, MWh per der_id."""
    d = system.ders
    units = d[d.kind.isin(["storage", "ev"])]
    return {str(k): float(v) for k, v in
            zip(units.der_id, units.soc_init * units.energy_mwh, strict=True)}


def energy_after(system: System, energy: dict[str, float], der_p_mw: pd.Series) -> dict[str, float]:
    """Storage and EV energy after one period of output ``der_p_mw`` (MW per der_id,
    injection positive): charging stores ``eta_charge`` of what is drawn, discharging
    takes ``1 / eta_discharge`` of what is injected."""
    d = system.ders.set_index("der_id")
    dt = system.profiles.period_hours
    out = dict(energy)
    for der in energy:
        p = float(der_p_mw.get(der, 0.0))
        delta = -p * d.at[der, "eta_charge"] if p < 0 else -p / d.at[der, "eta_discharge"]
        out[der] = energy[der] + delta * dt
    return out


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (a temporary file renamed over the target)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _step_dir(folder: Path, row: pd.Series) -> Path:
    return folder / "steps" / f"{int(row.step):05d}-{row.stage}"


def operate(system: System, scheme: str, out: str | os.PathLike[str],
            errors: ForecastErrors | None = None, days: int = 1,
            timeline: Timeline | None = None, scenario: str = "",
            options: dict[str, Any] | None = None,
            stop_after: int | None = None,
            on_step: Callable[[int], None] | None = None) -> Operation:
    """Run (or resume) the operation of ``system`` under ``scheme`` into folder ``out``
    (see the module docstring); returns it as :func:`read_operation` reads it.

    ``errors`` is the forecast error model (default: perfect forecasts); ``days`` days of
    the system's horizon are operated (it must hold them); ``options`` go to the scheme.
    ``stop_after`` ends after that many steps in all (a partial run, as if killed).
    """
    from tsodso.actors import LOG_FILE_NAME, MessageBus, MessageLog
    from tsodso.coordination import SCHEMES, check_scheme_options, run_scheme

    if scheme not in SCHEMES:
        raise TsodsoError(f"unknown scheme '{scheme}'; schemes: {', '.join(SCHEMES)}")
    options = dict(options or {})
    check_scheme_options(scheme, options)
    errors = errors or ForecastErrors()
    per_day = periods_per_day(system)
    dt = system.profiles.period_hours
    timeline = timeline or default_timeline(dt, per_day)
    schedule = plan(timeline, dt, per_day, days)
    check_days(system, days)
    system = system.check()
    folder = Path(out)
    config = {"format": FORMAT, "scenario": scenario or system.name, "scheme": scheme,
              "days": days, "period_hours": dt, "errors": asdict(errors),
              "options": _plain(options),
              "aggregators": {str(d): str(a or "") for d, a in
                              zip(system.ders.der_id, system.ders.aggregator_id, strict=True)},
              "timeline": [asdict(s) for s in timeline.stages]}
    state = _open(folder, config, system, schedule)
    started = state["next_step"]
    with progress.task(f"operate {scheme}", total=len(schedule)) as tick:
        if started:
            tick(steps=started, info="resumed")
        for _, row in schedule.iloc[started:].iterrows():
            if stop_after is not None and int(row.step) >= stop_after:
                break
            t0 = time.perf_counter()
            step_dir = _step_dir(folder, row)
            shutil.rmtree(step_dir, ignore_errors=True)  # a half-written try of this step
            step_dir.mkdir(parents=True)
            day = system.window(int(row.day) * per_day, (int(row.day) + 1) * per_day)
            forecast = forecast_system(day, ForecastErrors(
                errors.load_sigma, errors.renewable_sigma, errors.seed + int(row.day)))
            energy = state["energy"]
            if int(row.first_period) == 0 and row.stage == timeline.stages[0].name:
                view = forecast.with_energy(energy)
            else:
                view = realised_now(forecast, day, int(row.first_period)).window(
                    int(row.first_period), int(row.first_period) + int(row.periods)
                ).with_energy(energy)
            with MessageLog(step_dir / LOG_FILE_NAME, run_id=f"{int(row.step):05d}") as log:
                bus = MessageBus(log, scheme=scheme)
                outcome = run_scheme(view, scheme, bus=bus, **options)
                if int(row.commits) == 0:  # a plan, not a delivery: the parties' schedules
                    schedule_exchanges(bus, view, outcome.der_dispatch,
                                       f"{row.stage}, day {int(row.day)}")
            commits = int(row.commits)
            tables = _tables(outcome, int(row.first_period))
            for name, frame in tables.items():
                frame.to_parquet(step_dir / f"{name}.parquet")
            _statements_table(outcome, int(row.first_period)).to_parquet(
                step_dir / f"{STATEMENTS}.parquet")
            if commits:
                done = tables["der_p_mw"].iloc[:commits]
                for _, p in done.iterrows():
                    energy = energy_after(system, energy, p)
            v, dv = outcome.violations, outcome.delivered_violations
            committed_v = v[v.period < commits] if len(v) else v
            committed_dv = dv[dv.period < commits] if len(dv) else dv
            summary = {"stage": row.stage, "day": int(row.day), "run": int(row.run),
                       "first_period": int(row.first_period), "periods": int(row.periods),
                       "commits": commits, "status": outcome.status,
                       "run_cost": float(outcome.total_cost),
                       "shed_mwh": float(outcome.shortfalls.shed_mwh),
                       "violations": int(len(committed_v)),
                       "delivered_violations": int(len(committed_dv)),
                       "messages": int(outcome.messages["count"].sum())
                       if len(outcome.messages) else 0,
                       "wall_s": time.perf_counter() - t0}
            _write_json(step_dir / "summary.json", summary)
            state = {"next_step": int(row.step) + 1, "energy": energy}
            _write_json(folder / STATE_FILE, state)
            tick(info=f"{row.stage} {int(row.first_period)}")
            if on_step is not None:
                on_step(int(row.step))
    return read_operation(folder)


def schedule_exchanges(bus: Any, system: System, schedule: pd.DataFrame, when: str
                       ) -> list[Any]:
    """After a planning stage, the schedules the parties exchange (sent on ``bus``):

    * the TSO sends each DSO the final schedules of the DERs in its area (MW per period,
      injection positive: after any DSO correction, what the DERs are to do);
    * each aggregator sends the TSO and the DSOs of its DERs its baseline: the same
      schedules of its own DERs, against which delivery is measured
      (:mod:`tsodso.operations.settle`).

    ``schedule`` is the stage's DER dispatch (periods x der_id); returns the messages
    sent."""
    from tsodso.actors import DerSchedule, Party, new_envelope

    d = system.ders
    ids = [i for i in d.der_id if i in schedule.columns]
    d = d.set_index("der_id").loc[ids]
    dso_of = system.dso_of()
    T, dt = len(schedule), system.profiles.period_hours

    def message(sender: Party, recipient: Party, der_ids: list[str]) -> Any:
        env = new_envelope(sender, recipient, periods=T, period_hours=dt, sim_time=when)
        return DerSchedule(env, der_ids=tuple(der_ids),
                           p_mw=schedule[der_ids].to_numpy()[:T])

    msgs = []
    area = d.feeder_id.map(dso_of)
    for dso in dict.fromkeys(area):
        msgs.append(message(Party.tso(), Party.dso(dso), list(area.index[area == dso])))
    owners = d.aggregator_id.fillna("")
    for agg in dict.fromkeys(owners[owners != ""]):
        own = owners.index[owners == agg]
        msgs.append(message(Party.aggregator(agg), Party.tso(), list(own)))
        for dso in dict.fromkeys(area[own]):
            msgs.append(message(Party.aggregator(agg), Party.dso(dso),
                                [i for i in own if area[i] == dso]))
    return bus.send_all(msgs)


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    """Scheme options as JSON values (objects such as executors by their type name)."""
    return {k: v if isinstance(v, bool | int | float | str | type(None)) else type(v).__name__
            for k, v in options.items()}


def _open(folder: Path, config: dict[str, Any], system: System, schedule: pd.DataFrame
          ) -> dict[str, Any]:
    """Start the operation's folder, or check it holds this operation and return where it
    stopped."""
    path = folder / CONFIG_FILE
    if path.exists():
        held = json.loads(path.read_text(encoding="utf-8"))
        if held.get("config") != json.loads(json.dumps(config)):
            other = held.get("config", {})
            raise TsodsoError(f"{folder} holds another operation ({other.get('scheme')} on "
                              f"{other.get('scenario')}); choose another --out or remove it")
        state_path = folder / STATE_FILE
        if state_path.exists():
            return json.loads(state_path.read_text(encoding="utf-8"))
        return {"next_step": 0, "energy": initial_energy(system)}
    if folder.exists() and any(folder.iterdir()):
        raise TsodsoError(f"{folder} exists and is not an operation folder; choose another "
                          "--out")
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"config": config, "plan": schedule.to_dict(orient="records")})
    return {"next_step": 0, "energy": initial_energy(system)}


def _tables(outcome: Any, first_period: int) -> dict[str, pd.DataFrame]:
    """The run's tables with periods of the day (the window starts at ``first_period``)."""
    index = pd.RangeIndex(first_period, first_period + len(outcome.lmp), name="period")
    iface = outcome.interface_schedules.copy()
    return {"der_p_mw": outcome.der_dispatch.set_axis(index[:len(outcome.der_dispatch)]),
            "lmp": outcome.lmp.set_axis(index).rename(columns=str),
            "interface_mw": iface.set_axis(index[:len(iface)])}


def _statements_table(outcome: Any, first_period: int) -> pd.DataFrame:
    """The run's settlement per period, long: ``period`` (of the day), ``party``, ``line``,
    ``amount`` ($, positive when the party receives it)."""
    frame = outcome.statements_by_period
    if frame.empty:
        return pd.DataFrame({"period": pd.Series(dtype=int), "party": pd.Series(dtype=str),
                             "line": pd.Series(dtype=str), "amount": pd.Series(dtype=float)})
    frame = frame.set_axis(pd.RangeIndex(first_period, first_period + len(frame),
                                         name="period"))
    long = frame.stack(["party", "line"], future_stack=True).rename("amount").reset_index()
    return long[["period", "party", "line", "amount"]]


def read_operation(folder: str | os.PathLike[str]) -> Operation:
    """An operation folder's plan, completed steps and tables (day-ahead schedules and the
    realised real-time periods, each committed period once)."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.exists():
        raise TsodsoError(f"{folder} is not an operation folder (no {CONFIG_FILE})")
    held = json.loads(path.read_text(encoding="utf-8"))
    schedule = pd.DataFrame(held["plan"])
    state_path = folder / STATE_FILE
    state = (json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists()
             else {"next_step": 0, "energy": {}})
    rows, day_ahead, realised = [], {}, {t: [] for t in (*TABLES, STATEMENTS)}
    first_stage = held["config"]["timeline"][0]["name"]
    for _, row in schedule.iloc[:state["next_step"]].iterrows():
        step_dir = _step_dir(folder, row)
        summary = json.loads((step_dir / "summary.json").read_text(encoding="utf-8"))
        rows.append({"step": int(row.step), **summary})
        frames = {t: pd.read_parquet(step_dir / f"{t}.parquet") for t in TABLES}
        money = pd.read_parquet(step_dir / f"{STATEMENTS}.parquet")
        money.insert(0, "day", day := int(row.day))
        if row.stage == first_stage:
            for t, f in frames.items():
                day_ahead.setdefault(t, []).append(f.set_index(
                    pd.MultiIndex.from_product([[day], f.index], names=["day", "period"])))
            day_ahead.setdefault(STATEMENTS, []).append(money)
        elif summary["commits"]:
            for t, f in frames.items():
                part = f.iloc[:summary["commits"]]
                realised[t].append(part.set_index(pd.MultiIndex.from_product(
                    [[day], part.index], names=["day", "period"])))
            last = int(row.first_period) + int(summary["commits"])
            realised[STATEMENTS].append(money[money.period < last])
    return Operation(folder=folder, config=held["config"], plan=schedule,
                     steps=pd.DataFrame(rows),
                     day_ahead={t: pd.concat(v, ignore_index=t == STATEMENTS)
                                for t, v in day_ahead.items() if v},
                     realised={t: pd.concat(v, ignore_index=t == STATEMENTS)
                               for t, v in realised.items() if v},
                     energy_mwh=dict(state.get("energy", {})))


__all__ = ["FORMAT", "Operation", "STATEMENTS", "TABLES", "check_days", "energy_after",
           "initial_energy", "operate", "periods_per_day", "read_operation",
           "schedule_exchanges"]
