"""``sim://`` pyserial URLs, opened through acquisition's transport (entry points)."""

from __future__ import annotations

import time
from importlib.metadata import entry_points

import numpy as np
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.drivers import registry
from acquisition.drivers.framing import LineFramer
from acquisition.drivers.gradline import parse_lines
from acquisition.drivers.transport import PortError, open_port, read_available
from simulator.emulators.devices import DEVICES
from simulator.scenario import load_scenario, resolve_scenario_path
from simulator.survey import simulate_survey
from simulator.urlhandlers import protocol_sim
from simulator.urlhandlers.protocol_sim import parse_sim_url, reset_devices

TINY = resolve_scenario_path("tiny").read_text()  # simulator/scenarios/tiny.toml


def drain(port, limit: int = 100_000) -> tuple[list[bytes], bytes]:
    framer = LineFramer()
    lines: list[bytes] = []
    raw = bytearray()
    for _ in range(limit):
        data = read_available(port)
        raw += data
        lines += framer.feed(data)
        if not data and port.finished:
            break
    return lines, bytes(raw)


def test_entry_point_is_installed():
    assert any(ep.name == "sim" and ep.value == "simulator.urlhandlers"
               for ep in entry_points(group="uxo.url_handlers"))


def test_sim_url_gives_the_whole_survey():
    survey = simulate_survey(load_scenario("demo", seed=1))
    port = open_port("sim://demo?protocol=gradline&speed=0&seed=1", timeout=0.05)
    assert isinstance(port, protocol_sim.Serial) and isinstance(port, serial.SerialBase)
    lines, raw = drain(port)
    assert port.read(10) == b""  # survey over: reads time out empty
    parsed = parse_lines(lines)
    assert parsed.rejects == [] and parsed.n == survey.n
    np.testing.assert_allclose(parsed.values[:, 0], survey.values[:, 0], atol=5e-4 + 1e-9)
    np.testing.assert_array_equal(parsed.counter, survey.index)
    assert parsed.info["model"] == "UXG-SIM"
    assert port.log.bytes_sent == len(raw) and port.log.lines_ok == survey.n
    assert port.write(b"PING\r\n") == 6
    port.close()
    assert not port.is_open


def test_sim_url_faults_are_counted_and_rejected():
    port = open_port("sim://demo?speed=0&faults=garbage,truncate,bitflip,checksum,drop"
                     "&fault_rate=0.05&fault_seed=3")
    lines, _ = drain(port)
    parsed = parse_lines(lines)
    log = port.log
    assert log.lines_corrupted > 50 and log.garbage_bursts > 50 and log.lines_dropped > 20
    assert len(parsed.rejects) == log.expected_rejects
    np.testing.assert_array_equal(parsed.counter, log.ok_counts)
    port.close()


def test_sim_url_with_a_file_path(tmp_path):
    p = tmp_path / "Tiny Scenario.toml"
    p.write_text(TINY)
    port = open_port(f"sim://{p.as_posix().replace(' ', '%20')}?speed=0&banner=0")
    lines, _ = drain(port)
    parsed = parse_lines(lines)
    assert parsed.n == port.survey.n == 2 * 41 and parsed.info == {}
    port.close()


def test_paced_sim_url_releases_bytes_over_time():
    port = open_port("sim://demo?speed=1", timeout=0.0)
    first = port.read(100_000)
    # At real time only the banner and the first line or two are due right away.
    assert 0 < len(first) < 400
    assert not port.finished
    port.reset_input_buffer()
    port.close()


@pytest.mark.parametrize(("url", "needle"), [
    ("sim://nope?speed=0", "nope"),
    ("sim://demo?speed=-1", "speed"),
    ("sim://demo?protocol=morse", "morse"),
    ("sim://demo?faults=meteor", "meteor"),
    ("sim://demo?colour=red", "colour"),
    ("sim://", "scenario"),
])
def test_bad_sim_urls_give_a_port_error_naming_the_problem(url, needle):
    with pytest.raises(PortError, match=needle):
        open_port(url)


def test_hangup_then_device_away_then_back_resuming():
    reset_devices()
    url = "sim://demo?speed=0&faults=hangup&reappear=new&seed=7"
    port = open_port(url)
    framer = LineFramer()
    lines: list[bytes] = []
    with pytest.raises(PortError):
        for _ in range(100_000):
            lines += framer.feed(read_available(port))
    assert not port.is_open  # the device vanished under the port
    before = parse_lines(lines)
    survey = simulate_survey(load_scenario("demo", seed=7))
    # Everything before the hang-up arrives (in-process nothing is lost in flight).
    assert before.n == (2 * survey.n) // 3 and before.rejects == []
    # While away the device cannot be opened; it comes back after hangup_wall_s.
    port2 = None
    for _ in range(200):
        try:
            port2 = open_port(url)
            break
        except PortError as exc:
            assert "not present" in str(exc)
            time.sleep(0.01)
    assert port2 is not None
    after_lines, _ = drain(port2)
    after = parse_lines(after_lines)
    assert after.counter[0] == before.counter[-1] + 1 + 10  # 1 s of lines lost
    assert after.counter[-1] == survey.index[-1] and after.info["serial"] == "SIM0001"
    assert port2.log.hangups == 1 and port2.log.lines_lost_hangup == 10
    port2.close()
    reset_devices()


def test_gradline_driver_on_a_sim_url():
    survey = simulate_survey(load_scenario("demo"))
    d = registry.create("gradline", "sim://demo?speed=0", block_size=300)
    d.open()
    blocks = []
    for _ in range(1000):
        b = d.read_block(0.05)
        if b is None:
            if d._port.finished:  # the sim port says when the survey is over
                tail = d.flush()
                if tail is not None:
                    blocks.append(tail)
                break
            continue
        blocks.append(b)
    d.close()
    assert sum(b.n for b in blocks) == survey.n  # the discarded first line is the banner
    got = np.concatenate([b.data for b in blocks])
    np.testing.assert_allclose(got[:, 0], survey.values[:, 0], atol=5e-4 + 1e-9)
    assert [b.first_index for b in blocks] == list(np.cumsum([0] + [b.n for b in blocks])[:-1])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_sim_url_parser_only_raises_value_error(text):
    for url in (text, "sim://" + text, "sim://demo?" + text):
        try:
            opts = parse_sim_url(url)
        except ValueError:
            continue
        assert opts["protocol"] in DEVICES and opts["speed"] >= 0


@pytest.mark.parametrize("protocol", sorted(DEVICES))
def test_every_protocol_on_a_sim_url_decodes_with_its_driver(protocol):
    port = open_port(f"sim://demo?protocol={protocol}&speed=0&faults=garbage,checksum"
                     f"&fault_rate=0.02&fault_seed=4")
    script = port.script
    assert script.protocol == protocol
    _, raw = drain(port)
    log = port.log
    port.close()
    d = registry.create(script.driver, "unused", **script.driver_options)
    d.feed(raw)
    assert d.counters.frames_ok == log.lines_ok > 0.9 * script.n
    assert d.counters.frames_rejected == log.expected_rejects > 0
