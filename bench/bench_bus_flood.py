"""The bus and the recorder under a subscription flood (issue 25), wall clock.

``uxo acquire`` runs as its own process on ``sim://demo`` (gradline, 10 Hz x
``--speed``), publishing on loopback and recording to HDF5 with the default
1 s flush. A normal subscriber here notes when every heartbeat and data block
arrives. Then one raw XSUB client sends distinct subscriptions as fast as it
can for ``--flood-s`` seconds (at most 5 M). Reported:

* the longest silence of heartbeats and of data blocks at the subscriber,
  from the flood's start to 2 s after its end;
* the service's resident memory before and at its peak;
* the longest interval between two recorder flushes (chain links' wall
  times) in that window;
* the loss bound: the process is killed with SIGKILL 1 s after the flood
  (with what the flood left still being worked off); the samples the service
  had published but the file does not hold, in seconds of data, and the time
  from the kill back to the last committed block's arrival;
* in a second run, the time SIGTERM takes to stop the service after a flood.

Run: ``.venv/bin/python bench/bench_bus_flood.py [--flood-s 3] [--speed 5]``,
or as a pytest-benchmark entry (``pytest bench/bench_bus_flood.py``).
"""

from __future__ import annotations

import argparse
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bus_helpers import flood_subscriptions, free_port, rss_mb, start_acquire  # noqa: E402

from acquisition.subscriber import Subscriber  # noqa: E402
from recorder import layout as L  # noqa: E402


def _committed(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Chain links' wall times (s) and committed blocks' (first_index, n, host_wall_ns)."""
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        (g,) = f[L.STREAMS_GROUP].values()
        chain = g[L.DS_CHAIN][()]
        nb = int(chain["block_stop"][-1]) if len(chain) else 0
        blocks = g[L.DS_BLOCKS][:nb]
    return chain["wall_ns"] / 1e9, blocks


def run(flood_s: float = 3.0, speed: float = 5.0, kill: str = "KILL") -> dict[str, Any]:
    """One flood against a fresh service; ``kill`` is KILL (loss bound) or TERM."""
    with tempfile.TemporaryDirectory(prefix="uxo-flood-") as tmp_s:
        tmp = Path(tmp_s)
        port = free_port()
        proc = start_acquire(tmp, port, "--decimate", "1", speed=speed)
        endpoint = f"tcp://127.0.0.1:{port}"
        hb: list[float] = []
        last_pub: dict[str, Any] = {}
        blocks: list[tuple[float, int, int]] = []  # arrival, first_index, next_index
        stop = threading.Event()

        def watch() -> None:
            with Subscriber(endpoint, ("status.", "block.")) as sub:
                while not stop.is_set():
                    msg = sub.recv(0.2)
                    if msg is None:
                        continue
                    if msg.kind == "heartbeat":
                        hb.append(time.monotonic())
                        last_pub.update(msg.header.get("publisher") or {})
                    elif msg.kind == "block":
                        n = int(msg.arrays["data"].shape[0])
                        first = int(msg.header["first_index"])
                        blocks.append((time.monotonic(), first, first + n))

        watcher = threading.Thread(target=watch)
        watcher.start()
        peak = [0.0]
        try:
            deadline = time.monotonic() + 30
            while len(hb) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            rss0 = rss_mb(proc.pid)
            peak[0] = rss0

            def sample() -> None:
                while not stop.is_set() and proc.poll() is None:
                    try:
                        peak[0] = max(peak[0], rss_mb(proc.pid))
                    except (OSError, RuntimeError):
                        return
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.monotonic()
            sent = flood_subscriptions(endpoint, seconds=flood_s)
            t1 = time.monotonic()
            time.sleep(1.0 if kill == "KILL" else 2.0)
            t_kill = time.monotonic()
            wall_kill = time.time()
            proc.send_signal(signal.SIGKILL if kill == "KILL" else signal.SIGTERM)
            try:
                rc: int | None = proc.wait(30)
            except subprocess.TimeoutExpired:
                rc = None  # not honoured: killed below
            exit_s = time.monotonic() - t_kill
        finally:
            stop.set()
            watcher.join(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sampler.join(5)
        window_end = min(t_kill, t1 + 2.0)

        def silence(times: list[float]) -> float:
            inside = [t for t in times if t0 <= t <= window_end]
            return float(np.diff([t0, *inside, window_end]).max())

        try:
            walls, committed = _committed(tmp / "rec.h5")
        except (OSError, KeyError, ValueError) as exc:
            print(f"cannot read the recording: {exc}", file=sys.stderr)
            walls, committed = np.zeros(0), np.zeros(0, dtype=L.BLOCK_DTYPE)
        flood_wall0 = wall_kill - (t_kill - t0)
        fl = walls[walls >= flood_wall0 - 1.0]
        out: dict[str, Any] = {
            "kill": kill, "exit_code": rc, "subscriptions_sent": sent,
            "flood_s": round(t1 - t0, 2),
            "heartbeat_silence_max_s": round(silence(hb), 2),
            "block_silence_max_s": round(silence([b[0] for b in blocks]), 2),
            "rss_before_mb": round(rss0, 1), "rss_peak_mb": round(peak[0], 1),
            "publisher": dict(last_pub),
            "flush_interval_max_s": round(float(np.diff(fl).max()), 2) if len(fl) > 1 else None,
        }
        if kill == "KILL" and len(committed) and blocks:
            rate = 10.0 * speed
            end_committed = int(committed["first_index"][-1] + committed["n"][-1])
            end_published = max(b[2] for b in blocks)
            out["lost_s_of_data"] = round((end_published - end_committed) / rate, 2)
            out["kill_minus_last_committed_arrival_s"] = round(
                wall_kill - committed["host_wall_ns"][-1] / 1e9, 2)
        else:
            out["sigterm_exit_s"] = round(exit_s, 2) if rc is not None else "> 30"
        return out


def test_bus_flood(benchmark) -> None:
    res: dict[str, Any] = {}

    def once() -> None:
        res["kill"] = run(kill="KILL")
        res["term"] = run(kill="TERM")

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k}_{n}": v for k, d in res.items() for n, v in d.items()})
    benchmark.extra_info["machine"] = f"{platform.machine()} {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flood-s", type=float, default=3.0)
    ap.add_argument("--speed", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    for i in range(a.runs):
        for kill in ("KILL", "TERM"):
            print(i, run(a.flood_s, a.speed, kill), flush=True)


if __name__ == "__main__":
    main()
