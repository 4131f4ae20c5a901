"""Decode a whole GEM GSM-19 dump file (base station, mobile, walking gradiometer) to arrays.

The GSM-19 writes its memory dump as text. The variants seen in the field:

* v6 base station: a plain header, then ``time nT quality`` rows::

      Gem Systems GSM-19W 3101329 v6.0 24 X 2003
      ID 1 file 23c-ost .b   09 VII10
      datum  48000.00

      115014.0  48484.12 99

* v7 (any mode): every header line starts with ``/``; the last one names the
  columns (``/time nT sq``); the time may be printed as a clock::

      /Gem Systems GSM-19GWV 7122568 v7.0 15 III 2018 M ewv10fl.v7vbs
      /ID 1 file 01survey.b   05 IX 18
      /UTC+01
      /time nT sq
      10:00:00.0  57100.00 99

* walking gradiometer (``.wg``) with GPS: latitude, longitude, elevation, field,
  gradient, quality, corrected field, satellites, time, picket marks; ``line N``
  rows start a survey line; ``*`` is an empty value::

      /00106 sensor distance cm
      /X Y elevation nT nT/m sq cor-nT sat time picket-x picket-y
      line  000017
      047.9263435  015.8653717  001089  48382.35  0012.61 99  000000.00 07 115950.0  4.00  39.00

  and without GPS (``X Y`` are then grid metres, not degrees)::

      /X Y nT nT/m sq cor-nT time picket-x picket-y
      0  0  48420.59  0002.90 99 * 110804.0  0  0

Columns are taken from the ``/``-header that names them; a file without one
(v6) is read by its field count: ``time nT sq`` (or ``time nT gradient``, a
third field with a point or sign), ``time nT gradient sq``. The quality code is
two digits (``99``); see `acquisition.drivers.gsm19` for the token rules shared
with the live stream.

`decode_gsm19_dump` is pure and never raises on bad input: it returns every
readable record and the rejected lines, each with its 1-based line number and
reason (``field_count``, ``time``, ``number``, ``range``, ``text``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers.gsm19 import (
    FIELD_MAX_NT,
    FIELD_MIN_NT,
    WG_LAYOUTS,
    _tod_ns,
    is_number,
    is_quality,
    time_token,
)
from acquisition.drivers.textnum import unwrap_time_of_day

#: Column names of the ``/``-header to the record field each fills.
_COLUMN_KEYS = {
    "time": "time", "nt": "field", "nt/m": "gradient", "sq": "quality",
    "elevation": "alt", "sat": "sats", "cor-nt": "corrected",
    "picket-x": None, "picket-y": None,
}
_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
_ID_DATE_RE = re.compile(r"\.(\w+)\s+(\d{1,2})\s*([IVXLC]+)\s*(\d{2,4})\s*$")
_HEADER_WORDS = ("gem systems", "id ", "datum")


@dataclass(frozen=True, slots=True)
class Reject:
    """One line that did not decode: its 1-based number in the file and why."""

    line: int
    reason: str


@dataclass
class Gsm19Dump:
    """The records of a dump, one array entry each (NaN where a file has no such column).

    ``time_ns`` is the instrument's clock in ns since midnight of the first
    record's day, continued across midnight; `utc_epoch_ns` turns it into UTC
    when the header gave the date. ``lat``/``lon`` (degrees) and ``alt`` (m) come
    from a GPS column set, ``x``/``y`` (m) from a grid one. ``line`` is each
    record's 1-based line in the text, ``survey_line`` the last ``line N`` marker
    before it (-1 when none).
    """

    time_ns: np.ndarray
    field_nT: np.ndarray
    quality: np.ndarray
    gradient: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    x: np.ndarray
    y: np.ndarray
    line: np.ndarray
    survey_line: np.ndarray
    info: dict[str, str] = field(default_factory=dict)
    date: _dt.date | None = None
    utc_offset_h: float = 0.0

    @property
    def n(self) -> int:
        return int(self.time_ns.shape[0])

    @property
    def has_gradient(self) -> bool:
        return bool(np.isfinite(self.gradient).any())

    @property
    def has_gps(self) -> bool:
        return bool(np.isfinite(self.lat).any())

    def utc_epoch_ns(self) -> np.ndarray | None:
        """UTC epoch ns of every record (date from the header, ``/UTC+hh`` removed), or None."""
        if self.date is None:
            return None
        midnight = _dt.datetime(self.date.year, self.date.month, self.date.day, tzinfo=_dt.UTC)
        base = int(midnight.timestamp()) * NS_PER_S - round(self.utc_offset_h * 3600 * NS_PER_S)
        return self.time_ns + base


def _roman(text: str) -> int | None:
    vals = [_ROMAN[c] for c in text]
    total = sum(-v if i + 1 < len(vals) and vals[i + 1] > v else v for i, v in enumerate(vals))
    return total if 1 <= total <= 12 else None


def _id_line(body: str, info: dict[str, str]) -> _dt.date | None:
    """``ID 1 file 24survey.wg  02VIII12``: the file type and the survey date."""
    m = _ID_DATE_RE.search(body)
    if m is None:
        return None
    info["file_type"] = m[1]
    month = _roman(m[3])
    year = int(m[4]) + (2000 if len(m[4]) == 2 else 0)
    try:
        date = _dt.date(year, month or 0, int(m[2]))
    except ValueError:
        return None
    info["date"] = date.isoformat()
    return date


def _columns(body: str) -> list[str] | None:
    """``X Y elevation nT nT/m sq ...`` to record keys, or None if not a column line."""
    words = body.split()
    low = [w.lower() for w in words]
    if "time" not in low or "nt" not in low:
        return None
    out: list[str] = []
    gps = "elevation" in low
    for w in low:
        if w == "nt" and "field" in out:
            out.append("_")  # a second sensor's field (e.g. the upper one): not decoded
        elif w == "x":
            out.append("lat" if gps else "x")
        elif w == "y":
            out.append("lon" if gps else "y")
        else:
            out.append(_COLUMN_KEYS.get(w) or "_")
    return out


def _header(body: str, info: dict[str, str], state: dict[str, object]) -> None:
    low = body.lower()
    if low.startswith("gem systems"):
        info["instrument"] = body.strip()
        m = re.search(r"\bv(\d+\.\d+)\b", body)
        if m:
            info["version"] = m[1]
    elif low.startswith("id "):
        date = _id_line(body, info)
        if date is not None:
            state["date"] = date
    elif low.startswith("datum"):
        info["datum_nT"] = body.split()[-1]
    elif low.startswith("utc"):
        m = re.fullmatch(r"utc\s*([+-]\d{1,2}(?:\.\d+)?)\s*", low)
        if m:
            state["utc"] = float(m[1])
            info["utc_offset_h"] = m[1]
    elif "sensor distance" in low:
        m = re.match(r"\s*(\d+)\s+sensor distance\s+cm", low)
        if m:
            info["sensor_distance_m"] = f"{int(m[1]) / 100:g}"
    elif (cols := _columns(body)) is not None:
        state["columns"] = cols
        info["columns"] = " ".join(body.split())
    else:
        parts = body.split()
        if len(parts) == 2 and all(is_number(p.encode()) for p in parts):
            info["base_lat_lon"] = f"{float(parts[0]):.7f} {float(parts[1]):.7f}"


def _by_count(n: int, third: bytes) -> list[str] | None:
    if n in WG_LAYOUTS:
        return list(WG_LAYOUTS[n])
    if n == 3:
        return ["time", "field", "quality" if is_quality(third) else "gradient"]
    if n == 4:
        return ["time", "field", "gradient", "quality"]
    return None


_FLOAT_KEYS = ("field", "quality", "gradient", "lat", "lon", "alt", "x", "y")


def _record(tokens: list[bytes], cols: list[str]) -> tuple[dict[str, float], str | None]:
    """One data row by its columns: (values, reject reason or None)."""
    if len(tokens) != len(cols):
        return {}, "field_count"
    rec: dict[str, float] = {}
    for tok, key in zip(tokens, cols, strict=True):
        if key == "_" or (tok == b"*" and key not in ("time", "field")):
            continue
        if key == "time":
            t = time_token(tok)
            if t is None:
                return {}, "time"
            rec["time"] = t
        elif key == "quality":
            if not is_quality(tok):
                return {}, "number"
            rec[key] = float(tok)
        elif is_number(tok):
            rec[key] = float(tok)
        else:
            return {}, "number"
    if "time" not in rec or "field" not in rec:
        return {}, "field_count"
    return rec, None


def decode_gsm19_dump(text: str | bytes) -> tuple[Gsm19Dump, list[Reject]]:
    """Decode a GSM-19 dump's text: (records, rejected lines). Pure; never raises on bad input."""
    raw = text.encode("latin-1", "replace") if isinstance(text, str) else bytes(text)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark from a Windows editor
    info: dict[str, str] = {}
    state: dict[str, object] = {}
    recs: list[dict[str, float]] = []
    lines_of: list[int] = []
    survey: list[int] = []
    rejects: list[Reject] = []
    current_line = -1
    for no, line in enumerate(raw.splitlines(), start=1):
        body = line.strip()
        if not body:
            continue
        if body.startswith(b"/"):
            _header(body[1:].decode("latin-1").strip(), info, state)
            continue
        lowered = body[:11].lower().decode("latin-1")
        if lowered.startswith("line"):
            parts = body.split()
            if len(parts) == 2 and parts[1].isdigit():
                current_line = int(parts[1])
            else:
                rejects.append(Reject(no, "text"))
            continue
        if lowered.startswith(_HEADER_WORDS):
            _header(body.decode("latin-1"), info, state)
            continue
        if not body[:1].isdigit() and body[:1] not in (b"-", b"*"):
            rejects.append(Reject(no, "text"))
            continue
        tokens = body.split()
        cols = state.get("columns")
        if not isinstance(cols, list):
            cols = _by_count(len(tokens), tokens[2] if len(tokens) > 2 else b"")
        if cols is None:
            rejects.append(Reject(no, "field_count"))
            continue
        rec, reason = _record(tokens, cols)
        if reason is None and not FIELD_MIN_NT <= rec["field"] <= FIELD_MAX_NT:
            reason = "range"
        if reason is not None:
            rejects.append(Reject(no, reason))
            continue
        recs.append(rec)
        lines_of.append(no)
        survey.append(current_line)
    # HH < 24, MM and SS < 60, checked for all records at once.
    tod, ok = _tod_ns(np.array([r["time"] for r in recs], dtype=np.float64))
    if not ok.all():
        rejects = sorted(rejects + [Reject(lines_of[i], "time") for i in np.flatnonzero(~ok)],
                         key=lambda r: r.line)
        recs = [r for r, k in zip(recs, ok.tolist(), strict=True) if k]
        lines_of = [x for x, k in zip(lines_of, ok.tolist(), strict=True) if k]
        survey = [x for x, k in zip(survey, ok.tolist(), strict=True) if k]
        tod = tod[ok]
    cols_out = {k: np.array([r.get(k, math.nan) for r in recs], dtype=np.float64)
                for k in _FLOAT_KEYS}
    date = state.get("date")
    utc = state.get("utc", 0.0)
    return Gsm19Dump(
        time_ns=unwrap_time_of_day(tod, None),
        field_nT=cols_out["field"], quality=cols_out["quality"],
        gradient=cols_out["gradient"], lat=cols_out["lat"], lon=cols_out["lon"],
        alt=cols_out["alt"], x=cols_out["x"], y=cols_out["y"],
        line=np.array(lines_of, dtype=np.int64), survey_line=np.array(survey, dtype=np.int64),
        info=info, date=date if isinstance(date, _dt.date) else None,
        utc_offset_h=float(utc) if isinstance(utc, int | float) else 0.0,
    ), rejects
