"""sigma_depth is a 1-sigma: about 68 % of true depths lie within it.

A fixed-seed Monte Carlo of noisy synthetic windows (our forward model, the
walk's errors drawn as a survey has them: an AR(1) position error along the
walk, a sensor height off by a constant, white noise), each fitted by least
squares from the truth and reported by `fitresult.report_sources`; and the
pieces of its model of correlated misfit checked against brute force.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from dsp_synth import lanes_xy
from scipy.signal import lfilter

from acquisition.dsp.fitcore import refit_local
from acquisition.dsp.fitresult import (
    SurveySigma,
    _ar1_part,
    _walk_links,
    _walk_quadratic,
    report_sources,
)
from acquisition.forward import SensorGeometry, forward, induced_moment
from acquisition.geomag import QUANG_TRI

WHITE_NT = 0.5
POS_M = 0.03  # position error per axis, correlated over 1 m of walk
HEIGHT_M = 0.04  # sensor height error, one per window
DRAWS = 200


def _geom(height: float) -> SensorGeometry:
    return SensorGeometry.from_geometry(
        {"kind": "gradient", "sensor_height_m": height, "sensor_separation_m": 0.65}, QUANG_TRI)


def _draw(rng: np.random.Generator, beside_bigger: bool) -> tuple[float, float]:
    """(depth error, sigma_depth) of one noisy window's source of interest."""
    x, y, lane = lanes_xy(8, 10.0)
    rho = math.exp(-0.1 / 1.0)  # 0.1 m between samples, 1 m correlation
    err = lfilter([math.sqrt(1 - rho * rho)], [1.0, -rho],
                  rng.standard_normal((2, x.size)) * POS_M, axis=1)
    walked = _geom(0.3 + rng.normal(0.0, HEIGHT_M))
    depth = float(rng.uniform(0.4, 2.0))
    moment = float(np.exp(rng.uniform(math.log(0.3), math.log(3.0))))
    sx, sy = 4.0 + rng.uniform(-0.5, 0.5), 5.0 + rng.uniform(-0.5, 0.5)
    truth = [(sx, sy, depth, moment)]
    if beside_bigger:  # 3 m away, 4x the moment, 1-2.5 m deep
        a = rng.uniform(0.0, 2.0 * math.pi)
        truth.append((sx + 3.0 * math.cos(a), sy + 3.0 * math.sin(a),
                      float(rng.uniform(1.0, 2.5)), 4.0 * moment))
    v = rng.normal(0.0, WHITE_NT, x.size)
    for px, py, pd, pm in truth:
        v += forward(x + err[0], y + err[1], px, py, pd,
                     tuple(induced_moment(pm, QUANG_TRI)), walked)
    geom = _geom(0.3)
    srcs, _ = refit_local([np.array(t[:3]) for t in truth], list(range(len(truth))),
                          x, y, v, geom)
    # Point dipoles: no body-shape error to allow for (depth_rel 0).
    f = report_sources(srcs, x, y, v, geom, WHITE_NT, True, 0.4,
                       SurveySigma(POS_M, HEIGHT_M, 0.0), lane)[0]
    return f.depth - depth, f.sigma_depth


@pytest.mark.slow
@pytest.mark.parametrize("beside_bigger", [False, True], ids=["lone", "beside_bigger"])
def test_sigma_depth_covers_68_percent_of_true_depths(beside_bigger):
    rng = np.random.default_rng(22)
    e = np.array([_draw(rng, beside_bigger) for _ in range(DRAWS)])
    assert np.all(e[:, 1] > 0) and np.all(np.isfinite(e[:, 1]))
    ratio = np.abs(e[:, 0]) / e[:, 1]
    within1, within2 = float(np.mean(ratio <= 1.0)), float(np.mean(ratio <= 2.0))
    assert 0.60 <= within1 <= 0.76, (within1, within2)
    assert 0.88 <= within2 <= 0.99, (within1, within2)
    # A sigma, not a bound: the errors are not all tiny against it.
    assert float(np.median(ratio)) > 0.5


def test_walk_quadratic_is_the_ar1_quadratic_form():
    rng = np.random.default_rng(3)
    n = 60
    infl = rng.standard_normal((n, 4))
    links = np.ones(n - 1, dtype=bool)
    links[[19, 40]] = False  # three passes: 0-19, 20-40, 41-59
    rhos = np.array([0.0, 0.5, 0.9, 0.3])
    seg = np.concatenate([[0], np.cumsum(~links)])
    lag = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    same = seg[:, None] == seg[None, :]
    want = [float(infl[:, c] @ (np.where(same, rhos[c] ** lag, 0.0) @ infl[:, c]))
            for c in range(4)]
    # Lags below 1e-3 of weight are left out: within that of the exact form.
    np.testing.assert_allclose(_walk_quadratic(infl, links, rhos), want, rtol=2e-3)
    assert _walk_quadratic(infl, links, rhos)[0] == pytest.approx(float(infl[:, 0] @ infl[:, 0]))


def test_ar1_part_splits_white_noise_from_a_correlated_misfit():
    rng = np.random.default_rng(5)
    n = 20000
    rho, share = 0.8, 0.6
    ar = lfilter([math.sqrt(1 - rho * rho)], [1.0, -rho], rng.standard_normal(n))
    res = math.sqrt(share) * ar + math.sqrt(1 - share) * rng.standard_normal(n)
    x, y = np.zeros(n), np.arange(n) * 0.1
    links = _walk_links(x, y, None)
    got_rho, got_share = _ar1_part(res, np.ones(n, dtype=bool), links, 0.99)
    assert got_rho == pytest.approx(rho, abs=0.03)
    assert got_share == pytest.approx(share, abs=0.04)
    # White noise alone: nothing correlated.
    r2, s2 = _ar1_part(rng.standard_normal(n), np.ones(n, dtype=bool), links, 0.99)
    assert r2 * s2 < 0.02
    # The cap on the correlation length holds.
    assert _ar1_part(res, np.ones(n, dtype=bool), links, 0.5)[0] == 0.5


def test_walk_links_break_at_lane_changes_and_gaps():
    x = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    y = np.array([0.0, 0.1, 0.2, 0.2, 0.1, 0.0, -0.5])
    lanes = np.array([0, 0, 0, 1, 1, 1, 1])
    assert _walk_links(x, y, lanes).tolist() == [True, True, False, True, True, False]
