"""AC power flow: multi-period batch power flow of feeders (power-grid-model) to verify the
dispatch markets produce, and an AC check of the transmission grid (pandapower)."""

from tsodso.powerflow.feeder import (
    FeederPowerFlow,
    der_injections,
    feeder_power_flow,
    power_flow,
)
from tsodso.powerflow.result import Extreme, NotConvergedError, PowerFlowResult
from tsodso.powerflow.transmission import TransmissionPowerFlowResult, transmission_power_flow

__all__ = [
    "Extreme",
    "FeederPowerFlow",
    "NotConvergedError",
    "PowerFlowResult",
    "TransmissionPowerFlowResult",
    "der_injections",
    "feeder_power_flow",
    "power_flow",
    "transmission_power_flow",
]
