"""GNSS position attachment: local tangent plane distances, interpolation, clock offset."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.drivers.gnss_attach import (
    WGS84_A,
    WGS84_E2,
    LocalTangentPlane,
    PositionAttacher,
)
from acquisition.drivers.nmea import NmeaDriver
from acquisition.types import BlockFlags, SampleBlock
from simulator.emulators import protocols as em

QT = (16.75, 107.1)  # Quang Tri


def test_tangent_plane_known_distances():
    lat0, lon0 = QT
    plane = LocalTangentPlane(lat0, lon0)
    phi = math.radians(lat0)
    s2 = math.sin(phi) ** 2
    m = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5  # meridian radius
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)  # prime vertical radius
    dlat = math.degrees(100.0 / m)  # 100 m north
    dlon = math.degrees(100.0 / (n * math.cos(phi)))  # 100 m east
    x, y = plane.to_xy([lat0 + dlat, lat0], [lon0, lon0 + dlon])
    assert x[0] == pytest.approx(0.0, abs=1e-6) and y[0] == pytest.approx(100.0, abs=1e-4)
    assert x[1] == pytest.approx(100.0, abs=1e-4) and y[1] == pytest.approx(0.0, abs=2e-3)
    # One arc-minute of latitude, from the standard series for the length of a
    # degree of latitude on WGS84 (111132.954 - 559.822 cos 2phi + 1.175 cos 4phi).
    deg_m = 111132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    _, y1 = plane.to_xy(lat0 + 1 / 60, lon0)
    assert float(y1) == pytest.approx(deg_m / 60, abs=0.05)
    assert float(y1) == pytest.approx(1844.44, abs=0.01)
    assert plane.to_xy(lat0, lon0) == (pytest.approx(0.0, abs=1e-9),
                                      pytest.approx(0.0, abs=1e-9))
    with pytest.raises(ValueError):
        LocalTangentPlane(91.0, 0.0)


@settings(max_examples=100, deadline=None)
@given(st.floats(-1000, 1000), st.floats(-1000, 1000))
def test_tangent_plane_distance_matches_ecef_chord(dn, de):
    plane = LocalTangentPlane(*QT)
    lat = QT[0] + dn / 110_700.0
    lon = QT[1] + de / 106_600.0
    e, n, u = plane.to_enu(lat, lon, 0.0)
    from acquisition.drivers.gnss_attach import geodetic_to_ecef
    p0 = np.array(geodetic_to_ecef(*QT, 0.0))
    p1 = np.array(geodetic_to_ecef(lat, lon, 0.0))
    assert math.sqrt(e * e + n * n + u * u) == pytest.approx(np.linalg.norm(p1 - p0), abs=1e-6)


def test_attacher_interpolates_with_offset_and_flags():
    att = PositionAttacher(max_gap_s=2.0, max_extrapolate_s=0.5)
    offset = 3_000_000_000_000  # host clock ahead of GNSS by 3000 s
    gnss_t = np.arange(0, 10) * 1_000_000_000
    x = np.arange(10) * 1.0  # walking east at 1 m/s
    for k, t in enumerate(gnss_t):
        # Arrivals come 20-80 ms late; the minimum tracks the offset.
        att.add_fixes([t], [x[k]], [2.0], host_rx_ns=int(t + offset + 20_000_000 + 7_000_000 * k))
    assert att.offset_ns == offset + 20_000_000
    assert att.report().jitter_ns == 63_000_000 and att.report().fixes == 10
    blk = SampleBlock("grad", 0, 0, offset + 20_000_000 + 2_500_000_000, 10.0,
                      np.zeros((5, 1)))
    out = att.attach(blk)
    assert out.flags & BlockFlags.POSITION_INTERPOLATED
    # Sample times 2.5, 2.6, ... s of GNSS time (after the 20 ms offset error).
    assert out.positions[:, 0] == pytest.approx([2.5, 2.6, 2.7, 2.8, 2.9])
    assert np.all(out.positions[:, 1] == 2.0)
    # Beyond the track's end + max_extrapolate: NaN, never invented.
    far = att.positions_at_gnss([9_400_000_000, 9_600_000_000, -600_000_000])
    assert far[0, 0] == pytest.approx(9.4) and np.isnan(far[1:]).all()


def test_attacher_gap_gives_nan():
    att = PositionAttacher(max_gap_s=2.0)
    att.set_offset(0)
    att.add_fixes([0, 1_000_000_000, 5_000_000_000, 6_000_000_000], [0, 1, 5, 6], [0, 0, 0, 0])
    p = att.positions_at([500_000_000, 3_000_000_000, 5_500_000_000])
    assert p[0, 0] == 0.5 and np.isnan(p[1]).all() and p[2, 0] == 5.5
    assert PositionAttacher().positions_at([1]).tolist() == [[math.nan, math.nan]] or \
        np.isnan(PositionAttacher().positions_at([1])).all()


def test_nmea_driver_blocks_feed_attacher():
    # Decode emulated GGA sentences with the driver's parser, build a block as
    # the driver would, and feed the attacher.
    drv = NmeaDriver("unused", origin=list(QT), date="2026-03-14")
    lines = [em.nmea_gga(3600 + k, QT[0] + k * 1e-5, QT[1], fix=4).strip() for k in range(5)]
    parsed = drv.parse_lines(lines)
    assert parsed.rejects == [] and parsed.n == 5
    assert parsed.positions[0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert np.diff(parsed.positions[:, 1]) == pytest.approx([1.1066] * 4, abs=1e-3)
    desc = drv.describe()
    host = int(parsed.device_ns[-1]) + 1_000_000
    blk = SampleBlock("gnss", 0, 0, 0, 1.0, parsed.values, host_wall_ns=host)
    att = PositionAttacher(LocalTangentPlane(*QT))
    att.add_nmea_block(blk, desc)
    assert att.offset_ns == 1_000_000
    mid = att.positions_at_gnss([int(parsed.device_ns[0]) + 500_000_000])
    assert mid[0, 1] == pytest.approx(parsed.positions[:2, 1].mean(), abs=1e-6)
