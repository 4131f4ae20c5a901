"""Event types produced by processing and by the runtime (pure dataclasses).

These are what the DSP hands back and what the publisher puts on the wire
(`acquisition.messages` does the encoding). Keeping them free of any I/O lets
the pipeline be fed and checked by hand in a test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: A moment no ordnance has (A m^2): the largest aircraft bombs are ~40 A m^2.
#: Beyond it a fit is geology, a pipe or a building, or a source the data
#: cannot constrain (lanes far apart), never a bomb to list as one.
BEYOND_ORDNANCE_AM2 = 100.0

#: Size classes by fitted moment magnitude (A m^2), from docs/field.md. A moment is
#: never proof that an object is small: remanence can cancel the induced part.
SIZE_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("scrap_or_bomblet", 0.0, 0.05),
    ("mortar", 0.05, 0.3),
    ("projectile", 0.3, 3.0),
    ("aircraft_bomb", 3.0, BEYOND_ORDNANCE_AM2),
    ("geology_or_infrastructure", BEYOND_ORDNANCE_AM2, float("inf")),
)

SIZE_CLASS_CAVEAT = (
    "size class follows the fitted moment only; remanent magnetisation can make a "
    "large object look small, so a small class is never proof that a signal is safe"
)


def size_class(moment_Am2: float) -> str:
    """Name the size class for a moment magnitude in A m^2 (see `SIZE_CLASSES`)."""
    for name, lo, hi in SIZE_CLASSES:
        if lo <= moment_Am2 < hi:
            return name
    return "unknown"


def latest_targets(targets: list[Target]) -> list[Target]:
    """The last revision of each target id (targets may be re-estimated), by id."""
    by_id: dict[int, Target] = {}
    for t in targets:
        if t.target_id not in by_id or t.revision >= by_id[t.target_id].revision:
            by_id[t.target_id] = t
    return [by_id[k] for k in sorted(by_id)]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Fast operator feedback: the sensor just passed a signal on one lane."""

    stream_id: str
    anomaly_id: int
    lane: int
    sample_index: int
    t_ns: int
    x: float
    y: float
    amplitude_nT: float
    polarity: int
    width_m: float = float("nan")
    #: Depth along a borehole (m below ground) for probe streams, else NaN.
    depth: float = float("nan")
    hole: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Anomaly:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True, slots=True)
class Target:
    """A located signal: centre, depth below ground, moment and how sure we are.

    ``depth`` is metres below the ground surface, positive down. ``moment`` is
    (m_east, m_north, m_up) in A m^2. ``quality`` is a 0-1 fit score; ``flags``
    names anything that makes the estimate weaker ("edge", "few_samples",
    "no_converge", "cheap_estimate", "single_hole").
    """

    stream_id: str
    target_id: int
    x: float
    y: float
    depth: float
    moment: tuple[float, float, float]
    quality: float
    sigma_x: float = float("nan")
    sigma_y: float = float("nan")
    sigma_depth: float = float("nan")
    amplitude_nT: float = float("nan")
    lanes: tuple[int, ...] = ()
    holes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    method: str = "dipole_fit"
    t_ns: int = 0
    #: Revision counter: a target may be re-estimated as more data arrive.
    revision: int = 0
    #: Elongated body fitted as a line source (method ``line_fit``): its length,
    #: axis azimuth (0-180° clockwise from north) and plunge (degrees down
    #: toward the azimuth); None for a point source (None, not NaN, so that
    #: equal targets compare equal).
    length_m: float | None = None
    azimuth_deg: float | None = None
    plunge_deg: float | None = None

    @property
    def moment_abs(self) -> float:
        mx, my, mz = self.moment
        return float((mx * mx + my * my + mz * mz) ** 0.5)

    @property
    def size_class(self) -> str:
        return size_class(self.moment_abs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["moment"] = list(self.moment)
        d["lanes"] = list(self.lanes)
        d["holes"] = list(self.holes)
        d["flags"] = list(self.flags)
        d["moment_abs"] = self.moment_abs
        d["size_class"] = self.size_class
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Target:
        kw = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        kw["moment"] = tuple(float(v) for v in kw.get("moment", (0.0, 0.0, 0.0)))
        for key in ("lanes", "holes", "flags"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class StateChange:
    """A stream's connection state changed (connected, stalled, reconnecting, ...)."""

    stream_id: str
    state: str
    reason: str = ""
    t_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Counters:
    """Running counters of a stream, sent in every heartbeat."""

    bytes: int = 0
    frames_ok: int = 0
    frames_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    resyncs: int = 0
    reconnects: int = 0
    gaps: int = 0
    samples: int = 0
    blocks: int = 0
    stalls: int = 0

    def reject(self, reason: str, n: int = 1) -> None:
        self.frames_rejected += n
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rejected_by_reason"] = dict(self.rejected_by_reason)
        return d
