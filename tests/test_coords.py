"""SurveyFrame: local grid <-> CRS <-> WGS84, against pyproj and known points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.coords import (
    CoordinateError,
    SurveyFrame,
    frame_around,
    parse_origin,
    utm_crs_for,
)


def test_utm_zone_of_quang_tri_is_48n():
    # Dong Ha, Quang Tri: 16.82 N, 107.10 E -> UTM zone 48 north.
    assert utm_crs_for(16.82, 107.10) == "EPSG:32648"
    assert utm_crs_for(-33.9, 18.4) == "EPSG:32734"
    with pytest.raises(CoordinateError):
        utm_crs_for(89.0, 0.0)


def test_known_point_round_trip_in_utm48n():
    # The UTM 48N central meridian is 105 E: a point on it at the equator has
    # easting 500000 exactly and northing 0.
    f = SurveyFrame(crs="EPSG:32648", origin_e=500_000.0, origin_n=0.0)
    lat, lon = f.to_wgs84(0.0, 0.0)
    assert lat == pytest.approx(0.0, abs=1e-9)
    assert lon == pytest.approx(105.0, abs=1e-9)
    x, y = f.from_wgs84(0.0, 105.0)
    assert (float(x), float(y)) == pytest.approx((0.0, 0.0), abs=1e-6)


def test_rotated_grid_axes():
    # A baseline taped on azimuth 90 degrees: the grid's y axis points east.
    f = SurveyFrame(crs="EPSG:32648", origin_e=700_000.0, origin_n=1_860_000.0,
                    rotation_deg=90.0)
    e, n = f.local_to_crs(0.0, 10.0)
    assert (float(e), float(n)) == pytest.approx((700_010.0, 1_860_000.0), abs=1e-9)
    e, n = f.local_to_crs(10.0, 0.0)  # grid x is then south
    assert (float(e), float(n)) == pytest.approx((700_000.0, 1_859_990.0), abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(x=st.floats(-500, 500), y=st.floats(-500, 500), rot=st.floats(-360, 360),
       e0=st.floats(200_000, 800_000), n0=st.floats(1_000_000, 2_500_000))
def test_local_crs_wgs84_round_trips(x, y, rot, e0, n0):
    f = SurveyFrame(crs="EPSG:32648", origin_e=e0, origin_n=n0, rotation_deg=rot)
    e, n = f.local_to_crs(x, y)
    bx, by = f.crs_to_local(e, n)
    assert (float(bx), float(by)) == pytest.approx((x, y), abs=1e-6)
    lat, lon = f.to_wgs84(x, y)
    bx, by = f.from_wgs84(lat, lon)
    assert (float(bx), float(by)) == pytest.approx((x, y), abs=1e-4)
    # distances are kept by the rotation (UTM's scale factor is within 0.1 %)
    e1, n1 = f.local_to_crs(x + 3.0, y + 4.0)
    assert math.hypot(float(e1 - e), float(n1 - n)) == pytest.approx(5.0, abs=1e-9)


def test_vn2000_zone_is_accepted():
    # VN-2000 / UTM zone 48N (EPSG:3405) is a projected CRS in metres.
    f = SurveyFrame(crs="EPSG:3405", origin_e=700_000.0, origin_n=1_860_000.0)
    lat, lon = f.to_wgs84(0.0, 0.0)
    assert 16.0 < float(lat) < 17.5 and 106.5 < float(lon) < 107.5


def test_bad_frames_are_named():
    with pytest.raises(CoordinateError, match="not projected"):
        SurveyFrame(crs="EPSG:4326")
    with pytest.raises(CoordinateError, match="unknown CRS"):
        SurveyFrame(crs="EPSG:999999")
    with pytest.raises(CoordinateError, match="needs a CRS"):
        SurveyFrame(origin_e=10.0)
    with pytest.raises(CoordinateError, match="grid_origin_n"):
        SurveyFrame.from_metadata({"crs": "EPSG:32648", "grid_origin_e": "1"})
    with pytest.raises(CoordinateError, match="grid_rotation_deg"):
        SurveyFrame.from_metadata({"crs": "EPSG:32648", "grid_rotation_deg": "north"})
    with pytest.raises(CoordinateError, match="latitude/longitude"):
        SurveyFrame().to_wgs84(0, 0)
    with pytest.raises(CoordinateError):
        parse_origin("12")


def test_frame_from_metadata_and_back():
    md = {"crs": "EPSG:32648", "grid_origin_e": "712345.5", "grid_origin_n": "1862000",
          "grid_rotation_deg": "12.5"}
    f = SurveyFrame.from_metadata(md)
    assert SurveyFrame.from_metadata(f.to_metadata()) == f
    assert not SurveyFrame.from_metadata({}).georeferenced


def test_frame_around_gives_round_origin_and_exact_eastings():
    e = np.array([712_345.67, 712_399.01])
    n = np.array([1_862_001.5, 1_862_050.25])
    f = frame_around("EPSG:32648", e, n)
    assert (f.origin_e, f.origin_n) == (712_340.0, 1_862_000.0)
    x, y = f.crs_to_local(e, n)
    be, bn = f.local_to_crs(x, y)
    np.testing.assert_array_equal(be, e)
    np.testing.assert_array_equal(bn, n)


def test_grid_convergence_is_the_rotation_on_the_central_meridian():
    f = SurveyFrame(crs="EPSG:32648", origin_e=500_000.0, origin_n=1_860_000.0,
                    rotation_deg=10.0)
    assert f.grid_convergence_deg() == pytest.approx(-10.0, abs=1e-3)
    # Quang Tri lies 2 degrees east of zone 48's meridian: true north is then
    # about -sin(lat) * dlon = -0.56 degrees from grid north (clockwise).
    g = SurveyFrame(crs="EPSG:32648", origin_e=713_000.0, origin_n=1_861_000.0)
    assert g.grid_convergence_deg() == pytest.approx(-0.58, abs=0.05)
