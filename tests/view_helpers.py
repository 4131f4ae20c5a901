"""Helpers for the live-view tests: a real headless Chromium driven by selenium.

`chromium()` starts Debian's chromium through chromedriver with a fresh
profile; tests skip (with the reason) only when the browser is not installed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--enable-precise-memory-info", "--window-size=1300,1000")


def browser_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) executables, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def require_chromium() -> tuple[str, str]:
    paths = browser_paths()
    if paths is None:
        # a failure, not a skip: a missing browser must never pass for a tested page
        pytest.fail("chromium and chromium-driver are required "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    return paths


@contextmanager
def chromium() -> Iterator[object]:
    """A selenium WebDriver on a headless Chromium with a throw-away profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = require_chromium()
    profile = tempfile.mkdtemp(prefix="uxo-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    """A TCP port free on loopback right now (for a ZeroMQ tcp:// endpoint)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def artifacts_dir() -> Path:
    """``artifacts/`` at the repository root (git-ignored): screenshots of test runs."""
    d = Path(__file__).resolve().parent.parent / "artifacts"
    d.mkdir(exist_ok=True)
    return d


# --- bus messages as a subscriber sees them ------------------------------------------------

def wire(msg, seq: int = 0):
    """``msg`` through the real codec and the subscriber's body checks."""
    from acquisition.messages import Message, decode, encode
    from acquisition.subscriber import check_body

    out = decode(encode(Message(msg.topic, {**msg.header, "seq": seq}, msg.arrays)))
    check_body(out)
    return out


def grad_descriptor(stream: str = "grad0", rate_hz: float = 10.0, channels: int = 1):
    from acquisition.types import ChannelSpec, StreamDescriptor

    return StreamDescriptor(stream, "UXG-SIM", "S1", rate_hz,
                            tuple(ChannelSpec(f"grad{i}", "nT") for i in range(channels)),
                            {"kind": "gradient"}, position_dims=2, driver="gradline")


def walk_block(first: int, n: int, rate_hz: float = 10.0, *, speed_m_s: float = 1.0,
               lane_m: float = 20.0, spacing_m: float = 1.0, value=None, t0_ns: int = 0,
               stream: str = "grad0"):
    """Samples ``first..first+n`` of a zig-zag lane walk (north-south lanes), as a
    SampleBlock; ``value(x, y)`` gives the reading (default: a 50 nT bump at (2, 5))."""
    import numpy as np

    from acquisition.types import SampleBlock

    i = np.arange(first, first + n)
    d = i / rate_hz * speed_m_s
    lane = np.floor(d / lane_m).astype(int)
    along = d - lane * lane_m
    y = np.where(lane % 2 == 0, along, lane_m - along)
    x = spacing_m / 2 + lane * spacing_m
    v = (50.0 * np.exp(-((x - 2.0) ** 2 + (y - 5.0) ** 2) / 0.5) if value is None
         else value(x, y))
    return SampleBlock(stream, first // max(n, 1), first, t0_ns + int(first * 1e9 / rate_hz),
                       rate_hz, v.reshape(-1, 1).astype(float),
                       np.column_stack([x, y]).astype(float), host_wall_ns=t0_ns)


def console_errors(drv) -> list[str]:
    """The page's console messages of level SEVERE (script errors, failed loads)."""
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]
