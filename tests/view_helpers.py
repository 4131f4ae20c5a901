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
        pytest.skip("chromium and chromium-driver are not installed "
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
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def artifacts_dir() -> Path:
    """``artifacts/`` at the repository root (git-ignored): screenshots of test runs."""
    d = Path(__file__).resolve().parent.parent / "artifacts"
    d.mkdir(exist_ok=True)
    return d
