"""End to end with real parts: simulator on a pty -> service -> ZeroMQ -> HDF5.

These are the walking skeleton's acceptance tests: every simulated target above
the noise is reported within 0.5 m, the bus shows no sequence gaps, and the
recording holds exactly the samples the instrument emitted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from acquisition.subscriber import Subscriber
from recorder.integrity import verify
from recorder.reader import open_recording
from simulator.demo import run_demo
from simulator.emulators.gradline import FaultPlan, GradLineEmulator
from simulator.scenario import load_scenario
from simulator.survey import simulate_survey

pytestmark = pytest.mark.slow


def test_demo_chain_finds_every_target_and_loses_nothing(tmp_path):
    res = run_demo("demo", speed=0, out_dir=tmp_path, publish=f"ipc://{tmp_path}/bus")
    truth = res.survey.truth
    detectable = [i for i, t in enumerate(truth) if t.detectable]
    assert len(detectable) == len(truth) == 6  # the demo places every target above 8x noise
    matched = {p.truth_index: p for p in res.match.pairs}
    for i in detectable:
        assert i in matched, f"target {truth[i].name} not reported"
        assert matched[i].horizontal_error_m <= 0.5, (truth[i].name, matched[i])
    assert not res.match.false_picks

    # Nothing lost between the instrument and the service.
    assert res.lines_sent == res.survey.n
    assert res.summary.samples == res.survey.n
    assert res.summary.counters["frames_rejected"] == 0
    # The bus: a real subscriber saw every message in sequence.
    assert res.bus_gaps == 0 and res.bus_rejected == 0
    assert res.bus_counts["block"] == res.summary.blocks
    assert res.bus_counts["target"] == len(res.summary.targets)
    assert res.bus_counts["session_stop"] == 1

    # The archive: reopened with plain h5py and with our reader.
    with h5py.File(res.record_path, "r") as f:
        assert f.attrs["session"] == res.summary.session
    with open_recording(res.record_path) as rec:
        s = rec.streams["grad0"]
        assert s.data.shape == (res.survey.n, 1)
        # Values survive the ASCII protocol to its 3 decimals.
        assert np.allclose(s.data[:, 0], res.survey.values[:, 0], atol=6e-4)
        assert np.allclose(s.positions[:, 0], res.survey.x_rec, atol=6e-4)
        assert len(s.gaps) == 0
        kinds = [e["kind"] for e in rec.events]
        assert kinds.count("target") == len(res.summary.targets)
    assert verify(res.record_path).ok


def test_garbage_in_the_stream_is_counted_and_the_good_lines_kept(tmp_path):
    faults = FaultPlan(garbage=0.02, truncate=0.01, bitflip=0.01, checksum=0.01, seed=3)
    res = run_demo("demo", speed=0, out_dir=None, faults=faults,
                   publish=f"ipc://{tmp_path}/bus")
    log = res.emulator_log
    assert log["expected_rejects"] > 20
    c = res.summary.counters
    # Every corrupted line and garbage burst is counted; every intact line decoded.
    assert c["frames_rejected"] == log["expected_rejects"]
    assert c["frames_ok"] == log["lines_ok"] == res.summary.samples
    # Lost lines are gaps (device counter jumps), never interpolated.
    assert c["gaps"] > 0
    detectable = [i for i, t in enumerate(res.survey.truth) if t.detectable]
    found = {p.truth_index for p in res.match.pairs if p.horizontal_error_m <= 0.5}
    assert set(detectable) <= found


def test_ctrl_c_closes_the_recording_and_publishes_session_stop(tmp_path):
    survey = simulate_survey(load_scenario("demo"))
    emu = GradLineEmulator(survey, speed=5.0, banner=True)
    record = tmp_path / "run.h5"
    bus = f"ipc://{tmp_path}/bus"
    sub = Subscriber(bus)
    proc = subprocess.Popen(
        [sys.executable, "-m", "acquisition.cli", "acquire", "--driver", "gradline",
         "--port", emu.path, "--publish", bus, "--record", str(record),
         "--stream-id", "grad0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        kinds: list[str] = []
        deadline = time.monotonic() + 20
        while "descriptor" not in kinds and time.monotonic() < deadline:
            m = sub.recv(0.2)
            if m is not None:
                kinds.append(m.kind)
        emu.start()
        blocks = 0
        while blocks < 5 and time.monotonic() < deadline:
            m = sub.recv(0.2)
            if m is not None and m.kind == "block":
                blocks += 1
        assert blocks == 5
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        rest = []
        while (m := sub.recv(1.0)) is not None:
            rest.append(m)
        stops = [m for m in rest if m.kind == "session_stop"]
        assert len(stops) == 1
        samples = stops[0].header["info"]["samples"]
        assert samples > 0 and f"stopped: {samples} samples" in out
    finally:
        if proc.poll() is None:
            proc.kill()
        emu.close()
        sub.close()
    # The file is closed cleanly, verifies, and holds every sample the service saw.
    with open_recording(record) as rec:
        assert rec.closed_cleanly
        assert rec.streams["grad0"].data.shape[0] == samples
    assert verify(record).ok
    assert os.path.getsize(record) > 0
