"""Narrow residual peaks in joint windows (`fitstages.sharp_search`).

In a window of broad total-field anomalies the residual search's rounds go
to the broad misfit of deep bodies, and a piece of scrap a few centimetres
down on their flank is never tried; fitted on the residual as it is, it is
pulled deep and off its peak, and judged there the broad misfit drowns its
gain. With the residual's running median taken off along each lane
(`addsources.sharp_residual`), its anomaly stands alone, is fitted alone
and judged in that band, after the stages that place the bombs, which it
leaves as they were. Guards: a strong shallow bomb walked with a few
centimetres of position error, and deep bombs alone under noise, get no
second source; on magnetic ground (`robust`) the stage does not run.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from dsp_synth import induced, survey
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.dsp.addsources import sharp_residual
from acquisition.dsp.fit import FitTrace, fit_sources
from acquisition.dsp.fitconfig import FitConfig
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI

TOTAL = SensorGeometry.from_geometry(
    {"kind": "total", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)
DEEP = (induced(5.5, 7.0, 4.0, 25.0), induced(9.5, 12.0, 4.3, 20.0))
#: 7 g of scrap 0.13 m down, 0.3 m beside a lane, on the bombs' flank.
SCRAP = induced(7.8, 15.0, 0.13, 0.007)


def _fit(bodies, seed, sharp, walk=0.0, trace=None, robust=False, noise=0.3, alone=False):
    x, y, v, lane, _geo = survey(list(bodies), kind="total", noise=noise, seed=seed,
                                 n_lanes=14, length=22.0, offsets=0.3, walk=walk)
    cfg = replace(FitConfig(), sharp_search=sharp)
    if alone:
        # In a window this small the greedy search and the flank search
        # reach the scrap too; in a survey-wide one their tries run out on
        # the deep bodies' misfit first. Off, the bombs come from their lane
        # peaks (`hint_sources`) and only this stage is left to find it.
        cfg = replace(cfg, add_sources=False, flank_search=False)
    # A joint window whose residual rounds were spent elsewhere: no rounds.
    return fit_sources(x, y, v, TOTAL, noise, lanes=lane, thr=8 * noise,
                       max_residual_rounds=0, joint=True, robust=robust,
                       hints=[(b.x, b.y) for b in bodies[:2]], trace=trace, config=cfg)


def _nearest(fits, body):
    d = [np.hypot(f.x - body.x, f.y - body.y) for f in fits]
    return fits[int(np.argmin(d))], float(min(d))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scrap_on_deep_bombs_flank_is_found_only_with_the_sharp_search(seed):
    without = _fit((*DEEP, SCRAP), seed, sharp=False, alone=True)
    assert _nearest(without, SCRAP)[1] > 1.0
    trace = FitTrace()
    fits = _fit((*DEEP, SCRAP), seed, sharp=True, trace=trace, alone=True)
    scrap, d = _nearest(fits, SCRAP)
    assert d < 0.3, fits
    assert scrap.depth < 0.5
    # the bombs are where they were without it (it runs after the stages
    # that place them)
    for b in DEEP:
        f0, d0 = _nearest(without, b)
        f1, d1 = _nearest(fits, b)
        assert d1 < 0.6 and abs(f1.depth - b.depth) < 0.15 * b.depth
        assert abs(d1 - d0) < 0.05 and abs(f1.depth - f0.depth) < 0.05
    rec = trace.stage("sharp_search")
    assert rec.ran and len(rec.sources_out) == len(rec.sources_in) + 1


def test_on_magnetic_ground_the_stage_does_not_run():
    trace = FitTrace()
    fits = _fit((*DEEP, SCRAP), 1, sharp=True, trace=trace, robust=True, alone=True)
    rec = trace.stage("sharp_search")
    assert rec.ran and rec.sources_out == rec.sources_in
    assert fits


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_strong_shallow_bomb_walked_with_position_error_gets_no_second_source(seed):
    bomb = induced(7.0, 11.0, 0.8, 30.0)  # some 2000 nT
    trace = FitTrace()
    fits = _fit((bomb,), seed, sharp=True, walk=0.04, trace=trace)
    rec = trace.stage("sharp_search")
    assert len(rec.sources_out) == len(rec.sources_in)
    assert len(fits) == 1
    assert np.hypot(fits[0].x - bomb.x, fits[0].y - bomb.y) < 0.15


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_deep_bombs_alone_under_noise_get_no_narrow_source(seed):
    trace = FitTrace()
    fits = _fit(DEEP, seed, sharp=True, trace=trace, noise=0.6)
    rec = trace.stage("sharp_search")
    assert len(rec.sources_out) == len(rec.sources_in)
    assert all(f.depth > 2.0 for f in fits)


def test_sharp_residual_keeps_narrow_peaks_and_takes_broad_ones_off():
    s = np.arange(0.0, 20.0, 0.1)
    broad = 10.0 / (1 + ((s - 6) / 4.0) ** 2)    # a body ~4 m from the sensor
    narrow = 5.0 / (1 + ((s - 14) / 0.3) ** 2)   # one ~0.3 m from it
    lane = np.zeros(s.size, dtype=int)
    hp = sharp_residual(np.zeros_like(s), s, broad + narrow, lane, 2.0)
    assert abs(hp[60]) < 0.05 * 10.0
    assert hp[140] > 0.6 * 5.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5))
def test_sharp_residual_is_per_lane_and_in_any_sample_order(seed, n_lanes):
    # Each lane on its own, in along-track order whatever order the samples
    # come in (walked up or down): shuffling the samples shuffles the answer.
    rng = np.random.default_rng(seed)
    per = 60
    y = np.tile(np.arange(per) * 0.1, n_lanes)
    x = np.repeat(np.arange(n_lanes) + 0.5, per)
    lane = np.repeat(np.arange(n_lanes), per)
    r = rng.normal(0, 1, x.size)
    hp = sharp_residual(x, y, r, lane, 2.0)
    perm = rng.permutation(x.size)
    hp_p = sharp_residual(x[perm], y[perm], r[perm], lane[perm], 2.0)
    np.testing.assert_array_equal(hp_p, hp[perm])
    one = sharp_residual(x[lane == 0], y[lane == 0], r[lane == 0], lane[lane == 0], 2.0)
    np.testing.assert_array_equal(one, hp[lane == 0])


def test_sharp_residual_gives_samples_on_no_lane_nothing():
    # Turns (lane < 0) have no track to take a median along: no narrow peak.
    s = np.arange(0.0, 5.0, 0.1)
    x = np.concatenate((np.zeros_like(s), np.linspace(0.0, 1.0, 5)))
    y = np.concatenate((s, np.full(5, 5.0)))
    lane = np.concatenate((np.zeros(s.size, dtype=int), np.full(5, -1)))
    r = np.concatenate((np.zeros_like(s), np.full(5, 9.0)))
    r[20] = 4.0
    hp = sharp_residual(x, y, r, lane, 2.0)
    assert np.all(hp[s.size:] == 0.0)
    assert hp[20] == 4.0

