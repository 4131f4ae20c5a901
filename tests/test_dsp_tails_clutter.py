"""Tails of strong bodies are not second targets; soil clutter without a calibration.

Body data come from `simulator.physics` (munition-case profile, its own dipole
code), not from the DSP's forward model.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from dsp_synth import lanes_xy, survey
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dsp_calibration import soil

from acquisition.dsp import droprules
from acquisition.dsp.batch import process_survey
from acquisition.dsp.calibration import calibrate_soil
from acquisition.dsp.clutter import clutter_threshold
from acquisition.dsp.fit import fit_sources
from acquisition.dsp.fitconfig import FitConfig
from acquisition.dsp.laneconfig import LaneConfig, config_from_calibration
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI
from simulator import physics
from simulator.scenario import scenario_from_dict
from simulator.scoring import match
from simulator.survey import simulate_survey

TOTAL = SensorGeometry.from_geometry({"kind": "total", "sensor_height_m": 0.3}, QUANG_TRI)


def _shell(x, y, cx, cy, depth, m_abs, length, az, plunge):
    axis = physics.axis_vector(az, plunge)
    m = physics.induced_moment(m_abs, QUANG_TRI, axis=axis, axial_gain=2.0)
    pos, mom = physics.line_of_dipoles(np.array([cx, cy, -depth]), m, length, az, plunge,
                                       profile="shell")
    z = np.full(x.size, 0.3)
    return physics.reading("total", x, y, z, pos, mom, field=QUANG_TRI)


def _data(weak: bool, seed: int = 5):
    # Total field over a shallow projectile standing nose-down (the case of
    # the benchmark's total-field seed 1: its far field is no point's).
    x, y, _ = lanes_xy(10, 14.0)
    v = _shell(x, y, 5.2, 6.0, 0.21, 1.1, 0.6, 323.0, 51.0)
    if weak:
        pos = np.array([[8.2, 7.8, -0.6]])
        mom = physics.induced_moment(0.08, QUANG_TRI)[None, :]
        v = v + physics.reading("total", x, y, np.full(x.size, 0.3), pos, mom, field=QUANG_TRI)
    v = v + np.random.default_rng(seed).normal(0, 0.3, x.size)
    return x, y, v


def _fit(x, y, v):
    return fit_sources(x, y, v, TOTAL, 0.3, thr=1.5, max_residual_rounds=3,
                       lanes=np.round(x - 0.5).astype(int))


def _bench_survey(name: str, seed: int):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from cases import REPLAY_WORLDS

    sc = scenario_from_dict(REPLAY_WORLDS[name](seed))
    return sc, simulate_survey(sc)


def process_sim(sc, sim, fit: FitConfig | None = None):
    """`process_survey` on a simulated survey, with its sensor geometry (and
    the fit's settings ``fit`` if given)."""
    geo = {"kind": sim.kind, "sensor_height_m": sc.sensor.height_m,
           "sensor_separation_m": sc.sensor.separation_m}
    return process_survey(sim.x_rec, sim.y_rec, sim.values, t=sim.t_s, geometry=geo,
                          field=sc.field, config=None if fit is None else LaneConfig(fit=fit))


@functools.cache
def bench_processed(name: str, seed: int):
    """A bench survey (scenario, simulation) and what `process_survey` makes
    of it, once per test session (several tests read the same survey)."""
    sc, sim = _bench_survey(name, seed)
    return sc, sim, process_sim(sc, sim)


def _false_picks(sc, sim) -> tuple[int, int]:
    res = process_sim(sc, sim)
    truth = np.array([[t.x, t.y, t.depth] for t in sim.truth])
    rep = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    m = match(truth, rep, gate_m=1.0)
    found = {p.truth_index for p in m.pairs}
    missed = sum(1 for i, t in enumerate(sim.truth) if t.detectable and i not in found)
    return len(m.false_picks), missed


@pytest.mark.parametrize("tail", [(7.4, 8.0, 2.3), (5.2, 9.0, 2.0), (8.2, 7.8, 0.6),
                                  (2.5, 4.0, 2.0)])
def test_drop_tails_drops_a_source_that_only_models_the_body(tail):
    x, y, v = _data(weak=False)
    (body,) = _fit(x, y, v)
    b = np.array(body.ends) if body.ends is not None else np.array([body.x, body.y, body.depth])
    out = droprules.drop_tails([b, np.array(tail)], x, y, v, TOTAL, 0.3)
    assert len(out) == 1
    np.testing.assert_allclose(out[0][:2], b[:2], atol=0.3)


def test_drop_tails_keeps_a_real_weak_object_and_drops_a_tail_beside_it():
    x, y, v = _data(weak=True)
    body = next(f for f in _fit(x, y, v) if math.hypot(f.x - 5.2, f.y - 6.0) < 0.25)
    b = np.array(body.ends) if body.ends is not None else np.array([body.x, body.y, body.depth])
    real = np.array([8.2, 7.8, 0.6])
    assert len(droprules.drop_tails([b, real], x, y, v, TOTAL, 0.3)) == 2
    tail = np.array([2.5, 4.0, 2.0])
    assert len(droprules.drop_tails([b, tail], x, y, v, TOTAL, 0.3)) == 1


def test_real_weak_object_beside_the_body_is_kept():
    x, y, v = _data(weak=True)
    fits = _fit(x, y, v)
    near = [f for f in fits if math.hypot(f.x - 8.2, f.y - 7.8) < 0.4]
    assert len(near) == 1 and abs(near[0].depth - 0.6) < 0.25
    assert any(math.hypot(f.x - 5.2, f.y - 6.0) < 0.25 for f in fits)


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(0.2, 5.0), shift=st.floats(0.0, 3.0), n=st.integers(2000, 20000),
       area=st.floats(200.0, 5000.0), seed=st.integers(0, 2**31))
def test_clutter_threshold_recovers_an_exponential_tail(scale, shift, n, area, seed):
    peaks = shift + np.random.default_rng(seed).exponential(scale, n)
    thr = clutter_threshold(peaks, area, 1.0)
    # Exponential tail: P(a > t) = exp(-(t - shift) / scale) = rate × area / n.
    rarity = min(area / 1000.0 / n, 0.1)
    want = shift + scale * math.log(1.0 / rarity)
    assert thr == pytest.approx(want, rel=0.15, abs=0.1 * scale)
    # Rarer exceedances ask for a higher threshold.
    assert clutter_threshold(peaks, area, 0.5) >= thr


@given(n=st.integers(0, 99))
def test_clutter_threshold_needs_enough_peaks(n):
    assert math.isnan(clutter_threshold(np.ones(n), 100.0, 1.0))


def test_uncalibrated_soil_survey_gets_a_clutter_threshold():
    xs, ys, vs, _, geo = survey([], n_lanes=10, length=30, noise=0.3, seed=3)
    vs = vs + soil(xs, ys, 4)
    plain = process_survey(xs, ys, vs, geometry=geo, field=QUANG_TRI,
                           config=LaneConfig(clutter_rate_per_1000m2=0.0))
    auto = process_survey(xs, ys, vs, geometry=geo, field=QUANG_TRI)
    assert plain.threshold_nT == pytest.approx(5.0 * plain.noise_nT)
    assert auto.threshold_nT > 1.1 * plain.threshold_nT
    assert len(auto.targets) < len(plain.targets)
    # Close to what a calibration on clean ground of the same soil sets.
    x, y, _ = lanes_xy(3, 30.0)
    cal = calibrate_soil(soil(x, y, 1) + np.random.default_rng(2).normal(0, 0.3, x.size))
    assert 0.6 * cal.threshold_nT < auto.threshold_nT < 1.6 * cal.threshold_nT
    # A calibration, when given, is what counts.
    calibrated = process_survey(xs, ys, vs, geometry=geo, field=QUANG_TRI,
                                config=config_from_calibration(cal))
    assert calibrated.threshold_nT == pytest.approx(cal.threshold_nT)
