"""``g882``: Geometrics G-882/G-822 caesium magnetometer counter lines.

The CM-221 counter sends, at 9600 8N1 and usually 10 Hz, one line per reading::

    $ 49895.131,1249

the total field in nT, then the Larmor signal level (0-9999). With several
sensors daisy-chained, each counter appends its own pair to the line, comma
joined::

    $ 49895.131,1249,$ 49901.422,1251

Two optional fields may follow the last pair, in this order: the counter's
analog input (a depth or altitude sensor, 1-5 digits, raw counts) and the
Julian-day clock ``D<day>H<hh>M<mm>S<ss>[_<fraction>]``::

    $ 49895.131,1249,0512
    $ 49895.131,1249,D123H14M05S33_25
    $ 49895.131,1249,0512,D123H14M05S33_25

The analog value becomes channel ``analog`` when the driver's ``analog`` option
is set (the descriptor is fixed when the port opens); otherwise it is dropped
and ``info["analog"]`` says it was seen. The clock becomes the device time:
``(day - 1) * 86400 + hh * 3600 + mm * 60 + ss.fraction`` seconds since 1 January
00:00 (of the ``year`` option, as UTC epoch, when given). The ``_`` stands for the
decimal point (``S33_25`` is 33.25 s).

Resync: after a burst of binary noise with no line end, the next frame shares
the noise's line (``<noise>$ 43603.616,1210``). The frame that ends the line is
kept and the noise before it is one reject (``garbage``).

Rejected: lines without the ``$`` prefix (and no frame inside), a wrong number
of sensors, anything that is not a plain decimal number, a signal level of more
than four digits, a clock field out of range (``time``), and fields outside the
sensor's operating range (17,000-100,000 nT: the counter reports 0 or junk
while the sensor has no lock, e.g. in its dead zone).

`parse_lines` is the batch (fast) parser; `parse_lines_reference` its plain
per-line twin. Both are pure and never raise. Lines with the optional fields or
garbage take the reference (per line); plain pairs take the bulk path.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import floats, hybrid
from acquisition.types import ChannelSpec, StreamDescriptor

FIELD_MIN_NT = 17_000.0
FIELD_MAX_NT = 100_000.0

_NUM = rb"[0-9]++(?:\.[0-9]*+)?+"
_PAIR = rb"\$ *+(" + _NUM + rb"),([0-9]{1,4}+)"
_NUM_RE = re.compile(_NUM)
_SIG_RE = re.compile(rb"[0-9]{1,4}")
_TO_SPACE = bytes.maketrans(b"$,\n", b"   ")
_ANALOG_RE = re.compile(rb"-?[0-9]{1,5}")
_CLOCK_RE = re.compile(rb"D([0-9]{1,3})H([0-9]{2})M([0-9]{2})S([0-9]{2})(?:_([0-9]{1,6}))?")


@lru_cache(maxsize=16)
def _frame_at_end(sensors: int) -> re.Pattern[bytes]:
    """A whole frame (pairs and optional fields) ending the line, found anywhere in it."""
    pairs = rb"\$ *+" + _NUM + rb",[0-9]{1,4}+"
    body = pairs + (rb"," + pairs) * (sensors - 1)
    return re.compile(body + rb"(?:,-?[0-9]{1,5})?(?:,D[0-9A-Z_]*)?\Z")


@dataclass(frozen=True, slots=True)
class G882Format:
    """How lines are read: sensors per line, whether ``analog`` is a channel, the clock's year."""

    sensors: int = 1
    analog: bool = False
    year_ns: int = 0

    @property
    def width(self) -> int:
        return 2 * self.sensors + (1 if self.analog else 0)


def year_epoch_ns(year: int) -> int:
    """1 January 00:00 UTC of ``year`` in epoch ns."""
    return int(_dt.datetime(int(year), 1, 1, tzinfo=_dt.UTC).timestamp()) * NS_PER_S


def clock_ns(tok: bytes) -> int | None:
    """``D123H14M05S33_25`` to ns since 1 January 00:00, or None if malformed or out of range."""
    m = _CLOCK_RE.fullmatch(tok)
    if m is None:
        return None
    day, hh, mm, ss = (int(g) for g in m.groups()[:4])
    if not (1 <= day <= 366 and hh < 24 and mm < 60 and ss < 60):
        return None
    frac = m[5] or b""
    sub = int(frac.ljust(9, b"0")) if frac else 0
    return (((day - 1) * 24 + hh) * 60 + mm) * 60 * NS_PER_S + ss * NS_PER_S + sub


@lru_cache(maxsize=16)
def _pattern(sensors: int) -> re.Pattern[bytes]:
    return re.compile(rb"^" + _PAIR + (rb"," + _PAIR) * (sensors - 1) + rb"$", re.M)


def _empty(sensors: int) -> ParsedLines:
    return ParsedLines(values=np.empty((0, 2 * sensors)))


def _as_format(fmt: int | G882Format) -> G882Format:
    return fmt if isinstance(fmt, G882Format) else G882Format(sensors=int(fmt))


def _in_range(values: np.ndarray) -> np.ndarray:
    tf = values[:, 0::2]
    return np.all((tf >= FIELD_MIN_NT) & (tf <= FIELD_MAX_NT), axis=1)


def _convert(lines: list[bytes], sensors: int) -> ParsedLines:
    """Bulk conversion of lines already known to match the pattern."""
    n = len(lines)
    if n == 0:
        return _empty(sensors)
    text = b"\n".join(lines).translate(_TO_SPACE)
    flat = floats(text, n * 2 * sensors)
    if flat is None:  # cannot happen for matching lines; be safe, never raise
        return parse_lines_reference(lines, sensors)
    values = flat.reshape(n, 2 * sensors)
    ok = _in_range(values)
    if ok.all():
        return ParsedLines(values=values)
    rejects = [(int(i), "range") for i in np.flatnonzero(~ok)]
    return ParsedLines(values=values[ok], rejects=rejects)


def parse_lines(lines: list[bytes], sensors: int | G882Format = 1) -> ParsedLines:
    """Decode a batch of counter lines (fast path); ``sensors`` a count or a `G882Format`."""
    fmt = _as_format(sensors)
    if fmt.analog:
        return parse_lines_reference(lines, fmt)  # a channel more: the bulk layout differs
    n = fmt.sensors
    return hybrid(
        lines,
        _pattern(n),
        lambda ls: _convert(ls, n),
        lambda ls: parse_lines_reference(ls, fmt),
    )


def _pairs(parts: list[bytes], sensors: int) -> tuple[list[float], str | None]:
    row: list[float] = []
    for j in range(sensors):
        f, s = parts[2 * j], parts[2 * j + 1]
        num = f[1:].lstrip(b" ")
        if not f.startswith(b"$"):
            return row, "no_prefix"
        if _NUM_RE.fullmatch(num) is None or _SIG_RE.fullmatch(s) is None:
            return row, "number"
        row += [float(num), float(s)]
    return row, None


def _frame(line: bytes, fmt: G882Format) -> tuple[list[float], int | None, str | None, bool]:
    """(row, clock ns or None, reject reason or None, analog seen) of one frame."""
    parts = line.split(b",")
    if not line.startswith(b"$"):
        return [], None, "no_prefix", False
    k = 2 * fmt.sensors
    if len(parts) < k or len(parts) > k + 2 or any(p.startswith(b"$") for p in parts[k:]):
        return [], None, "sensor_count", False
    row, reason = _pairs(parts, fmt.sensors)
    if reason:
        return [], None, reason, False
    analog: float | None = None
    clock: int | None = None
    for extra in parts[k:]:
        if extra.startswith(b"D"):
            clock = clock_ns(extra)
            if clock is None:
                return [], None, "time", False
        elif analog is None and clock is None and _ANALOG_RE.fullmatch(extra):
            analog = float(extra)
        else:
            return [], None, "number", False
    if not all(FIELD_MIN_NT <= v <= FIELD_MAX_NT for v in row[0::2]):
        return [], None, "range", False
    if fmt.analog:
        row.append(np.nan if analog is None else analog)
    return row, clock, None, analog is not None


def parse_lines_reference(lines: list[bytes], sensors: int | G882Format = 1) -> ParsedLines:
    """Per-line reference decoder; same accepts, rejects and values as `parse_lines`."""
    fmt = _as_format(sensors)
    rows: list[list[float]] = []
    clocks: list[int | None] = []
    rejects: list[tuple[int, str]] = []
    info: dict[str, str] = {}
    for i, line in enumerate(lines):
        row, clock, reason, analog = _frame(line, fmt)
        if reason == "no_prefix" and b"$" in line:
            # Noise with no line end before a frame: keep the frame that ends the line.
            m = _frame_at_end(fmt.sensors).search(line)
            if m is not None:
                row, clock, reason, analog = _frame(line[m.start():], fmt)
                if reason is None:
                    rejects.append((i, "garbage"))
                else:
                    reason = "no_prefix"
        if reason:
            rejects.append((i, reason))
            continue
        if analog and not fmt.analog:
            info["analog"] = "seen; set option analog=true to record it as a channel"
        rows.append(row)
        clocks.append(clock)
    values = np.array(rows, dtype=np.float64).reshape(len(rows), fmt.width)
    device = None
    if clocks and all(c is not None for c in clocks):
        device = np.array(clocks, dtype=np.int64) + fmt.year_ns
    return ParsedLines(values=values, device_ns=device, rejects=rejects, info=info)


class G882Driver(LineDriver):
    """Geometrics G-882 (or G-822) total-field magnetometer(s) on a CM-221 counter.

    Options: ``sensors`` (daisy-chained counters on one line, 1), ``rate_hz`` (10),
    ``sensor_height_m`` (0.3), ``sensor_offsets_m`` (list of [x, y] per sensor on the
    cart, relative to the cart reference, x right, y forward), ``serial``,
    ``analog`` (record the counter's analog input as channel ``analog``, False),
    ``year`` (the Julian clock's year: device times become UTC epoch).
    """

    name = "g882"
    baudrate = 9600
    max_line = 256

    def default_rate_hz(self) -> float:
        return 10.0

    @property
    def sensors(self) -> int:
        return max(1, int(self.options.get("sensors", 1)))

    def __init__(self, port: str, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        year = self.options.get("year")
        self._fmt = G882Format(self.sensors, bool(self.options.get("analog", False)),
                               year_epoch_ns(int(year)) if year else 0)

    @property
    def format(self) -> G882Format:
        return self._fmt

    def channel_names(self) -> list[str]:
        if self.sensors == 1:
            out = ["tf", "signal"]
        else:
            out = []
            for k in range(1, self.sensors + 1):
                out += [f"tf{k}", f"signal{k}"]
        return out + (["analog"] if self.format.analog else [])

    def describe(self) -> StreamDescriptor:
        chans = tuple(
            ChannelSpec(n, "nT" if n.startswith("tf") else "1",
                        calibration={} if n.startswith("tf") else
                        {"meaning": "CM-221 analog input (depth/altitude sensor), raw counts"}
                        if n == "analog" else {"range": [0, 9999]})
            for n in self.channel_names()
        )
        geometry: dict[str, Any] = {
            "kind": "total",
            "sensors": self.sensors,
            "sensor_height_m": float(self.options.get("sensor_height_m", 0.3)),
            "device_clock": "UTC epoch" if self.format.year_ns else "since 1 January 00:00",
        }
        if "sensor_offsets_m" in self.options:
            geometry["sensor_offsets_m"] = [list(map(float, o))
                                            for o in self.options["sensor_offsets_m"]]
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument="Geometrics G-882 caesium magnetometer",
            serial=str(self.options.get("serial", "")),
            rate_hz=self.rate_hz,
            channels=chans,
            geometry=geometry,
            position_dims=0,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        return parse_lines(lines, self._fmt)
