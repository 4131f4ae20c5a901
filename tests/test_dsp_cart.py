"""Multi-sensor carts written one row per sensor per instant, without lanes.

docs/formats.md allows it; before `acquisition.dsp.cart` a two-sensor cart read in
file order gave 4 lanes and five targets for its two objects (the bomblet
missed), a four-sensor cart 804 lanes and no target at all.
"""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import induced
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.cli import main as uxo
from acquisition.dsp.batch import process_survey
from acquisition.dsp.cart import cart_lanes, sensor_of_rows
from acquisition.forward import SensorGeometry, forward
from acquisition.geomag import QUANG_TRI
from acquisition.survey_csv import write_survey_csv
from acquisition.targets_io import read_targets_csv

GEO = {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}
SOURCES = [induced(3.3, 10.2, 1.2, 1.0), induced(6.1, 4.0, 0.4, 0.05)]


def cart(k: int, *, n_lanes: int = 8, turn: bool = False, west: bool = False,
         drop: float = 0.0, spacing: float = 1.0, seed: int = 1):
    """A k-sensor cart walking n_lanes / k zig-zag passes north-south.

    ``turn``: the cart turns round at each end, so its sensors' order across
    the lanes flips every pass; ``west``: the passes progress westward;
    ``drop``: share of rows lost at random (incomplete instants).
    Returns x, y, t, value, true lane.
    """
    rng = np.random.default_rng(seed)
    g = SensorGeometry.from_geometry(GEO, QUANG_TRI)
    yy = np.arange(201) * 0.1
    rows = []
    for p in range(n_lanes // k):
        y = yy if p % 2 == 0 else yy[::-1]
        lanes = [k * p + s for s in range(k)]
        if west:
            lanes = [n_lanes - 1 - ln for ln in lanes]
        order = lanes[::-1] if turn and p % 2 else lanes
        for i in range(yy.size):
            for ln in order:  # the file lists the sensors in the cart's own order
                rows.append((0.5 + spacing * ln + rng.normal(0, 0.02), y[i],
                             (p * yy.size + i) * 0.1, ln))
    x, y, t, lane = (np.array(c) for c in zip(*rows, strict=True))
    v = sum(forward(x, y, s.x, s.y, s.depth, s.moment, g) for s in SOURCES)
    v = v + rng.normal(0, 0.2, x.size)
    keep = rng.random(x.size) >= drop
    return x[keep], y[keep], t[keep], v[keep], lane[keep].astype(np.int64)


def _targets(x, y, t, v, lane=None):
    res = process_survey(x, y, v, t=t, lane=lane, geometry=GEO, field=QUANG_TRI)
    return res, sorted((round(tg.x, 6), round(tg.y, 6), round(tg.depth, 6))
                       for tg in res.targets)


def _same_lanes(derived, true):
    """Derived numbers equal the true ones up to a relabelling that keeps order."""
    pairs = set(zip(derived.tolist(), true.tolist(), strict=True))
    return len(pairs) == len(set(true.tolist())) == len(set(derived.tolist()))


@pytest.mark.parametrize("k, turn, west", [(2, False, False), (4, False, False),
                                           (2, True, False), (4, True, True)])
def test_a_cart_without_lanes_gives_the_targets_of_the_cart_with_lanes(k, turn, west):
    x, y, t, v, lane = cart(k, turn=turn, west=west)
    derived = cart_lanes(x, y, t, 1.0)
    assert derived is not None and _same_lanes(derived, lane)
    # adjacent in space, adjacent in number: lane order follows x one way
    mean_x = [x[derived == ln].mean() for ln in range(8)]
    assert np.all(np.diff(mean_x) > 0.9) or np.all(np.diff(mean_x) < -0.9)
    res, found = _targets(x, y, t, v)
    assert res.lanes == 8
    # the true lane numbers run west to east, so a westward survey given them is
    # processed in another order than walked: the same targets to a centimetre
    with_lanes = _targets(x, y, t, v, lane)[1]
    assert len(found) == len(with_lanes) == 2
    assert np.allclose(found, with_lanes, atol=0.02, rtol=0)
    if not west:
        assert found == with_lanes
    bomb = min(res.targets, key=lambda tg: abs(tg.x - 3.3) + abs(tg.y - 10.2))
    assert abs(bomb.x - 3.3) < 0.1 and abs(bomb.y - 10.2) < 0.1 and abs(bomb.depth - 1.2) < 0.1


def test_rows_missing_from_some_instants_still_go_to_their_sensors():
    x, y, t, v, lane = cart(4, turn=True, drop=0.03, seed=4)
    sensor, k = sensor_of_rows(t, x, y, 1.0)
    assert k == 4 and sensor.size == x.size and set(sensor.tolist()) == {0, 1, 2, 3}
    derived = cart_lanes(x, y, t, 1.0)
    assert derived is not None and _same_lanes(derived, lane)
    res, found = _targets(x, y, t, v)
    assert len(found) == 2 and res.lanes == 8


def test_one_sensor_with_a_coarse_clock_is_not_a_cart():
    # ten rows per whole second, 0.1 m apart along the lane
    x, y, t, _v, _ = cart(1)
    coarse = np.floor(t)
    assert sensor_of_rows(coarse, x, y, 1.0) is None
    assert cart_lanes(x, y, coarse, 1.0) is None
    assert cart_lanes(x, y, t, 1.0) is None  # distinct stamps: one sensor


def test_uxo_process_reads_a_cart_file_without_a_lane_column(tmp_path, capsys):
    x, y, t, v, _ = cart(2, turn=True)
    src = tmp_path / "cart.csv"
    write_survey_csv(src, x, y, v, t=t, metadata=GEO)
    assert "lane" not in src.read_text().splitlines()[4]
    out = tmp_path / "targets.csv"
    assert uxo(["process", str(src), "-o", str(out)]) == 0
    assert "lanes: 8" in capsys.readouterr().out
    rows = read_targets_csv(out)
    assert sorted((round(float(r["x"]), 1), round(float(r["y"]), 1)) for r in rows) == [
        (3.3, 10.2), (6.1, 4.0)]


def test_uxo_process_warns_when_rows_interleave_without_time_stamps(tmp_path, capsys):
    x, y, t, v, _ = cart(4)
    src = tmp_path / "cart.csv"
    write_survey_csv(src, x, y, v, metadata=GEO)  # neither t nor lane
    assert uxo(["process", str(src), "-o", str(tmp_path / "t.csv")]) == 0
    err = capsys.readouterr().err
    assert "samples on average: are rows of several sensors interleaved?" in err
    # the same file with time stamps: no warning
    write_survey_csv(src, x, y, v, t=t, metadata=GEO)
    assert uxo(["process", str(src), "-o", str(tmp_path / "t.csv")]) == 0
    assert "interleaved" not in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(k=st.integers(2, 5), passes=st.integers(1, 4), turn=st.booleans(),
       west=st.booleans(), spacing=st.sampled_from([0.5, 0.75, 1.0]))
def test_any_regular_cart_gets_its_lanes_back(k, passes, turn, west, spacing):
    x, y, t, _v, lane = cart(k, n_lanes=k * passes, turn=turn, west=west, spacing=spacing)
    derived = cart_lanes(x, y, t, spacing)
    assert derived is not None and _same_lanes(derived, lane)
    assert sorted(set(derived.tolist())) == list(range(k * passes))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.2, np.nan]),
                          st.floats(-5, 5), st.floats(-5, 5)), max_size=40))
def test_any_rows_give_sensors_and_lanes_or_none(rows):
    if rows:
        t, x, y = (np.array(c, dtype=np.float64) for c in zip(*rows, strict=True))
    else:
        t = x = y = np.empty(0)
    found = sensor_of_rows(t, x, y, 1.0)
    if found is not None:
        sensor, k = found
        assert k >= 2 and sensor.shape == t.shape and sensor.min() >= 0 and sensor.max() < k
    lanes = cart_lanes(x, y, t, 1.0)
    assert lanes is None or (lanes.shape == t.shape and lanes.min() >= 0)
