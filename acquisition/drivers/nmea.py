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

Time: one time base for the whole stream, fixed by the first row. With the
driver's ``date`` option, or when the first row is an RMC (it carries the date),
``utc_s`` is UTC epoch seconds. When the first row is a GGA and no date was
given, the row has no date and is handed on at once (blocks are cut per
sentence). Live, the host's UTC clock dates it (the day within 12 h of the
host's time), so ``utc_s`` is UTC epoch seconds as long as the host clock is
within 12 h of UTC. Decoding a capture (`uxo decode`; the driver's ``live`` is
False) there is no such clock, so ``utc_s`` stays seconds since the first row's
UTC midnight for the whole stream. Either way a later RMC's date only moves the
day on (it never jumps the clock), and if the base is not UTC epoch the driver
says by how much: ``info["base_to_utc_s"]`` (add it to ``utc_s``; from a
capture also ``info["utc_day0"]``, the date of that midnight). Midnight
roll-overs are followed either way.

`parse_lines` is the batch parser (GGA and RMC decoded for a whole batch with
NumPy, see `_fast`), `parse_lines_reference` its per-line twin.

Other sentences (GSA, GSV, VTG, ...) with a good checksum are skipped without
being counted as rejects. Rejected: no ``$``, a missing or wrong checksum, a
wrong field count, a bad time/date/number/hemisphere, minutes >= 60, latitude
beyond 90 or longitude beyond 180 degrees.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S, wall_ns
from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.gnss_attach import LocalTangentPlane
from acquisition.drivers.textnum import (
    DAY_NS,
    NumberFields,
    chunk_lines,
    chunked,
    masked,
    scan_numbers,
    xor_checksum,
)
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
    """What decoding carries from one batch to the next: the time base, day and last time.

    ``shift`` is what is subtracted from an RMC date (UTC epoch ns of its
    midnight) to land in this stream's time base: 0 for UTC epoch, the epoch of
    the first row's midnight for a stream that began with a GGA and no date
    (see the module docstring), None until that is decided.
    """

    __slots__ = ("day_ns", "host_ns", "prev_ns", "shift")

    def __init__(self, day_ns: int = 0, prev_ns: int | None = None,
                 shift: int | None = None, host_ns: int | None = None) -> None:
        self.day_ns = day_ns
        self.prev_ns = prev_ns
        self.shift = shift
        #: The host's UTC clock (epoch ns) when a live stream's rows arrive: a first
        #: row without a date is dated by it (the midnight within 12 h of it).
        self.host_ns = host_ns

    def copy(self) -> NmeaState:
        return NmeaState(self.day_ns, self.prev_ns, self.shift, self.host_ns)

    def date_first_row(self, tod: int) -> None:
        """Before the first row, if it has no date: the host's day for it, when live."""
        if self.prev_ns is None and self.shift is None and self.host_ns is not None:
            day = self.host_ns // DAY_NS * DAY_NS
            t = day + tod
            if t - self.host_ns > DAY_NS // 2:
                day -= DAY_NS
            elif self.host_ns - t > DAY_NS // 2:
                day += DAY_NS
            self.day_ns = day

    def saved(self) -> tuple[int, int | None, int | None]:
        return self.day_ns, self.prev_ns, self.shift

    def restore(self, saved: tuple[int, int | None, int | None]) -> None:
        self.day_ns, self.prev_ns, self.shift = saved  # host_ns is an input, not state

    def stamp(self, tod: int, date_ns: int | None) -> int:
        if date_ns is None:
            self.date_first_row(tod)
        if date_ns is not None and self.shift is None:
            if self.prev_ns is None:
                self.shift = 0  # the first row carries the date: UTC epoch
            else:
                # Rows already went out on the unknown day: keep their time base.
                day = self.day_ns
                if day + tod < self.prev_ns - DAY_NS // 2:
                    day += DAY_NS
                self.shift = date_ns - day
        if date_ns is not None:
            self.day_ns = date_ns - (self.shift or 0)
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


def parse_lines_reference(lines: list[bytes],
                          state: NmeaState | None = None) -> ParsedLines:
    """Per-line reference decoder; same result as `parse_lines`."""
    st = state if state is not None else NmeaState()
    rows: list[list[float]] = []
    dev: list[int] = []
    rejects: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        saved = st.saved()
        try:
            row = _row(split_sentence(line), st)
        except _Bad as exc:
            st.restore(saved)
            rejects.append((i, exc.reason))
            continue
        except (ValueError, OverflowError):
            st.restore(saved)
            rejects.append((i, "number"))
            continue
        if row is None:
            continue
        rows.append(row)
        dev.append(int(st.prev_ns or 0))
    return ParsedLines(values=np.array(rows, dtype=np.float64).reshape(len(rows), len(CHANNELS)),
                       device_ns=np.array(dev, dtype=np.int64), rejects=rejects)


#: Below this many lines the per-line reference is cheaper than the batch path's
#: fixed ~0.25 ms (measured crossover: ~50 GGA lines, ~80 of a GGA+RMC+GSV mix); a
#: driver cutting blocks per sentence sees batches of one or two. Same result either way.
SMALL_BATCH = 40

_HEXV = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEXV[_c] = _HEXV[bytes([_c]).lower()[0]] = _i
_MODE_FIX = np.full(256, -1.0)
for _k, _v in RMC_MODE_FIX.items():
    _MODE_FIX[_k[0]] = _v


def _fields(c: bytes, a: np.ndarray, b: np.ndarray) -> NumberFields:
    """Scan ``c[a_i:b_i]`` for each i as one line of 9 comma-separated numbers."""
    padded = b"\n".join([b"", *[c[x:y] for x, y in zip(a.tolist(), b.tolist(), strict=True)],
                         b""])
    n = a.shape[0]
    res = scan_numbers(padded, n, 44, m=9)
    if not res.complete and (b",," in padded or b",\n" in padded or b"\n," in padded):
        res = scan_numbers(padded, n, 44, empty=True)
    if res.complete and res.first is not None and (np.diff(res.first) != 9).any():
        res.line_ok = np.diff(res.first) == 9
        res.complete = False
    return res


def _time(res: NumberFields, n: int, col: int) -> tuple[np.ndarray, np.ndarray]:
    """(ok, time of day in ns) of a ``HHMMSS[.ffffff]`` column."""
    g = lambda a: a.reshape(n, 9)[:, col]  # noqa: E731
    ints, k, dot, neg, size = g(res.ints), g(res.k), g(res.dot), g(res.neg), g(res.size)
    ok = ~neg & (size - dot - k == 6) & ((dot == 0) | ((k >= 1) & (k <= 6)))
    kk: np.ndarray | int = np.where(ok, k, 0)
    if n and isinstance(kk, np.ndarray) and (kk == kk[0]).all():
        kk = int(kk[0])  # one width for the column: division by a scalar is much faster
    scale = 10 ** kk
    whole = ints // scale
    hh = whole // 10000
    mmss = whole - hh * 10000
    mm = mmss // 100
    ss = mmss - mm * 100
    ok &= (hh <= 23) & (mm <= 59) & (ss <= 60)
    us = (ints - whole * scale) * (10 ** (6 - kk))
    return ok, (hh * 3600 + mm * 60 + ss) * NS_PER_S + us * 1000


def _coords(res: NumberFields, n: int, col: int, hemi: np.ndarray, pos: int,
            limit: float) -> tuple[np.ndarray, np.ndarray]:
    """(ok, degrees) of a ``dddmm.mmmm`` column and its hemisphere letter (0 if none)."""
    g = lambda a: a.reshape(n, 9)[:, col]  # noqa: E731
    k, dot, neg, size, empty = g(res.k), g(res.dot), g(res.neg), g(res.size), g(res.empty)
    idig = size - dot - k
    v = g(res.value)
    ok = np.where(empty, hemi == 0,
                  ~neg & (idig >= 2) & (idig <= 5) & ((dot == 0) | (k >= 1)) & (hemi != 0))
    deg = np.floor(v / 100.0)
    minutes = v - deg * 100.0
    out = deg + minutes / 60.0
    ok &= empty | ((minutes < 60.0) & (out <= limit))
    out = np.where(hemi == pos, out, -out)
    return ok, np.where(empty, np.nan, out)


def _fast(lines: list[bytes], state: NmeaState) -> ParsedLines | np.ndarray:
    """Batch decode: the parse when every line is taken here, else the mask of those that are.

    Taken: one ``$`` starting the line and one ``*HH`` ending it (hex). Then a
    wrong checksum is a reject, another sentence type is skipped, and GGA
    (15 fields) and RMC (12-14) lines have their number fields cut out by
    comma position and converted by `textnum.scan_numbers`, hemisphere and
    status letters checked by position. Time stamping follows
    `NmeaState.stamp` over the batch: a GGA steps into the next day when its
    time of day is more than half a day before the previous row's, an RMC
    sets the day from its date. ``state`` changes only when the batch is taken.
    """
    n = len(lines)
    if n == 0:
        return ParsedLines(values=np.empty((0, len(CHANNELS))),
                           device_ns=np.empty(0, dtype=np.int64))
    padded = b"\n".join([b"", *lines, b""])
    u = np.frombuffer(padded, dtype=np.uint8)
    # Commas and newlines in one pass: a line's commas are the entries between
    # its two newlines, so no search maps lines to commas.
    sp = np.flatnonzero((u == 44) | (u == 10))
    nli = np.flatnonzero(u[sp] == 10)
    if nli.shape[0] != n + 1:
        return np.zeros(n, dtype=bool)
    nl = sp[nli]
    ls, le = nl[:-1] + 1, nl[1:]
    star = np.maximum(le - 3, 0)
    hi, lo = _HEXV[u[star + 1]], _HEXV[u[np.minimum(star + 2, le)]]
    ok = (le - ls >= 7) & (u[ls] == 36) & (u[star] == 42) & (hi >= 0) & (lo >= 0)
    for ch in (36, 42):  # exactly one '$' and one '*' a line
        if np.count_nonzero(u == ch) != np.count_nonzero(ok) or not ok.all():
            where = np.searchsorted(nl, np.flatnonzero(u == ch)) - 1
            ok &= np.bincount(where, minlength=n) == 1
    idx = np.column_stack((np.where(ok, ls + 1, 0), np.where(ok, star, 0))).reshape(-1)
    sums = np.bitwise_xor.reduceat(u, idx)[0::2]
    cks = ok & (sums == hi * 16 + lo)
    # c0: index in sp of a line's first comma (its closing newline if none). A
    # taken line ends in "*HH", so all its commas come before the star.
    c0 = nli[:-1] + 1
    ncomma = nli[1:] - c0
    f0end = np.where(ncomma > 0, sp[c0], star)
    five = cks & (f0end - ls == 6)
    # The sentence type, bytes 3-5 of a five-letter first field (clipped: a
    # short line's bytes there are ignored, ``five`` is False for it).
    t3 = np.minimum(ls + 3, u.shape[0] - 3)
    k3, k4, k5 = u[t3], u[t3 + 1], u[t3 + 2]
    gga = five & (k3 == 71) & (k4 == 71) & (k5 == 65)
    rmc = five & (k3 == 82) & (k4 == 77) & (k5 == 67)
    taken = ok & ~((gga & (ncomma != 14)) | (rmc & ((ncomma < 11) | (ncomma > 13))))
    gi = np.flatnonzero(gga & taken)
    ri = np.flatnonzero(rmc & taken)
    cb = u.copy()
    # Comma positions per sentence. GGA fields 1-9: time, lat, N/S, lon, E/W,
    # quality, sats, hdop, alt; RMC 1-9: time, status, lat, N/S, lon, E/W,
    # speed, course, date, and the mode letter after comma 11.
    cg = sp[c0[gi][:, None] + np.arange(10)]
    ri_c = sp[np.minimum(c0[ri][:, None] + np.arange(12), sp.shape[0] - 1)] \
        if ri.size else np.empty((0, 12), dtype=np.int64)
    letters: list[tuple[np.ndarray, np.ndarray, bytes]] = [
        (cg[:, 2], cg[:, 3], b"NS"), (cg[:, 4], cg[:, 5], b"EW"),
        (ri_c[:, 1], ri_c[:, 2], b"AV"), (ri_c[:, 3], ri_c[:, 4], b"NS"),
        (ri_c[:, 5], ri_c[:, 6], b"EW")]
    codes = []
    for a, b, allowed in letters:
        width = b - a - 1
        ch = u[a + 1]
        code = np.where(width == 1, ch, 0)
        good = (width == 0) | ((width == 1) & ((ch == allowed[0]) | (ch == allowed[1])))
        codes.append((code, good))
        cb[(a + 1)[width == 1]] = 48  # a checked letter reads as the number 0
    c = cb.tobytes()
    gok = codes[0][1] & codes[1][1]
    rok = codes[2][1] & codes[3][1] & codes[4][1] & (codes[2][0] != 0)
    gres = _fields(c, cg[:, 0] + 1, cg[:, 9])
    rres = _fields(c, ri_c[:, 0] + 1, ri_c[:, 9])
    # An incomplete scan that still passes every line: leave them all to the reference.
    if not gres.complete:
        gok &= gres.line_ok & ~gres.line_ok.all()
    if not rres.complete:
        rok &= rres.line_ok & ~rres.line_ok.all()
    ng, nr = gi.shape[0], ri.shape[0]
    if gres.complete and ng:
        t_ok, g_tod = _time(gres, ng, 0)
        la_ok, g_lat = _coords(gres, ng, 1, codes[0][0], ord("N"), 90.0)
        lo_ok, g_lon = _coords(gres, ng, 3, codes[1][0], ord("E"), 180.0)
        q = lambda a: a.reshape(ng, 9)[:, 5]  # noqa: E731
        q_ok = ~q(gres.neg) & (q(gres.size) == 1)
        gok &= t_ok & la_ok & lo_ok & q_ok
        assert gres.value is not None  # set when complete
        gv = gres.value.reshape(ng, 9)
    if rres.complete and nr:
        t_ok, r_tod = _time(rres, nr, 0)
        la_ok, r_lat = _coords(rres, nr, 2, codes[3][0], ord("N"), 90.0)
        lo_ok, r_lon = _coords(rres, nr, 4, codes[4][0], ord("E"), 180.0)
        d = lambda a: a.reshape(nr, 9)[:, 8]  # noqa: E731
        d_ok = ~d(rres.neg) & (d(rres.dot) == 0) & (d(rres.size) == 6)
        # Mode letter: field 12 when present, from its comma to the next comma or '*'.
        has_mode = ncomma[ri] >= 12
        m_end = np.where(ncomma[ri] >= 13, sp[np.minimum(c0[ri] + 12, sp.shape[0] - 1)],
                         star[ri])
        m_len = np.where(has_mode, m_end - ri_c[:, 11] - 1, 0)
        mode = np.where(m_len == 1, _MODE_FIX[u[np.minimum(ri_c[:, 11] + 1, u.shape[0] - 1)]], 1.0)
        status_a = codes[2][0] == ord("A")
        m_ok = ~status_a | (m_len == 0) | ((m_len == 1) & (mode >= 0))
        rok &= t_ok & la_ok & lo_ok & d_ok & m_ok
        assert rres.value is not None  # set when complete
        rv = rres.value.reshape(nr, 9)
        dates = d(rres.ints)
        r_date = np.zeros(nr, dtype=np.int64)
        for val in np.unique(dates[rok]).tolist():
            try:
                day = _date_ns(b"%06d" % val)
            except _Bad:
                rok &= dates != val
                continue
            r_date[dates == val] = day
    fast_ok = taken & ~gga & ~rmc
    fast_ok[gi[gok]] = True
    fast_ok[ri[rok]] = True
    if not fast_ok.all():
        return fast_ok
    rejects = [(int(i), "checksum") for i in np.flatnonzero(ok & ~cks)]
    # Rows in line order; slices instead of index arrays when one kind only.
    pg: slice | np.ndarray
    pr: slice | np.ndarray
    if nr == 0:
        keep, pg, pr = gi, slice(None), slice(0)
    elif ng == 0:
        keep, pg, pr = ri, slice(0), slice(None)
    else:
        keep = np.sort(np.concatenate((gi, ri)))
        pg, pr = np.searchsorted(keep, gi), np.searchsorted(keep, ri)
    rows = np.full((keep.shape[0], len(CHANNELS)), np.nan)
    if keep.size == 0:
        return ParsedLines(values=rows, device_ns=np.empty(0, dtype=np.int64), rejects=rejects)
    tod = np.empty(keep.shape[0], dtype=np.int64)
    date = np.zeros(keep.shape[0], dtype=np.int64)
    if ng:
        rows[pg, 1], rows[pg, 2], rows[pg, 3] = g_lat, g_lon, gv[:, 8]
        rows[pg, 4], rows[pg, 5], rows[pg, 6] = gv[:, 5], gv[:, 6], gv[:, 7]
        rows[pg, 9] = GGA
        tod[pg] = g_tod
    if nr:
        rows[pr, 1], rows[pr, 2] = r_lat, r_lon
        rows[pr, 4] = np.where(status_a, mode, 0.0)
        rows[pr, 7], rows[pr, 8] = rv[:, 6] * KNOT_MPS, rv[:, 7]
        rows[pr, 9] = RMC
        tod[pr], date[pr] = r_tod, r_date
    t = _stamp(tod, date, rmc[keep], state)
    us = t // 1000
    if (us * 1000 == t).all() and np.abs(us).max() < 2**53:
        # t / 1e9 as Python's int division gives it: t // 1000 and 1e6 are exact,
        # so the quotient is the one correctly rounded value.
        rows[:, 0] = us / 1e6
    else:
        rows[:, 0] = [x / NS_PER_S for x in t.tolist()]
    return ParsedLines(values=rows, device_ns=t, rejects=rejects)


def _stamp(tod: np.ndarray, date: np.ndarray, is_rmc: np.ndarray, state: NmeaState) -> np.ndarray:
    """`NmeaState.stamp` over a batch of rows, vectorised; updates ``state``."""
    half = DAY_NS // 2
    if not is_rmc[0]:
        state.date_first_row(int(tod[0]))
    # The RMC that decides the time base steps days like a GGA (see NmeaState.stamp).
    steps = ~is_rmc
    r0 = -1
    if state.shift is None and is_rmc.any():
        r0 = int(np.argmax(is_rmc))
        if state.prev_ns is None and r0 == 0:
            state.shift = 0
            r0 = -1
        else:
            steps = steps.copy()
            steps[r0] = True
    roll = np.zeros(tod.shape[0], dtype=np.int64)
    roll[1:] = (tod[1:] < tod[:-1] - half) & steps[1:]
    if steps[0] and state.prev_ns is not None \
            and state.day_ns + int(tod[0]) < state.prev_ns - half:
        roll[0] = 1
    rolls = np.cumsum(roll)
    if r0 >= 0:
        state.shift = int(date[r0]) - (state.day_ns + int(rolls[r0]) * DAY_NS)
    group = np.cumsum(is_rmc)
    starts = np.flatnonzero(is_rmc)
    base = np.concatenate(([state.day_ns], date[starts] - (state.shift or 0)))
    offset = np.concatenate(([0], rolls[starts]))
    day = base[group] + (rolls - offset[group]) * DAY_NS
    t = day + tod
    state.day_ns, state.prev_ns = int(day[-1]), int(t[-1])
    return t


def parse_lines(lines: list[bytes], state: NmeaState | None = None) -> ParsedLines:
    """Decode GGA/RMC sentences; ``state`` (updated in place) carries day and time.

    Pure apart from ``state``; never raises. Lines `_fast` does not take go to
    the reference (reasons); if it accepts one, the whole batch does. Batches under
    `SMALL_BATCH` lines go to the reference outright, large ones in cache-sized chunks.
    """
    st = state if state is not None else NmeaState()
    if len(lines) < SMALL_BATCH:
        return parse_lines_reference(lines, st)
    # Cache-sized chunks, the state carried through: the same fold over the lines.
    return chunked(lines, chunk_lines(lines, 2.0), lambda ls: _parse_chunk(ls, st))


def _parse_chunk(lines: list[bytes], st: NmeaState) -> ParsedLines:
    out = _fast(lines, st)
    if isinstance(out, ParsedLines):
        return out
    scratch = st.copy()
    return masked(lines, out, lambda ls: _fast(ls, st),
                  lambda ls: parse_lines_reference(ls, scratch),
                  lambda ls: parse_lines_reference(ls, st))


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

    def __init__(self, port: str, **kwargs: Any) -> None:
        kwargs.setdefault("block_size", 1)
        super().__init__(port, **kwargs)
        date = self.options.get("date")
        day = 0
        if date:
            d = _dt.date.fromisoformat(str(date))
            day = int(_dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC).timestamp()) * NS_PER_S
        # A given date fixes the time base to UTC epoch; else the first row does.
        self.state = NmeaState(day_ns=day, shift=0 if date else None)
        origin = self.options.get("origin")
        self.plane = LocalTangentPlane(*map(float, origin)) if origin else None

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
        if self.live:
            self.state.host_ns = wall_ns()
        out = parse_lines(lines, self.state)
        if self.state.shift:
            out.info["base_to_utc_s"] = f"{self.state.shift / NS_PER_S:.0f}"
            if not self.live:
                day0 = _dt.datetime.fromtimestamp(self.state.shift // NS_PER_S, _dt.UTC).date()
                out.info["utc_day0"] = day0.isoformat()
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
