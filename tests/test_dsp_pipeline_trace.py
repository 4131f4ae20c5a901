"""The lane pipeline's trace (`acquisition/dsp/pipetrace.py`).

On a synthetic lane survey with two known bodies the trace holds one window
per body, with its extent around the body, its segments and its source at
the body; switched off it changes nothing; and chunked still equals whole
with it on, trace included.
"""

from __future__ import annotations

import math

import numpy as np
from dsp_synth import induced, survey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dsp_pipeline import blocks, key

from acquisition.dsp import pipeline as pl
from acquisition.dsp.batch import make_descriptor, process_survey
from acquisition.dsp.pipeline import LaneConfig, LanePipeline
from acquisition.dsp.pipetrace import JUDGEMENTS, PipelineTrace
from acquisition.geomag import QUANG_TRI

#: A projectile-sized body 1 m deep and a mortar-sized one 0.6 m deep, 9.5 m apart.
BODIES = [induced(2.5, 6.0, 1.0, 1.5), induced(5.5, 15.0, 0.6, 0.5)]
DATA = survey(BODIES, noise=0.2, seed=4)


def _traced(config: LaneConfig | None = None):
    x, y, v, _lane, geo = DATA
    tr = PipelineTrace()
    res = process_survey(x, y, v, geometry=geo, field=QUANG_TRI, trace=tr, config=config)
    return res, tr


def test_each_body_has_its_window_with_its_extent_segments_and_source():
    res, tr = _traced()
    assert len(tr.lanes) == 8  # every lane the survey walked, as the detector saw it
    for ln in tr.lanes:
        assert ln.x.size == ln.y.size == ln.lev.size > 100 and ln.thr > 0
    assert len(tr.windows) == 2
    for w, b in zip(sorted(tr.windows, key=lambda w: w.extent[2]), BODIES, strict=True):
        x0, x1, y0, y1 = w.extent
        # The segments' extent spans the body, a few metres at most.
        assert x0 < b.x < x1 and y0 < b.y < y1
        assert x1 - x0 <= 4.5 and y1 - y0 <= 8.0
        assert w.core and not w.context
        assert all(x0 <= s.x_mean <= x1 and y0 <= s.y0 <= s.y1 <= y1 for s in w.core)
        assert {s.lane for s in w.core} <= {ln.lane for ln in tr.lanes}
        assert all(any(s is t for t in tr.segments()) for s in w.core)
        assert w.n_samples > 300
        # One source, at the body, and reported as it is.
        assert len(w.sources) == 1
        sx, sy, sd, method = w.sources[0]
        assert method == "dipole_fit"
        assert math.hypot(sx - b.x, sy - b.y) < 0.05
        assert abs(sd - b.depth) < 0.05
        assert w.reported == w.sources
        assert w.fit is not None and w.fit.names()[0] == "single_fit"
        assert w.fit.names()[-1] == "finish"
        # Clean and apart: nothing was judged away, no cell, no cut.
        assert w.judgements == []
    assert tr.late == []
    got = sorted((t.x, t.y, t.depth) for t in res.targets)
    assert got == sorted((w.reported[0][0], w.reported[0][1], w.reported[0][2])
                         for w in tr.windows)


def test_cells_and_what_they_judge_are_recorded_with_their_rules(monkeypatch):
    # Signals larger than 3 m are fitted as cells 2 m wide: each body's
    # signal is several cells. A cell whose fit places the body outside its
    # box leaves it to the cell that holds it; a cell fitted after that finds
    # its segments explained by the body's field.
    monkeypatch.setattr(pl, "LOCAL_SPLIT_M", 3.0)
    monkeypatch.setattr(pl, "LOCAL_TILE_M", 2.0)
    res, tr = _traced()
    assert len(tr.windows) > 4
    assert all(w.judged("cells") == [w.judgements[0]] for w in tr.windows)
    assert {j.rule for _w, j in tr.judgements("cells")} == {"LanePipeline._tiles"}
    reported = [p for w in tr.windows for p in w.reported]
    assert len(reported) == 2 == len(res.targets)
    for b in BODIES:
        assert sum(math.hypot(p[0] - b.x, p[1] - b.y) < 0.05 for p in reported) == 1
    outside = tr.judgements("outside_box")
    assert outside
    for w, j in outside:
        assert w is not None and j.rule == "LanePipeline._tiles" and j.at is not None
        x0, x1, y0, y1 = w.box
        assert not (x0 <= j.at[0] <= x1 and y0 <= j.at[1] <= y1)
        assert min(math.hypot(j.at[0] - b.x, j.at[1] - b.y) for b in BODIES) < 0.05
        assert j.at in [(p[0], p[1]) for p in w.sources] and not w.reported
    explained = tr.judgements("explained")
    assert explained
    for w, j in explained:
        assert w is not None and j.rule == "LanePipeline._explained" and j.at is None
        assert w.fit is None and w.sources == [] and w.reported == []


def test_the_euler_baseline_is_traced_too_without_a_fit_trace():
    _res, tr = _traced(LaneConfig(locator="euler"))
    assert len(tr.windows) == 2
    for w, b in zip(sorted(tr.windows, key=lambda w: w.extent[2]), BODIES, strict=True):
        assert w.fit is None
        assert [m for *_p, m in w.sources] == ["euler"]
        assert math.hypot(w.sources[0][0] - b.x, w.sources[0][1] - b.y) < 0.5


def test_a_switched_off_trace_changes_nothing():
    x, y, v, _lane, geo = DATA
    plain = process_survey(x, y, v, geometry=geo, field=QUANG_TRI)
    res, _tr = _traced()
    assert repr(res) == repr(plain)
    assert len(plain.targets) == 2


def test_every_judgement_kind_is_described():
    assert set(JUDGEMENTS) == {"explained", "cells", "cut", "dropped", "outside_box",
                               "paid_beside_fitted", "not_owned", "explained_late",
                               "under_threshold", "lowpass", "lowpass_shallow"}
    assert all(JUDGEMENTS.values())


def _run(sizes: list[int]):
    x, y, v, _lane, geo = DATA
    tr = PipelineTrace()
    pipe = LanePipeline(make_descriptor(geo, 10.0, "s"), QUANG_TRI, trace=tr)
    ev = []
    for b in blocks(x, y, v, sizes):
        ev += pipe.process(b)
    ev += pipe.finish()
    return ev, tr


def _windows(tr: PipelineTrace) -> list:
    return [(w.extent, w.box, w.core, w.context, w.n_samples, w.sources, w.reported,
             w.judgements, None if w.fit is None else w.fit.stages) for w in tr.windows]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_chunked_equals_whole_with_the_trace_on(sizes):
    x = DATA[0]
    ev_whole, whole = _run([len(x)])
    ev_chunked, chunked = _run(sizes)
    assert sorted(map(key, ev_chunked)) == sorted(map(key, ev_whole))
    assert _windows(chunked) == _windows(whole)
    assert len(whole.windows) == 2
    assert [ln.lane for ln in chunked.lanes] == [ln.lane for ln in whole.lanes]
    for a, b in zip(chunked.lanes, whole.lanes, strict=True):
        assert a.segments == b.segments and a.thr == b.thr
        np.testing.assert_array_equal(a.lev, b.lev)
