"""Reconnect time after a replug: device back on its path -> the runner reads it again.

A real pty stands in for a USB-serial device behind a stable symlink (as
/dev/serial/by-id is). Each cycle pulls the cable (the pty closes and the link
goes, as udev removes it), keeps the device away for a random 0.3-3 s, then
plugs it back (a new pty, the link restored) and writes a UXG line at once.
Measured on the wall clock: from the link's return to the runner's
"connected" state, and to the block holding that first line. The runner uses
its default retry settings (`acquisition.runner.DriverRunner`).

Run: ``.venv/bin/python bench/bench_reconnect.py [--cycles 20]`` (about 2 s a cycle).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import queue
import tempfile
import time
import tty

import numpy as np

from acquisition.drivers.gradline import GradLineDriver, format_line
from acquisition.runner import DriverRunner, RunnerItem


def _wait(q: queue.Queue[RunnerItem], pred, timeout: float = 15.0) -> RunnerItem:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(queue.Empty):
            it = q.get(timeout=0.02)
            if pred(it):
                return it
    raise TimeoutError("runner did not report in time")


def measure(cycles: int) -> dict[str, np.ndarray]:
    """Replug ``cycles`` times; ms from the device's return to "connected" and to its data."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        link = os.path.join(tmp, "ttyUXG0")
        master, slave = os.openpty()
        tty.setraw(slave)
        os.symlink(os.ttyname(slave), link)
        q: queue.Queue[RunnerItem] = queue.Queue()
        runner = DriverRunner(GradLineDriver(link, block_size=1, max_block_s=0.01), q).start()
        _wait(q, lambda it: it.kind == "state" and it.state.state == "connected")
        to_state, to_data = [], []
        count = 0
        try:
            for _ in range(cycles):
                os.write(master, b"\r\n" + format_line(count, count / 10, 0, 0, [1.0]))
                count += 1
                _wait(q, lambda it: it.kind == "block")
                os.unlink(link)
                os.close(master)
                os.close(slave)
                _wait(q, lambda it: it.kind == "state" and it.state.state == "reconnecting")
                time.sleep(float(rng.uniform(0.3, 3.0)))
                master, slave = os.openpty()
                tty.setraw(slave)
                back = time.time_ns()
                os.symlink(os.ttyname(slave), link)
                os.write(master, b"\r\n" + format_line(count + 5, count / 10, 0, 0, [2.0]))
                count += 6
                st = _wait(q, lambda it: it.kind == "state" and it.state.state == "connected")
                _wait(q, lambda it: it.kind == "block")
                got = time.time_ns()
                to_state.append((st.state.t_ns - back) / 1e6)
                to_data.append((got - back) / 1e6)
        finally:
            runner.stop()
            os.close(master)
            os.close(slave)
    return {"to connected": np.array(to_state), "to first block": np.array(to_data)}


def test_reconnect_after_replug(benchmark):
    """pytest-benchmark entry: five replugs (about 10 s)."""
    r = benchmark.pedantic(measure, args=(5,), rounds=1, iterations=1)
    benchmark.extra_info.update({k.replace(" ", "_") + "_median_ms": float(np.median(v))
                                 for k, v in r.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args()
    for name, a in measure(args.cycles).items():
        print(f"{name:15s} ms: median {np.median(a):6.1f}  p90 {np.percentile(a, 90):6.1f}"
              f"  max {a.max():6.1f}  (n={a.size})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")


if __name__ == "__main__":
    main()
