"""Unplug for 4 s and 12 s under the real runner: nothing sent after the device returns is lost.

The device is the gradline emulator on a real pty behind a stable symlink (as
/dev/serial/by-id is): the link vanishes when the cable is pulled and comes
back, on a new pty, when the device returns. The device talks as soon as it
is back (no hook holds it until the reader reopens, unlike
test_drv_unplug_pty), so every line it sends before the runner reopens waits
in the tty and must be read, not flushed. The runner runs with its default
retry settings, which are what is under test.

gradline lines carry a device counter, so the sample indices are the counters
and the one gap must span exactly the lines lost while unplugged.
"""

from __future__ import annotations

import contextlib
import queue
import time

import numpy as np
import pytest
from drv_pty_helpers import make_driver

from acquisition.runner import DriverRunner, RunnerItem
from acquisition.types import BlockFlags
from simulator.emulators.base import FaultPlan, LineEmulator
from simulator.emulators.devices import script_for
from simulator.scenario import load_scenario
from simulator.survey import simulate_survey

pytestmark = pytest.mark.slow

HANG_AT = 10  # the cable is pulled before this line (1 s into the survey)
AFTER = 30  # lines checked after the device returns (3 s at 10 Hz)


@pytest.fixture(scope="module")
def demo_script():
    return script_for("gradline", simulate_survey(load_scenario("demo")))


def _indices(blocks) -> list[int]:
    return [i for b in blocks for i in range(b.first_index, b.first_index + b.n)]


@pytest.mark.parametrize("away_s", [4.0, 12.0])
def test_unplug_loses_nothing_after_the_device_returns(demo_script, away_s):
    script = demo_script
    # Real time: the device is away ``away_s`` wall seconds and its clock runs on,
    # so round(away_s * 10) lines are never sent.
    plan = FaultPlan(hangups=(HANG_AT,), hangup_s=away_s, hangup_wall_s=away_s,
                     reappear="same")
    returned: list[int] = []
    q: queue.Queue[RunnerItem] = queue.Queue()
    with LineEmulator(script, speed=1.0, faults=plan,
                      on_reappear=lambda _p: returned.append(time.time_ns())) as emu:
        drv = make_driver(script, emu.path, block_size=10_000, max_block_s=0.05)
        runner = DriverRunner(drv, q).start()  # default retry settings
        items: list[RunnerItem] = []
        first_back = HANG_AT + round(away_s * script.rate_hz)
        want_last = first_back + AFTER - 1
        try:
            deadline = time.monotonic() + 10
            while not any(i.kind == "state" and i.state.state == "connected" for i in items):
                assert time.monotonic() < deadline, "never connected"
                with contextlib.suppress(queue.Empty):
                    items.append(q.get(timeout=0.05))
            emu.start()
            deadline = time.monotonic() + away_s + 20
            while max(_indices([i.block for i in items if i.kind == "block"]) or [-1]) < want_last:
                assert time.monotonic() < deadline, "the device's lines after its return never came"
                with contextlib.suppress(queue.Empty):
                    items.append(q.get(timeout=0.05))
            emu.stop()
            emu.drain(5.0)
            time.sleep(0.3)  # the runner cuts its last block within max_block_s
        finally:
            runner.stop()
        while True:
            try:
                items.append(q.get_nowait())
            except queue.Empty:
                break
        assert emu.error is None and runner.error is None
    log = emu.log
    blocks = [i.block for i in items if i.kind == "block"]
    got = _indices(blocks)
    assert log.hangups == 1 and log.lines_lost_hangup == round(away_s * script.rate_hz)
    sent_after = [c for c in log.ok_counts if c >= first_back]
    assert len(sent_after) >= AFTER
    # Every line the device sent after it came back was read: none flushed, none lost.
    assert sorted(set(got) & set(sent_after)) == sent_after
    assert got == sorted(got) and len(got) == len(set(got))
    # One gap, exactly the lines the unplug cost (the whole unplugged interval).
    gaps = [b for b in blocks if b.flags & BlockFlags.GAP]
    assert len(gaps) == 1 and gaps[0].flags & BlockFlags.RECONNECT
    before = [i for i in got if i < gaps[0].first_index]
    assert gaps[0].first_index == first_back
    assert before == list(range(len(before))) and before[-1] == HANG_AT - 1
    assert drv.counters.gaps == 1 and drv.counters.reconnects == 1
    # The reconnect says how long the device was away (from the port error to the reopen).
    connected = [i.state for i in items if i.kind == "state" and i.state.state == "connected"]
    assert len(connected) == 2 and "s away" in connected[1].reason
    assert runner.last_outage_s is not None and runner.last_outage_s >= away_s - 0.5
    assert len(returned) == 1
    # Reconnect latency after the device reappeared, reported, not asserted (bench/).
    latency = (connected[1].t_ns - returned[0]) / 1e9
    print(f"away {away_s:g} s: reconnected {latency * 1000:.0f} ms after the device returned")
    assert np.isfinite(latency)
