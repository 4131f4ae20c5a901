"""The shared forward model against the simulator's independent physics, and SensorGeometry.

`acquisition.forward` (what processing inverts) and `simulator.physics` (what
the simulated world is made of) are two implementations written apart; on
random geometries, for every sensor kind, they must give the same readings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.forward import (
    DEFAULT_SENSOR_HEIGHT_M,
    DEFAULT_SEPARATION_M,
    KINDS,
    LINE_POINTS,
    SensorGeometry,
    dipole_basis,
    dipole_rows,
    ends_from,
    forward,
    gradient_reading,
    line_design,
)
from acquisition.geomag import QUANG_TRI, EarthField
from simulator import physics

coord = st.floats(-10, 10, allow_nan=False)
moment = st.floats(-500, 500, allow_nan=False)
fields = st.builds(EarthField, st.floats(25000, 65000), st.floats(-90, 90),
                   st.floats(-180, 180))


def _close(ours: np.ndarray, theirs: np.ndarray, rel: float = 1e-9) -> None:
    """Equal to ``rel`` of the largest reading (a difference of two sensors may cross zero)."""
    scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    np.testing.assert_allclose(ours, theirs, rtol=rel, atol=rel * scale + 1e-300)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), x0=coord, y0=coord, depth=st.floats(0.05, 8.0),
       m=st.tuples(moment, moment, moment), h=st.floats(0.0, 3.0), s=st.floats(0.05, 2.0),
       field=fields, seed=st.integers(0, 2**16))
def test_core_agrees_with_simulator_physics(kind, x0, y0, depth, m, h, s, field, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-12, 12, (2, 50))
    geom = SensorGeometry.from_geometry(
        {"kind": kind, "sensor_height_m": h, "sensor_separation_m": s}, field)
    ours = forward(x, y, x0, y0, depth, m, geom)
    theirs = physics.reading(kind, x, y, np.full_like(x, h), np.array([[x0, y0, -depth]]),
                             np.array([m]), field=field, separation_m=s)
    _close(ours, theirs)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), x0=coord, y0=coord, length=st.floats(0.1, 2.0),
       az=st.floats(0, 360), plunge=st.floats(-80, 80), m=st.tuples(moment, moment, moment),
       s=st.floats(0.05, 2.0), field=fields, seed=st.integers(0, 2**16))
def test_line_source_agrees_with_simulator_line_of_dipoles(kind, x0, y0, length, az, plunge, m,
                                                          s, field, seed):
    depth = 0.5 * length + 0.1  # both ends stay below ground (the core folds depths)
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-6, 6, (2, 40))
    geom = SensorGeometry.from_geometry({"kind": kind, "sensor_separation_m": s}, field)
    ours = line_design(x, y, ends_from((x0, y0, depth), length, az, plunge), geom) @ np.array(m)
    pos, mom = physics.line_of_dipoles(np.array([x0, y0, -depth]), np.array(m), length, az,
                                       plunge, k=LINE_POINTS)
    theirs = physics.reading(kind, x, y, np.full_like(x, geom.sensor_height_m), pos, mom,
                             field=field, separation_m=s)
    _close(ours, theirs)


@settings(max_examples=60, deadline=None)
@given(src=st.tuples(coord, coord, st.floats(-12, -0.5)), m=st.tuples(moment, moment, moment),
       s=st.floats(0.1, 1.5), seed=st.integers(0, 2**16))
def test_probe_gradient_agrees_with_simulator_physics(src, m, s, seed):
    rng = np.random.default_rng(seed)
    n = 60
    x, y = rng.uniform(-3, 3, (2, n))
    depth = rng.uniform(0.0, 12.0, n)
    ours = gradient_reading(x, y, depth, s, np.array(src), np.array(m))
    theirs = physics.gradient_reading(x, y, -depth, np.array([src]), np.array([m]), s)
    _close(ours, theirs)


def test_dipole_rows_are_rows_of_the_basis():
    rng = np.random.default_rng(4)
    pts = rng.uniform(-3, 3, (25, 3))
    src = np.array([0.2, -0.4, -1.5])
    basis = dipole_basis(pts, src)
    comp = rng.integers(0, 3, 25)
    np.testing.assert_array_equal(dipole_rows(pts - src, comp), basis[np.arange(25), comp])
    np.testing.assert_array_equal(dipole_rows(pts - src, 2), basis[:, 2, :])


def test_tf_gradient_is_lower_minus_upper_total_field():
    x = np.linspace(-3, 3, 41)
    y = np.full_like(x, 0.4)
    m = (3.0, 40.0, -15.0)
    tfg = SensorGeometry.from_geometry({"kind": "tf_gradient", "sensor_height_m": 0.3,
                                        "sensor_separation_m": 0.65}, QUANG_TRI)
    lower = SensorGeometry.from_geometry({"kind": "total", "sensor_height_m": 0.3}, QUANG_TRI)
    upper = SensorGeometry.from_geometry({"kind": "total", "sensor_height_m": 0.95}, QUANG_TRI)
    np.testing.assert_allclose(forward(x, y, 0.0, 0.0, 1.0, m, tfg),
                               forward(x, y, 0.0, 0.0, 1.0, m, lower)
                               - forward(x, y, 0.0, 0.0, 1.0, m, upper), rtol=1e-12, atol=1e-12)
    # It is not the vertical-component gradiometer's reading at low inclination.
    grad = SensorGeometry.from_geometry({"kind": "gradient"}, QUANG_TRI)
    a, b = forward(x, y, 0.0, 0.0, 1.0, m, tfg), forward(x, y, 0.0, 0.0, 1.0, m, grad)
    assert np.max(np.abs(a - b)) > 0.3 * np.max(np.abs(b))


def test_geometry_defaults_and_round_trip():
    g = SensorGeometry.from_geometry({}, QUANG_TRI)
    assert (g.kind, g.sensor_height_m, g.sensor_separation_m) == (
        "gradient", DEFAULT_SENSOR_HEIGHT_M, DEFAULT_SEPARATION_M)
    assert g.field_unit == pytest.approx(tuple(QUANG_TRI.unit_vector()))
    for kind in KINDS:
        d = {"kind": kind, "sensor_height_m": 0.42, "sensor_separation_m": 0.8}
        g = SensorGeometry.from_geometry(d, QUANG_TRI)
        back = g.to_dict()
        assert back["kind"] == kind and back["sensor_height_m"] == 0.42
        assert back.get("sensor_separation_m") == (None if kind == "total" else 0.8)
        assert SensorGeometry.from_geometry(back, QUANG_TRI) == (
            g if kind != "total" else SensorGeometry.from_geometry(
                {"kind": "total", "sensor_height_m": 0.42}, QUANG_TRI))
    with pytest.raises(AttributeError):
        g.kind = "total"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(("geometry", "needle"), [
    ({"kind": "vector"}, "sensor kind must be one of gradient, total, tf_gradient, got 'vector'"),
    ({"sensor_height_m": -0.1}, "sensor_height_m must be a finite number >= 0, got -0.1"),
    ({"sensor_height_m": float("nan")}, "geometry sensor_height_m: must be finite, got nan"),
    ({"sensor_height_m": "high"}, "geometry sensor_height_m: 'high' is not a number"),
    ({"kind": "gradient", "sensor_separation_m": 0}, "sensor_separation_m must be a finite "
     "number > 0 for kind 'gradient', got 0.0"),
    ({"kind": "tf_gradient", "sensor_separation_m": -1}, "for kind 'tf_gradient', got -1.0"),
    ({"kind": "tf_gradient", "sensor_separation_m": float("inf")},
     "geometry sensor_separation_m: must be finite, got inf"),
])
def test_bad_geometry_names_what_is_wrong(geometry, needle):
    with pytest.raises(ValueError) as info:
        SensorGeometry.from_geometry(geometry, QUANG_TRI)
    assert needle in str(info.value)


def test_total_field_needs_no_separation():
    g = SensorGeometry.from_geometry({"kind": "total", "sensor_separation_m": 0}, QUANG_TRI)
    assert g.kind == "total" and not g.is_gradient


def test_field_direction_must_be_a_unit_vector():
    with pytest.raises(ValueError, match="unit vector"):
        SensorGeometry("total", 0.3, 0.65, (0.0, 2.0, 0.0))


values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                   st.text(max_size=8), st.booleans(), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["kind", "sensor_height_m", "sensor_separation_m",
                                        "other"]), values, max_size=4),
       st.sampled_from(["gradient", "total", "tf_gradient", None]))
def test_fuzz_geometry_dicts_give_a_valid_geometry_or_a_value_error(d, kind):
    """A descriptor's geometry comes off the wire or out of a file: anything may be in it."""
    if kind is not None:
        d = {**d, "kind": kind}
    try:
        g = SensorGeometry.from_geometry(d, QUANG_TRI)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert g.kind in KINDS
    assert math.isfinite(g.sensor_height_m) and g.sensor_height_m >= 0
    if g.is_gradient:
        assert math.isfinite(g.sensor_separation_m) and g.sensor_separation_m > 0
