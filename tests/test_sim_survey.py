"""Simulated surveys: walk geometry, determinism, ground truth, CSV files."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from simulator import physics
from simulator.scenario import load_scenario, parse_scenario
from simulator.survey import (
    DETECT_FACTOR,
    TRUTH_COLUMNS,
    read_truth_csv,
    simulate_survey,
    target_sources,
)

CLEAN = """
name = "clean"
seed = 2
[area]
x0 = 100.0
y0 = 200.0
width = 3.0
length = 8.0
[noise]
white_nT = 0.0
[[targets]]
name = "shell"
kind = "projectile"
x = 101.5
y = 204.0
depth = 0.8
moment_Am2 = 1.2
length_m = 0.6
azimuth_deg = 45
plunge_deg = 30
"""


@pytest.fixture(scope="module")
def demo():
    return simulate_survey(load_scenario("demo"))


def test_demo_walk_is_a_north_south_zigzag(demo):
    s = demo
    assert 1900 < s.n < 2200  # 10 lanes of ~201 samples; the pace varies a little
    assert s.values.shape == (s.n, 1)
    for arr in (s.t_s, s.x_true, s.y_true, s.z_sensor, s.x_rec, s.y_rec, s.lane, s.index):
        assert arr.shape == (s.n,)
    assert list(np.unique(s.lane)) == list(range(10))
    for lane in range(10):
        sel = s.lane == lane
        dy = np.diff(s.y_true[sel])
        assert (dy > 0).all() if lane % 2 == 0 else (dy < 0).all()
        assert np.abs(s.x_true[sel] - (lane + 0.5)).max() < 0.3  # wander of ~5 cm std
        assert s.y_true[sel].min() >= 0 and s.y_true[sel].max() <= 20 + 1e-9
    # Regular clock, no turn time: the counter never jumps.
    np.testing.assert_array_equal(s.index, np.arange(s.n))
    np.testing.assert_allclose(s.t_s, s.index / 10.0)
    # Recorded positions differ from the true ones by a few centimetres.
    err = np.hypot(s.x_rec - s.x_true, s.y_rec - s.y_true)
    assert 0.01 < float(np.sqrt(np.mean(err**2))) < 0.1
    assert s.z_sensor.min() > 0.27 and s.z_sensor.max() < 0.33


def test_demo_targets_all_clearly_above_noise(demo):
    assert len(demo.truth) == 6
    for t in demo.truth:
        assert t.detectable, t
        assert t.peak_abs_nT >= DETECT_FACTOR * demo.noise_nT
    bomb = next(t for t in demo.truth if t.kind == "aircraft_bomb")
    assert bomb.depth == 4.0 and bomb.moment_abs == pytest.approx(20.0)


@pytest.mark.parametrize("seed", [0, 2, 3, 4])
def test_demo_targets_stay_detectable_for_other_seeds(seed):
    s = simulate_survey(load_scenario("demo", seed=seed))
    assert all(t.detectable for t in s.truth)


def test_same_seed_same_survey_other_seed_differs():
    sc = load_scenario("demo")
    a, b = simulate_survey(sc), simulate_survey(sc)
    for name in ("t_s", "x_true", "y_true", "z_sensor", "x_rec", "y_rec", "lane", "values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    c = simulate_survey(sc.with_seed(99))
    assert not np.array_equal(a.values, c.values)


def test_ground_truth_peak_is_the_noise_free_signal_along_the_path():
    sc = parse_scenario(CLEAN)
    s = simulate_survey(sc)
    (t,) = s.truth
    pos, mom = target_sources(sc.targets[0], sc)
    assert pos.shape == (6, 3)
    sig = physics.gradient_reading(s.x_true, s.y_true, s.z_sensor, pos, mom, 0.65)
    assert t.peak_abs_nT == pytest.approx(np.abs(sig).max())
    np.testing.assert_allclose(s.values[:, 0], sig)  # no noise, no soil
    np.testing.assert_allclose(s.clean, sig)
    assert (t.x, t.y, t.depth) == (101.5, 204.0, 0.8)
    np.testing.assert_allclose(t.moment, mom.sum(axis=0))
    assert t.moment_abs == pytest.approx(1.2)
    assert s.x_true.min() > 100 and s.y_true.min() >= 200
    assert t.detectable


def test_noise_drift_and_offsets_are_what_the_scenario_says():
    text = CLEAN.replace("white_nT = 0.0", "white_nT = 0.7\ndrift_nT_per_min = 3.0\n"
                         "lane_offset_nT = 2.0\nheading_offset_nT = 0.5")
    s = simulate_survey(parse_scenario(text))
    resid = s.values[:, 0] - s.clean
    drift = 3.0 * s.t_s / 60
    per_lane = [np.median((resid - drift)[s.lane == k]) for k in range(3)]
    no_lane = resid - drift - np.array(per_lane)[s.lane]
    assert float(np.std(no_lane)) == pytest.approx(0.7, rel=0.15)
    # Heading offsets alternate in sign with direction around the random lane offsets.
    assert len({round(v, 3) for v in per_lane}) == 3


def test_turn_time_makes_counter_gaps():
    text = CLEAN.replace("[noise]", "[survey]\nturn_time_s = 2.5\n[noise]")
    s = simulate_survey(parse_scenario(text))
    jumps = np.diff(s.index)
    assert sorted(set(jumps.tolist())) == [1, 26]
    assert int((jumps == 26).sum()) == 2  # three lanes, two turns
    np.testing.assert_allclose(s.t_s, s.index / 10)


def test_total_field_kind_projects_on_earth_field():
    text = CLEAN.replace("[noise]", "[sensor]\nkind = 'total'\nheight_m = 0.5\n[noise]")
    sc = parse_scenario(text)
    s = simulate_survey(sc)
    pos, mom = target_sources(sc.targets[0], sc)
    exp = physics.total_field_reading(s.x_true, s.y_true, s.z_sensor, pos, mom, sc.field)
    np.testing.assert_allclose(s.values[:, 0], exp)
    assert s.channel_name == "tf"


def test_soil_adds_seeded_small_signal():
    text = CLEAN + ("[soil]\ndensity_per_m2 = 30\nmoment_Am2 = 3e-4\n")
    a = simulate_survey(parse_scenario(text))
    b = simulate_survey(parse_scenario(text))
    np.testing.assert_array_equal(a.soil_signal, b.soil_signal)
    sd = float(np.std(a.soil_signal))
    assert 0.1 < sd < 20
    # The soil does not move the walker or change the target's truth.
    c = simulate_survey(parse_scenario(CLEAN))
    np.testing.assert_array_equal(a.x_rec, c.x_rec)
    assert a.truth[0].peak_abs_nT == c.truth[0].peak_abs_nT


def test_survey_csv_follows_formats_md(demo, tmp_path):
    p = demo.write_survey_csv(tmp_path / "s.csv")
    lines = p.read_text().splitlines()
    assert lines[0] == "# uxo-survey v1"
    meta = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# ") and
                ": " in line)
    assert meta["kind"] == "gradient" and float(meta["sensor_height_m"]) == 0.3
    assert float(meta["sensor_separation_m"]) == 0.65
    assert float(meta["field_inclination_deg"]) == 23.2
    assert float(meta["lane_spacing_m"]) == 1.0
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == demo.n
    assert list(rows[0]) == ["t", "x", "y", "lane", "value"]
    k = 1234
    assert float(rows[k]["t"]) == pytest.approx(demo.t_s[k], abs=1e-3)
    assert float(rows[k]["x"]) == pytest.approx(demo.x_rec[k], abs=5e-4)
    assert float(rows[k]["y"]) == pytest.approx(demo.y_rec[k], abs=5e-4)
    assert int(rows[k]["lane"]) == demo.lane[k]
    assert float(rows[k]["value"]) == pytest.approx(demo.values[k, 0], abs=5e-5)


def test_truth_csv_round_trips(demo, tmp_path):
    p = demo.write_truth_csv(tmp_path / "t.csv")
    header = next(line for line in p.read_text().splitlines() if not line.startswith("#"))
    assert header.split(",") == list(TRUTH_COLUMNS)
    back = read_truth_csv(p)
    assert [t.name for t in back] == [t.name for t in demo.truth]
    for a, b in zip(back, demo.truth, strict=True):
        assert (a.x, a.y, a.depth) == pytest.approx((b.x, b.y, b.depth))
        np.testing.assert_allclose(a.moment, b.moment, rtol=1e-5)
        assert a.peak_abs_nT == pytest.approx(b.peak_abs_nT, abs=1e-3)
        assert a.detectable == b.detectable
