"""``fgm3d``: Sensys FGM3D 3-axis fluxgate CSV stream (tesla, decimal commas).

One line per sample, usually 1200 Hz::

    1648557860787,"2,4429E-5","5,4772E-5","2,5547E-5","6,5188E-5"

the time stamp in ms since the Unix epoch, then X, Y, Z and the total field in
**tesla**, each quoted because the decimal separator is a comma. Values are
converted to nT (x 1e9). A first line starting with a letter (or a quoted
name) is a column header and goes to ``info["header"]``.

Rejected: missing quotes, a field count other than 1 + 4, non-numbers (a
decimal point instead of the comma is accepted), non-integer time stamps and
time stamps past the int64 nanosecond clock (year 2262).

`parse_lines` is the batch parser, `parse_lines_reference` its per-line twin.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import (
    drop_overflow,
    exact_scale,
    floats,
    good_mask,
    hybrid,
    masked,
    scan_numbers,
)
from acquisition.types import ChannelSpec, StreamDescriptor

TESLA_TO_NT = 1e9
#: Latest time stamp (ms) whose nanoseconds fit the int64 clock; later ones are rejected.
MAX_TS_MS = (2**63 - 1) // 1_000_000
CHANNELS = ("bx", "by", "bz", "btotal")

_NUMC = rb"-?[0-9]++(?:[,.][0-9]*+)?+(?:[eE][-+]?[0-9]++)?+"
_LINE_RE = re.compile(rb'^[0-9]{1,16}(?:,"' + _NUMC + rb'"){4}$', re.M)
_NUMC_RE = re.compile(_NUMC)
_TS_RE = re.compile(rb"[0-9]{1,16}")
_UNQUOTE = bytes.maketrans(b",", b".")
#: Canonical text for the scanner: decimal commas to points, exponents to fields of their own.
_CANON = bytes.maketrans(b",eE", b".  ")


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
    if (a[:, 0] > MAX_TS_MS).any():
        return parse_lines_reference(lines)
    with np.errstate(over="ignore"):  # overflowed rows are rejected just below
        nt = a[:, 1:] * TESLA_TO_NT
    return drop_overflow(ParsedLines(values=nt, device_ns=a[:, 0].astype(np.int64) * 1_000_000))


def _fast(lines: list[bytes]) -> ParsedLines | None:
    """Parse of a batch whose every line is a standard record, or None.

    Standard: ``ts,"m E e","m E e",...`` with an exponent on every value. The
    quotes are checked by position (8 a line, each structural comma where it
    belongs, one exponent mark inside each pair of quotes, no spaces); the text
    is then rewritten in place to ``ts m e m e m e m e`` (structural commas to
    spaces, quotes and exponent ``+`` dropped, ``E`` to a space, decimal comma
    to a point) for `textnum.scan_numbers`. Value = mantissa x 10**(e - k),
    one exact IEEE operation (`textnum.exact_scale`).
    """
    n = len(lines)
    if n == 0:
        return _empty()
    padded = b"\n".join([b"", *lines, b""])
    u = np.frombuffer(padded, dtype=np.uint8)
    nl = np.flatnonzero(u == 10)
    q = np.flatnonzero(u == 34)
    if nl.shape[0] != n + 1 or q.shape[0] != 8 * n or np.count_nonzero(u == 32):
        return None
    qq = q.reshape(n, 8)
    ep = np.flatnonzero((u | np.uint8(32)) == 101)
    if ep.shape[0] != 4 * n:
        return None
    ee = ep.reshape(n, 4)
    commas = np.column_stack((qq[:, 0] - 1, qq[:, 1:6:2] + 1))
    if (qq[:, 0] - 1 <= nl[:-1] + 1).any() or (qq[:, 7] != nl[1:] - 1).any() \
            or (qq[:, 2:7:2] != qq[:, 1:6:2] + 2).any() or (u[commas] != 44).any() \
            or (ee <= qq[:, 0::2]).any() or (ee >= qq[:, 1::2]).any():
        return None
    plus = np.flatnonzero(u == 43)
    if plus.shape[0] and (((u[plus - 1] | np.uint8(32)) != 101).any()
                          or ((u[plus + 1] - np.uint8(48)) > 9).any()):
        return None
    c = u.copy()
    c[commas] = 32
    res = scan_numbers(c.tobytes().translate(_CANON, b'"+'), n, 32, m=9)
    if not res.complete or res.first is None or (np.diff(res.first) != 9).any():
        return None
    assert res.dot is not None and res.neg is not None and res.ints is not None \
        and res.k is not None  # set when complete
    dot = res.dot.reshape(n, 9)
    neg = res.neg.reshape(n, 9)
    ints = res.ints.reshape(n, 9)
    if neg[:, 0].any() or dot[:, 0::2].any() or (ints[:, 0] > MAX_TS_MS).any():
        return None  # the time stamp and the exponents are integers
    mant = ints[:, 1::2]  # signed: scaling keeps the sign, only -0 needs help
    vals = exact_scale(mant, ints[:, 2::2] - res.k.reshape(n, 9)[:, 1::2])
    if vals is None:
        return None
    zero = mant == 0
    if zero.any():
        vals[zero & neg[:, 1::2]] = -0.0
    with np.errstate(over="ignore"):  # overflowed rows are rejected just below
        nt = vals * TESLA_TO_NT
    return drop_overflow(ParsedLines(values=nt, device_ns=ints[:, 0] * 1_000_000))


def parse_lines(lines: list[bytes]) -> ParsedLines:
    """Decode a batch of FGM3D lines (fast path).

    A batch of standard records goes through `_fast`. Otherwise the per-line
    regex picks the lines for it (`textnum.masked`); records it does not take
    (no exponent, 16+ digits) fall back to the regex check and NumPy's reader.
    """
    out = _fast(lines)
    if out is not None:
        return out
    return masked(lines, good_mask(_LINE_RE, lines), _fast, parse_lines_reference,
                  lambda ls: hybrid(ls, _LINE_RE, _convert, parse_lines_reference))


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
        if not sep or _TS_RE.fullmatch(ts) is None or int(ts) > MAX_TS_MS:
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

    def __init__(self, port: str, **kwargs: Any) -> None:
        kwargs.setdefault("block_size", 1200)
        super().__init__(port, **kwargs)

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
