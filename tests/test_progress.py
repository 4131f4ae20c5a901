"""The progress helper draws on a terminal (a real pty) and stays silent in a pipe."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import time

from acquisition.progress import Progress, bar_enabled, progress


def test_silent_in_a_pipe():
    r, w = os.pipe()
    with os.fdopen(w, "w") as stream:
        assert not bar_enabled(stream)
        assert list(progress(range(5), "work", stream=stream)) == [0, 1, 2, 3, 4]
    with os.fdopen(r) as f:
        assert f.read() == ""


def _drain(fd: int) -> str:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
    return out.decode("utf-8", "replace")


def test_drawn_on_a_terminal():
    master, slave = os.openpty()
    # a terminal has a size (a bare pty reports 0 columns, where nothing fits)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        stream = os.fdopen(slave, "w")
        assert bar_enabled(stream)
        seen = ""
        with Progress(3, "map", stream=stream) as p:
            assert p.drawn
            for _ in range(3):
                time.sleep(0.12)  # past tqdm's redraw interval
                p.step(what="gridded")
                seen += _drain(master)
        assert p.count == 3
        stream.close()
    finally:
        os.close(master)
    assert "map" in seen and "3/3" in seen and "gridded" in seen
