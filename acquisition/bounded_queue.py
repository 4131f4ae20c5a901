"""The bounded queue between the driver runners and the service loop, with counted drops.

A runner must never be blocked for long by a slow consumer (the serial port
would overflow instead, silently), and the queue must never grow without
bound (a stalled consumer would eat the machine's memory). So `put` waits at
most ``put_timeout_s`` for room, then drops the item and counts it, per
stream: `dropped`, `dropped_samples` and `dropped_by_stream`. The recorder
sees a dropped block as a jump of ``first_index``, a gap like any other; the
service reports the counts in heartbeats (``queue_dropped``).
"""

from __future__ import annotations

import logging
import queue
from typing import Any

log = logging.getLogger(__name__)

#: Items the runner -> service queue holds (several minutes of blocks at usual rates).
QUEUE_MAX = 10000


def _stream_of(item: Any) -> str:
    for attr in ("block", "descriptor", "state"):
        obj = getattr(item, attr, None)
        if obj is not None:
            return str(getattr(obj, "stream_id", ""))
    return ""


class BoundedQueue(queue.Queue):
    """A `queue.Queue` of at most ``maxsize`` items whose `put` drops, counted, when full."""

    def __init__(self, maxsize: int = QUEUE_MAX, put_timeout_s: float = 1.0) -> None:
        if maxsize < 1:
            raise ValueError("a bounded queue needs maxsize >= 1")
        super().__init__(maxsize)
        self.put_timeout_s = put_timeout_s
        self.dropped = 0
        self.dropped_samples = 0
        self.dropped_by_stream: dict[str, int] = {}

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``, waiting at most ``put_timeout_s``; drop and count it if still full."""
        try:
            super().put(item, block, self.put_timeout_s if timeout is None else timeout)
        except queue.Full:
            sid = _stream_of(item)
            self.dropped += 1
            self.dropped_by_stream[sid] = self.dropped_by_stream.get(sid, 0) + 1
            blk = getattr(item, "block", None)
            if blk is not None:
                self.dropped_samples += int(blk.n)
            log.warning("%s: consumer queue full, dropped a %s (%d so far)", sid,
                        getattr(item, "kind", "item"), self.dropped)
