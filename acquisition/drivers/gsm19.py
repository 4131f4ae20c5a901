"""``gsm19``: GEM Systems GSM-19 Overhauser magnetometer real-time output.

One line per reading, fields separated by one or more spaces::

    HHMMSS.s  <nT>  <quality|gradient>
    115014.0  48484.12 99          (total field + 2-digit quality code)
    10:00:00.0  57100.00 99        (v7 firmware: clock-format time)
    123456.0  48123.45  -12.37     (gradiometer: total field + gradient)
    123456.0  48123.45  -12.37 99  (gradiometer: total field, gradient, quality)

The time is the instrument's clock, time of day (``HHMMSS`` or ``HH:MM:SS``, the
tenths optional). A third field that is an unsigned integer of two or three
digits is the quality code (the instrument prints ``99``; older emulations
``099``); a gradient always carries a decimal point or a sign. A step back of
more than half a day in the time is the day roll-over (23:59:59.9 then
00:00:00.0) and continues the clock into the next day.

Whole dump files (v6/v7 base station, walking gradiometer with GPS) are read by
`acquisition.drivers.gsm19_dump.decode_gsm19_dump`, re-exported here.

Channels: ``tf`` (nT), ``quality`` (code, NaN on gradient lines), ``grad``
(gradient units, NaN on quality lines), so one descriptor fits both modes.

Rejected: wrong field count, a time that is not HHMMSS[.s] or HH:MM:SS[.s] with
HH<24, MM<60, SS<60, non-numbers, and total fields outside 10,000-120,000 nT.

`parse_lines` is the batch parser, `parse_lines_reference` its per-line twin.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import floats, hybrid, unwrap_time_of_day
from acquisition.types import ChannelSpec, StreamDescriptor

if TYPE_CHECKING:
    from acquisition.drivers.gsm19_dump import Gsm19Dump, Reject

FIELD_MIN_NT = 10_000.0
FIELD_MAX_NT = 120_000.0

_TIME = rb"[0-9]{6}+(?:\.[0-9]++)?+"
#: The v7 clock form; the batch path drops the colons, which gives the plain form.
_CLOCK = rb"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]++)?+"
_ANY_TIME = rb"(?:" + _TIME + rb"|" + _CLOCK + rb")"
_NUM = rb"-?[0-9]++(?:\.[0-9]*+)?+"
_QUAL = rb"[0-9]{2,3}+"
_Q_RE = re.compile(rb"^ *" + _ANY_TIME + rb" +" + _NUM + rb" +" + _QUAL + rb" *$", re.M)
_G_RE = re.compile(rb"^ *" + _ANY_TIME + rb" +" + _NUM + rb" +(?!" + _QUAL + rb" *$)" + _NUM
                   + rb" *$", re.M)
_TIME_RE = re.compile(_TIME)
_CLOCK_RE = re.compile(_CLOCK)
_NUM_RE = re.compile(_NUM)
_QUAL_RE = re.compile(_QUAL)


#: Walking-gradiometer rows (``.wg`` dumps, and the same rows streamed), by field count:
#: with GPS (lat, lon, elevation first) and without (grid X, Y first). ``_`` = not decoded.
WG_LAYOUTS: dict[int, tuple[str, ...]] = {
    11: ("lat", "lon", "alt", "field", "gradient", "quality", "_", "_", "time", "_", "_"),
    9: ("x", "y", "field", "gradient", "quality", "_", "time", "_", "_"),
}


#: Starts of a dump's header and marker lines (v7 ``/`` comments, v6 headers, ``line N``).
_HEADERS = (b"/", b"Gem Systems", b"ID ", b"datum", b"line ")


def time_token(tok: bytes) -> float | None:
    """``HHMMSS[.s]`` or ``HH:MM:SS[.s]`` as the float HHMMSS.s, or None if neither form.

    The clock form maps onto the plain one (colons dropped), so both share one
    range check and conversion (`_tod_ns`).
    """
    if _TIME_RE.fullmatch(tok) is not None:
        return float(tok)
    if _CLOCK_RE.fullmatch(tok) is not None:
        return float(tok.replace(b":", b""))
    return None


def is_quality(tok: bytes) -> bool:
    """A GSM-19 quality code: an unsigned integer of two or three digits (``99``)."""
    return _QUAL_RE.fullmatch(tok) is not None


def is_number(tok: bytes) -> bool:
    """A plain decimal as the GSM-19 prints it (optional sign, optional point)."""
    return _NUM_RE.fullmatch(tok) is not None


def _tod_ns(hhmmss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HHMMSS.s as floats to (time-of-day ns, validity mask)."""
    whole = np.floor(hhmmss)
    frac = hhmmss - whole
    w = whole.astype(np.int64)
    hh, mm, ss = w // 10000, (w // 100) % 100, w % 100
    ok = (hh < 24) & (mm < 60) & (ss < 60)
    # Rounding to 1 us keeps the float noise of ".1" out of the ns clock.
    ns = (hh * 3600 + mm * 60 + ss) * NS_PER_S + np.round(frac * 1e6).astype(np.int64) * 1000
    return ns, ok


def _finish(t: np.ndarray, tf: np.ndarray, q: np.ndarray, g: np.ndarray,
            idx: np.ndarray, prev_ns: int | None, base_ns: int,
            rejects: list[tuple[int, str]]) -> ParsedLines:
    tod, ok_t = _tod_ns(t)
    ok_f = (tf >= FIELD_MIN_NT) & (tf <= FIELD_MAX_NT)
    for i in np.flatnonzero(~(ok_t & ok_f)):
        rejects.append((int(idx[i]), "time" if not ok_t[i] else "range"))
    keep = ok_t & ok_f
    rejects.sort()
    values = np.column_stack((tf[keep], q[keep], g[keep]))
    dev = unwrap_time_of_day(tod[keep], None if prev_ns is None else prev_ns - base_ns) + base_ns
    return ParsedLines(values=values, device_ns=dev, rejects=rejects)


def _convert(lines: list[bytes], prev_ns: int | None, base_ns: int) -> ParsedLines:
    n = len(lines)
    flat = floats(b" ".join(lines).replace(b":", b""), 3 * n) if n else np.empty(0)
    if flat is None:
        return parse_lines_reference(lines, prev_ns=prev_ns, base_ns=base_ns)
    a = flat.reshape(n, 3)
    # A batch is all-quality or all-gradient here (see parse_lines).
    third = a[:, 2]
    if n and _Q_RE.fullmatch(lines[0]) is not None:
        q, g = third, np.full(n, np.nan)
    else:
        q, g = np.full(n, np.nan), third
    return _finish(a[:, 0], a[:, 1], q, g, np.arange(n), prev_ns, base_ns, [])


def parse_lines(lines: list[bytes], *, prev_ns: int | None = None,
                base_ns: int = 0) -> ParsedLines:
    """Decode a batch of GSM-19 lines (fast path).

    ``prev_ns`` is the device time of the previous sample (for the day
    roll-over across batches); ``base_ns`` is added to every time (the epoch of
    the survey date's midnight, or 0 for plain time of day).
    """
    def ref(ls: list[bytes]) -> ParsedLines:
        return parse_lines_reference(ls, prev_ns=prev_ns, base_ns=base_ns)

    def conv(ls: list[bytes]) -> ParsedLines:
        return _convert(ls, prev_ns, base_ns)

    # Instruments run in one mode, so try the batch as all-quality, then
    # all-gradient; a mixed or dirty batch goes line by line.
    for pat in (_Q_RE, _G_RE):
        if any(pat.fullmatch(ln) is not None for ln in lines[:4]):
            return hybrid(lines, pat, conv, ref)
    return ref(lines)


def _wg_row(parts: list[bytes]) -> tuple[float, float, float, float] | str:
    """(HHMMSS.s, field, quality, gradient) of a walking-gradiometer row, or a reject reason."""
    rec: dict[str, float] = {}
    for tok, key in zip(parts, WG_LAYOUTS[len(parts)], strict=True):
        if key == "_" or (tok == b"*" and key not in ("time", "field")):
            continue
        if key == "time":
            tv = time_token(tok)
            if tv is None:
                return "time"
            rec[key] = tv
        elif not (is_quality(tok) if key == "quality" else is_number(tok)):
            return "number"
        else:
            rec[key] = float(tok)
    return rec["time"], rec["field"], rec.get("quality", np.nan), rec.get("gradient", np.nan)


def parse_lines_reference(lines: list[bytes], *, prev_ns: int | None = None,
                          base_ns: int = 0) -> ParsedLines:
    """Per-line reference decoder; same result as `parse_lines`."""
    t: list[float] = []
    tf: list[float] = []
    q: list[float] = []
    g: list[float] = []
    idx: list[int] = []
    rejects: list[tuple[int, str]] = []
    info: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.startswith(_HEADERS):
            if line.startswith((b"/Gem", b"Gem")):
                info["instrument"] = line.lstrip(b"/").decode("latin-1").strip()
            continue  # a dump's header, comment or ``line N`` marker: not a reading
        if line.translate(None, b" 0123456789.-:*"):
            rejects.append((i, "number"))  # a byte no GSM-19 field can hold
            continue
        parts = line.split()
        if len(parts) in WG_LAYOUTS:
            row = _wg_row(parts)
            if isinstance(row, str):
                rejects.append((i, row))
                continue
            t.append(row[0])
            tf.append(row[1])
            q.append(row[2])
            g.append(row[3])
            idx.append(i)
            continue
        if len(parts) not in (3, 4):
            rejects.append((i, "field_count"))
            continue
        tv = time_token(parts[0])
        if tv is None:
            rejects.append((i, "time"))
            continue
        fs = parts[1]
        if not is_number(fs):
            rejects.append((i, "number"))
            continue
        if len(parts) == 4:  # gradiometer: gradient, then quality
            if not (is_number(parts[2]) and is_quality(parts[3])):
                rejects.append((i, "number"))
                continue
            qv, gv = float(parts[3]), float(parts[2])
        elif is_quality(parts[2]):
            qv, gv = float(parts[2]), np.nan
        elif is_number(parts[2]):
            qv, gv = np.nan, float(parts[2])
        else:
            rejects.append((i, "number"))
            continue
        t.append(tv)
        tf.append(float(fs))
        q.append(qv)
        g.append(gv)
        idx.append(i)
    out = _finish(np.array(t, dtype=np.float64), np.array(tf, dtype=np.float64),
                  np.array(q, dtype=np.float64), np.array(g, dtype=np.float64),
                  np.array(idx, dtype=np.int64), prev_ns, base_ns, rejects)
    out.info = info
    return out


def decode_gsm19_dump(text: str | bytes) -> tuple[Gsm19Dump, list[Reject]]:
    """Decode a whole GSM-19 dump file; see `acquisition.drivers.gsm19_dump`."""
    # Imported here: gsm19_dump builds on this module's token rules.
    from acquisition.drivers.gsm19_dump import decode_gsm19_dump as decode

    return decode(text)


def date_epoch_ns(date: str) -> int:
    """Midnight UTC of an ISO date (``2026-03-14``) in epoch ns."""
    d = _dt.date.fromisoformat(date)
    return int(_dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC).timestamp()) * NS_PER_S


class GSM19Driver(LineDriver):
    """GEM GSM-19 (or GSM-19G gradiometer) real-time output.

    Options: ``date`` (ISO date of the first reading: device times become UTC
    epoch ns; else ns since the first reading's midnight), ``gradient_units``
    (``nT/m``), ``sensor_height_m`` (0.3), ``sensor_separation_m`` (gradiometer
    sensor spacing, 0.56), ``rate_hz`` (1), ``serial``.
    """

    name = "gsm19"
    baudrate = 9600
    max_line = 128

    def __init__(self, port: str, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        self._prev_ns: int | None = None
        date = self.options.get("date")
        self._base_ns = date_epoch_ns(str(date)) if date else 0

    def default_rate_hz(self) -> float:
        return 1.0

    def describe(self) -> StreamDescriptor:
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument="GEM Systems GSM-19 Overhauser magnetometer",
            serial=str(self.options.get("serial", "")),
            rate_hz=self.rate_hz,
            channels=(
                ChannelSpec("tf", "nT"),
                ChannelSpec("quality", "1", calibration={"meaning": "GSM-19 quality code"}),
                ChannelSpec("grad", str(self.options.get("gradient_units", "nT/m"))),
            ),
            geometry={
                "kind": "total",
                "sensor_height_m": float(self.options.get("sensor_height_m", 0.3)),
                "sensor_separation_m": float(self.options.get("sensor_separation_m", 0.56)),
                "device_clock": "UTC epoch" if self._base_ns else "time of day",
            },
            position_dims=0,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        out = parse_lines(lines, prev_ns=self._prev_ns, base_ns=self._base_ns)
        if out.n and out.device_ns is not None:
            self._prev_ns = int(out.device_ns[-1])
        return out
