"""Wire schema: encode and decode ZeroMQ multipart messages (no sockets here).

A message is ``[topic, header, *array_frames]``:

* ``topic``: UTF-8 bytes, e.g. ``b"block.grad0"``; subscribers filter on prefixes.
* ``header``: a msgpack map with at least ``v`` (schema version), ``kind``,
  ``session``, ``stream``, ``seq`` (per publisher and topic) and ``t_ns``
  (host wall clock when sent), plus the kind's own fields.
* array frames: raw little-endian bytes, described in the header's ``arrays``
  list as ``{"name", "dtype", "shape"}`` in frame order.

Decoding never trusts the peer: sizes are bounded, dtypes whitelisted, frame
lengths checked against the declared shapes, and anything off raises
`MessageError` (a ValueError) rather than crashing the subscriber. Never pickle.
See docs/wire.md for the full schema.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from acquisition.errors import UxoValueError
from acquisition.events import Anomaly, StateChange, Target
from acquisition.types import BlockFlags, SampleBlock, StreamDescriptor

SCHEMA_VERSION = 1

KINDS = frozenset(
    {
        "session_start",
        "session_stop",
        "descriptor",
        "block",
        "anomaly",
        "target",
        "heartbeat",
        "state",
    }
)

#: Topic prefix for each kind ("session" kinds are not per stream).
TOPIC_PREFIX = {
    "session_start": "session",
    "session_stop": "session",
    "descriptor": "descriptor",
    "block": "block",
    "anomaly": "anomaly",
    "target": "target",
    "heartbeat": "status",
    "state": "status",
}

MAX_TOPIC_BYTES = 256
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_BYTES = 64 << 20
MAX_ARRAYS = 8
ALLOWED_DTYPES = frozenset({"<f8", "<f4", "<i8", "<i4", "<i2", "<u1", "<u2", "<u4", "<u8"})
REQUIRED_HEADER = ("v", "kind", "session", "stream", "seq", "t_ns")


class MessageError(UxoValueError):
    """A frame sequence that is not a valid message of this schema.

    ``reason`` is a short stable code (``"msgpack"``, ``"version"``, ``"kind"``,
    ``"array_size"``...) that subscribers use to count rejects by cause.
    """

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class Message:
    """A decoded (or to-be-encoded) message: topic, header map and named arrays."""

    topic: str
    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def stream(self) -> str:
        return str(self.header.get("stream", ""))

    @property
    def seq(self) -> int:
        return int(self.header["seq"])


def topic_for(kind: str, stream: str = "") -> str:
    """Topic string for a kind and stream: ``block.grad0``, ``session``..."""
    prefix = TOPIC_PREFIX[kind]
    return f"{prefix}.{stream}" if stream and prefix != "session" else prefix


_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


def _clean(value: Any) -> Any:
    """Make a value msgpack-safe and strict-map-key safe (str keys, no numpy)."""
    if type(value) in _PLAIN:  # the common case, checked first: headers are mostly scalars
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _wire_dtype(dtype: np.dtype) -> str:
    # numpy spells one-byte types "|u1" (no byte order); the wire always says "<".
    s = dtype.str
    return "<" + s[1:] if s[0] == "|" else s


def encode(msg: Message) -> list[bytes]:
    """Frames for a message. The header's ``arrays`` entry is written here.

    Refuses (`MessageError`) anything that `decode` would reject, so a
    publisher never puts a message on the wire that no subscriber can read.
    """
    header = dict(msg.header)
    missing = [k for k in REQUIRED_HEADER if k not in header]
    if missing:
        raise MessageError(f"header lacks {missing}", "missing_field")
    topic = msg.topic.encode("utf-8")
    if len(topic) > MAX_TOPIC_BYTES:
        raise MessageError("topic too long", "topic")
    if len(msg.arrays) > MAX_ARRAYS:
        raise MessageError(f"{len(msg.arrays)} arrays, at most {MAX_ARRAYS}", "arrays")
    frames: list[bytes] = []
    specs = []
    for name, arr in msg.arrays.items():
        a = np.ascontiguousarray(arr)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        dt = _wire_dtype(a.dtype)
        if dt not in ALLOWED_DTYPES:
            raise MessageError(f"array {name!r}: dtype {dt} not allowed on the wire", "array_spec")
        if not 1 <= a.ndim <= 3:
            raise MessageError(f"array {name!r}: {a.ndim} dimensions, need 1-3", "array_spec")
        if a.nbytes > MAX_ARRAY_BYTES:
            raise MessageError(f"array {name!r}: {a.nbytes} bytes is too large", "array_size")
        specs.append({"name": str(name), "dtype": dt, "shape": list(a.shape)})
        frames.append(a.tobytes())
    header["arrays"] = specs
    packed = msgpack.packb(_clean(header), use_bin_type=True)
    if len(packed) > MAX_HEADER_BYTES:
        raise MessageError("header too large", "header_size")
    return [topic, packed, *frames]


def decode(frames: list[bytes]) -> Message:
    """Parse and validate frames; raise `MessageError` on anything malformed."""
    if len(frames) < 2:
        raise MessageError(f"expected at least 2 frames, got {len(frames)}", "frames")
    if len(frames) > 2 + MAX_ARRAYS:
        raise MessageError(f"{len(frames)} frames, at most {2 + MAX_ARRAYS}", "frames")
    topic_b, header_b, *array_frames = frames
    if len(topic_b) > MAX_TOPIC_BYTES:
        raise MessageError("topic too long", "topic")
    try:
        topic = bytes(topic_b).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError("topic is not UTF-8", "topic") from exc
    if len(header_b) > MAX_HEADER_BYTES:
        raise MessageError("header too large", "header_size")
    try:
        # The length was bounded above, and msgpack bounds every container by the
        # buffer length, so a hostile header cannot make it allocate more.
        header = msgpack.unpackb(bytes(header_b), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise MessageError(f"header is not valid msgpack: {exc}", "msgpack") from exc
    if not isinstance(header, dict):
        raise MessageError("header is not a map", "header_type")
    for key in REQUIRED_HEADER:
        if key not in header:
            raise MessageError(f"header lacks {key!r}", "missing_field")
    if not _is_int(header["v"]) or header["v"] != SCHEMA_VERSION:
        raise MessageError(f"unsupported schema version {header['v']!r}", "version")
    if not isinstance(header["kind"], str) or header["kind"] not in KINDS:
        raise MessageError(f"unknown kind {header['kind']!r}", "kind")
    if not _is_int(header["seq"]) or header["seq"] < 0:
        raise MessageError("seq is not a non-negative integer", "field_type")
    if not _is_int(header["t_ns"]):
        raise MessageError("t_ns is not an integer", "field_type")
    if not isinstance(header["stream"], str) or not isinstance(header["session"], str):
        raise MessageError("stream and session must be strings", "field_type")
    specs = header.get("arrays", [])
    if not isinstance(specs, list) or len(specs) > MAX_ARRAYS:
        raise MessageError("bad arrays list", "arrays")
    if len(specs) != len(array_frames):
        raise MessageError(
            f"header names {len(specs)} arrays but {len(array_frames)} follow", "arrays"
        )
    arrays: dict[str, np.ndarray] = {}
    for spec, buf in zip(specs, array_frames, strict=True):
        name, arr = _decode_array(spec, buf)
        if name in arrays:
            raise MessageError(f"array {name!r} appears twice", "array_spec")
        arrays[name] = arr
    return Message(topic=topic, header=header, arrays=arrays)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_array(spec: Any, buf: bytes) -> tuple[str, np.ndarray]:
    if not isinstance(spec, dict):
        raise MessageError("array spec is not a map", "array_spec")
    name, dt, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str) or not isinstance(dt, str) or dt not in ALLOWED_DTYPES:
        raise MessageError(f"bad array spec {spec!r:.200}", "array_spec")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 3
        or not all(_is_int(s) and s >= 0 for s in shape)
    ):
        raise MessageError(f"bad array shape {shape!r:.200}", "array_spec")
    dtype = np.dtype(dt)
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_ARRAY_BYTES:
        raise MessageError("array too large", "array_size")
    if len(buf) != expected:
        raise MessageError(
            f"array {name!r}: {len(buf)} bytes, shape needs {expected}", "array_size"
        )
    return name, np.frombuffer(bytes(buf), dtype=dtype).reshape(shape)


# --- typed constructors and readers -------------------------------------------------


def _header(kind: str, session: str, stream: str, t_ns: int, **body: Any) -> dict[str, Any]:
    # seq is filled in by the publisher, which owns the per-topic counters.
    return {"v": SCHEMA_VERSION, "kind": kind, "session": session, "stream": stream,
            "seq": 0, "t_ns": int(t_ns), **body}


#: What a body's values can raise when converted (``int(inf)``: OverflowError,
#: found by the wire fuzz test in session 9).
_BAD_BODY = (KeyError, TypeError, ValueError, AttributeError, OverflowError)


def descriptor_message(desc: StreamDescriptor, session: str, t_ns: int) -> Message:
    h = _header("descriptor", session, desc.stream_id, t_ns, descriptor=desc.to_dict())
    return Message(topic_for("descriptor", desc.stream_id), h)


def descriptor_from_message(msg: Message) -> StreamDescriptor:
    _expect(msg, "descriptor")
    try:
        return StreamDescriptor.from_dict(msg.header["descriptor"])
    except _BAD_BODY as exc:
        raise MessageError(f"bad descriptor: {exc}", "content") from exc


def block_message(
    block: SampleBlock, session: str, t_ns: int, decimation: int = 1
) -> Message:
    """A data block; ``decimation > 1`` keeps every k-th sample (bus preview)."""
    data, pos, rate = block.data, block.positions, block.rate_hz
    if decimation > 1:
        data = data[::decimation]
        pos = pos[::decimation] if pos is not None else None
        rate = rate / decimation
    h = _header(
        "block", session, block.stream_id, t_ns,
        block_seq=block.seq, first_index=block.first_index, t0_ns=block.t0_ns,
        rate_hz=float(rate), decimation=int(decimation), host_mono_ns=block.host_mono_ns,
        host_wall_ns=block.host_wall_ns, device_time_ns=block.device_time_ns,
        flags=int(block.flags),
    )
    arrays = {"data": data}
    if pos is not None:
        arrays["positions"] = pos
    return Message(topic_for("block", block.stream_id), h, arrays)


def block_from_message(msg: Message) -> SampleBlock:
    _expect(msg, "block")
    h = msg.header
    try:
        return SampleBlock(
            stream_id=msg.stream,
            seq=int(h["block_seq"]),
            first_index=int(h["first_index"]),
            t0_ns=int(h["t0_ns"]),
            rate_hz=float(h["rate_hz"]),
            data=msg.arrays["data"],
            positions=msg.arrays.get("positions"),
            host_mono_ns=int(h.get("host_mono_ns", 0)),
            host_wall_ns=int(h.get("host_wall_ns", 0)),
            device_time_ns=h.get("device_time_ns"),
            flags=BlockFlags(int(h.get("flags", 0))),
        )
    except _BAD_BODY as exc:
        raise MessageError(f"bad block: {exc}", "content") from exc


def anomaly_message(a: Anomaly, session: str, t_ns: int) -> Message:
    return Message(topic_for("anomaly", a.stream_id),
                   _header("anomaly", session, a.stream_id, t_ns, anomaly=a.to_dict()))


def anomaly_from_message(msg: Message) -> Anomaly:
    _expect(msg, "anomaly")
    try:
        return Anomaly.from_dict(msg.header["anomaly"])
    except _BAD_BODY as exc:
        raise MessageError(f"bad anomaly: {exc}", "content") from exc


def target_message(t: Target, session: str, t_ns: int) -> Message:
    return Message(topic_for("target", t.stream_id),
                   _header("target", session, t.stream_id, t_ns, target=t.to_dict()))


def target_from_message(msg: Message) -> Target:
    _expect(msg, "target")
    try:
        t = Target.from_dict(msg.header["target"])
    except _BAD_BODY as exc:
        raise MessageError(f"bad target: {exc}", "content") from exc
    if len(t.moment) != 3:
        raise MessageError("bad target: moment needs 3 components", "content")
    return t


def state_message(s: StateChange, session: str, t_ns: int) -> Message:
    return Message(topic_for("state", s.stream_id),
                   _header("state", session, s.stream_id, t_ns, state=s.to_dict()))


def state_from_message(msg: Message) -> StateChange:
    _expect(msg, "state")
    d = msg.header.get("state")
    if not isinstance(d, dict) or not isinstance(d.get("state"), str):
        raise MessageError("bad state: no state name", "content")
    try:
        return StateChange(
            stream_id=str(d.get("stream_id", msg.stream)),
            state=d["state"],
            reason=str(d.get("reason", "")),
            t_ns=int(d.get("t_ns", 0)),
        )
    except _BAD_BODY as exc:
        raise MessageError(f"bad state: {exc}", "content") from exc


def heartbeat_message(
    stream: str, session: str, t_ns: int, counters: dict[str, Any], **extra: Any
) -> Message:
    return Message(topic_for("heartbeat", stream),
                   _header("heartbeat", session, stream, t_ns, counters=counters, **extra))


def session_message(kind: str, session: str, t_ns: int, **info: Any) -> Message:
    if kind not in ("session_start", "session_stop"):
        raise ValueError(kind)
    return Message(topic_for(kind), _header(kind, session, "", t_ns, info=info))


def _expect(msg: Message, kind: str) -> None:
    if msg.kind != kind:
        raise MessageError(f"expected a {kind} message, got {msg.kind}", "kind")
