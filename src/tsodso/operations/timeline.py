"""The stages of an operating day: when each market runs, what it covers, what it receives.

A :class:`Stage` clears at regular intervals; each run covers ``horizon_h`` hours from its
delivery start in steps of ``resolution_h`` and closes its gate ``gate_closure_h`` hours
before that start. :func:`default_timeline` is a day-ahead market once a day over the day
and a real-time stage every period over the rest of the day (receding horizon: it commits
its first period only). :func:`plan` lists every run of a timeline over ``days`` days: the
execution schedule ``tsodso operate --plan`` prints. Everything is checked before anything
runs (:meth:`Timeline.check`).

Times are hours from the start of the first day (``0`` = midnight of day one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsodso.errors import Issue, ValidationError

#: What a stage may receive from the stage before it.
RECEIVES = ("schedules", "states_of_charge", "prices")


@dataclass(frozen=True)
class Stage:
    """One market stage.

    Attributes
    ----------
    name : str
        ``day_ahead``, ``real_time``, ...
    resolution_h : float
        Length of one step (market period), hours.
    interval_h : float
        Time between two runs, hours.
    horizon_h : float or None
        Hours each run covers from its delivery start; None: to the end of the day (a
        receding horizon that shrinks through the day).
    gate_closure_h : float
        Hours before the delivery start at which offers close and the stage clears.
    commits_h : float or None
        Hours of each run that are final (None: all of it).
    receives : tuple of str
        What it takes from the stage before (:data:`RECEIVES`).
    """

    name: str
    resolution_h: float
    interval_h: float
    horizon_h: float | None
    gate_closure_h: float = 0.0
    commits_h: float | None = None
    receives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """The stages, in the order they run for one delivery day."""

    stages: tuple[Stage, ...] = field(default_factory=tuple)

    def check(self, period_hours: float, periods_per_day: int) -> None:
        """Refuse stages the system's data cannot run (a :class:`ValidationError` naming
        ``timeline.<stage>.<field>``): resolutions must be the data's period length
        (profiles are not resampled), intervals and horizons whole numbers of steps within
        the day, and what a stage receives must come from a stage before it."""
        issues = []
        day_h = period_hours * periods_per_day
        names = [s.name for s in self.stages]
        if not self.stages:
            issues.append(Issue("timeline", "stages", "", "at least one stage"))
        for i, s in enumerate(self.stages):
            where = f"timeline.{s.name}"
            if names.count(s.name) > 1:
                issues.append(Issue(where, "name", s.name, "stage names must be unique"))
            if not np.isclose(s.resolution_h, period_hours):
                issues.append(Issue(where, "resolution_h", str(s.resolution_h),
                                    f"must be the data's period length, {period_hours:g} h "
                                    "(profiles are not resampled)"))
            steps = s.interval_h / period_hours
            if not (s.interval_h > 0 and np.isclose(steps, round(steps))
                    and s.interval_h <= day_h + 1e-9):
                issues.append(Issue(where, "interval_h", str(s.interval_h),
                                    f"must be a whole number of {period_hours:g} h periods "
                                    f"within the day ({day_h:g} h)"))
            for name in ("horizon_h", "commits_h"):
                value = getattr(s, name)
                if value is not None and not (
                        value > 0 and np.isclose(value / period_hours,
                                                 round(value / period_hours))
                        and value <= day_h + 1e-9):
                    issues.append(Issue(where, name, str(value), "must be a whole number of "
                                        f"periods within the day ({day_h:g} h)"))
            if s.gate_closure_h < 0:
                issues.append(Issue(where, "gate_closure_h", str(s.gate_closure_h),
                                    "must be >= 0"))
            for what in s.receives:
                if what not in RECEIVES:
                    issues.append(Issue(where, "receives", what,
                                        f"unknown; choose from {', '.join(RECEIVES)}"))
                elif i == 0:
                    issues.append(Issue(where, "receives", what,
                                        "the first stage has no stage before it"))
        if issues:
            raise ValidationError(issues)


def default_timeline(period_hours: float, periods_per_day: int) -> Timeline:
    """Day-ahead once a day (gate closure at noon the day before) over the whole day, then
    real time every period over the rest of the day, committing its first period and
    receiving the day-ahead schedules and the states of charge."""
    day = period_hours * periods_per_day
    return Timeline((
        Stage("day_ahead", period_hours, day, day, gate_closure_h=12.0),
        Stage("real_time", period_hours, period_hours, None, gate_closure_h=0.0,
              commits_h=period_hours, receives=("schedules", "states_of_charge")),
    ))


def plan(timeline: Timeline, period_hours: float, periods_per_day: int, days: int = 1
         ) -> pd.DataFrame:
    """Every run of ``timeline`` over ``days`` days, in the order they run (each day's
    stages in turn, each stage's runs by delivery time):
    ``step`` (0-based, the order they run), ``stage``, ``day``, ``run`` (within the day),
    ``gate_closure_h``, ``delivery_start_h``, ``delivery_end_h``, ``first_period`` and
    ``periods`` (of the day's data), ``commits`` (periods this run delivers: only the last
    stage delivers, the stages before it schedule) and ``receives``."""
    timeline.check(period_hours, periods_per_day)
    if not (isinstance(days, int) and days >= 1):
        raise ValidationError([Issue("operate", "days", str(days), "must be an integer >= 1")])
    rows = []
    day_h = period_hours * periods_per_day
    order = {s.name: i for i, s in enumerate(timeline.stages)}
    for day in range(days):
        for s in timeline.stages:
            every = round(s.interval_h / period_hours)
            for k, first in enumerate(range(0, periods_per_day, every)):
                horizon = (periods_per_day - first if s.horizon_h is None
                           else min(round(s.horizon_h / period_hours), periods_per_day - first))
                commits = horizon if s.commits_h is None else min(
                    round(s.commits_h / period_hours), horizon)
                if s is not timeline.stages[-1]:
                    commits = 0  # a schedule: the last stage delivers
                start = day * day_h + first * period_hours
                rows.append({"stage": s.name, "day": day, "run": k,
                             "gate_closure_h": start - s.gate_closure_h,
                             "delivery_start_h": start,
                             "delivery_end_h": start + horizon * period_hours,
                             "first_period": first, "periods": horizon, "commits": commits,
                             "receives": ",".join(s.receives), "_order": order[s.name]})
    frame = pd.DataFrame(rows).sort_values(["day", "_order", "gate_closure_h", "run"],
                                           kind="stable")
    frame = frame.drop(columns="_order").reset_index(drop=True)
    frame.insert(0, "step", np.arange(len(frame)))
    return frame


__all__ = ["RECEIVES", "Stage", "Timeline", "default_timeline", "plan"]
