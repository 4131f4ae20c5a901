"""Publisher and subscriber over real ZeroMQ sockets (tcp loopback, ipc).

Waits are bounded loops on socket events, never timed assertions: a test
waits until the publisher has *seen* a subscription before it sends.
"""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from acquisition import messages as m
from acquisition.events import Anomaly, Counters, StateChange, Target
from acquisition.publisher import Publisher, generate_keypair
from acquisition.subscriber import GapEvent, Subscriber
from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor

LOCAL = "tcp://127.0.0.1:*"


def desc(stream: str = "grad0") -> StreamDescriptor:
    return StreamDescriptor(stream, "FEREX", "SN1", 10.0, (ChannelSpec("grad", "nT"),),
                            {"kind": "gradient", "sensor_height_m": 0.3})


def block(i: int, stream: str = "grad0", n: int = 10) -> SampleBlock:
    return SampleBlock(stream, i, i * n, 1_000_000_000 * i, 10.0,
                       np.full((n, 1), float(i)))


def wait_joined(pub: Publisher, subscriptions: int = 1) -> None:
    """Service the XPUB until it has seen ``subscriptions`` subscribe messages."""
    for _ in range(100):
        if pub.subscriptions >= subscriptions:
            return
        pub.poll(100)
    raise AssertionError(f"only {pub.subscriptions} subscriptions arrived")


def recv_all(sub: Subscriber, until, timeout_s: float = 10.0) -> list[m.Message]:
    out = list(sub.messages(timeout_s, until=until))
    assert out and until(out[-1]), f"stopped after {len(out)} messages without the end mark"
    return out


@pytest.fixture
def pub():
    p = Publisher(LOCAL, "s1")
    yield p
    p.close(linger_ms=0)


def test_every_kind_round_trips_over_tcp(pub):
    with Subscriber(pub.endpoint, strict=True) as sub:
        wait_joined(pub)
        pub.session_start(operator="Lan", site="QT-01")
        pub.add_stream(desc())
        b = SampleBlock("grad0", 4, 40, 123, 10.0, np.arange(6.0).reshape(3, 2),
                        np.ones((3, 2)), 7, 8, 9, BlockFlags.GAP)
        pub.publish_block(b)
        pub.publish_block(block(5, n=10), decimation=5)
        a = Anomaly("grad0", 1, 2, 41, 124, 1.5, 2.5, -9.5, -1, 0.7, 0.0, "")
        t = Target("grad0", 3, 4.52, 10.31, 1.2, (0.0, 0.5, 2.0), 0.93, 0.1, 0.1, 0.2, -30.0,
                   (2,), (), ("edge",), "dipole_fit", 125, 1)
        s = StateChange("grad0", "stalled", "no bytes for 2.0 s", 126)
        pub.publish_event(a)
        pub.publish_event(t)
        pub.publish_event(s)
        pub.heartbeat("grad0", Counters(bytes=10, blocks=2), clock_offset_ns=-250)
        pub.session_stop(samples=13)
        got = recv_all(sub, lambda msg: msg.kind == "session_stop")
    assert [g.kind for g in got] == ["session_start", "descriptor", "block", "block",
                                     "anomaly", "target", "state", "heartbeat", "session_stop"]
    assert got[0].header["info"] == {"operator": "Lan", "site": "QT-01"}
    assert m.descriptor_from_message(got[1]) == desc()
    assert m.block_from_message(got[2]) == b
    dec = m.block_from_message(got[3])
    assert dec.data[:, 0].tolist() == [5.0, 5.0] and dec.rate_hz == 2.0
    assert got[3].header["decimation"] == 5
    assert m.anomaly_from_message(got[4]) == a
    assert m.target_from_message(got[5]) == t
    assert m.state_from_message(got[6]) == s
    assert got[7].header["counters"] == Counters(bytes=10, blocks=2).to_dict()
    assert got[7].header["clock_offset_ns"] == -250
    assert got[7].header["publisher"] == {"sent": 7, "dropped": 0, "subscriptions": 1,
                                          "subscriptions_refused": 0}
    assert got[8].header["info"] == {"samples": 13}
    assert all(g.header["session"] == "s1" for g in got)
    assert sub.received == 9 and sub.rejected == 0 and sub.gaps == {}
    assert sub.descriptors == {"grad0": desc()}
    assert sub.sessions == {"s1": {"operator": "Lan", "site": "QT-01"}}


def test_seq_counts_per_topic(tmp_path):
    with Publisher(f"ipc://{tmp_path}/ev", "s1") as pub, \
            Subscriber(pub.endpoint, strict=True) as sub:
        wait_joined(pub)
        seqs = [pub.publish_block(block(i)) for i in range(3)]
        seqs += [pub.publish_block(block(i, "grad1")) for i in range(2)]
        seqs += [pub.publish_event(Target("grad0", i, 0, 0, 1, (0, 0, 1), 1)) for i in range(2)]
        seqs += [pub.add_stream(desc("grad0")), pub.add_stream(desc("grad1"))]
        assert seqs == [0, 1, 2, 0, 1, 0, 1, 0, 0]
        assert pub.next_seq("block.grad0") == 3
        got = recv_all(sub, lambda msg: msg.topic == "descriptor.grad1")
    assert [(g.topic, g.seq) for g in got] == [
        ("block.grad0", 0), ("block.grad0", 1), ("block.grad0", 2),
        ("block.grad1", 0), ("block.grad1", 1),
        ("target.grad0", 0), ("target.grad0", 1),
        ("descriptor.grad0", 0), ("descriptor.grad1", 0),
    ]
    assert sub.gaps == {} and sub.gap_events == []


def test_late_joiner_gets_session_and_descriptor_before_any_block(pub):
    pub.session_start(operator="Lan")
    pub.add_stream(desc("grad0"))
    pub.add_stream(desc("grad1"))
    for i in range(20):  # history nobody hears
        pub.publish_block(block(i, "grad0"))
        pub.publish_block(block(i, "grad1"))
    # ZeroMQ announces this peer's topics in byte order: "block.grad1" reaches the
    # publisher before "descriptor.", the case the forced re-send exists for.
    with Subscriber(pub.endpoint, ("block.grad1",), strict=True) as sub:
        got: list[m.Message] = []
        i = 20
        while sum(g.kind == "block" for g in got) < 5:
            pub.publish_block(block(i, "grad0"))
            pub.publish_block(block(i, "grad1"))
            i += 1
            msg = sub.recv(0.02)
            if msg is not None:
                got.append(msg)
            assert i < 2000, "late joiner never received blocks"
    kinds = [(g.kind, g.stream) for g in got]
    first_block = kinds.index(("block", "grad1"))
    assert kinds[0] == ("session_start", "")
    assert ("descriptor", "grad1") in kinds[:first_block]
    assert got[0].header["resent"] is True
    assert {g.stream for g in got if g.kind == "block"} == {"grad1"}
    assert got[first_block].header["block_seq"] >= 20  # a real late join
    assert sub.gaps == {}  # the history it never asked for is not a gap
    assert set(sub.descriptors) >= {"grad1"}
    assert pub.resent >= 2


def test_raw_sub_socket_subscribed_to_everything_learns_descriptor_first(pub):
    """What another language's plain SUB socket sees."""
    pub.session_start()
    pub.add_stream(desc())
    pub.publish_block(block(0))
    raw = pub._ctx.socket(zmq.SUB)
    try:
        raw.setsockopt(zmq.SUBSCRIBE, b"")
        raw.connect(pub.endpoint)
        wait_joined(pub)
        pub.publish_block(block(1))
        topics = []
        while "block.grad0" not in topics:
            assert raw.poll(5000), "nothing arrived"
            topics.append(raw.recv_multipart()[0].decode())
    finally:
        raw.close(linger=0)
    assert topics == ["session", "descriptor.grad0", "block.grad0"]


def test_existing_subscriber_ignores_duplicates_resent_for_a_newcomer(pub):
    with Subscriber(pub.endpoint, strict=True) as a:
        wait_joined(pub, 1)
        pub.session_start(operator="Lan")
        pub.add_stream(desc())
        with Subscriber(pub.endpoint, strict=True) as b:
            wait_joined(pub, 2)
            pub.publish_block(block(0))
            got_a = recv_all(a, lambda msg: msg.kind == "block")
            got_b = recv_all(b, lambda msg: msg.kind == "block")
    assert [g.kind for g in got_a] == ["session_start", "descriptor", "block"]
    assert [g.kind for g in got_b] == ["session_start", "descriptor", "block"]
    assert a.duplicates == 2 and a.gaps == {}  # re-sends carry fresh seqs: no gap
    assert b.duplicates == 0


def test_crafted_seq_jumps_are_counted_exactly():
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.XPUB)  # plain XPUB: lets the test see the subscription arrive
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    try:
        with Subscriber(f"tcp://127.0.0.1:{port}", ("block.",), meta=False, strict=True) as sub:
            assert raw.poll(5000) and raw.recv() == b"\x01block."

            def send(seq: int, session: str = "s1") -> None:
                msg = m.block_message(block(seq), session, 0)
                msg.header["seq"] = seq
                raw.send_multipart(m.encode(msg))

            for seq in (4, 5, 6, 9, 10, 14):  # first seen (4) is a baseline, not a gap
                send(seq)
            send(0, "s2")  # another session: its own baseline
            send(3, "s1")  # went backwards in s1: a reset, not a gap
            send(4, "s1")
            got = recv_all(sub, lambda msg: msg.seq == 4 and msg.header["session"] == "s1"
                           and sub.received == 9)
    finally:
        raw.close(linger=0)
    assert len(got) == 9
    assert sub.gaps == {"block.grad0": 2 + 3}
    assert sub.gap_events == [GapEvent("block.grad0", 7, 9), GapEvent("block.grad0", 11, 14)]
    assert sub.gap_events[1].missing == 3
    assert sub.resets == {"block.grad0": 1}
    assert sub.missing == 5


def _flood(pub: Publisher, n: int) -> None:
    """Publish ``n`` 8 kB blocks while the subscriber reads nothing."""
    wait_joined(pub)
    for i in range(n):
        pub.publish_block(block(i, n=1000))


def test_silent_drops_beyond_hwm_show_as_exact_seq_gaps():
    with Publisher(LOCAL, "s1", sndhwm=10) as pub, \
            Subscriber(pub.endpoint, ("block.",), meta=False, rcvhwm=10) as sub:
        n = 3000
        _flood(pub, n)
        # Read; whenever the line goes quiet, send a probe block. Probes are
        # dropped too while the queue is full; the first one that arrives
        # follows every surviving block, so the count is complete.
        seqs: list[int] = []
        probe = n
        while not seqs or seqs[-1] < n:
            msg = sub.recv(0.05)
            if msg is None:
                pub.publish_block(block(probe, n=1000))
                probe += 1
                assert probe < n + 1000, "no probe ever arrived"
            else:
                seqs.append(msg.seq)
        assert seqs[0] == 0  # the queue was empty when the flood began
        assert pub.dropped == 0  # nodrop=False: the publisher cannot know
        missing = sub.gaps["block.grad0"]
        assert missing > 0, "3000 x 8 kB into a 10-message queue should have dropped some"
        assert len(seqs) + missing == seqs[-1] + 1
        assert len(set(seqs)) == len(seqs) and seqs == sorted(seqs)
        assert sum(e.missing for e in sub.gap_events) == missing


def test_nodrop_counts_refused_messages_and_subscriber_sees_exactly_those():
    with Publisher(LOCAL, "s1", sndhwm=10, nodrop=True, send_timeout_ms=0) as pub, \
            Subscriber(pub.endpoint, ("block.",), meta=False, rcvhwm=10) as sub:
        n = 3000
        _flood(pub, n)
        assert pub.dropped > 0
        assert pub.sent + pub.dropped == n
        # A probe the publisher did not refuse is queued and will arrive after
        # every block sent before it.
        seqs: list[int] = []
        while True:
            before = pub.dropped
            probe = pub.publish_block(block(0, n=1000))
            if pub.dropped == before:
                break
            msg = sub.recv(1.0)
            assert msg is not None
            seqs.append(msg.seq)
        seqs += [msg.seq for msg in sub.messages(10.0, until=lambda msg: msg.seq == probe)]
        assert seqs[-1] == probe
        assert pub.dropped_by_topic == {"block.grad0": pub.dropped}
        assert sub.gaps["block.grad0"] == pub.dropped
        assert len(seqs) + pub.dropped == probe + 1


def test_garbage_from_a_raw_publisher_is_counted_and_the_next_good_message_arrives():
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.XPUB)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    good = m.target_message(Target("grad0", 7, 1.0, 2.0, 0.5, (0.0, 0.0, 1.0), 0.8), "s1", 5)
    bad_body = m.target_message(Target("grad0", 8, 1.0, 2.0, 0.5, (0.0, 0.0, 1.0), 0.8), "s1", 5)
    del bad_body.header["target"]["x"]
    bad_body.header["seq"] = 1
    garbage = [
        [b"target.grad0"],
        [b"target.grad0", b"\xc1\xc1"],
        [b"\xff", m.encode(good)[1]],
        [b"anomaly.grad0", m.encode(good)[1]],  # topic does not match the header
        [b"target.grad0", m.encode(good)[1], b"stray array"],
        m.encode(bad_body),
    ]
    try:
        with Subscriber(f"tcp://127.0.0.1:{port}", strict=False) as sub:
            assert raw.poll(5000) and raw.recv() == b"\x01"
            for frames in garbage:
                raw.send_multipart(frames)
            good.header["seq"] = 2
            raw.send_multipart(m.encode(good))
            msg = sub.recv(10.0)
    finally:
        raw.close(linger=0)
    assert msg is not None and m.target_from_message(msg).target_id == 7
    assert sub.rejected == 6 and sub.received == 1
    assert sub.rejected_by_reason == {"frames": 1, "msgpack": 1, "topic": 1,
                                      "topic_mismatch": 1, "arrays": 1, "content": 1}


def test_strict_subscriber_raises_on_garbage():
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.XPUB)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    try:
        with Subscriber(f"tcp://127.0.0.1:{port}", strict=True) as sub:
            assert raw.poll(5000) and raw.recv() == b"\x01"
            raw.send_multipart([b"block.x", b"\xc1"])
            with pytest.raises(m.MessageError) as e:
                sub.recv(10.0)
    finally:
        raw.close(linger=0)
    assert e.value.reason == "msgpack" and sub.rejected == 1


def test_maybe_heartbeat_follows_the_interval():
    with Publisher(LOCAL, "s1", heartbeat_s=2.0) as pub, Subscriber(pub.endpoint) as sub:
        wait_joined(pub)
        t0 = pub._last_heartbeat_mono
        c = Counters(blocks=3)
        assert pub.maybe_heartbeat({"grad0": c}, now_mono_ns=t0 + 1_999_999_999) == 0
        assert pub.maybe_heartbeat({"grad0": c, "gps": {"fix": 4}},
                                   {"grad0": {"clock_offset_ns": 42}},
                                   now_mono_ns=t0 + 2_000_000_000) == 2
        assert pub.maybe_heartbeat({"grad0": c}, now_mono_ns=t0 + 3_000_000_000) == 0
        assert pub.maybe_heartbeat({"grad0": c}, force=True,
                                   now_mono_ns=t0 + 3_000_000_000) == 1
        got = recv_all(sub, lambda msg: msg.seq == 1 and msg.stream == "grad0")
    assert [(g.topic, g.seq) for g in got] == [("status.grad0", 0), ("status.gps", 0),
                                               ("status.grad0", 1)]
    assert got[0].header["counters"]["blocks"] == 3
    assert got[0].header["clock_offset_ns"] == 42
    assert got[1].header["counters"] == {"fix": 4}


def test_closed_publisher_refuses_and_close_is_idempotent():
    pub = Publisher(LOCAL, "s1")
    pub.close()
    pub.close()
    assert pub.closed
    with pytest.raises(RuntimeError):
        pub.publish_block(block(0))


def test_bind_failure_raises_and_leaks_nothing(pub):
    with pytest.raises(zmq.ZMQError):
        Publisher(pub.endpoint, "s2")  # address in use


def test_curve_allow_list_admits_the_known_client_only():
    server_pub, server_sec = generate_keypair()
    client_pub, client_sec = generate_keypair()
    with Publisher(LOCAL, "s1", curve_secret_key=server_sec,
                   allowed_client_keys=[client_pub]) as pub:
        assert pub.public_key == server_pub
        friend = Subscriber(pub.endpoint, ("target.",), meta=False, curve_server_key=server_pub,
                            curve_public_key=client_pub, curve_secret_key=client_sec)
        stranger = Subscriber(pub.endpoint, ("target.",), meta=False,
                              curve_server_key=server_pub)
        plain = Subscriber(pub.endpoint, ("target.",), meta=False)
        try:
            wait_joined(pub, 1)
            for i in range(20):
                pub.publish_event(Target("grad0", i, 0.0, 0.0, 1.0, (0.0, 0.0, 1.0), 1.0))
            got = recv_all(friend, lambda msg: msg.seq == 19)
            pub.poll(200)
            assert pub.subscriptions == 1  # neither other peer completed a handshake
            assert stranger.recv(0.2) is None and plain.recv(0.0) is None
        finally:
            for s in (friend, stranger, plain):
                s.close()
    assert [g.seq for g in got] == list(range(20))
    assert stranger.received == 0 and plain.received == 0


def test_allow_list_without_secret_is_refused():
    with pytest.raises(ValueError):
        Publisher(LOCAL, "s1", allowed_client_keys=["x" * 40])


def test_after_session_stop_late_joiners_get_descriptors_but_no_session_start(pub):
    pub.session_start(operator="Lan")
    pub.add_stream(desc())
    pub.session_stop(samples=0)
    with Subscriber(pub.endpoint, strict=True) as sub:
        wait_joined(pub)
        pub.publish_block(block(0))
        got = recv_all(sub, lambda msg: msg.kind == "block")
    assert [(g.kind, g.header.get("resent")) for g in got] == [("descriptor", True),
                                                               ("block", None)]
