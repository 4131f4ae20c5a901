"""Survey-file readers: plug-ins that turn one file format into a `RawSurvey`.

ObsPy's ``read`` is the model: `acquisition.survey.read_survey` sniffs the format
from the file's content through the readers registered here, or takes the one
named by ``format=``. A reader knows its format only; units, coordinates and
metadata overrides are applied once, in `read_survey`, for every format.

Readers are found through the entry-point group ``uxo.readers`` (name ->
class), so a package can add a format without touching this one;
`register_reader` adds one at run time (tests, notebooks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import numpy as np

#: How a reader's x, y are to be read: a local taped grid in metres, easting and
#: northing in a projected CRS, or longitude (x) and latitude (y) in WGS84 degrees.
Positions = Literal["local", "projected", "geographic"]

ENTRY_POINT_GROUP = "uxo.readers"


@dataclass(slots=True)
class BadRow:
    """A row that could not be read: its 1-based line number and why.

    ``no_data`` marks a row that is well formed but says it holds no usable
    reading (a GNSS "no fix" row, a Geosoft ``*`` dummy): it is counted and
    reported like any other, but does not count toward ``max_bad_share``,
    which is about damaged files.
    """

    line: int
    reason: str
    no_data: bool = False


@dataclass(slots=True)
class RawSurvey:
    """What a reader found in a file, before units and coordinates are resolved.

    ``value`` is in ``value_unit`` when the format fixes it (e.g. a MagMap
    ``VRT_GRAD`` column is nT/m), else in the unit the metadata states, else nT.
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    t: np.ndarray | None = None
    lane: np.ndarray | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    #: 1-based line number of each good row, for messages that point into the file.
    line_numbers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    positions: Positions = "local"
    #: Unit of ``value`` fixed by the format itself (None: from metadata, else nT).
    value_unit: str | None = None
    #: Sensor geometry stated by the source (HDF5 stream descriptors); {} for text files.
    geometry: dict[str, object] = field(default_factory=dict)
    #: Number of data rows the file held (good + bad), for the reject summary.
    rows_seen: int = 0
    #: What the reader assumed where the file does not say (shown by ``uxo convert``).
    notes: list[str] = field(default_factory=list)


class SurveyReader(Protocol):
    """One file format. Classes, instantiated once per read."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: Sniffing order: specific formats first (low), generic CSV/XYZ last (high).
    priority: ClassVar[int]

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """True when the first bytes of the file (up to 64 KiB) are this format."""
        ...

    def read(self, path: Path, *, columns: dict[str, str] | None = None,
             max_bad_share: float = 0.1, stream: str | None = None) -> RawSurvey:
        """Read the whole file; raise `acquisition.survey.SurveyReadError` when unusable.

        ``columns`` maps our names (x, y, lat, lon, value, t, lane) to the file's
        column names, for generic CSV/XYZ; ``stream`` picks a stream in a
        multi-stream source. A reader that cannot use one given raises.
        """
        ...


_registered: dict[str, type[SurveyReader]] = {}
_loaded = False


def register_reader(cls: type[SurveyReader], name: str | None = None) -> type[SurveyReader]:
    """Add a reader at run time (tests, notebooks); also usable as a class decorator."""
    _registered[name or cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _registered:
            _registered[ep.name] = ep.load()


def readers() -> dict[str, type[SurveyReader]]:
    """Every reader known, by name (entry points plus `register_reader`)."""
    _load_entry_points()
    return dict(_registered)


def get_reader(name: str) -> type[SurveyReader]:
    known = readers()
    if name not in known:
        raise KeyError(f"unknown format {name!r} (known: {', '.join(sorted(known))})")
    return known[name]


def sniff(head: bytes, path: Path) -> str | None:
    """The name of the first reader, by priority, that recognises ``head``, or None."""
    known = readers()
    for name in sorted(known, key=lambda k: (getattr(known[k], "priority", 50), k)):
        cls = known[name]
        if cls.sniff(head, path):
            return name
    return None
