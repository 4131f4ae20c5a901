"""Driver + runner through real pseudo-terminals: garbage, stall, unplug and replug.

The device is played by the test writing UXG lines into a pty master; the
driver opens the slave through pyserial exactly as it would open /dev/ttyUSB0.
Replug is modelled as udev does it: the device comes back on a new pty and a
stable symlink (like /dev/serial/by-id/...) is pointed at it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
import tty

import pytest

from acquisition.drivers.gradline import GradLineDriver, format_line
from acquisition.runner import DriverRunner, RunnerItem
from acquisition.types import BlockFlags


class FakeDevice:
    """A real pty whose master side the test writes device bytes into."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def unplug(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def lines(first: int, n: int) -> bytes:
    return b"".join(format_line(i, i / 10, 0.5, i / 10, [float(i)]) for i in range(first,
                                                                             first + n))


def collect(q: queue.Queue[RunnerItem], until, timeout: float = 10.0) -> list[RunnerItem]:
    items: list[RunnerItem] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            items.append(q.get(timeout=0.05))
        if until(items):
            return items
    raise AssertionError(f"timed out; got {[(i.kind, i.state) for i in items]}")


def samples(items: list[RunnerItem]) -> list[int]:
    return [int(v) for i in items if i.kind == "block" for v in i.block.data[:, 0]]


def test_driver_reads_pty_skips_garbage_and_counts_it():
    dev = FakeDevice()
    drv = GradLineDriver(dev.path, block_size=10, max_block_s=0.05)
    drv.open()
    try:
        # The first line after attaching may be a half line: send a newline first.
        dev.write(b"\r\n" + lines(0, 5) + b"\x00\xffgarbage\r\n" + lines(5, 5))
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 10 and time.monotonic() < deadline:
            b = drv.read_block(0.2)
            if b is not None:
                got.extend(int(v) for v in b.data[:, 0])
        assert got == list(range(10))
        assert drv.counters.frames_ok == 10
        assert drv.counters.rejected_by_reason == {"no_prefix": 1}
    finally:
        drv.close()
        dev.unplug()


def test_unplug_replug_gives_one_gap_and_state_changes(tmp_path):
    link = tmp_path / "ttyUXG"
    dev = FakeDevice()
    link.symlink_to(dev.path)
    drv = GradLineDriver(str(link), block_size=5, max_block_s=0.05)
    q: queue.Queue[RunnerItem] = queue.Queue()
    runner = DriverRunner(drv, q, stall_s=0.5, backoff_s=0.05, backoff_max_s=0.2).start()
    try:
        collect(q, lambda it: any(i.kind == "state" and i.state.state == "connected"
                                  for i in it))
        dev.write(b"\r\n" + lines(0, 20))
        before = collect(q, lambda it: len(samples(it)) >= 20)
        assert samples(before) == list(range(20))

        dev.unplug()  # the cable is pulled; lines 20..29 are never sent
        after_unplug = collect(q, lambda it: any(
            i.kind == "state" and i.state.state == "reconnecting" for i in it))
        dev2 = FakeDevice()
        link.unlink()
        link.symlink_to(dev2.path)
        collect(q, lambda it: any(i.kind == "state" and i.state.state == "connected"
                                  for i in it))
        dev2.write(b"\r\n" + lines(30, 10))
        after = collect(q, lambda it: len(samples(it)) >= 10)
        assert samples(after) == list(range(30, 40))
        blocks = [i.block for i in after if i.kind == "block"]
        assert blocks[0].flags & BlockFlags.GAP and blocks[0].flags & BlockFlags.RECONNECT
        assert blocks[0].first_index == 30  # the 10 lost samples are a jump, not invented
        assert not any(b.flags & BlockFlags.GAP for b in blocks[1:])
        assert drv.counters.gaps == 1
        assert drv.counters.reconnects == 1
        reasons = [i.state.reason for i in after_unplug if i.kind == "state"]
        assert any("device lost" in r for r in reasons)

        # Silence: the watchdog reports a stall, then recovery when data resume.
        collect(q, lambda it: any(i.kind == "state" and i.state.state == "stalled"
                                  for i in it))
        dev2.write(lines(40, 3))
        collect(q, lambda it: any(i.kind == "state" and i.state.reason == "data resumed"
                                  for i in it))
    finally:
        runner.stop()
        if os.path.exists(link):
            link.unlink()
    assert runner.state == "closed"
    dev2.unplug()


def test_runner_gives_up_after_max_reconnects_and_says_why(tmp_path):
    drv = GradLineDriver(str(tmp_path / "no-such-tty"))
    q: queue.Queue[RunnerItem] = queue.Queue()
    runner = DriverRunner(drv, q, backoff_s=0.01, backoff_max_s=0.02, max_reconnects=2).start()
    items = collect(q, lambda it: any(i.kind == "state" and i.state.state == "closed"
                                      for i in it))
    runner.stop()
    states = [i.state.state for i in items if i.kind == "state"]
    # A state event marks each transition, not each retry; the reason counts them.
    assert states == ["connecting", "reconnecting", "closed"]
    assert "giving up after 2 retries" in items[-1].state.reason
    assert "no-such-tty" in items[-1].state.reason


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_bytes_split_anywhere_decode_the_same(chunk):
    drv = GradLineDriver("unused", block_size=1000, max_block_s=10)
    data = b"\r\n" + lines(0, 50)
    for i in range(0, len(data), chunk):
        drv.feed(data[i:i + chunk])
    block = drv.flush()
    assert block.data[:, 0].tolist() == list(range(50))
    assert block.first_index == 0 and block.n == 50


@pytest.mark.parametrize(("kind", "channel", "separated"), [
    ("gradient", "grad", True), ("total", "tf", False), ("tf_gradient", "tfgrad", True)])
def test_gradline_describes_every_sensor_kind_over_a_pty(kind, channel, separated):
    dev = FakeDevice()
    drv = GradLineDriver(dev.path, kind=kind, sensor_separation_m="0.5")
    try:
        d = drv.open()
        assert d.geometry["kind"] == kind
        assert [c.name for c in d.channels] == [channel]
        assert d.geometry.get("sensor_separation_m") == (0.5 if separated else None)
    finally:
        drv.close()
    with pytest.raises(ValueError, match="tf_gradient, got 'caesium'"):
        GradLineDriver(dev.path, kind="caesium").describe()
