"""Generic CSV/XYZ reader with a column mapping, plug-in ``table``.

Any delimited text table with a header row: the delimiter is sniffed
(``;``, tab, ``,`` or whitespace; decimal commas accepted with ``;``, tab or
whitespace). The columns are named by ``columns`` (``--columns
x=Easting,y=Northing,value=Grad`` or ``lat=Lat,lon=Lon,value=TMI``; also
``t`` in seconds and ``lane``), or guessed from common names. A unit in a
column name (``Grad [nT/m]``, ``TMI (pT)``) sets ``value_unit``.

Positions: ``lat``/``lon`` columns are WGS84 degrees (projected to a UTM zone
or ``--crs``); ``x``/``y`` are eastings/northings needing a CRS when named so
(Easting, Northing, UTM...) or too large for a taped grid, else local metres.

It sniffs last (any table with a header), so specific formats win.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import BadRow, Positions, RawSurvey
from acquisition.readers._table import (
    PROJECTED_NAMES,
    Table,
    find_table,
    has_numeric_row,
    positions_kind,
    read_columns,
    unknown_column,
)
from acquisition.readers._text import check_bad_share, head_lines, no_rows, read_lines

KEYS = ("x", "y", "lat", "lon", "value", "t", "lane")
GUESS = {
    "x": ("x", "easting", "east", "utm_x", "utm-x", "utmx", "x_m", "e"),
    "y": ("y", "northing", "north", "utm_y", "utm-y", "utmy", "y_m", "n"),
    "lat": ("lat", "latitude", "lat_deg", "gps_lat"),
    "lon": ("lon", "long", "longitude", "lng", "lon_deg", "gps_lon"),
    "value": ("value", "gradient", "grad", "vrt_grad", "tf_gradient", "tmi", "tfa", "anomaly",
              "total field anomaly", "total field", "mag", "field", "nt"),
    "t": ("t", "time_s", "seconds"),
    "lane": ("lane",),
}
GEO_RANGE = {"lat": 90.0, "lon": 180.0}
COLUMNS_HINT = "name them with --columns, e.g. x=Easting,y=Northing,value=Grad"


def resolve_columns(path: Path, t: Table, columns: dict[str, str] | None
                    ) -> tuple[dict[str, int], list[str]]:
    """Our names -> column indices, from the mapping or guessed; plus notes on guesses."""
    from acquisition.survey import SurveyReadError

    wanted: dict[str, int] = {}
    notes: list[str] = []
    for key, name in (columns or {}).items():
        if key not in KEYS:
            raise SurveyReadError(path, None, f"--columns: unknown key {key!r} (expected "
                                  f"{', '.join(KEYS)})")
        i = t.find(name)
        if i is None:
            raise unknown_column(path, t, f"{name!r} ({key})", COLUMNS_HINT)
        wanted[key] = i
    geo = "lat" in wanted or "lon" in wanted
    xy = "x" in wanted or "y" in wanted
    if geo and xy:
        raise SurveyReadError(path, None, "--columns: give x,y or lat,lon, not both")
    if not columns or not (geo or xy):
        for pair in (("x", "y"), ("lat", "lon")):
            found = [t.first_of(GUESS[k]) for k in pair]
            if all(i is not None for i in found):
                wanted.update({k: i for k, i in zip(pair, found, strict=True) if i is not None})
                break
    for k in ("value", "t", "lane"):
        if k not in wanted and (k != "value" or not columns or "value" not in columns):
            i = t.first_of(GUESS[k])
            if i is not None and i not in wanted.values():
                wanted[k] = i
                if k == "value" and t.keys[i] != "value":
                    notes.append(f"value column guessed: {t.names[i]!r} (--columns "
                                 "value=NAME picks another)")
    if "lat" in wanted or "lon" in wanted:
        missing = [k for k in ("lat", "lon") if k not in wanted]
    elif "x" in wanted or "y" in wanted:
        missing = [k for k in ("x", "y") if k not in wanted]
    else:
        missing = ["x and y (or lat and lon)"]
    if "value" not in wanted:
        missing.append("value")
    if missing:
        raise unknown_column(path, t, " and ".join(missing), COLUMNS_HINT)
    return wanted, notes


class TableReader:
    """Any CSV/XYZ table with a header; columns mapped or guessed."""

    name: ClassVar[str] = "table"
    description: ClassVar[str] = ("any CSV/XYZ table with a header (delimiter sniffed; "
                                  "--columns x=..,y=..,value=.. or lat=..,lon=..)")
    priority: ClassVar[int] = 90

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        t = find_table(head_lines(head))
        return t is not None and len(t.names) >= 3 and has_numeric_row(t)

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError

        if stream:
            raise SurveyReadError(path, None, "a table holds one stream; pick the value "
                                  "column with --columns value=NAME")
        t = find_table(read_lines(path))
        if t is None:
            raise SurveyReadError(path, 1, "no table with a header row (expected names such "
                                  "as x,y,value, separated by , ; tab or spaces)")
        wanted, notes = resolve_columns(path, t, columns)
        cols, lines_ok, bad, n_data = read_columns(t, wanted, optional=frozenset({"t", "lane"}))
        geographic = "lat" in wanted
        if geographic:
            cols, lines_ok = _drop_out_of_range(cols, lines_ok, bad)
        if "lane" in cols:
            lane_ok = np.isfinite(cols["lane"]) & (cols["lane"] == np.round(cols["lane"]))
            for ln in lines_ok[~lane_ok]:
                bad.append(BadRow(int(ln), "lane is not an integer"))
            cols = {k: v[lane_ok] for k, v in cols.items()}
            lines_ok = lines_ok[lane_ok]
        bad.sort(key=lambda b: b.line)
        check_bad_share(path, bad, n_data, max_bad_share)
        if lines_ok.size == 0:
            no_rows(path, bad, "rows of numbers under the header")
        unit = t.units[wanted["value"]]
        positions: Positions
        if geographic:
            x, y, positions = cols["lon"], cols["lat"], "geographic"
        else:
            named = any(t.keys[wanted[k]] in PROJECTED_NAMES for k in ("x", "y"))
            x, y = cols["x"], cols["y"]
            positions = positions_kind(x, y, named)
        md = dict(t.metadata)
        if unit and "value_unit" not in md:
            md["value_unit"] = unit
        return RawSurvey(x=x, y=y, value=cols["value"], t=cols.get("t"),
                         lane=cols["lane"].astype(np.int64) if "lane" in cols else None,
                         metadata=md, bad_rows=bad, line_numbers=lines_ok,
                         positions=positions,
                         rows_seen=n_data, notes=notes)


def _drop_out_of_range(cols: dict[str, np.ndarray], lines: np.ndarray, bad: list[BadRow]
                       ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows at 0 N 0 E (a receiver's zero-filled "no fix") or beyond +-90/+-180 are rejected."""
    ok = np.ones(lines.size, dtype=bool)
    for k, lim in GEO_RANGE.items():
        ok &= np.abs(cols[k]) <= lim
    no_fix = (cols["lat"] == 0) & (cols["lon"] == 0)
    for i in np.flatnonzero(~ok | no_fix):
        if no_fix[i]:
            bad.append(BadRow(int(lines[i]), "no GNSS fix (position zero-filled): not placed",
                              no_data=True))
        else:
            bad.append(BadRow(int(lines[i]), f"latitude {cols['lat'][i]!r} / longitude "
                              f"{cols['lon'][i]!r} out of range"))
    ok &= ~no_fix
    if ok.all():
        return cols, lines
    return {k: v[ok] for k, v in cols.items()}, lines[ok]

