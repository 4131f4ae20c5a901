"""The live view, measured with real parts: a ZeroMQ publisher, the view server,
headless Chromium pages (selenium).

* ``latency``: bus event -> text in the page. 1000 anomaly events are
  published (100 per second); the page notes ``Date.now()`` when it has put
  each one's text into the DOM, minus the event's header ``t_ns`` (the
  publisher's wall clock when it sent it; same machine, same clock).
* ``memory``: the page's JS heap (CDP ``Performance.getMetrics``, after a
  forced garbage collection) and DOM node count along a long simulated walk
  played at ``--speed`` x real time: a 10 Hz gradiometer with positions
  walking 100 m lanes 1 m apart at 1 m/s, an anomaly every 10 m, a target
  every 50 m, heartbeats each second.
* ``cpu``: CPU time of a ``uxo view`` process (its own process, so only the
  view is counted) while the same walk is published at 20x, with 0, 1 and 5
  pages open (5 tabs of one browser).

Run: ``.venv/bin/python bench/bench_view.py latency|memory|cpu [...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from view_helpers import chromium, free_port, grad_descriptor  # noqa: E402

from acquisition.events import Anomaly, Target  # noqa: E402
from acquisition.publisher import Publisher  # noqa: E402
from acquisition.types import SampleBlock  # noqa: E402
from acquisition.view.server import ViewServer  # noqa: E402

RATE_HZ = 10.0
LANE_M = 100.0


class Walk:
    """A 10 Hz gradiometer walking north-south lanes, published as the service would."""

    def __init__(self, pub: Publisher, speed: float, block: int = 50) -> None:
        self.pub, self.speed, self.block = pub, speed, block
        self.i = 0
        self.anomalies = 0
        self.targets = 0
        self.rng = np.random.default_rng(1)
        self._next_hb = 0.0

    def step(self) -> None:
        i = np.arange(self.i, self.i + self.block)
        d = i / RATE_HZ
        lane = np.floor(d / LANE_M)
        along = d - lane * LANE_M
        y = np.where(lane % 2 == 0, along, LANE_M - along)
        x = 0.5 + lane
        v = self.rng.normal(0, 1.0, i.size) + 30 * np.exp(-((y % 10) - 5) ** 2)
        now = time.time_ns()
        self.pub.publish_block(SampleBlock(
            "grad0", self.i // self.block, self.i, int(self.i * 1e8), RATE_HZ, v.reshape(-1, 1),
            np.column_stack([x, y]), host_wall_ns=now))
        for k in range(self.block):
            if int(d[k] * 10) % 100 == 50:  # every 10 m
                self.pub.publish_event(Anomaly("grad0", self.anomalies, int(lane[k]),
                                               int(i[k]), now, float(x[k]), float(y[k]),
                                               30.0, 1))
                self.anomalies += 1
                if self.anomalies % 5 == 0:
                    self.pub.publish_event(Target(
                        "grad0", self.targets, float(x[k]), float(y[k]), 0.8,
                        (0.1, 0.2, -0.5), 0.9, sigma_depth=0.05, t_ns=now))
                    self.targets += 1
        self.i += self.block

    @property
    def survey_s(self) -> float:
        return self.i / RATE_HZ

    def run_for(self, survey_s: float) -> None:
        """Publish until ``survey_s`` of walking, at ``speed`` x real time."""
        start_wall, start_survey = time.monotonic(), self.survey_s
        while self.survey_s < survey_s:
            self.step()
            due = start_wall + (self.survey_s - start_survey) / self.speed
            while True:
                self.pub.poll(0)
                if time.monotonic() >= self._next_hb:
                    self._next_hb = time.monotonic() + 1.0
                    self.pub.heartbeat("grad0", {"frames_ok": self.i, "frames_rejected": 0,
                                                 "gaps": 0, "state": "connected",
                                                 "threshold_nT": 5.0})
                left = due - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, 0.05))


def _start_bus(session: str) -> tuple[str, Publisher]:
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = Publisher(ep, session)
    pub.session_start(planned_lanes=[[0.5 + k, 0.0, 0.5 + k, LANE_M] for k in range(40)])
    pub.add_stream(grad_descriptor())
    return ep, pub


def _open(page, url: str) -> None:
    page.get(url)
    deadline = time.monotonic() + 15
    while page.find_element("id", "link").text != "live":
        if time.monotonic() > deadline:
            raise RuntimeError("page never went live")
        time.sleep(0.05)


def _view_process(ep: str) -> tuple[subprocess.Popen, str]:
    """``uxo view`` in its own process; returns it and the page's URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "acquisition.cli", "view", ep, "--http",
                             str(port)], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # "live view: URL": listening
    return proc, f"http://127.0.0.1:{port}/"


def latency(n: int = 1000, rate: float = 100.0, separate: bool = False) -> dict[str, float]:
    """In the publisher's process (as ``--view``), or ``separate`` (as ``uxo view``)."""
    ep, pub = _start_bus("bench-latency")
    proc = None
    try:
        if separate:
            proc, url = _view_process(ep)
            view = contextlib.nullcontext()
        else:
            view = ViewServer(ep, port=0)
        with view as v, chromium() as page:
            _open(page, url if separate else v.url)
            deadline = time.monotonic() + 10
            while "bench-latency" not in page.find_element("id", "session").text:
                pub.poll(10)
                if time.monotonic() > deadline:
                    raise RuntimeError("the view never joined")
            page.execute_script("window.uxoLatency.length = 0;")
            t0 = time.monotonic()
            for k in range(n):
                pub.publish_event(Anomaly("grad0", k, 0, k, time.time_ns(), 1.0, 2.0, 30.0, 1))
                pub.poll(0)
                time.sleep(max(0.0, t0 + (k + 1) / rate - time.monotonic()))
            deadline = time.monotonic() + 20
            while (got := page.execute_script("return window.uxoLatency.length;")) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {got} of {n} events reached the page")
                pub.poll(20)
            lat = np.array(page.execute_script("return window.uxoLatency;"), dtype=float)
            parts = np.array(page.execute_script("return window.uxoLatencyParts;"),
                             dtype=float).reshape(-1, 2)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        pub.close(0)
    p50, p99 = np.percentile(lat, [50, 99])
    b50, b99 = np.percentile(parts[:, 0], [50, 99])
    w50, w99 = np.percentile(parts[:, 1], [50, 99])
    return {"n": int(lat.size), "p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1),
            "max_ms": round(float(lat.max()), 1),
            "bus_to_view_p50_p99_ms": (round(float(b50), 1), round(float(b99), 1)),
            "view_to_page_p50_p99_ms": (round(float(w50), 1), round(float(w99), 1))}


def _heap(page) -> tuple[float, int]:
    page.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    m = {x["name"]: x["value"] for x in
         page.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
    return m["JSHeapUsedSize"] / 1e6, int(m["Nodes"])


def memory(minutes: list[float], speed: float) -> list[dict[str, float]]:
    ep, pub = _start_bus("bench-memory")
    rows = []
    try:
        with ViewServer(ep, port=0) as view, chromium() as page:
            page.execute_cdp_cmd("Performance.enable", {})
            _open(page, view.url)
            walk = Walk(pub, speed)
            wall0 = time.monotonic()
            for m in minutes:
                walk.run_for(m * 60)
                time.sleep(1.0)  # let the page draw what arrived
                heap, nodes = _heap(page)
                cells = page.execute_script("return window.uxoState.cells.size;")
                rows.append({"survey_min": m, "wall_s": round(time.monotonic() - wall0, 1),
                             "heap_MB": round(heap, 2), "dom_nodes": nodes, "cells": cells,
                             "anomalies": walk.anomalies, "targets": walk.targets})
                print(rows[-1], flush=True)
    finally:
        pub.close(0)
    return rows


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu(window_s: float = 20.0, pages: tuple[int, ...] = (0, 1, 5)) -> list[dict[str, float]]:
    ep, pub = _start_bus("bench-cpu")
    proc, url = _view_process(ep)
    rows = []
    try:
        walk = Walk(pub, 20.0)
        walk.run_for(30)  # warm up, the view joins
        with chromium() as browser:
            opened = 0
            for n in pages:
                while opened < n:
                    if opened:
                        browser.switch_to.new_window("tab")
                    _open(browser, url)
                    opened += 1
                walk.run_for(walk.survey_s + 20 * 3)  # settle
                c0, t0 = _cpu_s(proc.pid), time.monotonic()
                walk.run_for(walk.survey_s + 20 * window_s)
                c1, t1 = _cpu_s(proc.pid), time.monotonic()
                rows.append({"pages": n, "cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 1),
                             "window_s": round(t1 - t0, 1)})
                print(rows[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        pub.close(0)
    return rows


def test_view_latency_100_events(benchmark):
    """pytest-benchmark entry: 100 anomaly events to one page (p50/p99 in extra_info)."""
    r = benchmark.pedantic(latency, args=(100,), rounds=1, iterations=1)
    benchmark.extra_info.update(r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["latency", "memory", "cpu"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--minutes", type=float, nargs="+", default=[3, 6, 12, 18, 24])
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--separate", action="store_true",
                    help="latency: the view in its own process (uxo view)")
    a = ap.parse_args()
    os.environ.setdefault("TMPDIR", tempfile.gettempdir())
    if a.what == "latency":
        print(latency(a.n, separate=a.separate))
    elif a.what == "memory":
        memory(a.minutes, a.speed)
    else:
        cpu(a.window)


if __name__ == "__main__":
    main()
