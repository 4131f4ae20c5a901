"""Streaming borehole pipeline: anomaly events per hole, target events after each hole."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.borehole.batch import process_logs
from acquisition.borehole.logs import condition
from acquisition.borehole.pipeline import BoreholePipeline
from acquisition.events import Anomaly, Target
from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor
from simulator.borehole_sim import make_scenario

DESC = StreamDescriptor(
    stream_id="probe0", instrument="UXB", serial="1", rate_hz=10.0,
    channels=(ChannelSpec("grad", "nT"), ChannelSpec("depth", "m"), ChannelSpec("direction", "1")),
    geometry={"kind": "borehole_gradient", "probe": "gradiometer", "sensor_separation_m": 0.65,
              "hole": ""})


def _blocks(log, sizes: list[int], start: int) -> list[SampleBlock]:
    data = np.column_stack([log.values, log.depth, -np.ones(len(log.depth))])
    out, i, seq = [], 0, 0
    while i < len(data):
        n = sizes[seq % len(sizes)]
        out.append(SampleBlock("probe0", seq, start + i, int(1e9 * (start + i) / 10), 10.0,
                               data[i:i + n]))
        i += n
        seq += 1
    return out


def _run(sc, sizes: list[int]) -> tuple[list[Anomaly], list[Target], BoreholePipeline]:
    pipe = BoreholePipeline(DESC, k=5.0)
    events: list = []
    start = 0
    for lg in sc.logs:
        events += pipe.start_hole(lg.hole, lg.x, lg.y)
        for b in _blocks(lg, sizes, start):
            events += pipe.process(b)
        start += len(lg.depth)
    events += pipe.finish()
    return ([e for e in events if isinstance(e, Anomaly)],
            [e for e in events if isinstance(e, Target)], pipe)


@pytest.fixture(scope="module")
def scenario():
    return make_scenario(31, area=(0.0, 0.0, 4.0, 3.0), n_targets=1)


@pytest.fixture(scope="module")
def run_a(scenario):
    return _run(scenario, [250])


def test_anomalies_per_hole_while_logging(scenario, run_a) -> None:
    anomalies, _, _ = run_a
    b = scenario.bodies[0]
    seen = {h for h, p in b.peak_by_hole.items() if p > 100 * scenario.noise_nT}
    assert seen <= {a.hole for a in anomalies}
    for a in anomalies:
        if a.hole in seen:
            assert abs(a.depth - b.depth) < 1.5
            assert a.width_m > 0  # single-hole distance estimate


def test_targets_updated_with_neighbours(scenario, run_a) -> None:
    _, targets, pipe = run_a
    b = scenario.bodies[0]
    final = pipe.targets
    assert len(final) == 1  # one object, one id however many holes saw it
    t = final[0]
    assert np.linalg.norm([t.x - b.x, t.y - b.y, t.depth - b.depth]) < 0.35
    revs = [e.revision for e in targets if e.target_id == t.target_id]
    assert revs == sorted(revs) and revs[0] == 0 and len(revs) >= 2
    # Anything else emitted along the way was withdrawn by the end.
    others = {e.target_id for e in targets} - {t.target_id}
    for tid in others:
        assert "withdrawn" in [e for e in targets if e.target_id == tid][-1].flags


@pytest.mark.slow
def test_chunking_does_not_change_the_result(scenario, run_a) -> None:
    _, _, pipe_a = run_a
    _, _, pipe_b = _run(scenario, [7, 130, 33, 501])
    ta, tb = pipe_a.targets, pipe_b.targets
    assert len(ta) == len(tb)
    for x, y in zip(ta, tb, strict=True):
        assert (x.x, x.y, x.depth) == pytest.approx((y.x, y.y, y.depth), abs=1e-9)


def test_gap_blocks_flag_the_hole() -> None:
    pipe = BoreholePipeline(DESC, hole="G1", collar_x=1.0, collar_y=2.0)
    d = np.arange(10, 5, -0.01)
    data = np.column_stack([np.zeros_like(d), d, -np.ones_like(d)])
    pipe.process(SampleBlock("probe0", 0, 0, 0, 10.0, data[:200]))
    pipe.process(SampleBlock("probe0", 1, 300, 0, 10.0, data[300:], flags=BlockFlags.GAP))
    assert pipe.finish() == []
    assert "gap" in pipe.logs[0].flags
    assert (pipe.logs[0].x, pipe.logs[0].y) == (1.0, 2.0)


def test_descriptor_without_depth_is_refused() -> None:
    bad = StreamDescriptor("p", "x", "1", 10.0, (ChannelSpec("grad", "nT"),))
    with pytest.raises(ValueError, match="depth"):
        BoreholePipeline(bad)


def _run_tracked(sc) -> tuple[list[tuple[Anomaly, str, float]], BoreholePipeline]:
    """Run the pipeline block by block; note for each anomaly event the hole the probe
    was in and its depth when the event came out (None hole: at a hole's end)."""
    pipe = BoreholePipeline(DESC)
    out: list[tuple[Anomaly, str, float]] = []
    start = 0
    for lg in sc.logs:
        for e in pipe.start_hole(lg.hole, lg.x, lg.y):
            if isinstance(e, Anomaly):
                out.append((e, "", float("nan")))
        for b in _blocks(lg, [50], start):
            for e in pipe.process(b):
                if isinstance(e, Anomaly):
                    out.append((e, lg.hole, float(b.data[-1, 1])))
        start += len(lg.depth)
    for e in pipe.end_hole():
        if isinstance(e, Anomaly):
            out.append((e, "", float("nan")))
    return out, pipe


@pytest.fixture(scope="module")
def two_bodies():
    # 15 holes, a bomb and a projectile: enough for incremental updates to differ.
    return make_scenario(1003, area=(0.0, 0.0, 6.0, 4.0), n_targets=2,
                         kinds=("aircraft_bomb", "projectile_155"))


@pytest.fixture(scope="module")
def tracked(two_bodies):
    return _run_tracked(two_bodies)


@pytest.mark.slow
def test_anomaly_events_come_out_while_the_probe_is_in_the_hole(two_bodies, tracked) -> None:
    events, _ = tracked
    strong = {h for b in two_bodies.bodies for h, p in b.peak_by_hole.items()
              if p > 100 * two_bodies.noise_nT}
    in_hole = [(e, h, d) for e, h, d in events if h]
    # Every hole that saw a body clearly reported it before the probe left it...
    assert strong <= {e.hole for e, _, _ in in_hole}
    for e, h, d in in_hole:
        assert e.hole == h  # ... from that hole,
        assert d < e.depth  # once the probe had been pulled up past the source.


@pytest.mark.slow
def test_live_targets_equal_the_batch_after_the_last_hole(two_bodies, tracked) -> None:
    _, pipe = tracked
    batch = sorted(process_logs(two_bodies.logs).targets, key=lambda t: t.depth)
    # The last hole's incremental update: the same bodies, near the batch.
    inc = sorted(pipe.targets, key=lambda t: t.depth)
    assert len(inc) == len(batch) == 2
    for a, b in zip(inc, batch, strict=True):
        assert np.linalg.norm([a.x - b.x, a.y - b.y, a.depth - b.depth]) < 0.3
    events = pipe.finish()  # end of the layer: consolidated
    live = sorted(pipe.targets, key=lambda t: t.depth)
    assert len(live) == 2
    for a, b in zip(live, batch, strict=True):
        assert (a.x, a.y, a.depth) == pytest.approx((b.x, b.y, b.depth), abs=0.003)
        assert a.holes == b.holes and a.flags == b.flags
    # What moved came out as new revisions of the same ids, nothing new.
    assert all(isinstance(e, Target) and e.revision >= 1 for e in events)
    assert pipe.finish() == []  # already consolidated


def test_incremental_update_holds_what_the_new_hole_cannot_change() -> None:
    # Two bodies 10 m apart; the last hole is logged next to the second one.
    sc = make_scenario(3, area=(0.0, 0.0, 14.0, 3.0), n_targets=2, min_separation_m=8.0,
                       kinds=("projectile_155",))
    far, near = sorted(sc.bodies, key=lambda b: b.x)
    last = max(sc.logs, key=lambda lg: lg.x)
    plogs = [condition(lg) for lg in sc.logs if lg is not last]
    prior = process_logs(plogs)
    assert len(prior.targets) == 2
    new = process_logs([*plogs, condition(last)], prior=prior, around=(last.x, last.y))
    full = process_logs([*plogs, condition(last)])
    by_x = lambda ts: sorted(ts, key=lambda t: t.x)  # noqa: E731
    held_before, held_after = by_x(prior.targets)[0], by_x(new.targets)[0]
    assert abs(held_before.x - far.x) < 0.4
    # The far body is held exactly; the near one is solved again with the new hole.
    assert (held_after.x, held_after.y, held_after.depth) == (
        held_before.x, held_before.y, held_before.depth)
    a, b = by_x(new.targets)[1], by_x(full.targets)[1]
    assert last.hole in a.holes
    assert np.linalg.norm([a.x - b.x, a.y - b.y, a.depth - b.depth]) < 0.05
    assert np.linalg.norm([a.x - near.x, a.y - near.y, a.depth - near.depth]) < 0.4
