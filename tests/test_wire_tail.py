"""`uxo tail`: exact one-liners, JSON lines, and runs against a live publisher."""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from acquisition import messages as m
from acquisition.events import Anomaly, Counters, StateChange, Target
from acquisition.publisher import Publisher
from acquisition.tail import format_flags, format_message, register_tail, run_tail, to_json
from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor

T = int(datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC).timestamp()) * 1_000_000_000 + 234_000_000


def wire(msg: m.Message, seq: int = 0) -> m.Message:
    msg.header["seq"] = seq
    return m.decode(m.encode(msg))


def line(msg: m.Message) -> str:
    return format_message(wire(msg), tz=UTC)


def test_target_line():
    t = Target("grad0", 3, 4.52, 10.31, 1.2, (0.0, 0.0, 2.1), 0.93)
    assert line(m.target_message(t, "s1", T)) == (
        "12:00:01.234 target grad0 #3 x=4.52 y=10.31 depth=1.20 m moment=2.10 A m2 "
        "projectile q=0.93"
    )


def test_target_line_with_uncertainty_revision_and_flags():
    t = Target("grad0", 3, 4.52, 10.31, 1.2, (0.0, 0.03, 0.0), 0.5, 0.05, 0.06, 0.1,
               lanes=(4, 5), flags=("edge",), revision=2)
    assert line(m.target_message(t, "s1", T)) == (
        "12:00:01.234 target grad0 #3 x=4.52 y=10.31 depth=1.20 m moment=0.03 A m2 "
        "scrap_or_bomblet q=0.50 sigma x/y/depth=0.05/0.06/0.10 m rev=2 lanes=4,5 flags=edge"
    )


def test_anomaly_lines():
    a = Anomaly("grad0", 7, 3, 1200, T, 4.5, 10.0, -12.34, -1, 0.8)
    assert line(m.anomaly_message(a, "s1", T)) == (
        "12:00:01.234 anomaly grad0 #7 lane=3 x=4.50 y=10.00 amp=-12.3 nT pol=- width=0.80 m"
    )
    probe = Anomaly("probe", 2, 0, 50, T, 1.0, 2.0, 3.0, 1, depth=6.25, hole="B12")
    assert line(m.anomaly_message(probe, "s1", T)) == (
        "12:00:01.234 anomaly probe #2 lane=0 x=1.00 y=2.00 amp=3.0 nT pol=+ hole=B12 "
        "depth=6.25 m"
    )


def test_state_line():
    s = StateChange("grad0", "stalled", "no bytes for 2.0 s")
    assert line(m.state_message(s, "s1", T)) == (
        "12:00:01.234 state grad0 stalled: no bytes for 2.0 s"
    )
    assert line(m.state_message(StateChange("grad0", "connected"), "s1", T)) == (
        "12:00:01.234 state grad0 connected"
    )


def test_heartbeat_line():
    c = Counters(bytes=34567, frames_ok=1200, blocks=12, samples=1200, gaps=1)
    c.reject("checksum", 2)
    c.reject("short", 1)
    msg = m.heartbeat_message("grad0", "s1", T, c.to_dict(), clock_offset_ns=-1500,
                              publisher={"sent": 40, "dropped": 0})
    assert line(msg) == (
        "12:00:01.234 heartbeat grad0 blocks=12 samples=1200 bytes=34567 ok=1200 "
        "rejected=3 (checksum=2 short=1) gaps=1 resyncs=0 reconnects=0 stalls=0 "
        "clock_offset_ns=-1500 publisher.dropped=0 publisher.sent=40"
    )


def test_session_lines():
    msg = m.session_message("session_start", "s1", T, operator="Lan", site="QT-01", lat=16.75)
    assert line(msg) == "12:00:01.234 session_start s1 lat=16.75 operator=Lan site=QT-01"
    assert line(m.session_message("session_stop", "s1", T, samples=100)) == (
        "12:00:01.234 session_stop s1 samples=100"
    )


def test_descriptor_line():
    d = StreamDescriptor("grad0", "FEREX 4.032", "SN123", 10.0,
                         (ChannelSpec("grad", "nT"), ChannelSpec("temp", "degC")),
                         {"kind": "gradient", "sensor_height_m": 0.3}, 2, "gradline")
    assert line(m.descriptor_message(d, "s1", T)) == (
        "12:00:01.234 descriptor grad0 FEREX 4.032 s/n SN123 10 Hz "
        "channels=grad[nT],temp[degC] positions=2D driver=gradline kind=gradient "
        "sensor_height_m=0.3"
    )


def test_block_lines():
    b = SampleBlock("grad0", 12, 1200, T, 10.0, np.zeros((5, 1)), flags=BlockFlags.GAP)
    assert line(m.block_message(b, "s1", T)) == (
        "12:00:01.234 block grad0 seq=12 first=1200 n=5 flags=GAP"
    )
    b2 = SampleBlock("grad0", 13, 1205, T, 10.0, np.zeros((10, 1)),
                     flags=BlockFlags.RESYNC | BlockFlags.SIMULATED)
    assert line(m.block_message(b2, "s1", T, decimation=5)) == (
        "12:00:01.234 block grad0 seq=13 first=1205 n=2 dec=5 flags=RESYNC|SIMULATED"
    )
    assert format_flags(BlockFlags.GAP | 256) == "GAP|0x100"


def test_unexpected_body_falls_back_to_a_generic_line():
    msg = m.target_message(Target("grad0", 1, 0, 0, 1, (0, 0, 1), 1), "s1", T)
    msg.header["target"] = {"weird": [1, 2]}
    assert line(msg) == '12:00:01.234 target grad0 seq=0 {"target":{"weird":[1,2]}}'


def test_json_summarises_or_includes_arrays():
    b = SampleBlock("grad0", 1, 10, T, 10.0, np.array([[1.0], [np.nan]]))
    msg = wire(m.block_message(b, "s1", T), seq=4)
    d = json.loads(to_json(msg))
    assert d["topic"] == "block.grad0" and d["kind"] == "block" and d["seq"] == 4
    assert d["t_ns"] == T and d["first_index"] == 10 and d["device_time_ns"] is None
    assert d["arrays"] == {"data": {"dtype": "<f8", "shape": [2, 1]}}
    assert json.loads(to_json(msg, arrays=True))["arrays"] == {"data": [[1.0], [None]]}


def test_json_target_has_every_field_and_nan_as_null():
    t = Target("grad0", 3, 4.52, 10.31, 1.2, (0.0, 0.0, 2.1), 0.93)
    d = json.loads(to_json(wire(m.target_message(t, "s1", T))))
    assert d["target"]["x"] == 4.52 and d["target"]["moment"] == [0.0, 0.0, 2.1]
    assert d["target"]["size_class"] == "projectile" and d["target"]["sigma_x"] is None
    assert "NaN" not in to_json(wire(m.target_message(t, "s1", T)))


# --- against a live publisher ------------------------------------------------------------

DESC = StreamDescriptor("grad0", "FEREX", "SN1", 10.0, (ChannelSpec("grad", "nT"),))


def _serve_until(pub: Publisher, done: threading.Event) -> int:
    """Publish numbered targets until ``done``; return how many."""
    i = 0
    while not done.is_set():
        pub.publish_event(Target("grad0", i, float(i), 0.0, 1.0, (0.0, 0.0, 1.0), 0.9))
        i += 1
        pub.poll(10)
        assert i < 5000, "tail never finished"
    return i


def test_run_tail_prints_count_lines_from_a_live_publisher():
    with Publisher("tcp://127.0.0.1:*", "s1") as pub:
        pub.session_start(operator="Lan")
        pub.add_stream(DESC)
        out, err = io.StringIO(), io.StringIO()
        done = threading.Event()
        result: list[int] = []

        def tail() -> None:
            try:
                result.append(run_tail(pub.endpoint, ["target."], False, count=6, timeout_s=30,
                                       out=out, err=err, tz=UTC))
            finally:
                done.set()

        th = threading.Thread(target=tail)
        th.start()
        _serve_until(pub, done)
        th.join()
    assert result == [0]
    lines = out.getvalue().splitlines()
    assert len(lines) == 6
    assert lines[0].split(" ", 1)[1] == "session_start s1 operator=Lan"
    assert lines[1].split(" ", 1)[1] == "descriptor grad0 FEREX s/n SN1 10 Hz channels=grad[nT]"
    ids = [int(ln.split("#")[1].split()[0]) for ln in lines[2:]]
    assert ids == list(range(ids[0], ids[0] + 4))
    assert all(" target grad0 #" in ln for ln in lines[2:])
    assert err.getvalue() == "tail: 6 printed; 6 received, 0 rejected, no gaps\n"


def test_cli_tail_json_through_register_tail(capsys):
    parser = argparse.ArgumentParser(prog="uxo")
    register_tail(parser.add_subparsers(dest="command"))
    with Publisher("tcp://127.0.0.1:*", "s1") as pub:
        args = parser.parse_args(["tail", pub.endpoint, "--json", "--topic", "target.",
                                  "--topic", "status.", "--count", "3", "--timeout", "30"])
        assert args.topics == ["target.", "status."] and args.as_json and args.count == 3
        done = threading.Event()
        result: list[int] = []

        def tail() -> None:
            try:
                result.append(args.func(args))
            finally:
                done.set()

        th = threading.Thread(target=tail)
        th.start()
        _serve_until(pub, done)
        th.join()
    assert result == [0]
    objs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [o["kind"] for o in objs] == ["target"] * 3
    assert [o["seq"] for o in objs] == list(range(objs[0]["seq"], objs[0]["seq"] + 3))


def test_run_tail_returns_1_when_count_not_reached_before_timeout():
    with Publisher("tcp://127.0.0.1:*", "s1") as pub:
        out, err = io.StringIO(), io.StringIO()
        assert run_tail(pub.endpoint, None, False, count=1, timeout_s=0.2, out=out,
                        err=err) == 1
    assert out.getvalue() == ""
    assert "0 printed" in err.getvalue()


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")
def test_ctrl_c_ends_tail_cleanly_with_a_summary():
    # Python's own Ctrl-C handler in the child: one started from a shell's
    # background job inherits SIGINT ignored, and would not stop at all.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from acquisition.tail import run_tail; sys.exit(run_tail(sys.argv[1], None, True))")
    with Publisher("tcp://127.0.0.1:*", "s1") as pub:
        proc = subprocess.Popen([sys.executable, "-c", code, pub.endpoint],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=os.path.dirname(os.path.dirname(__file__)))
        try:
            first = b""
            # Publish until the subscriber (a fresh interpreter importing numpy
            # and zmq: slow on a loaded machine) has joined and printed; a
            # generous deadline, not a timing assertion.
            deadline = time.monotonic() + 120.0
            i = 0
            while time.monotonic() < deadline and proc.poll() is None:
                pub.publish_event(StateChange("grad0", "connected", t_ns=i))
                pub.poll(0)
                i += 1
                if select.select([proc.stdout], [], [], 0.01)[0]:
                    first = proc.stdout.readline()
                    break
            if not first:
                proc.kill()
                _, err = proc.communicate()
                raise AssertionError(f"tail printed nothing; stderr: {err.decode()!r}")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert json.loads(first)["kind"] == "state"
    assert err.decode().startswith("tail: ") and "rejected" in err.decode()
    assert "Traceback" not in err.decode()


def test_ctrl_c_caught_by_another_thread_still_ends_a_waiting_tail():
    # The kernel may hand SIGINT to any thread, zmq's I/O threads included.
    # Python's handler then only flags it, and a main thread blocked inside
    # zmq's poll without a timeout never saw it. Here the signal goes to another thread
    # on purpose; the tail must still end within its poll slice.
    with Publisher("tcp://127.0.0.1:*", "s1") as pub:
        timer = threading.Timer(
            0.3, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT))
        out, err = io.StringIO(), io.StringIO()
        # Python's own Ctrl-C handler, whatever this process inherited (a
        # shell's background job starts with SIGINT ignored).
        before = signal.signal(signal.SIGINT, signal.default_int_handler)
        t0 = time.monotonic()
        timer.start()
        try:
            # Nothing is published: without the signal this waits out its timeout.
            status = run_tail(pub.endpoint, None, False, timeout_s=30.0, out=out, err=err)
        finally:
            timer.cancel()
            signal.signal(signal.SIGINT, before)
        waited = time.monotonic() - t0
    assert status == 0
    assert waited < 20.0  # the signal ended it, not the 30 s timeout
    assert err.getvalue().startswith("tail: 0 printed")


def test_time_prefix_survives_absurd_times():
    msg = m.state_message(StateChange("g", "ok"), "s", 10**30)
    assert format_message(msg, tz=UTC) == f"t={10**30} state g ok"
    assert format_message(wire(m.state_message(StateChange("g", "ok"), "s", -(2**63))),
                          tz=UTC) == "00:12:43.145 state g ok"
