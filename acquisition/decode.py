"""``uxo decode``: decode a raw byte capture with a driver, CSV out, summary on stderr.

Operators save what a serial port sent (``cat /dev/ttyUSB0 > capture.bin``)
and check it::

    uxo decode --driver g882 capture.bin > samples.csv
    uxo decode --driver lineproto -o separator=';' -o 'columns=["t:s","bz:nT"]' - < cap

The CSV has one row per decoded sample: ``index`` (sample number), ``t_s``
(the device's own time stamp in seconds when the protocol carries one, else
``index / rate``), the channels named as in the driver's descriptor, then
``x``/``y`` when the driver gives positions. The summary (frames ok, frames
rejected by reason, over-long lines, bytes) goes to stderr.

The capture runs through the same framer and parser as live data, in reads of
``chunk`` bytes, so partial lines across reads are handled as on a port.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.drivers import registry
from acquisition.drivers.base import Driver, LineDriver
from acquisition.drivers.framing import LineFramer
from acquisition.errors import UxoValueError
from acquisition.types import StreamDescriptor


class DecodeError(UxoValueError):
    """The driver cannot decode captures, or its options are bad."""


@dataclass
class Summary:
    bytes: int = 0
    lines: int = 0
    frames_ok: int = 0
    frames_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    overlong: int = 0
    info: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        out = [f"bytes: {self.bytes}", f"lines: {self.lines}",
               f"frames ok: {self.frames_ok}", f"frames rejected: {self.frames_rejected}"]
        for reason, n in sorted(self.rejected_by_reason.items()):
            out.append(f"  {reason}: {n}")
        for k, v in sorted(self.info.items()):
            out.append(f"info {k}: {v}")
        return "\n".join(out) + "\n"


def resolve_driver(name_or_cls: str | type[Driver]) -> type[LineDriver]:
    if isinstance(name_or_cls, type):
        cls: type[Driver] = name_or_cls
    else:
        cls = registry.get(name_or_cls)
    if not (isinstance(cls, type) and issubclass(cls, LineDriver)):
        raise DecodeError(f"driver {cls.__name__} does not decode byte captures "
                          "(only line-protocol drivers do)")
    return cls


def _check_banner(drv: LineDriver, lines: list[bytes], first_line: int) -> None:
    """A banner the descriptor cannot use is a bad capture: say where, do not crash."""
    try:
        drv.describe()
    except (TypeError, ValueError) as exc:
        # Banner lines are rare: the last non-data line of the batch named the value.
        at = [i for i, ln in enumerate(lines) if ln.startswith(b"#")] or [0]
        raise DecodeError(f"line {first_line + at[-1] + 1}: {exc}") from None


def decode_bytes(
    driver: str | type[Driver],
    data: bytes,
    options: dict[str, Any] | None = None,
    *,
    chunk: int = 65536,
) -> tuple[StreamDescriptor, list[list[float]], Summary]:
    """Decode ``data`` with ``driver``: (descriptor, rows, summary); never raises on bad bytes.

    Each row is ``[index, t_s, *channels, (x, y)]`` as in `csv_header`.
    """
    cls = resolve_driver(driver)
    try:
        drv = cls("capture", **(options or {}))
        drv.live = False
        drv.describe()
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"bad options for {cls.name or cls.__name__}: {exc}") from exc
    framer = LineFramer(drv.max_line)
    summary = Summary(bytes=len(data))
    parts: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []
    step = max(1, int(chunk))
    for i in range(0, len(data), step):
        lines = framer.feed(data[i : i + step])
        if not lines:
            continue
        summary.lines += len(lines)
        parsed = drv.parse_lines(lines)
        if parsed.info:
            drv.info.update(parsed.info)
            summary.info.update(parsed.info)
            _check_banner(drv, lines, summary.lines - len(lines))
        for _, reason in parsed.rejects:
            summary.frames_rejected += 1
            summary.rejected_by_reason[reason] = summary.rejected_by_reason.get(reason, 0) + 1
        if parsed.n:
            parts.append((parsed.values, parsed.device_ns, parsed.positions))
    # A capture's last line may lack its newline: decode it as the device meant it.
    if framer.pending:
        tail = framer.feed(b"\n")
        if tail:
            summary.lines += len(tail)
            parsed = drv.parse_lines(tail)
            for _, reason in parsed.rejects:
                summary.frames_rejected += 1
                summary.rejected_by_reason[reason] = summary.rejected_by_reason.get(reason,
                                                                                    0) + 1
            if parsed.n:
                parts.append((parsed.values, parsed.device_ns, parsed.positions))
    summary.overlong = framer.stats.overlong
    if framer.stats.overlong:
        summary.frames_rejected += framer.stats.overlong
        summary.rejected_by_reason["overlong"] = framer.stats.overlong
    descriptor = drv.describe()
    has_pos = descriptor.position_dims > 0
    rows: list[list[float]] = []
    index = 0
    for values, dev, pos in parts:
        n = values.shape[0]
        idx = np.arange(index, index + n)
        t = dev / NS_PER_S if dev is not None else idx / descriptor.rate_hz
        cols = [idx[:, None].astype(np.float64), np.asarray(t, dtype=np.float64)[:, None],
                values]
        if has_pos:
            cols.append(pos if pos is not None else np.full((n, 2), np.nan))
        rows.extend(np.hstack(cols).tolist())
        index += n
    summary.frames_ok = index
    return descriptor, rows, summary


def csv_header(descriptor: StreamDescriptor) -> list[str]:
    head = ["index", "t_s", *descriptor.channel_names]
    if descriptor.position_dims > 0:
        head += ["x", "y"]
    return head


def write_csv(out: io.TextIOBase | Any, descriptor: StreamDescriptor,
              rows: list[list[float]]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(csv_header(descriptor))
    for r in rows:
        w.writerow([str(int(r[0])), *(("" if v != v else repr(v)) for v in r[1:])])


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` with a Python/TOML-like literal value (else the plain string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"option must be KEY=VALUE, got {text!r}")
    raw = raw.strip()
    low = raw.lower()
    if low in ("true", "false"):
        return key.strip(), low == "true"
    try:
        return key.strip(), ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key.strip(), raw


def register_decode(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``decode`` sub-command to ``uxo``'s argparse sub-parsers."""
    p = subparsers.add_parser(
        "decode", help="decode a raw byte capture with a driver: CSV on stdout, summary on stderr",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--driver", required=True, help="driver name (e.g. g882, nmea, lineproto)")
    p.add_argument("file", nargs="?", default="-", help="capture file, or - for stdin")
    p.add_argument("-o", "--option", action="append", default=[], type=parse_option,
                   metavar="KEY=VALUE", help="driver option (repeatable); value is a literal")
    p.add_argument("--chunk", type=int, default=65536, help="read size in bytes (default 65536)")
    p.set_defaults(func=run_decode)
    return p


def run_decode(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        print(f"uxo decode: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        descriptor, rows, summary = decode_bytes(args.driver, data, dict(args.option),
                                                 chunk=args.chunk)
    except (registry.UnknownDriverError, DecodeError) as exc:
        where = "" if args.file == "-" else f"{args.file}: "
        print(f"uxo decode: {where}{exc}", file=sys.stderr)
        return 2
    write_csv(sys.stdout, descriptor, rows)
    sys.stdout.flush()
    sys.stderr.write(summary.text())
    return 0
