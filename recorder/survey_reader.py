"""Survey reader for our own HDF5 recordings (plug-in ``recording`` of `uxo.readers`).

It lives in `recorder` so that `acquisition` never imports h5py: the facade
finds it through the entry point. The stream read is the first one with
positions, or the one named in the metadata override ``stream``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from acquisition.readers import RawSurvey
from acquisition.survey import UNITS

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class RecordingReader:
    """An HDF5 recording written by `uxo acquire --record` or `uxo record`."""

    name: ClassVar[str] = "recording"
    description: ClassVar[str] = "uxo-acquisition HDF5 recording (.h5)"
    priority: ClassVar[int] = 0

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        return head.startswith(HDF5_MAGIC)

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        from acquisition.survey import SurveyReadError
        from recorder.integrity import not_intact
        from recorder.reader import RecordingError, open_recording

        notes: list[str] = []
        try:
            with open_recording(path) as rec:
                # Said before the data are used, by every command that reads them.
                damage = not_intact(rec.paths)
                if damage:
                    notes.append(damage)
                streams = rec.streams
                sid = stream or next(
                    (s for s, r in streams.items() if r.has_positions), None)
                if sid is None or sid not in streams:
                    raise SurveyReadError(path, None, "no stream with positions (streams: "
                                          f"{', '.join(streams) or 'none'})")
                r = streams[sid]
                pos = r.positions
                if pos is None:
                    raise SurveyReadError(path, None, f"stream {sid!r} has no positions")
                data = np.asarray(r.data, dtype=np.float64)
                t = np.asarray(r.times_ns(), dtype=np.float64) / 1e9
                md = {str(k): str(v) for k, v in (rec.attrs or {}).items()
                      if not isinstance(v, dict)}
                geometry = dict(r.descriptor.geometry)
                desc = r.descriptor
                # What the recording itself says: the instrument, and the unit of
                # the channel read (the driver wrote it in the descriptor).
                for key, val in (("instrument", desc.instrument), ("serial", desc.serial),
                                 ("stream", sid)):
                    if val and key not in md:
                        md[key] = str(val)
                unit = desc.channels[0].units if desc.channels else ""
        except RecordingError as exc:  # crafted or foreign structure, refused by the reader
            raise SurveyReadError(path, None, str(exc)) from None
        except (OSError, RuntimeError) as exc:  # h5py: RuntimeError on a bad superblock
            raise SurveyReadError(path, None, f"not a readable recording: {exc}") from None
        n = len(t)
        return RawSurvey(x=np.asarray(pos[:, 0], dtype=np.float64),
                         y=np.asarray(pos[:, 1], dtype=np.float64),
                         value=data[:, 0], t=t, metadata=md, geometry=geometry,
                         line_numbers=np.arange(1, n + 1, dtype=np.int64), rows_seen=n,
                         notes=notes, value_unit=unit if unit in UNITS else None)
