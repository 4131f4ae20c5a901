"""Shared helpers for the bus hardening tests (test_bus_*.py) and bench/bench_bus_flood.py.

`flood_subscriptions` is the hostile client of issue 25: one raw XSUB socket
that sends distinct subscriptions as fast as it can, bounded in count and
time, on loopback only. `start_acquire` runs ``uxo acquire`` on the simulator
in a real subprocess (so signals and memory are the real ones).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import zmq


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flood_subscriptions(endpoint: str, seconds: float = 3.0, limit: int = 5_000_000,
                        ctx: zmq.Context | None = None) -> int:
    """Send up to ``limit`` subscriptions for ``seconds``; return how many were sent.
    Loopback endpoints only: this is an attack tool."""
    if not endpoint.startswith(("tcp://127.", "ipc://")):
        raise ValueError("flood only loopback endpoints")
    own = ctx is None
    c = zmq.Context() if own else ctx
    sock = c.socket(zmq.XSUB)
    sock.setsockopt(zmq.LINGER, 0)
    # No send limit: ZeroMQ queues whatever the receiver does not take yet,
    # so the flood is as fast as this loop (1-2 M in 3 s, as issue 25 had it).
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    sent = 0
    t_end = time.monotonic() + seconds
    try:
        while sent < limit and time.monotonic() < t_end:
            for _ in range(1000):
                # Half of them cover every stream (the empty topic), which asks
                # the publisher to re-send the session and descriptors each time;
                # half are distinct, which grows its subscription tree.
                sock.send(b"\x01" if sent % 2 else b"\x01block.flood%d" % sent)
                sent += 1
    finally:
        sock.close(linger=0)
        if own:
            c.term()
    return sent


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def start_acquire(tmp: Path, port: int, *extra: str, speed: float = 5.0,
                  session: str = "flood") -> subprocess.Popen[str]:
    """``uxo acquire`` on ``sim://demo`` publishing on loopback ``port`` and recording
    to ``tmp/rec.h5``; stdout/stderr go to files in ``tmp``."""
    cmd = [sys.executable, "-m", "acquisition.cli", "acquire", "--driver", "gradline",
           "--port", f"sim://demo?speed={speed:g}", "--publish", f"tcp://127.0.0.1:{port}",
           "--record", str(tmp / "rec.h5"), "--session", session, *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # cwd: the tmp dir, so `-m` imports the installed package, not the current directory.
    return subprocess.Popen(cmd, cwd=tmp, stdout=open(tmp / "out.txt", "w"),
                            stderr=open(tmp / "err.txt", "w"), text=True, env=env)
