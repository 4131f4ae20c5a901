"""Hole plan geometry: spacing, stagger, coverage distance (numerically), ids, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from acquisition.borehole.plan import max_distance_to_holes, quincunx


def test_spacing_and_stagger() -> None:
    plan = quincunx((0, 0, 20, 12), spacing=2.0)
    xy = plan.xy()
    d, _ = cKDTree(xy).query(xy, k=7)
    # Every hole's nearest neighbours are exactly 2 m away; interior holes have six.
    assert np.allclose(d[:, 1], 2.0, atol=1e-9)
    interior = (xy[:, 0] > 2) & (xy[:, 0] < 18) & (xy[:, 1] > 2) & (xy[:, 1] < 10)
    assert np.allclose(d[interior, 1:7], 2.0, atol=1e-9)
    rows = sorted({round(y, 6) for y in xy[:, 1]})
    assert np.allclose(np.diff(rows), math.sqrt(3.0), atol=1e-9)
    # Alternate rows are shifted by half a spacing (the quincunx stagger).
    xs0 = np.sort(xy[np.isclose(xy[:, 1], rows[0]), 0])
    xs1 = np.sort(xy[np.isclose(xy[:, 1], rows[1]), 0])
    assert np.allclose(np.mod(xs0 - xs1[0], 2.0), 1.0, atol=1e-9)


def test_max_distance_is_circumradius() -> None:
    plan = quincunx((0, 0, 20, 12))
    assert plan.nominal_max_distance_m == pytest.approx(2 / math.sqrt(3), abs=1e-12)
    assert plan.max_distance_m == pytest.approx(1.1547, abs=0.01)
    assert plan.max_distance_m <= 1.1547 + 1e-6


def test_inside_only_says_what_it_costs() -> None:
    plan = quincunx((0, 0, 9, 7), edge="inside")
    assert all(h.inside for h in plan.holes)
    assert plan.max_distance_m > 1.2
    assert any("only holes inside" in n for n in plan.notes)


def test_rotated_polygon_keeps_spacing() -> None:
    plan = quincunx([(0, 0), (15, 2), (10, 12), (-2, 8)], azimuth_deg=35.0)
    xy = plan.xy()
    d, _ = cKDTree(xy).query(xy, k=2)
    assert np.allclose(d[:, 1], 2.0, atol=1e-9)
    assert plan.max_distance_m <= 1.1547 + 1e-6


def test_ids_unique_and_layer_depths() -> None:
    plan = quincunx((0, 0, 10, 8), layer=2, layer_depth=5.0, hole_prefix="A-")
    ids = [h.hole for h in plan.holes]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("A-R") for i in ids)
    assert (plan.layer_top_m, plan.layer_bottom_m) == (5.0, 10.0)
    assert plan.min_diameter_mm == 105.0


@pytest.mark.parametrize("bad", [dict(spacing=0), dict(spacing=-1), dict(layer=0),
                                 dict(edge="nope"), dict(layer_depth=float("nan"))])
def test_bad_parameters(bad: dict) -> None:
    with pytest.raises(ValueError):
        quincunx((0, 0, 10, 10), **bad)


@pytest.mark.parametrize("area", [(0, 0, 0, 5), [(0, 0), (1, 1)], [(0, 0), (1, 1), (2, 2)],
                                  (0, 0, float("inf"), 1)])
def test_bad_areas(area: object) -> None:
    with pytest.raises(ValueError):
        quincunx(area)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(x0=st.floats(-50, 50), y0=st.floats(-50, 50), w=st.floats(0.5, 14), h=st.floats(0.5, 14),
       spacing=st.floats(1.0, 3.0), az=st.floats(0, 180))
def test_any_rectangle_is_covered(x0: float, y0: float, w: float, h: float, spacing: float,
                                  az: float) -> None:
    plan = quincunx((x0, y0, x0 + w, y0 + h), spacing=spacing, azimuth_deg=az)
    assert plan.holes
    assert max_distance_to_holes(plan.polygon, plan.xy(), step=0.1) <= \
        spacing / math.sqrt(3) + 1e-6
