"""Line sources (elongated bodies) in the lane fit, checked against the simulator.

The data come from `simulator.physics` (its own dipole code, bodies as a
munition-case profile of 18 dipoles), not from the DSP's forward model, so a
test passes only if the line fit recovers a body the DSP did not make.
"""

from __future__ import annotations

import math

import numpy as np
from dsp_synth import lanes_xy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from acquisition.dsp.fit import fit_sources
from acquisition.events import Target
from acquisition.forward import (
    SensorGeometry,
    describe,
    design_matrix,
    ends_from,
    line_design,
    line_points,
)
from acquisition.geomag import QUANG_TRI
from acquisition.messages import decode, encode, target_from_message, target_message
from simulator import physics

GRAD = SensorGeometry.from_geometry({"kind": "gradient"}, QUANG_TRI)


def _body(x, y, cx, cy, depth, m_abs, length, az, plunge, profile="shell"):
    axis = physics.axis_vector(az, plunge)
    m = physics.induced_moment(m_abs, QUANG_TRI, axis=axis, axial_gain=2.0)
    pos, mom = physics.line_of_dipoles(np.array([cx, cy, -depth]), m, length, az, plunge,
                                       profile=profile)
    z = np.full(x.size, 0.3)
    return physics.reading("gradient", x, y, z, pos, mom, field=QUANG_TRI, separation_m=0.65)


def test_line_design_is_the_mean_of_its_points():
    x, y, _ = lanes_xy(4, 6.0)
    ends = np.array([1.0, 2.0, 0.5, 2.2, 3.1, 1.1])
    pts = line_points(ends, 9)
    ref = sum(design_matrix(x, y, *p, GRAD) for p in pts) / 9
    np.testing.assert_allclose(line_design(x, y, ends, GRAD), ref, rtol=1e-12, atol=1e-12)
    # A line shrunk to a point is the point dipole.
    pt = np.array([1.5, 2.5, 0.8, 1.5, 2.5, 0.8])
    np.testing.assert_allclose(line_design(x, y, pt, GRAD),
                               design_matrix(x, y, 1.5, 2.5, 0.8, GRAD), rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(cx=st.floats(-50, 50), cy=st.floats(-50, 50), d=st.floats(1.0, 8.0),
       length=st.floats(0.05, 3.0), az=st.floats(0, 179.9), pl=st.floats(-60, 60))
def test_ends_and_describe_round_trip(cx, cy, d, length, az, pl):
    # Both ends below ground (a line poking out is folded back: see fold_ends).
    assume(d - 0.5 * length * abs(math.sin(math.radians(pl))) > 1e-6)
    info = describe(ends_from((cx, cy, d), length, az, pl))
    assert math.isclose(info["x"], cx, abs_tol=1e-9)
    assert math.isclose(info["y"], cy, abs_tol=1e-9)
    assert math.isclose(info["depth"], d, abs_tol=1e-9)
    assert math.isclose(info["length_m"], length, rel_tol=1e-9)
    assert min(abs(info["azimuth_deg"] - az), 180 - abs(info["azimuth_deg"] - az)) < 1e-6
    assert math.isclose(abs(info["plunge_deg"]), abs(pl), abs_tol=1e-6)


def test_shallow_bomb_is_one_line_at_the_right_depth():
    """A 1.8 m bomb at 0.45 m: the point fit sits too deep; the line does not."""
    x, y, _ = lanes_xy(10, 14.0)
    rng = np.random.default_rng(5)
    v = _body(x, y, 4.7, 7.2, 0.45, 20.0, 1.8, 50.0, 8.0) + rng.normal(0, 0.5, x.size)
    point = fit_sources(x, y, v, GRAD, 0.5, thr=2.5, elongate=False)
    line = fit_sources(x, y, v, GRAD, 0.5, thr=2.5)
    assert len(line) == 1
    f = line[0]
    assert f.method == "line_fit" and f.ends is not None
    assert math.hypot(f.x - 4.7, f.y - 7.2) < 0.12
    assert abs(f.depth - 0.45) < 0.07
    assert abs(f.extra["length_m"] - 1.8) < 0.35
    assert min(abs(f.extra["azimuth_deg"] - 50.0), 180 - abs(f.extra["azimuth_deg"] - 50.0)) < 10
    strongest = max(point, key=lambda r: r.moment_abs)
    assert strongest.depth - 0.45 > abs(f.depth - 0.45) + 0.1  # the point fit is worse
    # The line's dipoles stand for it when a neighbouring window subtracts it.
    ps = f.point_sources()
    assert ps.shape == (9, 6)
    np.testing.assert_allclose(ps[:, 3:].sum(axis=0), f.moment, rtol=1e-12)


def test_small_object_stays_a_point():
    x, y, _ = lanes_xy(8, 12.0)
    m = physics.induced_moment(0.05, QUANG_TRI)
    pos, mom = physics.line_of_dipoles(np.array([3.6, 6.1, -0.3]), m, 0.0)
    v = physics.reading("gradient", x, y, np.full(x.size, 0.3), pos, mom, field=QUANG_TRI,
                        separation_m=0.65)
    v = v + np.random.default_rng(2).normal(0, 0.5, x.size)
    fits = fit_sources(x, y, v, GRAD, 0.5, thr=2.5)
    assert [f.method for f in fits] == ["dipole_fit"]
    assert Target("s", 0, fits[0].x, fits[0].y, fits[0].depth, fits[0].moment,
                  1.0).length_m is None


def test_scrap_beside_a_projectile_is_found_and_kept():
    """A bomblet 0.9 m from a projectile at 1.2 m, its peak ~3x the threshold."""
    x, y, _ = lanes_xy(10, 14.0)
    rng = np.random.default_rng(8)
    v = _body(x, y, 4.5, 7.0, 1.2, 1.0, 0.6, 20.0, 25.0)
    m = physics.induced_moment(0.03, QUANG_TRI)
    pos, mom = physics.line_of_dipoles(np.array([5.35, 7.3, -0.25]), m, 0.0)
    v = v + physics.reading("gradient", x, y, np.full(x.size, 0.3), pos, mom, field=QUANG_TRI,
                            separation_m=0.65)
    v = v + rng.normal(0, 0.5, x.size)
    fits = fit_sources(x, y, v, GRAD, 0.5, thr=2.5)
    assert len(fits) == 2
    big = min(fits, key=lambda f: math.hypot(f.x - 4.5, f.y - 7.0))
    small = min(fits, key=lambda f: math.hypot(f.x - 5.35, f.y - 7.3))
    assert big is not small
    assert math.hypot(small.x - 5.35, small.y - 7.3) < 0.2
    assert small.depth < 0.5 and small.moment_abs < 0.1
    assert abs(big.depth - 1.2) < 0.2


def test_target_line_fields_travel_over_the_wire():
    t = Target("grad-1", 7, 1.0, 2.0, 0.45, (1.0, 2.0, -3.0), 0.9, method="line_fit",
               length_m=1.75, azimuth_deg=46.0, plunge_deg=-3.0)
    back = target_from_message(decode(encode(target_message(t, "s1", 5))))
    assert (back.length_m, back.azimuth_deg, back.plunge_deg) == (1.75, 46.0, -3.0)
    assert back.method == "line_fit"
    # An older producer's target (no line fields) still decodes, as None.
    d = t.to_dict()
    for k in ("length_m", "azimuth_deg", "plunge_deg"):
        d.pop(k)
    assert Target.from_dict(d).length_m is None
