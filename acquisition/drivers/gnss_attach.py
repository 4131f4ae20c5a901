"""Give detector samples positions from a GNSS stream, by time.

Two clocks meet here: the GNSS receiver stamps fixes with its own (UTC) time,
while detector blocks carry host wall-clock times. `PositionAttacher` tracks
the offset ``host - gnss`` from when each fix *arrived* at the host: every
arrival gives ``host_rx - gnss >= offset`` (transport latency is never
negative), so the minimum over a sliding window estimates the offset (the
NTP-style minimum filter) and its spread is reported as jitter.

A detector sample at host time ``t`` is then placed at the fix track
interpolated linearly at GNSS time ``t - offset``. Samples in a hole of the
fix track longer than ``max_gap_s``, or further than ``max_extrapolate_s``
beyond its ends, get NaN positions: a position is never invented.

`LocalTangentPlane` turns WGS84 latitude/longitude into metres east/north of
an origin (x east, y north, the project's local grid).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.types import BlockFlags, SampleBlock, StreamDescriptor

WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def geodetic_to_ecef(lat_deg: Any, lon_deg: Any, h_m: Any = 0.0) -> tuple[np.ndarray, ...]:
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(h_m, dtype=np.float64)
    s = np.sin(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * s * s)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * s
    return x, y, z


class LocalTangentPlane:
    """East/north/up metres relative to an origin on the WGS84 ellipsoid."""

    def __init__(self, lat0_deg: float, lon0_deg: float, h0_m: float = 0.0) -> None:
        if not (math.isfinite(lat0_deg) and math.isfinite(lon0_deg)
                and -90.0 <= lat0_deg <= 90.0):
            raise ValueError(f"bad origin {lat0_deg!r}, {lon0_deg!r}")
        self.lat0_deg = float(lat0_deg)
        self.lon0_deg = float(lon0_deg)
        self.h0_m = float(h0_m)
        self._o = np.array(geodetic_to_ecef(lat0_deg, lon0_deg, h0_m))
        la, lo = math.radians(lat0_deg), math.radians(lon0_deg)
        sl, cl, so, co = math.sin(la), math.cos(la), math.sin(lo), math.cos(lo)
        # Rows: east, north, up unit vectors in ECEF.
        self._r = np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])

    def to_enu(self, lat_deg: Any, lon_deg: Any, h_m: Any = None) -> tuple[np.ndarray, ...]:
        h = self.h0_m if h_m is None else h_m
        x, y, z = geodetic_to_ecef(lat_deg, lon_deg, h)
        d = np.stack(np.broadcast_arrays(x - self._o[0], y - self._o[1], z - self._o[2]))
        e, n, u = np.tensordot(self._r, d, axes=1)
        return e, n, u

    def to_xy(self, lat_deg: Any, lon_deg: Any) -> tuple[np.ndarray, np.ndarray]:
        """Metres east (x) and north (y) of the origin, on the origin's height."""
        e, n, _ = self.to_enu(lat_deg, lon_deg)
        return e, n


@dataclasses.dataclass
class OffsetReport:
    offset_ns: int | None
    jitter_ns: int | None
    samples: int
    fixes: int


class PositionAttacher:
    """Interpolate GNSS positions at detector sample times, tracking the clock offset.

    ``plane`` fixes the local grid origin; without one, the first fix is the
    origin. ``offset_window`` is how many arrivals the minimum filter spans.
    ``keep_s`` bounds the fix history kept in memory (GNSS time).
    """

    def __init__(
        self,
        plane: LocalTangentPlane | None = None,
        *,
        max_gap_s: float = 2.0,
        max_extrapolate_s: float = 0.5,
        offset_window: int = 64,
        keep_s: float = 600.0,
    ) -> None:
        self.plane = plane
        self.max_gap_ns = int(max_gap_s * NS_PER_S)
        self.max_extrap_ns = int(max_extrapolate_s * NS_PER_S)
        self.keep_ns = int(keep_s * NS_PER_S)
        self._arrivals: deque[int] = deque(maxlen=max(1, int(offset_window)))
        self._t = np.empty(0, dtype=np.int64)
        self._xy = np.empty((0, 2))
        self.fixes = 0

    # --- input ------------------------------------------------------------------------
    def observe_arrival(self, gnss_ns: int, host_rx_ns: int) -> None:
        """Record that the fix stamped ``gnss_ns`` reached the host at ``host_rx_ns``."""
        self._arrivals.append(int(host_rx_ns) - int(gnss_ns))

    def set_offset(self, offset_ns: int) -> None:
        """Use a known offset (host - gnss), e.g. from a PPS-disciplined host clock."""
        self._arrivals.clear()
        self._arrivals.append(int(offset_ns))

    def add_fixes(self, gnss_ns: Any, x: Any, y: Any, *, host_rx_ns: int | None = None) -> None:
        """Add fixes on the local grid; ``host_rx_ns`` is when the last one arrived."""
        t = np.asarray(gnss_ns, dtype=np.int64).ravel()
        xy = np.column_stack((np.asarray(x, dtype=np.float64).ravel(),
                              np.asarray(y, dtype=np.float64).ravel()))
        ok = np.all(np.isfinite(xy), axis=1)
        t, xy = t[ok], xy[ok]
        if host_rx_ns is not None and ok.size and ok[-1]:
            self.observe_arrival(int(np.asarray(gnss_ns, dtype=np.int64).ravel()[-1]),
                                 host_rx_ns)
        if not t.size:
            return
        self.fixes += int(t.size)
        t_all = np.concatenate((self._t, t))
        xy_all = np.concatenate((self._xy, xy))
        order = np.argsort(t_all, kind="stable")
        t_all, xy_all = t_all[order], xy_all[order]
        # A repeated time stamp (GGA and RMC of one epoch) keeps the latest.
        keep = np.ones(t_all.size, dtype=bool)
        keep[:-1] = t_all[1:] != t_all[:-1]
        t_all, xy_all = t_all[keep], xy_all[keep]
        recent = t_all >= t_all[-1] - self.keep_ns
        self._t, self._xy = t_all[recent], xy_all[recent]

    def add_latlon(self, gnss_ns: Any, lat: Any, lon: Any, *,
                   host_rx_ns: int | None = None) -> None:
        lat = np.asarray(lat, dtype=np.float64).ravel()
        lon = np.asarray(lon, dtype=np.float64).ravel()
        if self.plane is None:
            good = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
            if not good.size:
                if host_rx_ns is not None and np.size(gnss_ns):
                    self.observe_arrival(int(np.asarray(gnss_ns).ravel()[-1]), host_rx_ns)
                return
            self.plane = LocalTangentPlane(float(lat[good[0]]), float(lon[good[0]]))
        x, y = self.plane.to_xy(lat, lon)
        self.add_fixes(gnss_ns, x, y, host_rx_ns=host_rx_ns)

    def add_nmea_block(self, block: SampleBlock, descriptor: StreamDescriptor) -> None:
        """Feed a block of the ``nmea`` driver (channels ``utc_s``, ``lat``, ``lon``, ``fix``).

        Fixes with quality 0 (no fix) are ignored. The block's ``host_wall_ns``
        is taken as the arrival time of its last sentence.
        """
        names = descriptor.channel_names
        d = block.data
        t_s = d[:, names.index("utc_s")]
        lat, lon = d[:, names.index("lat")], d[:, names.index("lon")]
        fix = d[:, names.index("fix")] if "fix" in names else np.ones(block.n)
        good = np.isfinite(t_s) & ~(fix == 0)
        # utc_s is exact to the microsecond: GNSS stamps have at most 3 decimals.
        t_ns = np.round(t_s * 1e6).astype(np.int64) * 1000 if block.n else np.empty(0, np.int64)
        if block.n and np.isfinite(t_s[-1]):
            self.observe_arrival(int(t_ns[-1]), block.host_wall_ns)
        if good.any():
            self.add_latlon(t_ns[good], lat[good], lon[good])

    # --- output -----------------------------------------------------------------------
    @property
    def offset_ns(self) -> int | None:
        return min(self._arrivals) if self._arrivals else None

    @property
    def fix_interval_s(self) -> float | None:
        """Median time between the last fixes (GNSS clock); None before 4 fixes."""
        t = self._t[-21:]
        if t.size < 4:
            return None
        return float(np.median(np.diff(t))) / NS_PER_S

    @property
    def jitter_ns(self) -> int | None:
        return (max(self._arrivals) - min(self._arrivals)) if self._arrivals else None

    def report(self) -> OffsetReport:
        return OffsetReport(self.offset_ns, self.jitter_ns, len(self._arrivals), self.fixes)

    def positions_at_gnss(self, gnss_ns: Any) -> np.ndarray:
        """(n, 2) positions at GNSS times; NaN where the track does not cover them."""
        tq = np.asarray(gnss_ns, dtype=np.int64).ravel()
        out = np.full((tq.size, 2), np.nan)
        t, xy = self._t, self._xy
        if t.size == 0 or tq.size == 0:
            return out
        if t.size == 1:
            near = np.abs(tq - t[0]) <= self.max_extrap_ns
            out[near] = xy[0]
            return out
        i = np.clip(np.searchsorted(t, tq, side="right"), 1, t.size - 1)
        t0, t1 = t[i - 1], t[i]
        w = ((tq - t0).astype(np.float64) / (t1 - t0).astype(np.float64))[:, None]
        pos = xy[i - 1] + w * (xy[i] - xy[i - 1])
        inside = (tq >= t[0]) & (tq <= t[-1]) & (t1 - t0 <= self.max_gap_ns)
        before = (tq < t[0]) & (t[0] - tq <= self.max_extrap_ns) & (t1 - t0 <= self.max_gap_ns)
        after = (tq > t[-1]) & (tq - t[-1] <= self.max_extrap_ns) & (t1 - t0 <= self.max_gap_ns)
        ok = inside | before | after
        out[ok] = pos[ok]
        return out

    def covers(self, host_ns: int) -> bool:
        """True once the fix track reaches host time ``host_ns`` (so interpolating
        there needs no fix that has yet to arrive)."""
        off = self.offset_ns
        return off is not None and self._t.size > 0 and int(self._t[-1]) >= host_ns - off

    def positions_at(self, host_ns: Any) -> np.ndarray:
        """(n, 2) positions at host wall-clock times (NaN until an offset is known)."""
        off = self.offset_ns
        h = np.asarray(host_ns, dtype=np.int64).ravel()
        if off is None:
            return np.full((h.size, 2), np.nan)
        return self.positions_at_gnss(h - off)

    def attach(self, block: SampleBlock) -> SampleBlock:
        """The block with positions from the GNSS track and POSITION_INTERPOLATED set."""
        pos = self.positions_at(block.times_ns())
        flags = block.flags | BlockFlags.POSITION_INTERPOLATED
        return dataclasses.replace(block, positions=pos, flags=flags)
