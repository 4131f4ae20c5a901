"""``fga``: FG Sensors FGA logger CSV (two 3-axis fluxgates plus GNSS), header-driven.

The logger writes a header row, then one row per sample::

    Timestamp_ms,B1x_nT,B1y_nT,B1z_nT,B1v_nT,B2x_nT,B2y_nT,B2z_nT,B2v_nT,Lat_deg,Lon_deg,Alt_m,SIV,Fix,HDOP_m
    1000,12.5,-3.25,40010.5,40012.7,11.0,-2.75,40100.25,40101.9,16.75,107.1,12.5,14,4,0.6

Columns are found by name from the header (any order; unknown columns are
ignored; a missing column reads as NaN). Until a header is seen the published
order above is assumed, since a port opened mid-stream never sees the header.
``Bnv`` is the sensor's vector magnitude as logged. Empty GNSS fields (no fix
yet) read as NaN.

Rejected: a field count that differs from the header's, an empty or
non-numeric time stamp or B field, non-numbers anywhere, a time stamp of
9.2e12 ms or more in magnitude (beyond the int64 nanosecond clock).

`parse_lines` is the batch parser, `parse_lines_reference` its per-line twin.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np

from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.gnss_attach import LocalTangentPlane
from acquisition.drivers.textnum import chunk_lines, chunked, floats, hybrid, masked, scan_numbers
from acquisition.types import ChannelSpec, StreamDescriptor

DEFAULT_HEADER: tuple[str, ...] = (
    "Timestamp_ms", "B1x_nT", "B1y_nT", "B1z_nT", "B1v_nT", "B2x_nT", "B2y_nT",
    "B2z_nT", "B2v_nT", "Lat_deg", "Lon_deg", "Alt_m", "SIV", "Fix", "HDOP_m",
)
#: Channels (header name, channel name, units), in descriptor order.
CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("B1x_nT", "B1x", "nT"), ("B1y_nT", "B1y", "nT"), ("B1z_nT", "B1z", "nT"),
    ("B1v_nT", "B1v", "nT"), ("B2x_nT", "B2x", "nT"), ("B2y_nT", "B2y", "nT"),
    ("B2z_nT", "B2z", "nT"), ("B2v_nT", "B2v", "nT"), ("Lat_deg", "Lat", "deg"),
    ("Lon_deg", "Lon", "deg"), ("Alt_m", "Alt", "m"), ("SIV", "SIV", "1"),
    ("Fix", "Fix", "1"), ("HDOP_m", "HDOP", "m"),
)
_REQUIRED = {"Timestamp_ms"} | {h for h, _, u in CHANNELS if u == "nT"}
_NUM = rb"-?[0-9]++(?:\.[0-9]*+)?+(?:[eE][-+]?[0-9]++)?+"
_NUM_RE = re.compile(_NUM)
#: Below this many rows the per-line reference (~11 µs a row) is cheaper than the
#: batch path's fixed ~60 µs (measured crossover ~6 rows). Same result either way.
SMALL_BATCH = 6
#: Time stamps (ms) at or beyond this magnitude do not fit the int64 ns clock: rejected.
TS_LIMIT_MS = 9.2e12


@lru_cache(maxsize=16)
def _pattern(n_fields: int) -> re.Pattern[bytes]:
    return re.compile(rb"^" + _NUM + (rb"," + _NUM) * (n_fields - 1) + rb"$", re.M)


@lru_cache(maxsize=16)
def _mapping(header: tuple[str, ...]) -> tuple[int, tuple[int, ...], tuple[bool, ...]]:
    """(timestamp column, source column per channel or -1, channel required?)."""
    idx = {h: i for i, h in enumerate(header)}
    ts = idx.get("Timestamp_ms", -1)
    cols = tuple(idx.get(h, -1) for h, _, _ in CHANNELS)
    req = tuple(h in _REQUIRED for h, _, _ in CHANNELS)
    return ts, cols, req


def is_header(line: bytes) -> bool:
    return b"Timestamp" in line and line[:1].isalpha()


def header_of(line: bytes) -> tuple[str, ...]:
    return tuple(f.strip().decode("ascii", "replace") for f in line.split(b","))


def _select(table: np.ndarray, header: tuple[str, ...]) -> ParsedLines:
    ts, cols, _ = _mapping(header)
    values = table[:, [max(c, 0) for c in cols]]
    for k, c in enumerate(cols):
        if c < 0:
            values[:, k] = np.nan
    dev = np.round(table[:, ts] * 1000.0).astype(np.int64) * 1000
    return ParsedLines(values=values, device_ns=dev)


def _empty() -> ParsedLines:
    return ParsedLines(values=np.empty((0, len(CHANNELS))), device_ns=np.empty(0, dtype=np.int64))


def _convert(lines: list[bytes], header: tuple[str, ...]) -> ParsedLines:
    n, m = len(lines), len(header)
    if n == 0:
        return _empty()
    flat = floats(b"\n".join(lines).replace(b",", b" "), n * m)
    if flat is None or (np.abs(flat[_mapping(header)[0]::m]) >= TS_LIMIT_MS).any():
        return parse_lines_reference(lines, header)
    return _select(flat.reshape(n, m), header)


@lru_cache(maxsize=16)
def _must(header: tuple[str, ...]) -> np.ndarray:
    """Columns that may not be empty: the time stamp and the B fields."""
    ts, cols, req = _mapping(header)
    must = np.zeros(len(header), dtype=bool)
    must[[ts, *(c for c, r in zip(cols, req, strict=True) if r)]] = True
    return must


def _fast(lines: list[bytes], header: tuple[str, ...],
          padded: bytes | None = None) -> ParsedLines | np.ndarray:
    """Parse of a batch whose every line is ``len(header)`` plain numbers, or the
    mask of the lines that are (see `textnum.scan_numbers`)."""
    n, m = len(lines), len(header)
    if n == 0:
        return _empty()
    if padded is None:
        padded = b"\n".join([b"", *lines, b""])
    res = scan_numbers(padded, n, m=m)
    if not res.complete and (b",," in padded or b",\n" in padded or b"\n," in padded):
        res = scan_numbers(padded, n, empty=True)  # GNSS fields are empty before a fix
    if res.first is None:
        return np.zeros(n, dtype=bool)
    ok = res.line_ok & (np.diff(res.first) == m)
    if not res.complete or not ok.all():
        return ok
    assert res.value is not None and res.empty is not None  # set when complete
    table = res.value.reshape(n, m)
    bad = np.abs(table[:, _mapping(header)[0]]) >= TS_LIMIT_MS
    if res.empty.any():
        bad |= (res.empty.reshape(n, m) & _must(header)).any(axis=1)
    if bad.any():
        return ~bad
    return _select(table, header)


def _usable(header: tuple[str, ...]) -> bool:
    ts, cols, req = _mapping(header)
    return ts >= 0 and all(c >= 0 for c, r in zip(cols, req, strict=True) if r)


def parse_lines(lines: list[bytes], header: tuple[str, ...] = DEFAULT_HEADER) -> ParsedLines:
    """Decode a batch of FGA rows laid out as ``header`` (fast path).

    A header row inside the batch changes the layout for the rows after it and
    is returned in ``info["header"]`` (comma-joined) for the caller to keep.
    Rows that are all plain numbers go through `textnum.scan_numbers`; a batch
    with other rows splits (`textnum.masked`), and numbers the scanner does not
    take (exponents, 16+ digits) fall back to a regex check and NumPy's reader.
    A large batch is cut into cache-sized chunks (`textnum.chunked`), the
    header carried from one to the next; one under `SMALL_BATCH` rows goes to the
    reference outright.
    """
    if len(lines) < SMALL_BATCH:
        return parse_lines_reference(lines, header)
    hdr = header

    def one(ls: list[bytes]) -> ParsedLines:
        nonlocal hdr
        out = _parse_chunk(ls, hdr)
        if "header" in out.info:
            hdr = tuple(out.info["header"].split(","))
        return out

    return chunked(lines, chunk_lines(lines), one)


def _parse_chunk(lines: list[bytes], header: tuple[str, ...]) -> ParsedLines:
    if not _usable(header):
        return parse_lines_reference(lines, header)
    padded = b"\n".join([b"", *lines, b""])
    out = _fast(lines, header, padded)
    if isinstance(out, ParsedLines):
        return out  # all numbers: no header row in the batch
    # One substring search instead of a per-line test: headers are rare.
    if b"Timestamp" in padded and any(is_header(ln) for ln in lines):
        return parse_lines_reference(lines, header)

    def ref(ls: list[bytes]) -> ParsedLines:
        return parse_lines_reference(ls, header)

    return masked(lines, out, lambda ls: _fast(ls, header), ref,
                  lambda ls: hybrid(ls, _pattern(len(header)), lambda x: _convert(x, header), ref))


def parse_lines_reference(lines: list[bytes],
                          header: tuple[str, ...] = DEFAULT_HEADER) -> ParsedLines:
    """Per-line reference decoder; same result as `parse_lines`."""
    rows: list[list[float]] = []
    dev: list[int] = []
    rejects: list[tuple[int, str]] = []
    info: dict[str, str] = {}
    for i, line in enumerate(lines):
        if is_header(line):
            new = header_of(line)
            if _usable(header) and not _usable(new):
                # A damaged header (line noise that happens to hold "Timestamp")
                # must not replace a good one: every line after it would be lost.
                rejects.append((i, "header"))
                continue
            header = new
            info["header"] = ",".join(header)
            continue
        if not _usable(header):
            rejects.append((i, "header"))
            continue
        fields = line.split(b",")
        if len(fields) != len(header):
            rejects.append((i, "field_count"))
            continue
        ts, cols, req = _mapping(header)
        must = {ts} | {c for c, r in zip(cols, req, strict=True) if r}
        if any((f != b"" or k in must) and _NUM_RE.fullmatch(f) is None
               for k, f in enumerate(fields)):
            rejects.append((i, "number"))
            continue
        if any(math.isinf(float(f)) for f in fields if f) \
                or abs(float(fields[ts])) >= TS_LIMIT_MS:
            # Overflows to infinity, or a time past the int64 ns clock: no instrument sends it.
            rejects.append((i, "number"))
            continue
        rows.append([float(fields[c]) if c >= 0 and fields[c] else np.nan for c in cols])
        dev.append(int(np.round(np.float64(float(fields[ts])) * 1000.0)) * 1000)
    return ParsedLines(values=np.array(rows, dtype=np.float64).reshape(len(rows), len(CHANNELS)),
                       device_ns=np.array(dev, dtype=np.int64), rejects=rejects, info=info)


class FGADriver(LineDriver):
    """FG Sensors FGA logger: two 3-axis fluxgates (B1 lower, B2 upper) and GNSS.

    Positions are metres east/north of ``origin`` ([lat, lon]; default: the first
    row with a fix) by a local tangent plane. Options: ``origin``, ``rate_hz``
    (100), ``sensor_height_m`` (0.3), ``sensor_separation_m`` (B1 to B2, 0.65),
    ``serial``.
    """

    name = "fga"
    baudrate = 115200
    max_line = 512

    def __init__(self, port: str, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        self._header: tuple[str, ...] = DEFAULT_HEADER
        origin = self.options.get("origin")
        self._plane = LocalTangentPlane(*map(float, origin)) if origin else None

    def default_rate_hz(self) -> float:
        return 100.0

    def describe(self) -> StreamDescriptor:
        geometry = {
            "kind": "vector",
            "sensors": 2,
            "sensor_height_m": float(self.options.get("sensor_height_m", 0.3)),
            "sensor_separation_m": float(self.options.get("sensor_separation_m", 0.65)),
            "coordinates": "local tangent plane, x east, y north, metres",
            "device_clock": "logger Timestamp_ms",
        }
        if self._plane is not None:
            geometry["origin_lat_lon"] = [self._plane.lat0_deg, self._plane.lon0_deg]
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument="FG Sensors FGA logger",
            serial=str(self.options.get("serial", "")),
            rate_hz=self.rate_hz,
            channels=tuple(ChannelSpec(name, units) for _, name, units in CHANNELS),
            geometry=geometry,
            position_dims=2,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        out = parse_lines(lines, self._header)
        if "header" in out.info:
            self._header = tuple(out.info["header"].split(","))
        lat, lon = out.values[:, 8], out.values[:, 9]
        if self._plane is None:
            fixed = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon)
                                   & ~((lat == 0) & (lon == 0)))
            if fixed.size:
                self._plane = LocalTangentPlane(float(lat[fixed[0]]), float(lon[fixed[0]]))
        if self._plane is None:
            out.positions = np.full((out.n, 2), np.nan)
        else:
            x, y = self._plane.to_xy(lat, lon)
            out.positions = np.column_stack((x, y))
        return out
