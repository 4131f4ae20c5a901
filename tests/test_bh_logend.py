"""Log ends: real objects beyond them are reported flagged, artefacts at them are not targets."""

from __future__ import annotations

import math

import numpy as np

from acquisition.borehole.batch import _rebase, process_logs
from acquisition.borehole.logs import HoleLog, ProcessedLog
from simulator.borehole_sim import make_scenario

AREA = (0.0, 0.0, 6.0, 4.0)


def _err(t, b) -> float:
    return float(np.linalg.norm([t.x - b.x, t.y - b.y, t.depth - b.depth]))


def test_next_layer_bomb_below_the_hole_bottoms_is_reported_flagged() -> None:
    # Holes end at 10 m; the bomb lies 0.3-0.5 m deeper, in the next layer.
    sc = make_scenario(1, area=AREA, n_targets=1, depth_range=(10.2, 10.5),
                       kinds=("aircraft_bomb",))
    res = process_logs(sc.logs)
    assert len(res.targets) == 1
    t, b = res.targets[0], sc.bodies[0]
    assert "log_end" in t.flags
    assert _err(t, b) < 0.5
    assert len(t.holes) >= 2


def test_bomb_above_the_logged_top_is_reported_flagged() -> None:
    # Holes logged from 5 m down only; the bomb is at 4.4 m.
    sc = make_scenario(1, area=AREA, n_targets=1, log_top_m=5.0, depth_range=(4.3, 4.5),
                       kinds=("aircraft_bomb",))
    res = process_logs(sc.logs)
    assert len(res.targets) == 1
    t, b = res.targets[0], sc.bodies[0]
    assert "log_end" in t.flags
    assert _err(t, b) < 0.5


def test_body_inside_the_logs_is_not_flagged_log_end() -> None:
    sc = make_scenario(11, area=AREA, n_targets=1)
    res = process_logs(sc.logs)
    assert len(res.targets) == 1
    assert "log_end" not in res.targets[0].flags


def test_one_hole_transient_at_the_start_of_the_pull_is_an_issue_not_a_target() -> None:
    # Seven quiet holes; in one the probe is still settling when the pull starts
    # (the bottom end, logs go up): 15 nT decaying over 0.3 m. No object can
    # be placed from that, and no other hole sees anything.
    rng = np.random.default_rng(3)
    d = np.arange(10.0, 5.0, -0.01)
    logs = []
    for i, (x, y) in enumerate([(0, 0), (2, 0), (4, 0), (1, 1.732), (3, 1.732), (0, 3.464),
                                (2, 3.464)]):
        v = rng.normal(0.0, 0.5, len(d))
        if i == 4:
            v += 15.0 * np.exp(-(10.0 - d) / 0.1)
        logs.append(HoleLog(f"H{i}", float(x), float(y), d, v, t=np.arange(len(d)) * 0.1))
    res = process_logs(logs)
    assert res.targets == []
    assert [a.hole for a in res.unlocated] == ["H4"]
    assert res.unlocated[0].depth_peak > 9.7
    assert any("H4" in i and "log end" in i for i in res.issues)


def _plog(depth: np.ndarray, values: np.ndarray) -> ProcessedLog:
    return ProcessedLog("A", 0.0, 0.0, "gradient", 0.65, depth, values, np.ones(len(depth), int),
                        0.2, 0.2, float(depth.min()), float(depth.max()), "up")


def test_rebase_is_not_tilted_by_a_located_bodys_misfit() -> None:
    # The seed-1010 ghost: a flat residual (offset -1 nT) at the top of a log,
    # and a strong body's misfit (+-60 nT, expected) over its lower half. An
    # unweighted line through it all left +4 nT at the log top.
    depth = np.arange(3.45, 10.0, 0.05)
    rng = np.random.default_rng(0)
    misfit_shape = np.where(depth > 6.0, 60.0 * np.sin(2.0 * (depth - 6.0)) * np.exp(
        -((depth - 8.3) / 1.2) ** 2), 0.0)
    r = -1.0 + rng.normal(0.0, 0.2, len(depth)) + misfit_shape
    expected = np.abs(misfit_shape) * 0.5 + 0.05
    pl = _plog(depth, r)
    top = depth < 5.0
    assert math.fabs(float(np.mean(_rebase(pl, r, expected)[top]))) < 0.3
    assert np.max(np.abs(_rebase(pl, r, expected)[top])) < 1.0
