"""Service-level faults with real parts: unplug/replug, unwritable archive."""

from __future__ import annotations

import threading

import pytest

from acquisition.drivers import registry
from acquisition.events import StateChange
from acquisition.service import AcquisitionService, ServiceConfig
from acquisition.subscriber import Subscriber
from recorder.reader import open_recording
from simulator.emulators.gradline import FaultPlan, GradLineEmulator
from simulator.scenario import load_scenario
from simulator.survey import simulate_survey

pytestmark = pytest.mark.slow


def _run(emulator: GradLineEmulator, config: ServiceConfig, states: list[StateChange]):
    connected = threading.Semaphore(0)
    # The re-appeared device waits (bounded) for the service to reconnect
    # before it talks; the test then knows exactly which lines were lost to the
    # unplug (tests/test_drv_reconnect_pty.py has a device that talks at once).
    emulator.on_reappear = lambda path: connected.acquire(timeout=10)
    driver = registry.create("gradline", emulator.path, stream_id="grad0",
                             block_size=50, max_block_s=0.05)
    service: AcquisitionService

    def drive() -> None:
        emulator.start()
        emulator.wait()
        emulator.drain(10.0)
        service.stop()

    def on_event(ev) -> None:
        if isinstance(ev, StateChange):
            states.append(ev)
            n_connected = sum(1 for s in states if s.state == "connected")
            if ev.state == "connected" and n_connected == 1:
                threading.Thread(target=drive, daemon=True).start()
            elif ev.state == "connected":
                connected.release()

    service = AcquisitionService(driver, config, on_event=on_event,
                                 runner_options={"backoff_s": 0.05, "backoff_max_s": 0.2})
    return service.run()


def test_unplug_and_replug_mid_survey_gives_exactly_one_gap(tmp_path):
    survey = simulate_survey(load_scenario("demo"))
    faults = FaultPlan(hangups=(800,), hangup_s=1.0, hangup_wall_s=0.5, reappear="same")
    emu = GradLineEmulator(survey, speed=0, faults=faults)
    record = tmp_path / "run.h5"
    states: list[StateChange] = []
    try:
        summary = _run(emu, ServiceConfig(record=str(record), stall_s=5.0), states)
    finally:
        emu.close()
    lost = emu.log.lines_lost_hangup
    assert lost == 10  # 1 s of a 10 Hz device
    c = summary.counters
    names = [s.state for s in states]
    assert c["reconnects"] == 1 and c["gaps"] == 1, (c, [(s.state, s.reason) for s in states])
    assert names.count("reconnecting") == 1 and names.count("connected") == 2
    with open_recording(record) as rec:
        s = rec.streams["grad0"]
        assert len(s.gaps) == 1
        first_missing, n_missing = int(s.gaps[0][0]), int(s.gaps[0][1])
        # The gap ends where the device resumed (line 810). It may start before
        # line 800: lines still in the tty buffer when the cable is pulled are
        # lost too, as on real hardware (here up to the kernel's pty buffers,
        # since the emulator writes as fast as it can), and the device counter
        # shows exactly how many.
        assert first_missing + n_missing == 800 + lost
        assert 0 < first_missing <= 800
        assert summary.samples == survey.n - n_missing == s.data.shape[0]
        # Recorded indices are exactly the device counters received: the gap is
        # a jump, nothing was interpolated.
        expected = [i for i in range(survey.n) if not first_missing <= i < 800 + lost]
        assert s.sample_index.tolist() == expected
        kinds = [e["payload"].get("state") for e in rec.events if e["kind"] == "state"]
        assert "reconnecting" in kinds


def test_unwritable_archive_is_reported_and_the_bus_goes_on(tmp_path):
    survey = simulate_survey(load_scenario("demo"))
    emu = GradLineEmulator(survey, speed=0)
    # A path under a regular file cannot be created, even by root (CI runs as root,
    # so permission bits alone would not stop it).
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    bus = f"ipc://{tmp_path}/bus"
    sub = Subscriber(bus)
    states: list[StateChange] = []
    try:
        summary = _run(emu, ServiceConfig(record=str(blocker / "x.h5"), publish=bus), states)
    finally:
        emu.close()
    assert summary.recorder_error
    assert any(s.state == "recorder_error" for s in states)
    # Acquisition and processing went on without the archive.
    assert summary.samples == survey.n
    assert len(summary.targets) >= 5
    msgs = []
    while (m := sub.recv(0.5)) is not None:
        msgs.append(m)
    sub.close()
    assert msgs[-1].kind == "session_stop"
    # The state event may precede the subscriber's connection (ZeroMQ's slow
    # joiner); the heartbeat repeats the recorder's health for late joiners.
    beats = [m for m in msgs if m.kind == "heartbeat"]
    assert beats and beats[-1].header["counters"]["recorder"].startswith("error: ")
    assert "not-a-dir" in beats[-1].header["counters"]["recorder"]
