"""A weak, deep body on a strong neighbour's flank is seeded (`fitstages.flank_search`).

A 23 A m^2 bomb 4.6 m deep (an 8 nT anomaly) 4.2 m from a 37 A m^2 bomb
2.1 m deep (some 600 nT) lies inside the strong bomb's lane segment with no
peak of its own: the only hint is the strong bomb, and the greedy search's
seeds, gated by the strong source's misfit level, may never reach it. The
flank search takes the residual's maxima whatever that level and judges
them with their neighbours refitted; it runs after the line stage, so the
strong neighbour may be a line (an elongated body), which stays one. Its
guard: a strong shallow bomb (or line) walked with a few centimetres of
position error leaves a residual beside it, and that must not become a
source.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from dsp_synth import induced, survey

from acquisition.dsp.fit import FitTrace, fit_sources
from acquisition.dsp.fitconfig import FitConfig
from acquisition.forward import SensorGeometry, describe, induced_moment
from acquisition.forward.line import ends_from, line_design
from acquisition.geomag import QUANG_TRI

GRADIENT = SensorGeometry.from_geometry(
    {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)
STRONG = induced(6.5, 9.0, 2.1, 37.0)
WEAK = induced(9.5, 12.0, 4.6, 22.8)


def _fit(sources, seed, flank, walk=0.0, trace=None):
    x, y, v, lane, _geo = survey(sources, kind="gradient", noise=0.5, seed=seed, n_lanes=14,
                                 length=20.0, offsets=0.3, walk=walk)
    # As the pipeline fits one signal's window: the lane peak of the strong
    # bomb is the only hint, no residual rounds (those are for broad clusters).
    return fit_sources(x, y, v, GRADIENT, 0.5, lanes=lane, thr=2.5, max_residual_rounds=0,
                       hints=[(STRONG.x, STRONG.y)], trace=trace,
                       config=replace(FitConfig(), flank_search=flank))


def _nearest(fits, body):
    d = [np.hypot(f.x - body.x, f.y - body.y) for f in fits]
    return fits[int(np.argmin(d))], float(min(d))


def test_weak_deep_body_on_the_flank_is_found_only_with_the_flank_search():
    without = _fit([STRONG, WEAK], seed=5, flank=False)
    assert len(without) == 1
    assert _nearest(without, WEAK)[1] > 3.0
    trace = FitTrace()
    fits = _fit([STRONG, WEAK], seed=5, flank=True, trace=trace)
    assert len(fits) == 2
    weak, d = _nearest(fits, WEAK)
    assert d < 0.5, fits
    assert abs(weak.depth - WEAK.depth) < 0.15 * WEAK.depth
    strong, ds = _nearest(fits, STRONG)
    assert ds < 0.1 and abs(strong.depth - STRONG.depth) < 0.1
    # It was the flank search that placed it.
    rec = trace.stage("flank_search")
    assert rec.ran and len(rec.sources_out) == len(rec.sources_in) + 1


def test_the_flank_search_is_on_by_default_and_skips_magnetic_ground():
    assert FitConfig().flank_search
    trace = FitTrace()
    # The same data fitted as on magnetic ground (the pipeline's `robust`):
    # the stage does not run there, so the weak body stays unfound.
    x, y, v, lane, _geo = survey([STRONG, WEAK], kind="gradient", noise=0.5, seed=5,
                                 n_lanes=14, length=20.0, offsets=0.3)
    fits = fit_sources(x, y, v, GRADIENT, 0.5, lanes=lane, thr=2.5, max_residual_rounds=0,
                       hints=[(STRONG.x, STRONG.y)], trace=trace, robust=True)
    rec = trace.stage("flank_search")
    assert rec.ran and len(rec.sources_out) == len(rec.sources_in)
    assert _nearest(fits, WEAK)[1] > 3.0
    assert _nearest(fits, STRONG)[1] < 0.1


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_strong_bomb_walked_with_position_error_gets_no_second_source(seed):
    # (the fit's later drop rules are part of the guard: what is reported counts)
    fits = _fit([STRONG], seed=seed, flank=True, walk=0.04)
    assert len(fits) == 1
    assert np.hypot(fits[0].x - STRONG.x, fits[0].y - STRONG.y) < 0.1
    assert abs(fits[0].depth - STRONG.depth) < 0.1


# ---- after the line stage: the strong neighbour is an elongated body
#: A 2 m long body 1.2 m deep (40 A m^2, induced), fitted as a line by the
#: time the flank search runs (after the deep-cluster stages); the weak
#: body 4.2 m from its centre, 4 m deep (20 A m^2, some 10 nT).
LINE_ENDS = ends_from((6.5, 9.0, 1.2), 2.0, 30.0)
LINE_MOMENT = np.array(induced_moment(40.0, QUANG_TRI))
WEAK_BY_LINE = induced(9.5, 12.0, 4.0, 20.0)


def _fit_beside_line(bodies, seed, flank, walk=0.0, trace=None):
    # the survey helper needs a body: one too weak to read stands in for none
    x, y, v, lane, _geo = survey(bodies or [induced(0.0, 0.0, 11.0, 1e-9)], kind="gradient",
                                 noise=0.5, seed=seed, n_lanes=14, length=20.0, offsets=0.3,
                                 walk=walk)
    v = v + line_design(x, y, LINE_ENDS, GRADIENT) @ LINE_MOMENT
    return fit_sources(x, y, v, GRADIENT, 0.5, lanes=lane, thr=2.5, max_residual_rounds=0,
                       hints=[(6.5, 9.0)], trace=trace,
                       config=replace(FitConfig(), flank_search=flank))


@pytest.mark.parametrize("seed", [1, 2, 4, 5])
def test_weak_deep_body_beside_a_line_source_is_found_with_the_line_kept(seed):
    without = _fit_beside_line([WEAK_BY_LINE], seed, flank=False)
    assert len(without) == 1 and _nearest(without, WEAK_BY_LINE)[1] > 3.0
    trace = FitTrace()
    fits = _fit_beside_line([WEAK_BY_LINE], seed, flank=True, trace=trace)
    assert len(fits) == 2
    weak, d = _nearest(fits, WEAK_BY_LINE)
    assert d < 0.3, fits
    assert abs(weak.depth - WEAK_BY_LINE.depth) < 0.15 * WEAK_BY_LINE.depth
    # The line went in as a line and came out where it was (the stage
    # refits neighbours but must not drag them).
    rec = trace.stage("flank_search")
    assert [len(s) for s in rec.sources_in] == [6]
    assert [len(s) for s in rec.sources_out] == [6, 3]
    assert np.allclose(rec.sources_out[0], rec.sources_in[0], atol=0.3)
    line = describe(np.array(rec.sources_out[0]))
    assert np.hypot(line["x"] - 6.5, line["y"] - 9.0) < 0.1 and abs(line["depth"] - 1.2) < 0.1


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_line_source_walked_with_position_error_gets_no_second_source(seed):
    fits = _fit_beside_line([], seed, flank=True, walk=0.04)
    assert len(fits) == 1
    assert np.hypot(fits[0].x - 6.5, fits[0].y - 9.0) < 0.1
    assert abs(fits[0].depth - 1.2) < 0.1
