"""A real pseudo-terminal pair standing in for a USB-serial instrument.

`PtyPair` opens ``os.openpty()``, puts the slave side in raw mode (so CR/LF
and control bytes pass untouched and nothing is echoed back) and exposes the
slave's path (``/dev/pts/N``) for a reader such as ``serial.Serial(path)``.
The emulator writes to the master side.

Why the emulator keeps its own slave fd open until `close`/`hangup`: on
Linux, once every slave fd is closed the master gets EIO/hang-up semantics and
bytes written before a reader opens the path would be lost or fail. With the
slave held open, bytes written before the reader arrives wait in the kernel's
tty buffer (a few KiB); when it is full, writes to the master would block, so
`write` waits (select) for room, which is back-pressure, not loss.

What a reader sees:
* before `hangup`: a normal raw tty; it may first receive bytes that were
  buffered before it opened the path (usually the middle of a line);
* after `hangup` (the master is closed, as when a USB cable is pulled): a
  pending ``read`` on the slave fails with EIO, which pyserial raises as
  ``SerialException``; ``in_waiting`` raises a plain ``OSError``; reopening
  the old path fails, because the pty no longer exists.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import termios
import time
import tty
from collections.abc import Callable

from acquisition.errors import UxoOSError


class PtyClosedError(UxoOSError):
    """The pty was hung up or closed; nothing more can be written."""


class PtyPair:
    """One pty: master for the emulator, raw-mode slave path for the reader."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        try:
            tty.setraw(slave, termios.TCSANOW)
            # Also drop output post-processing on the slave (setraw clears OPOST
            # already; be explicit since the reader relies on it).
            attrs = termios.tcgetattr(slave)
            attrs[1] &= ~termios.OPOST
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            flags = fcntl.fcntl(master, fcntl.F_GETFL)
            fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            self.path: str = os.ttyname(slave)
        except OSError:
            os.close(master)
            os.close(slave)
            raise
        self.master_fd: int | None = master
        self.slave_fd: int | None = slave
        self.bytes_written = 0

    @property
    def is_open(self) -> bool:
        return self.master_fd is not None

    def write(self, data: bytes, *, timeout: float | None = None,
              should_stop: Callable[[], bool] | None = None) -> int:
        """Write all of ``data`` to the master, waiting for room on EAGAIN/partial writes.

        Returns the number of bytes written: all of them, unless ``timeout``
        passed or ``should_stop()`` became true while waiting. Raises
        `PtyClosedError` after `hangup`/`close`.
        """
        view = memoryview(data)
        done = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while done < len(view):
            fd = self.master_fd
            if fd is None:
                raise PtyClosedError(errno.EIO, "pty was hung up")
            try:
                n = os.write(fd, view[done:])
            except BlockingIOError:
                n = 0
            except OSError as exc:
                raise PtyClosedError(exc.errno or errno.EIO, f"pty write failed: {exc}") from exc
            done += n
            self.bytes_written += n
            if done >= len(view):
                break
            if should_stop is not None and should_stop():
                break
            wait = 0.05
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    break
            with contextlib.suppress(OSError, ValueError):
                select.select([], [fd], [], wait)
        return done

    def read_command(self, timeout: float) -> bytes:
        """Bytes the reader wrote to the slave (commands), waiting up to ``timeout``."""
        fd = self.master_fd
        if fd is None:
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, 4096) if ready else b""
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            raise PtyClosedError(exc.errno or errno.EIO, f"pty read failed: {exc}") from exc

    def unread(self) -> int:
        """Bytes waiting in the slave's input queue, not yet consumed by the reader.

        Bytes just written may still be in flight inside the kernel and not
        counted yet; see `drain`.
        """
        if self.slave_fd is None:
            return 0
        try:
            buf = fcntl.ioctl(self.slave_fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int.from_bytes(buf, "little")

    def drain(self, timeout: float, should_stop: Callable[[], bool] | None = None) -> bool:
        """Wait until the reader has consumed everything written (or timeout)."""
        deadline = time.monotonic() + timeout
        # The kernel moves written bytes to the slave's queue asynchronously, so an
        # empty queue counts only once it has stayed empty for a few polls.
        empty_polls = 0
        while empty_polls < 5:
            empty_polls = empty_polls + 1 if self.unread() == 0 else 0
            if time.monotonic() >= deadline or (should_stop is not None and should_stop()):
                return False
            time.sleep(0.01)
        return True

    def hangup(self) -> None:
        """Vanish like an unplugged USB device: close both of our fds."""
        self.close()

    def close(self) -> None:
        for name in ("master_fd", "slave_fd"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort; callers should close()
        with contextlib.suppress(Exception):
            self.close()
