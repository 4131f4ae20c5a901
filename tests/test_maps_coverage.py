"""Lanes walked against the plan: coverage %, missed lanes, gaps with their boxes, broken lanes."""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import lanes_xy
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.coords import SurveyFrame
from acquisition.maps.coverage import coverage
from acquisition.maps.levelled import Levelled

FRAME = SurveyFrame(crs="EPSG:32648", origin_e=700000.0, origin_n=1850000.0)


def _lev(n_lanes: int = 10, length: float = 20.0, drop: tuple[int, ...] = (),
         cut: tuple[int, float, float] | None = None) -> Levelled:
    x, y, lane = lanes_xy(n_lanes, length)
    keep = ~np.isin(lane, drop)
    if cut is not None:  # a stretch of one lane not recorded (an obstacle)
        k, a, b = cut
        keep &= ~((lane == k) & (y > a) & (y < b))
    return Levelled(x=x[keep], y=y[keep], value=np.zeros(keep.sum()), lane=lane[keep], t=None)


def test_plan_larger_than_the_walked_area():
    c = coverage(_lev(), 1.0, FRAME, plan=(0.0, 0.0, 10.0, 25.0))
    assert c.percent == pytest.approx(80.0, abs=0.1)
    assert c.planned_lanes == c.walked_lanes == 10
    assert len(c.gaps) == 1
    g = c.gaps[0]
    assert (g.x0, g.y0, g.x1, g.y1) == pytest.approx((0.0, 20.0, 10.0, 25.0), abs=0.11)
    assert g.area_m2 == pytest.approx(50.0, abs=1.1)
    assert (g.easting, g.northing) == pytest.approx((700005.0, 1850022.5), abs=0.1)
    assert 16 < g.lat < 17.5 and 106 < g.lon < 107.5


def test_missed_lane_and_broken_lane_are_gaps():
    c = coverage(_lev(drop=(3,), cut=(6, 8.0, 12.0)), 1.0, FRAME)
    assert c.missing_lanes == [3.5]
    assert c.walked_lanes == 9
    boxes = sorted((round(g.x0, 1), round(g.x1, 1), round(g.area_m2)) for g in c.gaps)
    assert boxes == [(3.0, 4.0, 20), (6.0, 7.0, 4)]
    assert c.percent == pytest.approx(100 * (200 - 20 - 4) / 200, abs=0.5)
    assert c.walked_m2 == pytest.approx(200 - 20 - 4, abs=0.5)


@settings(max_examples=40, deadline=None)
@given(drop=st.sets(st.integers(0, 9), max_size=9))
def test_coverage_counts_the_lanes_walked(drop):
    c = coverage(_lev(drop=tuple(drop)), 1.0, FRAME, plan=(0.0, 0.0, 10.0, 20.0))
    assert c.walked_lanes == 10 - len(drop)
    assert c.percent == pytest.approx(10.0 * (10 - len(drop)), abs=0.6)
    assert sorted(c.missing_lanes) == [k + 0.5 for k in sorted(drop)]
