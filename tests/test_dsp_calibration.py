"""Soil calibration on synthetic magnetic soil, and its use by the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import Source, induced, lanes_xy, survey

from acquisition.dsp.batch import process_survey
from acquisition.dsp.calibration import CalibrationError, calibrate_soil
from acquisition.dsp.laneconfig import config_from_calibration
from acquisition.forward import SensorGeometry, forward
from acquisition.geomag import QUANG_TRI

GEO = {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}


def soil(x, y, seed, density=8.0, m=3e-4):
    """Many weak shallow dipoles (lateritic concretions) under the lanes."""
    rng = np.random.default_rng(seed)
    g = SensorGeometry.from_geometry(GEO, QUANG_TRI)
    x0, x1, y0, y1 = x.min() - 1, x.max() + 1, y.min() - 1, y.max() + 1
    k = rng.poisson(density * (x1 - x0) * (y1 - y0))
    v = np.zeros(x.size)
    for sx, sy, d, mm in zip(rng.uniform(x0, x1, k), rng.uniform(y0, y1, k),
                             rng.uniform(0.02, 0.3, k), m * rng.lognormal(0, 0.8, k),
                             strict=True):
        near = (np.abs(x - sx) < 1.5) & (np.abs(y - sy) < 1.5)
        v[near] += forward(x[near], y[near], sx, sy, d, mm * QUANG_TRI.unit_vector(), g)
    return v


def test_calibration_measures_white_noise_on_quiet_ground():
    v = 3.0 + np.random.default_rng(0).normal(0, 0.5, 2000)
    cal = calibrate_soil(v)
    assert cal.level_nT == pytest.approx(3.0, abs=0.05)
    assert cal.white_noise_nT == pytest.approx(0.5, rel=0.1)
    assert cal.background_nT == pytest.approx(0.5, rel=0.1)
    assert cal.threshold_nT == pytest.approx(2.5, rel=0.15)
    md = cal.to_metadata()
    assert md["soil_threshold_nT"] == pytest.approx(cal.threshold_nT, abs=1e-3)


def test_magnetic_soil_raises_threshold_and_cuts_false_picks():
    x, y, _ = lanes_xy(3, 30.0)
    clean = soil(x, y, 1) + np.random.default_rng(2).normal(0, 0.3, x.size)
    cal = calibrate_soil(clean)
    assert cal.background_nT > 2 * cal.white_noise_nT  # soil, not sensor, dominates
    assert cal.threshold_nT > 5 * cal.white_noise_nT
    # a survey over the same kind of soil with one real object
    xs, ys, vs, _, geo = survey([induced(4.3, 12.0, 1.0, 1.5)], n_lanes=8, length=24,
                                noise=0.3, seed=3)
    vs = vs + soil(xs, ys, 4)
    naive = process_survey(xs, ys, vs, geometry=geo, field=QUANG_TRI,
                           config=config_from_calibration(cal, noise_nT=0.3, threshold_nT=1.5))
    calibrated = process_survey(xs, ys, vs, geometry=geo, field=QUANG_TRI,
                                config=config_from_calibration(cal))
    assert calibrated.threshold_nT == pytest.approx(cal.threshold_nT)
    assert len(calibrated.targets) < len(naive.targets)
    hit = [t for t in calibrated.targets if np.hypot(t.x - 4.3, t.y - 12.0) < 0.3]
    assert len(hit) == 1 and abs(hit[0].depth - 1.0) < 0.2


def test_too_little_data():
    with pytest.raises(CalibrationError):
        calibrate_soil(np.ones(10))
    with pytest.raises(CalibrationError):
        calibrate_soil(np.full(100, np.nan))


def test_source_helper_is_used():
    assert Source(0, 0, 1, (0, 0, 1)).depth == 1
