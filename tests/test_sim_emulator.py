"""UXG emulator over a REAL pty, read by pyserial and decoded by the gradline driver."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.drivers import gradline as drv
from acquisition.drivers.framing import LineFramer
from acquisition.drivers.gradline import GradLineDriver, parse_lines
from acquisition.drivers.transport import PortError
from simulator.emulators.gradline import (
    FaultPlan,
    GradLineEmulator,
    emissions,
    encode_line,
)
from simulator.pty import PtyPair
from simulator.scenario import load_scenario, parse_scenario, resolve_scenario_path
from simulator.survey import simulate_survey

TINY = resolve_scenario_path("tiny").read_text()  # simulator/scenarios/tiny.toml


@pytest.fixture(scope="module")
def demo():
    return simulate_survey(load_scenario("demo"))


@pytest.fixture(scope="module")
def tiny():
    return simulate_survey(parse_scenario(TINY))


def read_until_done(port: serial.Serial, emu: GradLineEmulator, limit_s: float = 60.0
                    ) -> list[bytes]:
    """Bulk-read the pty until the emulator is done and nothing more arrives."""
    framer = LineFramer()
    lines: list[bytes] = []
    end = time.monotonic() + limit_s  # safety net against a hung test, not a timing check
    while time.monotonic() < end:
        data = port.read(max(1, port.in_waiting))
        if data:
            lines += framer.feed(data)
        elif emu.done:
            break
    return lines


def test_every_line_decodes_and_matches_the_survey(demo):
    with GradLineEmulator(demo, speed=0) as emu:
        port = serial.Serial(emu.path, timeout=0.2)  # reader first: pyserial flushes on open
        emu.start()
        lines = read_until_done(port, emu)
        port.close()
        assert emu.error is None
    parsed = parse_lines(lines)
    assert parsed.rejects == []
    assert parsed.n == demo.n == emu.log.lines_sent == emu.log.lines_ok
    assert emu.log.banners == 1 and emu.log.lines_corrupted == 0
    np.testing.assert_array_equal(parsed.counter, demo.index)
    np.testing.assert_allclose(parsed.values[:, 0], demo.values[:, 0], atol=5e-4 + 1e-9)
    np.testing.assert_allclose(parsed.positions[:, 0], demo.x_rec, atol=5e-4 + 1e-9)
    np.testing.assert_allclose(parsed.positions[:, 1], demo.y_rec, atol=5e-4 + 1e-9)
    np.testing.assert_array_equal(parsed.device_ns, np.round(demo.t_s * 1e9).astype(np.int64))
    assert parsed.info == {"model": "UXG-SIM", "serial": "SIM0001", "rate": "10",
                           "kind": "gradient", "height": "0.30", "sep": "0.65"}
    assert emu.log.bytes_sent == sum(len(x) + 2 for x in lines)


def test_fault_counts_match_the_parser_rejects(demo):
    plan = FaultPlan(garbage=0.04, truncate=0.03, bitflip=0.03, checksum=0.03, drop=0.02,
                     seed=11)
    with GradLineEmulator(demo, speed=0, faults=plan) as emu:
        port = serial.Serial(emu.path, timeout=0.2)
        emu.start()
        lines = read_until_done(port, emu)
        port.close()
    log = emu.log
    parsed = parse_lines(lines)
    assert log.garbage_bursts > 20 and log.lines_truncated > 20
    assert log.lines_bitflipped > 20 and log.lines_bad_checksum > 20 and log.lines_dropped > 10
    assert log.lines_corrupted == log.lines_truncated + log.lines_bitflipped + \
        log.lines_bad_checksum
    assert len(parsed.rejects) == log.expected_rejects
    reasons = [r for _, r in parsed.rejects]
    assert reasons.count("checksum") >= log.lines_bad_checksum
    assert reasons.count("no_prefix") >= log.garbage_bursts
    assert parsed.n == log.lines_ok
    assert log.lines_sent + log.lines_dropped == demo.n
    np.testing.assert_array_equal(parsed.counter, log.ok_counts)
    # Every line that was neither dropped nor corrupted arrives intact.
    ok = np.isin(demo.index, parsed.counter)
    np.testing.assert_allclose(parsed.values[:, 0], demo.values[ok, 0], atol=5e-4 + 1e-9)


def test_same_plan_same_bytes(tiny):
    plan = FaultPlan(garbage=0.2, truncate=0.1, bitflip=0.1, checksum=0.1, drop=0.1, seed=4)
    a = b"".join(e.data for e in emissions(tiny, plan))
    b = b"".join(e.data for e in emissions(tiny, plan))
    c = b"".join(e.data for e in emissions(tiny, FaultPlan(garbage=0.2, seed=5)))
    assert a == b and a != c


def test_gradline_driver_reads_the_pty(tiny):
    plan = FaultPlan(checksum=0.05, garbage=0.05, seed=2)
    with GradLineEmulator(tiny, speed=0, faults=plan) as emu:
        d = GradLineDriver(emu.path, block_size=50)
        d.open()
        emu.start()
        blocks = []
        end = time.monotonic() + 30
        while time.monotonic() < end:
            b = d.read_block(0.2)
            if b is not None:
                blocks.append(b)
            elif emu.done and sum(x.n for x in blocks) >= emu.log.lines_ok:
                break
        d.close()
    # The driver drops the first (possibly partial) line on open: here the banner.
    assert sum(b.n for b in blocks) == emu.log.lines_ok
    assert d.counters.frames_rejected == emu.log.expected_rejects
    got = np.concatenate([b.data[:, 0] for b in blocks])
    ok = np.isin(tiny.index, emu.log.ok_counts)
    np.testing.assert_allclose(got, tiny.values[ok, 0], atol=5e-4 + 1e-9)
    assert d.counters.gaps == sum(1 for b in blocks if b.first_index != 0 and b.flags & 1)


def test_paced_stream_with_a_stall_delivers_everything(tiny):
    plan = FaultPlan(stalls=((30, 0.3),), seed=1)
    with GradLineEmulator(tiny, speed=40, faults=plan) as emu:
        port = serial.Serial(emu.path, timeout=0.1)
        emu.start()
        lines = read_until_done(port, emu)
        port.close()
    parsed = parse_lines(lines)
    assert emu.log.stalls == 1
    assert parsed.n == tiny.n and parsed.rejects == []


def _read_until_error(port: serial.Serial, limit_s: float = 30.0) -> tuple[list[bytes], str]:
    framer = LineFramer()
    lines: list[bytes] = []
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            data = port.read(max(1, port.in_waiting))
        except serial.SerialException:
            return lines, "SerialException"
        except OSError:
            return lines, "OSError"
        lines += framer.feed(data)
    return lines, "none"


def test_hangup_is_seen_and_device_reappears_on_a_new_path(tiny):
    plan = FaultPlan(hangups=(40,), hangup_s=1.0, hangup_wall_s=0.2, reappear="new")
    ports: list[serial.Serial] = []
    with GradLineEmulator(tiny, speed=0, faults=plan,
                          on_reappear=lambda p: ports.append(serial.Serial(p, timeout=0.2))
                          ) as emu:
        first = emu.path
        port = serial.Serial(first, timeout=0.1)
        emu.start()
        before, how = _read_until_error(port)
        port.close()
        assert how in ("SerialException", "OSError")
        second = emu.wait_for_generation(2, timeout=30)
        assert second is not None and second != first
        assert not os.path.exists(first)
        with pytest.raises(serial.SerialException):
            serial.Serial(first)
        (port2,) = ports
        assert port2.port == second
        after = read_until_done(port2, emu)
        port2.close()
    log = emu.log
    assert log.hangups == 1 and log.lines_lost_hangup == 10 and log.paths == [first, second]
    pb = parse_lines(before)
    assert pb.n <= 40 and pb.rejects == []
    np.testing.assert_array_equal(pb.counter, np.arange(pb.n))
    pa = parse_lines(after)
    assert pa.rejects == []
    assert pa.counter[0] >= 50  # lines 40..49 were lost while away
    assert pa.counter[-1] == tiny.index[-1]
    assert pa.info.get("serial") == "SIM0001"  # banner again after re-enumeration


def test_hangup_and_reappear_on_the_same_path(tiny, tmp_path):
    link = tmp_path / "ttyUXG0"
    plan = FaultPlan(hangups=(20,), hangup_s=0.5, hangup_wall_s=0.2, reappear="same")
    ports: list[serial.Serial] = []
    with GradLineEmulator(tiny, speed=0, faults=plan, link_path=link,
                          on_reappear=lambda p: ports.append(serial.Serial(p, timeout=0.2))
                          ) as emu:
        assert emu.path == str(link) and os.path.realpath(link) == emu.tty_path
        port = serial.Serial(emu.path, timeout=0.1)
        emu.start()
        _, how = _read_until_error(port)
        port.close()
        assert how in ("SerialException", "OSError")
        assert emu.wait_for_generation(2, timeout=30) == str(link)
        (port2,) = ports
        assert port2.port == str(link)
        after = read_until_done(port2, emu)
        port2.close()
        assert len(emu.log.paths) == 2  # the kernel may or may not reuse the number
    assert parse_lines(after).counter[-1] == tiny.index[-1]
    assert not link.exists()  # cleaned up on close


def test_hangup_seen_by_the_driver_as_port_error(tiny):
    plan = FaultPlan(hangups=(30,), reappear="never")
    with GradLineEmulator(tiny, speed=0, faults=plan) as emu:
        d = GradLineDriver(emu.path, block_size=10)
        d.open()
        emu.start()
        with pytest.raises(PortError):
            for _ in range(10_000):
                d.read_block(0.1)
        d.close()
        assert emu.wait(30) and emu.log.hangups == 1


def test_pty_pair_raw_mode_and_partial_writes():
    with PtyPair() as p:
        port = serial.Serial(p.path, timeout=0.5)
        payload = bytes(range(256)) * 200  # every byte value, more than the tty buffer
        got = bytearray()
        sent = 0
        while len(got) < len(payload):
            if sent < len(payload):
                sent += p.write(payload[sent:sent + 4096], timeout=0.2)
            got += port.read(port.in_waiting or 1)
        assert bytes(got) == payload  # raw: no CR/LF translation, no echo
        p.write(b"abc")
        for _ in range(500):  # the kernel queues written bytes asynchronously
            if p.unread() == 3:
                break
            time.sleep(0.01)
        assert p.unread() == 3
        assert port.read(3) == b"abc" and p.unread() == 0
        p.hangup()
        with pytest.raises((serial.SerialException, OSError)):
            port.read(1)
        port.close()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9), st.floats(0, 1e6, allow_nan=False),
       st.one_of(st.just(math.nan), st.floats(-1e5, 1e5)),
       st.one_of(st.just(math.nan), st.floats(-1e5, 1e5)),
       st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=4))
def test_encoder_agrees_with_the_driver(count, t, x, y, values):
    ours = encode_line(count, t, x, y, values)
    assert ours == drv.format_line(count, t, x, y, values)
    parsed = parse_lines([ours.rstrip(b"\r\n")], n_channels=len(values))
    assert parsed.n == 1 and parsed.counter[0] == count


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.floats(-1e4, 1e4), st.floats(0, 1, exclude_max=True),
       st.integers(0, 7))
def test_any_single_bitflip_costs_exactly_one_reject(count, value, where, bit):
    line = encode_line(count, count / 10, 1.234, -5.678, [value])
    star = len(line) - 5
    pos = 1 + int(where * (star - 1))
    bad = line[:pos] + bytes([line[pos] ^ (1 << bit)]) + line[pos + 1:]
    lines = LineFramer().feed(bad + line)
    assert len(lines) == 2
    parsed = parse_lines(lines)
    assert len(parsed.rejects) == 1 and parsed.n == 1


# --- every protocol: the fault codecs and the device scripts --------------------------------
def _decode_lines(script, lines: list[bytes]):
    from acquisition.drivers import registry

    d = registry.create(script.driver, "unused", **script.driver_options)
    d.feed(b"".join(lines))
    return d


@pytest.fixture(scope="module")
def scripts(tiny):
    from simulator.emulators.devices import DEVICES, script_for

    return {name: script_for(name, tiny) for name in DEVICES}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["gradline", "g882", "gsm19", "fga", "fgm3d", "nmea", "lineproto",
                        "borehole"]),
       st.integers(0, 10_000), st.sampled_from(["truncate", "bitflip", "checksum"]),
       st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True))
def test_every_damaged_line_costs_exactly_one_reject(scripts, name, k, fault, r1, r2):
    """Whatever the draw, a damaged line is rejected and the good line after it is kept."""
    script = scripts[name]
    i = k % (script.n - 1)
    good, nxt = script.encode(i), script.encode(i + 1)
    codec = script.codec
    bad = {"truncate": lambda: codec.truncate(good, r1),
           "bitflip": lambda: codec.bitflip(good, r1, r2),
           "checksum": lambda: codec.bad_checksum(good, r1)}[fault]()
    assert bad != good and bad.endswith(b"\r\n") and b"\n" not in bad[:-1]
    d = _decode_lines(script, [script.banner, good, bad, nxt])
    assert d.counters.frames_rejected == 1 and d.counters.frames_ok == 2


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=80).filter(lambda b: not set(b) & set(b"\n$#")))
def test_garbage_bursts_are_always_rejected(scripts, burst):
    for script in scripts.values():
        fixed = script.codec.fix_garbage(burst + b"\r\n")
        d = _decode_lines(script, [script.banner, script.encode(0), fixed, script.encode(1)])
        assert d.counters.frames_ok == 2, script.protocol
        # One reject, unless the burst happens to be a valid line of that protocol.
        assert d.counters.frames_rejected == 1, (script.protocol, fixed)


@settings(max_examples=100, deadline=None)
@given(st.floats(-5000, 5000), st.floats(-5000, 5000), st.floats(-60, 60),
       st.floats(-179, 179))
def test_inverse_tangent_plane_round_trips(x, y, lat0, lon0):
    from acquisition.drivers.gnss_attach import LocalTangentPlane
    from simulator.emulators.devices import enu_to_latlon

    plane = LocalTangentPlane(lat0, lon0)
    lat, lon = enu_to_latlon(plane, np.array([x]), np.array([y]))
    bx, by = plane.to_xy(lat, lon)
    assert abs(bx[0] - x) < 1e-6 and abs(by[0] - y) < 1e-6


def test_line_emulator_speaks_every_protocol_on_a_pty(scripts):
    from simulator.emulators.base import LineEmulator

    for name, script in scripts.items():
        with LineEmulator(script, speed=0) as emu:
            port = serial.Serial(emu.path, timeout=0.2)
            emu.start()
            lines = read_until_done(port, emu)
            port.close()
        assert emu.log.lines_ok == script.n and emu.log.bytes_sent == sum(
            len(x) + 2 for x in lines), name
        d = _decode_lines(script, [ln + b"\r\n" for ln in lines])
        assert d.counters.frames_ok == script.n and d.counters.frames_rejected == 0, name


def test_fga_garbage_holding_timestamp_does_not_replace_the_header(scripts):
    # Found by the burst fuzz above: line noise reading "Timestamp" looked like
    # a (column-less) header and every FGA line after it was rejected.
    script = scripts["fga"]
    d = _decode_lines(script, [script.banner, script.encode(0), b"Timestamp\r\n",
                               script.encode(1)])
    assert d.counters.frames_ok == 2
    assert d.counters.frames_rejected == 1
