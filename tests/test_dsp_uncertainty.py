"""Reported 1-sigma of position and depth: honest against the simulator's truth.

A fit's own covariance counts sensor noise only; what every sample of one
anomaly shares (position and height error, a real body's shape) is added as
`fit.SurveySigma`. Checked on simulated surveys (`simulator.survey`: position
error, gait bob, munition-case bodies), not on the fit's own forward model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from dsp_synth import induced, survey
from test_dsp_tails_clutter import _bench_survey, process_sim

from acquisition.dsp.fit import SurveySigma, fit_sources
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI
from simulator.scoring import match

GRAD = SensorGeometry.from_geometry(
    {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)


def _one(ss: SurveySigma | None):
    x, y, v, _lane, _ = survey([induced(3.3, 10.2, 1.2, 1.0)], noise=0.3, seed=4)
    (f,) = fit_sources(x, y, v, GRAD, 0.3, survey_sigma=ss)
    return f


def test_survey_sigma_adds_in_quadrature_to_the_fits_own():
    own = _one(SurveySigma(0.0, 0.0, 0.0))
    assert 0 < own.sigma_x < 0.02 and 0 < own.sigma_depth < 0.03  # noise only: tiny
    ss = SurveySigma(position_m=0.05, height_m=0.04, depth_rel=0.02)
    f = _one(ss)
    assert (f.x, f.y, f.depth) == (own.x, own.y, own.depth)  # the estimate is untouched
    assert f.sigma_x == pytest.approx(math.hypot(own.sigma_x, 0.05))
    assert f.sigma_y == pytest.approx(math.hypot(own.sigma_y, 0.05))
    assert f.sigma_depth == pytest.approx(
        math.sqrt(own.sigma_depth ** 2 + 0.04 ** 2 + (0.02 * own.depth) ** 2))
    assert _one(None).sigma_x == pytest.approx(f.sigma_x)  # the defaults


@pytest.mark.parametrize("seed", [1, 5])
def test_reported_sigmas_cover_the_true_errors(seed):
    # Before SurveySigma about a quarter of the depths and a sixth of the
    # positions lay within their reported 68 % bounds.
    sc, sim = _bench_survey("overlap", seed)
    res = process_sim(sc, sim)
    truth = np.array([[t.x, t.y, t.depth] for t in sim.truth])
    rep = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    pairs = [p for p in match(truth, rep, gate_m=1.0).pairs
             if sim.truth[p.truth_index].detectable]
    assert len(pairs) >= 20
    in_z = in_h = 0
    for p in pairs:
        r = res.targets[p.report_index]
        in_z += abs(r.depth - sim.truth[p.truth_index].depth) <= r.sigma_depth
        sh = math.sqrt(0.5 * (r.sigma_x ** 2 + r.sigma_y ** 2))
        in_h += p.horizontal_error_m <= 1.515 * sh  # the 68 % circle
    assert in_z / len(pairs) >= 0.55, (in_z, len(pairs))
    assert in_h / len(pairs) >= 0.55, (in_h, len(pairs))
