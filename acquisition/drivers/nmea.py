"""``nmea``: NMEA 0183 GNSS receivers, GGA and RMC sentences with checksums.

Sentences (any talker: GP, GN, GL, GA, GB, BD, ...)::

    $GPGGA,123519.00,1645.0000,N,10706.0000,E,4,12,0.8,12.3,M,-2.1,M,1.0,0001*hh
    $GNRMC,123519.00,A,1645.0000,N,10706.0000,E,0.52,84.4,140326,,,R*hh

``hh`` (required) is the XOR of the bytes between ``$`` and ``*`` in hex. GGA
gives the fix quality (0 none, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead
reckoning...), satellites in use, HDOP and altitude; RMC gives the date, speed
over ground (knots, converted to m/s) and course. An RMC row's ``fix`` comes
from its status and mode letter (V -> 0; mode A 1, D 2, R 4, F 5, E 6, N 0;
no mode letter -> 1). Fields an RMC row lacks (sats, hdop, alt) are NaN and
vice versa; a sentence without a position (no fix) has NaN lat/lon.

Time: ``utc_s`` is UTC in seconds. RMC's date fixes the day; before any RMC
(or with GGA alone) the day comes from the driver's ``date`` option, else
times are seconds since the first day's midnight; midnight roll-overs are
followed either way.

Other sentences (GSA, GSV, VTG, ...) with a good checksum are skipped without
being counted as rejects. Rejected: no ``$``, a missing or wrong checksum, a
wrong field count, a bad time/date/number/hemisphere, minutes >= 60, latitude
beyond 90 or longitude beyond 180 degrees.
"""

from __future__ import annotations

import datetime as _dt
import math
import re

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.gnss_attach import LocalTangentPlane
from acquisition.drivers.textnum import DAY_NS, xor_checksum
from acquisition.types import ChannelSpec, StreamDescriptor

KNOT_MPS = 1852.0 / 3600.0
CHANNELS: tuple[tuple[str, str], ...] = (
    ("utc_s", "s"), ("lat", "deg"), ("lon", "deg"), ("alt", "m"), ("fix", "1"),
    ("sats", "1"), ("hdop", "1"), ("speed", "m/s"), ("course", "deg"), ("sentence", "1"),
)
GGA, RMC = 1.0, 2.0
RMC_MODE_FIX = {b"A": 1.0, b"D": 2.0, b"R": 4.0, b"F": 5.0, b"E": 6.0, b"N": 0.0,
                b"P": 3.0, b"M": 7.0, b"S": 8.0}

_TIME_RE = re.compile(rb"([0-9]{2})([0-9]{2})([0-9]{2})(\.[0-9]{1,6})?")
_NUM_RE = re.compile(rb"-?[0-9]+(?:\.[0-9]*)?")
_COORD_RE = re.compile(rb"[0-9]{2,5}\.[0-9]+|[0-9]{2,5}")
_HEX = b"0123456789ABCDEFabcdef"


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tod_ns(tok: bytes) -> int:
    m = _TIME_RE.fullmatch(tok)
    if m is None:
        raise _Bad("time")
    hh, mm, ss = int(m[1]), int(m[2]), int(m[3])
    if hh > 23 or mm > 59 or ss > 60:  # 60: leap second
        raise _Bad("time")
    frac = m[4] or b"."
    us = int((frac[1:] + b"000000")[:6])
    return (hh * 3600 + mm * 60 + ss) * NS_PER_S + us * 1000


def _num(tok: bytes) -> float:
    if tok == b"":
        return math.nan
    if _NUM_RE.fullmatch(tok) is None:
        raise _Bad("number")
    return float(tok)


def _coord(tok: bytes, hemi: bytes, pos: bytes, neg: bytes, limit: float) -> float:
    if tok == b"" and hemi == b"":
        return math.nan
    if _COORD_RE.fullmatch(tok) is None or hemi not in (pos, neg):
        raise _Bad("coordinate")
    v = float(tok)
    deg = math.floor(v / 100.0)
    minutes = v - deg * 100.0
    if minutes >= 60.0:
        raise _Bad("coordinate")
    out = deg + minutes / 60.0
    if out > limit:
        raise _Bad("coordinate")
    return -out if hemi == neg else out


def _date_ns(tok: bytes) -> int:
    if len(tok) != 6 or not tok.isdigit():
        raise _Bad("date")
    try:
        d = _dt.date(2000 + int(tok[4:6]), int(tok[2:4]), int(tok[0:2]))
    except ValueError:
        raise _Bad("date") from None
    return int(_dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC).timestamp()) * NS_PER_S


def split_sentence(line: bytes) -> list[bytes]:
    """Checksum-verified fields of a sentence (``[b"GPGGA", ...]``); raises `_Bad`."""
    start = line.rfind(b"$")
    if start < 0:
        raise _Bad("no_prefix")
    star = line.find(b"*", start)
    if star < 0 or len(line) - star != 3 or line[star + 1 : star + 2] not in _HEX \
            or line[star + 2 : star + 3] not in _HEX:
        raise _Bad("no_checksum")
    payload = line[start + 1 : star]
    if xor_checksum(payload) != int(line[star + 1 :], 16):
        raise _Bad("checksum")
    return payload.split(b",")


class NmeaState:
    """What decoding carries from one batch to the next: the day and last time."""

    __slots__ = ("day_ns", "prev_ns")

    def __init__(self, day_ns: int = 0, prev_ns: int | None = None) -> None:
        self.day_ns = day_ns
        self.prev_ns = prev_ns

    def stamp(self, tod: int, date_ns: int | None) -> int:
        if date_ns is not None:
            self.day_ns = date_ns
        t = self.day_ns + tod
        if date_ns is None and self.prev_ns is not None and t < self.prev_ns - DAY_NS // 2:
            self.day_ns += DAY_NS
            t += DAY_NS
        self.prev_ns = t
        return t


def _row(f: list[bytes], state: NmeaState) -> list[float] | None:
    kind = f[0][2:] if len(f[0]) == 5 else b""
    row = [math.nan] * len(CHANNELS)
    if kind == b"GGA":
        if len(f) != 15:
            raise _Bad("field_count")
        tod = _tod_ns(f[1])
        row[1] = _coord(f[2], f[3], b"N", b"S", 90.0)
        row[2] = _coord(f[4], f[5], b"E", b"W", 180.0)
        q = f[6]
        if not (len(q) == 1 and q.isdigit()):
            raise _Bad("fix")
        row[4] = float(q)
        row[5] = _num(f[7])
        row[6] = _num(f[8])
        row[3] = _num(f[9])
        row[9] = GGA
        date = None
    elif kind == b"RMC":
        if len(f) not in (12, 13, 14):
            raise _Bad("field_count")
        tod = _tod_ns(f[1])
        status = f[2]
        if status not in (b"A", b"V"):
            raise _Bad("status")
        row[1] = _coord(f[3], f[4], b"N", b"S", 90.0)
        row[2] = _coord(f[5], f[6], b"E", b"W", 180.0)
        sog = _num(f[7])
        row[7] = sog * KNOT_MPS
        row[8] = _num(f[8])
        date = _date_ns(f[9])
        mode = f[12] if len(f) > 12 else b""
        if status == b"V":
            row[4] = 0.0
        elif mode:
            if mode not in RMC_MODE_FIX:
                raise _Bad("mode")
            row[4] = RMC_MODE_FIX[mode]
        else:
            row[4] = 1.0
        row[9] = RMC
    else:
        return None
    t = state.stamp(tod, date)
    row[0] = t / NS_PER_S
    return row


def parse_lines(lines: list[bytes], state: NmeaState | None = None) -> ParsedLines:
    """Decode GGA/RMC sentences; ``state`` (updated in place) carries day and time.

    Pure apart from ``state``; never raises.
    """
    st = state if state is not None else NmeaState()
    rows: list[list[float]] = []
    dev: list[int] = []
    rejects: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        saved = (st.day_ns, st.prev_ns)
        try:
            row = _row(split_sentence(line), st)
        except _Bad as exc:
            st.day_ns, st.prev_ns = saved
            rejects.append((i, exc.reason))
            continue
        except (ValueError, OverflowError):
            st.day_ns, st.prev_ns = saved
            rejects.append((i, "number"))
            continue
        if row is None:
            continue
        rows.append(row)
        dev.append(int(st.prev_ns or 0))
    return ParsedLines(values=np.array(rows, dtype=np.float64).reshape(len(rows), len(CHANNELS)),
                       device_ns=np.array(dev, dtype=np.int64), rejects=rejects)


#: The per-line decoder is the only one: GNSS streams run at 1-20 Hz, so a batch
#: twin would buy nothing (see docs/drivers.md for measured rates).
parse_lines_reference = parse_lines


class NmeaDriver(LineDriver):
    """A GNSS receiver's NMEA 0183 output (GGA and RMC).

    Positions are metres east/north of ``origin`` ([lat, lon]; default: the first
    fix). Blocks are cut per sentence by default (``block_size`` 1) so the host
    arrival time of each fix stays exact for clock-offset tracking. Options:
    ``origin``, ``date`` (ISO date for GGA-only streams), ``rate_hz`` (1),
    ``serial``, ``antenna_height_m``.
    """

    name = "nmea"
    baudrate = 9600
    max_line = 128  # NMEA limits a sentence to 82 characters; leave room for junk.

    def __init__(self, port: str, **kwargs: object) -> None:
        kwargs.setdefault("block_size", 1)
        super().__init__(port, **kwargs)  # type: ignore[arg-type]
        date = self.options.get("date")
        day = 0
        if date:
            d = _dt.date.fromisoformat(str(date))
            day = int(_dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC).timestamp()) * NS_PER_S
        self.state = NmeaState(day_ns=day)
        origin = self.options.get("origin")
        self.plane = LocalTangentPlane(*map(float, origin)) if origin else None  # type: ignore[call-overload]

    def default_rate_hz(self) -> float:
        return 1.0

    def describe(self) -> StreamDescriptor:
        geometry: dict[str, object] = {
            "kind": "gnss",
            "coordinates": "local tangent plane, x east, y north, metres",
            "antenna_height_m": float(self.options.get("antenna_height_m", 0.0)),
            "fix_codes": "0 none, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning",
        }
        if self.plane is not None:
            geometry["origin_lat_lon"] = [self.plane.lat0_deg, self.plane.lon0_deg]
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument="NMEA 0183 GNSS receiver",
            serial=str(self.options.get("serial", "")),
            rate_hz=self.rate_hz,
            channels=tuple(ChannelSpec(n, u) for n, u in CHANNELS),
            geometry=geometry,
            position_dims=2,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        out = parse_lines(lines, self.state)
        lat, lon = out.values[:, 1], out.values[:, 2]
        if self.plane is None:
            ok = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon) & (out.values[:, 4] > 0))
            if ok.size:
                self.plane = LocalTangentPlane(float(lat[ok[0]]), float(lon[ok[0]]))
        if self.plane is None:
            out.positions = np.full((out.n, 2), np.nan)
        else:
            x, y = self.plane.to_xy(lat, lon)
            out.positions = np.column_stack((x, y))
        return out
