"""Delimited tables with a header row: the core of the CSV/XYZ-like readers.

`find_table` locates the header (after blank lines, ``#`` metadata/comment
lines and ``/`` comment lines) and sniffs the delimiter; `read_columns` reads
the chosen columns of every data row as numbers, turning every row that
cannot be read into a `BadRow` with its line number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from acquisition.readers import BadRow, Positions
from acquisition.readers._text import (
    is_number,
    name_and_unit,
    sniff_delimiter,
    split_fields,
    to_float,
)

#: Column names that hold CRS eastings/northings, not taped-grid metres.
PROJECTED_NAMES = ("easting", "northing", "east", "north", "utm_x", "utm_y", "utm-x", "utm-y",
                   "utmx", "utmy")
#: Positions larger than this (m) cannot be a taped grid: they are CRS coordinates.
LOCAL_LIMIT_M = 20_000.0


def positions_kind(x: np.ndarray, y: np.ndarray, named_projected: bool) -> Positions:
    """"projected" for easting/northing columns or values beyond a taped grid, else "local"."""
    if named_projected:
        return "projected"
    big = (np.abs(x) > LOCAL_LIMIT_M) | (np.abs(y) > LOCAL_LIMIT_M)
    return "projected" if bool(big.any()) else "local"


@dataclass(slots=True)
class Table:
    """Where a table sits in a file's lines, and its columns."""

    lines: list[str]
    header_index: int  # 0-based index of the header line in ``lines``
    delim: str
    names: list[str]  # as written
    keys: list[str]  # lower case, unit stripped ("Grad [nT/m]" -> "grad")
    units: list[str | None]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def decimal_comma(self) -> bool:
        return self.delim in (";", "\t", " ")

    def find(self, wanted: str) -> int | None:
        """Index of the column named ``wanted`` (as written, or without its unit), any case."""
        w = wanted.strip().lower()
        for i, (n, k) in enumerate(zip(self.names, self.keys, strict=True)):
            if n.strip().lower() == w or k == w:
                return i
        return None

    def first_of(self, candidates: tuple[str, ...]) -> int | None:
        for c in candidates:
            i = self.find(c)
            if i is not None:
                return i
        return None


def _is_comment(s: str) -> bool:
    return s.startswith(("#", "/", "%"))


def find_table(lines: list[str], *, sample: int = 20) -> Table | None:
    """The table in ``lines``: header row, delimiter and ``# key: value`` metadata.

    None when there is no header row (a first row of numbers only) or no
    delimiter splits the header and the rows after it alike.
    """
    md: dict[str, str] = {}
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if not s:
            i += 1
            continue
        if _is_comment(s):
            body = s.lstrip("#/%").strip()
            if s.startswith("#") and ":" in body:
                k, v = body.split(":", 1)
                if k.strip():
                    md[k.strip()] = v.strip()
            i += 1
            continue
        break
    if i >= len(lines):
        return None
    rows = [lines[i].strip()]
    for s in lines[i + 1:]:
        s = s.strip()
        if s and not _is_comment(s):
            rows.append(s)
            if len(rows) > sample:
                break
    delim = sniff_delimiter(rows)
    if delim is None:
        return None
    names = split_fields(rows[0], delim)
    if all(is_number(n) for n in names) or any(not n for n in names):
        return None
    if any(not n.isprintable() or "\ufffd" in n for n in names):
        return None  # binary junk, not column names
    if len(set(n.lower() for n in names)) != len(names):
        return None
    keys, units = zip(*(name_and_unit(n) for n in names), strict=True)
    return Table(lines, i, delim, names, list(keys), list(units), md)


def has_numeric_row(t: Table) -> bool:
    """True when a row under the header has its fields and at least two numbers."""
    for s in t.lines[t.header_index + 1:]:
        s = s.strip()
        if not s or _is_comment(s):
            continue
        toks = split_fields(s, t.delim)
        if len(toks) == len(t.names) and sum(is_number(tk) for tk in toks) >= 2:
            return True
    return False


def read_columns(table: Table, wanted: dict[str, int], *, optional: frozenset[str] = frozenset()
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, list[BadRow], int]:
    """Numbers of the ``wanted`` columns (our name -> column index) of every data row.

    Returns (columns, 1-based line numbers of the good rows, bad rows, data rows
    seen). A column in ``optional`` may be empty (NaN); every other must hold a
    finite number.
    """
    ncol = len(table.names)
    dc = table.decimal_comma
    delim = table.delim
    out: dict[str, list[float]] = {k: [] for k in wanted}
    good: list[int] = []
    bad: list[BadRow] = []
    n_data = 0
    items = list(wanted.items())
    for ln in range(table.header_index + 1, len(table.lines)):
        s = table.lines[ln].strip()
        if not s or _is_comment(s):
            continue
        n_data += 1
        toks = split_fields(s, delim)
        if len(toks) != ncol:
            bad.append(BadRow(ln + 1, f"{len(toks)} fields, the header has {ncol}"))
            continue
        vals: list[float] = []
        try:
            for key, idx in items:
                tok = toks[idx]
                if key in optional and not tok.strip():
                    vals.append(math.nan)
                else:
                    vals.append(to_float(tok, decimal_comma=dc))
        except ValueError:
            bad.append(BadRow(ln + 1, f"column {table.names[idx]!r}: {tok!r} is not a number"))
            continue
        for (key, _), v in zip(items, vals, strict=True):
            out[key].append(v)
        good.append(ln + 1)
    cols = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    return cols, np.asarray(good, dtype=np.int64), bad, n_data


def unknown_column(path: Path, table: Table, what: str, hint: str) -> Exception:
    """The `SurveyReadError` for a column that is not in the header."""
    from acquisition.survey import SurveyReadError

    return SurveyReadError(path, table.header_index + 1,
                           f"no {what} column in header [{', '.join(table.names)}]; {hint}")
