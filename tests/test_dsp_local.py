"""Local processing of dense lane surveys: no fit window grows with the survey.

On a dense total-field scene (bench/bench_area.py's density: 22 bodies and 30
pieces of scrap per 24 x 50 m) the segments of neighbouring anomalies touch
across lanes and form one signal as large as the survey. Once a signal grows beyond `LOCAL_SPLIT_M`,
the pipeline cuts off the part the walk has left
(`LanePipeline._cut_behind`) and fits it in cells of `LOCAL_TILE_M` with
`LOCAL_MARGIN_M` of context (`LanePipeline._tiles`), so the largest window is
bounded whatever the area.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_area import dense_scenario, dense_targets
from test_dsp_pipeline import blocks, key

from acquisition.dsp import pipeline as pl
from acquisition.dsp.batch import make_descriptor
from acquisition.dsp.pipeline import LaneConfig, LanePipeline
from acquisition.events import Target
from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey


def dense_survey(width: float, length: float, seed: int):
    sc = dense_scenario(0.12, seed)
    sc["area"]["width"], sc["area"]["length"] = width, length
    sc["targets"] = dense_targets(width, length, seed)
    s = scenario_from_dict(sc)
    sim = simulate_survey(s)
    geo = {"kind": sim.kind, "sensor_height_m": 0.3, "sensor_separation_m": 0.65}
    v = np.asarray(sim.values).reshape(len(sim.x_rec), -1)[:, 0]
    return sim.x_rec, sim.y_rec, v, geo, s.field


def run(data, sizes, locator: str):
    x, y, v, geo, field = data
    pipe = LanePipeline(make_descriptor(geo, 10.0, "s"), field, LaneConfig(locator=locator))
    ev = []
    for b in blocks(x, y, v, sizes):
        ev += pipe.process(b)
    ev += pipe.finish()
    return pipe, ev


@pytest.fixture(scope="module")
def dense_survey_64x70():
    return dense_survey(64.0, 70.0, 1)


# The grouping, cutting and cells do not depend on the locator: Euler's
# (milliseconds a window) stands in for the dipole fit on the large survey.
def test_fit_windows_stay_bounded_on_a_dense_survey(dense_survey_64x70, monkeypatch):
    pipe, ev = run(dense_survey_64x70, [len(dense_survey_64x70[0])], "euler")
    st = pipe.stats
    assert st.cut_signals >= 1 and st.cell_windows >= 4
    assert 0 < st.largest_window_m <= pl.LOCAL_SPLIT_M
    assert 0 < st.largest_window_segments <= 60
    assert len({e.target_id for e in ev if isinstance(e, Target)}) >= 10
    # Without the cells and the cuts, the same survey's signal spans the survey.
    monkeypatch.setattr(pl, "LOCAL_SPLIT_M", 1e6)
    whole, _ = run(dense_survey_64x70, [len(dense_survey_64x70[0])], "euler")
    assert whole.stats.cut_signals == 0
    assert whole.stats.largest_window_m >= 65.0
    assert whole.stats.largest_window_segments >= 150


def test_chunked_equals_whole_on_a_dense_survey(dense_survey_64x70):
    _, whole = run(dense_survey_64x70, [len(dense_survey_64x70[0])], "euler")
    for sizes in ([1000, 13], [333]):
        pipe, chunked = run(dense_survey_64x70, sizes, "euler")
        assert pipe.stats.cut_signals >= 1
        assert sorted(map(key, chunked)) == sorted(map(key, whole))


@pytest.mark.slow
def test_chunked_equals_whole_with_dipole_fits_in_cells():
    # 8 lanes x 100 m of the dense scene: a signal longer than
    # `LOCAL_SPLIT_M`, fitted cell by cell with the neighbours' sources
    # subtracted.
    data = dense_survey(8.0, 100.0, 3)
    pipe, whole = run(data, [len(data[0])], "dipole")
    assert pipe.stats.cell_windows >= 3
    assert pipe.stats.largest_window_m <= pl.LOCAL_SPLIT_M
    targets = [e for e in whole if isinstance(e, Target)]
    assert len(targets) >= 5
    _, chunked = run(data, [97, 5], "dipole")
    assert sorted(map(key, chunked)) == sorted(map(key, whole))
