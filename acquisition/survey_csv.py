"""Read and write lane-survey CSV files (``# uxo-survey v1``, docs/formats.md).

Layout: optional ``# key: value`` metadata lines (the first may name the
format, ``# uxo-survey v1``), one header row, then one reading per row. Columns
come in any order; ``x``, ``y`` and ``value`` are required, ``t`` (s) and
``lane`` optional, anything else is kept as an extra channel when numeric.

Bad rows (wrong field count, non-numbers, non-finite values) are reported with
their line numbers and skipped; reading fails only when more than
``max_bad_share`` of the data rows are bad, so a damaged file never silently
turns into an empty survey, and a few broken lines never lose the rest.

Files are read in pieces of `CHUNK_SIZE` (2 MB) into columns allocated once,
so memory holds the result (40 bytes a row for t, x, y, value), not the text:
about 50 MiB per million rows (bench/README.md). A piece of plain decimal
rows is parsed at once by `np.loadtxt`; any other piece line by line, with
the same answer (tests/test_survey_csv_chunked.py checks both against the
plain parser they replaced).
"""

from __future__ import annotations

import csv
import io
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from acquisition.errors import UxoValueError
from acquisition.outfile import write_output
from acquisition.readers import BadRow  # one row-reject type for every reader
from acquisition.validate import GEOMETRY_RANGES, Range, check, check_geometry, metadata_number

FORMAT_LINE = "# uxo-survey v1"
REQUIRED = ("x", "y", "value")
OPTIONAL = ("t", "lane")


class SurveyCSVError(UxoValueError):
    """The file cannot be used: no header, missing columns, or too many bad rows."""


@dataclass(slots=True)
class SurveyData:
    """A survey read from CSV: per-reading arrays plus metadata and rejects."""

    metadata: dict[str, str]
    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    t: np.ndarray | None = None
    lane: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    #: Line number (1-based) of each good row, for messages that point into the file.
    line_numbers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    format_line: str = ""

    @property
    def n(self) -> int:
        return int(self.x.size)

    def geometry(self) -> dict[str, Any]:
        """Sensor geometry from metadata (docs/formats.md keys and defaults)."""
        md = self.metadata
        # a value that is no number, or out of range, is refused naming its key
        return check_geometry({
            "kind": md.get("kind", "gradient").strip() or "gradient",
            "sensor_height_m": metadata_number(md, "sensor_height_m", 0.3,
                                               GEOMETRY_RANGES["sensor_height_m"]),
            "sensor_separation_m": metadata_number(md, "sensor_separation_m", 0.65,
                                                   GEOMETRY_RANGES["sensor_separation_m"]),
        })


def _num(tok: str) -> float:
    v = float(tok)
    if not math.isfinite(v):
        raise ValueError("not finite")
    return v


#: Characters of a chunk the vectorised path reads (plain decimal numbers,
#: commas, newlines); any other character sends the chunk down the line path.
_FAST_CHARS = b"0123456789.,eE+-\n"
#: Size of the pieces the text is read and parsed in (characters or bytes):
#: memory stays bounded by this, not by the file.
CHUNK_SIZE = 1 << 21


def _pieces(source: str | bytes | BinaryIO, size: int | None = None) -> Iterator[str]:
    """The text in pieces that end at a line end, line ends normalised to ``\\n``.

    Only ``\\n``, ``\\r\\n`` and ``\\r`` end a line: str.splitlines() would also
    split on form feeds and other separators a damaged row may contain. A piece
    is cut just after a ``\\n``, so a ``\\r\\n`` pair or a UTF-8 sequence is
    never split; bytes are decoded as UTF-8 with undecodable bytes replaced.
    """
    def norm(piece: str) -> str:
        return piece.replace("\r\n", "\n").replace("\r", "\n") if "\r" in piece else piece

    size = size or CHUNK_SIZE
    if isinstance(source, str):
        pos = 0
        while pos < len(source):
            cut = source.find("\n", pos + size)
            end = len(source) if cut < 0 else cut + 1
            yield norm(source[pos:end])
            pos = end
        return
    read: Any
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf = memoryview(source)
        offs = [0]

        def read(n: int) -> bytes:
            b = bytes(buf[offs[0]:offs[0] + n])
            offs[0] += len(b)
            return b
    else:
        read = source.read
    carry = b""
    while True:
        block = read(size)
        if not block:
            break
        block = carry + block
        cut = block.rfind(b"\n")
        if cut < 0:
            carry = block
            continue
        carry = block[cut + 1:]
        yield norm(block[:cut + 1].decode("utf-8", errors="replace"))
    if carry:
        yield norm(carry.decode("utf-8", errors="replace"))


class _Columns:
    """The parsed columns, in arrays allocated once from an estimate of the row count.

    Filling preallocated arrays (grown by half when the estimate was short)
    keeps the peak near the data itself: no per-chunk arrays to join at the
    end, and no heap left fragmented by them.
    """

    def __init__(self, names: list[str], size_hint: int) -> None:
        self.names = names
        self.size_hint = size_hint
        self.n = 0
        self.arrays: dict[str, np.ndarray] = {}
        self.lines = np.empty(0, dtype=np.int64)

    def reserve(self, k: int, piece_chars: int) -> None:
        """Room for ``k`` more rows; the first call sizes the arrays for the whole text."""
        need = self.n + k
        cap = self.lines.size
        if need <= cap:
            return
        if not cap:
            # rows in the whole text at this piece's density, 2 % over
            est = int(k * max(1.0, self.size_hint / max(piece_chars, 1)) * 1.02) + 16
            new = max(need, est)
        else:
            new = max(need, cap + cap // 2)
        for h in self.names:
            old = self.arrays.get(h)
            arr = np.empty(new, dtype=np.float64)
            if old is not None:
                arr[:self.n] = old[:self.n]
            self.arrays[h] = arr
        lines = np.empty(new, dtype=np.int64)
        lines[:self.n] = self.lines[:self.n]
        self.lines = lines

    def add(self, cols: dict[str, np.ndarray], lines: np.ndarray, piece_chars: int) -> None:
        k = lines.size
        if not k:
            return
        self.reserve(k, piece_chars)
        for h in self.names:
            self.arrays[h][self.n:self.n + k] = cols[h]
        self.lines[self.n:self.n + k] = lines
        self.n += k

    def _fit(self, a: np.ndarray) -> np.ndarray:
        # a view when the estimate was close; a copy frees a large unused tail
        return a[:self.n] if self.n >= 0.9 * a.size else a[:self.n].copy()

    def take(self, name: str) -> np.ndarray:
        a = self.arrays.pop(name, None)
        return np.empty(0, dtype=np.float64) if a is None else self._fit(a)

    def take_lines(self) -> np.ndarray:
        out = self._fit(self.lines)
        self.lines = np.empty(0, dtype=np.int64)
        return out


def parse_survey_csv(text: str | bytes, *, max_bad_share: float = 0.1) -> SurveyData:
    """Parse survey CSV text (str, or bytes as UTF-8); see the module docstring for the rules."""
    return _parse(_pieces(text), max_bad_share, len(text))


def read_survey_csv(path: str | Path, *, max_bad_share: float = 0.1) -> SurveyData:
    """Read a survey CSV file (UTF-8; undecodable bytes are replaced, then rejected).

    The file is read in pieces, so memory holds the parsed columns, not the text.
    """
    path = Path(path)
    with path.open("rb") as fh:
        return _parse(_pieces(fh), max_bad_share, path.stat().st_size)


def _parse(pieces: Iterator[str], max_bad_share: float, size_hint: int) -> SurveyData:
    check("max_bad_share", max_bad_share, Range(0.0, 1.0))
    metadata: dict[str, str] = {}
    format_line = ""
    header: list[str] | None = None
    lineno = 0  # lines before the current piece
    rest = ""
    for piece in pieces:
        lines = piece.split("\n")
        if piece.endswith("\n"):
            lines.pop()
        for k, raw in enumerate(lines):
            s = raw.strip()
            if not s:
                continue
            if s.startswith("#"):
                body = s.lstrip("#").strip()
                if not format_line and body.lower().startswith("uxo-") and ":" not in body:
                    format_line = body
                    continue
                if ":" in body:
                    key, v = body.split(":", 1)
                    if key.strip():
                        metadata[key.strip()] = v.strip()
                continue
            header = [h.strip().lower() for h in next(csv.reader([s]))]
            after = lines[k + 1:]
            rest = "\n".join(after) + ("\n" if after and piece.endswith("\n") else "")
            lineno += k + 1
            break
        if header is not None:
            break
        lineno += len(lines)
    if header is None:
        raise SurveyCSVError("no header row found (expected e.g. 't,x,y,lane,value')")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SurveyCSVError(f"header {header} lacks required column(s) {missing}")
    if len(set(header)) != len(header):
        raise SurveyCSVError(f"duplicate column names in header {header}")
    idx = {name: header.index(name) for name in header}
    numeric_extra = [h for h in header if h not in REQUIRED + OPTIONAL and h]
    names = [*REQUIRED, *(c for c in OPTIONAL if c in idx), *numeric_extra]
    state = _State(idx, names, numeric_extra, _Columns(names, size_hint))
    if rest:
        lineno = state.chunk(rest, lineno)
    for piece in pieces:
        lineno = state.chunk(piece, lineno)
    bad, n_data = state.bad, state.n_data
    if n_data and len(bad) > max_bad_share * n_data:
        first = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:5])
        raise SurveyCSVError(f"{len(bad)} of {n_data} data rows are bad "
                             f"(limit {max_bad_share:.0%}): {first}")
    cols = state.cols
    line_numbers = cols.take_lines()
    arr = {k: cols.take(k) for k in names}
    t = arr.get("t")
    lane = None
    if "lane" in arr:
        la = arr.pop("lane")
        lane = la.astype(np.int64) if np.isfinite(la).all() else None
    return SurveyData(
        metadata=metadata, x=arr["x"], y=arr["y"], value=arr["value"], t=t, lane=lane,
        extra={h: arr[h] for h in numeric_extra if state.extra_ok[h]}, bad_rows=bad,
        line_numbers=line_numbers, format_line=format_line)


class _State:
    """The data rows' parser: a vectorised path for clean chunks, the line path for others."""

    def __init__(self, idx: dict[str, int], names: list[str], numeric_extra: list[str],
                 cols: _Columns) -> None:
        self.idx = idx
        self.ncol = len(idx)
        self.names = names
        self.numeric_extra = numeric_extra
        self.cols = cols
        self.extra_ok = {h: True for h in numeric_extra}
        self.bad: list[BadRow] = []
        self.n_data = 0
        self.checked = [c for c in (*REQUIRED, *OPTIONAL) if c in idx]

    def chunk(self, piece: str, first: int) -> int:
        """Parse one piece whose first line is line ``first + 1``; the line count after it."""
        body = piece[:-1] if piece.endswith("\n") else piece
        n = body.count("\n") + 1 if body else 0
        if n and not self._fast(body, n, first):
            self._slow(body.split("\n"), first)
        return first + (piece.count("\n") if piece.endswith("\n") else n)

    def _fast(self, body: str, n: int, first: int) -> bool:
        # Only chunks of plain decimal numbers, one row per line, no blank or
        # comment lines: there `np.loadtxt` and `float` read every field alike
        # (tests/test_survey_csv_chunked.py checks the two paths against each other).
        if not body.isascii() or body[0] == "\n" or "\n\n" in body:
            return False
        raw = body.encode("ascii")
        if raw.translate(None, _FAST_CHARS):
            return False
        try:
            a = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float64, ndmin=2,
                           comments=None, quotechar=None)
        except ValueError:
            return False
        if a.shape != (n, self.ncol):
            return False
        lines = np.arange(first + 1, first + n + 1, dtype=np.int64)
        good = np.ones(n, dtype=bool)
        why = np.full(n, -1, dtype=np.int8)  # 0: not finite, 1: lane not an integer
        for c in self.checked:
            col = a[:, self.idx[c]]
            fin = np.isfinite(col)
            why[good & ~fin] = 0
            good &= fin
            if c == "lane":
                frac = good & (col != np.trunc(col))
                why[frac] = 1
                good &= ~frac
        self.n_data += n
        if not good.all():
            for i in np.flatnonzero(~good):
                reason = "not finite" if why[i] == 0 else "lane is not an integer"
                self.bad.append(BadRow(int(lines[i]), f"not a number: {reason}"))
            a, lines = a[good], lines[good]
        self.cols.add({h: a[:, self.idx[h]] for h in self.names}, lines, len(body))
        return True

    def _slow(self, lines: list[str], first: int) -> None:
        idx, ncol = self.idx, self.ncol
        out: dict[str, array[float]] = {h: array("d") for h in self.names}
        good_lines: array[int] = array("q")
        for k, raw in enumerate(lines):
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            self.n_data += 1
            lineno = first + k + 1
            try:
                toks = next(csv.reader([s]))
            except (csv.Error, StopIteration) as exc:
                self.bad.append(BadRow(lineno, f"unreadable: {exc}"))
                continue
            if len(toks) != ncol:
                self.bad.append(BadRow(lineno, f"{len(toks)} fields, header has {ncol}"))
                continue
            try:
                req = [_num(toks[idx[c]]) for c in REQUIRED]
                opt: dict[str, float] = {}
                for c in OPTIONAL:
                    if c in idx:
                        tok = toks[idx[c]].strip()
                        opt[c] = _num(tok) if tok else math.nan
                if "lane" in opt and math.isfinite(opt["lane"]) and \
                        opt["lane"] != int(opt["lane"]):
                    raise ValueError("lane is not an integer")
            except ValueError as exc:
                self.bad.append(BadRow(lineno, f"not a number: {exc}"))
                continue
            for c, v in zip(REQUIRED, req, strict=True):
                out[c].append(v)
            for c in OPTIONAL:
                if c in idx:
                    out[c].append(opt[c])
            for h in self.numeric_extra:
                try:
                    out[h].append(float(toks[idx[h]]))
                except ValueError:
                    out[h].append(math.nan)
                    self.extra_ok[h] = False
            good_lines.append(lineno)
        self.cols.add({h: np.frombuffer(out[h], dtype=np.float64) for h in self.names},
                      np.frombuffer(good_lines, dtype=np.int64), sum(map(len, lines)))


def format_survey_csv(x: np.ndarray, y: np.ndarray, value: np.ndarray, *,
                      t: np.ndarray | None = None, lane: np.ndarray | None = None,
                      metadata: dict[str, Any] | None = None) -> str:
    """Survey CSV text for the given readings (inverse of `parse_survey_csv`)."""
    buf = io.StringIO()
    buf.write(FORMAT_LINE + "\n")
    for k, v in (metadata or {}).items():
        buf.write(f"# {k}: {v}\n")
    names = (["t"] if t is not None else []) + ["x", "y"] + (
        ["lane"] if lane is not None else []) + ["value"]
    buf.write(",".join(names) + "\n")
    for i in range(len(x)):
        row = ([repr(float(t[i]))] if t is not None else []) + [
            repr(float(x[i])), repr(float(y[i]))] + (
            [str(int(lane[i]))] if lane is not None else []) + [repr(float(value[i]))]
        buf.write(",".join(row) + "\n")
    return buf.getvalue()


def write_survey_csv(path: str | Path, x: np.ndarray, y: np.ndarray, value: np.ndarray,
                     **kw: Any) -> Path:
    path = Path(path)
    write_output(path, format_survey_csv(x, y, value, **kw))
    return path
