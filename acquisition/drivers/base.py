"""The abstract driver and the line-protocol template most instruments fit.

A driver turns a port's bytes into `SampleBlock`s: ``open() -> StreamDescriptor``,
``read_block(timeout) -> SampleBlock | None``, ``close()``. It does not retry:
reconnects, back-off and the stall watchdog belong to the runner
(`acquisition.runner`), which calls ``open`` again after a `PortError`.

`LineDriver` implements the template for ASCII line protocols: bulk reads,
`LineFramer`, and a pure ``parse_lines`` hook that a protocol module supplies.
Subclasses state their channels and geometry in ``describe()``.
"""

from __future__ import annotations

import abc
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from acquisition.clock import NS_PER_S, mono_ns, wall_ns
from acquisition.drivers.framing import LineFramer
from acquisition.drivers.transport import PortError, close_quietly, open_port, read_available
from acquisition.events import Counters
from acquisition.types import BlockFlags, SampleBlock, StreamDescriptor


@dataclass(slots=True)
class ParsedLines:
    """What a pure line parser returns for a batch of lines.

    ``values`` is (n, channels); ``positions`` (n, dims) or None; ``device_ns``
    (n,) int64 device time stamps or None; ``counter`` (n,) int64 device sample
    counters or None (used to detect lost lines); ``rejects`` lists
    ``(line_number_in_batch, reason)`` for lines that did not decode; ``info``
    collects key/value pairs from banner/status lines.
    """

    values: np.ndarray
    positions: np.ndarray | None = None
    device_ns: np.ndarray | None = None
    counter: np.ndarray | None = None
    rejects: list[tuple[int, str]] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])


class Driver(abc.ABC):
    """One instrument stream on one port."""

    #: Registry name (set by subclasses).
    name: ClassVar[str] = ""
    #: Default serial settings for the instrument.
    baudrate: ClassVar[int] = 115200
    #: Drivers whose port is open now; the test suite fails a test that leaks one.
    open_instances: ClassVar[weakref.WeakSet[Driver]] = weakref.WeakSet()

    def __init__(self, port: str, *, stream_id: str | None = None, **options: Any) -> None:
        self.port_url = port
        self.stream_id = stream_id or self.name or "stream"
        self.options = options
        self.counters = Counters()
        self.descriptor: StreamDescriptor | None = None

    @abc.abstractmethod
    def open(self) -> StreamDescriptor:
        """Open (or re-open) the port; return the stream's descriptor."""

    @abc.abstractmethod
    def read_block(self, timeout: float) -> SampleBlock | None:
        """Return the next block, or None if nothing complete arrived in ``timeout``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the port. Safe to call twice."""

    @property
    def finished(self) -> bool:
        """True when the stream has ended for good (a replayed file or simulated
        survey ran out). Live instruments never finish; the runner then stops."""
        return False

    def __enter__(self) -> Driver:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Longest a sample waits in a driver for its block to be cut (s): 0.05 s of
#: the 0.5 s the lane pipeline's live events may take; at 10 Hz a block per line.
DEFAULT_MAX_BLOCK_S = 0.05


class LineDriver(Driver):
    """Template for ASCII line protocols; subclasses give `describe` and `parse_lines`.

    Blocks are cut at ``block_size`` samples or when ``max_block_s`` has passed
    since the block's first sample arrived, whichever comes first, so a slow
    instrument still gives the operator feedback within a fraction of a second
    (`DEFAULT_MAX_BLOCK_S`).
    """

    max_line: ClassVar[int] = 512
    #: False when decoding a capture (`acquisition.decode`): the host clock then says
    #: nothing about when the bytes were sent (the NMEA driver dates rows by it live).
    live: bool = True

    def __init__(
        self,
        port: str,
        *,
        stream_id: str | None = None,
        block_size: int = 500,
        max_block_s: float = DEFAULT_MAX_BLOCK_S,
        rate_hz: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(port, stream_id=stream_id, **options)
        self.block_size = int(block_size)
        self.max_block_s = float(max_block_s)
        self.rate_hz = float(rate_hz) if rate_hz else self.default_rate_hz()
        self._port = None
        self._framer = LineFramer(self.max_line)
        self._seq = 0
        self._next_index = 0
        self._last_counter: int | None = None
        self._pending: list[ParsedLines] = []
        self._ready: deque[SampleBlock] = deque()
        self._pending_n = 0
        self._pending_since_ns = 0
        self._pending_flags = BlockFlags.NONE
        self._flags_for_next = BlockFlags.NONE
        self._t_anchor_ns: int | None = None  # host wall time of sample index 0
        self._opened_once = False
        self.info: dict[str, str] = {}

    # --- hooks -------------------------------------------------------------------
    def default_rate_hz(self) -> float:
        return 10.0

    @abc.abstractmethod
    def describe(self) -> StreamDescriptor:
        """The descriptor of this stream (channels, units, geometry)."""

    @abc.abstractmethod
    def parse_lines(self, lines: list[bytes]) -> ParsedLines:
        """Decode a batch of complete lines. Pure; must never raise on bad input."""

    # --- Driver API ----------------------------------------------------------------
    def open(self) -> StreamDescriptor:
        close_quietly(self._port)
        baud = int(self.options.get("baudrate", self.baudrate))
        self._port = open_port(self.port_url, baudrate=baud)
        Driver.open_instances.add(self)
        self._framer.reset()
        if self._pending_n:
            # Samples read before the port was lost belong before the gap.
            parts, self._pending, self._pending_n = self._pending, [], 0
            self._ready.extend(self._assemble(parts))
        if self._opened_once:
            self._flags_for_next |= BlockFlags.RECONNECT
        self._opened_once = True
        # The stream's meaning is fixed for its life: a reconnect (or a banner
        # seen since) does not change the descriptor subscribers already hold.
        if self.descriptor is None:
            self.descriptor = self.describe()
        return self.descriptor

    def close(self) -> None:
        close_quietly(self._port)
        self._port = None
        Driver.open_instances.discard(self)

    def feed(self, data: bytes) -> None:
        """Push raw bytes through framer and parser (also used by `uxo decode`)."""
        self.counters.bytes += len(data)
        before = self._framer.stats.overlong
        lines = self._framer.feed(data)
        overlong = self._framer.stats.overlong - before
        if overlong:
            self.counters.reject("overlong", overlong)
            self.counters.resyncs += overlong
            self._pending_flags |= BlockFlags.RESYNC
        if not lines:
            return
        parsed = self.parse_lines(lines)
        if parsed.info:
            self.info.update(parsed.info)
        for _, reason in parsed.rejects:
            self.counters.reject(reason)
        if parsed.rejects:
            self.counters.resyncs += 1
            self._pending_flags |= BlockFlags.RESYNC
        if parsed.n == 0:
            return
        self.counters.frames_ok += parsed.n
        if not self._pending:
            self._pending_since_ns = mono_ns()
        self._pending.append(parsed)
        self._pending_n += parsed.n

    def read_block(self, timeout: float) -> SampleBlock | None:
        if self._port is None:
            raise PortError("port is not open")
        deadline = mono_ns() + int(timeout * NS_PER_S)
        while True:
            block = self._take_block(force=False)
            if block is not None:
                return block
            now = mono_ns()
            if now >= deadline:
                return None
            data = read_available(self._port)
            if data:
                self.feed(data)

    def flush(self) -> SampleBlock | None:
        """Return whatever samples are pending as a (short) block."""
        return self._take_block(force=True)

    # --- block assembly ------------------------------------------------------------
    def _take_block(self, *, force: bool) -> SampleBlock | None:
        if self._ready:
            return self._ready.popleft()
        if not self._pending_n:
            return None
        age_s = (mono_ns() - self._pending_since_ns) / NS_PER_S
        if not force and self._pending_n < self.block_size and age_s < self.max_block_s:
            return None
        parts, self._pending, self._pending_n = self._pending, [], 0
        self._ready.extend(self._assemble(parts))
        return self._ready.popleft() if self._ready else None

    def _assemble(self, parts: list[ParsedLines]) -> list[SampleBlock]:
        values = np.concatenate([p.values for p in parts])
        has_pos = all(p.positions is not None for p in parts)
        positions = np.concatenate([p.positions for p in parts]) if has_pos else None
        device = (np.concatenate([p.device_ns for p in parts])
                  if all(p.device_ns is not None for p in parts) else None)
        counter = (np.concatenate([p.counter for p in parts])
                   if all(p.counter is not None for p in parts) else None)
        flags = self._pending_flags | self._flags_for_next
        self._pending_flags = BlockFlags.NONE
        self._flags_for_next = BlockFlags.NONE
        now_wall, now_mono = wall_ns(), mono_ns()
        if counter is not None:
            return self._assemble_counted(values, positions, device, counter, flags,
                                          now_wall, now_mono)
        if flags & BlockFlags.RECONNECT and self._t_anchor_ns is not None:
            # Without a device counter the samples lost while unplugged are
            # estimated from the host clock; a gap is never papered over.
            # The newest sample arrived now; the block's first sample is len-1 before it.
            newest = round((now_wall - self._t_anchor_ns) * self.rate_hz / NS_PER_S)
            expected = newest - len(values) + 1
            if expected > self._next_index:
                self._next_index = expected
                flags |= BlockFlags.GAP
                self.counters.gaps += 1
        return [self._emit(values, positions, device, flags, now_wall, now_mono)]

    def _assemble_counted(
        self, values, positions, device, counter, flags, now_wall, now_mono
    ) -> list[SampleBlock]:
        # Split wherever the device counter does not advance by one: each run of
        # consecutive samples becomes its own block so implicit times stay exact.
        breaks = np.flatnonzero(np.diff(counter) != 1) + 1
        starts = np.concatenate(([0], breaks))
        stops = np.concatenate((breaks, [len(counter)]))
        out: list[SampleBlock] = []
        for a, b in zip(starts, stops, strict=True):
            c0 = int(counter[a])
            f = flags
            if self._last_counter is not None:
                step = c0 - self._last_counter
                if step > 1:
                    self._next_index += step - 1
                    f |= BlockFlags.GAP
                    self.counters.gaps += 1
                elif step < 1:
                    # Counter restarted (device power cycle) or went back.
                    f |= BlockFlags.CLOCK_JUMP
                    if flags & BlockFlags.RECONNECT:
                        f |= BlockFlags.GAP
                        self.counters.gaps += 1
            self._last_counter = int(counter[b - 1])
            blk = self._emit(values[a:b], None if positions is None else positions[a:b],
                             None if device is None else device[a:b], f, now_wall, now_mono)
            flags = BlockFlags.NONE
            out.append(blk)
        return out

    def _emit(self, values, positions, device, flags, now_wall, now_mono) -> SampleBlock:
        n = len(values)
        if self._t_anchor_ns is None:
            # Anchor implicit times so the newest sample lands at "now".
            self._t_anchor_ns = now_wall - round((n - 1) * NS_PER_S / self.rate_hz)
            self._t_anchor_ns -= round(self._next_index * NS_PER_S / self.rate_hz)
        t0 = self._t_anchor_ns + round(self._next_index * NS_PER_S / self.rate_hz)
        block = SampleBlock(
            stream_id=self.stream_id,
            seq=self._seq,
            first_index=self._next_index,
            t0_ns=t0,
            rate_hz=self.rate_hz,
            data=np.ascontiguousarray(values, dtype=np.float64),
            positions=None if positions is None else np.ascontiguousarray(positions),
            host_mono_ns=now_mono,
            host_wall_ns=now_wall,
            device_time_ns=None if device is None else int(device[0]),
            flags=flags,
        )
        self._seq += 1
        self._next_index += n
        self.counters.samples += n
        self.counters.blocks += 1
        return block
