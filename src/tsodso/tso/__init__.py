"""The TSO side: DC-OPF market clearing with reserves, storage and DER offers; LMPs."""

from tsodso.tso.dc_network import DcNetwork, build_dc_network
from tsodso.tso.market import TsoMarket, TsoOptions, TsoResult, clear_tso_market
from tsodso.tso.offers import TsoView, tso_view
from tsodso.tso.reserves import DEFAULT_PRODUCTS, ReserveProduct

__all__ = [
    "DEFAULT_PRODUCTS",
    "DcNetwork",
    "ReserveProduct",
    "TsoMarket",
    "TsoOptions",
    "TsoResult",
    "TsoView",
    "build_dc_network",
    "clear_tso_market",
    "tso_view",
]
