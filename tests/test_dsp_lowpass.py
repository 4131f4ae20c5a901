"""The low-pass detection pass: wide anomalies under magnetic soil's clutter.

A laterite world from the simulator (grains of magnetic soil near the
surface, the benchmark's walk and noise) with one aircraft bomb 4.5 m deep
whose peak is under the survey's raw threshold: the low-passed lanes find
it, the raw pass alone does not. The unit tests of `lowpass_segments` use
a plain lane (a wide Gaussian anomaly under short-wave clutter).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.dsp.batch import process_survey
from acquisition.dsp.detect import find_segments, lane_lowpass, lowpass_segments
from acquisition.dsp.pipeline import LaneConfig
from acquisition.dsp.pipetrace import PipelineTrace
from acquisition.errors import SettingError
from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from accuracy_lanes import LATERITE, scenario

BOMB = (10.0, 15.0, 4.5)


@pytest.fixture(scope="module")
def deep_bomb_on_laterite():
    d = scenario("deep-bomb-laterite", 2, width=20.0, length=30.0, count=0, kind="gradient",
                 soil=dict(LATERITE), targets=[{"name": "bomb", "kind": "aircraft_bomb",
                                                "x": BOMB[0], "y": BOMB[1], "depth": BOMB[2]}])
    sc = scenario_from_dict(d)
    return sc, simulate_survey(sc)


def _process(sc, sim, lowpass_m: float, trace: PipelineTrace | None = None):
    geo = {"kind": sim.kind, "sensor_height_m": sc.sensor.height_m,
           "sensor_separation_m": sc.sensor.separation_m}
    return process_survey(sim.x_rec, sim.y_rec, sim.values, t=sim.t_s, geometry=geo,
                          field=sc.field, config=LaneConfig(lowpass_m=lowpass_m), trace=trace)


def _nearest(res) -> float:
    return min((math.hypot(t.x - BOMB[0], t.y - BOMB[1]) for t in res.targets), default=math.inf)


def test_deep_bomb_under_the_raw_threshold_is_found_by_the_pass(deep_bomb_on_laterite):
    sc, sim = deep_bomb_on_laterite
    trace = PipelineTrace()
    res = _process(sc, sim, 2.0, trace)
    # The world is what the test is about: the bomb's own peak is under the
    # raw threshold the soil's clutter sets.
    assert sim.truth[0].peak_abs_nT < res.threshold_nT
    near = [t for t in res.targets if math.hypot(t.x - BOMB[0], t.y - BOMB[1]) < 0.5]
    assert len(near) == 1
    assert abs(near[0].depth - BOMB[2]) < 0.15 * BOMB[2]
    # The window that reported it holds low-pass segments (the raw pass
    # alone gave only soil peaks there, see below).
    wins = [w for w in trace.windows
            if any(math.hypot(r[0] - BOMB[0], r[1] - BOMB[1]) < 0.5 for r in w.reported)]
    assert wins and any(s.lowpass for w in wins for s in (*w.core, *w.context))
    # Windows of low-pass segments only are marked so (judged against the
    # low-passed threshold).
    assert all(s.lowpass for w, _j in trace.judgements("lowpass") for s in w.core)
    # No soil pick added: every other target is one the raw pass gives too.
    off = _process(sc, sim, 0.0)
    assert len(res.targets) - 1 <= len(off.targets)


def test_without_the_pass_the_deep_bomb_is_missed(deep_bomb_on_laterite):
    sc, sim = deep_bomb_on_laterite
    assert _nearest(_process(sc, sim, 0.0)) > 0.5


def _lane(seed: int, amp: float, clutter: float):
    """A 40 m lane at 0.1 m: a Gaussian anomaly 1.5 m wide (sigma) at 20 m
    under short-wave clutter (white noise through a 3-sample mean)."""
    rng = np.random.default_rng(seed)
    y = np.arange(0.0, 40.0, 0.1)
    x = np.zeros_like(y)
    noise = np.convolve(rng.standard_normal(y.size), np.ones(3) / 3, mode="same") * clutter
    return x, y, amp * np.exp(-0.5 * ((y - 20.0) / 1.5) ** 2) + noise


def test_lowpass_segment_where_the_raw_pass_has_none():
    x, y, lev = _lane(1, 4.0, 3.0)
    thr = 5.0 * 3.0 / math.sqrt(3)  # over the clutter's whole sigma...
    raw = [s for s in find_segments(lev, thr, x, y, 0) if abs(s.y - 20.0) < 3.0]
    assert raw == []  # ... the anomaly (4 nT) is under it
    lp = lane_lowpass(lev, 21)
    segs = lowpass_segments(lp, 2.5, x, y, 0, raw)
    hit = [s for s in segs if abs(s.y - 20.0) < 1.0]
    assert len(hit) == 1 and hit[0].lowpass and abs(hit[0].amplitude - 4.0) < 1.0


def test_lowpass_segment_dropped_where_a_raw_one_is():
    x, y, lev = _lane(2, 12.0, 1.0)
    raw = find_segments(lev, 5.0, x, y, 0)
    assert any(s.y0 <= 20.0 <= s.y1 for s in raw)
    segs = lowpass_segments(lane_lowpass(lev, 21), 2.5, x, y, 0, raw)
    assert all(abs(s.y - 20.0) > 4.0 for s in segs)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(-10, 10**6), st.text(max_size=8)))
def test_lowpass_m_accepts_only_in_range(value: object) -> None:
    try:
        cfg = LaneConfig(lowpass_m=value)  # type: ignore[arg-type]
    except SettingError as exc:
        assert "lowpass_m" in str(exc) and "allowed" in str(exc)
        return
    assert math.isfinite(cfg.lowpass_m) and 0.0 <= cfg.lowpass_m <= 20.0


def test_no_pass_on_clean_ground():
    # The same world without the soil: the background is the sensor's white
    # noise, the pass is not run and the result is the raw pass's exactly.
    d = scenario("deep-bomb-clean", 2, width=20.0, length=30.0, count=0, kind="gradient",
                 targets=[{"name": "bomb", "kind": "aircraft_bomb",
                           "x": BOMB[0], "y": BOMB[1], "depth": BOMB[2]}])
    sc = scenario_from_dict(d)
    sim = simulate_survey(sc)
    trace = PipelineTrace()
    on, off = _process(sc, sim, 2.0, trace), _process(sc, sim, 0.0)
    assert not any(s.lowpass for lane in trace.lanes for s in lane.segments)
    assert [(t.x, t.y, t.depth) for t in on.targets] == [(t.x, t.y, t.depth)
                                                         for t in off.targets]
    assert _nearest(on) < 0.5
