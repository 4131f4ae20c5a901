"""A weak, deep body on a strong neighbour's flank is seeded (`fitstages.flank_search`).

A 23 A m^2 bomb 4.6 m deep (an 8 nT anomaly) 4.2 m from a 37 A m^2 bomb
2.1 m deep (some 600 nT) lies inside the strong bomb's lane segment with no
peak of its own: the only hint is the strong bomb, and the greedy search's
seeds, gated by the strong source's misfit level, may never reach it. The
flank search takes the residual's maxima whatever that level and judges
them with their neighbours refitted. Its guard: a strong shallow bomb
walked with a few centimetres of position error leaves a residual beside
it, and that must not become a source.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from dsp_synth import induced, survey

from acquisition.dsp.fit import FitTrace, fit_sources
from acquisition.dsp.fitconfig import FitConfig
from acquisition.forward import SensorGeometry
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


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_strong_bomb_walked_with_position_error_gets_no_second_source(seed):
    # (the fit's later drop rules are part of the guard: what is reported counts)
    fits = _fit([STRONG], seed=seed, flank=True, walk=0.04)
    assert len(fits) == 1
    assert np.hypot(fits[0].x - STRONG.x, fits[0].y - STRONG.y) < 0.1
    assert abs(fits[0].depth - STRONG.depth) < 0.1
