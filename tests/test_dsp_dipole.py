"""Forward model: vectorised design matrix against the plain loop twin and physics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.forward import (
    SensorGeometry,
    design_batch,
    design_matrix,
    forward,
    induced_moment,
    reference_field,
    reference_reading,
)
from acquisition.geomag import QUANG_TRI, EarthField

finite = st.floats(-5, 5, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["gradient", "total", "tf_gradient"]), x0=finite, y0=finite,
       depth=st.floats(0.0, 6.0), m=st.tuples(finite, finite, finite),
       inc=st.floats(-90, 90), dec=st.floats(-180, 180), seed=st.integers(0, 2**16))
def test_vectorised_matches_reference(kind, x0, y0, depth, m, inc, dec, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-8, 8, 40)
    y = rng.uniform(-8, 8, 40)
    geom = SensorGeometry.from_geometry({"kind": kind, "sensor_height_m": 0.25,
                                         "sensor_separation_m": 0.5},
                                        EarthField(45000, inc, dec))
    fast = forward(x, y, x0, y0, depth, m, geom)
    slow = reference_reading(x, y, x0, y0, depth, m, geom)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)


def test_textbook_values():
    # Vertical dipole of 1 A m^2 straight below at 1 m: Bz = 100 * 2 / 1 = 200 nT (up).
    assert reference_field((0, 0, 0), (0, 0, -1), (0, 0, 1))[2] == pytest.approx(200.0)
    # Beside it, on the equator of the dipole: Bz = -100 nT.
    assert reference_field((1, 0, -1), (0, 0, -1), (0, 0, 1))[2] == pytest.approx(-100.0)


def test_gradient_is_lower_minus_upper():
    geom = SensorGeometry("gradient", 0.3, 0.65)
    g = forward(np.array([0.0]), np.array([0.0]), 0, 0, 1.0, (0, 0, 1), geom)[0]
    lo = 200.0 / 1.3**3
    hi = 200.0 / 1.95**3
    assert g == pytest.approx(lo - hi)


def test_low_inclination_main_lobe_negative_and_offset():
    # Quang Tri: induced moment mostly north, slightly down -> the strongest
    # reading of a gradiometer is negative and not over the object.
    geom = SensorGeometry.from_geometry({"kind": "gradient"}, QUANG_TRI)
    y = np.linspace(-5, 5, 1001)
    v = forward(np.zeros_like(y), y, 0, 0, 1.5, induced_moment(2.0, QUANG_TRI), geom)
    k = int(np.argmax(np.abs(v)))
    assert v[k] < 0
    assert 0.3 < abs(y[k]) < 1.5


def test_design_matrix_linear_in_moment():
    geom = SensorGeometry("total", 0.3, 0.65, tuple(QUANG_TRI.unit_vector()))
    x = np.linspace(-3, 3, 7)
    G = design_matrix(x, x * 0.5, 0.2, -0.1, 1.0, geom)
    m = np.array([0.3, -1.0, 0.5])
    np.testing.assert_allclose(G @ m, forward(x, x * 0.5, 0.2, -0.1, 1.0, m, geom))


def test_bad_geometry_rejected():
    with pytest.raises(ValueError):
        SensorGeometry("vector")
    with pytest.raises(ValueError):
        SensorGeometry("gradient", 0.3, 0.0)


@pytest.mark.parametrize("kind", ["gradient", "total", "tf_gradient"])
def test_design_batch_matches_single(kind):
    geom = SensorGeometry.from_geometry({"kind": kind}, QUANG_TRI)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-4, 4, (2, 30))
    x0, y0, d = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5), rng.uniform(0, 3, 5)
    batch = design_batch(x, y, x0, y0, d, geom)
    for i in range(5):
        np.testing.assert_allclose(batch[i], design_matrix(x, y, x0[i], y0[i], d[i], geom),
                                   rtol=1e-10, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_fast_median_matches_numpy(vals):
    from acquisition.dsp.levelling import fast_median

    a = np.array(vals)
    assert fast_median(a) == pytest.approx(float(np.median(a)), rel=1e-12, abs=1e-9)
