"""The replay driver: identical blocks, pacing on a monotonic schedule, resume on reopen."""

from __future__ import annotations

import pytest
from rec_helpers import descriptor, indexed_block

from acquisition.drivers import registry
from acquisition.drivers.transport import PortError
from acquisition.types import BlockFlags
from recorder.sink import RecorderSink
from simulator.replay import ReplayDriver


@pytest.fixture()
def recording(tmp_path):
    desc = descriptor(rate=100.0)
    blocks, idx = [], 0
    for i in range(12):
        if i == 6:
            idx += 40
        blocks.append(indexed_block(desc, i, idx, 50, BlockFlags.GAP if i == 6 else 0))
        idx += 50
    path = tmp_path / "rep.h5"
    with RecorderSink(path, session="rp") as sink:
        sink.add_stream(desc)
        for b in blocks:
            sink.write_block(b)
    return path, desc, blocks


def _drain(drv):
    out = []
    while (b := drv.read_block(0.0)) is not None:
        out.append(b)
    return out


def test_speed_zero_yields_identical_blocks_twice(recording):
    path, desc, blocks = recording
    cls = registry.get("replay")
    assert cls is ReplayDriver
    runs = []
    for port in (str(path), f"replay://{path}"):
        drv = cls(port, speed=0)
        with drv:
            assert drv.descriptor == desc and drv.stream_id == "grad0"
            runs.append(_drain(drv))
            assert drv.exhausted
            assert drv.counters.samples == 600 and drv.counters.blocks == 12
    assert runs[0] == blocks and runs[1] == blocks


class FakeTime:
    def __init__(self) -> None:
        self.ns = 1_000
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.ns

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.ns += round(s * 1e9)


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_pacing_follows_recorded_times_divided_by_speed(recording, speed):
    path, _, blocks = recording
    t = FakeTime()
    drv = ReplayDriver(str(path), speed=speed)
    drv.clock, drv.sleep = t.clock, t.sleep
    with drv:
        start = t.ns
        got, arrivals = [], []
        while not drv.exhausted or drv.position < len(blocks):
            b = drv.read_block(0.2)
            if b is not None:
                got.append(b)
                arrivals.append(t.ns - start)
    assert got == blocks
    ends = [b.t0_ns + round(b.n * 1e9 / b.rate_hz) for b in blocks]
    assert arrivals == [round((e - ends[0]) / speed) for e in ends]
    assert max(t.sleeps) <= 0.2  # never sleeps past the caller's timeout


def test_behind_schedule_catches_up_without_sleeping(recording):
    path, _, blocks = recording
    t = FakeTime()
    drv = ReplayDriver(str(path), speed=1.0)
    drv.clock, drv.sleep = t.clock, t.sleep
    with drv:
        assert drv.read_block(1.0) == blocks[0]
        t.ns += 3_000_000_000  # the caller stalled for 3 s of recording time
        sleeps = len(t.sleeps)
        burst = [drv.read_block(0.0) for _ in range(5)]
        assert burst == blocks[1:6] and len(t.sleeps) == sleeps
        assert drv.read_block(0.0) is None  # block 6 (after a 0.4 s gap) is not due yet


def test_reopen_resumes_and_never_duplicates(recording):
    path, _, blocks = recording
    drv = ReplayDriver(str(path), speed=0)
    drv.open()
    first = [drv.read_block(0) for _ in range(5)]
    drv.close()
    drv.open()
    rest = _drain(drv)
    drv.close()
    assert first + rest == blocks
    with pytest.raises(PortError):
        drv.read_block(0)


def test_bad_ports_and_stream_choice(tmp_path, recording):
    path, _desc, _ = recording
    with pytest.raises(PortError, match="cannot open"):
        ReplayDriver(str(tmp_path / "nope.h5")).open()
    with pytest.raises(PortError, match="no stream"):
        ReplayDriver(str(path), stream="other").open()
    two = tmp_path / "two.h5"
    with RecorderSink(two, session="x") as sink:
        sink.add_stream(descriptor("a"))
        sink.add_stream(descriptor("b"))
        sink.write_block(indexed_block(descriptor("b"), 0, 0, 5))
    with pytest.raises(PortError, match="several streams"):
        ReplayDriver(str(two)).open()
    with ReplayDriver(str(two), stream="b", speed=0) as drv:
        assert drv.read_block(0).n == 5
    with pytest.raises(ValueError):
        ReplayDriver(str(path), speed=-1)
