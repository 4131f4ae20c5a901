"""Pure line framing: bytes in, complete lines out, no I/O.

Real devices send half lines after power-up, drop bytes and emit garbage. The
framer keeps the unfinished tail between feeds, splits on LF (a trailing CR is
stripped), and refuses lines longer than ``max_line`` bytes: an over-long run
without a newline is discarded up to the next newline and counted as a resync,
so a babbling device cannot grow the buffer without bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FramerStats:
    lines: int = 0
    overlong: int = 0
    discarded_bytes: int = 0


class LineFramer:
    """Split a byte stream into lines; state is only the unfinished tail."""

    def __init__(self, max_line: int = 512) -> None:
        if max_line < 8:
            raise ValueError("max_line must be at least 8 bytes")
        self.max_line = max_line
        self.stats = FramerStats()
        self._tail = b""
        self._overflowing = False

    def reset(self) -> None:
        """Forget the tail (after a reconnect the old half line is worthless).

        A half line at the start of the new connection is not dropped here: it
        reaches the parser, which rejects and counts it like any bad line.
        """
        if self._tail:
            self.stats.discarded_bytes += len(self._tail)
        self._tail = b""
        self._overflowing = False

    @property
    def pending(self) -> int:
        return len(self._tail)

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete lines that ``data`` finishes, CR/LF stripped.

        Empty lines are dropped. Over-long lines are discarded and counted.
        """
        if not data:
            return []
        buf = self._tail + data if self._tail else bytes(data)
        parts = buf.split(b"\n")
        tail = parts.pop()
        if self._overflowing and parts:
            # The first part ends the over-long line we have been discarding.
            self.stats.discarded_bytes += len(parts[0]) + 1
            parts = parts[1:]
            self._overflowing = False
        out: list[bytes] = []
        limit = self.max_line
        for p in parts:
            if len(p) > limit:
                self.stats.overlong += 1
                self.stats.discarded_bytes += len(p) + 1
                continue
            if p.endswith(b"\r"):
                p = p[:-1]
            if p:
                out.append(p)
        if len(tail) > limit:
            if not self._overflowing:
                self.stats.overlong += 1
            self.stats.discarded_bytes += len(tail)
            self._overflowing = True
            tail = b""
        self._tail = tail
        self.stats.lines += len(out)
        return out
