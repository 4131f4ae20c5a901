"""Names, dtypes and chunking of the HDF5 recording layout (see docs/recording.md).

Everything a writer creates and a reader or verifier looks up is named here,
so the three cannot drift apart. Table dtypes are little-endian and fixed, so
the bytes hashed into the integrity chain are the bytes stored on disk.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import numpy as np

#: Bump when the layout changes in a way an old reader would misread.
LAYOUT_VERSION = 1
#: Value of the root attribute ``format``: identifies a uxo recording.
FORMAT_NAME = "uxo-recording"

# --- root attributes (written before SWMR starts, never changed after) ----------
ATTR_FORMAT = "format"
ATTR_LAYOUT_VERSION = "layout_version"
ATTR_SESSION = "session"
ATTR_FILE_SEQ = "file_seq"
ATTR_PREV_FILE = "prev_file"
ATTR_CREATED_WALL_NS = "created_wall_ns"
ATTR_SESSION_START_WALL_NS = "session_start_wall_ns"
ATTR_SOFTWARE_VERSION = "software_version"
ATTR_PROVENANCE = "provenance_json"
ATTR_CHUNK_SECONDS = "chunk_seconds"
ATTR_FLUSH_INTERVAL_S = "flush_interval_s"
#: Head of the events chain at the end of the previous file (hex), "" for file 0.
ATTR_EVENTS_PREV_HEAD = "events_chain_prev_head"

# --- per-stream group attributes ---------------------------------------------------
STREAMS_GROUP = "streams"
ATTR_STREAM_ID = "stream_id"
ATTR_DESCRIPTOR = "descriptor_json"
ATTR_STREAM_PROVENANCE = "provenance_json"
ATTR_CHANNELS = "channel_names"
ATTR_UNITS = "channel_units"
ATTR_RATE_HZ = "rate_hz"
#: Head of this stream's chain at the end of the previous file (hex), or its genesis.
ATTR_CHAIN_PREV_HEAD = "chain_prev_head"

DS_DATA = "data"
DS_POSITIONS = "positions"
DS_BLOCKS = "blocks"
DS_GAPS = "gaps"
DS_CHAIN = "chain"

EVENTS_GROUP = "events"
DS_EVENT_TABLE = "table"
DS_EVENT_JSON = "json"
DS_EVENT_CHAIN = "chain"

#: One-row table updated in place (allowed under SWMR): writer state and stop time.
DS_STATUS = "status"

#: ``device_time_ns`` of a block that had none (the device sends no time stamp).
NO_DEVICE_TIME = int(np.iinfo(np.int64).min)

BLOCK_DTYPE = np.dtype(
    [
        ("seq", "<i8"),
        ("first_index", "<i8"),
        ("n", "<i8"),
        ("t0_ns", "<i8"),
        ("rate_hz", "<f8"),
        ("host_mono_ns", "<i8"),
        ("host_wall_ns", "<i8"),
        ("device_time_ns", "<i8"),
        ("flags", "<i8"),
        ("row_offset", "<i8"),
        # Columns of positions this block carried: 0 = positions were None.
        ("pos_dims", "<i8"),
    ]
)

GAP_DTYPE = np.dtype(
    [("first_missing_index", "<i8"), ("n_missing", "<i8"), ("t_ns", "<i8")]
)

#: One link of a stream's chain: the rows it covers in each table and the digest.
STREAM_CHAIN_DTYPE = np.dtype(
    [
        ("link", "<i8"),
        ("row_start", "<i8"),
        ("row_stop", "<i8"),
        ("block_start", "<i8"),
        ("block_stop", "<i8"),
        ("gap_start", "<i8"),
        ("gap_stop", "<i8"),
        ("wall_ns", "<i8"),
        ("digest", "u1", (32,)),
    ]
)

#: Events are JSON records concatenated in a byte dataset, indexed by this table.
EVENT_DTYPE = np.dtype([("t_ns", "<i8"), ("offset", "<i8"), ("length", "<i8")])

EVENT_CHAIN_DTYPE = np.dtype(
    [
        ("link", "<i8"),
        ("row_start", "<i8"),
        ("row_stop", "<i8"),
        ("byte_start", "<i8"),
        ("byte_stop", "<i8"),
        ("wall_ns", "<i8"),
        ("digest", "u1", (32,)),
    ]
)

#: Writer states stored in the status table.
STATE_WRITING, STATE_CLOSED, STATE_ROTATED = 0, 1, 2
STATE_NAMES = {STATE_WRITING: "writing (or crashed)", STATE_CLOSED: "closed",
               STATE_ROTATED: "rotated"}

STATUS_DTYPE = np.dtype(
    [
        ("state", "<i8"),
        ("last_flush_wall_ns", "<i8"),
        ("stopped_wall_ns", "<i8"),
        ("n_flushes", "<i8"),
        ("next_file", "S255"),
    ]
)

# --- chunking -----------------------------------------------------------------------
MIN_CHUNK_ROWS = 256
MAX_CHUNK_BYTES = 1 << 20
TABLE_CHUNK_ROWS = 1024
EVENT_JSON_CHUNK = 64 * 1024


def data_chunk_rows(rate_hz: float, row_bytes: int, chunk_seconds: float) -> int:
    """Rows per data chunk: ``chunk_seconds`` of data, kept between sane byte bounds."""
    want = round(rate_hz * chunk_seconds)
    cap = max(MIN_CHUNK_ROWS, MAX_CHUNK_BYTES // max(1, row_bytes))
    return int(min(max(want, MIN_CHUNK_ROWS), cap))


def group_name(stream_id: str) -> str:
    """HDF5-safe group name for a stream id ('/' and '%' are percent-encoded)."""
    name = quote(stream_id, safe="")
    return "%2E" if name == "." else name


def stream_id_from_group(name: str) -> str:
    return unquote(name)


def data_dtype(channel_dtypes: list[str]) -> np.dtype:
    """Storage dtype of a stream's data: the common type of its channels, little-endian."""
    try:
        dt = np.result_type(*[np.dtype(d) for d in channel_dtypes])
    except TypeError:
        dt = np.dtype("float64")
    if dt.kind not in "fiu":
        dt = np.dtype("float64")
    return dt.newbyteorder("<")
