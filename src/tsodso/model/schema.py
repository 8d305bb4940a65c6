"""Declared schemas for tsodso's component tables, and the checker that enforces them.

Every component (buses, branches, DERs, ...) is a :class:`pandas.DataFrame` whose columns are
declared once here, with dtype, unit, default, description and whether the column is user
input or a result. :func:`conform` checks a user table against its schema and returns a copy
with the declared column order and dtypes; it never repairs data silently: anything it cannot
take as given is reported as an :class:`~tsodso.errors.Issue`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tsodso.errors import Issue

Dtype = Literal["int", "float", "str", "bool"]
_PANDAS_DTYPE: dict[str, str] = {
    "int": "int64", "float": "float64", "str": "object", "bool": "bool"}
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Column:
    """One declared column of a component table.

    Parameters
    ----------
    name : str
        Column name; units are part of the name where there is one (``p_mw``, ``r_ohm``).
    dtype : {"int", "float", "str", "bool"}
        Logical type.
    unit : str
        Physical unit, ``""`` if dimensionless.
    description : str
        One line for documentation and ``tsodso schema``.
    default : Any
        Value used when the column is absent; leave unset for required columns.
    minimum, maximum : float, optional
        Inclusive bounds for numeric columns.
    positive : bool
        Value must be strictly greater than zero.
    allow_nan : bool
        NaN is a meaningful value (documented in ``description``), not an error.
    allow_inf : bool, optional
        Infinite values are meaningful (``inf`` = unlimited). Default: only where the
        column's default is itself infinite (ratings, ramps, reactive limits); an infinite
        load, cost or impedance is an error.
    choices : tuple of str, optional
        Allowed values for string columns.
    kind : {"input", "output"}
        Whether users provide the column or tsodso computes it.
    """

    name: str
    dtype: Dtype
    unit: str = ""
    description: str = ""
    default: Any = _NO_DEFAULT
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    allow_nan: bool = False
    allow_inf: bool | None = None
    choices: tuple[str, ...] | None = None
    kind: Literal["input", "output"] = "input"

    @property
    def infinite_ok(self) -> bool:
        """Whether ``inf`` / ``-inf`` are meaningful values of this column."""
        if self.allow_inf is not None:
            return self.allow_inf
        return isinstance(self.default, float) and math.isinf(self.default)

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True)
class TableSchema:
    """Schema of one component table: its name, the id column(s) and the declared columns."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def __getitem__(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def empty(self) -> pd.DataFrame:
        """An empty table with the declared columns and dtypes."""
        return pd.DataFrame({c.name: pd.Series(dtype=_PANDAS_DTYPE[c.dtype]) for c in self.columns})

    def to_frame(self) -> pd.DataFrame:
        """The schema itself as a table (for documentation and ``tsodso schema``)."""
        rows = [
            {
                "table": self.name,
                "column": c.name,
                "dtype": c.dtype,
                "unit": c.unit,
                "required": c.required,
                "default": None if c.required else c.default,
                "kind": c.kind,
                "description": c.description,
            }
            for c in self.columns
        ]
        return pd.DataFrame(rows)


def columns_as_lists(frame: pd.DataFrame) -> dict[str, list[float]]:
    """A (periods x ids) frame as ``{"<id>": [value per period]}`` for JSON output."""
    return {str(c): [float(v) for v in frame[c]] for c in frame.columns}


def row_ids(df: pd.DataFrame, key: tuple[str, ...], mask: np.ndarray | pd.Series) -> list[str]:
    """Human-readable ids (``"7"`` or ``"F1/7"``) of the rows selected by ``mask``."""
    sub = df.loc[np.asarray(mask, dtype=bool)]
    if sub.empty:
        return []
    if not all(k in sub.columns for k in key):
        return [f"row {i}" for i in sub.index]
    parts = [sub[k].astype(str).to_numpy() for k in key]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(np.char.add(out.astype(str), "/"), p.astype(str))
    return [str(x) for x in out]


def _issues_for(
    df: pd.DataFrame, schema: TableSchema, column: str, mask: Any, message: str, limit: int = 5
) -> list[Issue]:
    ids = row_ids(df, schema.key, mask)
    shown = ids[:limit]
    out = [Issue(schema.name, column, i, message) for i in shown]
    if len(ids) > limit:
        out.append(Issue(schema.name, column, "", f"{message} ({len(ids) - limit} more rows)"))
    return out


def _flags(raw: pd.Series, test: Any) -> np.ndarray:
    """Boolean array of ``test(value)`` over an object column (vectorised for other dtypes)."""
    if raw.dtype != object:
        return np.zeros(len(raw), dtype=bool)
    return np.fromiter((bool(test(v)) for v in raw), dtype=bool, count=len(raw))


def _number(value: Any) -> float:
    """``value`` as a float, NaN if it is not a number (see :func:`parse_numbers`)."""
    if value is None or isinstance(value, bool | np.bool_):
        return math.nan
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, int | np.integer):
        try:
            return float(value)
        except OverflowError:
            return math.nan
    if not isinstance(value, str) or "_" in value:
        return math.nan
    try:
        number = float(value.strip())
    except ValueError:
        return math.nan
    return math.nan if math.isinf(number) and "inf" not in value.lower() else number


def parse_numbers(raw: pd.Series) -> pd.Series:
    """Values of an object column as float64, parsed exactly by Python; NaN where a value is
    not a number (text that is not a plain number, bools, overflowing literals such as
    ``"1e400"``). ``pd.to_numeric`` is not used on text: pandas 2.3 crashes on exponents
    beyond 32 bits (``"1e2147483648"``) and wraps larger ones (``"1e4294967296"`` is 1.0)."""
    return pd.Series([_number(v) for v in raw], index=raw.index, dtype=float)


def as_numbers(column: pd.Series) -> pd.Series:
    """A column as float64 (NaN where not a number): numeric dtypes as they are, anything
    else through :func:`parse_numbers` (never ``pd.to_numeric`` on text)."""
    if column.dtype.kind in "iuf":
        return column.astype(float)
    return parse_numbers(column.astype(object))


def _coerce(raw: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """Convert ``raw`` to the column's dtype. Returns (values, mask of unconvertible entries)."""
    if col.dtype == "str":
        if raw.dtype == object:
            bad = _flags(raw, lambda v: v is None or not isinstance(v, str | int | np.integer)
                         or isinstance(v, bool))
        else:
            bad = np.ones(len(raw), dtype=bool) if raw.dtype.kind in "fbc" else np.zeros(
                len(raw), dtype=bool)
        return raw.astype(str).astype(object), bad
    if col.dtype == "bool":
        if raw.dtype == bool:
            return raw, np.zeros(len(raw), dtype=bool)
        mapping = {"true": True, "false": False, "yes": True, "no": False}

        def as_bool(v: Any) -> bool | None:
            if isinstance(v, bool | np.bool_):
                return bool(v)
            if isinstance(v, str):
                return mapping.get(v.strip().lower())
            if isinstance(v, int | float | np.integer | np.floating) and v in (0, 1):
                return bool(v)
            return None

        conv = [as_bool(v) for v in raw]
        bad = np.array([c is None for c in conv], dtype=bool)
        return pd.Series([bool(c) for c in conv], index=raw.index, dtype=bool), bad
    if raw.dtype.kind == "f" and col.dtype == "float" or raw.dtype.kind == "i" and (
            col.dtype == "int"):  # already the right kind: nothing to convert (fast path)
        return raw.astype(_PANDAS_DTYPE[col.dtype], copy=False), np.zeros(len(raw), dtype=bool)
    is_boolish = raw.dtype == bool or _flags(raw, lambda v: isinstance(v, bool | np.bool_))
    numeric = raw.dtype != object and raw.dtype.kind in "iuf"
    num = raw if numeric else parse_numbers(raw)
    bad = (num.isna().to_numpy() & raw.notna().to_numpy()) | np.asarray(is_boolish, dtype=bool)
    if col.dtype == "int":
        vals = num.to_numpy(dtype=float)
        nonint = ~np.isnan(vals) & (np.abs(vals - np.round(vals)) > 1e-9)
        bad |= nonint | np.isnan(vals) | (np.abs(vals) >= 2.0**63)  # beyond int64: no wrap
        ints = np.where(bad, 0, np.nan_to_num(vals)).astype(np.int64)
        return pd.Series(ints, index=raw.index), bad
    return num.astype(float), bad


#: ``DataFrame.attrs`` key under which :func:`conform` records the optional columns it
#: filled with their default (column -> default), listed by ``tsodso inspect``.
DEFAULTS_FILLED = "tsodso_defaults_filled"


def defaults_filled(df: pd.DataFrame) -> dict[str, Any]:
    """The optional columns of ``df`` that :func:`conform` filled with their default."""
    return dict(df.attrs.get(DEFAULTS_FILLED, {}))


def conform(df: pd.DataFrame | None, schema: TableSchema) -> tuple[pd.DataFrame, list[Issue]]:
    """Check ``df`` against ``schema``; return the conformed copy and the issues found.

    Missing optional columns take their default (recorded: :func:`defaults_filled`);
    unknown columns, missing required columns, values of the wrong type, NaN or infinity
    where not allowed, values out of bounds or not among the allowed choices, and duplicate
    keys are all reported, never repaired.
    """
    issues: list[Issue] = []
    if df is None:
        df = schema.empty()
    if not isinstance(df, pd.DataFrame):
        return schema.empty(), [Issue(schema.name, "", "", "expected a table (list of rows)")]
    df = df.reset_index(drop=True)
    unknown = [c for c in df.columns if c not in schema.names]
    for c in unknown:
        issues.append(Issue(schema.name, str(c), "", "unknown column (see `tsodso schema`)"))
    out: dict[str, pd.Series] = {}
    filled = dict(df.attrs.get(DEFAULTS_FILLED, {}))
    for col in schema.columns:
        if col.name not in df.columns:
            if len(df) and not col.required:
                filled[col.name] = col.default
            if col.required:
                if len(df) or col.name in schema.key:
                    issues.append(Issue(schema.name, col.name, "", "required column is missing"))
                out[col.name] = pd.Series(
                    np.zeros(len(df)) if col.dtype != "str" else [""] * len(df), index=df.index
                ).astype(_PANDAS_DTYPE[col.dtype])
                continue
            if col.dtype in ("float", "int", "bool") and isinstance(
                    col.default, int | float | bool | np.number):  # fast path: a constant
                out[col.name] = pd.Series(np.full(len(df), col.default), index=df.index
                                          ).astype(_PANDAS_DTYPE[col.dtype])
                continue
            out[col.name] = pd.Series([col.default] * len(df), index=df.index, dtype=object)
            out[col.name] = _coerce(out[col.name], col)[0] if len(df) else out[col.name].astype(
                _PANDAS_DTYPE[col.dtype])
            continue
        values, bad = _coerce(df[col.name], col)
        if bad.any():
            issues += _issues_for(df, schema, col.name, bad, f"expected {col.dtype} value")
        if col.dtype == "float":
            arr = values.to_numpy()
            nan = np.isnan(arr) & ~bad
            if nan.any() and not col.allow_nan:
                issues += _issues_for(df, schema, col.name, nan, "missing or NaN value")
            infinite = np.isinf(arr) & ~bad
            if infinite.any() and not col.infinite_ok:
                issues += _issues_for(df, schema, col.name, infinite, "must be finite")
            finite_or_inf = ~np.isnan(arr)
            if col.minimum is not None:
                low = finite_or_inf & (arr < col.minimum)
                if low.any():
                    issues += _issues_for(df, schema, col.name, low, f"must be >= {col.minimum}")
            if col.maximum is not None:
                high = finite_or_inf & (arr > col.maximum)
                if high.any():
                    issues += _issues_for(df, schema, col.name, high, f"must be <= {col.maximum}")
            if col.positive:
                nonpos = finite_or_inf & (arr <= 0)
                if nonpos.any():
                    issues += _issues_for(df, schema, col.name, nonpos, "must be > 0")
        elif col.dtype == "int":
            arr = values.to_numpy()
            if col.minimum is not None and ((arr < col.minimum) & ~bad).any():
                issues += _issues_for(
                    df, schema, col.name, (arr < col.minimum) & ~bad, f"must be >= {col.minimum}"
                )
            if col.maximum is not None and ((arr > col.maximum) & ~bad).any():
                issues += _issues_for(
                    df, schema, col.name, (arr > col.maximum) & ~bad, f"must be <= {col.maximum}"
                )
        elif col.dtype == "str" and col.choices is not None:
            wrong = ~values.isin(col.choices).to_numpy() & ~bad
            if wrong.any():
                issues += _issues_for(
                    df, schema, col.name, wrong, f"must be one of {', '.join(col.choices)}"
                )
        out[col.name] = values
    result = pd.DataFrame({col.name: out[col.name].astype(_PANDAS_DTYPE[col.dtype], copy=False)
                           for col in schema.columns}, index=df.index)
    result.attrs[DEFAULTS_FILLED] = filled
    if len(result):
        dup = result.duplicated(list(schema.key), keep="first").to_numpy()
        if dup.any():
            issues += _issues_for(result, schema, ",".join(schema.key), dup, "duplicate id")
    return result, issues
