"""Every reported source lies where its signal was detected, above the depth bound.

The benchmark's total-field seed 16: one signal spans the whole survey (two
shallow bombs of 1000-3700 nT and their neighbours), and the joint refit
once walked a source 117 m east of the survey, 12 m down (the depth bound),
where it modelled the window's regional level.
"""

from __future__ import annotations

from test_dsp_tails_clutter import _bench_survey, process_sim

from acquisition.dsp.fitcore import MAX_DEPTH


def test_no_source_leaves_the_survey_or_sinks_to_the_depth_bound():
    sc, sim = _bench_survey("total_field", 16)
    res = process_sim(sc, sim)
    a = sc.area
    assert len(res.targets) >= 5
    for t in res.targets + res.under_threshold:
        assert a.x0 - 1.0 <= t.x <= a.x0 + a.width + 1.0, (t.x, t.y, t.depth)
        assert a.y0 - 1.0 <= t.y <= a.y0 + a.length + 1.0, (t.x, t.y, t.depth)
        assert t.depth < MAX_DEPTH - 1e-3
