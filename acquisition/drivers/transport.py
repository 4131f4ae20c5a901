"""Ports opened by URL through pyserial (`serial.serial_for_url`).

The same driver code serves ``/dev/ttyUSB0``, a pty path, ``hwgrep://VID:PID``,
``socket://host:port`` or a plug-in scheme such as ``sim://``. Plug-in packages
add schemes through the ``uxo.url_handlers`` entry-point group: each entry names
a package holding ``protocol_<scheme>.py`` modules in pyserial's convention.

Reads are bulk: whatever is waiting, or one blocking read of up to ``chunk``
bytes with a short timeout. Never ``readline()``, which costs one system call
per byte. On hang-up pyserial raises `SerialException` from ``read`` but a plain
`OSError` from ``in_waiting``; both surface here as `PortError`.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import serial

from acquisition.errors import UxoOSError

log = logging.getLogger(__name__)

_handlers_loaded = False


class PortError(UxoOSError):  # UxoOSError is an OSError (= IOError)
    """The port could not be opened, or it failed (unplugged, hung up)."""


def load_url_handlers() -> list[str]:
    """Make plug-in URL schemes known to pyserial (idempotent)."""
    global _handlers_loaded
    added: list[str] = []
    if _handlers_loaded:
        return added
    for ep in entry_points(group="uxo.url_handlers"):
        pkg = ep.value.split(":")[0]
        if pkg not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(pkg)
            added.append(pkg)
    _handlers_loaded = True
    return added


def open_port(url: str, *, baudrate: int = 115200, timeout: float = 0.05) -> serial.SerialBase:
    """Open ``url`` for reading; raise `PortError` with the reason on failure.

    Bytes already waiting in the port are kept. pyserial's POSIX ``open()``
    flushes the input queue (``tcflush``), which after a replug throws away the
    lines the device sent while the port was being reopened; they are data.
    """
    load_url_handlers()
    try:
        port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, exclusive=None,
                                     do_not_open=True)
        # An instance attribute shadows the method open() calls, for this one call.
        port._reset_input_buffer = _keep_input
        try:
            port.open()
        finally:
            del port._reset_input_buffer
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(f"cannot open {url}: {exc}") from exc
    return port


def _keep_input() -> None:
    """Stands in for pyserial's input flush while a port opens (see `open_port`)."""


def device_path(url: str) -> str | None:
    """The file a plain device URL names (``/dev/ttyUSB0``, a pty, a by-id link), else None.

    URLs with a scheme (``hwgrep://``, ``socket://``, ``sim://``) have no file
    whose appearance can be watched.
    """
    return None if "://" in url else url


def read_available(port: serial.SerialBase, chunk: int = 65536) -> bytes:
    """Read what the port has, waiting at most the port's timeout for the first byte.

    Returns b"" on timeout. Raises `PortError` when the device is gone.
    """
    try:
        waiting = port.in_waiting
        if not waiting:
            # One byte wakes us as soon as anything arrives; then take the rest.
            first = port.read(1)
            if not first:
                return b""
            waiting = port.in_waiting
            return bytes(first) + (bytes(port.read(min(waiting, chunk))) if waiting else b"")
        return bytes(port.read(min(waiting, chunk)))
    except (serial.SerialException, OSError) as exc:
        raise PortError(f"read failed: {exc}") from exc


def close_quietly(port: serial.SerialBase | None) -> None:
    if port is None:
        return
    try:
        port.close()
    except (serial.SerialException, OSError) as exc:  # already gone: nothing to save
        log.debug("close failed: %s", exc)
