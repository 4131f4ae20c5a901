"""Unplug and replug an emulated device under its real driver, on real ptys, every protocol.

The driver is opened on a stable symlink path (like /dev/serial/by-id), read
until the port fails (`PortError`), flushed (as `acquisition.runner` does), then
reopened on the same path; the stream must give exactly one GAP-flagged block.

Protocols with a device counter (gradline, borehole) place the gap exactly. The
others have only the host clock: `LineDriver._assemble` estimates the first
index after a reconnect as ``round(elapsed * rate) - len(block) + 1`` from the
anchor of its first block, so arrival jitter of the first and the newest
block moves it by about a sample; the tolerance `HOST_CLOCK_TOL` states what
is asserted. The emulator is paced at
`SPEED` x real time, so the driver's nominal rate is set to `SPEED` x the
device's for the host-clock estimate to mean anything.
"""

from __future__ import annotations

import itertools
import threading

import pytest
from drv_pty_helpers import make_driver, read_to_end

from acquisition.drivers.transport import PortError
from acquisition.types import BlockFlags
from simulator.emulators.base import FaultPlan, LineEmulator
from simulator.emulators.devices import DEVICES, script_for
from simulator.scenario import parse_scenario, resolve_scenario_path
from simulator.survey import simulate_survey

PROTOCOLS = sorted(DEVICES)
#: Protocols whose lines carry a device sample counter.
COUNTED = {"gradline", "borehole"}
#: Host-clock gap estimate: allowed error in samples.
HOST_CLOCK_TOL = 1

TINY = resolve_scenario_path("tiny").read_text()  # simulator/scenarios/tiny.toml


@pytest.fixture(scope="module")
def tiny():
    return simulate_survey(parse_scenario(TINY))

SPEED = 10.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unplug_replug_gives_exactly_one_gap(tiny, protocol):
    script = script_for(protocol, tiny)
    hang_at = script.n // 2
    plan = FaultPlan(hangups=(hang_at,), hangup_s=2.0, reappear="same")
    reopened = threading.Event()
    # The writer holds the new device's first bytes until the driver has reopened,
    # so the host-clock gap estimate sees every line arrive after the reopen.
    with LineEmulator(script, speed=SPEED, faults=plan,
                      on_reappear=lambda _p: reopened.wait(20)) as emu:
        # Paced at SPEED x real time, the driver's nominal rate is SPEED x the device's.
        drv = make_driver(script, emu.path, block_size=10_000, max_block_s=0.05,
                          rate_hz=script.rate_hz * SPEED)
        drv.open()
        errors = []

        def reopen() -> bool:
            errors.append(1)
            # The link points at the dead pty until the device reappears: opens fail.
            for _ in range(2000):
                try:
                    drv.open()
                    reopened.set()
                    return True
                except PortError:
                    reopened.wait(0.01)
            return False

        try:
            emu.start()
            blocks = read_to_end(drv, emu, on_port_error=reopen)
        finally:
            drv.close()
            reopened.set()
        assert emu.error is None
    log = emu.log
    assert errors == [1] and log.hangups == 1 and len(log.paths) == 2
    lost = round(plan.hangup_s * script.rate_hz)
    assert log.lines_lost_hangup == lost and log.lines_ok == script.n - lost
    assert sum(b.n for b in blocks) == log.lines_ok == drv.counters.frames_ok
    assert drv.counters.frames_rejected == 0
    gaps = [i for i, b in enumerate(blocks) if b.flags & BlockFlags.GAP]
    assert len(gaps) == 1 and drv.counters.gaps == 1
    g = gaps[0]
    assert blocks[g].flags & BlockFlags.RECONNECT
    before = blocks[g - 1].first_index + blocks[g - 1].n
    assert before == hang_at  # every line before the unplug arrived
    estimated = blocks[g].first_index - before
    if protocol in COUNTED:
        assert estimated == lost
        assert blocks[-1].first_index + blocks[-1].n == script.n
    else:
        assert abs(estimated - lost) <= HOST_CLOCK_TOL, (estimated, lost)
    # Implicit sample indices stay consecutive inside and between the other blocks.
    for a, b in itertools.pairwise(blocks):
        if not b.flags & BlockFlags.GAP:
            assert b.first_index == a.first_index + a.n
