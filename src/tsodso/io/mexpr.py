"""A small, safe evaluator for the MATLAB arithmetic found in MATPOWER case files.

Case files compute a few values in code (``135/sqrt(3)`` in a matrix, ``Vbase^2 / Sbase``,
``mpc.bus(:, [PD, QD]) / 1e3``). This module evaluates exactly that subset of MATLAB without
Python's ``eval``: a tokenizer and a recursive-descent (precedence-climbing) parser build a
small tree, which is evaluated with float arithmetic on scalars and numpy arrays.

Grammar, loosest binding first (MATLAB's precedence)::

    expr     := product (("+" | "-") product)*
    product  := unary (("*" | "/" | ".*" | "./") unary)*
    unary    := ("+" | "-") unary | power             -2^2 is -(2^2) = -4
    power    := operand (("^" | ".^") exponent)*      LEFT associative: 2^3^2 = (2^3)^2 = 64
    exponent := ("+" | "-")* operand                  2^-1 = 0.5, 2^-2^2 = (2^-2)^2
    operand  := NUMBER | NAME | NAME "(" args ")" | "(" expr ")" | "[" elements "]"
    args     := arg ("," arg)*          arg := ":" | expr
    elements := expr (("," | blank) expr)*      as in MATLAB, [1 -2] has two elements and
                                                [1 - 2] one
    NUMBER   := 12 | 1.5 | .5 | 1. | 1e3 | 1.5E-3
    NAME     := letter (letter | digit | "_")* ("." NAME)?       e.g. PD, Vbase, mpc.bus

A ``NAME(args)`` is a call of one of :data:`FUNCTIONS` (one argument, element-wise) or, for
a name in ``matrices``, MATLAB indexing with two 1-based indices (``:``, a number or a
vector), which always selects a sub-matrix. Names are :data:`CONSTANTS` (``pi``, ``Inf``)
and whatever the caller defines.

Safety limits, so that no file can hang, exhaust memory or recurse without bound:
expressions longer than :data:`MAX_LENGTH` characters or :data:`MAX_TOKENS` tokens, or
nested deeper than :data:`MAX_DEPTH` levels, are refused; every arithmetic result is
checked: NaN (``0/0``, ``sqrt(-1)``, ``Inf - Inf``) is refused, a result that becomes
infinite from finite operands (``1/0``, ``10^400``) is refused, and so is any finite
magnitude above :data:`MAX_ABS`. Powers are computed in floating point after an overflow
check on ``|exponent| * log10(|base|)``, so ``9^(9^9)`` fails at once instead of building a
huge integer (``9^9^9`` itself is ``(9^9)^9``, about 1.97e77, as in MATLAB). ``Inf`` is a
valid operand (case files use it for "no limit", e.g. ``QMAX``) and propagates through
arithmetic as in MATLAB; ``NaN`` is not a name here (it is never meaningful in case
arithmetic). Matrix products and divisions (``A * B`` and ``A / B`` with two
non-scalars), matrix powers and complex results are not supported and raise
:class:`~tsodso.errors.ParseError`, as does anything outside the grammar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from tsodso.errors import ParseError

Value = float | np.ndarray
"""A scalar (Python float) or a 2-D float array (a matrix, row or column vector)."""

MAX_LENGTH = 2000
"""Longest expression accepted, characters."""
MAX_TOKENS = 256
"""Most tokens (numbers, names, operators) one expression may have; bounds the tree height."""
MAX_DEPTH = 40
"""Deepest nesting of parentheses, brackets, calls and unary signs accepted."""
MAX_ABS = 1e300
"""Largest finite magnitude any intermediate result may have."""

CONSTANTS: dict[str, float] = {"pi": math.pi, "Inf": math.inf, "inf": math.inf}
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sqrt": np.sqrt, "abs": np.abs, "exp": np.exp,
}

_TOKEN = re.compile(r"""
    (?P<space>[ \t]+)
  | (?P<number>(?:\d+(?:\.(?![*/^])\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z]\w*(?:\.[A-Za-z]\w*)?)
  | (?P<op>\.\*|\./|\.\^|[-+*/^(),\[\]:])
""", re.VERBOSE)


# ------------------------------------------------------------------------------- tree
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Colon:
    """A bare ``:`` index (all rows or all columns)."""


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Vector:
    elements: tuple[Node, ...]


Node = Num | Name | Colon | Call | Unary | Binary | Vector


# -------------------------------------------------------------------------- tokenizer
@dataclass(frozen=True)
class _Tok:
    kind: str  # "number", "name", "op" or "end"
    text: str
    pos: int
    space_before: bool


def _tokenize(text: str) -> list[_Tok]:
    if len(text) > MAX_LENGTH:
        raise ParseError(f"expression longer than {MAX_LENGTH} characters")
    out: list[_Tok] = []
    pos, space = 0, False
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"unexpected character {text[pos]!r} in '{text[:60]}'")
        kind = m.lastgroup or ""
        if kind == "space":
            space = True
        else:
            out.append(_Tok(kind, m.group(), pos, space))
            space = False
        pos = m.end()
    if len(out) > MAX_TOKENS:
        raise ParseError(f"expression has more than {MAX_TOKENS} tokens")
    out.append(_Tok("end", "", pos, space))
    return out


# ----------------------------------------------------------------------------- parser
class _Parser:
    """Recursive descent over the grammar in the module docstring, depth-limited."""

    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def fail(self, why: str) -> ParseError:
        tok = self.toks[self.i]
        at = f"'{tok.text}'" if tok.kind != "end" else "end of expression"
        return ParseError(f"{why} at {at} in '{self.text[:60]}'")

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise self.fail(f"expected '{text}'")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"expression nested deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        node = self.expr(in_brackets=False)
        if self.tok.kind != "end":
            raise self.fail("unexpected token")
        return node

    def _element_ends(self, in_brackets: bool) -> bool:
        """Inside ``[...]``, a blank then a sign glued to what follows starts a new element."""
        t, nxt = self.tok, self.toks[self.i + 1]
        return (in_brackets and t.space_before and not nxt.space_before
                and t.kind == "op" and t.text in "+-")

    def expr(self, in_brackets: bool) -> Node:
        node = self.product(in_brackets)
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            if self._element_ends(in_brackets):
                break
            op = self.tok.text
            self.i += 1
            node = Binary(op, node, self.product(in_brackets))
        return node

    def product(self, in_brackets: bool) -> Node:
        node = self.unary(in_brackets)
        while self.tok.kind == "op" and self.tok.text in ("*", "/", ".*", "./"):
            op = self.tok.text
            self.i += 1
            node = Binary(op, node, self.unary(in_brackets))
        return node

    def unary(self, in_brackets: bool) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.tok.text
            self.i += 1
            self.enter()
            node = Unary(op, self.unary(in_brackets))
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> Node:
        node = self.operand()
        while self.tok.kind == "op" and self.tok.text in ("^", ".^"):
            op = self.tok.text
            self.i += 1
            node = Binary(op, node, self.exponent())
        return node

    def exponent(self) -> Node:
        signs: list[str] = []
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            signs.append(self.tok.text)
            self.i += 1
            if len(signs) > MAX_DEPTH:
                raise self.fail("too many signs")
        node = self.operand()
        for op in reversed(signs):
            node = Unary(op, node)
        return node

    def operand(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.i += 1
            return Num(float(tok.text))
        if tok.kind == "name":
            self.i += 1
            if self.take("("):
                return Call(tok.text, self.args())
            return Name(tok.text)
        if self.take("("):
            self.enter()
            node = self.expr(in_brackets=False)
            self.expect(")")
            self.depth -= 1
            return node
        if self.take("["):
            return self.vector()
        raise self.fail("expected a number, a name or '('")

    def args(self) -> tuple[Node, ...]:
        self.enter()
        out: list[Node] = []
        while True:
            if self.take(":"):
                if self.tok.kind != "op" or self.tok.text not in (",", ")"):
                    raise self.fail("':' must stand alone as an index")
                out.append(Colon())
            else:
                out.append(self.expr(in_brackets=False))
            if self.take(")"):
                break
            self.expect(",")
        self.depth -= 1
        return tuple(out)

    def vector(self) -> Vector:
        self.enter()
        out: list[Node] = []
        while not self.take("]"):
            if self.tok.kind == "end":
                raise self.fail("expected ']'")
            out.append(self.expr(in_brackets=True))
            if self.take(","):
                continue
            if not (self.tok.space_before or self.tok.text == "]"):
                raise self.fail("expected ',' or ']'")
        self.depth -= 1
        return Vector(tuple(out))


def parse(text: str) -> Node:
    """Parse ``text`` into an expression tree (raises :class:`ParseError`)."""
    return _Parser(text.strip()).parse()


# -------------------------------------------------------------------------- evaluation
def _checked(result: Value, *operands: Value) -> Value:
    """Refuse NaN, infinities created from finite operands and magnitudes over MAX_ABS."""
    res = np.asarray(result, dtype=float)
    if np.isnan(res).any():
        raise ParseError("result is not a real number (NaN or complex)")
    inf = np.isinf(res)
    if inf.any():
        from_inf = np.zeros(res.shape, dtype=bool)
        for x in operands:
            from_inf |= np.isinf(np.broadcast_to(np.asarray(x, dtype=float), res.shape))
        if (inf & ~from_inf).any():
            raise ParseError("result overflows to infinity (division by zero or too large)")
    if (np.abs(res[~inf]) > MAX_ABS).any():
        raise ParseError(f"result exceeds {MAX_ABS:g} in magnitude")
    return result


def _is_scalar(x: Value) -> bool:
    return not isinstance(x, np.ndarray)


def _scalar_power(base: float, exp: float) -> float:
    if math.isnan(base) or math.isnan(exp):
        raise ParseError("result is not a real number (NaN)")
    if base < 0 and math.isfinite(exp) and exp != math.floor(exp):
        raise ParseError(f"({base:g})^{exp:g} is complex")
    if base == 0 and exp < 0:
        raise ParseError("0 raised to a negative power is infinite")
    if (math.isfinite(base) and math.isfinite(exp) and abs(base) not in (0.0, 1.0)
            and abs(exp) * math.log10(abs(base)) > math.log10(MAX_ABS)):
        raise ParseError(f"{base:g}^{exp:g} exceeds {MAX_ABS:g}")
    try:
        return float(_checked(math.pow(base, exp), base, exp))
    except (OverflowError, ValueError):
        raise ParseError(f"cannot compute {base:g}^{exp:g}") from None


def _same_shape(op: str, a: Value, b: Value) -> None:
    if not (_is_scalar(a) or _is_scalar(b)) and np.shape(a) != np.shape(b):
        raise ParseError(f"'{op}' on arrays of different sizes {np.shape(a)} and {np.shape(b)}")


def _binary(op: str, a: Value, b: Value) -> Value:
    if op == "*" and not (_is_scalar(a) or _is_scalar(b)):
        raise ParseError("matrix product of two arrays is not supported; use .*")
    if op == "/" and not _is_scalar(b):
        raise ParseError("division by an array is not supported; use ./")
    if op == "^" and not (_is_scalar(a) and _is_scalar(b)):
        raise ParseError("matrix power is not supported; use .^")
    _same_shape(op, a, b)
    if op in ("/", "./") and (np.asarray(b) == 0).any():
        raise ParseError("division by zero")
    if _is_scalar(a) and _is_scalar(b) and op in ("^", ".^"):
        return _scalar_power(float(a), float(b))
    with np.errstate(all="ignore"):
        if op == "+":
            out = np.add(a, b)
        elif op == "-":
            out = np.subtract(a, b)
        elif op in ("*", ".*"):
            out = np.multiply(a, b)
        elif op in ("/", "./"):
            out = np.divide(a, b)
        else:
            out = np.power(np.asarray(a, dtype=float), b)
    _checked(out, a, b)
    return float(out) if np.ndim(out) == 0 else out


def index_positions(arg: Node | Value, size: int, what: str) -> np.ndarray:
    """0-based positions for a MATLAB index (``Colon()`` or 1-based values) into ``size``.

    Every value must be a whole number from 1 to ``size``; ``what`` names the dimension in
    the error (``"mpc.bus row"``).
    """
    if isinstance(arg, Colon):
        return np.arange(size)
    vals = np.asarray(arg, dtype=float).reshape(-1)
    bad = ~np.isfinite(vals) | (vals != np.round(vals)) | (vals < 1) | (vals > size)
    if bad.any():
        raise ParseError(f"{what} index {vals[bad][0]:g} is not a whole number in 1..{size}")
    return vals.astype(np.int64) - 1


class Evaluator:
    """Evaluates trees against named values and named matrices.

    Parameters
    ----------
    names : Mapping[str, Value]
        Defined names (variables, MATPOWER's column constants, ``mpc.baseMVA``); they
        shadow :data:`CONSTANTS`.
    matrices : Mapping[str, numpy.ndarray]
        Matrices that ``NAME(row, col)`` indexes (e.g. ``{"mpc.bus": bus}``).
    """

    def __init__(self, names: Mapping[str, Value],
                 matrices: Mapping[str, np.ndarray] | None = None):
        self.names = names
        self.matrices = matrices or {}

    def evaluate(self, node: Node) -> Value:
        """The value of ``node``: a float, or a 2-D array for matrices and vectors."""
        if isinstance(node, Num):
            return _checked(node.value)
        if isinstance(node, Name):
            return self._name(node.name)
        if isinstance(node, Unary):
            value = self.evaluate(node.operand)
            return value if node.op == "+" else -value
        if isinstance(node, Binary):
            return _binary(node.op, self.evaluate(node.left), self.evaluate(node.right))
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Vector):
            return self._vector(node)
        raise ParseError("':' is only allowed as an index")

    def _name(self, name: str) -> Value:
        if name in self.names:
            return self.names[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise ParseError(f"unknown name '{name}'")

    def _call(self, node: Call) -> Value:
        if node.name in self.matrices:
            return self.submatrix(node)
        if node.name in FUNCTIONS and node.name not in self.names:
            if len(node.args) != 1:
                raise ParseError(f"{node.name}() takes one argument")
            arg = self.evaluate(node.args[0])
            with np.errstate(all="ignore"):
                out = FUNCTIONS[node.name](np.asarray(arg, dtype=float))
            _checked(out, arg)
            return float(out) if np.ndim(out) == 0 else out
        raise ParseError(f"unknown function or matrix '{node.name}'")

    def _vector(self, node: Vector) -> Value:
        values = [self.evaluate(e) for e in node.elements]
        if not all(_is_scalar(v) for v in values):
            raise ParseError("only numbers can be listed in [...]")
        return np.array(values, dtype=float).reshape(1, len(values))

    def positions(self, node: Call) -> tuple[np.ndarray, np.ndarray]:
        """Row and column positions (0-based) that ``node`` (``mpc.X(i, j)``) selects."""
        matrix = self.matrices[node.name]
        if len(node.args) != 2:
            raise ParseError(f"{node.name}(...) needs two indices (row, column)")
        idx = [a if isinstance(a, Colon) else self.evaluate(a) for a in node.args]
        rows = index_positions(idx[0], matrix.shape[0], f"{node.name} row")
        cols = index_positions(idx[1], matrix.shape[1], f"{node.name} column")
        return rows, cols

    def submatrix(self, node: Call) -> Value:
        """MATLAB ``A(rows, cols)``: a sub-matrix, or a float when it has one element."""
        rows, cols = self.positions(node)
        out = self.matrices[node.name][np.ix_(rows, cols)].astype(float)
        return float(out[0, 0]) if out.size == 1 else out


def evaluate(text: str, names: Mapping[str, Value] | None = None,
             matrices: Mapping[str, np.ndarray] | None = None) -> Value:
    """Parse and evaluate ``text`` (see the module docstring for what is accepted)."""
    return Evaluator(names or {}, matrices).evaluate(parse(text))
