"""`uxo acquire --view` and `uxo demo --view` as real processes, read over HTTP/WebSocket."""

from __future__ import annotations

import json
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
    return subprocess.Popen([sys.executable, "-u", "-m", "acquisition.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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
