"""``uxo repair FILE``: make a crashed recording an ordinary HDF5 file again.

A writer killed in SWMR mode leaves the superblock's file-consistency flags
set; HDF5 then refuses every open except an SWMR read ("file is already
open for write"), so plain ``h5py.File(path)``, HDFView and h5dump cannot read
it. `repair`:

1. refuses while any process still has the file open (a live writer);
2. copies the file to ``FILE.orig`` (never overwriting one);
3. clears the flags in the superblock (version 2 or 3) and rewrites its
   checksum (HDF5's Jenkins lookup3), as ``h5clear -s`` does;
4. truncates every stream's tables, and the events, to their last chained
   link, so nothing that the integrity chain does not cover is left;
5. verifies the chains of the result.

The status row keeps its "writing (or crashed)" state; the root attributes
``repaired_wall_ns`` and ``repair_dropped_rows`` record the repair.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorder import layout as L
from recorder.reader import RecordingError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Where a superblock may start (after a user block of 512 bytes times a power of two).
SUPERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
#: Byte of the file-consistency flags in a version 2/3 superblock.
FLAGS_BYTE = 11


class RepairError(RecordingError):
    """The file cannot be repaired (open elsewhere, not HDF5, an old superblock)."""


@dataclass(slots=True)
class RepairReport:
    path: str
    backup: str
    flags_were: int
    #: Rows (stream id or "events") dropped beyond the last chained link.
    dropped: dict[str, int] = field(default_factory=dict)
    intact: bool = False
    problems: list[str] = field(default_factory=list)


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum of HDF5 metadata."""
    m = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & m
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & m
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & m
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m  # noqa: E702
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m  # noqa: E702
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m  # noqa: E702
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m  # noqa: E702
        n -= 12
        i += 12
    if n == 0:
        return c
    tail = data[i:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & m  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & m  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & m  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & m  # noqa: E702
    return c


def _superblock(fh: Any) -> tuple[int, bytearray]:
    """(offset, bytes) of a version 2/3 superblock, checksum checked."""
    for off in SUPERBLOCK_OFFSETS:
        fh.seek(off)
        head = fh.read(12)
        if len(head) < 12:
            break
        if head[:8] != SIGNATURE:
            continue
        version = head[8]
        if version not in (2, 3):
            raise RepairError(f"superblock version {version}: only versions 2 and 3 "
                              "(files written by the recorder) carry the flags repaired here")
        size = 12 + 4 * head[9] + 4
        fh.seek(off)
        sb = bytearray(fh.read(size))
        if len(sb) != size or lookup3(bytes(sb[:-4])) != int.from_bytes(sb[-4:], "little"):
            raise RepairError("the superblock's checksum does not match: not repaired")
        return off, sb
    raise RepairError("no HDF5 superblock found: not an HDF5 file")


def clear_status_flags(path: str | Path) -> int:
    """Clear the superblock's file-consistency flags (``h5clear -s``); the old flags."""
    with open(path, "r+b") as fh:
        off, sb = _superblock(fh)
        was = sb[FLAGS_BYTE]
        if was:
            sb[FLAGS_BYTE] = 0
            sb[-4:] = lookup3(bytes(sb[:-4])).to_bytes(4, "little")
            fh.seek(off)
            fh.write(sb)
            fh.flush()
            os.fsync(fh.fileno())
        return was


def open_by(path: str | Path) -> list[int]:
    """Ids of processes that have the file open (Linux /proc; same inode, any name)."""
    st = os.stat(path)
    me = os.getpid()
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(d.name)
            if pid == me:
                continue
            for fd in (d / "fd").iterdir():
                with contextlib.suppress(OSError):
                    s = os.stat(fd)
                    if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino):
                        pids.append(pid)
                        break
        except (OSError, ValueError):
            continue
    return pids


def _truncate(path: Path, report: RepairReport) -> None:
    import h5py

    from recorder.reader import check_structure

    with h5py.File(path, "r+") as f:
        if f.attrs.get(L.ATTR_FORMAT) != L.FORMAT_NAME:
            raise RepairError("not a uxo recording (format attribute missing)")
        check_structure(f)
        for name, g in (f.get(L.STREAMS_GROUP) or {}).items():
            chain = g[L.DS_CHAIN]
            last = chain[chain.shape[0] - 1] if chain.shape[0] else None
            rows = int(last["row_stop"]) if last is not None else 0
            stops = {L.DS_DATA: rows, L.DS_POSITIONS: rows,
                     L.DS_BLOCKS: int(last["block_stop"]) if last is not None else 0,
                     L.DS_GAPS: int(last["gap_stop"]) if last is not None else 0}
            report.dropped[L.stream_id_from_group(name)] = max(
                0, int(g[L.DS_DATA].shape[0]) - rows)
            for ds_name, stop in stops.items():
                if ds_name in g and g[ds_name].shape[0] > stop:
                    g[ds_name].resize(stop, axis=0)
        eg = f.get(L.EVENTS_GROUP)
        if eg is not None:
            chain = eg[L.DS_EVENT_CHAIN]
            last = chain[chain.shape[0] - 1] if chain.shape[0] else None
            rows = int(last["row_stop"]) if last is not None else 0
            nbytes = int(last["byte_stop"]) if last is not None else 0
            report.dropped["events"] = max(0, int(eg[L.DS_EVENT_TABLE].shape[0]) - rows)
            for ds_name, stop in ((L.DS_EVENT_TABLE, rows), (L.DS_EVENT_JSON, nbytes)):
                if eg[ds_name].shape[0] > stop:
                    eg[ds_name].resize(stop, axis=0)
        f.attrs["repaired_wall_ns"] = time.time_ns()
        f.attrs["repair_dropped_rows"] = sum(report.dropped.values())


def repair(path: str | Path, *, backup: str | Path | None = None) -> RepairReport:
    """Repair a crashed recording in place, keeping a copy (see the module docstring)."""
    from recorder.integrity import verify

    p = Path(path)
    if p.is_symlink() or not p.is_file():
        raise RepairError(f"{p}: not a regular file")
    users = open_by(p)
    if users:
        raise RepairError(f"{p} is open in process(es) {', '.join(map(str, users))}: "
                          "a writer may still be writing; stop it first")
    bak = Path(backup) if backup is not None else p.with_name(p.name + ".orig")
    with open(p, "rb") as src:
        _superblock(src)  # an HDF5 file we can repair, before anything is copied
        src.seek(0)
        try:
            with open(bak, "xb") as dst:  # never overwrites a kept copy
                shutil.copyfileobj(src, dst, 1 << 20)
        except FileExistsError:
            raise RepairError(f"{bak} exists: move it away first (it may be an earlier "
                              "original)") from None
    report = RepairReport(path=str(p), backup=str(bak), flags_were=clear_status_flags(p))
    _truncate(p, report)
    rep = verify(p)
    report.intact, report.problems = rep.ok, list(rep.problems) + [
        c.describe() for c in rep.changed]
    return report


def register_repair(sub: argparse._SubParsersAction) -> None:
    """Add the ``repair`` sub-command to the ``uxo`` parser."""
    p = sub.add_parser("repair", help="make a crashed recording readable by any HDF5 tool",
                       description="Clear the HDF5 consistency flags a crashed writer left "
                                   "set, truncate to the last chained link, keep FILE.orig.")
    p.add_argument("file", help="recording file")
    p.add_argument("--backup", metavar="PATH", help="where to keep the original "
                   "(default FILE.orig)")
    p.set_defaults(func=_cmd_repair)


def _cmd_repair(args: argparse.Namespace) -> int:
    try:
        rep = repair(args.file, backup=args.backup)
    except (RecordingError, OSError) as exc:
        print(f"uxo repair: {exc}", file=sys.stderr)
        return 2
    dropped = ", ".join(f"{k} {v}" for k, v in rep.dropped.items() if v) or "none"
    print(f"{rep.path}: consistency flags {'cleared' if rep.flags_were else 'were clear'}; "
          f"rows dropped after the last chained link: {dropped}; original kept as {rep.backup}")
    print(f"{rep.path}: " + ("intact" if rep.intact else
                             "NOT INTACT: " + "; ".join(rep.problems)))
    return 0 if rep.intact else 1
