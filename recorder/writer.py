"""One HDF5 recording file: create the whole layout, switch SWMR on, append, close.

`RecordingWriter` knows the layout but nothing about timers, buffering,
rotation or errors (that is `recorder.sink`). Its rules come from measured
HDF5 behaviour (docs/recording.md):

* the file is created under a hidden temporary name with ``libver="latest"``,
  every group, dataset and attribute is created, SWMR is switched on, and only
  then is the file renamed to its final name, so a file under the final name
  is always one a reader can open;
* after SWMR starts nothing is created: tables only grow (``resize``) and the
  one-row status table is rewritten in place, both of which SWMR allows.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from acquisition.types import StreamDescriptor
from recorder import layout as L


def to_json(value: Any) -> str:
    """JSON for attributes and events; numpy values become plain numbers/lists."""
    return json.dumps(value, allow_nan=True, separators=(",", ":"), default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


@dataclass(slots=True)
class StreamSetup:
    """What the writer needs to create one stream's group."""

    descriptor: StreamDescriptor
    provenance: dict[str, Any]
    prev_head: bytes
    dtype: np.dtype
    pos_dims: int


@dataclass(slots=True)
class _Extents:
    rows: int = 0
    blocks: int = 0
    gaps: int = 0
    chain: int = 0


@dataclass(slots=True)
class _EventExtents:
    rows: int = 0
    bytes: int = 0
    chain: int = 0
    extras: dict[str, int] = field(default_factory=dict)


def _table(g: h5py.Group, name: str, dtype: np.dtype, chunk: int = L.TABLE_CHUNK_ROWS
           ) -> h5py.Dataset:
    return g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(chunk,))


def _publish(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` atomically, failing if ``final`` exists.

    A hard link never replaces an existing name (rename would); file systems
    without hard links (FAT on a USB stick) fall back to a checked rename.
    """
    try:
        os.link(tmp, final, follow_symlinks=False)
    except FileExistsError:
        raise FileExistsError(f"refusing to overwrite existing recording {final}") from None
    except OSError:
        if os.path.lexists(final):
            raise FileExistsError(f"refusing to overwrite existing recording {final}") from None
        os.rename(tmp, final)


class RecordingWriter:
    """Owns one open recording file in SWMR-write mode."""

    def __init__(
        self,
        path: Path,
        *,
        session: str,
        file_seq: int,
        prev_file: str,
        root_attrs: dict[str, Any],
        provenance: dict[str, Any],
        streams: dict[str, StreamSetup],
        events_prev_head: bytes,
        chunk_seconds: float,
    ) -> None:
        self.path = Path(path)
        if os.path.lexists(self.path):  # a file, or a symlink (even dangling): never followed
            raise FileExistsError(f"refusing to overwrite existing recording {self.path}")
        # The file is built in a fresh private directory (mode 0700, random
        # name, made by us), so nothing planted beside the recording (a
        # symlink at a predictable temporary name) can be opened or truncated;
        # "w-" creates it exclusively.
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part",
                                       dir=self.path.parent))
        tmp = tmpdir / self.path.name
        try:
            self._f = h5py.File(tmp, "w-", libver="latest")
            try:
                self._create(session, file_seq, prev_file, root_attrs, provenance, streams,
                             events_prev_head, chunk_seconds)
                self._f.flush()
                self._f.swmr_mode = True
                # The final name only ever holds an SWMR-ready file, and is never
                # overwritten: a name that appeared meanwhile is an error.
                _publish(tmp, self.path)
            except BaseException:
                self._f.close()
                raise
        finally:
            tmp.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                tmpdir.rmdir()
        self.extents = {sid: _Extents() for sid in streams}
        self.event_extents = _EventExtents()
        self.n_flushes = 0

    # --- creation (before SWMR) ---------------------------------------------------------
    def _create(self, session: str, file_seq: int, prev_file: str, root_attrs: dict[str, Any],
                provenance: dict[str, Any], streams: dict[str, StreamSetup],
                events_prev_head: bytes, chunk_seconds: float) -> None:
        f = self._f
        a = f.attrs
        # Scalar provenance also as plain attributes, for people browsing with HDFView.
        for k, v in provenance.items():
            if isinstance(v, str | int | float | bool) and k not in root_attrs:
                a[k] = v
        for k, v in root_attrs.items():
            a[k] = v
        a[L.ATTR_FORMAT] = L.FORMAT_NAME
        a[L.ATTR_LAYOUT_VERSION] = L.LAYOUT_VERSION
        a[L.ATTR_SESSION] = session
        a[L.ATTR_FILE_SEQ] = int(file_seq)
        a[L.ATTR_PREV_FILE] = prev_file
        a[L.ATTR_PROVENANCE] = to_json(provenance)
        a[L.ATTR_CHUNK_SECONDS] = float(chunk_seconds)
        a[L.ATTR_EVENTS_PREV_HEAD] = events_prev_head.hex()

        sg = f.create_group(L.STREAMS_GROUP)
        for sid, s in streams.items():
            g = sg.create_group(L.group_name(sid))
            d = s.descriptor
            g.attrs[L.ATTR_STREAM_ID] = sid
            g.attrs[L.ATTR_DESCRIPTOR] = to_json(d.to_dict())
            g.attrs[L.ATTR_STREAM_PROVENANCE] = to_json(s.provenance)
            g.attrs[L.ATTR_CHANNELS] = to_json(list(d.channel_names))
            g.attrs[L.ATTR_UNITS] = to_json([c.units for c in d.channels])
            g.attrs[L.ATTR_RATE_HZ] = float(d.rate_hz)
            g.attrs[L.ATTR_CHAIN_PREV_HEAD] = s.prev_head.hex()
            nch = len(d.channels)
            rows = L.data_chunk_rows(d.rate_hz, nch * s.dtype.itemsize, chunk_seconds)
            g.create_dataset(L.DS_DATA, shape=(0, nch), maxshape=(None, nch), dtype=s.dtype,
                             chunks=(rows, nch))
            if s.pos_dims:
                prow = L.data_chunk_rows(d.rate_hz, s.pos_dims * 8, chunk_seconds)
                g.create_dataset(L.DS_POSITIONS, shape=(0, s.pos_dims),
                                 maxshape=(None, s.pos_dims), dtype="<f8",
                                 chunks=(prow, s.pos_dims), fillvalue=np.nan)
            _table(g, L.DS_BLOCKS, L.BLOCK_DTYPE)
            _table(g, L.DS_GAPS, L.GAP_DTYPE, 256)
            _table(g, L.DS_CHAIN, L.STREAM_CHAIN_DTYPE, 256)

        eg = f.create_group(L.EVENTS_GROUP)
        _table(eg, L.DS_EVENT_TABLE, L.EVENT_DTYPE)
        eg.create_dataset(L.DS_EVENT_JSON, shape=(0,), maxshape=(None,), dtype="u1",
                          chunks=(L.EVENT_JSON_CHUNK,))
        _table(eg, L.DS_EVENT_CHAIN, L.EVENT_CHAIN_DTYPE, 256)

        st = np.zeros(1, dtype=L.STATUS_DTYPE)
        st["state"] = L.STATE_WRITING
        f.create_dataset(L.DS_STATUS, data=st, maxshape=(1,))

    # --- appends (SWMR) ----------------------------------------------------------------
    @staticmethod
    def _grow(ds: h5py.Dataset, start: int, values: np.ndarray) -> int:
        stop = start + len(values)
        if stop > start:
            ds.resize(stop, axis=0)
            ds[start:stop] = values
        return stop

    def append_stream(self, sid: str, data: np.ndarray, positions: np.ndarray | None,
                      block_rows: np.ndarray, gap_rows: np.ndarray) -> tuple[int, ...]:
        """Append one flush worth of a stream; return (r0, r1, b0, b1, g0, g1)."""
        g = self._f[L.STREAMS_GROUP][L.group_name(sid)]
        e = self.extents[sid]
        r0, b0, g0 = e.rows, e.blocks, e.gaps
        r1 = self._grow(g[L.DS_DATA], r0, data)
        if positions is not None:
            self._grow(g[L.DS_POSITIONS], r0, positions)
        b1 = self._grow(g[L.DS_BLOCKS], b0, block_rows)
        g1 = self._grow(g[L.DS_GAPS], g0, gap_rows)
        e.rows, e.blocks, e.gaps = r1, b1, g1
        return r0, r1, b0, b1, g0, g1

    def append_events(self, table_rows: np.ndarray, payload: np.ndarray) -> tuple[int, ...]:
        """Append event index rows and their JSON bytes; return (r0, r1, y0, y1)."""
        eg = self._f[L.EVENTS_GROUP]
        e = self.event_extents
        r0, y0 = e.rows, e.bytes
        r1 = self._grow(eg[L.DS_EVENT_TABLE], r0, table_rows)
        y1 = self._grow(eg[L.DS_EVENT_JSON], y0, payload)
        e.rows, e.bytes = r1, y1
        return r0, r1, y0, y1

    def append_chain(self, sid: str, row: np.ndarray) -> None:
        g = self._f[L.STREAMS_GROUP][L.group_name(sid)]
        e = self.extents[sid]
        e.chain = self._grow(g[L.DS_CHAIN], e.chain, row)

    def append_event_chain(self, row: np.ndarray) -> None:
        e = self.event_extents
        e.chain = self._grow(self._f[L.EVENTS_GROUP][L.DS_EVENT_CHAIN], e.chain, row)

    def set_status(self, state: int, *, last_flush_wall_ns: int = 0, stopped_wall_ns: int = 0,
                   next_file: str = "") -> None:
        st = np.zeros(1, dtype=L.STATUS_DTYPE)
        st["state"] = state
        st["last_flush_wall_ns"] = last_flush_wall_ns
        st["stopped_wall_ns"] = stopped_wall_ns
        st["n_flushes"] = self.n_flushes
        st["next_file"] = next_file.encode()[:255]
        self._f[L.DS_STATUS][0:1] = st

    def flush(self) -> None:
        self._f.flush()

    def size_bytes(self) -> int:
        return int(self._f.id.get_filesize())

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()
