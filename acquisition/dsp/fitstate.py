"""The state the lane fit's stages share, and the trace the stage driver keeps.

Every stage of `acquisition.dsp.fitstages` is a function of one `FitState`:
the window's data (which a stage may re-level), the sources found so far,
the settings (`FitConfig`) and, once a stage has the final answer, the
result. The driver records, per stage, the sources in and out and every
source a named rule dropped (`FitTrace`), for tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acquisition.dsp.fitconfig import FitConfig
from acquisition.dsp.fitcore import flatten_points
from acquisition.dsp.fitresult import FitResult, SurveySigma
from acquisition.forward import SensorGeometry

__all__ = ["FitState", "FitTrace", "StageRecord"]

#: A source as the trace keeps it: (x, y, depth) of a point, the two end
#: points (x1, y1, d1, x2, y2, d2) of a line.
Source = tuple[float, ...]


@dataclass
class FitState:
    """What the stages of one window's fit share (depth positive down)."""

    x: np.ndarray
    y: np.ndarray
    #: The window's readings; the re-levelling stages replace them.
    v: np.ndarray
    geom: SensorGeometry
    #: Noise sigma (nT, at least 1e-6) and the detection threshold (nT, at
    #: least 3 x the noise).
    noise: float
    thr: float
    #: Where the signal was detected (x0, x1, y0, y1); None only for no data.
    footprint: tuple[float, float, float, float] | None
    #: Lane of each sample (None: not known).
    lanes: np.ndarray | None
    #: Lane peaks the detector reported, strongest first.
    hints: list[tuple[float, float]]
    config: FitConfig
    survey_sigma: SurveySigma | None
    #: The cheap estimate (x, y, depth) of the window: the answer when no fit is.
    cheap: tuple[float, float, float]
    #: Sources so far: (x, y, depth) points, or lines by their two end points.
    srcs: list[np.ndarray] = field(default_factory=list)
    converged: bool = False
    #: The points as they were before the line-source stage (for the
    #: stages that judge only what it changed).
    before_lines: list[np.ndarray] | None = None
    #: Set by a stage that has the final answer: the driver stops.
    result: list[FitResult] | None = None
    #: The sources the running stage dropped, with the rule that dropped each.
    dropped: list[tuple[np.ndarray, str]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.v.size)

    def points(self) -> np.ndarray:
        """The sources (all points before the line stage) packed flat as
        (x, y, depth) triples."""
        return flatten_points(self.srcs)

    def set_points(self, p: np.ndarray) -> None:
        self.srcs = [p[3 * i:3 * i + 3] for i in range(len(p) // 3)]

    def room(self, p: np.ndarray, extra: int = 0) -> bool:
        """Whether one more source fits the budget (``extra`` more than
        `FitConfig.max_sources`) and the samples."""
        k = len(p) // 3
        return (k < self.config.max_sources + extra
                and self.n >= (k + 1) * self.config.min_samples)


def _as_source(s: np.ndarray) -> Source:
    return tuple(float(t) for t in s)


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One stage of one fit: whether it ran (its switch on), the sources in
    and out, and each source a named rule dropped there (source, rule)."""

    name: str
    ran: bool
    sources_in: tuple[Source, ...]
    sources_out: tuple[Source, ...]
    dropped: tuple[tuple[Source, str], ...] = ()


@dataclass
class FitTrace:
    """The stages one `fit_sources` call ran, in order (pass one in to get it)."""

    stages: list[StageRecord] = field(default_factory=list)

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> StageRecord:
        return next(s for s in self.stages if s.name == name)

    def record(self, name: str, ran: bool, before: list[np.ndarray], st: FitState) -> None:
        self.stages.append(StageRecord(
            name, ran, tuple(map(_as_source, before)), tuple(map(_as_source, st.srcs)),
            tuple((_as_source(s), rule) for s, rule in st.dropped)))
