"""``fgm3d``: Sensys FGM3D 3-axis fluxgate CSV stream (tesla, decimal commas).

One line per sample, usually 1200 Hz::

    1648557860787,"2,4429E-5","5,4772E-5","2,5547E-5","6,5188E-5"

the time stamp in ms since the Unix epoch, then X, Y, Z and the total field in
**tesla**, each quoted because the decimal separator is a comma. Values are
converted to nT (x 1e9). A first line starting with a letter (or a quoted
name) is a column header and goes to ``info["header"]``.

Rejected: missing quotes, a field count other than 1 + 4, non-numbers (a
decimal point instead of the comma is accepted), non-integer time stamps.

`parse_lines` is the batch parser, `parse_lines_reference` its per-line twin.
"""

from __future__ import annotations

import math
import re

import numpy as np

from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import floats, hybrid
from acquisition.types import ChannelSpec, StreamDescriptor

TESLA_TO_NT = 1e9
CHANNELS = ("bx", "by", "bz", "btotal")

_NUMC = rb"-?[0-9]++(?:[,.][0-9]*+)?+(?:[eE][-+]?[0-9]++)?+"
_LINE_RE = re.compile(rb'^[0-9]{1,16}(?:,"' + _NUMC + rb'"){4}$', re.M)
_NUMC_RE = re.compile(_NUMC)
_TS_RE = re.compile(rb"[0-9]{1,16}")
_UNQUOTE = bytes.maketrans(b",", b".")


def _empty() -> ParsedLines:
    return ParsedLines(values=np.empty((0, 4)), device_ns=np.empty(0, dtype=np.int64))


def _convert(lines: list[bytes]) -> ParsedLines:
    n = len(lines)
    if n == 0:
        return _empty()
    text = b"\n".join(lines).replace(b',"', b" ").translate(_UNQUOTE, b'"')
    flat = floats(text, 5 * n)
    if flat is None:
        return parse_lines_reference(lines)
    a = flat.reshape(n, 5)
    return ParsedLines(values=a[:, 1:] * TESLA_TO_NT,
                       device_ns=a[:, 0].astype(np.int64) * 1_000_000)


def parse_lines(lines: list[bytes]) -> ParsedLines:
    """Decode a batch of FGM3D lines (fast path)."""
    return hybrid(lines, _LINE_RE, _convert, parse_lines_reference)


def _is_header(line: bytes) -> bool:
    s = line.lstrip(b'" ')
    return bool(s) and s[:1].isalpha()


def parse_lines_reference(lines: list[bytes]) -> ParsedLines:
    """Per-line reference decoder; same result as `parse_lines`."""
    rows: list[list[float]] = []
    dev: list[int] = []
    rejects: list[tuple[int, str]] = []
    info: dict[str, str] = {}
    for i, line in enumerate(lines):
        if _is_header(line):
            info["header"] = line.decode("ascii", "replace")
            continue
        ts, sep, rest = line.partition(b",")
        if not sep or _TS_RE.fullmatch(ts) is None:
            rejects.append((i, "timestamp"))
            continue
        fields = rest.split(b'","')
        if len(fields) != 4 or not rest.startswith(b'"') or not rest.endswith(b'"') \
                or len(rest) < 2:
            rejects.append((i, "field_count"))
            continue
        fields[0] = fields[0][1:]
        fields[-1] = fields[-1][:-1]
        if not all(_NUMC_RE.fullmatch(f) for f in fields):
            rejects.append((i, "number"))
            continue
        row = [float(f.replace(b",", b".")) * TESLA_TO_NT for f in fields]
        if any(math.isinf(v) for v in row):
            rejects.append((i, "number"))  # overflows to infinity: no instrument sends it
            continue
        rows.append(row)
        dev.append(int(float(ts)) * 1_000_000)
    return ParsedLines(values=np.array(rows, dtype=np.float64).reshape(len(rows), 4),
                       device_ns=np.array(dev, dtype=np.int64), rejects=rejects, info=info)


class FGM3DDriver(LineDriver):
    """Sensys FGM3D fluxgate (3 axes + total), values in nT after conversion.

    Options: ``rate_hz`` (1200), ``sensor_height_m`` (0.3), ``serial``,
    ``baudrate`` (921600).
    """

    name = "fgm3d"
    baudrate = 921600
    max_line = 160

    def __init__(self, port: str, **kwargs: object) -> None:
        kwargs.setdefault("block_size", 1200)
        super().__init__(port, **kwargs)  # type: ignore[arg-type]

    def default_rate_hz(self) -> float:
        return 1200.0

    def describe(self) -> StreamDescriptor:
        cal = {"scale": TESLA_TO_NT, "from_units": "T"}
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument="Sensys FGM3D fluxgate magnetometer",
            serial=str(self.options.get("serial", "")),
            rate_hz=self.rate_hz,
            channels=tuple(ChannelSpec(c, "nT", calibration=dict(cal)) for c in CHANNELS),
            geometry={
                "kind": "vector",
                "frame": "sensor axes as logged (X, Y, Z)",
                "sensor_height_m": float(self.options.get("sensor_height_m", 0.3)),
                "device_clock": "UTC epoch (ms)",
            },
            position_dims=0,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        return parse_lines(lines)
