"""The depth bound of `bench/depth_bound.py` is what a good fit really reaches.

The bound is a claim about every possible method, so it is checked two
ways: against the product's own least-squares fit on many noisy copies of
one anomaly (an efficient fit's spread is the bound, not less, and not much
more), and for the ordering of its columns (each one knows less than the
one before, so it can only grow).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from dsp_synth import lanes_xy

from acquisition.dsp.fitcore import run_lm
from acquisition.forward import SensorGeometry, design_matrix, induced_moment
from acquisition.geomag import QUANG_TRI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from cases import REPLAY_WORLDS
from depth_bound import depth_sigma, survey_bounds

GRAD = SensorGeometry.from_geometry({"kind": "gradient", "sensor_height_m": 0.3,
                                     "sensor_separation_m": 0.65}, QUANG_TRI)


def test_the_fit_spreads_as_the_bound_says_on_white_noise() -> None:
    """A bomblet 0.2 m deep, 0.3 m beside a lane, 300 noisy copies: the fit's
    depth spread is within 0.85-1.3 x the bound, and unbiased within 3 %."""
    x, y, lane = lanes_xy(n_lanes=4, length=6.0)
    src = (1.8, 3.0, 0.2)
    m = induced_moment(0.03, QUANG_TRI)
    clean = design_matrix(x, y, *src, GRAD) @ m
    noise = 0.5
    bound = depth_sigma(x, y, lane, src, m, GRAD, np.eye(x.size) * noise**2, offsets=False)
    assert 0.01 < bound < 0.05  # a weak bomblet: a few cm, 5-25 % of its depth
    rng = np.random.default_rng(7)
    depths = []
    for _ in range(300):
        v = clean + noise * rng.standard_normal(x.size)
        fit = run_lm(np.array([src[0] + 0.1, src[1] - 0.1, 0.3]), x, y, v, GRAD)
        depths.append(fit.x[2])
    depths = np.array(depths)
    ratio = float(np.std(depths)) / bound
    assert 0.85 < ratio < 1.3, ratio
    assert abs(float(np.mean(depths)) - src[2]) < 0.03 * src[2] + 3 * bound / np.sqrt(300)


def test_each_column_knows_less_so_its_bound_is_larger() -> None:
    """Overlap seed 1: per object, white <= + offsets <= + walk <= + neighbours
    (within rounding), and beside a neighbour strictly larger somewhere."""
    rows = survey_bounds(REPLAY_WORLDS["overlap"](1))
    assert len(rows) >= 25  # every detectable object of the survey
    grew = 0
    for _kind, depth, white, off, walk, nb in rows:
        assert depth > 0
        assert white <= off * (1 + 1e-6)
        assert off <= walk * (1 + 1e-6)
        assert walk <= nb * (1 + 1e-6)
        grew += nb > 1.2 * walk
    assert grew >= 5  # an unknown neighbour a metre away costs real depth information
