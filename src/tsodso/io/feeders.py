"""Radial feeders from MATPOWER distribution cases (case33bw, case69, case141, case85, ...).

The case is read with :func:`tsodso.io.matpower.read_case`, which runs the file's own unit
conversions (kW to MW, ohm to per unit), then impedances are returned to ohm on the root bus's
base voltage: ``z_ohm = z_pu * base_kv**2 / base_mva``. Generators other than the one at the
reference bus become dispatchable DERs (kind ``dg``) owned by no aggregator. Voltage limits
are the file's (VMIN/VMAX of the non-root buses); a file that gives no band (VMIN = VMAX, as
case28da's 1.0/1.0) gets :data:`DEFAULT_BAND` (VMIN > VMAX is refused by the reader). A
generator with PMIN < 0 away from the root is refused (a ``dg`` DER only generates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tsodso.errors import Issue, ParseError, ValidationError
from tsodso.io.matpower import MatpowerCase, read_case
from tsodso.model.network import Feeder
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import DERS

DEFAULT_BAND = (0.95, 1.05)  # pu, used when a case gives no voltage band (EN 50160-like)


def feeder_from_case(
    spec: str | Path,
    feeder_id: str | None = None,
    interface_bus: int = 0,
    load_scale: float = 1.0,
    substation_mva: float = float("inf"),
    load_profile: str = "",
) -> tuple[Feeder, pd.DataFrame]:
    """Read a MATPOWER radial case as a feeder.

    Parameters
    ----------
    spec : str or Path
        ``matpower:case33bw``, ``pglib:...`` or a file path.
    feeder_id : str, optional
        Feeder name; defaults to the case name.
    interface_bus : int
        Transmission bus the feeder's substation connects to (0 for a stand-alone feeder).
    load_scale : float
        Factor applied to every load (and to the DG limits), dimensionless.
    substation_mva : float
        Substation transformer rating, MVA (inf = unlimited).
    load_profile : str
        Profile name given to every load (``""`` = flat).

    Returns
    -------
    (Feeder, pandas.DataFrame)
        The feeder and the DERs built from its non-slack generators (``ders`` schema).
    """
    case = read_case(spec)
    fid = feeder_id or case.name
    bus, gen, br = case.bus, case.gen, case.branch
    ref = np.flatnonzero(bus[:, 1] == 3)
    if len(ref) != 1:
        raise ParseError(f"{case.name}: a feeder needs exactly one reference bus, found {len(ref)}")
    root = int(bus[ref[0], 0])
    base_kv = float(bus[ref[0], 9])
    if base_kv <= 0:
        raise ParseError(f"{case.name}: reference bus {root} has no base kV")
    z_base = base_kv**2 / case.base_mva
    non_root = bus[:, 1] != 3
    vmin = float(np.median(bus[non_root, 12])) if non_root.any() else 0.95
    vmax = float(np.median(bus[non_root, 11])) if non_root.any() else 1.05
    if vmin >= vmax:  # the file gives no voltage band (e.g. VMIN = VMAX = 1)
        vmin, vmax = DEFAULT_BAND
    info = {
        "feeder_id": fid, "interface_bus": int(interface_bus), "root_bus": root,
        "nominal_kv": base_kv, "substation_mva": substation_mva,
        "v_root_pu": _root_voltage(case, root, float(bus[ref[0], 7])),
        "v_min_pu": vmin, "v_max_pu": vmax,
        "load_scale": load_scale, "source": str(spec),
    }
    own_limits = (bus[:, 12] != vmin) | (bus[:, 11] != vmax)
    _check_shunts(case, root)
    buses = pd.DataFrame({
        "bus_id": bus[:, 0].astype(np.int64),
        "v_min_pu": np.where(own_limits & non_root, bus[:, 12], np.nan),
        "v_max_pu": np.where(own_limits & non_root, bus[:, 11], np.nan),
        # the case's shunt capacitors (BS, MVAr at 1.0 pu) are the DSO's switched banks
        "cap_mvar": np.maximum(bus[:, 5], 0.0),
        "cap_steps": 1,
    })
    rating = np.where(br[:, 5] == 0, np.inf, br[:, 5])
    lines = pd.DataFrame({
        "line_id": np.arange(1, br.shape[0] + 1), "from_bus": br[:, 0].astype(np.int64),
        "to_bus": br[:, 1].astype(np.int64), "r_ohm": br[:, 2] * z_base,
        "x_ohm": br[:, 3] * z_base, "b_us": br[:, 4] / z_base * 1e6, "rating_mva": rating,
        "in_service": br[:, 10] > 0,
    })
    has_load = (bus[:, 2] != 0) | (bus[:, 3] != 0)
    loads = pd.DataFrame({
        "load_id": bus[has_load, 0].astype(np.int64), "bus_id": bus[has_load, 0].astype(np.int64),
        "p_mw": bus[has_load, 2] * load_scale, "q_mvar": bus[has_load, 3] * load_scale,
        "profile": load_profile,
    })
    dg = (gen[:, 0] != root) & (gen[:, 7] > 0)
    absorbing = np.flatnonzero(dg & (gen[:, 9] < 0))
    if len(absorbing):  # a DER of kind dg only generates; refuse rather than clip to 0
        raise ValidationError([Issue("mpc.gen", "PMIN", str(r + 1), (
            f"PMIN {gen[r, 9]:g} < 0 at feeder bus {gen[r, 0]:g}: a distributed generator "
            f"cannot consume (case {case.name})")) for r in absorbing[:5]])
    ders = pd.DataFrame({
        "der_id": [f"{fid}/dg{i + 1}" for i in np.flatnonzero(dg)], "kind": "dg",
        "feeder_id": fid, "bus_id": gen[dg, 0].astype(np.int64),
        "p_max_mw": gen[dg, 8] * load_scale, "p_min_mw": gen[dg, 9] * load_scale,
    })
    ders = conform(ders, DERS)[0]
    return Feeder.from_tables(info, buses, lines, loads), ders


def _check_shunts(case: MatpowerCase, root: int) -> None:
    """Feeders model shunt capacitors (BS > 0, as capacitor banks) and nothing else: a shunt
    conductance (GS), a reactor (BS < 0) or a bank at the root bus is refused, never
    dropped."""
    bus = case.bus
    bad = np.flatnonzero((bus[:, 4] != 0) | (bus[:, 5] < 0)
                         | ((bus[:, 0] == root) & (bus[:, 5] != 0)))
    if len(bad):
        raise ValidationError([Issue("mpc.bus", "GS" if bus[r, 4] != 0 else "BS",
                                     f"{case.name}/{bus[r, 0]:g}",
                                     "feeders model shunt capacitors below the root bus only "
                                     f"(GS {bus[r, 4]:g} MW, BS {bus[r, 5]:g} MVAr)")
                               for r in bad[:5]])


def _root_voltage(case: MatpowerCase, root: int, bus_vm: float) -> float:
    """The feeder's source voltage, pu: as MATPOWER's power flow takes it, the set point
    (VG) of an in-service generator at the reference bus, else the bus's VM."""
    gen = case.gen
    at_root = (gen[:, 0] == root) & (gen[:, 7] > 0) if len(gen) else np.zeros(0, dtype=bool)
    value = float(gen[np.flatnonzero(at_root)[0], 5]) if at_root.any() else bus_vm
    if not (np.isfinite(value) and value > 0):
        raise ParseError(f"{case.name}: reference bus {root} has no voltage set point "
                         f"(VG or VM = {value:g})")
    return value


def feeder_system(spec: str | Path, n_periods: int = 1, period_hours: float = 1.0) -> System:
    """A stand-alone :class:`System` holding one feeder and no transmission grid."""
    feeder, ders = feeder_from_case(spec)
    system = System(name=feeder.feeder_id, description=f"feeder {spec}",
                    profiles=Profiles(period_hours, n_periods), ders=ders)
    system.add_feeder(feeder)
    system.meta["source"] = str(spec)
    return system
