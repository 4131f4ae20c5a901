"""Receive events from a publisher: decode, validate, count losses and rejects.

A `Subscriber` connects a SUB socket, decodes each multipart message with
`acquisition.messages.decode`, checks the kind's body (typed fields present
and of the right type) and hands back `Message` objects. It never dies on bad
input: a malformed message is counted in `rejected` / `rejected_by_reason`
and skipped (``strict=True`` raises `MessageError` instead, for tests).

Loss is made visible from sequence numbers, which the publisher assigns per
topic: for each (session, topic) the subscriber remembers the last ``seq`` and
records a gap when the next one jumps (`gaps`, `gap_events`). The first
message seen on a topic only sets the baseline, so a late joiner does not
count the history it never asked for as lost. A jump forward of more than
``max_gap`` (default `MAX_GAP`) is not believable as loss: it is a publisher
that restarted or a foreign one on the same session and topic, so it is
counted in `resets` (and `reset_events`) and the count starts again from it;
a step backwards is counted the same way.

By default the subscriber also filters for ``descriptor.`` and ``session`` so
it learns what each stream's data mean (`descriptors`) before the data; see
acquisition.publisher for how the publisher guarantees that order. Re-sent
copies (``resent: true``) identical to what it already holds are counted in
`duplicates` and not returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, NamedTuple

import zmq

from acquisition.events import Anomaly, Target
from acquisition.messages import (
    MAX_ARRAY_BYTES,
    MAX_HEADER_BYTES,
    Message,
    MessageError,
    block_from_message,
    decode,
    descriptor_from_message,
    state_from_message,
    topic_for,
)
from acquisition.types import StreamDescriptor

#: Topics added to the caller's so that descriptors and session info arrive.
META_TOPICS = ("descriptor.", "session")
#: Longest single wait inside zmq (ms): how late a Ctrl-C may be noticed.
POLL_SLICE_MS = 200
#: Largest seq jump counted as lost messages (a day at 190 messages/s); a
#: larger jump is a reset or a foreign publisher, not loss.
MAX_GAP = 1 << 24
#: Gap and reset events kept (the newest): a publisher cannot grow the lists
#: without bound; the counts in `gaps` and `resets` stay exact.
MAX_EVENTS_KEPT = 10_000
#: Longest frame accepted from the wire: ZeroMQ drops a peer that sends more,
#: before buffering it (a message's arrays and header are bounded by these).
MAX_FRAME_BYTES = max(MAX_ARRAY_BYTES, MAX_HEADER_BYTES)


class GapEvent(NamedTuple):
    """``expected`` was the next seq on ``topic``; ``got`` arrived instead."""

    topic: str
    expected: int
    got: int

    @property
    def missing(self) -> int:
        return self.got - self.expected


class Subscriber:
    """A SUB socket that yields validated `Message`s and keeps loss statistics.

    ``endpoint`` (or several) is connected, not bound. ``topics`` are prefix
    filters (``""`` for everything, ``"target."`` for every stream's targets).
    ``meta`` adds the descriptor and session topics. For CURVE give the
    publisher's public key as ``curve_server_key``; this client's key pair is
    generated unless given (the publisher's allow-list needs the public half).
    ``bus_keys`` names a key directory (acquisition.buskeys) giving all three.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str],
        topics: Sequence[str] = ("",),
        *,
        context: zmq.Context | None = None,
        rcvhwm: int = 10000,
        strict: bool = False,
        meta: bool = True,
        curve_server_key: bytes | str | None = None,
        curve_public_key: bytes | str | None = None,
        curve_secret_key: bytes | str | None = None,
        bus_keys: str | Path | None = None,
        max_gap: int = MAX_GAP,
    ) -> None:
        if bus_keys is not None:
            from acquisition.buskeys import load

            keys = load(bus_keys).subscriber_options()
            curve_server_key = keys["curve_server_key"]
            curve_public_key = keys["curve_public_key"]
            curve_secret_key = keys["curve_secret_key"]
        self.strict = strict
        self.max_gap = int(max_gap)
        self._own_context = context is None
        self._ctx = context if context is not None else zmq.Context()
        self._closed = False
        self.topics = tuple(topics)
        self.received = 0
        self.rejected = 0
        self.rejected_by_reason: dict[str, int] = {}
        self.gaps: dict[str, int] = {}
        self.gap_events: list[GapEvent] = []
        #: Times a topic's seq went backwards in one session (publisher restarted).
        self.resets: dict[str, int] = {}
        #: Each reset: ``expected`` was due, ``got`` came (backwards or beyond max_gap).
        self.reset_events: list[GapEvent] = []
        self.descriptors: dict[str, StreamDescriptor] = {}
        #: session name -> info of its session_start.
        self.sessions: dict[str, dict[str, Any]] = {}
        self._last_seq: dict[tuple[str, str], int] = {}
        #: Re-sent descriptors / session starts identical to what we already hold
        #: (the publisher re-sends them on every join); not returned.
        self.duplicates = 0

        sock = self._ctx.socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
            if curve_server_key is not None:
                if curve_public_key is None or curve_secret_key is None:
                    pub, sec = zmq.curve_keypair()
                    curve_public_key, curve_secret_key = pub, sec
                sock.curve_serverkey = _b(curve_server_key)
                sock.curve_publickey = _b(curve_public_key)
                sock.curve_secretkey = _b(curve_secret_key)
            self.public_key = None if curve_public_key is None else _b(curve_public_key).decode()
            wanted = list(self.topics)
            if meta and "" not in wanted:
                wanted += [t for t in META_TOPICS if t not in wanted]
            for t in wanted:
                sock.setsockopt(zmq.SUBSCRIBE, t.encode("utf-8"))
            for ep in [endpoint] if isinstance(endpoint, str) else endpoint:
                sock.connect(ep)
        except Exception:
            self._closed = True
            sock.close(linger=0)
            if self._own_context:
                self._ctx.term()
            raise
        self.socket = sock

    # --- receiving -------------------------------------------------------------

    def recv(self, timeout_s: float | None = None) -> Message | None:
        """The next valid message, or None after ``timeout_s`` (None: wait forever).

        Malformed messages in between are counted and skipped.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                # Try first: with a backlog this skips a poll() per message.
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                # Never block in zmq for long: a Ctrl-C delivered to another
                # thread of the process does not interrupt this thread's poll,
                # and Python raises KeyboardInterrupt only once control is
                # back in the interpreter (docs/wire.md, `uxo tail`).
                wait_ms = POLL_SLICE_MS
                if deadline is not None:
                    left_ms = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
                    if left_ms == 0:
                        return None
                    wait_ms = min(wait_ms, left_ms)
                self.socket.poll(wait_ms, zmq.POLLIN)
                continue
            msg = self.accept(frames)
            if msg is not None:
                return msg
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def accept(self, frames: list[bytes]) -> Message | None:
        """Decode, validate and account for one message's frames.

        Returns the message, or None if it was rejected (counted). Exposed so
        frames obtained elsewhere (a recorder's own socket) get the same checks.
        """
        try:
            msg = decode(frames)
            expected_topic = topic_for(msg.kind, msg.stream)
            if msg.topic != expected_topic:
                raise MessageError(
                    f"topic {msg.topic!r} does not match kind/stream ({expected_topic!r})",
                    "topic_mismatch",
                )
            self._track_seq(msg)
            check_body(msg)
        except MessageError as exc:
            self.rejected += 1
            self.rejected_by_reason[exc.reason] = self.rejected_by_reason.get(exc.reason, 0) + 1
            if self.strict:
                raise
            return None
        if msg.kind == "descriptor":
            desc = descriptor_from_message(msg)
            if msg.header.get("resent") and self.descriptors.get(msg.stream) == desc:
                self.duplicates += 1
                return None
            self.descriptors[msg.stream] = desc
        elif msg.kind == "session_start":
            info = dict(msg.header.get("info") or {})
            session = msg.header["session"]
            if msg.header.get("resent") and self.sessions.get(session) == info:
                self.duplicates += 1
                return None
            self.sessions[session] = info
        self.received += 1
        return msg

    def _track_seq(self, msg: Message) -> None:
        key = (msg.header["session"], msg.topic)
        seq = msg.seq
        last = self._last_seq.get(key)
        self._last_seq[key] = seq
        if last is None:
            return
        expected = last + 1
        if expected < seq <= expected + self.max_gap:
            self.gaps[msg.topic] = self.gaps.get(msg.topic, 0) + (seq - expected)
            _append_bounded(self.gap_events, GapEvent(msg.topic, expected, seq))
        elif seq != expected:
            self.resets[msg.topic] = self.resets.get(msg.topic, 0) + 1
            _append_bounded(self.reset_events, GapEvent(msg.topic, expected, seq))

    def messages(
        self,
        timeout_s: float | None = None,
        until: Callable[[Message], bool] | None = None,
    ) -> Iterator[Message]:
        """Yield messages until ``timeout_s`` has passed in total, or until
        ``until(msg)`` is true (that message is yielded first)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            msg = self.recv(left)
            if msg is None:
                return
            yield msg
            if until is not None and until(msg):
                return

    @property
    def missing(self) -> int:
        """Messages lost in total, as seen from sequence gaps."""
        return sum(self.gaps.values())

    def summary(self) -> str:
        """One line: received, rejected by reason, gaps by topic."""
        parts = [f"{self.received} received", f"{self.rejected} rejected"]
        if self.rejected_by_reason:
            parts[-1] += " (" + ", ".join(
                f"{k}: {v}" for k, v in sorted(self.rejected_by_reason.items())
            ) + ")"
        if self.gaps:
            parts.append(
                f"{self.missing} missing in gaps ("
                + ", ".join(f"{k}: {v}" for k, v in sorted(self.gaps.items()))
                + ")"
            )
        else:
            parts.append("no gaps")
        if self.resets:
            parts.append(f"seq resets: {sum(self.resets.values())}")
        return ", ".join(parts)

    # --- lifetime --------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.socket.close(linger=0)
        if self._own_context:
            self._ctx.term()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- body validation -----------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return type(v) is int  # msgpack gives exact types; excludes bool


def _is_num(v: Any) -> bool:
    return type(v) is float or type(v) is int


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "float": _is_num,
    "str": lambda v: type(v) is str,
    "tuple[float, float, float]": lambda v: (
        type(v) is list and len(v) == 3 and all(map(_is_num, v))
    ),
    "tuple[int, ...]": lambda v: type(v) is list and all(map(_is_int, v)),
    "tuple[str, ...]": lambda v: type(v) is list and all(type(x) is str for x in v),
}


def _field_checks(cls: type) -> tuple[tuple[str, Callable[[Any], bool], bool], ...]:
    """(name, type check, required) for each field of an event dataclass."""
    out = []
    for f in fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        out.append((f.name, _TYPE_CHECKS.get(str(f.type), lambda v: True), required))
    return tuple(out)


_CHECKS = {"anomaly": _field_checks(Anomaly), "target": _field_checks(Target)}


def _check_fields(what: str, d: Any) -> None:
    """Every event field present has its declared type; required ones are present."""
    if type(d) is not dict:
        raise MessageError(f"{what} body is not a map", "content")
    for name, ok, required in _CHECKS[what]:
        if name in d:
            if not ok(d[name]):
                raise MessageError(f"{what}.{name} has the wrong type", "content")
        elif required:
            raise MessageError(f"{what} lacks {name!r}", "content")


def check_body(msg: Message) -> None:
    """Raise `MessageError` (reason ``content``) if the kind's body is unusable."""
    kind, h = msg.kind, msg.header
    if kind == "block":
        block_from_message(msg)
        for key in ("block_seq", "first_index", "t0_ns"):
            if not _is_int(h.get(key)):
                raise MessageError(f"block {key} is not an integer", "content")
        dec = h.get("decimation", 1)
        if not _is_int(dec) or dec < 1:
            raise MessageError("block decimation is not a positive integer", "content")
    elif kind == "descriptor":
        descriptor_from_message(msg)
    elif kind == "anomaly":
        _check_fields("anomaly", h.get("anomaly"))
    elif kind == "target":
        _check_fields("target", h.get("target"))
    elif kind == "state":
        state_from_message(msg)
    elif kind == "heartbeat":
        if not isinstance(h.get("counters"), dict):
            raise MessageError("heartbeat counters are not a map", "content")
    elif kind in ("session_start", "session_stop") and not isinstance(h.get("info", {}), dict):
        raise MessageError("session info is not a map", "content")


def _append_bounded(events: list[GapEvent], ev: GapEvent) -> None:
    events.append(ev)
    if len(events) > 2 * MAX_EVENTS_KEPT:
        del events[:-MAX_EVENTS_KEPT]


def _b(key: bytes | str) -> bytes:
    return key.encode("ascii") if isinstance(key, str) else bytes(key)
