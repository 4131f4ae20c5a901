"""Helpers for the driver-on-a-real-pty tests: decode bytes in-process, read a driver to the end."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from acquisition.drivers import registry
from acquisition.drivers.base import Driver
from acquisition.drivers.transport import PortError
from acquisition.types import SampleBlock
from simulator.emulators.base import DeviceScript, LineEmulator


def make_driver(script: DeviceScript, port: str = "unused", **extra: object) -> Driver:
    return registry.create(script.driver, port, **{**script.driver_options, **extra})


def decode_bytes(script: DeviceScript, data: bytes) -> tuple[Driver, np.ndarray]:
    """The values the script's driver decodes from ``data`` (fed in-process, no port)."""
    d = make_driver(script)
    d.feed(data)  # type: ignore[attr-defined]
    blocks = []
    while (b := d.flush()) is not None:  # type: ignore[attr-defined]
        blocks.append(b)
    return d, stack(blocks, script)


def stack(blocks: list[SampleBlock], script: DeviceScript) -> np.ndarray:
    if blocks:
        return np.concatenate([b.data for b in blocks])
    return np.empty((0, len(make_driver(script).describe().channels)))


def read_to_end(drv: Driver, emu: LineEmulator, limit_s: float = 60.0,
                on_port_error: Callable[[], bool] | None = None) -> list[SampleBlock]:
    """Read blocks until the emulator is done and every byte was taken, then flush.

    ``on_port_error`` is called when the port fails (after the pending samples
    were flushed, as `acquisition.runner` does); it reopens and returns True
    to go on, or False to stop. The time limit is a safety net, not a check.
    """
    blocks: list[SampleBlock] = []
    idle = 0
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            b = drv.read_block(0.02)
        except PortError:
            # As the runner does: hand over what the driver holds before reopening
            # (LineDriver.open does not flush it; see test_drv_faults_pty).
            while (p := drv.flush()) is not None:  # type: ignore[attr-defined]
                blocks.append(p)
            if on_port_error is None or not on_port_error():
                break
            continue
        if b is not None:
            blocks.append(b)
            idle = 0
        elif emu.done and emu.unread() == 0:
            idle += 1
            if idle >= 3:
                break
    while (b := drv.flush()) is not None:  # type: ignore[attr-defined]
        blocks.append(b)
    return blocks
