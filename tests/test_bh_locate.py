"""Joint location against simulator ground truth; duplicates, ghosts; flagged bad input."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.borehole.batch import BoreholeConfig, process_logs
from acquisition.borehole.logs import HoleLog
from acquisition.forward import gradient_reading
from simulator.borehole_sim import make_scenario

AREA = (0.0, 0.0, 6.0, 4.0)


def _match(targets, bodies) -> list[float]:
    errs = []
    for b in bodies:
        d = [np.linalg.norm([t.x - b.x, t.y - b.y, t.depth - b.depth]) for t in targets]
        errs.append(min(d) if d else np.inf)
    return errs


@pytest.mark.parametrize("seed", [11, 12])
def test_joint_location_vs_simulator_truth(seed: int) -> None:
    sc = make_scenario(seed, area=AREA, n_targets=1)
    res = process_logs(sc.logs)
    assert len(res.targets) == 1  # seen in many holes, reported once, no ghosts
    t, b = res.targets[0], sc.bodies[0]
    err = np.linalg.norm([t.x - b.x, t.y - b.y, t.depth - b.depth])
    assert err < 0.35
    assert len(t.holes) >= 2 and "single_hole" not in t.flags
    assert 0 < t.sigma_x < 0.5 and 0 < t.sigma_depth < 0.5
    assert t.quality > 0.5


@pytest.mark.slow
def test_two_bodies_each_reported_once() -> None:
    sc = make_scenario(21, area=(0.0, 0.0, 8.0, 4.0), n_targets=2, min_separation_m=2.5,
                       kinds=("projectile_105", "projectile_155"))
    res = process_logs(sc.logs)
    assert len(res.targets) == len(sc.bodies) == 2
    assert max(_match(res.targets, sc.bodies)) < 0.4


def _hole(hole: str, x: float, y: float, src: np.ndarray, m: np.ndarray, seed: int,
          depth: np.ndarray | None = None) -> HoleLog:
    rng = np.random.default_rng(seed)
    d = np.arange(10, 4, -0.01) if depth is None else depth
    v = gradient_reading(np.full(len(d), x), np.full(len(d), y), d, 0.65, src, m)
    return HoleLog(hole, x, y, d, v + rng.normal(0, 0.3, len(d)), t=np.arange(len(d)) * 0.1)


def test_single_hole_without_neighbours_is_flagged_not_dropped() -> None:
    src, m = np.array([0.8, 0.0, -7.0]), np.array([0.5, 0.2, -1.0])
    res = process_logs([_hole("LONE", 0.0, 0.0, src, m, 1)])
    assert len(res.targets) == 1
    t = res.targets[0]
    assert {"single_hole", "no_neighbours"} <= set(t.flags)
    assert t.method == "single_hole_distance"
    assert (t.x, t.y) == (0.0, 0.0)  # at the hole: direction unknown
    assert res.details[t.target_id]["distance_m"] == pytest.approx(0.8, abs=0.15)
    assert t.sigma_x == pytest.approx(res.details[t.target_id]["distance_m"])
    assert t.depth == pytest.approx(7.0, abs=0.15)


def test_bad_logs_are_flagged_and_still_used() -> None:
    src, m = np.array([1.0, 0.9, -7.0]), np.array([0.8, 0.3, -1.5])
    d_gap = np.concatenate([np.arange(10, 8.6, -0.01), np.arange(8.0, 4, -0.01)])
    d_back = np.concatenate([np.arange(10, 7, -0.01), np.arange(7, 7.4, 0.01),
                             np.arange(7.4, 4, -0.01)])
    holes = [_hole("A", 0, 0, src, m, 1, d_gap), _hole("B", 2, 0, src, m, 2, d_back),
             _hole("C", 1, 1.732, src, m, 3), _hole("D", 3, 1.732, src, m, 4),
             _hole("E", -1, 1.732, src, m, 5)]
    res = process_logs(holes)
    flags = {p.hole: p.flags for p in res.logs}
    assert "gap" in flags["A"] and "depth_reversal" in flags["B"]
    assert any("gap" in i for i in res.issues) and any("backwards" in i for i in res.issues)
    assert len(res.targets) == 1
    t = res.targets[0]
    assert np.linalg.norm([t.x - 1.0, t.y - 0.9, t.depth - 7.0]) < 0.15
    assert "log_issue" in t.flags


def test_duplicate_hole_ids_are_kept_apart() -> None:
    src, m = np.array([1.0, 0.0, -7.0]), np.array([0.5, 0.0, -1.0])
    res = process_logs([_hole("A", 0, 0, src, m, 1), _hole("A", 2, 0, src, m, 2)],
                       config=BoreholeConfig())
    assert sorted(p.hole for p in res.logs) == ["A", "A#2"]
    assert any("more than once" in i for i in res.issues)


def test_empty_and_noise_only_inputs() -> None:
    assert process_logs([]).targets == []
    rng = np.random.default_rng(0)
    d = np.arange(10, 4, -0.01)
    quiet = [HoleLog(f"H{i}", 2.0 * i, 0.0, d, rng.normal(0, 0.5, len(d))) for i in range(4)]
    assert process_logs(quiet).targets == []
