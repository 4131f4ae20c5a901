"""The SHA-256 chain over appended raw data, and `verify` that recomputes it.

Every flush appends one *link* per stream: the digest of the previous link's
digest, the link number and the exact bytes appended to the stream's data,
positions, block and gap tables in that flush. Events get their own chain.
Changing any stored raw value afterwards makes its link's digest disagree;
`verify` names that link and the rows it covers.

A chain proves the data did not change since they were written *relative to
its head*: someone who rewrites data and every later digest is only caught by
comparing the head with a copy kept elsewhere (the operator's log, the
``session_stop`` message). Each file's first link continues the previous
file's head, so a rotated set forms one chain.

The hashing functions are pure; only `verify` touches a file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recorder import layout as L

_GENESIS_TAG = b"uxo-chain-v1\x00"
_LINK_TAG = b"uxo-link-v1\x00"


def genesis(session: str, name: str) -> bytes:
    """The digest a chain starts from: bound to the session and the chain's name."""
    return hashlib.sha256(_GENESIS_TAG + session.encode() + b"\x00" + name.encode()).digest()


def as_bytes_view(part: Any) -> memoryview:
    """A flat byte view of bytes or a C-contiguous array (no copy when possible)."""
    if isinstance(part, np.ndarray):
        part = np.ascontiguousarray(part)
        if part.size == 0:
            return memoryview(b"")  # no bytes; cast() refuses a shape with a zero in it
    return memoryview(part).cast("B")


def link_digest(prev: bytes, index: int, parts: Sequence[Any]) -> bytes:
    """Digest of one link: previous digest, link number and length-prefixed parts."""
    if len(prev) != 32:
        raise ValueError("previous digest must be 32 bytes")
    h = hashlib.sha256(_LINK_TAG)
    h.update(prev)
    h.update(int(index).to_bytes(8, "little", signed=True))
    for part in parts:
        mv = as_bytes_view(part)
        h.update(len(mv).to_bytes(8, "little"))
        h.update(mv)
    return h.digest()


class Chain:
    """A running chain: ``append(parts)`` returns the new head."""

    def __init__(self, head: bytes, next_link: int = 0) -> None:
        self.head = head
        self.next_link = next_link

    def append(self, parts: Sequence[Any]) -> bytes:
        self.head = link_digest(self.head, self.next_link, parts)
        self.next_link += 1
        return self.head


# --- verification --------------------------------------------------------------------


@dataclass(slots=True)
class ChangedLink:
    """A link whose stored digest no longer matches the data it covers."""

    chain: str  # stream id, or "events"
    link: int
    rows: tuple[int, int]
    blocks: tuple[int, int] = (0, 0)

    def describe(self) -> str:
        what = "event rows" if self.chain == "events" else "data rows"
        extra = "" if self.chain == "events" else f", blocks {self.blocks[0]}..{self.blocks[1]}"
        return (f"{self.chain}: chunk (link) {self.link} changed: "
                f"{what} {self.rows[0]}..{self.rows[1]}{extra}")


@dataclass(slots=True)
class ChainReport:
    name: str
    links: int = 0
    rows: int = 0
    uncommitted_rows: int = 0
    head: str = ""
    prev_head: str = ""


@dataclass(slots=True)
class VerifyReport:
    """What `verify` found. ``ok`` is True when nothing changed and nothing is broken."""

    path: str
    chains: list[ChainReport] = field(default_factory=list)
    changed: list[ChangedLink] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    state: str = ""

    @property
    def ok(self) -> bool:
        return not self.changed and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "state": self.state,
            "chains": [
                {"name": c.name, "links": c.links, "rows": c.rows,
                 "uncommitted_rows": c.uncommitted_rows, "head": c.head,
                 "prev_head": c.prev_head}
                for c in self.chains
            ],
            "changed": [
                {"chain": c.chain, "link": c.link, "rows": list(c.rows),
                 "blocks": list(c.blocks)}
                for c in self.changed
            ],
            "problems": list(self.problems),
        }


def _check_contiguous(name: str, chain: np.ndarray, cols: tuple[str, ...],
                      problems: list[str]) -> None:
    for col_start, col_stop in zip(cols[::2], cols[1::2], strict=True):
        starts, stops = chain[col_start], chain[col_stop]
        if len(starts) and starts[0] != 0:
            problems.append(f"{name}: chain does not start at row 0 ({col_start})")
        if len(starts) > 1 and np.any(starts[1:] != stops[:-1]):
            problems.append(f"{name}: chain links are not contiguous ({col_start})")
        if np.any(stops < starts):
            problems.append(f"{name}: chain link with negative extent ({col_start})")
    links = chain["link"]
    if len(links) and np.any(links != np.arange(len(links))):
        problems.append(f"{name}: chain link numbers are not 0, 1, 2, ...")


def _verify_stream(sid: str, g: Any, report: VerifyReport) -> None:
    chain = g[L.DS_CHAIN][()]
    prev_hex = str(g.attrs.get(L.ATTR_CHAIN_PREV_HEAD, ""))
    cr = ChainReport(name=sid, links=len(chain), prev_head=prev_hex)
    report.chains.append(cr)
    try:
        prev = bytes.fromhex(prev_hex)
    except ValueError:
        prev = b""
    if len(prev) != 32:
        report.problems.append(f"{sid}: missing or bad chain start attribute")
        return
    _check_contiguous(sid, chain, ("row_start", "row_stop", "block_start", "block_stop",
                                   "gap_start", "gap_stop"), report.problems)
    data, blocks, gaps = g[L.DS_DATA], g[L.DS_BLOCKS], g[L.DS_GAPS]
    pos = g.get(L.DS_POSITIONS, None)
    for row in chain:
        r0, r1 = int(row["row_start"]), int(row["row_stop"])
        b0, b1 = int(row["block_start"]), int(row["block_stop"])
        g0, g1 = int(row["gap_start"]), int(row["gap_stop"])
        if r1 > data.shape[0] or b1 > blocks.shape[0] or g1 > gaps.shape[0]:
            report.problems.append(f"{sid}: link {int(row['link'])} covers rows the file lacks")
            break
        parts = [data[r0:r1], b"" if pos is None else pos[r0:r1], blocks[b0:b1], gaps[g0:g1]]
        digest = link_digest(prev, int(row["link"]), parts)
        stored = bytes(row["digest"])
        if digest != stored:
            report.changed.append(ChangedLink(sid, int(row["link"]), (r0, r1), (b0, b1)))
        prev = stored  # each link is checked on its own, so only changed links are named
    cr.head = prev.hex()
    committed = int(chain["row_stop"][-1]) if len(chain) else 0
    cr.rows = committed
    cr.uncommitted_rows = max(0, int(data.shape[0]) - committed)


def _verify_events(g: Any, prev_hex: str, report: VerifyReport) -> None:
    chain = g[L.DS_EVENT_CHAIN][()]
    cr = ChainReport(name="events", links=len(chain), prev_head=prev_hex)
    report.chains.append(cr)
    prev = bytes.fromhex(prev_hex) if prev_hex else b""
    if len(prev) != 32:
        report.problems.append("events: missing or bad chain start attribute")
        return
    _check_contiguous("events", chain, ("row_start", "row_stop", "byte_start", "byte_stop"),
                      report.problems)
    table, js = g[L.DS_EVENT_TABLE], g[L.DS_EVENT_JSON]
    for row in chain:
        r0, r1 = int(row["row_start"]), int(row["row_stop"])
        y0, y1 = int(row["byte_start"]), int(row["byte_stop"])
        if r1 > table.shape[0] or y1 > js.shape[0]:
            report.problems.append(f"events: link {int(row['link'])} covers rows the file lacks")
            break
        digest = link_digest(prev, int(row["link"]), [table[r0:r1], js[y0:y1]])
        stored = bytes(row["digest"])
        if digest != stored:
            report.changed.append(ChangedLink("events", int(row["link"]), (r0, r1)))
        prev = stored
    cr.head = prev.hex()
    cr.rows = int(chain["row_stop"][-1]) if len(chain) else 0
    cr.uncommitted_rows = max(0, int(table.shape[0]) - cr.rows)


def verify(path: str | Path) -> VerifyReport:
    """Recompute every chain link of a recording; report changed links and breakage.

    Opens read-only in SWMR mode, so it works on a file still being written and
    on one whose writer crashed. Raises `OSError` if the file cannot be opened
    as HDF5 at all.
    """
    import h5py

    from recorder.reader import RecordingError, check_structure

    report = VerifyReport(path=str(path))
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        if f.attrs.get(L.ATTR_FORMAT) != L.FORMAT_NAME:
            report.problems.append("not a uxo recording (format attribute missing)")
            return report
        try:  # external storage, links, absurd sizes: nothing of it is read
            check_structure(f)
        except RecordingError as exc:
            report.problems.append(str(exc))
            return report
        if L.DS_STATUS in f:
            st = f[L.DS_STATUS][0]
            report.state = L.STATE_NAMES.get(int(st["state"]), str(int(st["state"])))
        streams = f.get(L.STREAMS_GROUP)
        for name in sorted(streams or ()):
            sid = L.stream_id_from_group(name)
            try:
                _verify_stream(sid, streams[name], report)
            except (KeyError, OSError, ValueError) as exc:
                report.problems.append(f"{sid}: cannot read: {exc}")
        if L.EVENTS_GROUP in f:
            try:
                _verify_events(f[L.EVENTS_GROUP], str(f.attrs.get(L.ATTR_EVENTS_PREV_HEAD, "")),
                               report)
            except (KeyError, OSError, ValueError) as exc:
                report.problems.append(f"events: cannot read: {exc}")
    return report


def verify_files(paths: Sequence[str | Path]) -> VerifyReport:
    """Verify each file of a rotated set and that each continues the previous one's chains.

    Files are taken in the order given (`recorder.reader.session_files` sorts
    them by sequence number).
    """
    paths = list(paths)
    if len(paths) == 1:
        return verify(paths[0])
    total = VerifyReport(path=", ".join(str(p) for p in paths))
    heads: dict[str, str] = {}
    for p in paths:
        rep = verify(p)
        total.changed.extend(rep.changed)
        total.problems.extend(f"{Path(p).name}: {x}" for x in rep.problems)
        for c in rep.chains:
            if c.name in heads and c.prev_head != heads[c.name]:
                total.problems.append(f"{Path(p).name}: chain {c.name} does not continue "
                                      "the previous file's")
            heads[c.name] = c.head
        total.chains.extend(rep.chains)
        total.state = rep.state
    return total


def not_intact(paths: Sequence[str | Path]) -> str | None:
    """None when every file's chains verify, else one line saying what is wrong.

    For commands that use a recording's data (``export``, ``process``): they
    say NOT INTACT before the data are used, whatever they do next.
    """
    rep = verify_files(paths)
    if rep.ok:
        return None
    what = [c.describe() for c in rep.changed] + list(rep.problems)
    more = f" (and {len(what) - 1} more)" if len(what) > 1 else ""
    return f"NOT INTACT: {what[0]}{more}; see `uxo verify`"

