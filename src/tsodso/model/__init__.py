"""Typed, schema-checked tables of a transmission-and-distribution system."""

from tsodso.model.network import Feeder, TransmissionGrid
from tsodso.model.profiles import Profiles
from tsodso.model.schema import Column, TableSchema, conform
from tsodso.model.system import System
from tsodso.model.tables import ALL_SCHEMAS, DER_KINDS

__all__ = [
    "ALL_SCHEMAS",
    "DER_KINDS",
    "Column",
    "Feeder",
    "Profiles",
    "System",
    "TableSchema",
    "TransmissionGrid",
    "conform",
]
