"""`uxo record` trusts nothing the publisher says: names, memory, streams, signals.

A raw XPUB socket plays the hostile publisher (any session name, any stream
ids, blocks without descriptors); the recorder runs on a real SUB socket and
writes real HDF5 files. Signal tests start `uxo record` / `uxo tail` as real
subprocesses with SIGINT ignored, as a script's background job gets them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st
from rec_helpers import descriptor, indexed_block

from acquisition import messages as m
from acquisition.publisher import Publisher
from recorder.reader import open_recording
from recorder.subscriber_recorder import RecordSummary, record, safe_name


class Hostile:
    """A raw XPUB: sends whatever it is told, with any session and seq."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.seq: dict[str, int] = {}

    def wait_joined(self) -> None:
        assert self.sock.poll(10_000), "the recorder never subscribed"
        self.sock.recv()

    def send(self, msg: m.Message) -> None:
        q = self.seq.get(msg.topic, 0)
        self.seq[msg.topic] = q + 1
        msg.header["seq"] = q
        self.sock.send_multipart(m.encode(msg))

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


def _run_record(out: Path, feed, **kw) -> RecordSummary:
    """Run `record` in a thread against a hostile publisher fed by ``feed(h)``."""
    h = Hostile()
    stop = threading.Event()
    res: dict[str, RecordSummary] = {}
    th = threading.Thread(target=lambda: res.setdefault(
        "s", record(h.endpoint, out, stop=stop, flush_interval_s=0.2, **kw)))
    th.start()
    try:
        h.wait_joined()
        time.sleep(0.2)
        feed(h)
        time.sleep(1.0)
    finally:
        stop.set()
        th.join(30)
        h.close()
    return res["s"]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("session", ["../escaped", "ABSOLUTE", "..", "a/../../b"])
def test_a_hostile_session_name_never_writes_outside_out(tmp_path, session):
    out = tmp_path / "deep" / "out"
    if session == "ABSOLUTE":
        session = str(tmp_path / "abs" / "escaped")
    desc = descriptor("grad0", rate=100.0)

    def feed(h: Hostile) -> None:
        h.send(m.descriptor_message(desc, session, 0))
        for i in range(5):
            h.send(m.block_message(indexed_block(desc, i, i * 10, 10), session, 0))

    s = _run_record(out, feed)
    assert s.blocks == 5
    files = [Path(f) for f in s.files]
    assert files and all(f.resolve().parent == out.resolve() for f in files)
    assert _files_under(tmp_path) == set(files)  # nothing anywhere else under tmp_path
    with open_recording(files[0]) as rec:
        assert rec.attrs["source_session"] == session  # what was claimed is kept as data
        assert rec.streams["grad0"].blocks["n"].sum() == 50


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_safe_name_is_always_a_plain_file_name(tmp_path_factory, session):
    name = safe_name(session)
    assert re.fullmatch(r"([A-Za-z0-9_.-]{1,64})?", name)
    assert not name.startswith(".") and "/" not in name and name not in ("..", ".")
    if name:
        root = Path("/srv/out")
        assert (root / f"{name}.h5").parent == root


def test_blocks_without_a_descriptor_are_held_within_byte_limits_and_drops_reported(tmp_path):
    desc = descriptor("grad0", nch=1, pos_dims=0, rate=1000.0)
    n = 1 << 20  # 8 MB of float64 per block

    def feed(h: Hostile) -> None:
        for i in range(12):  # 96 MB, no descriptor
            h.send(m.block_message(indexed_block(desc, i, i * n, n), "s", 0))
        for i in range(3):  # a second stream, 3 x 8 MB
            b = indexed_block(descriptor("other", nch=1, pos_dims=0), i, i * n, n)
            h.send(m.block_message(b, "s", 0))
        time.sleep(1.0)
        h.send(m.descriptor_message(desc, "s", 0))  # now grad0 can be written

    s = _run_record(tmp_path / "out", feed, hold_bytes=int(20e6), hold_bytes_total=int(30e6))
    mb8 = n * 8
    # grad0 may hold 2 blocks (16.8 MB <= 20 MB): 10 dropped. With "other"'s
    # second block the total passes 30 MB: grad0 (the first of two holding the
    # most) gives up its oldest; "other"'s third passes its own 20 MB: its oldest
    # goes. grad0's last block is written when its descriptor comes; "other"
    # never gets one, so its 2 held blocks are dropped at the end.
    assert s.dropped_blocks == 10 + 1 + 1 + 2
    assert s.dropped_bytes == s.dropped_blocks * mb8
    assert s.blocks == 1
    assert "14 held blocks dropped (117.4 MB)" in s.drops
    with open_recording(s.files[0]) as rec:
        st_ = rec.streams["grad0"]
        assert st_.blocks["first_index"].tolist() == [11 * n]  # the newest one
        ev = [e for e in rec.events if e.get("kind") == "state"
              and e["payload"].get("state") == "recorder_drops"]
        assert len(ev) == 1 and ev[0]["payload"]["dropped_blocks"] == s.dropped_blocks


def test_forty_new_stream_ids_are_capped_and_counted(tmp_path):
    def feed(h: Hostile) -> None:
        for k in range(40):
            d = descriptor(f"s{k:02d}", nch=1, pos_dims=0, rate=10.0)
            h.send(m.descriptor_message(d, "s", 0))
            h.send(m.block_message(indexed_block(d, 0, 0, 5), "s", 0))
            time.sleep(0.02)

    s = _run_record(tmp_path / "out", feed, max_streams=4)
    assert s.blocks == 4 and s.refused_blocks == 36
    assert s.refused_streams == [f"s{k:02d}" for k in range(4, 40)]
    # One file, then one per stream announced after it started: at most 4 files.
    assert 1 <= len(s.files) <= 4
    assert len(list((tmp_path / "out").glob("*.h5"))) == len(s.files)


def test_a_seq_reset_is_recorded_as_such_not_as_loss(tmp_path):
    desc = descriptor("grad0", rate=100.0)

    def feed(h: Hostile) -> None:
        h.send(m.descriptor_message(desc, "s", 0))
        for i, q in enumerate([0, 1, 2**63, 2**63 + 1]):
            msg = m.block_message(indexed_block(desc, i, i * 10, 10), "s", 0)
            msg.header["seq"] = q
            h.sock.send_multipart(m.encode(msg))

    s = _run_record(tmp_path / "out", feed)
    assert s.blocks == 4 and s.missing_messages == 0 and s.wire_resets == 1
    with open_recording(s.files[0]) as rec:
        kinds = [e["kind"] for e in rec.events]
        assert kinds.count("wire_reset") == 1 and "wire_gap" not in kinds


# --- signals, real subprocesses ------------------------------------------------------


def _ignore_sigint() -> None:
    # What a non-interactive shell does for a background job (cmd &).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(args: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "acquisition.cli", *args], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignore_sigint,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _publish_for(pub: Publisher, proc: subprocess.Popen[str], seconds: float) -> int:
    desc = descriptor("grad0", rate=100.0)
    pub.session_start(operator="Hoa")
    pub.add_stream(desc)
    t_end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < t_end and proc.poll() is None:
        pub.poll(0)
        pub.publish_block(indexed_block(desc, i, i * 10, 10))
        pub.maybe_heartbeat({"grad0": {"blocks": i}})
        i += 1
        time.sleep(0.02)
    return i


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_record_stops_cleanly_on_a_signal_even_started_with_sigint_ignored(tmp_path, sig):
    with Publisher("tcp://127.0.0.1:*", "remote") as pub:
        proc = _start(["record", pub.endpoint, "--out", str(tmp_path / "out"),
                       "--flush", "0.2"], tmp_path)
        try:
            deadline = time.monotonic() + 20
            while pub.subscriptions == 0 and time.monotonic() < deadline:
                pub.poll(100)
            _publish_for(pub, proc, 2.0)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert re.search(r"\d+ blocks, \d+ samples", out), out
    path = Path(re.search(r"recorded: (\S+)", out).group(1))
    with open_recording(path) as rec:
        assert rec.status["state"] == "closed"
        assert rec.streams["grad0"].blocks["n"].sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_tail_stops_with_its_summary_on_a_signal_even_started_with_sigint_ignored(
        tmp_path, sig):
    with Publisher("tcp://127.0.0.1:*", "remote") as pub:
        proc = _start(["tail", pub.endpoint], tmp_path)
        try:
            deadline = time.monotonic() + 20
            while pub.subscriptions == 0 and time.monotonic() < deadline:
                pub.poll(100)
            sent = _publish_for(pub, proc, 1.0)
            time.sleep(0.3)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    printed = int(re.search(r"tail: (\d+) printed", err).group(1))
    assert printed == len(out.splitlines()) and printed >= sent  # every block, and more
    assert np.sum([" block " in ln for ln in out.splitlines()]) == sent
