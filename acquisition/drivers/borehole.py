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
the configured ``kind``, non-numbers, a negative counter, a box clock of
9.2e9 s or more in magnitude (beyond the int64 nanosecond clock).

`parse_lines` is the batch parser, `parse_lines_reference` its per-line twin.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np

from acquisition.drivers.base import LineDriver, ParsedLines
from acquisition.drivers.textnum import (
    floats,
    good_mask,
    hybrid,
    masked,
    scan_numbers,
    xor_checksum,
    xor_checksums,
)
from acquisition.types import ChannelSpec, StreamDescriptor

PREFIX = b"$UXB,"
_NUM = rb"-?[0-9]++(?:\.[0-9]*+)?+"
_NUM_RE = re.compile(_NUM)
_INT_RE = re.compile(rb"-?[0-9]+")
_HEX2_RE = re.compile(rb"[0-9A-Fa-f]{2}")
#: Box clock readings (s) at or beyond this magnitude do not fit int64 ns: rejected.
T_LIMIT_S = 9.2e9
_TO_SPACE = bytes.maketrans(b",*\n", b"   ")
#: Value of each byte as a hex digit, -1 if it is not one.
HEX_VALUE = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    HEX_VALUE[_c] = HEX_VALUE[bytes([_c]).lower()[0]] = _i


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
    step = np.diff(np.concatenate(([prev], depth))) if depth.size and prev is not None else depth
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
    if (np.abs(a[:, 1]) >= T_LIMIT_S).any():
        return parse_lines_reference(lines, nv, m_per_count, depth_offset_m, prev_depth)
    return _finish(a[:, 0], a[:, 1], a[:, 2], a[:, 3:], m_per_count, depth_offset_m,
                   prev_depth, [])


def _fast(lines: list[bytes], nv: int, m_per_count: float, depth_offset_m: float,
          prev_depth: float | None) -> ParsedLines | None:
    """Parse of a batch whose every line is a well-formed UXB record, or None.

    Well-formed: ``$UXB,`` at the start, the only ``$``; ``*HH`` at the end, the
    only ``*``, ``HH`` hex. Checked by position on the joined bytes; then, in a
    copy, ``$UXB`` becomes ``0000`` and ``*HH`` ``,00`` so each line is plain
    numbers for `textnum.scan_numbers`. Lines whose checksum (vectorised XOR)
    is wrong are rejected as ``checksum``, as the reference does.
    """
    n = len(lines)
    if n == 0:
        return _convert([], nv, m_per_count, depth_offset_m, prev_depth)
    padded = b"\n".join([b"", *lines, b""])
    u = np.frombuffer(padded, dtype=np.uint8)
    nl = np.flatnonzero(u == 10)
    if nl.shape[0] != n + 1:
        return None
    ls, le = nl[:-1] + 1, nl[1:]
    if (le - ls).min() < 9 or np.count_nonzero(u == 36) != n or np.count_nonzero(u == 42) != n:
        return None
    head = ls[:, None] + np.arange(5)
    if (u[head] != np.frombuffer(PREFIX, dtype=np.uint8)).any() or (u[le - 3] != 42).any():
        return None
    hi, lo = HEX_VALUE[u[le - 2]], HEX_VALUE[u[le - 1]]
    if (hi < 0).any() or (lo < 0).any():
        return None
    want = hi * 16 + lo
    c = u.copy()
    c[head[:, :4]] = 48
    c[le - 3] = 44
    c[le - 2] = c[le - 1] = 48
    m = 3 + nv + 2
    res = scan_numbers(c.tobytes(), n, 44, m=m)
    if not res.complete or res.first is None or (np.diff(res.first) != m).any():
        return None
    assert res.dot is not None and res.neg is not None and res.value is not None  # complete
    dot = res.dot.reshape(n, m)
    if res.neg.reshape(n, m)[:, 1].any() or dot[:, 1].any() or dot[:, 3].any() \
            or (np.abs(res.value.reshape(n, m)[:, 2]) >= T_LIMIT_S).any():
        return None  # the counter is a plain count, the encoder an integer
    # reduceat over [start0, stop0, start1, ...]: even slots are the payloads.
    idx = np.column_stack((ls + 1, le - 3)).reshape(-1)
    sums = np.bitwise_xor.reduceat(u, idx)[0::2]
    good = sums == want
    a = res.value.reshape(n, m)
    rejects: list[tuple[int, str]] = []
    if not good.all():
        rejects = [(int(i), "checksum") for i in np.flatnonzero(~good)]
        a = a[good]
    return _finish(a[:, 1], a[:, 2], a[:, 3], a[:, 4:4 + nv], m_per_count, depth_offset_m,
                   prev_depth, rejects)


def parse_lines(lines: list[bytes], nv: int = 1, m_per_count: float = 0.001,
                depth_offset_m: float = 0.0, prev_depth: float | None = None) -> ParsedLines:
    """Decode UXB lines with ``nv`` readings (1 gradient, 3 vector) (fast path).

    ``prev_depth`` is the depth of the previous batch's last reading (direction).
    A batch of well-formed records goes through `_fast`; otherwise the per-line
    regex picks the lines for it (`textnum.masked`), and numbers it does not
    take (16+ digits) fall back to the regex check and NumPy's reader.
    """
    out = _fast(lines, nv, m_per_count, depth_offset_m, prev_depth)
    if out is not None:
        return out

    def ref(ls: list[bytes]) -> ParsedLines:
        return parse_lines_reference(ls, nv, m_per_count, depth_offset_m, prev_depth)

    return masked(
        lines, good_mask(_pattern(nv), lines),
        lambda ls: _fast(ls, nv, m_per_count, depth_offset_m, prev_depth), ref,
        lambda ls: hybrid(
            ls, _pattern(nv), lambda x: _convert(x, nv, m_per_count, depth_offset_m, prev_depth),
            ref),
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
        if abs(float(f[1])) >= T_LIMIT_S:
            rejects.append((i, "number"))  # past the int64 ns clock
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
                # Collar on the local grid (x east, y north, m), from the hole plan.
                **{k: float(self.options[k]) for k in ("collar_x", "collar_y")
                   if k in self.options},
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
