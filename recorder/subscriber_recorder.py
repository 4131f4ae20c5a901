"""Standalone recorder: subscribe to a publisher and archive what arrives.

``uxo record ENDPOINT --out DIR`` runs `record`. Unlike the in-process sink
it sees only what crossed the network: data blocks arrive at whatever
decimation the publisher sends (noted in the events), and messages can be
lost. Every loss is recorded: a jump of a topic's sequence number becomes a
``wire_gap`` event, and a jump of a block's ``first_index`` becomes a row of
the stream's gap table, as with any gap.

Streams are learnt from descriptor messages (the publisher re-sends them to
late joiners). Blocks of a stream whose descriptor has not arrived yet are
held (at most ``hold_blocks`` per stream, then dropped and counted). The file
is started when the first block can be written; a stream announced later
makes the sink rotate to a new file (SWMR cannot add datasets to an open one).
"""

from __future__ import annotations

import logging
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
    errors: list[str] = field(default_factory=list)


def event_payload(msg: Message) -> dict[str, Any]:
    """What the in-process sink would store for this event message."""
    h = msg.header
    if msg.kind in ("anomaly", "target", "state") and isinstance(h.get(msg.kind), dict):
        return dict(h[msg.kind])
    if msg.kind in ("session_start", "session_stop"):
        return dict(h.get("info") or {})
    return {k: v for k, v in h.items() if k not in _ENVELOPE}


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
    **subscriber_options: Any,
) -> RecordSummary:
    """Record everything ``endpoint`` publishes into ``out_dir`` until told to stop."""
    from acquisition.subscriber import Subscriber
    from recorder.sink import RecorderError, RecorderSink

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = RecordSummary()
    sink: RecorderSink | None = None
    held: dict[str, list[SampleBlock]] = defaultdict(list)
    announced_decimation: dict[str, int] = {}
    seen_gap_events = 0
    deadline = None if duration_s is None else time.monotonic() + duration_s
    prov = {"recorder": "uxo record (standalone subscriber)", "endpoint": endpoint,
            **(provenance or {})}

    def ensure_sink(sess: str) -> RecorderSink:
        nonlocal sink
        if sink is None:
            summary.session = session or sess or time.strftime("rec-%Y%m%dT%H%M%S")
            sink = RecorderSink(_free_path(out, summary.session), session=summary.session,
                                provenance={**prov, "source_session": sess},
                                flush_interval_s=flush_interval_s, rotate_bytes=rotate_bytes,
                                rotate_s=rotate_s)
        return sink

    def add_stream(desc: StreamDescriptor, sess: str) -> None:
        s = ensure_sink(sess)
        try:
            s.add_stream(desc, {"source": endpoint})
        except RecorderError as exc:  # descriptor changed mid-session: keep the first
            log.warning("%s", exc)
            summary.errors.append(str(exc))
            return
        for b in held.pop(desc.stream_id, []):
            write_block(b)

    def write_block(b: SampleBlock) -> None:
        assert sink is not None
        try:
            sink.write_block(b)
        except RecorderError as exc:
            summary.errors.append(str(exc))
            return
        summary.blocks += 1
        summary.samples += b.n

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
            if len(sub.gap_events) > seen_gap_events:
                for ge in sub.gap_events[seen_gap_events:]:
                    stream = ge.topic.split(".", 1)[1] if "." in ge.topic else ""
                    ensure_sink("").write_event(
                        "wire_gap", stream, {"topic": ge.topic, "expected": ge.expected,
                                             "got": ge.got, "missing": ge.missing},
                        time.time_ns())
                    summary.wire_gaps += 1
                    summary.missing_messages += ge.missing
                seen_gap_events = len(sub.gap_events)
            if msg is None:
                continue
            sess = str(msg.header.get("session", ""))
            if msg.kind == "descriptor":
                desc = sub.descriptors.get(msg.stream)
                if desc is not None:
                    add_stream(desc, sess)
                continue
            if msg.kind == "block":
                try:
                    b = block_from_message(msg)
                except MessageError as exc:
                    summary.rejected += 1
                    log.warning("bad block: %s", exc)
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
                    h = held[b.stream_id]
                    h.append(b)
                    if len(h) > hold_blocks:
                        h.pop(0)
                        summary.dropped_blocks += 1
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
        if sink is not None:
            sink.start()  # no-op if started; else a file that holds the events
            sink.close()
            summary.files = [str(p) for p in sink.files]
            summary.errors.extend(sink.errors)
        summary.dropped_blocks += sum(len(v) for v in held.values())
    return summary
