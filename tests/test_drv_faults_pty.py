"""Every protocol's emulator on a REAL pty, read by its real driver, with injected faults.

Line faults (garbage, truncation, bit flips, bad checksums, drops): the driver's
rejects equal the emulator's ``expected_rejects`` and the decoded values equal
what the same driver decodes from the intact lines alone. Unplug/replug is in
test_drv_unplug_pty.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from drv_pty_helpers import decode_bytes, make_driver, read_to_end

from acquisition.types import BlockFlags
from simulator.emulators.base import FaultPlan, LineEmulator
from simulator.emulators.devices import DEVICES, script_for
from simulator.scenario import load_scenario
from simulator.survey import simulate_survey

PROTOCOLS = sorted(DEVICES)
#: Protocols whose lines carry a device sample counter.
COUNTED = {"gradline", "borehole"}



@pytest.fixture(scope="module")
def demo():
    return simulate_survey(load_scenario("demo"))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_faults_on_a_pty_cost_exactly_the_expected_rejects(demo, protocol):
    script = script_for(protocol, demo)
    plan = FaultPlan(garbage=0.03, truncate=0.03, bitflip=0.03, checksum=0.03, drop=0.02,
                     seed=17)
    with LineEmulator(script, speed=0, faults=plan) as emu:
        drv = make_driver(script, emu.path, block_size=256)
        drv.open()  # before start: pyserial flushes what was written before open
        try:
            emu.start()
            blocks = read_to_end(drv, emu)
        finally:
            drv.close()
        assert emu.error is None
    log = emu.log
    assert log.garbage_bursts > 20 and log.lines_truncated > 20 and log.lines_dropped > 10
    assert log.lines_bitflipped > 20 and log.lines_bad_checksum > 20
    assert log.lines_sent + log.lines_dropped == script.n
    c = drv.counters
    assert c.frames_rejected == log.expected_rejects, dict(c.rejected_by_reason)
    assert c.frames_ok == log.lines_ok == sum(b.n for b in blocks)
    got = np.concatenate([b.data for b in blocks])
    _, want = decode_bytes(script, script.banner + script.intact(log.ok_lines))
    assert np.array_equal(got, want, equal_nan=True)
    if protocol in COUNTED:
        # Dropped lines are counter jumps: one GAP per run of drops, sized exactly.
        gaps = [b for b in blocks if b.flags & BlockFlags.GAP]
        assert len(gaps) == c.gaps > 0
        assert blocks[-1].first_index + blocks[-1].n == log.ok_counts[-1] + 1


def test_decoded_values_are_the_survey(demo):
    """The protocols carry the survey's readings and positions (to their resolution)."""
    v = demo.values[:, 0]
    f0 = demo.scenario.field.total_nT
    checks = {
        "g882": lambda a: np.abs(a[:, 0] - (f0 + v)).max() <= 5e-4 + 1e-9,
        "gsm19": lambda a: np.abs(a[:, 2] - v).max() <= 5e-3 + 1e-9,
        "lineproto": lambda a: np.abs(a[:, 0] - v).max() <= 5e-4 + 1e-9,
        "borehole": lambda a: np.abs(a[:, 0] - v).max() <= 5e-4 + 1e-9,
        "fgm3d": lambda a: np.abs(a[:, 2] - (demo.scenario.field.vector_nT()[2] + v)).max()
        <= 0.5 + 1e-6,  # 5 significant digits in tesla: 1 nT steps
    }
    for protocol, ok in checks.items():
        script = script_for(protocol, demo)
        _, got = decode_bytes(script, script.banner + script.intact())
        assert got.shape[0] == demo.n and ok(got), protocol
    # GNSS protocols: the recorded path back through the driver's tangent plane.
    for protocol, lat_col in (("fga", 8), ("nmea", 1)):
        script = script_for(protocol, demo)
        _, got = decode_bytes(script, script.banner + script.intact())
        blocks_pos = _positions(script, script.banner + script.intact())
        step = 2 if protocol == "nmea" else 1
        assert np.abs(blocks_pos[::step, 0] - demo.x_rec).max() < 2e-3, protocol
        assert np.abs(blocks_pos[::step, 1] - demo.y_rec).max() < 2e-3, protocol
        assert np.isfinite(got[:, lat_col]).all()


def _positions(script, data: bytes) -> np.ndarray:
    d = make_driver(script)
    d.feed(data)
    out = []
    while (b := d.flush()) is not None:
        out.append(b.positions)
    return np.concatenate(out)
