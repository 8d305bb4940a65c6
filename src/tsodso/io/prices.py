"""Price files: one interface price per period ($/MWh), read strictly.

Accepted format (``tsodso dso-opf --price-file``):

* UTF-8 text (a byte-order mark is allowed), at most :data:`MAX_BYTES` bytes, fields
  separated by commas (CSV quoting allowed, strictly: a quote must be closed).
* An optional header line. The first line is a header when any of its fields is not a
  number; otherwise it is the first price (so a file without a header loses nothing).
* One column of prices, or, with a header, several columns of which the one named ``price``
  or ``price_usd_per_mwh`` (case-insensitive) holds the prices; other columns (a period or
  timestamp) are then not read. Several columns without such a name are refused.
* Every line has as many fields as the first; every price is a finite decimal number
  (``12``, ``-3.5``, ``4.2e1``): text, empty fields, ``nan``, ``inf`` and numbers beyond the
  float range (``1e400``) are refused.
* Exactly one price per period: fewer or more lines than periods are refused (pass
  ``--periods N`` to solve N periods). Blank lines are allowed only at the end of the file.

Every error is a :class:`~tsodso.errors.ParseError` whose one-line message names the file
and, where there is one, the line.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import stat
from pathlib import Path

import numpy as np

from tsodso.errors import ParseError

#: Largest price file read, bytes: 35,136 periods (a leap year of quarter hours) with a
#: timestamp and a price per line take under 2 MB.
MAX_BYTES = 16 * 2**20

#: Column names that hold the prices in a file with several columns (case-insensitive).
PRICE_COLUMNS = ("price", "price_usd_per_mwh")

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def read_prices(path: str | os.PathLike[str], periods: int) -> np.ndarray:
    """The ``periods`` prices of a price file (see the module docstring for the format).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.
    periods : int
        Periods to solve: the file must hold exactly this many prices.

    Returns
    -------
    numpy.ndarray
        ``periods`` finite floats, $/MWh.

    Raises
    ------
    ParseError
        A missing, unreadable, binary, non-UTF-8, empty or malformed file, or a number of
        prices other than ``periods``.
    """
    name = str(path)
    rows = _rows(_read_text(Path(path), name), name)
    column, data = _price_column(rows, name)
    prices = np.array([_price(fields[column], name, line) for line, fields in data])
    if len(prices) != periods:
        raise ParseError(f"{name}: {len(prices)} price(s) for {periods} period(s): give exactly "
                         "one price per period (or --periods N to solve N periods)")
    return prices


def _read_text(path: Path, name: str) -> str:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ParseError(f"{name}: is a folder, not a price file")
        if not stat.S_ISREG(mode):  # a device or pipe could be endless or block
            raise ParseError(f"{name}: is not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise ParseError(f"{name}: cannot read the price file ({err.strerror or err})") from None
    if len(raw) > MAX_BYTES:
        raise ParseError(f"{name}: larger than a price file can be ({MAX_BYTES:,} bytes)")
    if b"\0" in raw:
        raise ParseError(f"{name}: is a binary file, not CSV text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ParseError(f"{name}: line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x})"
                         ) from None
    if not text.strip():
        raise ParseError(f"{name}: is empty; expected one price per period")
    return text


def _rows(text: str, name: str) -> list[tuple[int, list[str]]]:
    """(line number, stripped fields) of every line; trailing blank lines dropped, a blank
    line before data refused."""
    reader = csv.reader(io.StringIO(text.rstrip()), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields) and len(fields) == 1:
                raise ParseError(f"{name}: line {line}: blank line among the prices")
            rows.append((line, [f.strip() for f in fields]))
    except csv.Error as err:  # bad quoting, e.g. a quote never closed
        raise ParseError(f"{name}: line {reader.line_num}: not valid CSV ({err})") from None
    width = len(rows[0][1])
    for line, fields in rows[1:]:
        if len(fields) != width:
            raise ParseError(f"{name}: line {line}: {len(fields)} field(s), the first line has "
                             f"{width}")
    return rows


def _price_column(rows: list[tuple[int, list[str]]], name: str
                  ) -> tuple[int, list[tuple[int, list[str]]]]:
    """The index of the price column and the data rows (without the header, if any)."""
    first = rows[0][1]
    header = not all(_looks_numeric(f) for f in first)
    data = rows[1:] if header else rows
    if len(first) == 1:
        column = 0
    elif not header:
        raise ParseError(f"{name}: line 1: {len(first)} columns and no header: give one "
                         f"column of prices, or a header naming the column "
                         f"{' or '.join(PRICE_COLUMNS)}")
    else:
        named = [i for i, f in enumerate(first) if f.lower() in PRICE_COLUMNS]
        if len(named) != 1:
            raise ParseError(f"{name}: line 1: {len(first)} columns ({', '.join(first)}): "
                             f"exactly one must be named {' or '.join(PRICE_COLUMNS)}")
        column = named[0]
    if not data:
        raise ParseError(f"{name}: has a header but no prices")
    return column, data


def _looks_numeric(text: str) -> bool:
    """A decimal number or a spelling of NaN / infinity (a data line, not a header)."""
    if _DECIMAL.fullmatch(text):
        return True
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _price(text: str, name: str, line: int) -> float:
    if not text:
        raise ParseError(f"{name}: line {line}: empty price")
    if not _DECIMAL.fullmatch(text):
        if _looks_numeric(text):
            raise ParseError(f"{name}: line {line}: price {text!r} is not a finite number")
        raise ParseError(f"{name}: line {line}: {text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ParseError(f"{name}: line {line}: price {text} is beyond the float range")
    return value


__all__ = ["MAX_BYTES", "PRICE_COLUMNS", "read_prices"]
