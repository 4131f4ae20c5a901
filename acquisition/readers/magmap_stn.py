"""Reader for Geometrics MagMap/MagMap2000 STN ASCII files (G-858 surveys), plug-in ``stn``.

Layout (docs/formats.md): an optional ``99 0 0`` header, then records, newest
first as MagMap writes them (oldest-first files are read as well):

    0  <reading 1> [<reading 2>] HH:MM:SS.ss MM/DD/YY <flag>          a reading
    3  <X> <Y> HH:MM:SS.ss MM/DD/YY <count> <line> <mark> <code>     a mark

Mark codes: 36 starts a line, 4 is a fiducial mark along it, 5 ends it; other
codes (pauses) are kept out of the positions. Readings carry no position: each
line's readings are placed by linear interpolation in time between its marks
(by reading order when the marks' times do not increase), as MagMap does.
A reading outside any line (no start mark before it) cannot be placed and is
counted as a bad row.

Values: a dual-sensor G-858 in vertical gradient mode gives two total fields.
Reading 1 is taken as the top sensor and reading 2 as the bottom one (the order
of MagMap's ``TOP_RDG,BOTTOM_RDG`` export), so the default stream
``gradient`` is F(bottom) - F(top), metadata ``kind: tf_gradient``. Streams
``sensor1`` and ``sensor2`` give one sensor's total field (``kind: total``).
Extras: ``sensor1``, ``sensor2`` (nT) and ``line_heading_deg`` (azimuth of the
line from its start mark to its end mark, clockwise from the grid's y axis).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import BadRow, RawSurvey
from acquisition.readers._text import (
    check_bad_share,
    epoch_seconds,
    head_lines,
    no_rows,
    parse_date,
    read_lines,
)

_NUM = r"[-+]?[0-9]+(?:\.[0-9]*)?"
_TIME = r"([0-9]{1,2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]*)?)"  # three groups: h, m, s
_DATE = r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}"
# groups: F1, F2, h, m, s, date
READING_RE = re.compile(rf"^0\s+({_NUM})(?:\s+({_NUM}))?\s+{_TIME}\s+({_DATE})"
                        r"(?:\s+-?[0-9]+)?$")
# groups: X, Y, h, m, s, date, count, line, mark, code
MARK_RE = re.compile(rf"^3\s+({_NUM})\s+({_NUM})\s+{_TIME}\s+({_DATE})\s+(-?[0-9]+)\s+"
                     r"(-?[0-9]+)\s+(-?[0-9]+)\s+(-?[0-9]+)$")
HEADER_RE = re.compile(r"^99(\s+-?[0-9]+)*$")

START, MARK, END = 36, 4, 5
STREAMS = ("gradient", "sensor1", "sensor2")


@dataclass(slots=True)
class _Line:
    number: int
    marks: list[tuple[float, float, float, int]] = field(default_factory=list)  # t, x, y, n_before
    rows: list[int] = field(default_factory=list)  # indices into the reading arrays


@lru_cache(maxsize=64)
def _midnight(date_tok: str) -> float:
    """Epoch seconds of a record's date at 00:00 (cached: strptime is slow, dates repeat)."""
    return epoch_seconds(parse_date(date_tok, ("%m/%d/%y", "%m/%d/%Y")), 0.0)


def _stamp(m: re.Match[str], first: int) -> float:
    """Epoch seconds from the h, m, s, date groups starting at group ``first``."""
    h, mi, sec = int(m.group(first)), int(m.group(first + 1)), float(m.group(first + 2))
    if h > 23 or mi > 59 or sec >= 60:
        raise ValueError(f"{m.group(first)}:{m.group(first + 1)}:{m.group(first + 2)} is not "
                         "a time of day")
    return _midnight(m.group(first + 3)) + h * 3600.0 + mi * 60.0 + sec


def _interp(t: np.ndarray, idx: np.ndarray, marks: list[tuple[float, float, float, int]]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of readings (times ``t``, order ``idx`` in the line) between the marks."""
    mt = np.array([m[0] for m in marks])
    mx = np.array([m[1] for m in marks])
    my = np.array([m[2] for m in marks])
    if np.all(np.diff(mt) > 0):
        return np.interp(t, mt, mx), np.interp(t, mt, my)
    # Marks without increasing times (clock reset, edited file): place by reading
    # order instead, a mark sitting half-way between the readings around it.
    pos = np.array([m[3] - 0.5 for m in marks])
    keep = np.r_[np.diff(pos) > 0, True]  # of marks at one place, keep the last
    pos, mx, my = pos[keep], mx[keep], my[keep]
    if pos.size == 1:
        return np.full(idx.size, mx[0]), np.full(idx.size, my[0])
    return np.interp(idx, pos, mx), np.interp(idx, pos, my)


class MagMapSTNReader:
    """Geometrics MagMap STN ASCII: G-858 readings plus fiducial marks."""

    name: ClassVar[str] = "stn"
    description: ClassVar[str] = ("Geometrics MagMap/MagMap2000 STN ASCII (G-858: one or two "
                                  "sensors, marks interpolated to positions)")
    priority: ClassVar[int] = 20

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        lines = head_lines(head)
        header = bool(lines) and bool(HEADER_RE.match(lines[0]))
        if header:
            lines = lines[1:]
        records = [s for s in lines if READING_RE.match(s) or MARK_RE.match(s)]
        return (len(records) >= 2 and len(records) >= 0.8 * len(lines)
                and (header or any(MARK_RE.match(s) for s in records)))

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError

        if columns:
            raise SurveyReadError(path, None, "an STN file has fixed columns; --columns is "
                                  "for generic CSV/XYZ files")
        stream = stream or "gradient"
        if stream not in STREAMS:
            raise SurveyReadError(path, None, f"unknown STN stream {stream!r} (expected one "
                                  f"of: {', '.join(STREAMS)})")
        lines = read_lines(path)
        bad: list[BadRow] = []
        # (kind, lineno, payload): parse everything first, order second.
        recs: list[tuple[str, int, tuple]] = []
        n_data = 0
        for i, raw in enumerate(lines):
            s = raw.strip()
            if not s or (not recs and HEADER_RE.match(s)):
                continue
            lineno = i + 1
            m = READING_RE.match(s)
            if m:
                n_data += 1
                try:
                    r1 = float(m.group(1))
                    r2 = float(m.group(2)) if m.group(2) is not None else math.nan
                    t = _stamp(m, 3)
                except ValueError as exc:
                    bad.append(BadRow(lineno, f"reading: {exc}"))
                    continue
                recs.append(("r", lineno, (t, r1, r2)))
                continue
            m = MARK_RE.match(s)
            if m:
                try:
                    x, y = float(m.group(1)), float(m.group(2))
                    t = _stamp(m, 3)
                except ValueError as exc:
                    n_data += 1  # a damaged mark is a damaged row like any other
                    bad.append(BadRow(lineno, f"mark: {exc}"))
                    continue
                if not (math.isfinite(x) and math.isfinite(y)):
                    bad.append(BadRow(lineno, "mark: position is not finite"))
                    continue
                recs.append(("m", lineno, (t, x, y, int(m.group(8)), int(m.group(10)))))
                continue
            n_data += 1
            bad.append(BadRow(lineno, "expected a reading '0 F1 [F2] HH:MM:SS.ss MM/DD/YY "
                              "flag' or a mark '3 X Y HH:MM:SS.ss MM/DD/YY n line mark code'"))
        times = [r[2][0] for r in recs]
        if len(times) >= 2 and times[0] > times[-1]:
            recs.reverse()  # MagMap writes the newest record first
        # -- walk in time order: lines from start to end mark ----------------------
        t_r: list[float] = []
        f1: list[float] = []
        f2: list[float] = []
        ln_r: list[int] = []
        lines_: list[_Line] = []
        cur: _Line | None = None
        for kind, lineno, p in recs:
            if kind == "r":
                if cur is None:
                    bad.append(BadRow(lineno, "reading outside a line (no start mark before "
                                      "it): cannot be placed"))
                    continue
                cur.rows.append(len(t_r))
                t_r.append(p[0])
                f1.append(p[1])
                f2.append(p[2])
                ln_r.append(lineno)
                continue
            t, x, y, number, code = p
            if code == START:
                if cur is not None:
                    lines_.append(cur)
                cur = _Line(number, [(t, x, y, 0)])
            elif code in (MARK, END):
                if cur is None:
                    continue  # a mark with no line open places nothing
                cur.marks.append((t, x, y, len(cur.rows)))
                if code == END:
                    lines_.append(cur)
                    cur = None
        if cur is not None:
            lines_.append(cur)
        n = len(t_r)
        x_out = np.full(n, np.nan)
        y_out = np.full(n, np.nan)
        lane = np.zeros(n, dtype=np.int64)
        heading = np.full(n, np.nan)
        t_arr = np.asarray(t_r, dtype=np.float64)
        for ln in lines_:
            if not ln.rows:
                continue
            idx = np.asarray(ln.rows)
            if len(ln.marks) < 2:
                for k in ln.rows:
                    bad.append(BadRow(ln_r[k], f"line {ln.number} has a start mark but no "
                                      "other mark: positions cannot be interpolated"))
                continue
            px, py = _interp(t_arr[idx], np.arange(idx.size, dtype=float), ln.marks)
            x_out[idx], y_out[idx] = np.round(px, 6), np.round(py, 6)  # to the micrometre
            lane[idx] = ln.number
            dx = ln.marks[-1][1] - ln.marks[0][1]
            dy = ln.marks[-1][2] - ln.marks[0][2]
            heading[idx] = math.degrees(math.atan2(dx, dy)) % 360.0 if (dx or dy) else math.nan
        f1a = np.asarray(f1, dtype=np.float64)
        f2a = np.asarray(f2, dtype=np.float64)
        two = bool(n) and bool(np.isfinite(f2a).all())
        if stream == "sensor2" and not two:
            raise SurveyReadError(path, None, "stream 'sensor2': this file holds one sensor")
        if stream == "gradient" and two:
            # the readings have 3 decimals: rounding the difference to 1e-6 nT
            # drops float noise (4.472000000001572) and nothing measured
            value = np.round(f2a - f1a, 6)
            kind_md = "tf_gradient"
        elif stream == "sensor2":
            value, kind_md = f2a, "total"
        else:
            value, kind_md = f1a, "total"
        ok = np.isfinite(x_out) & np.isfinite(y_out) & np.isfinite(value)
        # an interpolated position can only be NaN for rows reported above
        bad.sort(key=lambda b: b.line)
        check_bad_share(path, bad, n_data, max_bad_share)
        if not ok.any():
            no_rows(path, bad, "STN readings between start and end marks")
        notes = []
        if stream == "gradient" and two:
            notes.append("STN: reading 1 taken as the top sensor, reading 2 as the bottom one; "
                         "value = bottom - top (nT), kind tf_gradient")
        extra = {"sensor1": f1a[ok], "line_heading_deg": heading[ok]}
        if two:
            extra["sensor2"] = f2a[ok]
        return RawSurvey(x=x_out[ok], y=y_out[ok], value=value[ok], t=t_arr[ok], lane=lane[ok],
                         metadata={"kind": kind_md, "instrument": "Geometrics G-858 (MagMap STN)"},
                         extra=extra, bad_rows=bad,
                         line_numbers=np.asarray(ln_r, dtype=np.int64)[ok],
                         positions="local", value_unit="nT", rows_seen=n_data, notes=notes)
