"""`uxo acquire --view` and `uxo demo --view` as real processes, read over HTTP/WebSocket."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.slow


def _start(args: list[str]) -> subprocess.Popen:
    # faulthandler on: a process that will not stop is made to print every thread's stack.
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    # Started as a script's background job is (SIGINT ignored): the commands must
    # install their own Ctrl-C handling, or the Ctrl-C these tests send never arrives.
    return subprocess.Popen([sys.executable, "-u", "-m", "acquisition.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=_ignore_sigint)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_until(proc: subprocess.Popen, pattern: str, timeout: float = 60.0) -> tuple[
        re.Match, list[str]]:
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if m := re.search(pattern, line):
            return m, lines
    raise AssertionError(f"no line matching {pattern!r}; got:\n{''.join(lines)}")


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health.json", timeout=5) as r:
        return json.load(r)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired as exc:
        # SIGABRT makes faulthandler dump the stack of every thread: say where it hangs.
        proc.send_signal(signal.SIGABRT)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out = "(no stack dump)"
        msg = f"still running 20 s after Ctrl-C; its threads:\n{out[-8000:]}"
        raise AssertionError(msg) from exc
    finally:
        if proc.poll() is None:
            proc.kill()


def test_acquire_serves_the_view_of_its_own_bus(tmp_path):
    record = tmp_path / "run.h5"
    proc = _start(["acquire", "--driver", "gradline", "--port", "sim://demo?speed=20",
                   "--stream-id", "grad0", "--record", str(record), "--view", "0"])
    try:
        m, _ = _read_until(proc, r"live view: http://127\.0\.0\.1:(\d+)/\s*$")
        port = int(m.group(1))
        deadline = time.monotonic() + 30
        while True:
            h = _health(port)
            g = h["streams"].get("grad0", {})
            if g.get("state") == "connected" and (g.get("recording") or {}).get("bytes"):
                break
            assert time.monotonic() < deadline, h
            time.sleep(0.2)
        assert g["recording"]["file"].startswith(str(tmp_path / "run"))
        assert h["bus"]["received"] > 0 and h["bus_silent"] is False
    finally:
        code = _stop(proc)
    assert code == 0


def test_demo_keeps_serving_after_the_survey_until_ctrl_c(tmp_path):
    proc = _start(["demo", "--speed", "0", "--out", str(tmp_path), "--view", "0"])
    try:
        m, _ = _read_until(proc, r"live view: http://127\.0\.0\.1:(\d+)/\s*$")
        port = int(m.group(1))
        found, lines = _read_until(proc, r"found (\d+) of \d+ targets.*?(\d+) false picks",
                                   timeout=120)
        _read_until(proc, r"keeps serving at http://127\.0\.0\.1:\d+/ ; Ctrl-C to stop")
        n_targets = int(found.group(1)) + int(found.group(2))
        # The survey is over; the page is still served, with the whole session.
        assert _health(port)["stopped"] is True
        with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            snap = json.loads(ws.recv(timeout=10))
        assert snap["stopped"] is True and len(snap["targets"]) == n_targets
        depths = {r["cells"][3].split(" ± ")[0] for r in snap["targets"]}
        report = "".join(lines)
        for d in depths:  # each target's depth is the one the demo's report prints
            assert re.search(rf"\s{re.escape(d)}\s", report), d
        assert proc.poll() is None
    finally:
        code = _stop(proc)
    assert code == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_view_stops_cleanly_on_ctrl_c_or_sigterm_even_started_in_the_background(sig):
    # No publisher is needed: the page is served, the bus waits for one.
    proc = _start(["view", "ipc:///nonexistent/uxo-view-cli-test", "--http", "0"])
    try:
        m, _ = _read_until(proc, r"live view: http://127\.0\.0\.1:(\d+)/\s*$")
        assert _health(int(m.group(1)))["stopped"] is False
        proc.send_signal(sig)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0
