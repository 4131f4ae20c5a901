"""Publish events on a ZeroMQ XPUB socket (the service's side of the wire).

The publisher owns the per-topic sequence numbers, so every subscriber can
count what it missed, and it re-sends what late joiners need before the data:
the session's start message and every stream descriptor (bluesky-style).

How late joiners are served: the socket runs in ``XPUB_MANUAL`` mode, so a
subscription does not take effect until `poll` has seen it. When a
subscription for topic T arrives, the publisher first subscribes that peer to
``session`` and to the descriptor topics of the streams T covers, re-sends
those messages, and only then applies T itself. A subscriber that filters for
those topics (acquisition.subscriber does by default) therefore always
receives a stream's descriptor before its first block, anomaly or target, even
though ZeroMQ sends a new peer's subscriptions in byte order ("block..." before
"descriptor..."). Other subscribers of those topics receive the re-sent
messages too; they carry ``resent: true`` and fresh sequence numbers, so they
cause no gap.

Drop policy (explicit, chosen at construction):

* ``nodrop=False`` (default): a subscriber that falls ``sndhwm`` messages
  behind loses messages silently inside ZeroMQ; it sees the loss as a jump in
  ``seq``. The publisher never blocks.
* ``nodrop=True``: ``XPUB_NODROP`` turns a full queue into back-pressure; each
  send waits at most ``send_timeout_ms`` and, if still blocked, the message is
  dropped here, counted in `dropped` (and `dropped_by_topic`), and its ``seq``
  is spent, so the subscriber sees exactly that gap.

Subscriptions never hold up data (docs/wire.md, "Subscription floods"):

* the socket's receive high-water mark is small (``SUBSCRIPTION_HWM``), so a
  peer that floods subscriptions is slowed by TCP flow control instead of
  filling memory;
* `publish` handles at most ``poll_budget`` pending subscriptions before it
  sends, and the service's housekeeping `poll` at most ``poll_budget`` per
  call, so a data message waits for a bounded amount of work whatever comes in;
* each peer (one TCP/IPC connection, known by its file descriptor) may hold at
  most ``max_subscriptions_per_peer`` topics; further subscriptions are
  refused and counted (`subscriptions_refused`), and never reach ZeroMQ's
  subscription tree;
* ``ZMQ_MAXMSGSIZE`` drops a peer that sends a message longer than a
  subscription can be.

Threading: a `Publisher` is not thread-safe (ZeroMQ sockets are not). The
service calls it only from its main thread. With CURVE and an allow-list, a
ZAP authenticator thread runs inside the publisher's context; at most one
publisher with an allow-list may share a context.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import zmq

from acquisition.buskeys import check_bind
from acquisition.clock import NS_PER_S, mono_ns, wall_ns
from acquisition.events import Anomaly, Counters, StateChange, Target
from acquisition.messages import (
    TOPIC_PREFIX,
    Message,
    anomaly_message,
    block_message,
    descriptor_message,
    encode,
    heartbeat_message,
    session_message,
    state_message,
    target_message,
    topic_for,
)
from acquisition.types import SampleBlock, StreamDescriptor

#: Topic prefixes that carry a stream's data (a subscription to any of them
#: makes the publisher re-send that stream's descriptor first).
_STREAM_PREFIXES = tuple(sorted({p for p in TOPIC_PREFIX.values() if p != "session"}))
#: Receive high-water mark of the XPUB socket, i.e. how many subscription
#: messages ZeroMQ takes from one peer before TCP flow control holds it back.
SUBSCRIPTION_HWM = 64
#: Topics one peer may subscribe to (a uxo client uses a handful).
MAX_SUBSCRIPTIONS_PER_PEER = 256
#: Longest message a subscriber may send (a subscription, or a CURVE handshake).
MAX_INBOUND_BYTES = 4096
#: Subscription messages handled per `poll` call (and before each `publish`).
POLL_BUDGET = 256


class _AllowList:
    """ZAP credentials provider: accept exactly the listed CURVE public keys."""

    def __init__(self, keys: Iterable[bytes | str]) -> None:
        self.keys = {k.encode("ascii") if isinstance(k, str) else bytes(k) for k in keys}

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


class Publisher:
    """An XPUB socket that numbers, sends and re-sends this session's messages.

    ``endpoint`` is bound (``tcp://0.0.0.0:5556``, ``tcp://127.0.0.1:*`` for
    an ephemeral port, ``ipc:///run/uxo/events``); `endpoint` afterwards holds
    the resolved address. ``session`` names this run in every header.

    ``sndhwm`` is the per-subscriber queue length; ``nodrop`` and
    ``send_timeout_ms`` (ms a send may wait in nodrop mode; -1 waits forever)
    choose the drop policy described in the module docstring.

    CURVE: give ``curve_secret_key`` (z85, 40 chars) to encrypt; peers then
    need `public_key`. Give ``allowed_client_keys`` (z85 public keys) as well
    to refuse every other client: a stranger's handshake fails and it
    receives nothing. Without a secret key, a TCP endpoint beyond loopback is
    refused (`acquisition.buskeys.InsecureBindError`) unless ``insecure``.

    ``max_subscriptions_per_peer`` and ``poll_budget`` bound what subscribers
    can make the publisher do (module docstring).
    """

    def __init__(
        self,
        endpoint: str,
        session: str,
        *,
        context: zmq.Context | None = None,
        heartbeat_s: float = 1.0,
        sndhwm: int = 10000,
        nodrop: bool = False,
        send_timeout_ms: int = 50,
        curve_secret_key: bytes | str | None = None,
        allowed_client_keys: Iterable[bytes | str] | None = None,
        insecure: bool = False,
        max_subscriptions_per_peer: int = MAX_SUBSCRIPTIONS_PER_PEER,
        poll_budget: int = POLL_BUDGET,
    ) -> None:
        if allowed_client_keys is not None and curve_secret_key is None:
            raise ValueError("allowed_client_keys needs curve_secret_key")
        check_bind(endpoint, encrypted=curve_secret_key is not None, insecure=insecure)
        if max_subscriptions_per_peer < 1 or poll_budget < 1:
            raise ValueError("max_subscriptions_per_peer and poll_budget must be >= 1")
        self.max_subscriptions_per_peer = int(max_subscriptions_per_peer)
        self.poll_budget = int(poll_budget)
        self.session = session
        self.heartbeat_s = float(heartbeat_s)
        self.nodrop = bool(nodrop)
        self._own_context = context is None
        self._ctx = context if context is not None else zmq.Context()
        self._auth: Any = None
        self._closed = False
        #: Next seq per topic.
        self._seq: dict[str, int] = {}
        self._descriptors: dict[str, StreamDescriptor] = {}
        self._session_info: dict[str, Any] | None = None
        self._last_heartbeat_mono = mono_ns()
        #: Messages handed to ZeroMQ / refused by a full queue (nodrop mode only).
        self.sent = 0
        self.dropped = 0
        self.dropped_by_topic: dict[str, int] = {}
        #: Subscription messages seen (each peer sends one per topic it filters on).
        self.subscriptions = 0
        #: Subscriptions ignored because their peer already held its maximum.
        self.subscriptions_refused = 0
        #: Topics applied per peer (file descriptor of its connection).
        self._peer_topics: dict[int, int] = {}
        #: Messages re-sent to late joiners.
        self.resent = 0

        sock = self._ctx.socket(zmq.XPUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, int(sndhwm))
            sock.setsockopt(zmq.RCVHWM, SUBSCRIPTION_HWM)
            # A subscription is one flag byte and a topic; anything much longer
            # is not from a uxo client, and ZeroMQ drops that peer. The limit
            # also applies to the CURVE handshake (about 300 bytes): hence room.
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_INBOUND_BYTES)
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            sock.setsockopt(zmq.XPUB_MANUAL, 1)
            if self.nodrop:
                sock.setsockopt(zmq.XPUB_NODROP, 1)
                sock.setsockopt(zmq.SNDTIMEO, int(send_timeout_ms))
            self.public_key: str | None = None
            if curve_secret_key is not None:
                secret = _z85(curve_secret_key)
                if allowed_client_keys is not None:
                    self._start_auth(allowed_client_keys)
                sock.curve_secretkey = secret
                sock.curve_server = True
                self.public_key = zmq.curve_public(secret).decode("ascii")
            sock.bind(endpoint)
            # A disconnect event says a file descriptor no longer names its
            # peer, so the next peer on it starts with a fresh count. (Accept
            # events are not used: one can be read after the new peer's first
            # subscriptions, which would reset a flooder's count.)
            self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        except Exception:
            self._closed = True
            with contextlib.suppress(Exception):
                sock.disable_monitor()
            sock.close(linger=0)
            self._stop_auth()
            if self._own_context:
                self._ctx.term()
            raise
        self._sock = sock
        self.endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)

    # --- sending ---------------------------------------------------------------

    def publish(self, msg: Message) -> int:
        """Number ``msg`` on its topic, send it and return its ``seq``.

        The caller's message is not modified. In nodrop mode a message refused
        by a full queue is counted in `dropped`; its seq is still used up.
        """
        self._check_open()
        self.poll(0, budget=self.poll_budget)
        return self._send(msg)

    def _send(self, msg: Message, *, resent: bool = False) -> int:
        seq = self._seq.get(msg.topic, 0)
        header = {**msg.header, "seq": seq}
        if resent:
            header["resent"] = True
        frames = encode(Message(msg.topic, header, msg.arrays))
        self._seq[msg.topic] = seq + 1
        try:
            self._sock.send_multipart(frames, copy=len(frames[-1]) < 65536)
        except zmq.Again:
            self.dropped += 1
            self.dropped_by_topic[msg.topic] = self.dropped_by_topic.get(msg.topic, 0) + 1
        else:
            self.sent += 1
        return seq

    def next_seq(self, topic: str) -> int:
        """The seq the next message on ``topic`` will carry."""
        return self._seq.get(topic, 0)

    def add_stream(self, desc: StreamDescriptor) -> int:
        """Remember a stream's descriptor (for late joiners) and publish it."""
        self._descriptors[desc.stream_id] = desc
        return self.publish(descriptor_message(desc, self.session, wall_ns()))

    @property
    def descriptors(self) -> dict[str, StreamDescriptor]:
        return dict(self._descriptors)

    def publish_block(self, block: SampleBlock, decimation: int = 1) -> int:
        """Send a data block, keeping every ``decimation``-th sample."""
        if decimation < 1:
            raise ValueError(f"decimation must be >= 1, got {decimation}")
        return self.publish(block_message(block, self.session, wall_ns(), decimation))

    def publish_event(self, ev: Anomaly | Target | StateChange) -> int:
        """Send an anomaly, a target or a state change."""
        t = wall_ns()
        if isinstance(ev, Anomaly):
            return self.publish(anomaly_message(ev, self.session, t))
        if isinstance(ev, Target):
            return self.publish(target_message(ev, self.session, t))
        if isinstance(ev, StateChange):
            return self.publish(state_message(ev, self.session, t))
        raise TypeError(f"cannot publish a {type(ev).__name__}")

    def session_start(self, **info: Any) -> int:
        """Announce the session (info is re-sent to every late joiner)."""
        self._session_info = dict(info)
        return self.publish(session_message("session_start", self.session, wall_ns(), **info))

    def session_stop(self, **info: Any) -> int:
        """Announce the end of the session; late joiners no longer get its start."""
        self._session_info = None
        return self.publish(session_message("session_stop", self.session, wall_ns(), **info))

    def heartbeat(self, stream: str, counters: Counters | Mapping[str, Any], **extra: Any) -> int:
        """Send one heartbeat: the stream's counters plus extras (clock offset...).

        A ``publisher`` entry with this socket's own sent/dropped counts is added.
        """
        c = counters.to_dict() if isinstance(counters, Counters) else dict(counters)
        extra.setdefault("publisher", self.stats())
        return self.publish(heartbeat_message(stream, self.session, wall_ns(), c, **extra))

    def maybe_heartbeat(
        self,
        counters_by_stream: Mapping[str, Counters | Mapping[str, Any]],
        extras_by_stream: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        force: bool = False,
        now_mono_ns: int | None = None,
    ) -> int:
        """Send a heartbeat per stream if ``heartbeat_s`` has passed since the
        last round (or ``force``); return how many were sent."""
        now = mono_ns() if now_mono_ns is None else now_mono_ns
        if not force and now - self._last_heartbeat_mono < self.heartbeat_s * NS_PER_S:
            return 0
        self._last_heartbeat_mono = now
        extras = extras_by_stream or {}
        for stream, counters in counters_by_stream.items():
            self.heartbeat(stream, counters, **dict(extras.get(stream, {})))
        return len(counters_by_stream)

    # --- subscriptions ---------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts for heartbeats: sent, dropped, subscriptions seen and refused."""
        return {"sent": self.sent, "dropped": self.dropped,
                "subscriptions": self.subscriptions,
                "subscriptions_refused": self.subscriptions_refused}

    def poll(self, timeout_ms: int = 0, budget: int | None = None,
             time_budget_s: float | None = None,
             yield_to: Callable[[], bool] | None = None) -> int:
        """Service pending subscription messages; return how many were handled.

        Waits up to ``timeout_ms`` for the first one, then handles at most
        ``budget`` (default ``poll_budget``) and, if ``time_budget_s`` is
        given, for at most about that long; it also stops as soon as
        ``yield_to()`` is true (checked every 64: other work is waiting).
        The rest wait for the next call.
        """
        self._check_open()
        self._peer_events()
        limit = self.poll_budget if budget is None else budget
        handled = 0
        if timeout_ms and not self._sock.poll(timeout_ms, zmq.POLLIN):
            return 0
        t_end = None if time_budget_s is None else time.monotonic() + time_budget_s
        # recv only, no EVENTS check per message: every call that lets ZeroMQ
        # process its commands moves up to RCVHWM more subscriptions into the
        # socket's unbounded pending list, while recv does so once per 100.
        # That keeps intake below what this loop removes, so a flood stays in
        # the kernel's TCP buffers, not in this process (docs/wire.md).
        while handled < limit:
            if handled % 64 == 63 and (
                    (t_end is not None and time.monotonic() > t_end)
                    or (yield_to is not None and yield_to())):
                break
            try:
                frame = self._sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            handled += 1
            raw = frame.bytes
            if not raw:
                continue
            topic = raw[1:]
            peer = _peer_fd(frame)
            if raw[0] == 1:
                self.subscriptions += 1
                if peer is not None:
                    held = self._peer_topics.get(peer, 0)
                    if held >= self.max_subscriptions_per_peer:
                        self.subscriptions_refused += 1
                        continue
                    self._peer_topics[peer] = held + 1
                self._on_subscribe(topic)
            elif raw[0] == 0:
                # Applies to the peer that sent it; after a peer disconnects
                # ZeroMQ reports its topics with no peer, and this is a no-op.
                if peer is not None and self._peer_topics.get(peer):
                    self._peer_topics[peer] -= 1
                self._sock.setsockopt(zmq.UNSUBSCRIBE, topic)
        return handled

    def _peer_events(self) -> None:
        """Forget the count of a descriptor whose connection closed."""
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self._peer_topics.pop(int(ev["value"]), None)

    def _on_subscribe(self, topic_b: bytes) -> None:
        # setsockopt(SUBSCRIBE) applies to the peer whose message was just read.
        prefix = topic_b.decode("utf-8", "replace")
        streams = [s for s in self._descriptors.values() if _covers(prefix, s.stream_id)]
        session_wanted = self._session_info is not None and (
            streams or "session".startswith(prefix)
        )
        if session_wanted:
            self._sock.setsockopt(zmq.SUBSCRIBE, b"session")
            self._send(
                session_message("session_start", self.session, wall_ns(),
                                **(self._session_info or {})),
                resent=True,
            )
            self.resent += 1
        for desc in streams:
            dtopic = topic_for("descriptor", desc.stream_id)
            self._sock.setsockopt(zmq.SUBSCRIBE, dtopic.encode("utf-8"))
            self._send(descriptor_message(desc, self.session, wall_ns()), resent=True)
            self.resent += 1
        self._sock.setsockopt(zmq.SUBSCRIBE, topic_b)

    # --- lifetime --------------------------------------------------------------

    def _start_auth(self, keys: Iterable[bytes | str]) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(self._ctx)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=_AllowList(keys))
        self._auth = auth

    def _stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("publisher is closed")

    def close(self, linger_ms: int = 1000) -> None:
        """Close the socket, waiting up to ``linger_ms`` for queued messages."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(zmq.ZMQError):
            self._sock.disable_monitor()
        self._monitor.close(linger=0)
        self._sock.close(linger=linger_ms)
        self._stop_auth()
        if self._own_context:
            self._ctx.term()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Best effort only: a publisher dropped without close() must not hang
        # the interpreter at exit waiting for its context.
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.close(linger_ms=0)


def _covers(prefix: str, stream_id: str) -> bool:
    """True if a subscription to ``prefix`` receives some message of the stream."""
    for p in _STREAM_PREFIXES:
        t = f"{p}.{stream_id}"
        if t.startswith(prefix):
            return True
    return False


def _peer_fd(frame: zmq.Frame) -> int | None:
    """The file descriptor of the connection a subscription came on (None if gone)."""
    try:
        return int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, AttributeError, TypeError):
        return None


def _z85(key: bytes | str) -> bytes:
    k = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(k) != 40:
        raise ValueError("CURVE keys are 40 z85 characters")
    return k


def generate_keypair() -> tuple[str, str]:
    """A new CURVE key pair ``(public, secret)`` as z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")
