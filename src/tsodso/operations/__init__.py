"""Operations: a timeline of market stages (day ahead, real time) with forecasts, states of
charge carried between stages, and results written as the run goes (resumable)."""

from tsodso.operations.forecast import ForecastErrors, forecast_system, realised_now
from tsodso.operations.run import Operation, operate, read_operation
from tsodso.operations.timeline import Stage, Timeline, default_timeline, plan

__all__ = ["ForecastErrors", "Operation", "Stage", "Timeline", "default_timeline",
           "forecast_system", "operate", "plan", "read_operation", "realised_now"]
