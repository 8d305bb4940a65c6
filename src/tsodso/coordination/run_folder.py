"""Self-contained run folders: a run's system, options and every scheme's :class:`Outcome`.

A run folder holds everything needed to show, compare or re-analyse a run without solving
anything again::

    run.json                 format, tsodso and Python versions, created time (UTC),
                             scenario, description, schemes (in order), options,
                             per-scheme status and folder, whether log.sqlite exists
    system/                  the system run, as written by tsodso.io.store.write_system
                             (system.yaml + tables/*.parquet)
    schemes/<name>/          one outcome per scheme (see write_outcome), or
    schemes/<name>/error.json  {"message", "status"} of a scheme that raised SolveError
    log.sqlite               the message log, written by the message bus (never by this
                             module, which leaves it alone)

An outcome folder is written generically from the dataclass fields of :class:`Outcome`, by
the runtime type of each value (no field is listed here, so fields added to ``Outcome``
are stored without changes to this module):

- a ``pd.DataFrame`` (or ``pd.Series``) -> ``<field>.parquet``; a ``np.ndarray`` ->
  ``<field>.npy``. Parquet needs text column names, so the original column labels, the
  column index type and dtype, every column's dtype and the index names and dtypes are kept
  in the file's schema metadata (key ``tsodso``) and restored on reading: the frame read
  back is equal to the one written (``pd.testing.assert_frame_equal``).
- a dict holding tables (at any depth, e.g. ``dict[str, pd.DataFrame]`` or
  ``dict[str, dict[str, pd.DataFrame]]``) -> a folder ``<field>/`` with one file or
  sub-folder per key and ``keys.json`` mapping the keys (any text, e.g. ``case33bw@9`` or
  ``a/b``) to the percent-encoded file names.
- a :class:`~tsodso.shortfalls.Shortfalls` -> ``<field>.json``: its ``to_json()`` (with the
  verdicts and warnings, for readers) plus ``_nonfinite`` for NaN or infinite fields that
  JSON writes as null; it reads back into an equal ``Shortfalls``.
- anything else (numbers, text, lists, dicts of numbers) -> ``outcome.json``; NaN and
  infinities are written as ``{"$float": "nan"}``, tuples and dicts with non-text keys are
  tagged likewise, so they read back unchanged (numpy scalars as the Python numbers they
  equal).

Units and signs are those of :class:`Outcome`: costs, payments and revenues in $ over the
horizon, prices in $/MWh, energies in MWh. Money flows (:func:`comparison_rows`): payments
are what consumers pay ($, positive); revenues are what producers receive ($, positive);
rents are what the operators collect.

Reading refuses, with a :class:`~tsodso.errors.TsodsoError` naming the folder and file: a
missing folder, a missing or unreadable ``run.json``/``outcome.json``/``keys.json``, JSON
that is not what this module wrote, a missing or corrupt table file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import platform
import shutil
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from tsodso.coordination.outcome import Outcome
from tsodso.errors import SolveError, TsodsoError, first_line
from tsodso.model.system import System
from tsodso.shortfalls import Shortfalls

RUN_FORMAT = "tsodso-run"
OUTCOME_FORMAT = "tsodso-outcome"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
OUTCOME_FILE = "outcome.json"
KEYS_FILE = "keys.json"
ERROR_FILE = "error.json"
LOG_FILE = "log.sqlite"
SYSTEM_DIR = "system"
SCHEMES_DIR = "schemes"
#: What a run writes (and ``prepare_run_folder(force=True)`` clears), besides the log.
RUN_ENTRIES = (RUN_FILE, SYSTEM_DIR, SCHEMES_DIR)
SIGN_CONVENTION = ("payments are what consumers pay ($, positive); revenues are what "
                   "producers receive ($, positive); rents are what the operators collect")
_META_KEY = b"tsodso"


# ------------------------------------------------------------------------------ JSON values
class _Unstorable(TypeError):
    """A value of a type a run folder cannot store."""


def _encode(value: Any) -> Any:
    """Plain JSON for ``value``; NaN/inf, tuples, non-text dict keys and Shortfalls tagged."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else {"$float": repr(number)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, Shortfalls):
        return {"$shortfalls": {f.name: _encode(getattr(value, f.name))
                                for f in fields(Shortfalls)}}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {"$dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    raise _Unstorable(type(value).__name__)


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "$float":
            return float(inner)
        if tag == "$tuple":
            return tuple(_decode(v) for v in inner)
        if tag == "$dict":
            return {_hashable(_decode(k)): _decode(v) for k, v in inner}
        if tag == "$shortfalls":
            return Shortfalls(**{k: _decode(v) for k, v in inner.items()
                                 if k in _SHORTFALL_FIELDS})
    return {k: _decode(v) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


_SHORTFALL_FIELDS = {f.name for f in fields(Shortfalls)}


def _dump(data: Any, path: Path) -> None:
    """Write JSON (already encoded: no NaN) to ``path``, via a temporary file."""
    text = json.dumps(data, indent=2, allow_nan=False,
                      default=lambda v: v.item() if isinstance(v, np.generic) else str(v))
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise TsodsoError(f"{path}: cannot write ({err.strerror or err})") from None


def _load(path: Path, what: str) -> Any:
    """Read a JSON file this module wrote, or raise naming the file."""
    if not path.is_file():
        raise TsodsoError(f"{path}: missing ({what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise TsodsoError(f"{path}: cannot read {what} ({first_line(err)})") from None


def _mapping(data: Any, path: Path, what: str, required: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise TsodsoError(f"{path}: {what} is not a JSON object")
    missing = [k for k in required if k not in data]
    if missing:
        raise TsodsoError(f"{path}: {what} lacks {', '.join(repr(k) for k in missing)}")
    return data


# ------------------------------------------------------------------------------ file names
def _stem(key: Any, used: set[str]) -> str:
    """A portable file name for a dict key: percent-encoded (``/``, ``.``, ``:`` ... are
    escaped; ``@`` kept), unique in its folder regardless of case. The key map in
    ``keys.json`` is authoritative; the name is for people browsing the folder."""
    text = quote(str(key), safe="@+,=-_").replace(".", "%2E") or "%"
    if len(text) > 120:
        text = text[:100] + "~" + hashlib.sha1(text.encode()).hexdigest()[:12]
    name, n = text, 1
    while name.lower() in used:
        name, n = f"{text}~{n}", n + 1
    used.add(name.lower())
    return name


# ------------------------------------------------------------------------------ tables
def _index_meta(index: pd.Index) -> dict[str, Any]:
    """How to rebuild a column index exactly (labels, type, dtype, names)."""
    if isinstance(index, pd.RangeIndex):
        return {"kind": "range", "start": int(index.start), "stop": int(index.stop),
                "step": int(index.step), "name": _encode(index.name)}
    if isinstance(index, pd.MultiIndex):
        return {"kind": "multi", "values": [_encode(list(t)) for t in index],
                "names": _encode(list(index.names))}
    return {"kind": "index", "values": _encode(index.tolist()), "dtype": str(index.dtype),
            "name": _encode(index.name)}


def _index_from_meta(meta: dict[str, Any]) -> pd.Index:
    if meta["kind"] == "range":
        return pd.RangeIndex(meta["start"], meta["stop"], meta["step"],
                             name=_decode(meta["name"]))
    if meta["kind"] == "multi":
        names = _decode(meta["names"])
        if not meta["values"]:
            return pd.MultiIndex.from_arrays([[] for _ in names], names=names)
        return pd.MultiIndex.from_tuples([tuple(_decode(v)) for v in meta["values"]],
                                         names=names)
    return pd.Index(_decode(meta["values"]), dtype=meta["dtype"], name=_decode(meta["name"]))


def _write_frame(frame: pd.DataFrame, path: Path, series_name: Any = MISSING) -> None:
    """Write ``frame`` as Parquet with what :func:`_read_frame` needs to restore it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta: dict[str, Any] = {
        "columns": _index_meta(frame.columns),
        "dtypes": [str(t) for t in frame.dtypes],
        "index_names": _encode(list(frame.index.names)),
        "index_dtypes": ([str(t) for t in frame.index.dtypes]
                         if isinstance(frame.index, pd.MultiIndex)
                         else [str(frame.index.dtype)]),
        "json_columns": [],
    }
    if series_name is not MISSING:
        meta["series_name"] = _encode(series_name)
    names = [str(c) for c in frame.columns]
    reserved = {str(n) for n in frame.index.names if n is not None}
    if (len(set(names)) < len(names) or reserved & set(names)
            or any(n.startswith("__") for n in names)):
        names = [f"__column_{i}__" for i in range(len(names))]
    out = frame.set_axis(names, axis=1)
    try:
        table = pa.Table.from_pandas(out)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # object columns of mixed types: each value as tagged JSON text
        out = out.copy()
        for i, name in enumerate(names):
            if pd.api.types.is_object_dtype(out.dtypes.iloc[i]):
                try:
                    pa.array(out.iloc[:, i], from_pandas=True)
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    out[name] = [json.dumps(_encode(v)) for v in out.iloc[:, i]]
                    meta["json_columns"].append(i)
        table = pa.Table.from_pandas(out)
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(meta, allow_nan=False).encode()
    try:
        pq.write_table(table.replace_schema_metadata(schema_meta), path)
    except OSError as err:
        raise TsodsoError(f"{path}: cannot write ({err.strerror or err})") from None


def _read_frame(path: Path) -> pd.DataFrame | pd.Series:
    """Read a table written by :func:`_write_frame`, exactly as it was."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise TsodsoError(f"{path}: missing table")
    try:
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise TsodsoError(f"{path}: not a table of a tsodso run folder (no tsodso "
                              "metadata)")
        meta = json.loads(raw)
        frame = table.to_pandas()
        for i in meta["json_columns"]:
            frame.isetitem(i, pd.Series([_decode(json.loads(v)) for v in frame.iloc[:, i]],
                                        index=frame.index, dtype=object))
        frame.columns = _index_from_meta(meta["columns"])
        for i, dtype in enumerate(meta["dtypes"]):
            if str(frame.dtypes.iloc[i]) != dtype:
                frame.isetitem(i, frame.iloc[:, i].astype(dtype))
        dtypes = meta["index_dtypes"]
        if not isinstance(frame.index, pd.MultiIndex) and str(frame.index.dtype) != dtypes[0]:
            frame.index = frame.index.astype(dtypes[0])
        frame.index.names = _decode(meta["index_names"])
    except TsodsoError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as err:
        raise TsodsoError(f"{path}: cannot read the table ({first_line(err)})") from None
    if "series_name" in meta:
        series = frame.iloc[:, 0]
        series.name = _decode(meta["series_name"])
        return series
    return frame


def _has_tables(value: Any) -> bool:
    if isinstance(value, pd.DataFrame | pd.Series | np.ndarray):
        return True
    return isinstance(value, dict) and any(_has_tables(v) for v in value.values())


def _write_node(value: Any, folder: Path, stem: str) -> dict[str, Any]:
    """Write a table, an array or a dict holding tables; returns its ``keys.json`` entry."""
    if isinstance(value, pd.DataFrame):
        _write_frame(value, folder / f"{stem}.parquet")
        return {"kind": "frame", "path": f"{stem}.parquet"}
    if isinstance(value, pd.Series):
        _write_frame(value.to_frame(), folder / f"{stem}.parquet", series_name=value.name)
        return {"kind": "series", "path": f"{stem}.parquet"}
    if isinstance(value, np.ndarray):
        try:
            np.save(folder / f"{stem}.npy", value, allow_pickle=False)
        except ValueError as err:
            raise _Unstorable(f"array of {value.dtype}") from err
        return {"kind": "array", "path": f"{stem}.npy"}
    if _has_tables(value):
        sub = folder / stem
        sub.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        entries = []
        for key, item in value.items():
            if _has_tables(item):
                entry = _write_node(item, sub, _stem(key, used))
            else:
                entry = {"kind": "json", "value": _encode(item)}
            entries.append({"key": _encode(key), **entry})
        _dump({"entries": entries}, sub / KEYS_FILE)
        return {"kind": "tables", "path": f"{stem}/"}
    return {"kind": "json", "value": _encode(value)}


def _read_node(entry: dict[str, Any], folder: Path, where: Path) -> Any:
    kind = entry.get("kind")
    if kind == "json":
        return _decode(entry.get("value"))
    path = folder / str(entry.get("path", "")).rstrip("/")
    if kind in ("frame", "series"):
        return _read_frame(path)
    if kind == "array":
        if not path.is_file():
            raise TsodsoError(f"{path}: missing array")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise TsodsoError(f"{path}: cannot read the array ({first_line(err)})") from None
    if kind == "tables":
        keys = path / KEYS_FILE
        data = _mapping(_load(keys, "key map"), keys, "key map", ("entries",))
        out = {}
        for item in data["entries"]:
            if not isinstance(item, dict) or "key" not in item:
                raise TsodsoError(f"{keys}: an entry lacks its key")
            out[_hashable(_decode(item["key"]))] = _read_node(item, path, keys)
        return out
    raise TsodsoError(f"{where}: unknown stored kind {kind!r}")


# ------------------------------------------------------------------------------ outcomes
def _shortfalls_json(value: Shortfalls) -> dict[str, Any]:
    """``to_json()`` plus the fields JSON cannot hold (NaN, infinities) under
    ``_nonfinite``, so that :func:`_shortfalls_from_json` restores an equal object."""
    data = value.to_json()
    data["_nonfinite"] = {k: repr(float(v)) for k, v in asdict(value).items()
                          if isinstance(v, float) and not math.isfinite(v)}
    return _encode(data)


def _shortfalls_from_json(data: Any, path: Path) -> Shortfalls:
    """A :class:`Shortfalls` from what :func:`_shortfalls_json` wrote: its constructor
    fields only (verdicts and warnings are computed, not stored)."""
    data = _mapping(data, path, "shortfalls")
    kwargs = {k: _decode(v) for k, v in data.items() if k in _SHORTFALL_FIELDS}
    for k, text in _mapping(data.get("_nonfinite", {}), path, "_nonfinite").items():
        if k in _SHORTFALL_FIELDS:
            kwargs[k] = float(text)
    return Shortfalls(**kwargs)


def _clear(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = folder / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except OSError as err:
            raise TsodsoError(f"{path}: cannot remove ({err.strerror or err})") from None


def _make_folder(folder: str | Path) -> Path:
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise TsodsoError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TsodsoError(f"{path}: cannot create the folder ({err.strerror or err})") from None
    return path


def write_outcome(outcome: Outcome, folder: str | Path) -> Path:
    """Write every dataclass field of ``outcome`` into ``folder`` (see the module docstring).

    ``folder`` is created if needed; it must be empty or hold an outcome written before
    (which is replaced).

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    TsodsoError
        A folder that is not empty and holds no outcome, one that cannot be written, or a
        field of a type a run folder cannot store (naming the field).
    """
    path = _make_folder(folder)
    entries = {p.name for p in path.iterdir()}
    if entries and OUTCOME_FILE not in entries:
        raise TsodsoError(f"{path}: not empty and not an outcome folder (no {OUTCOME_FILE})")
    if entries:
        _clear(path, tuple(sorted(entries)))
    values: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for f in fields(outcome):
        value = getattr(outcome, f.name)
        try:
            if isinstance(value, Shortfalls):
                # with the outcome's status: what the result cost and the verdict, together
                _dump({"status": outcome.status, **_shortfalls_json(value)},
                      path / f"{f.name}.json")
                files[f.name] = {"kind": "shortfalls", "path": f"{f.name}.json"}
            elif _has_tables(value):
                files[f.name] = _write_node(value, path, f.name)
            else:
                values[f.name] = _encode(value)
        except _Unstorable as err:
            raise TsodsoError(f"{path}: field '{f.name}' of the outcome holds a {err}, which "
                              "a run folder cannot store") from None
    _dump({"format": OUTCOME_FORMAT, "version": FORMAT_VERSION, "fields": values,
           "files": files}, path / OUTCOME_FILE)
    return path


def _read_dataclass(cls: type, folder: str | Path) -> Any:
    """An instance of dataclass ``cls`` from a folder written by :func:`write_outcome`.

    Stored fields ``cls`` does not have are ignored; fields not stored take their default
    (a folder written before the field existed) or are refused when they have none."""
    path = Path(folder)
    if not path.is_dir():
        raise TsodsoError(f"{path}: no such outcome folder")
    manifest = path / OUTCOME_FILE
    data = _mapping(_load(manifest, "outcome manifest"), manifest, "outcome manifest",
                    ("format", "fields", "files"))
    if data["format"] != OUTCOME_FORMAT:
        raise TsodsoError(f"{manifest}: not a tsodso outcome (format {data['format']!r})")
    values = _mapping(data["fields"], manifest, "'fields'")
    files = _mapping(data["files"], manifest, "'files'")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in files:
            entry = _mapping(files[f.name], manifest, f"files.{f.name}")
            if entry.get("kind") == "shortfalls":
                file = path / str(entry.get("path", ""))
                kwargs[f.name] = _shortfalls_from_json(_load(file, "shortfalls"), file)
            else:
                kwargs[f.name] = _read_node(entry, path, manifest)
        elif f.name in values:
            kwargs[f.name] = _decode(values[f.name])
        elif f.default is MISSING and f.default_factory is MISSING:
            raise TsodsoError(f"{manifest}: the outcome lacks field '{f.name}'")
    return cls(**kwargs)


def read_outcome(folder: str | Path) -> Outcome:
    """The :class:`Outcome` written into ``folder`` by :func:`write_outcome` (equal field by
    field: frames by ``pd.testing.assert_frame_equal``).

    Raises
    ------
    TsodsoError
        A missing folder, ``outcome.json`` or table, or files not written by tsodso, naming
        the file.
    """
    return _read_dataclass(Outcome, folder)


# ------------------------------------------------------------------------------ comparison
def _gap_to(best: float | None, cost: float) -> float | None:
    return None if best is None or abs(best) < 1e-6 else 100 * (cost - best) / abs(best)


def _best(outcomes: Mapping[str, Outcome | SolveError]) -> float | None:
    common = outcomes.get("common")
    return None if common is None or isinstance(common, SolveError) else common.total_cost


def money_flows(outcome: Outcome) -> dict[str, Any]:
    """Who paid and who was paid in ``outcome``, $ over the horizon.

    Returns
    -------
    dict
        ``consumer_payments`` (what consumers pay, positive), ``generator_revenues`` (what
        transmission generators receive, positive), ``der_revenues`` by aggregator id (what
        DERs receive, positive; negative when a DER's net purchases cost more than its
        sales), ``dso_costs`` by feeder id (production cost of each feeder's dispatch),
        ``tso_cost`` (production cost of the TSO redispatch) and ``rents`` by kind (what
        the operators collect: transmission congestion, distribution losses and
        congestion, interface price gap). Payments = revenues + rents.
    """
    return {
        "consumer_payments": outcome.consumer_payments,
        "generator_revenues": outcome.generator_revenues,
        "der_revenues": dict(outcome.der_revenues),
        "dso_costs": dict(outcome.dso_costs),
        "tso_cost": outcome.tso_cost,
        "rents": dict(outcome.rents),
    }


def kept_out_summary(outcome: Outcome) -> dict[str, Any]:
    """The DERs a market's rules kept out of ``outcome``: how many DERs (kept out of at
    least one market) and MW, the price-takers among them (no market admits them: they run
    uncontrolled), and per market and reason how many and how many MW (``{"ders", "mw",
    "price_takers": {"ders", "mw"}, "by_reason": [{"market", "reason", "ders", "mw"}]}``)."""
    k = outcome.kept_out
    if k is None or not len(k):
        return {"ders": 0, "mw": 0.0, "price_takers": {"ders": 0, "mw": 0.0}, "by_reason": []}
    per_der = k.drop_duplicates("der_id")
    takers = per_der[per_der.price_taker.astype(bool)] if "price_taker" in k else per_der
    groups = k.groupby(["market", "reason"], sort=True).capacity_mw.agg(["count", "sum"])
    return {"ders": int(len(per_der)), "mw": float(per_der.capacity_mw.sum()),
            "price_takers": {"ders": int(len(takers)), "mw": float(takers.capacity_mw.sum())},
            "by_reason": [{"market": m, "reason": r, "ders": int(c), "mw": float(w)}
                          for (m, r), (c, w) in groups.iterrows()]}


def failed_row(err: SolveError) -> dict[str, Any]:
    """A scheme that ended without an answer (e.g. an infeasible fixed interface schedule):
    its row says so with the solver's status and the error, and carries no figures."""
    return {"status": err.status,
            "error": str(err), "total_cost": None, "gap_to_common_pct": None,
            "violations": None, "shed_mwh": None, "unmet_ev_mwh": None, "slack_cost": None,
            "shortfalls": None, "iterations": None, "messages": None, "message_bytes": None,
            "curtailed_mwh": None, "wall_s": None, "notes": [str(err)], "money": None,
            "kept_out": None, "dso_tools": None}


def comparison_rows(outcomes: Mapping[str, Outcome | SolveError], scenario: str,
                    description: str) -> dict[str, Any]:
    """The comparison ``tsodso run`` prints and ``run --json`` emits.

    Parameters
    ----------
    outcomes : mapping
        Scheme name -> its outcome, or the :class:`SolveError` it ended with; rows follow
        this order.
    scenario, description : str
        What was run.

    Returns
    -------
    dict
        ``{"scenario", "description", "sign_convention", "schemes": {name: row}}``: each row
        has the status, total cost ($), ``gap_to_common_pct`` (% above the common scheme's
        cost, None without a common answer), AC violation counts, shortfalls, iterations,
        messages, curtailment (MWh), wall time (s), notes and ``money`` (see
        :func:`money_flows`; None for a scheme without an answer).
    """
    best = _best(outcomes)
    table: dict[str, Any] = {}
    for name, o in outcomes.items():
        if isinstance(o, SolveError):
            table[name] = failed_row(o)
            continue
        v = o.violation_summary()
        table[name] = {
            "status": o.status,
            "total_cost": o.total_cost,
            "gap_to_common_pct": _gap_to(best, o.total_cost),
            "violations": {"voltage": v["voltage"], "thermal": v["thermal"],
                           "worst_voltage_pu": v["worst_voltage_pu"],
                           "not_converged": v["not_converged"]},
            "shed_mwh": o.shortfalls.shed_mwh,
            "unmet_ev_mwh": o.shortfalls.unmet_ev_mwh,
            "slack_cost": o.shortfalls.slack_cost,
            "shortfalls": o.shortfalls.to_json(),
            "iterations": o.iterations,
            "messages": int(o.messages["count"].sum()) if len(o.messages) else 0,
            "message_bytes": int(o.messages["bytes"].sum()) if len(o.messages) else 0,
            "curtailed_mwh": o.curtailed_mwh,
            "wall_s": o.wall_s,
            "notes": o.notes,
            "money": money_flows(o),
            "kept_out": kept_out_summary(o),
            "dso_tools": o.dso_tools or None,
        }
    return {"scenario": scenario, "description": description,
            "sign_convention": SIGN_CONVENTION, "schemes": table}


def comparison_frame(outcomes: Mapping[str, Outcome | SolveError]) -> pd.DataFrame:
    """One row per scheme (index ``scheme``): the columns of :meth:`Outcome.to_frame` plus
    ``gap_to_common_pct`` after ``total_cost``; a scheme without an answer has its status
    and NaN elsewhere."""
    best = _best(outcomes)
    records = []
    for name, o in outcomes.items():
        if isinstance(o, SolveError):
            records.append({"scheme": name, "status": o.status})
            continue
        row = o.to_frame().reset_index().to_dict("records")[0]
        row["scheme"] = name
        gap = _gap_to(best, o.total_cost)
        records.append({**row, "gap_to_common_pct": np.nan if gap is None else gap})
    frame = pd.DataFrame.from_records(records).set_index("scheme")
    if "total_cost" in frame.columns:
        gap = frame.pop("gap_to_common_pct")
        frame.insert(frame.columns.get_loc("total_cost") + 1, "gap_to_common_pct", gap)
    return frame


# ------------------------------------------------------------------------------ runs
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tsodso")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        import tsodso

        return tsodso.__version__


def prepare_run_folder(folder: str | Path, force: bool = False) -> Path:
    """Check that a run can be written into ``folder`` before the run starts.

    A missing or empty folder is fine. A non-empty one is refused unless ``force``; then
    the entries a previous run wrote there (``run.json``, ``system/``, ``schemes/`` and
    ``log.sqlite``) are removed now, so that nothing stale survives, and other files are
    left alone.

    Raises
    ------
    TsodsoError
        A path that is a file, or a non-empty folder without ``force``.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise TsodsoError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise TsodsoError(f"{path}: folder is not empty; give --force to replace the run "
                              "in it, or choose a new folder")
        _clear(path, (*RUN_ENTRIES, LOG_FILE))
    return path


def write_run(folder: str | Path, system: System,
              outcomes: Mapping[str, Outcome | SolveError], options: dict[str, Any],
              scenario: str) -> Path:
    """Write a run folder (layout in the module docstring).

    Parameters
    ----------
    folder : str or Path
        Created if needed. The entries of a previous run (``run.json``, ``system/``,
        ``schemes/``) are replaced; ``log.sqlite`` and other files are left alone.
    system : System
        The system the schemes ran on.
    outcomes : mapping
        Scheme name -> :class:`Outcome`, or the :class:`SolveError` it ended with, in the
        order to show them.
    options : dict
        The run's options, recorded in ``run.json`` (values JSON cannot hold are written as
        text).
    scenario : str
        What was loaded (built-in name or path).

    Returns
    -------
    Path
        The run folder.
    """
    from tsodso.io.store import write_system

    path = _make_folder(folder)
    _clear(path, RUN_ENTRIES)
    write_system(system, path / SYSTEM_DIR, "parquet")
    used: set[str] = set()
    status: dict[str, str] = {}
    folders: dict[str, str] = {}
    for name, o in outcomes.items():
        sub = Path(SCHEMES_DIR) / _stem(name, used)
        folders[name] = sub.as_posix()
        if isinstance(o, SolveError):
            _make_folder(path / sub)
            _dump({"message": str(o), "status": o.status}, path / sub / ERROR_FILE)
            status[name] = o.status
        else:
            write_outcome(o, path / sub)
            status[name] = o.status
    try:
        opts = _encode(options)
    except _Unstorable:
        opts = json.loads(json.dumps(options, default=str))
    info = {
        "format": RUN_FORMAT, "version": FORMAT_VERSION, "tsodso_version": _version(),
        "python_version": platform.python_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "scenario": scenario, "description": system.description,
        "schemes": list(outcomes), "status": status, "folders": folders,
        "options": opts, "log": (path / LOG_FILE).exists(),
    }
    _dump(info, path / RUN_FILE)
    return path


@dataclass
class Run:
    """A run folder read back (see :func:`open_run`).

    Attributes
    ----------
    folder : Path
        The run folder.
    scenario, description : str
        What was run.
    options : dict
        The run's options as recorded.
    outcomes : dict
        Scheme name -> :class:`Outcome` or the :class:`SolveError` it ended with, in run
        order.
    info : dict
        ``run.json`` as read (versions, created time, per-scheme status).
    """

    folder: Path
    scenario: str
    description: str
    options: dict[str, Any]
    outcomes: dict[str, Outcome | SolveError]
    info: dict[str, Any] = field(default_factory=dict)
    _system: System | None = field(default=None, repr=False)

    @property
    def system(self) -> System:
        """The system run (read from ``system/`` on first use)."""
        if self._system is None:
            from tsodso.io.store import read_system

            self._system = read_system(self.folder / SYSTEM_DIR)
        return self._system

    @property
    def log_path(self) -> Path | None:
        """The message log ``log.sqlite``, or None when the folder has none."""
        path = self.folder / LOG_FILE
        return path if path.is_file() else None

    @property
    def plot(self) -> Any:
        """Charts of the run's schemes together (``run.plot.comparison()``, ...: see
        :class:`tsodso.report.plotting.RunPlots`; needs the plot extra)."""
        from tsodso.report.plotting import RunPlots

        return RunPlots(self)

    def comparison(self) -> pd.DataFrame:
        """One row per scheme (see :func:`comparison_frame`)."""
        return comparison_frame(self.outcomes)

    def rows(self) -> dict[str, Any]:
        """What ``tsodso run --json`` emitted (see :func:`comparison_rows`)."""
        return comparison_rows(self.outcomes, self.scenario, self.description)


def open_run(folder: str | Path) -> Run:
    """Read a run folder written by :func:`write_run` (the system lazily).

    Raises
    ------
    TsodsoError
        A missing folder, a missing or bad ``run.json``, a missing scheme folder, outcome
        file or table, naming the folder and file.
    """
    path = Path(folder)
    if not path.is_dir():
        raise TsodsoError(f"{path}: no such run folder")
    manifest = path / RUN_FILE
    if not manifest.is_file():
        raise TsodsoError(f"{path}: not a run folder (no {RUN_FILE})")
    info = _mapping(_load(manifest, "run manifest"), manifest, "run manifest",
                    ("format", "scenario", "schemes", "folders"))
    if info["format"] != RUN_FORMAT:
        raise TsodsoError(f"{manifest}: not a tsodso run (format {info['format']!r})")
    names, folders = info["schemes"], _mapping(info["folders"], manifest, "'folders'")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TsodsoError(f"{manifest}: 'schemes' is not a list of names")
    outcomes: dict[str, Outcome | SolveError] = {}
    for name in names:
        if name not in folders:
            raise TsodsoError(f"{manifest}: no folder recorded for scheme '{name}'")
        sub = path / str(folders[name])
        if not sub.is_dir():
            raise TsodsoError(f"{sub}: missing (the folder of scheme '{name}')")
        if (sub / ERROR_FILE).is_file():
            err = _mapping(_load(sub / ERROR_FILE, "scheme error"), sub / ERROR_FILE,
                           "scheme error", ("message", "status"))
            outcomes[name] = SolveError(str(err["message"]), str(err["status"]))
        else:
            outcomes[name] = read_outcome(sub)
    return Run(folder=path, scenario=str(info["scenario"]),
               description=str(info.get("description", "")),
               options=_decode(info.get("options", {})), outcomes=outcomes, info=info)


__all__ = ["SIGN_CONVENTION", "Run", "comparison_frame", "comparison_rows", "failed_row",
           "kept_out_summary", "money_flows", "open_run", "prepare_run_folder", "read_outcome",
           "write_outcome", "write_run"]
