"""Read recordings back: one file, or a rotated set of one session, even while written.

Files are opened read-only in SWMR mode, which works on a file still being
written (call `Recording.refresh` to see newer flushes) and on one whose writer
was killed. Only rows covered by an integrity-chain link are shown: those were
completely on disk before the link was written. Rows appended after the last
link (a crash between the two phases of a flush) are counted in
``uncommitted_rows`` and shown only with ``include_uncommitted=True``.

``StreamRecord.iter_blocks`` gives back `SampleBlock`s equal (``==``) to those
the sink was given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from acquisition.clock import NS_PER_S
from acquisition.errors import UxoValueError
from acquisition.types import BlockFlags, SampleBlock, StreamDescriptor
from recorder import layout as L


class RecordingError(UxoValueError):
    """Not a recording, or a set of files that do not belong together."""


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", libver="latest", swmr=True)
    except OSError as exc:
        raise OSError(f"cannot open recording {path}: {exc}") from exc


#: Longest JSON attribute (descriptor, provenance) a recording may hold; ours are a few kB.
MAX_ATTR_TEXT = 1 << 20
#: Most links a recording may hold (ours: about ten per stream).
MAX_LINKS = 100_000
#: How far a dataset's declared size may run beyond the bytes it holds on disk:
#: an honest file being written can show a new extent a flush's worth ahead of
#: its chunks; a crafted one declares terabytes it does not have.
SIZE_SLACK_BYTES = 256 << 20
#: Largest data expansion of a compression filter (deflate's is about 1030).
MAX_FILTER_RATIO = 1100


def check_structure(f: h5py.File) -> None:
    """Refuse what our writer never makes and a reader must never follow.

    External links, soft links, external raw-data storage (a dataset whose
    bytes are another file, e.g. /etc/passwd), virtual datasets (data mapped
    from other files), object dtypes, and datasets that declare far more
    rows than their bytes on disk (a 2^40-row table read whole would ask for
    terabytes) are each a `RecordingError` naming the object.
    """
    where = f.filename
    count = 0

    # h5py's visit stops at the first non-None return; an exception raised
    # inside the callback would cross HDF5's C iteration, so the problem is
    # returned and raised after.
    def visit(name: str, link: Any) -> str | None:
        nonlocal count
        count += 1
        if count > MAX_LINKS:
            return f"more than {MAX_LINKS} objects: not a recording"
        if isinstance(link, h5py.ExternalLink):
            return (f"/{name} is an external link to {link.filename}:{link.path} (refused: a "
                    "recording holds its own data)")
        if isinstance(link, h5py.SoftLink):
            return f"/{name} is a soft link to {link.path} (refused)"
        obj = f.get(name)
        return _dataset_problem(name, obj) if isinstance(obj, h5py.Dataset) else None

    problem = f.visititems_links(visit)
    if problem:
        raise RecordingError(f"{where}: {problem}")


def _dataset_problem(name: str, ds: h5py.Dataset) -> str | None:
    if ds.is_virtual:
        return f"/{name} is a virtual dataset (data mapped from other files; refused)"
    dcpl = ds.id.get_create_plist()
    if dcpl.get_external_count():
        ext = dcpl.get_external(0)[0].decode(errors="replace")
        return f"/{name} keeps its data in an external file ({ext}; refused)"
    if ds.dtype.hasobject:
        return f"/{name} has an object dtype ({ds.dtype}; refused)"
    declared = int(ds.size) * ds.dtype.itemsize
    held = int(ds.id.get_storage_size())
    ratio = MAX_FILTER_RATIO if dcpl.get_nfilters() else 1
    if declared > held * ratio + SIZE_SLACK_BYTES:
        return (f"/{name} declares shape {ds.shape} ({declared:,} bytes) but holds "
                f"{held:,} bytes on disk (refused)")
    return None


def json_attr(obj: h5py.Group | h5py.File, key: str) -> Any:
    """A JSON attribute, parsed; a missing, huge, too deeply nested or invalid one
    is a `RecordingError` naming it."""
    where = f"{obj.file.filename}: attribute {key!r} of {obj.name}"
    if key not in obj.attrs:
        raise RecordingError(f"{where} is missing")
    raw = obj.attrs[key]
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if not isinstance(text, str):
        raise RecordingError(f"{where} is not text")
    if len(text) > MAX_ATTR_TEXT:
        raise RecordingError(f"{where} is {len(text):,} characters long "
                             f"(limit {MAX_ATTR_TEXT:,})")
    try:
        return json.loads(text)
    except RecursionError:
        raise RecordingError(f"{where} is nested too deeply") from None
    except ValueError as exc:
        raise RecordingError(f"{where} is not valid JSON: {exc}") from None


@dataclass(slots=True)
class _Segment:
    """One file's share of a stream, limited to its committed rows."""

    group: h5py.Group
    rows: int = 0
    blocks: int = 0
    gaps: int = 0
    uncommitted_rows: int = 0

    def refresh(self, include_uncommitted: bool) -> None:
        g = self.group
        for name in (L.DS_CHAIN, L.DS_DATA, L.DS_BLOCKS, L.DS_GAPS, L.DS_POSITIONS):
            if name in g:
                g[name].refresh()
        # Chain first: every row it covers was flushed before the link was.
        chain = g[L.DS_CHAIN]
        n = chain.shape[0]
        last = chain[n - 1] if n else None
        rows = int(last["row_stop"]) if last is not None else 0
        blocks = int(last["block_stop"]) if last is not None else 0
        gaps = int(last["gap_stop"]) if last is not None else 0
        on_disk = int(g[L.DS_DATA].shape[0])
        if rows > on_disk or blocks > g[L.DS_BLOCKS].shape[0] or gaps > g[L.DS_GAPS].shape[0]:
            raise RecordingError(f"{g.file.filename}: {g.name}: the chain covers rows, blocks "
                                 "or gaps the file lacks")
        self.uncommitted_rows = max(0, on_disk - rows)
        if include_uncommitted:
            table = g[L.DS_BLOCKS][()]
            ok = table["row_offset"] + table["n"] <= on_disk
            blocks = int(np.argmin(ok)) if not ok.all() else len(table)
            rows = int(table["row_offset"][blocks - 1] + table["n"][blocks - 1]) if blocks else 0
            gaps = int(g[L.DS_GAPS].shape[0])
        self.rows, self.blocks, self.gaps = rows, blocks, gaps


class StreamRecord:
    """One stream across the files of a recording."""

    def __init__(self, stream_id: str, descriptor: StreamDescriptor,
                 provenance: dict[str, Any], segments: list[_Segment]) -> None:
        self.stream_id = stream_id
        self.descriptor = descriptor
        self.provenance = provenance
        self._segments = segments
        self._cache: dict[str, Any] = {}

    def _clear(self) -> None:
        self._cache.clear()

    @property
    def n_rows(self) -> int:
        return sum(s.rows for s in self._segments)

    @property
    def n_blocks(self) -> int:
        return sum(s.blocks for s in self._segments)

    @property
    def uncommitted_rows(self) -> int:
        return sum(s.uncommitted_rows for s in self._segments)

    @property
    def has_positions(self) -> bool:
        return any(L.DS_POSITIONS in s.group for s in self._segments)

    def _concat(self, name: str, count: str, empty: np.ndarray) -> np.ndarray:
        if name not in self._cache:
            parts = [s.group[name][: getattr(s, count)] for s in self._segments
                     if name in s.group]
            self._cache[name] = np.concatenate(parts) if parts else empty
        return self._cache[name]

    @property
    def data(self) -> np.ndarray:
        """All committed samples, shape (n, channels)."""
        nch = len(self.descriptor.channels)
        return self._concat(L.DS_DATA, "rows", np.empty((0, nch)))

    @property
    def positions(self) -> np.ndarray | None:
        """Positions (n, dims), NaN where a block had none; None if the stream has none."""
        if not self.has_positions:
            return None
        return self._concat(L.DS_POSITIONS, "rows",
                            np.empty((0, self.descriptor.position_dims)))

    @property
    def blocks(self) -> np.ndarray:
        """The block table (`layout.BLOCK_DTYPE`); ``row_offset`` indexes `data`."""
        if "blocks" not in self._cache:
            parts, base = [], 0
            for s in self._segments:
                t = s.group[L.DS_BLOCKS][: s.blocks].copy()
                _check_blocks(s, t)
                t["row_offset"] += base - (t["row_offset"][0] if len(t) else 0)
                parts.append(t)
                base += s.rows
            self._cache["blocks"] = (np.concatenate(parts) if parts
                                     else np.zeros(0, dtype=L.BLOCK_DTYPE))
        return self._cache["blocks"]

    @property
    def gaps(self) -> np.ndarray:
        """The gap table: (first_missing_index, n_missing, t_ns) rows."""
        return self._concat(L.DS_GAPS, "gaps", np.zeros(0, dtype=L.GAP_DTYPE))

    @property
    def sample_index(self) -> np.ndarray:
        """Absolute sample index of every row (int64)."""
        b = self.blocks
        start = np.repeat(b["first_index"] - b["row_offset"], b["n"])
        return start + np.arange(len(start), dtype=np.int64)

    def times_ns(self) -> np.ndarray:
        """Time of every row, exactly as `SampleBlock.times_ns` gives it per block."""
        b = self.blocks
        rel = np.arange(int(b["n"].sum()), dtype=np.int64) - np.repeat(b["row_offset"], b["n"])
        step = np.repeat(NS_PER_S / b["rate_hz"], b["n"])
        off = np.round(rel.astype(np.float64) * step)
        if off.size and not np.abs(off).max() < 2.0**62:  # also NaN: a rate no device has
            raise RecordingError(f"stream {self.stream_id!r}: block rates put sample times "
                                 "beyond any clock (a damaged block table)")
        return np.repeat(b["t0_ns"], b["n"]) + off.astype(np.int64)

    def iter_blocks(self, start: int = 0, window_rows: int = 1 << 16) -> Iterator[SampleBlock]:
        """The recorded blocks, from block number ``start``; read in windows of rows."""
        skip = start
        for seg in self._segments:
            table = seg.group[L.DS_BLOCKS][: seg.blocks]
            if skip >= len(table):
                skip -= len(table)
                continue
            data_ds = seg.group[L.DS_DATA]
            pos_ds = seg.group.get(L.DS_POSITIONS, None)
            w0 = w1 = 0
            wdata = wpos = None
            for row in table[skip:]:
                r0 = int(row["row_offset"])
                r1 = r0 + int(row["n"])
                if wdata is None or r0 < w0 or r1 > w1:  # an empty first block reads too
                    w0, w1 = r0, max(r1, min(seg.rows, r0 + window_rows))
                    wdata = data_ds[w0:w1]
                    wpos = pos_ds[w0:w1] if pos_ds is not None else None
                yield _block_from_row(self.stream_id, row, wdata[r0 - w0:r1 - w0],
                                      None if wpos is None else wpos[r0 - w0:r1 - w0])
            skip = 0


def _check_blocks(seg: _Segment, t: np.ndarray) -> None:
    """Refuse a block table that does not tile the segment's rows exactly.

    Everything derived per row (times, sample indices) is sized from this
    table: one crafted ``n`` would otherwise ask for terabytes.
    """
    where = f"{seg.group.file.filename}: {seg.group.name}/{L.DS_BLOCKS}"
    if not len(t):
        if seg.rows:
            raise RecordingError(f"{where}: no blocks for {seg.rows} rows")
        return
    n, off = t["n"].astype(np.int64), t["row_offset"].astype(np.int64)
    rate = t["rate_hz"].astype(np.float64)
    if (n < 0).any() or (n > seg.rows).any():
        raise RecordingError(f"{where}: a block claims more rows than the stream has")
    if (off[1:] != off[:-1] + n[:-1]).any() or int(off[-1] + n[-1] - off[0]) != seg.rows:
        raise RecordingError(f"{where}: blocks do not cover rows 0..{seg.rows} one after "
                             "the other")
    if not (np.isfinite(rate) & (rate > 0)).all():
        raise RecordingError(f"{where}: a block has a sample rate that is not a positive "
                             "number")


def _block_from_row(sid: str, row: np.void, data: np.ndarray,
                    pos: np.ndarray | None) -> SampleBlock:
    pd = int(row["pos_dims"])
    dev = int(row["device_time_ns"])
    return SampleBlock(
        stream_id=sid,
        seq=int(row["seq"]),
        first_index=int(row["first_index"]),
        t0_ns=int(row["t0_ns"]),
        rate_hz=float(row["rate_hz"]),
        data=data,
        positions=pos[:, :pd].copy() if (pos is not None and pd) else None,
        host_mono_ns=int(row["host_mono_ns"]),
        host_wall_ns=int(row["host_wall_ns"]),
        device_time_ns=None if dev == L.NO_DEVICE_TIME else dev,
        flags=BlockFlags(int(row["flags"])),
    )


class Recording:
    """A recording: one file or a rotated set, opened read-only (SWMR)."""

    def __init__(self, paths: Sequence[str | Path], *, include_uncommitted: bool = False
                 ) -> None:
        self.include_uncommitted = include_uncommitted
        self._files: list[h5py.File] = []
        try:
            for p in paths:
                self._files.append(_open_h5(Path(p)))
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        if not self._files:
            raise RecordingError("no files given")
        for f in self._files:
            if f.attrs.get(L.ATTR_FORMAT) != L.FORMAT_NAME:
                raise RecordingError(f"{f.filename} is not a uxo recording")
            check_structure(f)
            if int(f.attrs[L.ATTR_LAYOUT_VERSION]) > L.LAYOUT_VERSION:
                raise RecordingError(f"{f.filename}: layout version "
                                     f"{int(f.attrs[L.ATTR_LAYOUT_VERSION])} is newer than "
                                     f"this reader ({L.LAYOUT_VERSION})")
        self._files.sort(key=lambda f: int(f.attrs[L.ATTR_FILE_SEQ]))
        sessions = {str(f.attrs[L.ATTR_SESSION]) for f in self._files}
        if len(sessions) > 1:
            raise RecordingError(f"files belong to several sessions: {sorted(sessions)}")
        self.session: str = sessions.pop()
        self.paths = [Path(f.filename) for f in self._files]
        self.file_seqs = [int(f.attrs[L.ATTR_FILE_SEQ]) for f in self._files]
        self.problems: list[str] = []
        for a, b in zip(self.file_seqs, self.file_seqs[1:], strict=False):
            if b != a + 1:
                self.problems.append(f"files {a + 1}..{b - 1} of the session are missing")
        first = self._files[0]
        self.attrs: dict[str, Any] = json_attr(first, L.ATTR_PROVENANCE)
        self.file_attrs: list[dict[str, Any]] = [
            {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            for f in self._files
        ]
        self.streams: dict[str, StreamRecord] = {}
        segs: dict[str, list[_Segment]] = {}
        for f in self._files:
            for name, g in f[L.STREAMS_GROUP].items():
                sid = str(g.attrs[L.ATTR_STREAM_ID])
                if sid not in self.streams:
                    try:
                        desc = StreamDescriptor.from_dict(json_attr(g, L.ATTR_DESCRIPTOR))
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        if isinstance(exc, RecordingError):
                            raise
                        raise RecordingError(f"{f.filename}: {g.name}: the stream descriptor "
                                             f"is not valid: {exc!r}") from None
                    prov = json_attr(g, L.ATTR_STREAM_PROVENANCE)
                    segs[sid] = []
                    self.streams[sid] = StreamRecord(sid, desc, prov, segs[sid])
                del name
                segs[sid].append(_Segment(g))
        self.refresh()

    def refresh(self) -> None:
        """See rows flushed since opening (or the last refresh)."""
        for rec in self.streams.values():
            for seg in rec._segments:
                seg.refresh(self.include_uncommitted)
            rec._clear()
        self._events: list[dict[str, Any]] | None = None
        for f in self._files:
            f[L.DS_STATUS].refresh()

    @property
    def status(self) -> dict[str, Any]:
        """Writer status of the last file: state, last flush and stop times."""
        st = self._files[-1][L.DS_STATUS][0]
        return {
            "state": L.STATE_NAMES.get(int(st["state"]), str(int(st["state"]))),
            "last_flush_wall_ns": int(st["last_flush_wall_ns"]),
            "stopped_wall_ns": int(st["stopped_wall_ns"]),
            "flushes": int(st["n_flushes"]),
            "next_file": bytes(st["next_file"]).decode(errors="replace"),
        }

    @property
    def closed_cleanly(self) -> bool:
        return self.status["state"] == L.STATE_NAMES[L.STATE_CLOSED]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Committed events, in order: dicts with kind, stream, t_ns, payload."""
        if self._events is None:
            out: list[dict[str, Any]] = []
            for f in self._files:
                eg = f[L.EVENTS_GROUP]
                for name in (L.DS_EVENT_CHAIN, L.DS_EVENT_TABLE, L.DS_EVENT_JSON):
                    eg[name].refresh()
                chain = eg[L.DS_EVENT_CHAIN]
                n = chain.shape[0]
                if self.include_uncommitted:
                    rows = eg[L.DS_EVENT_TABLE].shape[0]
                else:
                    rows = int(chain[n - 1]["row_stop"]) if n else 0
                if not rows:
                    continue
                table = eg[L.DS_EVENT_TABLE][:rows]
                end = int(table["offset"][-1] + table["length"][-1])
                raw = eg[L.DS_EVENT_JSON][:end].tobytes()
                for r in table:
                    o = int(r["offset"])
                    try:
                        out.append(json.loads(raw[o:o + int(r["length"])]))
                    except (RecursionError, ValueError) as exc:
                        raise RecordingError(f"{f.filename}: event at byte {o} is not valid "
                                             f"JSON ({type(exc).__name__})") from None
            self._events = out
        return self._events

    def close(self) -> None:
        for f in self._files:
            if f.id.valid:
                f.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def session_files(path: str | Path) -> list[Path]:
    """All files of the session ``path`` belongs to (a file or a directory), in order."""
    p = Path(path)
    candidates = sorted(p.glob("*.h5")) if p.is_dir() else sorted(p.parent.glob("*.h5"))
    want: str | None = None
    if not p.is_dir():
        with _open_h5(p) as f:
            want = str(f.attrs.get(L.ATTR_SESSION, ""))
    found: dict[str, list[tuple[int, Path]]] = {}
    for c in candidates:
        try:
            with _open_h5(c) as f:
                if f.attrs.get(L.ATTR_FORMAT) != L.FORMAT_NAME:
                    continue
                s = str(f.attrs[L.ATTR_SESSION])
                found.setdefault(s, []).append((int(f.attrs[L.ATTR_FILE_SEQ]), c))
        except (OSError, KeyError):
            continue
    if want is None:
        if len(found) != 1:
            raise RecordingError(
                f"{p} holds {len(found)} sessions ({', '.join(sorted(found)) or 'none'}): "
                "name a file")
        want = next(iter(found))
    return [c for _, c in sorted(found.get(want, []))]


def open_recording(path: str | Path | Sequence[str | Path], *,
                   include_uncommitted: bool = False) -> Recording:
    """Open a recording read-only (SWMR).

    ``path`` is one file (just that file), a directory (every file of the one
    session in it) or a list of files of one session (ordered by their
    sequence number, whatever the order given).
    """
    if isinstance(path, str | Path):
        p = Path(path)
        paths: Sequence[str | Path] = session_files(p) if p.is_dir() else [p]
    else:
        paths = list(path)
    return Recording(paths, include_uncommitted=include_uncommitted)


def open_session(path: str | Path, *, include_uncommitted: bool = False) -> Recording:
    """Open every file of the session that ``path`` (a file or directory) belongs to."""
    return Recording(session_files(path), include_uncommitted=include_uncommitted)
