"""Write a recorded stream as the survey CSV of docs/formats.md (``# uxo-survey v1``).

Metadata lines come from the stream's descriptor geometry (kind, sensor height
and separation, lane spacing) and from the recording's provenance (the
inducing field). Columns are ``t,x,y,value``: ``t`` in seconds since the first
exported sample (its absolute time is the ``t0_ns`` metadata line), ``x``/``y``
the recorded positions, ``value`` the reading. There is no ``lane`` column:
the recording does not know lanes, and readers derive them from positions.

A multi-channel stream is written one row per sensor per instant when its
geometry gives ``sensor_offsets_m`` (one ``[dx, dy]`` per channel, on the local
grid); otherwise one channel must be chosen. Rows without a position or value
(NaN) are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from acquisition.errors import UxoValueError
from recorder.reader import Recording, StreamRecord

FIELD_KEYS = ("field_total_nT", "field_inclination_deg", "field_declination_deg")
GEOMETRY_KEYS = ("sensor_height_m", "sensor_separation_m", "lane_spacing_m")


class ExportError(UxoValueError):
    """The recording cannot be written as a survey CSV (and why)."""


@dataclass(slots=True)
class ExportReport:
    stream: str
    channels: tuple[str, ...]
    rows: int
    skipped: int


def choose_stream(rec: Recording, stream: str | None) -> StreamRecord:
    if stream is not None:
        if stream not in rec.streams:
            raise ExportError(f"no stream {stream!r}; the recording has {sorted(rec.streams)}")
        return rec.streams[stream]
    with_pos = [s for s in rec.streams.values() if s.has_positions]
    if len(with_pos) == 1:
        return with_pos[0]
    if not with_pos:
        raise ExportError("no stream has positions; a survey CSV needs x and y")
    raise ExportError(f"several streams have positions {sorted(s.stream_id for s in with_pos)}:"
                      " choose one with --stream")


def metadata(rec: Recording, s: StreamRecord, channels: tuple[str, ...], t0_ns: int
             ) -> dict[str, Any]:
    g = s.descriptor.geometry
    md: dict[str, Any] = {"kind": g.get("kind", "gradient")}
    for k in GEOMETRY_KEYS:
        if k in g:
            md[k] = g[k]
        elif k in rec.attrs:
            md[k] = rec.attrs[k]
    for k in FIELD_KEYS:
        if k in rec.attrs:
            md[k] = rec.attrs[k]
        elif k in g:
            md[k] = g[k]
    md.update({
        "session": rec.session,
        "stream": s.stream_id,
        "instrument": s.descriptor.instrument,
        "serial": s.descriptor.serial,
        "channels": " ".join(channels),
        "t0_ns": t0_ns,
        "source": "uxo export",
    })
    if "integrity" in rec.attrs:  # exported with --accept-damaged: the CSV says so
        md["integrity"] = rec.attrs["integrity"]
    return md


def write_survey_csv(rec: Recording, out: TextIO, *, stream: str | None = None,
                     channel: str | None = None) -> ExportReport:
    s = choose_stream(rec, stream)
    desc = s.descriptor
    if not s.has_positions:
        raise ExportError(f"stream {s.stream_id!r} has no positions; a survey CSV needs x, y")
    offsets = desc.geometry.get("sensor_offsets_m")
    if channel is not None:
        cols = [desc.channel_index(channel)]
        offs = np.zeros((1, 2))
        if offsets is not None:
            offs[0] = np.asarray(offsets[cols[0]], dtype=float)[:2]
    elif len(desc.channels) == 1:
        cols, offs = [0], np.zeros((1, 2))
    elif offsets is not None and len(offsets) == len(desc.channels):
        cols = list(range(len(desc.channels)))
        offs = np.array([np.asarray(o, dtype=float)[:2] for o in offsets])
    else:
        raise ExportError(f"stream {s.stream_id!r} has channels {list(desc.channel_names)} "
                          "and no sensor_offsets_m: choose one with --channel")
    data, pos, t = s.data, s.positions, s.times_ns()
    assert pos is not None
    t0 = int(t[0]) if len(t) else 0
    names = tuple(desc.channel_names[c] for c in cols)
    out.write("# uxo-survey v1\n")
    for k, v in metadata(rec, s, names, t0).items():
        out.write(f"# {k}: {v}\n")
    out.write("t,x,y,value\n")
    ts = (t - t0) / 1e9
    rows = skipped = 0
    # One row per sensor per instant: interleave channels instant by instant.
    x = pos[:, :1] + offs[:, 0][None, :]
    y = pos[:, 1:2] + offs[:, 1][None, :]
    v = data[:, cols].astype(np.float64)
    table = np.column_stack([np.repeat(ts, len(cols)), x.ravel(), y.ravel(), v.ravel()])
    ok = np.isfinite(table).all(axis=1)
    skipped = int((~ok).sum())
    table = table[ok]
    rows = len(table)
    np.savetxt(out, table, fmt=["%.9f", "%.17g", "%.17g", "%.17g"], delimiter=",")
    return ExportReport(s.stream_id, names, rows, skipped)
