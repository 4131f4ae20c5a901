"""``lineproto``: an ASCII line driver described in configuration, not code.

A team with an instrument no driver knows writes its line layout in the
stream's options (TOML in the service config)::

    [streams.mag.options]
    separator = ";"            # one character, or "whitespace" (runs of spaces/tabs)
    decimal_comma = true       # "12,5" means 12.5
    prefix = "$MAG;"           # optional fixed start of every data line (stripped)
    comment = "#"              # lines starting with it are skipped (banners, headers)
    columns = ["time:ms", "bz:nT*0.1", "_", "depth:m*0.01+0.2"]
    instrument = "Acme MX-2"
    kind = "gradient"          # geometry kind: gradient / total / vector / other
    rate_hz = 20

A column is ``name[:units][*scale][+offset|-offset]`` (or a table with those
keys): the value written is ``raw * scale + offset``. ``_`` skips a column.
A column named ``time`` is the device clock (units ``s``, ``ms``, ``us`` or
``ns``; it is not a channel). Fields may be wrapped in double quotes.

Rejected: missing prefix, a field count other than the number of columns,
anything that is not a decimal number (an empty field is NaN for a channel and
a reject for ``time``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import NS_LIMIT, drop_overflow, floats, hybrid
from acquisition.errors import UxoValueError
from acquisition.types import ChannelSpec, StreamDescriptor

TIME_UNITS = {"s": NS_PER_S, "ms": 1_000_000, "us": 1_000, "ns": 1}
_COL_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)(?::([^*+\-]*))?"
                     r"(?:\*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?))?(?:([+\-])([0-9.]+(?:[eE][-+]?[0-9]+)?))?$")


class ConfigError(UxoValueError):
    """The lineproto configuration is unusable (raised when the driver is built)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    units: str = "1"
    scale: float = 1.0
    offset: float = 0.0

    @property
    def skip(self) -> bool:
        return self.name == "_"


def parse_column(spec: str | Mapping[str, Any]) -> Column:
    """``"bz:nT*0.1+5"`` or ``{"name": "bz", "units": "nT", "scale": 0.1}`` to a Column."""
    if isinstance(spec, Mapping):
        try:
            return Column(str(spec["name"]), str(spec.get("units", "1")),
                          float(spec.get("scale", 1.0)), float(spec.get("offset", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad column {spec!r}: {exc}") from None
    m = _COL_RE.match(str(spec).strip())
    if m is None:
        raise ConfigError(f"bad column {spec!r}: expected name[:units][*scale][+offset]")
    try:
        scale = float(m[3]) if m[3] else 1.0
        off = float(m[5]) if m[5] else 0.0
    except ValueError as exc:
        raise ConfigError(f"bad column {spec!r}: {exc}") from None
    return Column(m[1], (m[2] or "1").strip() or "1", scale, -off if m[4] == "-" else off)


@dataclass(frozen=True)
class LineFormat:
    """A described line layout; build with `LineFormat.from_options`."""

    columns: tuple[Column, ...]
    separator: str = ","
    decimal_comma: bool = False
    prefix: bytes = b""
    comment: bytes = b"#"

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> LineFormat:
        cols = opts.get("columns")
        if not isinstance(cols, Sequence) or isinstance(cols, str | bytes) or not cols:
            raise ConfigError("lineproto needs 'columns': a list of column specs")
        columns = tuple(parse_column(c) for c in cols)
        names = [c.name for c in columns if not c.skip]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate column names: {names}")
        chans = [c for c in columns if not c.skip and c.name != "time"]
        if not chans:
            raise ConfigError("lineproto needs at least one channel column")
        for c in columns:
            if c.name == "time" and c.units not in TIME_UNITS:
                raise ConfigError(f"time units must be one of {sorted(TIME_UNITS)}")
        sep = str(opts.get("separator", ","))
        if sep != "whitespace" and (len(sep) != 1 or sep in '".-+0123456789eE'):
            raise ConfigError(f"separator must be one character or 'whitespace', got {sep!r}")
        dc = bool(opts.get("decimal_comma", False))
        if dc and sep == ".":
            raise ConfigError("decimal comma with '.' separator is ambiguous")
        return cls(columns, sep, dc, str(opts.get("prefix", "")).encode(),
                   str(opts.get("comment", "#")).encode())

    @property
    def channels(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.skip and c.name != "time")

    @property
    def time_index(self) -> int:
        for i, c in enumerate(self.columns):
            if c.name == "time":
                return i
        return -1

    def split(self, body: bytes) -> list[bytes]:
        if self.separator == "whitespace":
            return body.split()
        return body.split(self.separator.encode())


_NUM = rb"-?[0-9]++(?:[.][0-9]*+)?+(?:[eE][-+]?[0-9]++)?+"
_NUM_RE = re.compile(_NUM)
_NUMC_RE = re.compile(rb"-?[0-9]+(?:[,][0-9]*)?(?:[eE][-+]?[0-9]+)?")


def _fast_pattern(fmt: LineFormat) -> re.Pattern[bytes] | None:
    """One regex for clean unquoted lines, or None when this layout has no fast path."""
    if fmt.decimal_comma and fmt.separator == ",":
        return None
    num = _NUM.replace(rb"[.]", rb"[,]") if fmt.decimal_comma else _NUM
    sep = rb"[ \t]++" if fmt.separator == "whitespace" else re.escape(fmt.separator.encode())
    lead = rb"[ \t]*+" if fmt.separator == "whitespace" else b""
    body = num + (sep + num) * (len(fmt.columns) - 1)
    return re.compile(rb"^" + re.escape(fmt.prefix) + lead + body + lead + rb"$", re.M)


def _finish(table: np.ndarray, fmt: LineFormat, rows: np.ndarray | None = None) -> ParsedLines:
    """Scaled channel values and device times of decoded rows (``rows``: their batch lines).

    A row whose scaled value or time overflows (to infinity, or past the int64
    nanosecond clock) is rejected as ``number``: the raw number fit, the scaled
    one does not, and no instrument means it.
    """
    idx = [i for i, c in enumerate(fmt.columns) if not c.skip and c.name != "time"]
    scale = np.array([fmt.columns[i].scale for i in idx])
    off = np.array([fmt.columns[i].offset for i in idx])
    with np.errstate(over="ignore", invalid="ignore"):
        values = table[:, idx] * scale + off
    ti = fmt.time_index
    dev = None
    bad_t = None
    if ti >= 0:
        mult = TIME_UNITS[fmt.columns[ti].units]
        with np.errstate(over="ignore", invalid="ignore"):
            t = table[:, ti] * fmt.columns[ti].scale * mult + fmt.columns[ti].offset * mult
        bad_t = ~(np.abs(t) < NS_LIMIT)
        dev = np.round(np.where(bad_t, 0.0, t)).astype(np.int64)
    return drop_overflow(ParsedLines(values=values, device_ns=dev), rows, bad_t)


def _convert(lines: list[bytes], fmt: LineFormat, pat: re.Pattern[bytes]) -> ParsedLines:
    n, m = len(lines), len(fmt.columns)
    text = b"\n".join(lines)
    if fmt.prefix:
        text = text.replace(b"\n" + fmt.prefix, b"\n")[len(fmt.prefix):]
    if fmt.separator != "whitespace":
        text = text.replace(fmt.separator.encode(), b" ")
    if fmt.decimal_comma:
        text = text.replace(b",", b".")
    flat = floats(text, n * m) if n else np.empty(0)
    if flat is None:
        return parse_lines_reference(lines, fmt)
    return _finish(flat.reshape(n, m), fmt)


def parse_lines(lines: list[bytes], fmt: LineFormat) -> ParsedLines:
    """Decode lines laid out as ``fmt`` (fast path where the layout allows one)."""
    pat = _fast_pattern(fmt)
    if pat is None:
        return parse_lines_reference(lines, fmt)
    return hybrid(lines, pat, lambda ls: _convert(ls, fmt, pat),
                  lambda ls: parse_lines_reference(ls, fmt))


def parse_lines_reference(lines: list[bytes], fmt: LineFormat) -> ParsedLines:
    """Per-line reference decoder; same result as `parse_lines`."""
    rows: list[list[float]] = []
    kept: list[int] = []
    rejects: list[tuple[int, str]] = []
    num_re = _NUMC_RE if fmt.decimal_comma else _NUM_RE
    ti = fmt.time_index
    for i, line in enumerate(lines):
        if fmt.comment and line.startswith(fmt.comment):
            continue
        if not line.startswith(fmt.prefix):
            rejects.append((i, "no_prefix"))
            continue
        body = line[len(fmt.prefix):]
        fields = fmt.split(body)
        if len(fields) != len(fmt.columns):
            rejects.append((i, "field_count"))
            continue
        row: list[float] = []
        for k, f in enumerate(fields):
            if len(f) >= 2 and f[:1] == b'"' and f[-1:] == b'"':
                f = f[1:-1]
            if f == b"" and k != ti:
                row.append(math.nan)
            elif num_re.fullmatch(f) is None:
                break
            else:
                row.append(float(f.replace(b",", b".")))
        if len(row) != len(fields) or any(math.isinf(v) for v in row):
            rejects.append((i, "number"))  # not a number, or one overflowing to infinity
            continue
        rows.append(row)
        kept.append(i)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(fmt.columns))
    out = _finish(table, fmt, np.array(kept, dtype=np.int64))
    out.rejects = sorted(out.rejects + rejects)
    return out


class LineProtoDriver(LineDriver):
    """A line instrument described by options (see the module docstring)."""

    name = "lineproto"
    baudrate = 9600
    max_line = 512

    def __init__(self, port: str, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        self.format = LineFormat.from_options(self.options)

    def default_rate_hz(self) -> float:
        return 10.0

    def describe(self) -> StreamDescriptor:
        geometry = dict(self.options.get("geometry") or {})
        geometry.setdefault("kind", str(self.options.get("kind", "other")))
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument=str(self.options.get("instrument", "configured line instrument")),
            serial=str(self.options.get("serial", "")),
            rate_hz=self.rate_hz,
            channels=tuple(
                ChannelSpec(c.name, c.units,
                            calibration={"scale": c.scale, "offset": c.offset})
                for c in self.format.channels
            ),
            geometry=geometry,
            position_dims=0,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        return parse_lines(lines, self.format)
