"""Reader for GEM Systems GSM-19 dump files, plug-in ``gsm19``.

The decoding is `acquisition.drivers.gsm19_dump.decode_gsm19_dump` (one
decoder for dumps, shared with the drivers); this module turns its records into
a survey:

- walking gradiometer (``.wg``) with GPS: positions are the GPS latitude and
  longitude; without GPS, the grid X, Y in metres (local);
- value: the ``nT/m`` gradient column, the lower sensor minus the upper one over
  their distance (the ``nT`` column is the lower sensor, MagPy's reading of
  the format), converted to nT with the ``/00106 sensor distance cm`` header
  (metadata ``sensor_separation_m``): ``kind: tf_gradient``. Stream ``total``
  gives the ``nT`` column instead (``kind: total``);
- times: the instrument clock on the header's date, moved to UTC by a
  ``/UTC+hh`` line;
- a base-station dump (no positions) is a diurnal record, not a survey: it is
  refused with a message saying so.

Rows without a GPS position (``*``) are counted as no-data rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import BadRow, Positions, RawSurvey
from acquisition.readers._text import check_bad_share, head_lines, no_rows

STREAMS = ("gradient", "total")
_ROW_RE = re.compile(r"^(?:[0-9]{6}(?:\.[0-9]*)?|[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?)\s+"
                     r"[0-9]{4,6}\.[0-9]+(?:\s+[-+]?[0-9]+(?:\.[0-9]*)?){1,2}$")
_REASONS = {
    "field_count": "wrong number of fields for the dump's columns",
    "time": "time is not HHMMSS.s or HH:MM:SS.s",
    "number": "a field is not a number",
    "range": "total field outside 10,000-120,000 nT",
    "text": "unexpected text (expected a reading or a 'line N' marker)",
}


class GSM19Reader:
    """GEM GSM-19 dump: base station v6/v7 (refused: no positions), walking gradiometer."""

    name: ClassVar[str] = "gsm19"
    description: ClassVar[str] = ("GEM Systems GSM-19 dump (walking gradiometer .wg with GPS or "
                                  "grid; base-station v6/v7 recognised)")
    priority: ClassVar[int] = 20

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        lines = head_lines(head)
        if any(s.lstrip("/").strip().lower().startswith("gem systems gsm-19")
               for s in lines[:5]):
            return True
        rows = [s for s in lines if _ROW_RE.match(s)]
        return len(rows) >= 2 and len(rows) >= 0.8 * len(lines)

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.drivers.gsm19_dump import decode_gsm19_dump
        from acquisition.survey import SurveyReadError

        if columns:
            raise SurveyReadError(path, None, "a GSM-19 dump has fixed columns; --columns is "
                                  "for generic CSV/XYZ files")
        if stream is not None and stream not in STREAMS:
            raise SurveyReadError(path, None, f"unknown GSM-19 stream {stream!r} (expected "
                                  f"one of: {', '.join(STREAMS)})")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SurveyReadError(path, None, f"cannot read: {exc.strerror or exc}") from None
        d, rejects = decode_gsm19_dump(data)
        bad = [BadRow(r.line, _REASONS.get(r.reason, r.reason)) for r in rejects]
        n_data = d.n + len(bad)
        check_bad_share(path, bad, n_data, max_bad_share)
        if d.n == 0:
            no_rows(path, bad, "GSM-19 readings")
        gps = d.has_gps
        grid = bool(np.isfinite(d.x).any())
        if not (gps or grid):
            raise SurveyReadError(path, None, "a GSM-19 base-station dump has no positions: it "
                                  "is a diurnal record, not a survey (expected a walking "
                                  "gradiometer .wg dump with GPS or grid positions)")
        positions: Positions
        if gps:
            x, y, positions = d.lon, d.lat, "geographic"
            in_range = (np.abs(d.lat) <= 90) & (np.abs(d.lon) <= 180)
        else:
            x, y, positions = d.x, d.y, "local"
            in_range = np.ones(d.n, dtype=bool)
        placed = np.isfinite(x) & np.isfinite(y) & in_range
        for ln in d.line[~placed]:
            bad.append(BadRow(int(ln), "no position (GPS '*' or out of range): not placed",
                              no_data=True))
        want = stream or ("gradient" if d.has_gradient else "total")
        md: dict[str, str] = {"instrument": d.info.get("instrument", "GEM Systems GSM-19")}
        notes: list[str] = []
        if want == "gradient":
            if not d.has_gradient:
                raise SurveyReadError(path, None, "stream 'gradient': this dump has no nT/m "
                                      "gradient column")
            value, unit = d.gradient, "nT/m"
            md["kind"] = "tf_gradient"
            sep = d.info.get("sensor_distance_m")
            if sep:
                md["sensor_separation_m"] = sep
            notes.append("GSM-19: value = nT/m gradient (lower minus upper sensor) times the "
                          f"sensor distance{' ' + sep + ' m' if sep else ' (not in the file)'}"
                          ", kind tf_gradient")
        else:
            value, unit = d.field_nT, "nT"
            md["kind"] = "total"
        ok = placed & np.isfinite(value)
        for ln in d.line[placed & ~np.isfinite(value)]:
            bad.append(BadRow(int(ln), f"no {want} value in this record", no_data=True))
        bad.sort(key=lambda b: b.line)
        if not ok.any():
            no_rows(path, bad, "GSM-19 readings with a position")
        epoch = d.utc_epoch_ns()
        if epoch is None:
            t = d.time_ns.astype(np.float64) / 1e9
            notes.append("GSM-19: no date in the header; t is seconds of the instrument's day")
        else:
            t = epoch.astype(np.float64) / 1e9
        if d.date is not None:
            md["date"] = d.date.isoformat()
        lane = d.survey_line if (d.survey_line >= 0).any() else None
        return RawSurvey(x=x[ok], y=y[ok], value=value[ok], t=t[ok],
                         lane=lane[ok] if lane is not None else None, metadata=md,
                         extra={"field_nT": d.field_nT[ok], "quality": d.quality[ok]},
                         bad_rows=bad, line_numbers=d.line[ok],
                         positions=positions,
                         value_unit=unit, rows_seen=n_data, notes=notes)
