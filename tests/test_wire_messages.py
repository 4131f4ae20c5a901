"""Wire codec without sockets: round trips, bounds, and fuzzing of `decode`.

Everything a peer can send is untrusted: random frames and mutated valid
messages must only ever raise `MessageError`, and whatever does decode must
survive the subscriber's body check and the tail's formatters.
"""

from __future__ import annotations

import contextlib
import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition import messages as m
from acquisition.events import Anomaly, Counters, StateChange, Target
from acquisition.subscriber import check_body
from acquisition.tail import format_message, to_json
from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor

T0 = 1_772_366_401_234_000_000


def _wire(msg: m.Message) -> m.Message:
    return m.decode(m.encode(msg))


# --- round trips of every kind ---------------------------------------------------------


def test_block_round_trip_keeps_every_field():
    data = np.arange(12.0).reshape(6, 2)
    pos = np.column_stack([np.linspace(0, 1, 6), np.linspace(5, 6, 6)])
    b = SampleBlock("grad0", 7, 700, T0, 10.0, data, pos, host_mono_ns=5, host_wall_ns=T0 + 9,
                    device_time_ns=123456, flags=BlockFlags.GAP | BlockFlags.SIMULATED)
    out = m.block_from_message(_wire(m.block_message(b, "s1", T0)))
    assert out == b
    assert out.flags == BlockFlags.GAP | BlockFlags.SIMULATED


def test_block_decimation_keeps_every_kth_sample_and_scales_rate():
    data = np.arange(10.0).reshape(10, 1)
    b = SampleBlock("grad0", 1, 100, T0, 10.0, data)
    msg = _wire(m.block_message(b, "s1", T0, decimation=3))
    assert msg.header["decimation"] == 3
    out = m.block_from_message(msg)
    assert out.data[:, 0].tolist() == [0.0, 3.0, 6.0, 9.0]
    assert out.rate_hz == pytest.approx(10.0 / 3)
    assert out.first_index == 100


def test_descriptor_target_anomaly_state_heartbeat_session_round_trip():
    desc = StreamDescriptor("grad0", "FEREX", "SN1", 10.0,
                            (ChannelSpec("grad", "nT", calibration={"scale": 1.5}),),
                            {"kind": "gradient", "sensor_height_m": 0.3}, 2, "gradline")
    assert m.descriptor_from_message(_wire(m.descriptor_message(desc, "s1", T0))) == desc
    t = Target("grad0", 3, 4.52, 10.31, 1.2, (0.1, -0.2, 2.0), 0.93, 0.05, 0.06, 0.08, -35.5,
               (3, 4), ("H1",), ("edge",), "dipole_fit", T0, 2)
    assert m.target_from_message(_wire(m.target_message(t, "s1", T0))) == t
    a = Anomaly("grad0", 9, 3, 1234, T0, 4.5, 10.0, -12.3, -1, 0.8, 2.5, "H2")
    assert m.anomaly_from_message(_wire(m.anomaly_message(a, "s1", T0))) == a
    s = StateChange("grad0", "stalled", "no bytes for 2.0 s", T0)
    assert m.state_from_message(_wire(m.state_message(s, "s1", T0))) == s
    c = Counters(bytes=100, frames_ok=9)
    c.reject("checksum", 2)
    hb = _wire(m.heartbeat_message("grad0", "s1", T0, c.to_dict(), clock_offset_ns=-1500))
    assert hb.header["counters"] == c.to_dict()
    assert hb.header["clock_offset_ns"] == -1500
    ss = _wire(m.session_message("session_start", "s1", T0, operator="Lan", lat=16.8))
    assert (ss.topic, ss.header["info"]) == ("session", {"operator": "Lan", "lat": 16.8})


def test_uint8_and_big_endian_arrays_travel():
    # numpy spells uint8 "|u1"; the wire's whitelist says "<u1".
    msg = m.Message("block.x", m._header("block", "s", "x", 0),
                    {"a": np.arange(5, dtype=np.uint8), "b": np.arange(3, dtype=">i4")})
    out = _wire(msg)
    assert out.arrays["a"].dtype == np.uint8 and out.arrays["a"].tolist() == [0, 1, 2, 3, 4]
    assert out.arrays["b"].dtype == np.dtype("<i4") and out.arrays["b"].tolist() == [0, 1, 2]


def test_encode_refuses_what_decode_would_reject():
    h = m._header("block", "s", "x", 0)
    with pytest.raises(m.MessageError) as e:
        m.encode(m.Message("block.x", h, {"a": np.zeros((1, 1, 1, 1))}))
    assert e.value.reason == "array_spec"
    with pytest.raises(m.MessageError) as e:
        m.encode(m.Message("block.x", h, {"a": np.zeros(3, dtype=complex)}))
    assert e.value.reason == "array_spec"
    with pytest.raises(m.MessageError) as e:
        m.encode(m.Message("x" * 300, h))
    assert e.value.reason == "topic"
    with pytest.raises(m.MessageError) as e:
        m.encode(m.Message("block.x", {"v": 1}))
    assert e.value.reason == "missing_field"


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"block.x"], "frames"),
        ([b"\xff\xfe", msgpack.packb({})], "topic"),
        ([b"block.x", b"\xc1"], "msgpack"),
        ([b"block.x", msgpack.packb([1, 2])], "header_type"),
        ([b"block.x", msgpack.packb({"v": 1})], "missing_field"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0), "v": 2})], "version"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0), "kind": [1]})], "kind"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0), "seq": -1})], "field_type"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0), "t_ns": 1.5})], "field_type"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0),
                               "arrays": [{"name": "d", "dtype": [1], "shape": [1]}]}), b"x"],
         "array_spec"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0),
                               "arrays": [{"name": "d", "dtype": "<f8", "shape": [2]}]}),
          b"\0" * 15], "array_size"),
        ([b"t", msgpack.packb({**m._header("block", "s", "x", 0),
                               "arrays": [{"name": "d", "dtype": "<f8", "shape": [1 << 40]}]}),
          b""], "array_size"),
        ([b"t", msgpack.packb(m._header("block", "s", "x", 0)), b"extra"], "arrays"),
    ],
)
def test_decode_names_the_reason(frames, reason):
    with pytest.raises(m.MessageError) as e:
        m.decode(frames)
    assert e.value.reason == reason


# --- property: round trip of random blocks ---------------------------------------------

DTYPES = ("<f8", "<f4", "<i8", "<i4", "<i2", "<u1", "<u2")


@st.composite
def blocks(draw) -> SampleBlock:
    n = draw(st.integers(0, 40))
    c = draw(st.integers(1, 4))
    dt = np.dtype(draw(st.sampled_from(DTYPES)))
    if dt.kind == "f":
        vals = st.floats(allow_nan=True, allow_infinity=True, width=dt.itemsize * 8)
    else:
        info = np.iinfo(dt)
        vals = st.integers(int(info.min), int(info.max))
    data = np.array(draw(st.lists(vals, min_size=n * c, max_size=n * c)), dtype=dt).reshape(n, c)
    pdims = draw(st.sampled_from([0, 2, 3]))
    pos = None
    if pdims:
        pos = np.array(draw(st.lists(st.floats(-1e6, 1e6), min_size=n * pdims,
                                     max_size=n * pdims))).reshape(n, pdims)
    return SampleBlock(
        stream_id=draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]),
                               min_size=1, max_size=20)),
        seq=draw(st.integers(0, 2**63 - 1)),
        first_index=draw(st.integers(0, 2**63 - 1)),
        t0_ns=draw(st.integers(-(2**63), 2**63 - 1)),
        rate_hz=draw(st.floats(1e-3, 1e6)),
        data=data,
        positions=pos,
        host_mono_ns=draw(st.integers(0, 2**63 - 1)),
        host_wall_ns=draw(st.integers(0, 2**63 - 1)),
        device_time_ns=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
        flags=BlockFlags(draw(st.integers(0, 63))),
    )


@given(blocks(), st.text(max_size=10), st.integers(0, 2**62))
@settings(max_examples=150, deadline=None)
def test_block_round_trip_property(b, session, t_ns):
    msg = _wire(m.block_message(b, session, t_ns))
    assert msg.header["session"] == session and msg.header["t_ns"] == t_ns
    assert msg.topic == f"block.{b.stream_id}"
    out = m.block_from_message(msg)
    assert out == b
    assert out.data.dtype == b.data.dtype
    check_body(msg)


@given(blocks(), st.integers(1, 7))
@settings(max_examples=60, deadline=None)
def test_decimated_round_trip_property(b, k):
    out = m.block_from_message(_wire(m.block_message(b, "s", 0, decimation=k)))
    assert np.array_equal(out.data, b.data[::k], equal_nan=True)
    assert out.rate_hz == b.rate_hz / k


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    st.builds(
        Target,
        stream_id=st.text(min_size=1, max_size=8),
        target_id=st.integers(0, 2**40),
        x=finite, y=finite, depth=finite,
        moment=st.tuples(finite, finite, finite),
        quality=finite, sigma_x=finite, sigma_y=finite, sigma_depth=finite,
        amplitude_nT=finite,
        lanes=st.lists(st.integers(-5, 500), max_size=4).map(tuple),
        holes=st.lists(st.text(max_size=4), max_size=3).map(tuple),
        flags=st.lists(st.sampled_from(["edge", "few_samples", "no_converge"]),
                       max_size=3).map(tuple),
        t_ns=st.integers(0, 2**63 - 1),
        revision=st.integers(0, 100),
    )
)
@settings(max_examples=100, deadline=None)
def test_target_round_trip_property(t):
    msg = _wire(m.target_message(t, "s", 1))
    assert m.target_from_message(msg) == t
    check_body(msg)
    format_message(msg)
    to_json(msg)


# --- fuzz: decode never raises anything but MessageError -------------------------------

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=10) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
HEADER_KEYS = ["v", "kind", "session", "stream", "seq", "t_ns", "arrays", "block_seq",
               "first_index", "t0_ns", "rate_hz", "decimation", "flags", "target", "anomaly",
               "state", "counters", "info", "descriptor", "resent"]


def _survives(frames: list[bytes]) -> None:
    """decode raises only MessageError; anything decoded survives every consumer."""
    try:
        msg = m.decode(frames)
    except m.MessageError:
        return
    with contextlib.suppress(m.MessageError):
        check_body(msg)
    format_message(msg)
    to_json(msg)
    to_json(msg, arrays=True)


@given(st.lists(st.binary(max_size=64), max_size=12))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_frames(frames):
    _survives(frames)


@st.composite
def plausible_headers(draw) -> dict:
    h = m._header(draw(st.sampled_from(sorted(m.KINDS))), "s", "x", 0)
    for key in draw(st.lists(st.sampled_from(HEADER_KEYS), max_size=6)):
        h[key] = draw(msgpack_values)
    for key in draw(st.lists(st.sampled_from(list(h)), max_size=2)):
        h.pop(key, None)
    return h


@given(plausible_headers(), st.lists(st.binary(max_size=40), max_size=3))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_plausible_headers(header, arrays):
    _survives([b"block.x", msgpack.packb(header), *arrays])


@st.composite
def bodies(draw) -> dict:
    """Valid headers whose kind-specific body is randomly corrupted."""
    kind = draw(st.sampled_from(["target", "anomaly", "state", "descriptor", "heartbeat"]))
    t = Target("x", 1, 1.0, 2.0, 0.5, (0.0, 0.0, 1.0), 0.9)
    a = Anomaly("x", 1, 0, 10, 0, 1.0, 2.0, -5.0, -1)
    d = StreamDescriptor("x", "i", "s", 10.0, (ChannelSpec("g", "nT"),))
    body = {"target": t.to_dict(), "anomaly": a.to_dict(),
            "state": StateChange("x", "ok").to_dict(), "descriptor": d.to_dict(),
            "heartbeat": Counters().to_dict()}[kind]
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=3)):
        if draw(st.booleans()):
            body[key] = draw(msgpack_values)
        else:
            body.pop(key, None)
    field = "counters" if kind == "heartbeat" else kind
    return {**m._header(kind, "s", "x", 0), field: body}


@given(bodies())
@settings(max_examples=300, deadline=None)
def test_fuzz_corrupted_bodies(header):
    _survives([m.topic_for(header["kind"], "x").encode(), msgpack.packb(header)])


@pytest.mark.parametrize(("kind", "key"), [
    ("descriptor", "position_dims"), ("target", "target_id"), ("anomaly", "lane"),
    ("state", "t_ns")])
def test_an_infinite_integer_field_is_a_content_error(kind, key):
    # Found by the fuzz test above (session 9): int(inf) raised OverflowError,
    # which no consumer expects, where every other bad value is a MessageError.
    body = {"target": Target("x", 1, 1.0, 2.0, 0.5, (0.0, 0.0, 1.0), 0.9).to_dict(),
            "anomaly": Anomaly("x", 1, 0, 10, 0, 1.0, 2.0, -5.0, -1).to_dict(),
            "state": StateChange("x", "ok").to_dict(),
            "descriptor": StreamDescriptor("x", "i", "s", 10.0,
                                           (ChannelSpec("g", "nT"),)).to_dict()}[kind]
    body[key] = math.inf
    msg = m.decode([m.topic_for(kind, "x").encode(),
                    msgpack.packb({**m._header(kind, "s", "x", 0), kind: body})])
    with pytest.raises(m.MessageError) as err:
        check_body(msg)
    assert err.value.reason == "content"


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_fuzz_mutated_valid_block(data):
    b = SampleBlock("grad0", 1, 10, T0, 10.0, np.arange(8.0).reshape(4, 2),
                    np.zeros((4, 2)))
    frames = m.encode(m.block_message(b, "s", T0))
    i = data.draw(st.integers(0, len(frames) - 1))
    f = bytearray(frames[i])
    op = data.draw(st.sampled_from(["flip", "truncate", "extend"]))
    if op == "flip" and f:
        j = data.draw(st.integers(0, len(f) - 1))
        f[j] ^= data.draw(st.integers(1, 255))
    elif op == "truncate":
        del f[data.draw(st.integers(0, len(f))):]
    else:
        f += data.draw(st.binary(min_size=1, max_size=8))
    frames[i] = bytes(f)
    _survives(frames)


def test_nan_in_header_is_null_in_json():
    t = Target("x", 1, math.nan, 2.0, 0.5, (0.0, 0.0, 1.0), 0.9)
    assert '"x":null' in to_json(_wire(m.target_message(t, "s", 1)))
