"""``borehole``: a borehole probe on a winch, UXB line protocol.

The probe's surface box sends one line per reading, checksummed like NMEA::

    $UXB,<count>,<t_s>,<encoder>,<grad>*HH              (gradiometer probe)
    $UXB,<count>,<t_s>,<encoder>,<bx>,<by>,<bz>*HH      (3-axis probe)

``count`` is the box's sample counter (a jump means lost lines), ``t_s`` its
clock in seconds since power-up, ``encoder`` the winch encoder's signed count,
then the reading(s) in nT (gradient = lower minus upper sensor along the probe
axis; 3-axis components in the probe frame). ``HH`` is the XOR of the bytes
between ``$`` and ``*``. Lines starting with ``#`` carry ``key=value`` banners.

Depth of the lower sensor (metres below the collar, positive down) is
``encoder * m_per_count + depth_offset_m``. ``direction`` is +1 while the
probe goes down, -1 while it comes up, 0 when it is still: the sign of the
depth change since the previous reading (so logs taken on the way up, the
procedure's rule, can be told from the lowering run).

Rejected: no ``$UXB,`` prefix, missing/wrong checksum, wrong field count for
the configured ``kind``, non-numbers, a negative counter.

`parse_lines` is the batch parser, `parse_lines_reference` its per-line twin.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np

from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import floats, hybrid, xor_checksum, xor_checksums
from acquisition.types import ChannelSpec, StreamDescriptor

PREFIX = b"$UXB,"
_NUM = rb"-?[0-9]++(?:\.[0-9]*+)?+"
_NUM_RE = re.compile(_NUM)
_INT_RE = re.compile(rb"-?[0-9]+")
_HEX2_RE = re.compile(rb"[0-9A-Fa-f]{2}")
_TO_SPACE = bytes.maketrans(b",*\n", b"   ")


def n_readings(kind: str) -> int:
    if kind not in ("gradient", "vector"):
        raise ValueError(f"kind must be 'gradient' or 'vector', got {kind!r}")
    return 1 if kind == "gradient" else 3


@lru_cache(maxsize=4)
def _pattern(nv: int) -> re.Pattern[bytes]:
    return re.compile(rb"^\$UXB,[0-9]++," + _NUM + rb",-?[0-9]++" + (rb"," + _NUM) * nv
                      + rb"\*[0-9A-Fa-f]{2}$", re.M)


def _finish(cnt: np.ndarray, t_s: np.ndarray, enc: np.ndarray, vals: np.ndarray,
            m_per_count: float, depth_offset_m: float, prev_depth: float | None,
            rejects: list[tuple[int, str]]) -> ParsedLines:
    depth = enc * m_per_count + depth_offset_m
    prev = depth[0] if prev_depth is None and depth.size else prev_depth
    step = np.diff(np.concatenate(([prev], depth))) if depth.size else depth
    direction = np.sign(step)
    values = np.column_stack((vals, depth, direction))
    return ParsedLines(values=values, device_ns=np.round(t_s * 1e9).astype(np.int64),
                       counter=cnt.astype(np.int64), rejects=rejects)


def _convert(lines: list[bytes], nv: int, m_per_count: float, depth_offset_m: float,
             prev_depth: float | None) -> ParsedLines:
    n = len(lines)
    m = 3 + nv + 1
    if n == 0:
        return _finish(np.empty(0), np.empty(0), np.empty(0), np.empty((0, nv)),
                       m_per_count, depth_offset_m, prev_depth, [])
    # Checksums first, vectorised: bytes between '$' and '*' of each line.
    lens = np.fromiter((len(ln) for ln in lines), dtype=np.int64, count=n)
    sums = xor_checksums(lines, np.ones(n, dtype=np.int64), lens - 3)
    want = np.array([int(ln[-2:], 16) for ln in lines], dtype=np.uint8)
    bad = sums != want
    if bad.any():
        good_idx = np.flatnonzero(~bad)
        sub = _convert([lines[i] for i in good_idx], nv, m_per_count, depth_offset_m,
                       prev_depth)
        sub.rejects = sorted([(int(i), "checksum") for i in np.flatnonzero(bad)])
        return sub
    # Drop the "$UXB," prefix and the "*HH" checksum of each line.
    text = b"\n".join([ln[5:-3] for ln in lines]).translate(_TO_SPACE)
    flat = floats(text, n * (m - 1))
    if flat is None:
        return parse_lines_reference(lines, nv, m_per_count, depth_offset_m, prev_depth)
    a = flat.reshape(n, m - 1)
    return _finish(a[:, 0], a[:, 1], a[:, 2], a[:, 3:], m_per_count, depth_offset_m,
                   prev_depth, [])


def parse_lines(lines: list[bytes], nv: int = 1, m_per_count: float = 0.001,
                depth_offset_m: float = 0.0, prev_depth: float | None = None) -> ParsedLines:
    """Decode UXB lines with ``nv`` readings (1 gradient, 3 vector) (fast path).

    ``prev_depth`` is the depth of the previous batch's last reading (direction).
    """
    return hybrid(
        lines, _pattern(nv),
        lambda ls: _convert(ls, nv, m_per_count, depth_offset_m, prev_depth),
        lambda ls: parse_lines_reference(ls, nv, m_per_count, depth_offset_m, prev_depth),
    )


def parse_lines_reference(lines: list[bytes], nv: int = 1, m_per_count: float = 0.001,
                          depth_offset_m: float = 0.0,
                          prev_depth: float | None = None) -> ParsedLines:
    """Per-line reference decoder; same result as `parse_lines`."""
    cnt: list[float] = []
    ts: list[float] = []
    enc: list[float] = []
    vals: list[list[float]] = []
    rejects: list[tuple[int, str]] = []
    info: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.startswith(b"#"):
            for word in line[1:].decode("ascii", "replace").split():
                if "=" in word:
                    k, v = word.split("=", 1)
                    info[k] = v
            continue
        if not line.startswith(PREFIX):
            rejects.append((i, "no_prefix"))
            continue
        star = line.find(b"*")
        if star < 0 or len(line) - star != 3:
            rejects.append((i, "no_checksum"))
            continue
        hh = line[star + 1:]
        if _HEX2_RE.fullmatch(hh) is None or int(hh, 16) != xor_checksum(line[1:star]):
            rejects.append((i, "checksum"))
            continue
        f = line[5:star].split(b",")
        if len(f) != 3 + nv:
            rejects.append((i, "field_count"))
            continue
        if (not f[0].isdigit() or _NUM_RE.fullmatch(f[1]) is None
                or _INT_RE.fullmatch(f[2]) is None
                or any(_NUM_RE.fullmatch(x) is None for x in f[3:])):
            rejects.append((i, "number"))
            continue
        cnt.append(float(f[0]))
        ts.append(float(f[1]))
        enc.append(float(f[2]))
        vals.append([float(x) for x in f[3:]])
    out = _finish(np.array(cnt), np.array(ts), np.array(enc),
                  np.array(vals, dtype=np.float64).reshape(len(vals), nv),
                  m_per_count, depth_offset_m, prev_depth, rejects)
    out.info = info
    return out


class BoreholeDriver(LineDriver):
    """Borehole probe (gradiometer or 3-axis) with winch-encoder depth.

    Options: ``kind`` (``gradient``/``vector``), ``m_per_count`` (encoder metres
    per count, 0.001), ``depth_offset_m`` (depth of the lower sensor at encoder 0),
    ``sensor_separation_m`` (0.5), ``probe`` (name), ``hole`` (hole id),
    ``rate_hz`` (10), ``serial``.
    """

    name = "borehole"
    baudrate = 115200
    max_line = 256

    def __init__(self, port: str, **kwargs: Any) -> None:
        super().__init__(port, **kwargs)
        self.kind = str(self.options.get("kind", "gradient"))
        self.nv = n_readings(self.kind)
        self.m_per_count = float(self.options.get("m_per_count", 0.001))
        self.depth_offset_m = float(self.options.get("depth_offset_m", 0.0))
        if not (math.isfinite(self.m_per_count) and self.m_per_count != 0):
            raise ValueError("m_per_count must be finite and non-zero")
        self._prev_depth: float | None = None

    def default_rate_hz(self) -> float:
        return 10.0

    def describe(self) -> StreamDescriptor:
        reading = (("grad", "nT"),) if self.nv == 1 else (("bx", "nT"), ("by", "nT"),
                                                         ("bz", "nT"))
        chans = [ChannelSpec(n, u) for n, u in reading]
        chans.append(ChannelSpec("depth", "m", calibration={
            "m_per_count": self.m_per_count, "depth_offset_m": self.depth_offset_m}))
        chans.append(ChannelSpec("direction", "1", calibration={
            "meaning": "+1 down, -1 up, 0 still"}))
        return StreamDescriptor(
            stream_id=self.stream_id,
            instrument=str(self.options.get("probe", self.info.get("model",
                                                                   "UXB borehole probe"))),
            serial=str(self.options.get("serial", self.info.get("serial", ""))),
            rate_hz=self.rate_hz,
            channels=tuple(chans),
            geometry={
                "kind": "borehole_gradient" if self.nv == 1 else "borehole_vector",
                "probe": "gradiometer" if self.nv == 1 else "3-axis fluxgate",
                "sensor_separation_m": float(self.options.get("sensor_separation_m", 0.5)),
                "depth_reference": "lower sensor, metres below collar, positive down",
                "hole": str(self.options.get("hole", "")),
            },
            position_dims=0,
            driver=self.name,
        )

    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        out = parse_lines(lines, self.nv, self.m_per_count, self.depth_offset_m,
                          self._prev_depth)
        if out.info:
            self.info.update(out.info)
        if out.n:
            self._prev_depth = float(out.values[-1, self.nv])
        return out
