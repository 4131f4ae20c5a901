"""Two bombs about their depth apart, fitted as one source, are split in two.

Their anomalies merge into one; a single dipole fitted to it sits between
them, nearer the stronger, and deeper than either (`broadfit.split_deep`).
The split must also come when the stronger bomb holds the single source
close to itself, or the weaker one is about as deep as that source, and
must not split one bomb.
"""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import induced, survey

from acquisition.dsp import broadfit, fitcore
from acquisition.dsp.fit import fit_sources
from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI

GRADIENT = SensorGeometry.from_geometry(
    {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)
#: 14 lanes x 20 m with a metre around them.
FOOT = (-0.5, 14.5, -1.0, 21.0)


def _single_then_split(a, b, seed=1, cfg: FitConfig = DEFAULT_FIT):
    x, y, v, lane, _geo = survey([a, b], kind="gradient", noise=0.5, seed=seed, n_lanes=14,
                                 length=20.0)
    one = fitcore.run_lm(np.array([6.5, 10.0, 3.5]), x, y, v, GRADIENT)
    return one.x, broadfit.split_deep([one.x], x, y, v, GRADIENT, 0.5, FOOT, lanes=lane,
                                       cfg=cfg)


@pytest.mark.parametrize(("weak_depth", "weak_moment"), [
    (3.1, 22.0 / 2.5),  # the single source sits at about a tenth of the way
    (3.5, 14.0),  # the weaker bomb about as deep as the single source
])
def test_a_pair_fitted_as_one_is_split_onto_both_bombs(weak_depth, weak_moment):
    strong, weak = induced(5.5, 10.4, 3.07, 22.0), induced(8.9, 9.0, weak_depth, weak_moment)
    one, out = _single_then_split(strong, weak)
    # One source between them, nearer the stronger, deeper than it.
    assert np.hypot(one[0] - strong.x, one[1] - strong.y) < 0.6
    assert one[2] > strong.depth
    assert len(out) == 2
    got = np.array(out)
    for t in (strong, weak):
        d = np.hypot(got[:, 0] - t.x, got[:, 1] - t.y)
        k = int(np.argmin(d))
        assert d[k] < 0.1, (t, got)
        assert abs(got[k, 2] - t.depth) < 0.1, (t, got)


def test_without_the_wider_centre_rule_the_pair_stays_one():
    # The rule before: the single source within 15-85 % of the way, and
    # neither of the pair deeper than it.
    _one, out = _single_then_split(induced(5.5, 10.4, 3.07, 22.0),
                                   induced(8.9, 9.0, 3.1, 22.0 / 2.5),
                                   cfg=FitConfig(split_centre=0.15, split_depth_tol=1.0))
    assert len(out) == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_bomb_in_a_gradient_window_is_not_split(seed):
    bomb = induced(7.0, 10.0, 3.1, 22.0)
    x, y, v, lane, _geo = survey([bomb], kind="gradient", noise=0.5, seed=seed, n_lanes=14,
                                 length=20.0, offsets=0.5)
    fits = fit_sources(x, y, v, GRADIENT, 0.5, lanes=lane, thr=2.5)
    assert len(fits) == 1
    # (lane offsets of 0.5 nT move it by about a decimetre)
    assert np.hypot(fits[0].x - bomb.x, fits[0].y - bomb.y) < 0.25
    assert abs(fits[0].depth - bomb.depth) < 0.15 * bomb.depth
