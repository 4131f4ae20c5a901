"""``g882``: Geometrics G-882/G-822 caesium magnetometer counter lines.

The CM-221 counter sends, at 9600 8N1 and usually 10 Hz, one line per reading::

    $ 49895.131,1249

the total field in nT, then the Larmor signal level (0-9999). With several
sensors daisy-chained, each counter appends its own pair to the line, comma
joined::

    $ 49895.131,1249,$ 49901.422,1251

Rejected: lines without the ``$`` prefix, a wrong number of sensors, anything
that is not a plain decimal number, a signal level of more than four digits, and
fields outside the sensor's operating range (17,000-100,000 nT: the counter
reports 0 or junk while the sensor has no lock, e.g. in its dead zone).

`parse_lines` is the batch (fast) parser; `parse_lines_reference` its plain
per-line twin. Both are pure and never raise.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

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


@lru_cache(maxsize=16)
def _pattern(sensors: int) -> re.Pattern[bytes]:
    return re.compile(rb"^" + _PAIR + (rb"," + _PAIR) * (sensors - 1) + rb"$", re.M)


def _empty(sensors: int) -> ParsedLines:
    return ParsedLines(values=np.empty((0, 2 * sensors)))


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


def parse_lines(lines: list[bytes], sensors: int = 1) -> ParsedLines:
    """Decode a batch of counter lines with ``sensors`` readings each (fast path)."""
    return hybrid(
        lines,
        _pattern(sensors),
        lambda ls: _convert(ls, sensors),
        lambda ls: parse_lines_reference(ls, sensors),
    )


def parse_lines_reference(lines: list[bytes], sensors: int = 1) -> ParsedLines:
    """Per-line reference decoder; same accepts, rejects and values as `parse_lines`."""
    rows: list[list[float]] = []
    rejects: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        reason = None
        parts = line.split(b",")
        row: list[float] = []
        if not line.startswith(b"$"):
            reason = "no_prefix"
        elif len(parts) != 2 * sensors:
            reason = "sensor_count"
        else:
            for j in range(sensors):
                f, s = parts[2 * j], parts[2 * j + 1]
                num = f[1:].lstrip(b" ")
                if not f.startswith(b"$"):
                    reason = "no_prefix"
                elif _NUM_RE.fullmatch(num) is None or _SIG_RE.fullmatch(s) is None:
                    reason = "number"
                if reason:
                    break
                row += [float(num), float(s)]
            if reason is None and not (
                all(FIELD_MIN_NT <= v <= FIELD_MAX_NT for v in row[0::2])
            ):
                reason = "range"
        if reason:
            rejects.append((i, reason))
        else:
            rows.append(row)
    values = np.array(rows, dtype=np.float64).reshape(len(rows), 2 * sensors)
    return ParsedLines(values=values, rejects=rejects)


class G882Driver(LineDriver):
    """Geometrics G-882 (or G-822) total-field magnetometer(s) on a CM-221 counter.

    Options: ``sensors`` (daisy-chained counters on one line, 1), ``rate_hz`` (10),
    ``sensor_height_m`` (0.3), ``sensor_offsets_m`` (list of [x, y] per sensor on the
    cart, relative to the cart reference, x right, y forward), ``serial``.
    """

    name = "g882"
    baudrate = 9600
    max_line = 256

    def default_rate_hz(self) -> float:
        return 10.0

    @property
    def sensors(self) -> int:
        return max(1, int(self.options.get("sensors", 1)))

    def channel_names(self) -> list[str]:
        if self.sensors == 1:
            return ["tf", "signal"]
        out: list[str] = []
        for k in range(1, self.sensors + 1):
            out += [f"tf{k}", f"signal{k}"]
        return out

    def describe(self) -> StreamDescriptor:
        chans = tuple(
            ChannelSpec(n, "nT" if n.startswith("tf") else "1",
                        calibration={} if n.startswith("tf") else {"range": [0, 9999]})
            for n in self.channel_names()
        )
        geometry: dict[str, Any] = {
            "kind": "total",
            "sensors": self.sensors,
            "sensor_height_m": float(self.options.get("sensor_height_m", 0.3)),
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
        return parse_lines(lines, self.sensors)
