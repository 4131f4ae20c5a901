"""Standalone recorder: subscribe to a publisher and archive what arrives.

``uxo record ENDPOINT --out DIR`` runs `record`. Unlike the in-process sink
it sees only what crossed the network: data blocks arrive at whatever
decimation the publisher sends (noted in the events), and messages can be
lost. Every loss is recorded: a jump of a topic's sequence number becomes a
``wire_gap`` event, and a jump of a block's ``first_index`` becomes a row of
the stream's gap table, as with any gap.

It trusts nothing the publisher says:

* file names come from a sanitised session id (`safe_name`): a session named
  ``../x`` or ``/etc/x`` still writes inside ``--out``;
* blocks of a stream whose descriptor has not arrived yet are held, bounded
  by count (``hold_blocks``) and by bytes, per stream (``hold_bytes``) and in
  total (``hold_bytes_total``); beyond, the oldest are dropped and counted;
* at most ``max_streams`` streams are recorded; blocks of any further stream
  are dropped and counted (`RecordSummary.refused_streams`);
* every drop is counted in the summary and, at the end, written to the file
  as a ``recorder_drops`` state event.

Streams are learnt from descriptor messages (the publisher re-sends them to
late joiners). The file is started when the first block can be written; a
stream announced later makes the sink rotate to a new file of the session
(SWMR cannot add datasets to an open file; docs/recording.md says why that
is kept), so ``max_streams`` also bounds the number of files a publisher can
make the recorder open. The sink flushes on its own timer thread, so its
loss bound holds however many messages arrive.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.messages import Message, MessageError, block_from_message
from acquisition.types import SampleBlock, StreamDescriptor

log = logging.getLogger(__name__)

_ENVELOPE = {"v", "kind", "session", "stream", "seq", "t_ns", "arrays"}


@dataclass(slots=True)
class RecordSummary:
    session: str = ""
    files: list[str] = field(default_factory=list)
    blocks: int = 0
    samples: int = 0
    events: int = 0
    wire_gaps: int = 0
    missing_messages: int = 0
    rejected: int = 0
    dropped_blocks: int = 0
    dropped_bytes: int = 0
    #: Stream ids past ``max_streams`` whose blocks were dropped (at most 100 listed).
    refused_streams: list[str] = field(default_factory=list)
    refused_blocks: int = 0
    #: Topic sequence resets (a publisher restart, or a jump beyond belief).
    wire_resets: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def drops(self) -> str:
        """One line of what was dropped, or "" when nothing was."""
        parts = []
        if self.dropped_blocks:
            parts.append(f"{self.dropped_blocks} held blocks dropped "
                         f"({self.dropped_bytes / 1e6:.1f} MB) waiting for a descriptor")
        if self.refused_blocks or self.refused_streams:
            parts.append(f"{self.refused_blocks} blocks of {len(self.refused_streams)} "
                         "streams past the stream limit dropped")
        return "; ".join(parts)


def event_payload(msg: Message) -> dict[str, Any]:
    """What the in-process sink would store for this event message."""
    h = msg.header
    if msg.kind in ("anomaly", "target", "state") and isinstance(h.get(msg.kind), dict):
        return dict(h[msg.kind])
    if msg.kind in ("session_start", "session_stop"):
        return dict(h.get("info") or {})
    return {k: v for k, v in h.items() if k not in _ENVELOPE}


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(session: str, *, max_len: int = 64) -> str:
    """A file-name stem from a session id: letters, digits, ``_.-`` only, no leading
    dot, at most ``max_len`` characters; never a path. "" when nothing is left."""
    name = _UNSAFE.sub("_", session).lstrip(".")[:max_len]
    return "" if name in ("", "_") else name


def _free_path(out_dir: Path, session: str) -> Path:
    p = out_dir / f"{session}.h5"
    k = 1
    while p.exists() or p.with_name(f"{p.stem}.0001.h5").exists():
        p = out_dir / f"{session}-{k}.h5"
        k += 1
    return p


def record(
    endpoint: str,
    out_dir: str | Path,
    *,
    session: str | None = None,
    provenance: dict[str, Any] | None = None,
    duration_s: float | None = None,
    until_session_stop: bool = False,
    stop: threading.Event | None = None,
    flush_interval_s: float = 1.0,
    rotate_bytes: int | None = None,
    rotate_s: float | None = None,
    hold_blocks: int = 1000,
    hold_bytes: int = 64 << 20,
    hold_bytes_total: int = 256 << 20,
    max_streams: int = 16,
    **subscriber_options: Any,
) -> RecordSummary:
    """Record everything ``endpoint`` publishes into ``out_dir`` until told to stop.

    ``stop`` (an Event) ends the recording cleanly: the file is closed valid
    and the summary returned. Limits are described in the module docstring.
    """
    from acquisition.subscriber import Subscriber
    from recorder.sink import RecorderError, RecorderSink

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = RecordSummary()
    sink: RecorderSink | None = None
    held: dict[str, list[SampleBlock]] = defaultdict(list)
    held_bytes: dict[str, int] = defaultdict(int)
    announced_decimation: dict[str, int] = {}
    deadline = None if duration_s is None else time.monotonic() + duration_s
    prov = {"recorder": "uxo record (standalone subscriber)", "endpoint": endpoint,
            **(provenance or {})}

    def ensure_sink(sess: str) -> RecorderSink:
        nonlocal sink
        if sink is None:
            summary.session = (safe_name(session or sess)
                               or time.strftime("rec-%Y%m%dT%H%M%S"))
            sink = RecorderSink(_free_path(out, summary.session), session=summary.session,
                                provenance={**prov, "source_session": sess},
                                flush_interval_s=flush_interval_s, rotate_bytes=rotate_bytes,
                                rotate_s=rotate_s, timer=True)
        return sink

    def add_stream(desc: StreamDescriptor, sess: str) -> None:
        s = ensure_sink(sess)
        try:
            s.add_stream(desc, {"source": endpoint})
        except RecorderError as exc:  # descriptor changed mid-session: keep the first
            log.warning("%s", exc)
            summary.errors.append(str(exc))
            return
        held_bytes.pop(desc.stream_id, None)
        for b in held.pop(desc.stream_id, []):
            write_block(b)

    def n_streams() -> int:
        return len(set(held) | (set(sink.streams) if sink is not None else set()))

    def admitted(stream_id: str) -> bool:
        """The stream is recorded, held, or there is room for one more."""
        if stream_id in held or (sink is not None and stream_id in sink.streams):
            return True
        if n_streams() < max_streams:
            return True
        if stream_id not in summary.refused_streams:
            if len(summary.refused_streams) < 100:
                summary.refused_streams.append(stream_id)
            log.warning("stream %r refused: already %d streams (the limit)", stream_id,
                        max_streams)
        return False

    def drop_oldest(stream_id: str) -> None:
        b = held[stream_id].pop(0)
        held_bytes[stream_id] -= _nbytes(b)
        summary.dropped_blocks += 1
        summary.dropped_bytes += _nbytes(b)

    def hold(b: SampleBlock) -> None:
        h = held[b.stream_id]
        h.append(b)
        held_bytes[b.stream_id] += _nbytes(b)
        while h and (len(h) > hold_blocks or held_bytes[b.stream_id] > hold_bytes):
            drop_oldest(b.stream_id)
        # Over the total: take from the stream holding most, oldest first.
        while sum(held_bytes.values()) > hold_bytes_total:
            drop_oldest(max(held_bytes, key=lambda k: held_bytes[k]))

    def write_block(b: SampleBlock) -> None:
        assert sink is not None
        try:
            sink.write_block(b)
        except RecorderError as exc:
            summary.errors.append(str(exc))
            return
        summary.blocks += 1
        summary.samples += b.n

    # ZeroMQ bounds its receive queue by messages, not bytes (each frame at
    # most 64 MiB): a shorter queue than a watcher's bounds what a publisher
    # can park in this process while a flush holds the loop.
    subscriber_options.setdefault("rcvhwm", 1000)
    sub = Subscriber(endpoint, topics=("",), **subscriber_options)
    try:
        while True:
            if stop is not None and stop.is_set():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            msg = sub.recv(0.1)
            if sink is not None:
                sink.maybe_flush()
            # Consumed and cleared, so a publisher cannot grow these lists.
            for kind, evs in (("wire_gap", sub.gap_events), ("wire_reset", sub.reset_events)):
                for ge in evs:
                    stream = ge.topic.split(".", 1)[1] if "." in ge.topic else ""
                    ensure_sink("").write_event(
                        kind, stream, {"topic": ge.topic, "expected": ge.expected,
                                       "got": ge.got, "missing": ge.missing},
                        time.time_ns())
                    if kind == "wire_gap":
                        summary.wire_gaps += 1
                        summary.missing_messages += ge.missing
                    else:
                        summary.wire_resets += 1
                evs.clear()
            if msg is None:
                continue
            sess = str(msg.header.get("session", ""))
            if msg.kind == "descriptor":
                desc = sub.descriptors.get(msg.stream)
                if desc is not None and admitted(desc.stream_id):
                    add_stream(desc, sess)
                continue
            if msg.kind == "block":
                try:
                    b = block_from_message(msg)
                except MessageError as exc:
                    summary.rejected += 1
                    log.warning("bad block: %s", exc)
                    continue
                if not admitted(b.stream_id):
                    summary.refused_blocks += 1
                    continue
                dec = int(msg.header.get("decimation", 1) or 1)
                if dec != announced_decimation.get(b.stream_id, 1):
                    announced_decimation[b.stream_id] = dec
                    ensure_sink(sess).write_event(
                        "state", b.stream_id,
                        {"stream_id": b.stream_id, "state": "decimated",
                         "reason": f"publisher sends every {dec}th sample", "t_ns": msg.header[
                             "t_ns"], "decimation": dec}, int(msg.header["t_ns"]))
                known = sink is not None and b.stream_id in sink.streams
                if not known and b.stream_id in sub.descriptors:
                    add_stream(sub.descriptors[b.stream_id], sess)
                    known = True
                if known:
                    write_block(b)
                else:
                    hold(b)
                continue
            ensure_sink(sess).write_event(msg.kind, msg.stream, event_payload(msg),
                                          int(msg.header["t_ns"]))
            summary.events += 1
            if until_session_stop and msg.kind == "session_stop":
                break
    except KeyboardInterrupt:
        log.info("interrupted: closing the recording")
    finally:
        summary.rejected += sub.rejected
        sub.close()
        for sid in list(held):
            while held[sid]:
                drop_oldest(sid)
        if sink is not None and summary.drops:
            sink.write_event("state", "", {"state": "recorder_drops", "reason": summary.drops,
                                           "dropped_blocks": summary.dropped_blocks,
                                           "dropped_bytes": summary.dropped_bytes,
                                           "refused_blocks": summary.refused_blocks,
                                           "refused_streams": summary.refused_streams},
                             time.time_ns())
        if sink is not None:
            sink.start()  # no-op if started; else a file that holds the events
            sink.close()
            summary.files = [str(p) for p in sink.files]
            summary.errors.extend(sink.errors)
    return summary


def _nbytes(b: SampleBlock) -> int:
    return int(b.data.nbytes) + (0 if b.positions is None else int(b.positions.nbytes))
