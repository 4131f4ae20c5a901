"""``replay``: a driver that plays a recording back as a live stream.

The port is the recording: a file, a directory holding one session's rotated
files, or the same as ``replay:///abs/path``. Options:

* ``stream``: which recorded stream (default: the driver's ``stream_id`` if the
  recording has it, else the only stream; several streams and no choice is an
  error that lists them);
* ``speed``: 1.0 plays in real time, N plays N times faster, 0 as fast as the
  caller reads.

Blocks come back exactly as recorded (same seq, first_index, times, flags,
data and positions), so processing a recording twice, or processing it by
replay and live, gives the same events. Pacing follows a schedule on the
monotonic clock, anchored when the port opens: block k is due when its last
sample's recorded time, relative to the first block's, divided by ``speed``,
has elapsed. A caller that falls behind gets the overdue blocks at once, one
per call, without sleeping (python-can's replay slowed 2.7x by sleeping per
message). At the end of the recording `read_block` returns None and
`exhausted` is True; opening again after a close resumes where it stopped,
so a runner's reconnect never duplicates blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from acquisition.clock import NS_PER_S
from acquisition.drivers.base import Driver
from acquisition.drivers.transport import PortError
from acquisition.types import SampleBlock, StreamDescriptor

SCHEME = "replay://"


def recording_path(port: str) -> Path:
    """The file or directory a ``replay`` port names."""
    return Path(port[len(SCHEME):] if port.startswith(SCHEME) else port)


def _block_end_ns(b: SampleBlock) -> int:
    return b.t0_ns + round(b.n * NS_PER_S / b.rate_hz)


class ReplayDriver(Driver):
    """Plays one stream of a recording; see the module docstring."""

    name = "replay"

    def __init__(self, port: str, *, stream_id: str | None = None, **options: Any) -> None:
        super().__init__(port, stream_id=stream_id, **options)
        self._requested_stream = options.get("stream") or stream_id
        self.speed = float(options.get("speed", 1.0))
        if self.speed < 0:
            raise ValueError(f"speed must be >= 0, got {self.speed}")
        self._recording: Any = None
        self._iter: Iterator[SampleBlock] | None = None
        self._next: SampleBlock | None = None
        self._position = 0  # blocks handed out so far
        self._anchor_mono = 0
        self._anchor_t_ns = 0
        self._anchored = False
        self.exhausted = False
        #: Clock and sleep used for pacing; tests may replace both.
        self.clock: Callable[[], int] = time.monotonic_ns
        self.sleep: Callable[[float], None] = time.sleep

    # --- Driver API --------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.exhausted

    def open(self) -> StreamDescriptor:
        from recorder.reader import open_recording  # recorder is optional for live drivers

        self.close()
        path = recording_path(self.port_url)
        try:
            rec = open_recording(path)
        except (OSError, ValueError, KeyError) as exc:
            raise PortError(f"cannot open recording {path}: {exc}") from exc
        try:
            sid = self._choose_stream(list(rec.streams))
        except PortError:
            rec.close()
            raise
        self._recording = rec
        self.stream_id = sid
        self.descriptor = rec.streams[sid].descriptor
        self._iter = rec.streams[sid].iter_blocks(start=self._position)
        self._next = None
        self._anchored = False
        Driver.open_instances.add(self)
        return self.descriptor

    def _choose_stream(self, names: list[str]) -> str:
        want = self._requested_stream
        if want and want in names:
            return str(want)
        if self.options.get("stream"):
            raise PortError(f"recording has no stream {want!r}; it has {names}")
        if len(names) == 1:
            return names[0]
        raise PortError(f"recording holds several streams {names}: choose one with stream=")

    def close(self) -> None:
        self._iter = None
        if self._next is not None:
            self._next = None  # not handed out: read again from the file after a reopen
        if self._recording is not None:
            self._recording.close()
            self._recording = None
        Driver.open_instances.discard(self)

    def _peek(self) -> SampleBlock | None:
        if self._next is None and self._iter is not None:
            self._next = next(self._iter, None)
            if self._next is None:
                self.exhausted = True
        return self._next

    def due_mono_ns(self, block: SampleBlock) -> int:
        """Monotonic time at which ``block`` is due (speed > 0)."""
        return self._anchor_mono + round((_block_end_ns(block) - self._anchor_t_ns) / self.speed)

    def read_block(self, timeout: float) -> SampleBlock | None:
        if self._recording is None:
            raise PortError("replay port is not open")
        block = self._peek()
        if block is None:
            self.sleep(timeout)  # like an idle port: the caller's loop must not spin
            return None
        if self.speed > 0:
            if not self._anchored:
                # The first block after (re)opening is due now; the rest follow it.
                self._anchor_mono, self._anchor_t_ns = self.clock(), _block_end_ns(block)
                self._anchored = True
            wait_ns = self.due_mono_ns(block) - self.clock()
            if wait_ns > 0:
                if wait_ns > timeout * NS_PER_S:
                    self.sleep(timeout)
                    return None
                self.sleep(wait_ns / NS_PER_S)
        self._next = None
        self._position += 1
        self.counters.blocks += 1
        self.counters.samples += block.n
        self.counters.frames_ok += block.n
        self.counters.bytes += block.data.nbytes
        return block

    @property
    def position(self) -> int:
        """Blocks handed out so far."""
        return self._position
