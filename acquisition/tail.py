"""`uxo tail`: print a publisher's messages as one-liners or JSON lines.

`format_message` turns any decoded `Message` into one human-readable line,
`to_json` into one JSON object; `run_tail` connects a `Subscriber` and prints
until a count, a timeout or Ctrl-C, then reports gaps and rejects on stderr.
`register_tail` adds the ``tail`` sub-command to the ``uxo`` CLI.

Lines start with the sender's wall-clock time (header ``t_ns``), local time
unless a ``tz`` is given (``--utc``). Anything the formatter does not expect
(a newer schema's fields, odd types from a foreign publisher) falls back to
a generic line rather than failing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO

from acquisition.clock import NS_PER_S
from acquisition.events import size_class
from acquisition.messages import Message
from acquisition.subscriber import Subscriber
from acquisition.types import BlockFlags

# --- one-liners ------------------------------------------------------------------------


def format_time(t_ns: Any, tz: tzinfo | None = None) -> str:
    """``HH:MM:SS.mmm`` of an epoch time in ns (local time unless ``tz``)."""
    try:
        sec, rem = divmod(int(t_ns), NS_PER_S)
        dt = datetime.fromtimestamp(sec, tz=tz) if tz else datetime.fromtimestamp(sec)
    except (OverflowError, OSError, ValueError, TypeError):
        return f"t={t_ns}"
    return f"{dt:%H:%M:%S}.{rem // 1_000_000:03d}"


def format_flags(flags: int) -> str:
    """``GAP|RESYNC`` for a BlockFlags value; unknown bits as hex."""
    names = [f.name for f in BlockFlags if f.value and flags & f.value and f.name]
    rest = flags & ~sum(f.value for f in BlockFlags)
    if rest:
        names.append(hex(rest))
    return "|".join(names)


def _num(v: Any, fmt: str = ".2f") -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    return format(v, fmt)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _kv(d: dict[str, Any], prefix: str = "") -> list[str]:
    """Flatten a map into sorted ``key=value`` words (nested keys dotted)."""
    out = []
    for k in sorted(d, key=str):
        v = d[k]
        if isinstance(v, dict):
            out += _kv(v, f"{prefix}{k}.")
        elif isinstance(v, float):
            out.append(f"{prefix}{k}={v:g}")
        elif isinstance(v, list):
            out.append(f"{prefix}{k}=" + ",".join(str(x) for x in v))
        else:
            out.append(f"{prefix}{k}={v}")
    return out


def _fmt_target(h: dict[str, Any]) -> str:
    t = h["target"]
    moment = t.get("moment") or [math.nan] * 3
    m_abs = t.get("moment_abs")
    if not _finite(m_abs):
        m_abs = math.hypot(*(float(c) for c in moment))
    cls = t.get("size_class") or size_class(m_abs)
    words = [
        f"#{t['target_id']}",
        f"x={_num(t['x'])}",
        f"y={_num(t['y'])}",
        f"depth={_num(t['depth'])} m",
        f"moment={_num(m_abs)} A m2",
        str(cls),
        f"q={_num(t['quality'])}",
    ]
    sig = [t.get("sigma_x"), t.get("sigma_y"), t.get("sigma_depth")]
    if any(_finite(s) for s in sig):
        words.append("sigma x/y/depth=" + "/".join(_num(s) for s in sig) + " m")
    if t.get("revision"):
        words.append(f"rev={t['revision']}")
    for key in ("lanes", "holes", "flags"):
        if t.get(key):
            words.append(f"{key}=" + ",".join(str(v) for v in t[key]))
    if t.get("method") not in (None, "", "dipole_fit"):
        words.append(f"method={t['method']}")
    return " ".join(words)


def _fmt_anomaly(h: dict[str, Any]) -> str:
    a = h["anomaly"]
    words = [
        f"#{a['anomaly_id']}",
        f"lane={a['lane']}",
        f"x={_num(a['x'])}",
        f"y={_num(a['y'])}",
        f"amp={_num(a['amplitude_nT'], '.1f')} nT",
        "pol=" + ("+" if a.get("polarity", 0) > 0 else "-" if a.get("polarity", 0) < 0 else "0"),
    ]
    if _finite(a.get("width_m")):
        words.append(f"width={_num(a['width_m'])} m")
    if a.get("hole"):
        words.append(f"hole={a['hole']}")
    if _finite(a.get("depth")):
        words.append(f"depth={_num(a['depth'])} m")
    return " ".join(words)


_COUNTER_ORDER = (
    ("blocks", "blocks"),
    ("samples", "samples"),
    ("bytes", "bytes"),
    ("frames_ok", "ok"),
    ("frames_rejected", "rejected"),
    ("gaps", "gaps"),
    ("resyncs", "resyncs"),
    ("reconnects", "reconnects"),
    ("stalls", "stalls"),
)


def _fmt_heartbeat(h: dict[str, Any]) -> str:
    c = dict(h["counters"])
    reasons = c.pop("rejected_by_reason", None)
    words = []
    for key, label in _COUNTER_ORDER:
        if key in c:
            words.append(f"{label}={c.pop(key)}")
            if key == "frames_rejected" and reasons:
                words[-1] += " (" + " ".join(_kv(reasons)) + ")"
    words += _kv(c)
    extra = {
        k: v
        for k, v in h.items()
        if k not in _HEADER_KEYS and k not in ("counters", "resent")
    }
    words += _kv(extra)
    return " ".join(words)


def _fmt_descriptor(h: dict[str, Any]) -> str:
    d = h["descriptor"]
    chans = ",".join(f"{c['name']}[{c['units']}]" for c in d["channels"])
    words = [str(d.get("instrument") or "?")]
    if d.get("serial"):
        words.append(f"s/n {d['serial']}")
    words.append(f"{_num(d['rate_hz'], 'g')} Hz")
    words.append(f"channels={chans}")
    if d.get("position_dims"):
        words.append(f"positions={d['position_dims']}D")
    if d.get("driver"):
        words.append(f"driver={d['driver']}")
    words += _kv(d.get("geometry") or {})
    return " ".join(words)


def _fmt_block(msg: Message) -> str:
    h = msg.header
    data = msg.arrays.get("data")
    n = int(data.shape[0]) if data is not None and data.ndim >= 1 else 0
    words = [f"seq={h['block_seq']}", f"first={h['first_index']}", f"n={n}"]
    if h.get("decimation", 1) != 1:
        words.append(f"dec={h['decimation']}")
    flags = int(h.get("flags", 0))
    if flags:
        words.append(f"flags={format_flags(flags)}")
    return " ".join(words)


def _fmt_state(h: dict[str, Any]) -> str:
    s = h["state"]
    return f"{s['state']}: {s['reason']}" if s.get("reason") else str(s["state"])


_HEADER_KEYS = frozenset({"v", "kind", "session", "stream", "seq", "t_ns", "arrays"})


def format_message(msg: Message, tz: tzinfo | None = None) -> str:
    """One human-readable line for a message (no trailing newline)."""
    h = msg.header
    kind = str(h.get("kind"))
    head = f"{format_time(h.get('t_ns'), tz)} {kind}"
    try:
        if kind in ("session_start", "session_stop"):
            body = " ".join([str(h["session"]), *_kv(h.get("info") or {})])
        else:
            label = str(h.get("stream", ""))
            if kind == "target":
                rest = _fmt_target(h)
            elif kind == "anomaly":
                rest = _fmt_anomaly(h)
            elif kind == "state":
                rest = _fmt_state(h)
            elif kind == "heartbeat":
                rest = _fmt_heartbeat(h)
            elif kind == "descriptor":
                rest = _fmt_descriptor(h)
            elif kind == "block":
                rest = _fmt_block(msg)
            else:
                raise KeyError(kind)
            body = f"{label} {rest}".rstrip()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
        # Unexpected shape: show the raw body rather than nothing.
        raw = {k: v for k, v in h.items() if k not in _HEADER_KEYS}
        body = f"{h.get('stream', '')} seq={h.get('seq')} " + json.dumps(
            _jsonable(raw, False), separators=(",", ":"), ensure_ascii=False
        )
    return f"{head} {body}".rstrip()


# --- JSON lines --------------------------------------------------------------------------


def _jsonable(v: Any, arrays: bool) -> Any:
    """Plain JSON values: NaN/inf become null, bytes hex, unknown types text."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x, arrays) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x, arrays) for x in v]
    if isinstance(v, bytes | bytearray):
        return v.hex()
    if hasattr(v, "tolist"):
        return _jsonable(v.tolist(), arrays)
    return str(v)


def to_json(msg: Message, arrays: bool = False) -> str:
    """One JSON object: ``topic``, every header field, and ``arrays``.

    ``arrays`` maps each array name to ``{"dtype", "shape"}``, or with
    ``arrays=True`` to its values as nested lists (NaN as null).
    """
    out: dict[str, Any] = {"topic": msg.topic}
    out.update({k: v for k, v in msg.header.items() if k != "arrays"})
    out["arrays"] = {
        name: a.tolist() if arrays else {"dtype": a.dtype.str, "shape": list(a.shape)}
        for name, a in msg.arrays.items()
    }
    return json.dumps(
        _jsonable(out, arrays), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


# --- the command -------------------------------------------------------------------------


def run_tail(
    endpoint: str,
    topics: list[str] | tuple[str, ...] | None = None,
    as_json: bool = False,
    count: int | None = None,
    timeout_s: float | None = None,
    out: TextIO | None = None,
    *,
    arrays: bool = False,
    err: TextIO | None = None,
    tz: tzinfo | None = None,
    context: Any = None,
    curve_server_key: str | bytes | None = None,
    curve_public_key: str | bytes | None = None,
    curve_secret_key: str | bytes | None = None,
) -> int:
    """Print messages until ``count`` printed, ``timeout_s`` passed, or Ctrl-C.

    Returns 0, or 1 when a ``count`` was asked for and the timeout came first.
    A summary of received/rejected/gaps goes to ``err`` at the end.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    sub = Subscriber(
        endpoint,
        tuple(topics) if topics else ("",),
        context=context,
        curve_server_key=curve_server_key,
        curve_public_key=curve_public_key,
        curve_secret_key=curve_secret_key,
    )
    printed = 0
    status = 0
    try:
        for msg in sub.messages(timeout_s):
            line = to_json(msg, arrays) if as_json else format_message(msg, tz)
            out.write(line + "\n")
            out.flush()
            printed += 1
            if count is not None and printed >= count:
                break
        else:
            if count is not None and printed < count:
                status = 1
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # `uxo tail ... | head`: the reader left; stop quietly.
        _silence_stdout(out)
    finally:
        sub.close()
    err.write(f"tail: {printed} printed; {sub.summary()}\n")
    return status


def _silence_stdout(out: TextIO) -> None:
    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _key_arg(value: str | None) -> tuple[str | None, str | None]:
    """A z85 key given inline, or a ZeroMQ certificate file (zmq.auth format)."""
    if value is None:
        return None, None
    if os.path.exists(value):
        import zmq.auth

        public, secret_key = zmq.auth.load_certificate(value)
        return public.decode(), secret_key.decode() if secret_key else None
    return value, None


def _cmd_tail(args: argparse.Namespace) -> int:
    from acquisition.cli_common import bus_options_from_args, stop_on_signals

    server_key, _ = _key_arg(args.server_key)
    client_public, client_secret = _key_arg(args.client_cert)
    if args.client_cert and client_secret is None:
        print("tail: --client-cert needs a secret certificate file", file=sys.stderr)
        return 2
    try:
        keys = bus_options_from_args(args)
    except ValueError as exc:
        print(f"tail: {exc}", file=sys.stderr)
        return 2
    if keys:
        server_key = keys["curve_server_key"]
        client_public, client_secret = keys["curve_public_key"], keys["curve_secret_key"]

    def interrupt() -> None:
        raise KeyboardInterrupt

    # SIGTERM and SIGINT (even when started in the background, where SIGINT
    # arrives ignored) end the loop in run_tail, which prints its summary.
    stop_on_signals(interrupt)
    return run_tail(
        args.endpoint,
        args.topics or [""],
        as_json=args.as_json,
        count=args.count,
        timeout_s=args.timeout_s,
        arrays=args.arrays,
        tz=UTC if args.utc else None,
        curve_server_key=server_key,
        curve_public_key=client_public,
        curve_secret_key=client_secret,
    )


def register_tail(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``uxo tail ENDPOINT [--json] [--topic T]... [--count N]``."""
    p = subparsers.add_parser(
        "tail",
        help="print the events a running service publishes",
        description=(
            "Subscribe to a uxo publisher and print one line per message "
            "(or one JSON object with --json). Ctrl-C stops; a summary of gaps "
            "and rejected messages is printed on stderr."
        ),
    )
    p.add_argument("endpoint", help="publisher address, e.g. tcp://192.168.1.20:5556")
    p.add_argument("--json", action="store_true", dest="as_json", help="JSON lines output")
    p.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="T",
        help="topic prefix to show (repeatable): target., anomaly.grad0, status. "
        "Default: everything. Descriptors and session messages are always shown.",
    )
    p.add_argument("--count", type=int, default=None, help="stop after N messages")
    p.add_argument("--timeout", type=float, default=None, dest="timeout_s",
                   help="stop after S seconds (exit 1 if --count was not reached)")
    p.add_argument("--arrays", action="store_true", help="with --json, include array values")
    p.add_argument("--utc", action="store_true", help="print times in UTC, not local time")
    p.add_argument("--server-key", default=None,
                   help="CURVE: the publisher's public key (z85) or its certificate file")
    p.add_argument("--client-cert", default=None,
                   help="CURVE: this client's secret certificate file (zmq.auth format)")
    from acquisition.cli_common import add_bus_arguments

    add_bus_arguments(p)
    p.set_defaults(func=_cmd_tail)
    return p
