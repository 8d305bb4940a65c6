"""Operations: a timeline of market stages (day ahead, real time) with forecasts, states of
charge carried between stages, results written as the run goes (resumable), the settlement
of what happened, and the operating events: reserves activated through distribution,
emergency requests to a DSO, and faults on a feeder."""

from tsodso.operations.emergency import EmergencyResult, emergency_request
from tsodso.operations.faults import FaultOptions, FaultResult, restore
from tsodso.operations.forecast import ForecastErrors, forecast_system, realised_now
from tsodso.operations.reserves import (
    Imbalance,
    ReserveRequirement,
    ReserveResult,
    compare_variants,
    run_reserves,
)
from tsodso.operations.run import Operation, operate, read_operation
from tsodso.operations.settle import OperationSettlement, settle_operation
from tsodso.operations.timeline import Stage, Timeline, default_timeline, plan

__all__ = ["EmergencyResult", "FaultOptions", "FaultResult", "ForecastErrors", "Imbalance",
           "Operation", "OperationSettlement", "ReserveRequirement", "ReserveResult", "Stage",
           "Timeline", "compare_variants", "default_timeline", "emergency_request",
           "forecast_system", "operate", "plan", "read_operation", "realised_now", "restore",
           "run_reserves", "settle_operation"]
