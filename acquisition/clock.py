"""Clocks in integer nanoseconds, named by where they come from.

Host wall time (epoch) and host monotonic time travel side by side with the
device's own time stamps; nothing converts between them silently.
"""

from __future__ import annotations

import time

NS_PER_S = 1_000_000_000


def wall_ns() -> int:
    """Host wall clock, ns since the Unix epoch (may jump when NTP steps it)."""
    return time.time_ns()


def mono_ns() -> int:
    """Host monotonic clock, ns since an arbitrary start (never jumps)."""
    return time.monotonic_ns()


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def ns_to_seconds(ns: int) -> float:
    return ns / NS_PER_S
