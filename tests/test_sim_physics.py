"""Physics of the simulator against hand-computed values and limiting cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.geomag import QUANG_TRI, EarthField
from simulator import physics


def test_on_axis_field_is_200_m_over_r_cubed():
    b = physics.dipole_field(np.array([[0.0, 0.0, 2.0]]), np.zeros((1, 3)),
                             np.array([[0.0, 0.0, 1.0]]))
    assert b[0] == pytest.approx([0.0, 0.0, 200.0 * 1.0 / 2.0**3])  # 25 nT


def test_equatorial_field_is_minus_100_m_over_r_cubed():
    b = physics.dipole_field(np.array([[2.0, 0.0, 0.0]]), np.zeros((1, 3)),
                             np.array([[0.0, 0.0, 1.0]]))
    assert b[0] == pytest.approx([0.0, 0.0, -12.5])


def test_oblique_point_by_hand():
    # m = (1,0,0) A m^2, r = (1,1,0): 100 * (3 (m.r^) r^ - m) / r^3 = (17.678, 53.033, 0)
    b = physics.dipole_field(np.array([[1.0, 1.0, 0.0]]), np.zeros((1, 3)),
                             np.array([[1.0, 0.0, 0.0]]))
    assert b[0] == pytest.approx([100 * 0.5 / 2**1.5, 100 * 1.5 / 2**1.5, 0.0], rel=1e-12)


def test_source_position_is_subtracted():
    # Same geometry moved: dipole at (5, -3, -2), observer 2 m above it.
    b = physics.dipole_field(np.array([[5.0, -3.0, 0.0]]), np.array([[5.0, -3.0, -2.0]]),
                             np.array([[0.0, 0.0, 3.0]]))
    assert b[0, 2] == pytest.approx(200 * 3 / 8)


def test_vectorised_matches_reference_and_superposes():
    rng = np.random.default_rng(7)
    obs = rng.normal(size=(37, 3)) * 3 + np.array([0, 0, 1])
    pos = rng.normal(size=(11, 3)) - np.array([0, 0, 1])
    mom = rng.normal(size=(11, 3))
    fast = physics.dipole_field(obs, pos, mom)
    ref = physics.dipole_field_reference(obs, pos, mom)
    np.testing.assert_allclose(fast, ref, rtol=1e-10, atol=1e-12)
    parts = sum(physics.dipole_field(obs, pos[i:i + 1], mom[i:i + 1]) for i in range(11))
    np.testing.assert_allclose(fast, parts, rtol=1e-10, atol=1e-12)


def test_chunking_does_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(200, 3)) + np.array([0, 0, 2])
    pos = rng.normal(size=(50, 3)) - np.array([0, 0, 1])
    mom = rng.normal(size=(50, 3))
    whole = physics.dipole_field(obs, pos, mom)
    monkeypatch.setattr(physics, "_CHUNK_PAIRS", 170)  # forces chunks of 3 points
    np.testing.assert_allclose(physics.dipole_field(obs, pos, mom), whole, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.05, 5), st.floats(0.0, 3), st.floats(-2, 2), st.floats(-2, 2),
       st.floats(-2, 2))
def test_vertical_dipole_gradient_by_hand(depth, h, mx, my, mz):
    # Directly above the source only the vertical moment gives Bz: 200 mz / r^3.
    g = physics.gradient_reading(np.array([0.0]), np.array([0.0]), np.array([h + 0.01]),
                                 np.array([[0, 0, -depth]]), np.array([[mx, my, mz]]), 0.65)
    r1, r2 = h + 0.01 + depth, h + 0.66 + depth
    assert g[0] == pytest.approx(200 * mz / r1**3 - 200 * mz / r2**3, rel=1e-9, abs=1e-9)


def test_total_field_is_projection_on_earth_field():
    f = EarthField(50000, 90.0, 0.0)  # vertical field pointing down
    m = np.array([[0.0, 0.0, -2.0]])  # induced along it
    t = physics.total_field_reading(np.array([0.0]), np.array([0.0]), np.array([1.0]),
                                    np.array([[0, 0, -1.0]]), m, f)
    # Bz on axis = 200 * (-2) / 8 = -50 nT, field direction (0,0,-1): dT = +50
    assert t[0] == pytest.approx(50.0)


def test_induced_moment_at_quang_tri_points_north_and_down():
    m = physics.induced_moment(2.0, QUANG_TRI)
    assert np.linalg.norm(m) == pytest.approx(2.0)
    assert m[1] > 1.8 and m[2] < 0
    assert math.degrees(math.atan2(-m[2], math.hypot(m[0], m[1]))) == pytest.approx(23.2)


def test_axial_gain_tilts_moment_toward_axis_keeping_magnitude():
    axis = physics.axis_vector(90.0, 0.0)  # east
    m = physics.induced_moment(1.0, QUANG_TRI, axis=axis, axial_gain=5.0)
    m0 = physics.induced_moment(1.0, QUANG_TRI)
    assert np.linalg.norm(m) == pytest.approx(1.0)
    assert abs(m[0]) > abs(m0[0]) * 3


def test_axis_vector_conventions():
    np.testing.assert_allclose(physics.axis_vector(0, 0), [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(physics.axis_vector(90, 0), [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(physics.axis_vector(0, 90), [0, 0, -1], atol=1e-15)


def test_line_of_dipoles_shares_moment_and_centre():
    pos, mom = physics.line_of_dipoles(np.array([1.0, 2.0, -3.0]), np.array([0.0, 5.0, -2.0]),
                                       1.8, azimuth_deg=30, plunge_deg=60)
    assert pos.shape == mom.shape == (18, 3)
    np.testing.assert_allclose(mom.sum(axis=0), [0, 5, -2])
    np.testing.assert_allclose(pos.mean(axis=0), [1, 2, -3], atol=1e-12)
    span = np.linalg.norm(pos[-1] - pos[0])
    assert span == pytest.approx(1.8 * 17 / 18)
    p1, m1 = physics.line_of_dipoles(np.zeros(3), np.ones(3), 0.0)
    assert p1.shape == (1, 3) and m1.shape == (1, 3)


def test_shell_profile_puts_more_steel_toward_the_nose():
    m = np.array([0.0, 5.0, -2.0])
    pos, mom = physics.line_of_dipoles(np.array([1.0, 2.0, -3.0]), m, 1.8, azimuth_deg=90,
                                       plunge_deg=30, profile="shell")
    assert pos.shape == mom.shape == (18, 3)
    np.testing.assert_allclose(mom.sum(axis=0), m, atol=1e-12)
    # Positions stay centred on the geometric centre; the moment's centre moves
    # 2-3 % of the length toward the nose (east and down for azimuth 90, plunge 30).
    np.testing.assert_allclose(pos.mean(axis=0), [1, 2, -3], atol=1e-12)
    w = mom[:, 1] / m[1]
    centroid = (w[:, None] * pos).sum(axis=0)
    along = float(np.dot(centroid - [1, 2, -3], physics.axis_vector(90, 30)))
    assert 0.02 * 1.8 < along < 0.035 * 1.8
    assert w[-3] > w[0] and w.min() > 0
    with pytest.raises(ValueError):
        physics.line_of_dipoles(np.zeros(3), m, 1.0, profile="cigar")


def test_elongated_body_converges_to_point_dipole_far_away():
    centre = np.array([0.0, 0.0, -2.0])
    m = physics.induced_moment(20.0, QUANG_TRI)
    pos, mom = physics.line_of_dipoles(centre, m, 2.0, azimuth_deg=10, plunge_deg=60)

    def rel_diff(dist: float) -> float:
        obs = np.array([[dist * 0.6, dist * 0.8, 0.3], [0.0, dist, 0.3], [dist, 0.0, 0.3]])
        obs[:, 2] += dist
        line = physics.dipole_field(obs, pos, mom)
        point = physics.dipole_field(obs, centre[None], m[None])
        return float(np.max(np.linalg.norm(line - point, axis=1)
                            / np.linalg.norm(point, axis=1)))

    near, mid, far = rel_diff(1.0), rel_diff(5.0), rel_diff(40.0)
    assert near > 0.05  # close by, the body is visibly not a point
    assert near > mid > far
    assert far < 1e-3
    # The leading correction is quadrupolar: ~ (L/r)^2, so 8x farther is ~64x smaller.
    assert rel_diff(80.0) < far / 3


def test_low_inclination_anomaly_peaks_off_the_object():
    # docs/field.md: at Quang Tri the reading over a buried object is a negative dip
    # and the strongest reading is not above it.
    m = physics.induced_moment(1.0, QUANG_TRI)
    y = np.linspace(-4, 4, 801)
    g = physics.gradient_reading(np.zeros_like(y), y, np.full_like(y, 0.3),
                                 np.array([[0, 0, -1.0]]), m[None, :])
    assert g[400] < 0
    k = int(np.argmax(np.abs(g)))
    assert g[k] < 0 and abs(y[k]) > 0.2
    assert g.max() > 0  # positive side lobe


def test_reading_dispatch_and_bad_kind():
    src, mom = np.array([[0, 0, -1.0]]), np.array([[0, 0, 1.0]])
    x = y = np.array([0.0])
    z = np.array([0.3])
    assert physics.reading("gradient", x, y, z, src, mom, field=QUANG_TRI)[0] == \
        physics.gradient_reading(x, y, z, src, mom)[0]
    with pytest.raises(ValueError, match="sensor kind"):
        physics.reading("vector", x, y, z, src, mom, field=QUANG_TRI)


def test_tf_gradient_by_hand_above_a_vertical_dipole():
    # Straight above a vertical dipole the field is vertical, 200 m / r^3; with F_hat
    # at inclination I (positive down) its projection is -200 m sin(I) / r^3.
    f = EarthField(45000.0, 30.0, 0.0)
    src, mom = np.array([[0, 0, -1.0]]), np.array([[0, 0, 2.0]])
    x = y = np.array([0.0])
    got = physics.reading("tf_gradient", x, y, np.array([0.3]), src, mom, field=f,
                          separation_m=0.5)[0]
    want = -0.5 * (200.0 * 2.0 / 1.3**3 - 200.0 * 2.0 / 1.8**3)
    assert got == pytest.approx(want, rel=1e-12)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="obs"):
        physics.dipole_field(np.zeros((3, 2)), np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="moments"):
        physics.dipole_field(np.zeros((3, 3)), np.zeros((2, 3)), np.zeros((1, 3)))


def test_soil_dipoles_are_seeded_weak_and_shallow():
    spec = physics.SoilSpec(density_per_m2=20, moment_Am2=2e-4, depth_min_m=0.02,
                            depth_max_m=0.3, margin_m=1.0)
    a = physics.soil_dipoles(0, 0, 10, 20, spec, QUANG_TRI, np.random.default_rng(5))
    b = physics.soil_dipoles(0, 0, 10, 20, spec, QUANG_TRI, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    pos, mom = a
    expected = 20 * 12 * 22
    assert abs(len(pos) - expected) < 5 * math.sqrt(expected)
    assert pos[:, 2].min() >= -0.3 and pos[:, 2].max() <= -0.02
    assert pos[:, 0].min() >= -1 and pos[:, 0].max() <= 11
    assert np.median(np.linalg.norm(mom, axis=1)) == pytest.approx(2e-4, rel=0.1)
    with pytest.raises(ValueError, match="depth"):
        physics.SoilSpec(depth_min_m=0.5, depth_max_m=0.1)
