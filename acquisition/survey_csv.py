"""Read and write lane-survey CSV files (``# uxo-survey v1``, docs FORMATS.md).

Layout: optional ``# key: value`` metadata lines (the first may name the
format, ``# uxo-survey v1``), one header row, then one reading per row. Columns
come in any order; ``x``, ``y`` and ``value`` are required, ``t`` (s) and
``lane`` optional, anything else is kept as an extra channel when numeric.

Bad rows (wrong field count, non-numbers, non-finite values) are reported with
their line numbers and skipped; reading fails only when more than
``max_bad_share`` of the data rows are bad, so a damaged file never silently
turns into an empty survey, and a few broken lines never lose the rest.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.errors import UxoValueError

FORMAT_LINE = "# uxo-survey v1"
REQUIRED = ("x", "y", "value")
OPTIONAL = ("t", "lane")


class SurveyCSVError(UxoValueError):
    """The file cannot be used: no header, missing columns, or too many bad rows."""


@dataclass(slots=True)
class BadRow:
    line: int
    reason: str


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
        """Sensor geometry from metadata (FORMATS.md keys and defaults)."""
        md = self.metadata
        return {
            "kind": md.get("kind", "gradient").strip() or "gradient",
            "sensor_height_m": float(md.get("sensor_height_m", 0.3)),
            "sensor_separation_m": float(md.get("sensor_separation_m", 0.65)),
        }


def _num(tok: str) -> float:
    v = float(tok)
    if not math.isfinite(v):
        raise ValueError("not finite")
    return v


def parse_survey_csv(text: str, *, max_bad_share: float = 0.1) -> SurveyData:
    """Parse survey CSV text; see the module docstring for the rules."""
    metadata: dict[str, str] = {}
    format_line = ""
    # Only \n, \r\n and \r end a line: str.splitlines() would also split on
    # form feeds and other separators that a damaged row may contain.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    header: list[str] | None = None
    while i < len(lines):
        raw = lines[i]
        s = raw.strip()
        i += 1
        if not s:
            continue
        if s.startswith("#"):
            body = s.lstrip("#").strip()
            if not format_line and body.lower().startswith("uxo-") and ":" not in body:
                format_line = body
                continue
            if ":" in body:
                k, v = body.split(":", 1)
                if k.strip():
                    metadata[k.strip()] = v.strip()
            continue
        header = [h.strip().lower() for h in next(csv.reader([s]))]
        break
    if header is None:
        raise SurveyCSVError("no header row found (expected e.g. 't,x,y,lane,value')")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SurveyCSVError(f"header {header} lacks required column(s) {missing}")
    if len(set(header)) != len(header):
        raise SurveyCSVError(f"duplicate column names in header {header}")
    idx = {name: header.index(name) for name in header}
    ncol = len(header)
    numeric_extra = [h for h in header if h not in REQUIRED + OPTIONAL and h]
    cols: dict[str, list[float]] = {h: [] for h in (*REQUIRED, *OPTIONAL, *numeric_extra)}
    extra_ok = {h: True for h in numeric_extra}
    bad: list[BadRow] = []
    good_lines: list[int] = []
    n_data = 0
    for ln in range(i, len(lines)):
        s = lines[ln].strip()
        if not s or s.startswith("#"):
            continue
        n_data += 1
        lineno = ln + 1
        try:
            toks = next(csv.reader([s]))
        except (csv.Error, StopIteration) as exc:
            bad.append(BadRow(lineno, f"unreadable: {exc}"))
            continue
        if len(toks) != ncol:
            bad.append(BadRow(lineno, f"{len(toks)} fields, header has {ncol}"))
            continue
        try:
            req = [_num(toks[idx[c]]) for c in REQUIRED]
            opt: dict[str, float] = {}
            for c in OPTIONAL:
                if c in idx:
                    tok = toks[idx[c]].strip()
                    opt[c] = _num(tok) if tok else math.nan
            if "lane" in opt and math.isfinite(opt["lane"]) and opt["lane"] != int(opt["lane"]):
                raise ValueError("lane is not an integer")
        except ValueError as exc:
            bad.append(BadRow(lineno, f"not a number: {exc}"))
            continue
        for c, v in zip(REQUIRED, req, strict=True):
            cols[c].append(v)
        for c in OPTIONAL:
            if c in idx:
                cols[c].append(opt[c])
        for h in numeric_extra:
            try:
                cols[h].append(float(toks[idx[h]]))
            except ValueError:
                cols[h].append(math.nan)
                extra_ok[h] = False
        good_lines.append(lineno)
    if n_data and len(bad) > max_bad_share * n_data:
        first = "; ".join(f"line {b.line}: {b.reason}" for b in bad[:5])
        raise SurveyCSVError(f"{len(bad)} of {n_data} data rows are bad "
                             f"(limit {max_bad_share:.0%}): {first}")
    arr = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
    t = arr["t"] if "t" in idx else None
    lane = None
    if "lane" in idx:
        la = arr["lane"]
        lane = la if np.isfinite(la).all() else None
        if lane is not None:
            lane = lane.astype(np.int64)
    return SurveyData(
        metadata=metadata, x=arr["x"], y=arr["y"], value=arr["value"], t=t, lane=lane,
        extra={h: arr[h] for h in numeric_extra if extra_ok[h]}, bad_rows=bad,
        line_numbers=np.asarray(good_lines, dtype=np.int64), format_line=format_line)


def read_survey_csv(path: str | Path, *, max_bad_share: float = 0.1) -> SurveyData:
    """Read a survey CSV file (UTF-8; undecodable bytes are replaced, then rejected)."""
    text = Path(path).read_bytes().decode("utf-8", errors="replace")
    return parse_survey_csv(text, max_bad_share=max_bad_share)


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
    path.write_text(format_survey_csv(x, y, value, **kw), encoding="utf-8")
    return path
