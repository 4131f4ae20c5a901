"""Reader for Sensys MagWalk / MagDrone CSV exports, plug-in ``sensys``.

The exports are ``;``-separated tables (decimal commas allowed; MagDrone
exports may use ``,``) with text date and time columns and GNSS positions::

    Date;Time;Latitude;Longitude;Altitude;Gradient [nT]
    2026-03-14;08:15:02.100;16.8201234;107.1001234;12.3;-1.25

Recognised columns (any case; a unit in brackets is read): ``Date``/``Datum``
and ``Time``/``Zeit`` (or one ``Timestamp``/``DateTime`` column with both, or
epoch milliseconds), ``Latitude``/``Lat`` and ``Longitude``/``Lon``
(or ``Easting``/``Northing``: projected), an optional fix column
(``Fix``/``GPS Fix``/``Quality``) and the value: the column named by
``--columns value=NAME``, else the first of Gradient, Grad, TFA, Total field
anomaly, TMI, Anomaly, Value, G1, B1, Ch1, Sensor 1.

A row whose latitude and longitude are both zero (or empty), or whose fix
column is 0, has **no GNSS fix**: it is counted and reported as a no-data row,
never placed at 0 deg N, 0 deg E.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import BadRow, RawSurvey
from acquisition.readers._table import Table, find_table, unknown_column
from acquisition.readers._text import (
    check_bad_share,
    epoch_seconds,
    head_lines,
    no_rows,
    parse_clock,
    parse_date,
    read_lines,
    split_fields,
    to_float,
)

DATE = ("date", "datum", "gps date", "utc date", "date (utc)")
TIME = ("time", "zeit", "gps time", "utc time", "time (utc)", "uhrzeit")
STAMP = ("timestamp", "datetime", "date/time", "date time", "date_time", "zeitstempel")
LAT = ("latitude", "lat", "breite", "gps latitude")
LON = ("longitude", "lon", "long", "laenge", "länge", "gps longitude")
EAST = ("easting", "east", "rechtswert")
NORTH = ("northing", "north", "hochwert")
FIX = ("fix", "gps fix", "fix quality", "gps quality", "quality")
VALUE = ("gradient", "grad", "tfa", "total field anomaly", "tmi", "anomaly", "value",
         "g1", "b1", "ch1", "sensor 1", "sensor1", "probe 1")


def _columns(t: Table) -> dict[str, int | None]:
    return {"date": t.first_of(DATE), "time": t.first_of(TIME), "stamp": t.first_of(STAMP),
            "lat": t.first_of(LAT), "lon": t.first_of(LON), "east": t.first_of(EAST),
            "north": t.first_of(NORTH), "fix": t.first_of(FIX)}


def _stamp(tok: str) -> float:
    """A one-column timestamp: epoch milliseconds, or a date and a time of day."""
    s = tok.strip()
    try:
        v = float(s)
    except ValueError:
        pass
    else:
        if math.isfinite(v) and 1e11 < v < 1e14:
            return v / 1000.0
        raise ValueError(f"{tok!r} is not a timestamp (epoch milliseconds or a date and time)")
    parts = s.replace("T", " ").split()
    if len(parts) != 2:
        raise ValueError(f"{tok!r} is not a timestamp (expected 'DATE TIME')")
    return epoch_seconds(parse_date(parts[0]), parse_clock(parts[1].rstrip("Z")))


class SensysReader:
    """Sensys MagWalk / MagDrone CSV: ``;`` fields, text date/time, GNSS positions."""

    name: ClassVar[str] = "sensys"
    description: ClassVar[str] = ("Sensys MagWalk/MagDrone CSV export (; separated, text "
                                  "date/time, GNSS; zero lat/lon = no fix)")
    priority: ClassVar[int] = 15

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        t = find_table(head_lines(head))
        if t is None or t.delim not in (";", ","):
            return False
        c = _columns(t)
        timed = c["stamp"] is not None or (c["date"] is not None and c["time"] is not None)
        placed = (c["lat"] is not None and c["lon"] is not None) or (
            c["east"] is not None and c["north"] is not None)
        return timed and placed

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError

        if stream:
            raise SurveyReadError(path, None, "pick a Sensys channel with --columns "
                                  "value=NAME, not a stream")
        t = find_table(read_lines(path))
        if t is None:
            raise SurveyReadError(path, 1, "no header row (expected e.g. "
                                  "'Date;Time;Latitude;Longitude;Gradient [nT]')")
        c = _columns(t)
        extra_keys = set(columns or {}) - {"value"}
        if extra_keys:
            raise SurveyReadError(path, None, "--columns for a Sensys export takes value=NAME "
                                  f"only (got {', '.join(sorted(extra_keys))})")
        if columns and "value" in columns:
            iv = t.find(columns["value"])
            if iv is None:
                raise unknown_column(path, t, repr(columns["value"]), "")
        else:
            iv = t.first_of(VALUE)
            if iv is None:
                raise unknown_column(path, t, "value", "name it with --columns value=NAME")
        geographic = c["lat"] is not None and c["lon"] is not None
        ia, ib = (c["lon"], c["lat"]) if geographic else (c["east"], c["north"])
        if ia is None or ib is None:
            raise unknown_column(path, t, "Latitude/Longitude or Easting/Northing", "")
        if c["stamp"] is None and (c["date"] is None or c["time"] is None):
            raise unknown_column(path, t, "Date and Time (or Timestamp)", "")
        ncol = len(t.names)
        dc = t.decimal_comma
        xs: list[float] = []
        ys: list[float] = []
        vs: list[float] = []
        ts: list[float] = []
        good: list[int] = []
        bad: list[BadRow] = []
        n_data = 0
        day_cache: dict[str, _dt.date] = {}
        for ln in range(t.header_index + 1, len(t.lines)):
            s = t.lines[ln].strip()
            if not s or s.startswith(("#", "%", "/")):
                continue
            n_data += 1
            lineno = ln + 1
            toks = split_fields(s, t.delim)
            if len(toks) != ncol:
                bad.append(BadRow(lineno, f"{len(toks)} fields, the header has {ncol}"))
                continue
            a_tok, b_tok = toks[ia].strip(), toks[ib].strip()
            try:
                a = to_float(a_tok, decimal_comma=dc) if a_tok else 0.0
                b = to_float(b_tok, decimal_comma=dc) if b_tok else 0.0
                fix = to_float(toks[c["fix"]], decimal_comma=dc) if c["fix"] is not None \
                    and toks[c["fix"]].strip() else None
            except ValueError as exc:
                bad.append(BadRow(lineno, f"position: {exc}"))
                continue
            if (a == 0.0 and b == 0.0) or fix == 0:
                bad.append(BadRow(lineno, "no GNSS fix (position zero-filled): not placed",
                                  no_data=True))
                continue
            if geographic and not (abs(b) <= 90 and abs(a) <= 180):
                bad.append(BadRow(lineno, f"latitude {b_tok!r} / longitude {a_tok!r} out of "
                                  "range"))
                continue
            try:
                v = to_float(toks[iv], decimal_comma=dc)
                if c["stamp"] is not None:
                    tt = _stamp(toks[c["stamp"]])
                else:
                    # index ignores: without a stamp, date and time exist (checked above)
                    dtok = toks[c["date"]].strip()  # type: ignore[index]
                    day = day_cache.get(dtok)
                    if day is None:
                        day = day_cache.setdefault(dtok, parse_date(dtok))
                    tt = epoch_seconds(day, parse_clock(toks[c["time"]]))  # type: ignore[index]
            except ValueError as exc:
                bad.append(BadRow(lineno, str(exc)))
                continue
            xs.append(a)
            ys.append(b)
            vs.append(v)
            ts.append(tt)
            good.append(lineno)
        check_bad_share(path, bad, n_data, max_bad_share)
        if not good:
            no_rows(path, bad, "rows with a GNSS fix under the header")
        md = dict(t.metadata)
        unit = t.units[iv]
        if unit and "value_unit" not in md:
            md["value_unit"] = unit
        md["instrument"] = "Sensys (CSV export)"
        notes = [f"Sensys: value column {t.names[iv]!r}"]
        no_fix = sum(1 for b_ in bad if b_.no_data)
        if no_fix:
            notes.append(f"Sensys: {no_fix} rows without a GNSS fix were left out")
        return RawSurvey(x=np.asarray(xs), y=np.asarray(ys), value=np.asarray(vs),
                         t=np.asarray(ts), metadata=md, bad_rows=bad,
                         line_numbers=np.asarray(good, dtype=np.int64),
                         positions="geographic" if geographic else "projected",
                         rows_seen=n_data, notes=notes)
