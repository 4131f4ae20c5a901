"""The lane pipeline's trace: what happened to each signal window (off by default).

`LanePipeline` (and `batch.process_survey`) take an optional
`PipelineTrace`. Given one, the pipeline records per lane what the
detector saw (levelled readings, threshold, segments) and per signal
window it fitted: the window's extent and segments, the sources the fit
placed (with the fit's own per-stage `FitTrace`), the targets it reported,
and every judgement made on the window or on one of its sources, with the
name of the rule that made it (`JUDGEMENTS`). The end-of-survey reviews
add their judgements to `PipelineTrace.late`. Without one (None), the
pipeline records and computes nothing for it. For tests and benchmarks
(`bench/why_missed.py`), the way `FitTrace` is for one fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acquisition.dsp.detect import Segment
from acquisition.dsp.fitstate import FitTrace

__all__ = ["JUDGEMENTS", "Judgement", "LaneTrace", "PipelineTrace", "WindowTrace"]

#: The kinds of judgement, and what each says.
JUDGEMENTS: dict[str, str] = {
    # of a whole window
    "explained": "no fit: every core segment is gone once the sources fitted earlier are "
                 "subtracted (the tail of a neighbour's anomaly)",
    "cells": "the window is a cell of a signal too large to fit whole",
    "cut": "the window is the part of an open signal the walk has left, fitted now",
    "lowpass": "the window's core is segments of the low-pass pass only, judged against "
               "its threshold",
    # of one source
    "dropped": "a named rule of the fit dropped it (the rule: that rule's name)",
    "outside_box": "placed outside the window's box: a neighbouring cell's, or beyond a "
                   "cut line",
    "paid_beside_fitted": "it only modelled what earlier fits may misfit",
    "not_owned": "a cell's source that, refitted on all the samples around it, leaves the "
                 "cell or does not pay there (the neighbouring cell owns it)",
    "lowpass_shallow": "in a low-pass window, too shallow to make the wide anomaly the pass "
                       "detected (a soil peak riding on it)",
    # at the end of the survey, of one target
    "explained_late": "a cheap estimate whose signal the fitted targets explain",
    "under_threshold": "its signal is under the survey's final threshold",
}


@dataclass(frozen=True, slots=True)
class Judgement:
    """One judgement: its kind (a key of `JUDGEMENTS`), the rule that made it,
    and where the source it judged was (x, y; None: the whole window)."""

    kind: str
    rule: str
    at: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class LaneTrace:
    """One lane as the detector saw it: positions, levelled readings (nT),
    the threshold it was searched with, and the segments it found."""

    lane: int
    x: np.ndarray
    y: np.ndarray
    lev: np.ndarray
    thr: float
    segments: tuple[Segment, ...]


#: A source or target as the trace keeps it: (x, y, depth, method).
Placed = tuple[float, float, float, str]


@dataclass
class WindowTrace:
    """One fitted window: its extent (x0, x1, y0, y1: the segments', clipped to
    its cell), the box its sources must lie in, its core and context
    segments, the samples it held, what the fit placed and reported, and the
    judgements, in the order they were made."""

    extent: tuple[float, float, float, float]
    box: tuple[float, float, float, float]
    core: tuple[Segment, ...]
    context: tuple[Segment, ...]
    n_samples: int
    fit: FitTrace | None = None
    #: Every source the fit gave, before the window's own judgements.
    sources: list[Placed] = field(default_factory=list)
    #: The targets the window reported.
    reported: list[Placed] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)

    def judged(self, kind: str) -> list[Judgement]:
        return [j for j in self.judgements if j.kind == kind]


@dataclass
class PipelineTrace:
    """What one `LanePipeline` did, lane by lane and window by window (pass
    one in to get it)."""

    lanes: list[LaneTrace] = field(default_factory=list)
    windows: list[WindowTrace] = field(default_factory=list)
    #: The end-of-survey reviews' judgements (`explained_late`, `under_threshold`).
    late: list[Judgement] = field(default_factory=list)

    def segments(self) -> list[Segment]:
        """Every segment the detector found, lane by lane."""
        return [s for ln in self.lanes for s in ln.segments]

    def judgements(self, kind: str) -> list[tuple[WindowTrace | None, Judgement]]:
        """Every judgement of ``kind``, with its window (None for a late one)."""
        out: list[tuple[WindowTrace | None, Judgement]] = [
            (w, j) for w in self.windows for j in w.judged(kind)]
        return out + [(None, j) for j in self.late if j.kind == kind]

