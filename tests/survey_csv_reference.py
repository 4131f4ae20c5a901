"""The survey CSV parser as it was before chunking: a plain line-by-line twin.

Tests run `acquisition.survey_csv.parse_survey_csv` (chunked, vectorised)
against this one on generated files: same arrays, metadata, bad rows and
line numbers. Kept simple on purpose; not used by the product.
"""

from __future__ import annotations

import csv
import math

import numpy as np

from acquisition.survey_csv import OPTIONAL, REQUIRED, BadRow, SurveyCSVError, SurveyData


def _num(tok: str) -> float:
    v = float(tok)
    if not math.isfinite(v):
        raise ValueError("not finite")
    return v


def reference_parse(text: str, *, max_bad_share: float = 0.1) -> SurveyData:
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
