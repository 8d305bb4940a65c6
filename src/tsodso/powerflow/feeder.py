"""Multi-period AC power flow of distribution feeders, solved by power-grid-model in batch.

The feeder tables become one power-grid-model (PGM) model, built once per
:class:`FeederPowerFlow`:

* one node per feeder bus at ``nominal_kv``;
* one line per feeder line with ``r1 = r_ohm``, ``x1 = x_ohm`` and ``c1 = b_us / (2 pi f)``
  (PGM's own frequency ``f``, so the susceptance is exactly ``b_us``); open lines have both
  ends switched off;
* one constant-power load per bus carrying the bus's *net* demand (loads minus injections),
  and one constant-impedance load per bus for its capacitor bank (the MVAr switched in at
  1.0 pu, injected in proportion to the voltage squared);
* a source at the root bus with ``u_ref = v_root_pu`` (or, per period, the voltage a tap
  changer set) and a short-circuit power of
  :data:`SOURCE_SK_VA` (its internal impedance is ~1e-12 of the line impedances, so it acts
  as an ideal slack: the root voltage deviates from ``v_root_pu`` by less than 1e-12 pu).

Each call to :meth:`FeederPowerFlow.run` is one PGM batch calculation: the periods are the
batch scenarios, updating only the load powers, so PGM reuses the topology and the admittance
structure. Every period is solved independently (no warm start from the previous one).

Sign conventions: loads are consumption (positive MW), injections are generation (positive
MW, e.g. DER output); both are given per bus as ``periods x bus_id`` tables.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from power_grid_model import ComponentType, DatasetType, PowerGridModel, initialize_array

from tsodso.errors import Issue, ValidationError
from tsodso.model.network import Feeder
from tsodso.model.profiles import Profiles
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import FEEDER_BUSES, FEEDER_LINES, FEEDER_LOADS, FEEDERS
from tsodso.powerflow.result import PowerFlowResult

SOURCE_SK_VA = 1e20  # short-circuit power of the slack source, VA
FREQUENCY_HZ = 50.0  # only used to turn b_us into PGM's capacitance; the result is f-free
METHODS = ("newton_raphson", "iterative_current", "linear", "linear_current")
PARALLEL_FROM = 256  # periods from which a batch is spread over all cores (threads=None)

_NODE, _LINE = ComponentType.node, ComponentType.line
_LOAD, _SOURCE = ComponentType.sym_load, ComponentType.source
_OUTPUT = {
    _NODE: ["energized", "u_pu", "u_angle"],
    _LINE: ["p_from", "q_from", "p_to", "q_to", "i_from", "i_to"],
    _SOURCE: ["p", "q"],
}

PerBus = pd.DataFrame | pd.Series | np.ndarray | None


class FeederPowerFlow:
    """A feeder's power-flow model, built once and solved for any number of periods.

    Parameters
    ----------
    feeder : Feeder
        The feeder (e.g. ``system.feeder("case33bw")``). Its tables are read once; later
        changes to them are not seen.
    method : str
        PGM calculation method: ``newton_raphson`` (default), ``iterative_current`` (fast
        for radial feeders), ``linear`` or ``linear_current`` (approximations).
    tolerance : float
        Convergence tolerance on the voltage update, pu.
    max_iterations : int
        Iteration limit per period.
    threads : int, optional
        PGM batch threading: ``-1`` sequential, ``0`` all cores, ``k > 0`` k threads;
        default: sequential below :data:`PARALLEL_FROM` periods, all cores above.

    Examples
    --------
    >>> pf = FeederPowerFlow(system.feeder("case33bw"))
    >>> load_p, load_q = pf.feeder_loads(system.profiles)
    >>> result = pf.run(load_p, load_q, inj_p=der_p)
    >>> result.vmin(), result.violations()
    """

    def __init__(
        self,
        feeder: Feeder,
        method: str = "newton_raphson",
        tolerance: float = 1e-10,
        max_iterations: int = 30,
        threads: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValidationError([Issue("power_flow", "method", method,
                                         f"unknown calculation method; use one of {METHODS}")])
        start = time.perf_counter()
        self.feeder_id = feeder.feeder_id
        self.method = method
        self.tolerance = float(tolerance)
        self.max_iterations = int(max_iterations)
        self.threads = threads
        info, buses, lines, loads = _conformed(feeder)
        self.nominal_kv = float(info["nominal_kv"])
        self.v_root_pu = float(info["v_root_pu"])
        self.root_bus = int(info["root_bus"])
        self.substation_mva = float(info["substation_mva"])
        self.bus_ids = pd.Index(buses["bus_id"].to_numpy(dtype=np.int64), name="bus_id")
        self.line_ids = pd.Index(lines["line_id"].to_numpy(dtype=np.int64), name="line_id")
        from_pos = self.bus_ids.get_indexer(lines["from_bus"].to_numpy())
        to_pos = self.bus_ids.get_indexer(lines["to_bus"].to_numpy())
        in_service = lines["in_service"].to_numpy(dtype=bool)
        r = lines["r_ohm"].to_numpy(dtype=float)
        x = lines["x_ohm"].to_numpy(dtype=float)
        b = lines["b_us"].to_numpy(dtype=float)
        rating = lines["rating_mva"].to_numpy(dtype=float)
        self._check_feeder(from_pos, to_pos, in_service, r, x, b, rating)
        self.rating_mva = pd.Series(rating, index=self.line_ids, name="rating_mva")
        self.i_rated_ka = np.where(np.isfinite(rating),
                                   rating / (np.sqrt(3.0) * self.nominal_kv), np.nan)
        self.v_min_limit = pd.Series(
            buses["v_min_pu"].fillna(float(info["v_min_pu"])).to_numpy(dtype=float),
            index=self.bus_ids, name="v_min_pu")
        self.v_max_limit = pd.Series(
            buses["v_max_pu"].fillna(float(info["v_max_pu"])).to_numpy(dtype=float),
            index=self.bus_ids, name="v_max_pu")
        self._load_bus_pos = self.bus_ids.get_indexer(loads["bus_id"].to_numpy())
        if (self._load_bus_pos < 0).any():
            bad = loads[self._load_bus_pos < 0].iloc[0]
            raise ValidationError([Issue("feeder_loads", "bus_id",
                                         f"{self.feeder_id}/{bad['load_id']}",
                                         f"refers to unknown feeder bus {bad['bus_id']}")])
        # capacitor banks as built (every step in): the state when nobody switches them
        self.cap_mvar = pd.Series(buses["cap_mvar"].to_numpy(dtype=float), index=self.bus_ids,
                                  name="cap_mvar")
        self._load_p = loads["p_mw"].to_numpy(dtype=float)
        self._load_q = loads["q_mvar"].to_numpy(dtype=float)
        self._load_profile = loads["profile"].to_numpy(dtype=object)

        n, m = len(self.bus_ids), len(self.line_ids)
        node = initialize_array(DatasetType.input, _NODE, n)
        node["id"] = np.arange(n)
        node["u_rated"] = self.nominal_kv * 1e3
        line = initialize_array(DatasetType.input, _LINE, m)
        line["id"] = n + np.arange(m)
        line["from_node"] = from_pos
        line["to_node"] = to_pos
        line["from_status"] = in_service
        line["to_status"] = in_service
        line["r1"] = r
        line["x1"] = x
        line["c1"] = b * 1e-6 / (2 * np.pi * FREQUENCY_HZ)
        line["tan1"] = 0.0
        line["i_n"] = self.i_rated_ka * 1e3  # NaN = unlimited
        load = initialize_array(DatasetType.input, _LOAD, 2 * n)
        load["id"] = n + m + np.arange(2 * n)
        load["node"] = np.r_[np.arange(n), np.arange(n)]
        load["status"] = 1
        # constant power (net demand), then constant impedance (capacitor banks: their
        # MVAr at 1.0 pu, scaled by the voltage squared)
        load["type"] = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
        load["p_specified"] = 0.0
        load["q_specified"] = 0.0
        source = initialize_array(DatasetType.input, _SOURCE, 1)
        source["id"] = 3 * n + m
        source["node"] = self.bus_ids.get_loc(self.root_bus)
        source["status"] = 1
        source["u_ref"] = self.v_root_pu
        source["u_ref_angle"] = 0.0
        source["sk"] = SOURCE_SK_VA
        self._load_ids = load["id"][:n].copy()
        self._shunt_ids = load["id"][n:].copy()
        self._source_id = int(source["id"][0])
        self._model = PowerGridModel(
            {_NODE: node, _LINE: line, _LOAD: load, _SOURCE: source},
            system_frequency=FREQUENCY_HZ)
        self.build_seconds = time.perf_counter() - start

    # ------------------------------------------------------------- checking
    def _check_feeder(self, from_pos: np.ndarray, to_pos: np.ndarray, in_service: np.ndarray,
                      r: np.ndarray, x: np.ndarray, b: np.ndarray, rating: np.ndarray) -> None:
        fid = self.feeder_id
        issues: list[Issue] = []
        if len(self.bus_ids) == 0:
            issues.append(Issue("feeder_buses", "", fid, "feeder has no buses"))
        if self.bus_ids.has_duplicates:
            dup = self.bus_ids[self.bus_ids.duplicated()][0]
            issues.append(Issue("feeder_buses", "bus_id", f"{fid}/{dup}", "duplicate bus id"))
        if self.line_ids.has_duplicates:
            dup = self.line_ids[self.line_ids.duplicated()][0]
            issues.append(Issue("feeder_lines", "line_id", f"{fid}/{dup}", "duplicate line id"))
        if self.root_bus not in self.bus_ids:
            issues.append(Issue("feeders", "root_bus", fid,
                                f"root bus {self.root_bus} is not a bus of the feeder"))
        if not (np.isfinite(self.nominal_kv) and self.nominal_kv > 0):
            issues.append(Issue("feeders", "nominal_kv", fid, "must be a number > 0"))
        if not (np.isfinite(self.v_root_pu) and self.v_root_pu > 0):
            issues.append(Issue("feeders", "v_root_pu", fid, "must be a number > 0"))
        for pos, col in ((from_pos, "from_bus"), (to_pos, "to_bus")):
            for lid in self.line_ids[pos < 0][:10]:
                issues.append(Issue("feeder_lines", col, f"{fid}/{lid}",
                                    "refers to a bus that is not in the feeder"))
        values = {"r_ohm": r, "x_ohm": x, "b_us": b}
        for col, v in values.items():
            for lid in self.line_ids[~np.isfinite(v) | (v < 0)][:10]:
                issues.append(Issue("feeder_lines", col, f"{fid}/{lid}",
                                    "must be a finite number >= 0"))
        for lid in self.line_ids[in_service & (r == 0) & (x == 0)][:10]:
            issues.append(Issue("feeder_lines", "r_ohm", f"{fid}/{lid}",
                                "zero impedance on an in-service line"))
        for lid in self.line_ids[np.isnan(rating) | (rating <= 0)][:10]:
            issues.append(Issue("feeder_lines", "rating_mva", f"{fid}/{lid}",
                                "must be > 0 (inf = unlimited)"))
        if issues:
            raise ValidationError(issues)

    # ---------------------------------------------------------------- loads
    def feeder_loads(self, profiles: Profiles | None = None,
                     periods: pd.Index | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The feeder's own loads per bus, scaled per period by their profiles.

        With ``profiles`` None the loads are flat: one period, or ``len(periods)``.
        The ``feeders.load_scale`` factor is not applied again (the loaders already did).

        Returns
        -------
        (pandas.DataFrame, pandas.DataFrame)
            Active (MW) and reactive (MVAr) demand, ``periods x bus_id``.
        """
        if profiles is None:
            t = 1 if periods is None else len(periods)
            mult = np.ones((t, len(self._load_p)))
        else:
            known = set(map(str, profiles.series.columns)) | {""}
            unknown = sorted(set(map(str, self._load_profile)) - known)
            if unknown:
                raise ValidationError([Issue("feeder_loads", "profile", name,
                                             "refers to an unknown profile")
                                       for name in unknown])
            mult = profiles.multipliers(self._load_profile)
        if periods is None:
            periods = pd.RangeIndex(mult.shape[0], name="period")
        elif len(periods) != mult.shape[0]:
            raise ValidationError([Issue("power_flow", "periods", self.feeder_id,
                                         f"{len(periods)} periods given, the profiles have "
                                         f"{mult.shape[0]}")])
        n = len(self.bus_ids)
        to_bus = np.zeros((len(self._load_p), n))
        to_bus[np.arange(len(self._load_p)), self._load_bus_pos] = 1.0
        p = (mult * self._load_p) @ to_bus
        q = (mult * self._load_q) @ to_bus
        return (pd.DataFrame(p, index=periods, columns=self.bus_ids),
                pd.DataFrame(q, index=periods, columns=self.bus_ids))

    # ------------------------------------------------------------------ run
    def run(self, load_p: PerBus, load_q: PerBus = None, inj_p: PerBus = None,
            inj_q: PerBus = None, v_root_pu: Any = None,
            cap_mvar: PerBus = None) -> PowerFlowResult:
        """Solve every period in one batch.

        Parameters
        ----------
        load_p, load_q : pandas.DataFrame, pandas.Series or numpy.ndarray
            Demand per bus, MW and MVAr (``load_q`` None = 0).
        inj_p, inj_q : same, optional
            Injections per bus beyond the loads (DER output; positive = generation), MW and
            MVAr. None = 0.
        v_root_pu : float or array, optional
            Root voltage per period (set by a tap changer), pu; None = the feeder's
            ``v_root_pu``.
        cap_mvar : same as ``load_p``, optional
            Capacitor banks switched in per bus: MVAr injected at 1.0 pu (a constant
            impedance: the injection scales with the voltage squared). None = the banks
            as built, every step in (:attr:`cap_mvar`).

        A DataFrame is ``periods x bus_id`` (bus columns in any order; buses not listed get
        0); a Series is one period indexed by ``bus_id``; an array is ``periods x n_bus`` (or
        ``n_bus``) in :attr:`bus_ids` order. One-period inputs are repeated over the periods
        of the others. All DataFrames must have the same period index.
        """
        t0 = time.perf_counter()
        named = {"load_p": load_p, "load_q": load_q, "inj_p": inj_p, "inj_q": inj_q,
                 "cap_mvar": cap_mvar}
        periods = self._periods(named)
        arrays = {k: self._per_bus(v, k, periods) for k, v in named.items()}
        net_p = arrays["load_p"] - arrays["inj_p"]
        net_q = arrays["load_q"] - arrays["inj_q"]
        u_ref = None
        if v_root_pu is not None:
            u_ref = np.broadcast_to(np.asarray(v_root_pu, dtype=float), (len(periods),))
            if not (np.isfinite(u_ref).all() and (u_ref > 0).all()):
                raise ValidationError([Issue("power_flow", "v_root_pu", self.feeder_id,
                                             "root voltages must be numbers > 0")])
        t1 = time.perf_counter()
        caps = arrays["cap_mvar"] if cap_mvar is not None else (
            np.broadcast_to(self.cap_mvar.to_numpy(), net_p.shape)
            if (self.cap_mvar > 0).any() else None)
        out, failed, messages = self._solve(net_p, net_q, caps, u_ref)
        t2 = time.perf_counter()
        result = self._result(out, failed, messages, periods)
        result.timings = {"prepare_s": t1 - t0, "solve_s": t2 - t1,
                          "results_s": time.perf_counter() - t2}
        return result

    def run_feeder_loads(self, inj_p: PerBus = None, inj_q: PerBus = None,
                         profiles: Profiles | None = None) -> PowerFlowResult:
        """Solve with the feeder's own loads (scaled by ``profiles`` if given) minus the
        injections ``inj_p`` / ``inj_q`` (per bus, see :meth:`run`)."""
        periods = self._periods({"inj_p": inj_p, "inj_q": inj_q}, default=None)
        if profiles is not None and periods is not None and len(periods) != profiles.n_periods:
            if len(periods) != 1:
                raise ValidationError([Issue(
                    "power_flow", "periods", self.feeder_id,
                    f"the injections have {len(periods)} periods, the profiles "
                    f"{profiles.n_periods}")])
            periods = None
        load_p, load_q = self.feeder_loads(profiles, periods)
        return self.run(load_p, load_q, inj_p, inj_q)

    # ------------------------------------------------------------ internals
    def _periods(self, named: Mapping[str, Any], default: int | None = 1) -> pd.Index | None:
        """The common period index of the inputs: that of the DataFrames with more than one
        row (which must agree), else of the arrays; one-period inputs broadcast."""
        frames: list[tuple[str, pd.Index]] = []
        lengths: dict[str, int] = {}
        for name, value in named.items():
            if isinstance(value, pd.DataFrame):
                frames.append((name, value.index))
            elif isinstance(value, np.ndarray) and value.ndim == 2:
                lengths[name] = value.shape[0]
            elif value is not None and not isinstance(value, pd.Series | np.ndarray):
                raise ValidationError([Issue(
                    name, "", self.feeder_id,
                    f"expected a DataFrame (periods x bus_id), a Series or an array, got "
                    f"{type(value).__name__}")])
        many = [(n, i) for n, i in frames if len(i) != 1]
        index: pd.Index | None = None
        if many or (frames and not any(t > 1 for t in lengths.values())):
            source, index = (many or frames)[0]
            for name, other in many or frames:
                if not other.equals(index):
                    raise ValidationError([Issue(
                        name, "index", self.feeder_id,
                        f"period index differs from that of {source} (give all tables the "
                        "same periods)")])
        if index is None:
            t = max(lengths.values(), default=default)
            if t is None:
                return None
            index = pd.RangeIndex(t, name="period")
        for name, t in lengths.items():
            if t not in (1, len(index)):
                raise ValidationError([Issue(
                    name, "shape", self.feeder_id,
                    f"has {t} periods (rows), expected {len(index)} or 1")])
        if len(index) == 0:
            raise ValidationError([Issue("power_flow", "periods", self.feeder_id,
                                         "no periods to solve")])
        if index.has_duplicates:
            raise ValidationError([Issue("power_flow", "periods", self.feeder_id,
                                         f"duplicate period {index[index.duplicated()][0]}")])
        return index

    def _per_bus(self, value: PerBus, name: str, periods: pd.Index) -> np.ndarray:
        """``value`` as a float array ``(periods x n_bus)`` in model order, checked."""
        t, n = len(periods), len(self.bus_ids)
        if value is None:
            return np.zeros((t, n))
        if isinstance(value, pd.Series):
            value = value.to_frame().T
        if isinstance(value, pd.DataFrame):
            columns = pd.Index(value.columns)
            if columns.has_duplicates:
                dup = columns[columns.duplicated()][0]
                raise ValidationError([Issue(name, "bus_id", str(dup), "bus given twice")])
            pos = self.bus_ids.get_indexer(columns)
            if (pos < 0).any():
                bad = list(columns[pos < 0])
                listed = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
                raise ValidationError([Issue(
                    name, "bus_id", str(bad[0]),
                    f"unknown bus(es) {listed} of feeder {self.feeder_id} (buses: "
                    f"{self.bus_ids.min()}..{self.bus_ids.max()}, {len(self.bus_ids)} in all)")])
            data = self._numeric(value.to_numpy(), name)
            full = np.zeros((data.shape[0], n))
            full[:, pos] = data
            columns_out = self.bus_ids
        else:
            data = self._numeric(np.asarray(value), name)
            if data.ndim == 1:
                data = data[None, :]
            if data.ndim != 2 or data.shape[1] != n:
                raise ValidationError([Issue(
                    name, "shape", self.feeder_id,
                    f"array of shape {np.asarray(value).shape}: expected (periods, {n}) with "
                    "one column per bus in bus_ids order")])
            full = data
            columns_out = self.bus_ids
        bad = ~np.isfinite(full)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            period = periods[r] if full.shape[0] == t else r
            raise ValidationError([Issue(
                name, "", f"period {period}, bus {columns_out[c]}",
                f"value is {full[r, c]} ({int(bad.sum())} non-finite values in all)")])
        if full.shape[0] == 1 and t > 1:
            full = np.broadcast_to(full, (t, n))
        elif full.shape[0] != t:
            raise ValidationError([Issue(name, "shape", self.feeder_id,
                                         f"has {full.shape[0]} periods, expected {t} or 1")])
        return full

    @staticmethod
    def _numeric(data: np.ndarray, name: str) -> np.ndarray:
        try:
            return np.asarray(data, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValidationError([Issue(name, "", "", f"non-numeric values ({err})")]) from None

    def _solve(self, net_p: np.ndarray, net_q: np.ndarray, cap_mvar: np.ndarray | None = None,
               u_ref: np.ndarray | None = None) -> tuple[dict, np.ndarray, dict[int, str]]:
        t, n = net_p.shape
        if cap_mvar is None:
            update = {_LOAD: {
                "id": np.broadcast_to(self._load_ids, (t, n)),
                "p_specified": np.ascontiguousarray(net_p * 1e6),
                "q_specified": np.ascontiguousarray(net_q * 1e6),
            }}
        else:  # capacitors: constant-impedance loads consuming -MVAr
            update = {_LOAD: {
                "id": np.broadcast_to(np.r_[self._load_ids, self._shunt_ids], (t, 2 * n)),
                "p_specified": np.ascontiguousarray(np.c_[net_p, np.zeros((t, n))] * 1e6),
                "q_specified": np.ascontiguousarray(np.c_[net_q, -cap_mvar] * 1e6),
            }}
        if u_ref is not None:
            update[_SOURCE] = {"id": np.full((t, 1), self._source_id, dtype=np.int32),
                               "u_ref": np.ascontiguousarray(u_ref[:, None])}
        threads = self.threads
        if threads is None:
            threads = 0 if t >= PARALLEL_FROM else -1
        out = self._model.calculate_power_flow(
            update_data=update, calculation_method=self.method,
            error_tolerance=self.tolerance, max_iterations=self.max_iterations,
            threading=threads, output_component_types=_OUTPUT, continue_on_batch_error=True)
        failed = np.zeros(t, dtype=bool)
        messages: dict[int, str] = {}
        err = self._model.batch_error
        if err is not None:
            failed[err.failed_scenarios] = True
            messages = dict(zip(err.failed_scenarios.tolist(), err.error_messages, strict=True))
        return out, failed, messages

    def _result(self, out: dict, failed: np.ndarray, messages: dict[int, str],
                periods: pd.Index) -> PowerFlowResult:
        node, source = out[_NODE], out[_SOURCE]
        # a feeder of one bus has no lines (power-grid-model returns no line output then)
        line = out.get(_LINE)
        if line is None:
            empty = np.zeros((len(periods), 0))
            line = {k: empty for k in ("p_from", "q_from", "p_to", "q_to", "i_from", "i_to")}
        bad = failed[:, None]
        dead = node["energized"] == 0
        vm = np.where(bad | dead, np.nan, node["u_pu"])
        va = np.where(bad | dead, np.nan, np.degrees(node["u_angle"]))

        def lines(values: np.ndarray, scale: float) -> pd.DataFrame:
            return pd.DataFrame(np.where(bad, np.nan, values * scale), index=periods,
                                columns=self.line_ids)

        p_from, q_from = line["p_from"] * 1e-6, line["q_from"] * 1e-6
        p_to, q_to = line["p_to"] * 1e-6, line["q_to"] * 1e-6
        i_ka = np.maximum(line["i_from"], line["i_to"]) * 1e-3
        sub_p = np.where(failed, np.nan, source["p"][:, 0] * 1e-6)
        sub_q = np.where(failed, np.nan, source["q"][:, 0] * 1e-6)
        sub_loading = 100 * np.hypot(sub_p, sub_q) / self.substation_mva
        if not np.isfinite(self.substation_mva):
            sub_loading = np.full(len(periods), np.nan)

        def series(values: np.ndarray, name: str) -> pd.Series:
            return pd.Series(values, index=periods, name=name)

        return PowerFlowResult(
            feeder_id=self.feeder_id,
            vm_pu=pd.DataFrame(vm, index=periods, columns=self.bus_ids),
            va_deg=pd.DataFrame(va, index=periods, columns=self.bus_ids),
            p_from_mw=lines(p_from, 1.0),
            q_from_mvar=lines(q_from, 1.0),
            p_to_mw=lines(p_to, 1.0),
            q_to_mvar=lines(q_to, 1.0),
            i_ka=lines(i_ka, 1.0),
            loading_pct=lines(i_ka / self.i_rated_ka, 100.0),
            p_loss_mw=series(np.where(failed, np.nan, (p_from + p_to).sum(axis=1)), "p_loss_mw"),
            q_loss_mvar=series(np.where(failed, np.nan, (q_from + q_to).sum(axis=1)),
                               "q_loss_mvar"),
            substation_p_mw=series(sub_p, "substation_p_mw"),
            substation_q_mvar=series(sub_q, "substation_q_mvar"),
            substation_loading_pct=series(sub_loading, "substation_loading_pct"),
            converged=series(~failed, "converged"),
            v_min_limit=self.v_min_limit.copy(),
            v_max_limit=self.v_max_limit.copy(),
            messages={periods[k]: v for k, v in messages.items()},
        )


# ------------------------------------------------------------------ functions
def _conformed(feeder: Feeder) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The feeder's tables conformed to their schemas (defaults filled, types and bounds
    checked); raises :class:`ValidationError` listing what does not fit."""
    info, issues = conform(pd.DataFrame([feeder.info]), FEEDERS)
    tables = []
    for table, schema in ((feeder.buses, FEEDER_BUSES), (feeder.lines, FEEDER_LINES),
                          (feeder.loads, FEEDER_LOADS)):
        conformed, found = conform(table, schema)
        tables.append(conformed)
        issues += found
    if issues:
        raise ValidationError(issues)
    return info.iloc[0], tables[0], tables[1], tables[2]


def feeder_power_flow(
    feeder: Feeder,
    p_inj_mw: PerBus = None,
    q_inj_mvar: PerBus = None,
    profiles: Profiles | None = None,
    **options: Any,
) -> PowerFlowResult:
    """Power flow of a feeder's own loads (scaled per period by ``profiles``) with net
    injections ``p_inj_mw`` / ``q_inj_mvar`` per bus (``periods x bus_id``, positive =
    generation). ``options`` go to :class:`FeederPowerFlow`. To solve the same feeder many
    times, build a :class:`FeederPowerFlow` once instead."""
    return FeederPowerFlow(feeder, **options).run_feeder_loads(p_inj_mw, q_inj_mvar, profiles)


def power_flow(
    obj: System | Feeder,
    feeder_id: str | None = None,
    **options: Any,
) -> PowerFlowResult | dict[str, PowerFlowResult]:
    """Base-case power flow: the loads as in the tables (no profile, no DER), one period.

    A :class:`Feeder` gives its result; a :class:`System` gives the result of ``feeder_id``,
    or a dict of results of all its feeders when ``feeder_id`` is None.
    """
    if isinstance(obj, Feeder):
        return FeederPowerFlow(obj, **options).run_feeder_loads()
    if isinstance(obj, System):
        if feeder_id is not None:
            return FeederPowerFlow(obj.feeder(feeder_id), **options).run_feeder_loads()
        return {fid: FeederPowerFlow(obj.feeder(fid), **options).run_feeder_loads()
                for fid in obj.feeder_ids}
    raise ValidationError([Issue("power_flow", "", "",
                                 f"expected a System or a Feeder, got {type(obj).__name__}")])


def der_injections(
    system: System,
    feeder_id: str,
    p_mw: pd.DataFrame,
    q_mvar: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum per-DER outputs (``periods x der_id``, MW / MVAr, positive = generation) into
    per-bus injections (``periods x bus_id``) of one feeder, ready for
    :meth:`FeederPowerFlow.run`. DERs of other feeders or unknown ids are an error."""
    ders = system.ders.set_index("der_id")
    out = []
    for name, frame in (("p_mw", p_mw), ("q_mvar", q_mvar)):
        if frame is None:
            out.append(pd.DataFrame(0.0, index=p_mw.index, columns=pd.Index([], name="bus_id")))
            continue
        cols = pd.Index(frame.columns)
        unknown = cols[~cols.isin(ders.index)]
        if len(unknown):
            raise ValidationError([Issue(name, "der_id", str(unknown[0]), "unknown DER")])
        elsewhere = cols[(ders.loc[cols, "feeder_id"] != feeder_id).to_numpy()]
        if len(elsewhere):
            raise ValidationError([Issue(
                name, "der_id", str(elsewhere[0]),
                f"DER is on feeder {ders.loc[elsewhere[0], 'feeder_id']}, not {feeder_id}")])
        buses = ders.loc[cols, "bus_id"].to_numpy(dtype=np.int64)
        summed = frame.T.groupby(buses).sum().T
        summed.columns = pd.Index(summed.columns, name="bus_id")
        out.append(summed)
    return out[0], out[1]
