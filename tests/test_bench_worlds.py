"""The lane benchmark's worlds are drawn from their seed, in every scenario
(`bench/accuracy_lanes.py` ``random_world``), within the ranges issue 22 sets."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.scenario import scenario_from_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from accuracy_lanes import (
    HELD_OUT_SEEDS,
    SITES,
    TUNING_SEEDS,
    Tally,
    judged_on,
    markdown,
    random_world,
)


def _layout(d: dict) -> list[tuple[float, float, float]]:
    return [(t["x"], t["y"], t["depth"]) for t in d["targets"]]


def test_held_out_seeds_are_apart_from_the_tuning_seeds() -> None:
    assert not set(TUNING_SEEDS) & set(HELD_OUT_SEEDS)
    assert len(HELD_OUT_SEEDS) == 100 and HELD_OUT_SEEDS[0] == 9000


def test_every_scenario_has_a_layout_of_its_own_per_seed() -> None:
    for name in SITES:
        layouts = [_layout(random_world(name, s)) for s in (1, 2, 3, 9000)]
        for a, b in itertools.combinations(layouts, 2):
            assert a != b, name
        # The same seed is the same world.
        assert random_world(name, 7) == random_world(name, 7)


def test_two_scenarios_of_one_seed_are_different_worlds() -> None:
    assert _layout(random_world("clean", 5)) != _layout(random_world("noisy", 5))


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(SITES)), seed=st.integers(0, 10**6))
def test_a_drawn_world_is_a_valid_scenario_within_the_issues_ranges(name: str,
                                                                     seed: int) -> None:
    d = random_world(name, seed)
    sc = scenario_from_dict(d)
    site = SITES[name]
    assert sc.sensor.kind == (site.kind or sc.sensor.kind)
    assert sc.sensor.kind in ("gradient", "total", "tf_gradient")
    assert 0.0 <= sc.survey.position_error_m <= 0.05
    assert 0.0 <= sc.survey.gait_bob_m <= 0.04
    assert 0.3 <= sc.noise.lane_offset_nT <= 2.0
    assert (sc.soil is not None) == site.soil
    area = sc.area.width * sc.area.length
    scrap = [t for t in sc.targets if t.name.startswith("scrap-")]
    assert len(scrap) <= 40.0 * area / 1000.0 + 0.5
    for t in sc.targets:
        assert 0.0 <= t.x <= sc.area.width and 0.0 <= t.y <= sc.area.length
        assert t.depth >= 0.5 * t.length_m * math.sin(math.radians(abs(t.plunge_deg))) - 1e-3
    # Carpet bombing: members of a cluster are 3-5 m from their nearest
    # fellow member, bombs 2-5 m deep.
    clusters: dict[str, list] = {}
    for t in sc.targets:
        if t.name.startswith("cluster"):
            clusters.setdefault(t.name.split("-")[0], []).append(t)
    for members in clusters.values():
        assert 2 <= len(members) <= 4
        for a in members:
            near = min(math.hypot(a.x - b.x, a.y - b.y) for b in members if b is not a)
            assert 3.0 - 1e-3 <= near <= 5.0 + 1e-3
            if a.kind == "aircraft_bomb":
                assert 2.0 <= a.depth <= 5.0 + 1e-3


def _record(name: str, peaks: list[float], bg: float | None) -> dict:
    """A scored survey with one big body missed per peak (nT)."""
    rec = {"scenario": name, "seed": 1, "method": "dipole", "kind": "total", "seconds": 1.0,
           "area": 1000.0, "false": 0, "reported": 3, "eligible": 4, "found": 2,
           "eligible_bg": 2, "found_bg": 2, "dh": [0.05, 0.07], "dz_rel": [0.1, -0.1],
           "depth_ok": [True, True], "in_sz": [True, False], "noise_nT": 1.5,
           "big_missed": [{"scenario": name, "seed": 1, "kind": "bomb", "sensor": "total",
                           "x": 1.0, "y": 2.0, "depth": 4.0, "moment": 10.0, "peak_nT": p}
                          for p in peaks]}
    if bg is not None:
        rec["bg_nT"] = bg
    return rec


def test_big_bodies_missed_under_the_soils_clutter_are_counted_apart() -> None:
    t = Tally()
    # 8 x 1.6 nT = 12.8 nT: the 30 nT body stands above the soil, 9 nT does not.
    t.add(_record("lateritic", [9.0, 30.0], bg=1.6))
    # A record from before `bg_nT` was stored falls back on the measured noise
    # (8 x 1.5 = 12 nT).
    t.add(_record("lateritic", [11.9, 12.0], bg=None))
    row = t.row()
    assert row["big_missed"] == 4 and row["big_missed_bg"] == 2
    assert row["recall"] == 0.5 and row["recall_bg"] == 1.0


def test_soil_targets_are_judged_against_the_measured_background() -> None:
    for name, site in SITES.items():
        assert judged_on(name) == (("recall_bg", "big_missed_bg") if site.soil
                                   else ("recall", "big_missed")), name
    lines = markdown([[_record("lateritic", [9.0], bg=1.6), _record("clean", [9.0], bg=0.5)]])
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.strip("|").split("|")]
            for ln in lines.splitlines()[2:]}
    # recall, big missed ... recall (bg), big missed (bg)
    assert rows["lateritic"][4:6] == ["0.500", "1"] and rows["lateritic"][11:13] == [
        "**1.000**", "**0**"]
    assert rows["clean"][4:6] == ["0.500", "1"] and rows["clean"][11:13] == ["1.000", "1"]
