"""The in-process recorder sink: buffer blocks and events, flush on a timer, rotate.

Usage (the acquisition service does exactly this)::

    sink = RecorderSink("survey.h5", session=sid, provenance={...})
    sink.add_stream(desc)          # every stream known now
    sink.start()                   # creates the file, switches SWMR on
    sink.write_block(block)        # buffered; flushed when the interval is due
    sink.write_event("target", stream, target.to_dict(), t_ns)
    sink.maybe_flush()             # call from the service loop
    sink.close()                   # final flush, status "closed"

Crash safety: blocks are buffered in memory and appended in one piece per
stream every ``flush_interval_s`` (default 1 s), then the file is flushed, then
the integrity chain links are appended and flushed again. A reader only trusts
rows covered by a chain link, so a crash loses at most the data buffered since
the last flush, and never leaves a half-written row that looks valid.

Errors: the sink refuses to write when less than ``min_free_bytes`` (16 MB)
would stay free on the disk, because HDF5 handles ENOSPC badly (a file whose
flush failed can crash the process at exit, measured with HDF5 2.0). I/O
failures (disk full, unwritable path, file vanished) never raise out of the
sink. They set `error` and make `healthy` False (and call
``on_error`` if given) so the service can publish a state event and keep
acquiring. While unhealthy the sink keeps buffering (at most
``max_buffer_bytes``, oldest dropped first and counted) and retries every
``retry_s`` by opening the next file of the session; when that works it
records a ``state``/``recorder_recovered`` event and becomes healthy again.
`RecorderError` is raised only for misuse: an unknown stream, a block whose
channel count does not match its descriptor, writing after `close`.

Streams added after `start` (SWMR forbids creating datasets then) make the
sink rotate to a new file that holds every stream.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.errors import UxoRuntimeError
from acquisition.types import BlockFlags, SampleBlock, StreamDescriptor
from recorder import layout as L
from recorder.integrity import genesis, link_digest
from recorder.writer import RecordingWriter, StreamSetup, to_json

log = logging.getLogger(__name__)

EVENTS_CHAIN_NAME = "events"


class RecorderError(UxoRuntimeError):
    """The sink was used wrongly (not raised for I/O failures: see `RecorderSink.error`)."""


def recording_path(path: str | Path, session: str) -> Path:
    """The first file a sink given ``path`` writes: ``path``, or ``path/<session>.h5``."""
    p = Path(path)
    if p.is_dir() or str(path).endswith(os.sep):
        p = p / f"{session}.h5"
    return p


def check_new_recording(path: str | Path, session: str) -> Path:
    """Refuse, before anything runs, a recording whose file already exists.

    A recording never overwrites: an existing file, directory entry or symlink
    (even a dangling one) at the name is a `RecorderError` saying so.
    """
    p = recording_path(path, session)
    if os.path.lexists(p):
        kind = "a symlink" if p.is_symlink() else "a file" if p.is_file() else "an entry"
        raise RecorderError(f"{p} exists ({kind}): a recording never overwrites; "
                            "give a new file name or a directory")
    return p


@dataclass(slots=True)
class _Stream:
    setup: StreamSetup
    head: bytes
    next_index: int | None = None
    next_t_ns: int = 0
    pending: list[tuple[SampleBlock, np.ndarray]] = field(default_factory=list)
    pending_rows: int = 0
    rows: int = 0  # committed, all files
    blocks: int = 0
    gaps: int = 0


def _software_provenance() -> dict[str, Any]:
    import h5py

    from acquisition import __version__

    return {
        "software_version": f"uxo-acquisition {__version__}",
        "hostname": socket.gethostname(),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "h5py_version": h5py.version.version,
        "hdf5_version": h5py.version.hdf5_version,
    }


class RecorderSink:
    """Records streams and events to a (rotated) set of SWMR HDF5 files."""

    def __init__(
        self,
        path: str | Path,
        *,
        session: str,
        provenance: dict[str, Any] | None = None,
        flush_interval_s: float = 1.0,
        rotate_bytes: int | None = None,
        rotate_s: float | None = None,
        chunk_seconds: float | None = None,
        max_buffer_bytes: int = 256 << 20,
        retry_s: float = 5.0,
        on_error: Callable[[str], None] | None = None,
        timer: bool = False,
        min_free_bytes: int = 16 << 20,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        if not session:
            raise RecorderError("session id must not be empty")
        if flush_interval_s <= 0:
            raise RecorderError("flush_interval_s must be positive")
        self._base = recording_path(path, session)
        self.session = session
        self.provenance = dict(provenance or {})
        self.flush_interval_s = float(flush_interval_s)
        self.rotate_bytes = rotate_bytes
        self.rotate_s = rotate_s
        self.chunk_seconds = float(chunk_seconds or max(1.0, flush_interval_s))
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.retry_s = float(retry_s)
        self.on_error = on_error
        self.min_free_bytes = int(min_free_bytes)
        self._clock = clock
        self._lock = threading.RLock()
        self._streams: dict[str, _Stream] = {}
        self._events: list[tuple[int, bytes]] = []
        self._events_head = genesis(session, EVENTS_CHAIN_NAME)
        self._events_committed = 0
        self._writer: RecordingWriter | None = None
        self._file_seq = -1
        self._files: list[Path] = []
        self._file_opened_ns = 0
        self._last_flush_ns = clock()
        self._last_attempt_ns: int | None = None
        self._pending_bytes = 0
        self._started = False
        self._closed = False
        self._session_start_wall_ns = time.time_ns()
        self.error: str | None = None
        self.errors: list[str] = []
        self.dropped_samples = 0
        self.dropped_blocks = 0
        self.n_flushes = 0
        #: Duration of the last successful flush, ns (see bench/bench_recorder.py).
        self.last_flush_duration_ns = 0
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        if timer:
            self._timer = threading.Thread(target=self._timer_loop, name="recorder-flush",
                                           daemon=True)

    # --- properties --------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """False while the last I/O attempt failed (see `error`)."""
        return self.error is None

    @property
    def started(self) -> bool:
        """`start` has been called (streams added later make the sink rotate)."""
        return self._started

    @property
    def path(self) -> Path:
        """The file being written now (or the one that will be written first)."""
        return self._files[-1] if self._files else self._file_name(max(self._file_seq, 0))

    @property
    def files(self) -> list[Path]:
        """Every file of this session written so far, in order."""
        return list(self._files)

    @property
    def streams(self) -> dict[str, StreamDescriptor]:
        return {sid: s.setup.descriptor for sid, s in self._streams.items()}

    def stats(self) -> dict[str, Any]:
        """Committed (flushed and chained) counts per stream, and totals."""
        with self._lock:
            return {
                "files": [str(p) for p in self._files],
                "streams": {sid: {"rows": s.rows, "blocks": s.blocks, "gaps": s.gaps,
                                  "pending_rows": s.pending_rows}
                            for sid, s in self._streams.items()},
                "events": self._events_committed,
                "flushes": self.n_flushes,
                "dropped_samples": self.dropped_samples,
                "dropped_blocks": self.dropped_blocks,
                "healthy": self.healthy,
                "error": self.error,
            }

    # --- setup -------------------------------------------------------------------------
    def add_stream(self, desc: StreamDescriptor, provenance: dict[str, Any] | None = None
                   ) -> None:
        """Declare a stream. After `start` this rotates to a new file (SWMR rule)."""
        with self._lock:
            if self._closed:
                raise RecorderError("sink is closed")
            old = self._streams.get(desc.stream_id)
            if old is not None:
                if old.setup.descriptor != desc:
                    raise RecorderError(
                        f"stream {desc.stream_id!r} already recorded with another descriptor")
                return
            dtype = L.data_dtype([c.dtype for c in desc.channels])
            setup = StreamSetup(desc, dict(provenance or {}), b"", dtype, desc.position_dims)
            head = genesis(self.session, desc.stream_id)
            self._streams[desc.stream_id] = _Stream(setup=setup, head=head)
            if self._started and not self._closed:
                log.info("stream %s added after start: rotating to a new file", desc.stream_id)
                self._rotate()

    def start(self) -> None:
        """Create the first file (all streams added so far) and switch SWMR on."""
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise RecorderError("sink is closed")
            self._started = True
            self._open_next()
            if self._timer is not None:
                self._timer.start()

    # --- writing -----------------------------------------------------------------------
    def write_block(self, block: SampleBlock) -> None:
        """Buffer a block (kept as is: blocks are immutable); flush if the interval is due."""
        with self._lock:
            if self._closed:
                raise RecorderError("sink is closed")
            st = self._streams.get(block.stream_id)
            if st is None:
                raise RecorderError(f"unknown stream {block.stream_id!r}: call add_stream first")
            if not self._started:
                self.start()
            nch = len(st.setup.descriptor.channels)
            if block.data.shape[1] != nch:
                raise RecorderError(f"block of {block.stream_id!r} has {block.data.shape[1]} "
                                    f"channels, descriptor has {nch}")
            data = np.ascontiguousarray(block.data, dtype=st.setup.dtype)
            st.pending.append((block, data))
            st.pending_rows += block.n
            self._pending_bytes += data.nbytes + (0 if block.positions is None
                                                  else block.positions.nbytes)
            self.maybe_flush()

    @staticmethod
    def _gap_rows(st: _Stream) -> tuple[np.ndarray, int | None, int]:
        """Gap rows for the pending blocks, from the last committed position.

        Every jump of first_index (and every GAP flag) is a gap, whoever lost
        the samples: the driver, the wire, or this sink's full buffer.
        """
        rows: list[tuple[int, int, int]] = []
        expected, t_next = st.next_index, st.next_t_ns
        for block, _ in st.pending:
            if expected is None:
                if block.flags & BlockFlags.GAP:
                    rows.append((block.first_index, 0, block.t0_ns))
            elif block.first_index != expected or block.flags & BlockFlags.GAP:
                rows.append((expected, block.first_index - expected, t_next))
            expected = block.next_index
            t_next = block.time_of_index_ns(block.next_index)
        return np.array(rows, dtype=L.GAP_DTYPE), expected, t_next

    def write_event(self, kind: str, stream: str, payload: dict[str, Any], t_ns: int) -> None:
        """Buffer an event (anomaly, target, state, heartbeat...); written at the next flush."""
        with self._lock:
            if self._closed:
                raise RecorderError("sink is closed")
            rec = to_json({"kind": kind, "stream": stream, "t_ns": int(t_ns),
                           "payload": payload}).encode()
            self._events.append((int(t_ns), rec))
            self._pending_bytes += len(rec)

    # --- flushing ------------------------------------------------------------------------
    def maybe_flush(self) -> bool:
        """Flush if the interval has elapsed (or the buffer is full). True if it flushed."""
        with self._lock:
            if self._closed or not self._started:
                return False
            now = self._clock()
            due = now - self._last_flush_ns >= self.flush_interval_s * 1e9
            if self._writer is None:
                if due:
                    self._last_flush_ns = now
                    self._retry(now)
                self._enforce_cap()
                return False
            if due or self._pending_bytes >= self.max_buffer_bytes:
                return self.flush()
            return False

    def flush(self) -> bool:
        """Append everything buffered, then chain it. False if nothing could be written."""
        return self._flush(rotate=True)

    def _flush(self, *, rotate: bool) -> bool:
        with self._lock:
            self._last_flush_ns = self._clock()
            w = self._writer
            if w is None:
                return False
            if not self._space_ok(w.path.parent, self._pending_bytes):
                return False
            t_start = time.perf_counter_ns()
            try:
                committed = self._write_pending(w)
            except (OSError, RuntimeError, ValueError) as exc:
                self._fail(f"cannot write {w.path}: {exc}")
                return False
            self.last_flush_duration_ns = time.perf_counter_ns() - t_start
            self.n_flushes += 1
            self._commit(committed)
            if rotate:
                self._maybe_rotate()
            return True

    def _write_pending(self, w: RecordingWriter) -> dict[str, Any]:
        """Phase 1: append data and flush; phase 2: append chain links and flush."""
        wall = time.time_ns()
        links: dict[str, tuple[Any, ...]] = {}
        for sid, st in self._streams.items():
            if not st.pending:
                continue
            data, positions, brows = self._assemble(st, w.extents[sid].rows)
            grows, next_index, next_t = self._gap_rows(st)
            r0, r1, b0, b1, g0, g1 = w.append_stream(sid, data, positions, brows, grows)
            link = w.extents[sid].chain
            parts = [data, b"" if positions is None else positions, brows, grows]
            digest = link_digest(st.head, link, parts)
            row = np.zeros(1, dtype=L.STREAM_CHAIN_DTYPE)
            row[0] = (link, r0, r1, b0, b1, g0, g1, wall, np.frombuffer(digest, np.uint8))
            links[sid] = (row, digest, r1 - r0, b1 - b0, g1 - g0, next_index, next_t)
        ev_link = None
        if self._events:
            offsets = np.cumsum([0] + [len(b) for _, b in self._events])
            base = w.event_extents.bytes
            table = np.zeros(len(self._events), dtype=L.EVENT_DTYPE)
            table["t_ns"] = [t for t, _ in self._events]
            table["offset"] = offsets[:-1] + base
            table["length"] = np.diff(offsets)
            payload = np.frombuffer(b"".join(b for _, b in self._events), dtype=np.uint8)
            r0, r1, y0, y1 = w.append_events(table, payload)
            link = w.event_extents.chain
            digest = link_digest(self._events_head, link, [table, payload])
            row = np.zeros(1, dtype=L.EVENT_CHAIN_DTYPE)
            row[0] = (link, r0, r1, y0, y1, wall, np.frombuffer(digest, np.uint8))
            ev_link = (row, digest, r1 - r0)
        w.flush()
        # Phase 2: links are appended only once the rows they cover are on disk,
        # so a reader (or a crash) never sees a link without its data.
        for sid, (row, *_rest) in links.items():
            w.append_chain(sid, row)
        if ev_link is not None:
            w.append_event_chain(ev_link[0])
        w.n_flushes += 1
        w.set_status(L.STATE_WRITING, last_flush_wall_ns=wall)
        w.flush()
        return {"streams": links, "events": ev_link}

    def _assemble(self, st: _Stream, row_base: int
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        blocks = [b for b, _ in st.pending]
        nch = len(st.setup.descriptor.channels)
        data = (np.concatenate([d for _, d in st.pending]) if st.pending
                else np.empty((0, nch), dtype=st.setup.dtype))
        brows = np.zeros(len(blocks), dtype=L.BLOCK_DTYPE)
        if blocks:
            n = np.array([b.n for b in blocks], dtype=np.int64)
            brows["seq"] = [b.seq for b in blocks]
            brows["first_index"] = [b.first_index for b in blocks]
            brows["n"] = n
            brows["t0_ns"] = [b.t0_ns for b in blocks]
            brows["rate_hz"] = [b.rate_hz for b in blocks]
            brows["host_mono_ns"] = [b.host_mono_ns for b in blocks]
            brows["host_wall_ns"] = [b.host_wall_ns for b in blocks]
            brows["device_time_ns"] = [L.NO_DEVICE_TIME if b.device_time_ns is None
                                       else b.device_time_ns for b in blocks]
            brows["flags"] = [int(b.flags) for b in blocks]
            brows["row_offset"] = row_base + np.concatenate(([0], np.cumsum(n)[:-1]))
            brows["pos_dims"] = [0 if b.positions is None else b.positions.shape[1]
                                 for b in blocks]
        positions = None
        pd = st.setup.pos_dims
        if pd:
            if all(b.positions is not None and b.positions.shape[1] == pd for b in blocks):
                positions = (np.concatenate([b.positions for b in blocks]).astype("<f8")
                             if blocks else np.empty((0, pd)))
            else:
                positions = np.full((len(data), pd), np.nan)
                row = 0
                for b in blocks:
                    if b.positions is not None:
                        k = min(pd, b.positions.shape[1])
                        positions[row:row + b.n, :k] = b.positions[:, :k]
                        if b.positions.shape[1] > pd:
                            log.warning("stream %s: block %d has %d position columns, "
                                        "descriptor %d: extra columns not recorded",
                                        b.stream_id, b.seq, b.positions.shape[1], pd)
                    row += b.n
        else:
            if any(b.positions is not None for b in blocks):
                log.warning("stream %s carries positions but its descriptor says "
                            "position_dims=0: positions not recorded", st.setup.descriptor
                            .stream_id)
            brows["pos_dims"] = 0
        return data, positions, brows

    def _commit(self, committed: dict[str, Any]) -> None:
        for sid, (_row, digest, nrows, nblocks, ngaps, nxt, nxt_t) in (
                committed["streams"].items()):
            st = self._streams[sid]
            st.head = digest
            st.next_index, st.next_t_ns = nxt, nxt_t
            st.rows += nrows
            st.blocks += nblocks
            st.gaps += ngaps
            st.pending.clear()
            st.pending_rows = 0
        if committed["events"] is not None:
            _row, digest, nev = committed["events"]
            self._events_head = digest
            self._events_committed += nev
            self._events.clear()
        self._pending_bytes = sum(
            sum(d.nbytes for _, d in st.pending) for st in self._streams.values()
        ) + sum(len(b) for _, b in self._events)

    # --- files, rotation, failure ------------------------------------------------------
    def _space_ok(self, directory: Path, need: int) -> bool:
        """Fail early, before HDF5 itself hits ENOSPC (see docs/recording.md)."""
        if not self.min_free_bytes:
            return True
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            return True  # the write itself will tell
        if free >= need + self.min_free_bytes:
            return True
        self._fail(f"disk full: {free / 1e6:.1f} MB free in {directory}, "
                   f"keeping at least {self.min_free_bytes / 1e6:.1f} MB free")
        return False

    def _file_name(self, seq: int) -> Path:
        if seq == 0:
            return self._base
        return self._base.with_name(f"{self._base.stem}.{seq:04d}{self._base.suffix}")

    def _open_next(self) -> bool:
        prev = self._files[-1].name if self._files else ""
        seq = self._file_seq + 1
        path = self._file_name(seq)
        for st in self._streams.values():
            st.setup.prev_head = st.head
        root_attrs: dict[str, Any] = {
            L.ATTR_SESSION_START_WALL_NS: self._session_start_wall_ns,
            L.ATTR_CREATED_WALL_NS: time.time_ns(),
            L.ATTR_FLUSH_INTERVAL_S: self.flush_interval_s,
        }
        prov = {**_software_provenance(), **self.provenance}
        root_attrs[L.ATTR_SOFTWARE_VERSION] = str(prov.get("software_version", ""))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self._space_ok(path.parent, self._pending_bytes + (1 << 20)):
                self._file_seq = seq
                return False
            self._writer = RecordingWriter(
                path, session=self.session, file_seq=seq, prev_file=prev,
                root_attrs=root_attrs, provenance=prov,
                streams={sid: st.setup for sid, st in self._streams.items()},
                events_prev_head=self._events_head, chunk_seconds=self.chunk_seconds)
        except (OSError, RuntimeError, ValueError) as exc:
            # The sequence number is used up even on failure, so a retry never
            # collides with a half-created file of the same name.
            self._file_seq = seq
            self._fail(f"cannot create recording {path}: {exc}")
            return False
        self._file_seq = seq
        self._files.append(path)
        self._file_opened_ns = self._clock()
        log.info("recording to %s", path)
        return True

    def _close_writer(self, state: int, next_file: str = "") -> None:
        w, self._writer = self._writer, None
        if w is None:
            return
        try:
            w.set_status(state, last_flush_wall_ns=time.time_ns(),
                         stopped_wall_ns=time.time_ns(), next_file=next_file)
            w.flush()
        except (OSError, RuntimeError, ValueError) as exc:
            self._fail(f"cannot finish {w.path}: {exc}")
        finally:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                w.close()

    def _rotate(self) -> None:
        if self._writer is not None:
            if not self._flush(rotate=False):
                return
            nxt = self._file_name(self._file_seq + 1).name
            self._close_writer(L.STATE_ROTATED, next_file=nxt)
        self._open_next()

    def _maybe_rotate(self) -> None:
        w = self._writer
        if w is None:
            return
        by_size = self.rotate_bytes is not None and w.size_bytes() >= self.rotate_bytes
        by_time = (self.rotate_s is not None
                   and self._clock() - self._file_opened_ns >= self.rotate_s * 1e9)
        if by_size or by_time:
            self._rotate()

    def _fail(self, message: str) -> None:
        log.error("recorder: %s", message)
        self.error = message
        self.errors.append(message)
        self._last_attempt_ns = self._clock()
        w, self._writer = self._writer, None
        if w is not None:
            with contextlib.suppress(Exception):  # the file may be gone already
                w.close()
        if self.on_error is not None:
            self.on_error(message)

    def _retry(self, now: int) -> None:
        if self._last_attempt_ns is not None and now - self._last_attempt_ns < self.retry_s * 1e9:
            return
        self._last_attempt_ns = now
        reason = self.error
        if self._open_next():
            self.error = None
            self.write_event("state", "", {"state": "recorder_recovered",
                                           "reason": reason or ""}, time.time_ns())
            self.flush()

    def _enforce_cap(self) -> None:
        if self._pending_bytes <= self.max_buffer_bytes:
            return
        # Oldest blocks go first; the jump in first_index shows up as a gap later.
        for st in self._streams.values():
            while st.pending and self._pending_bytes > self.max_buffer_bytes:
                b, d = st.pending.pop(0)
                st.pending_rows -= b.n
                self._pending_bytes -= d.nbytes
                self.dropped_samples += b.n
                self.dropped_blocks += 1
        if self.dropped_blocks:
            log.warning("recorder buffer full: dropped %d samples so far", self.dropped_samples)

    # --- closing -----------------------------------------------------------------------
    def _timer_loop(self) -> None:
        while not self._timer_stop.wait(self.flush_interval_s / 4):
            with contextlib.suppress(RecorderError):
                self.maybe_flush()

    def close(self) -> None:
        """Final flush and status "closed" with the stop time. Idempotent; never raises I/O."""
        self._timer_stop.set()
        if self._timer is not None and self._timer.is_alive():
            self._timer.join(5.0)
        with self._lock:
            if self._closed:
                return
            if self._started:
                pending = any(st.pending for st in self._streams.values()) or self._events
                if self._writer is None and pending:
                    self._last_attempt_ns = None  # one last try, whatever the retry timer
                    self._retry(self._clock())
                if self._writer is not None:
                    self._flush(rotate=False)
                self._close_writer(L.STATE_CLOSED)
            self._closed = True
            lost = sum(st.pending_rows for st in self._streams.values())
            if lost:
                log.error("recorder closed with %d samples never written (%s)", lost, self.error)

    def __enter__(self) -> RecorderSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        return json.dumps(self.stats())
