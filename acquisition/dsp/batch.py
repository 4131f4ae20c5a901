"""Whole-survey processing: arrays in, targets and a survey summary out.

`process_survey` feeds the same `LanePipeline` the live service uses, in one
block, so batch and streaming answers are identical by construction. When a
lane number per reading is given (survey CSV ``lane`` column), it replaces the
automatic lane segmentation; readings are then grouped by lane in file order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from acquisition.dsp.cart import cart_lanes
from acquisition.dsp.pipeline import LaneConfig, LanePipeline
from acquisition.dsp.pipetrace import PipelineTrace
from acquisition.errors import UxoValueError
from acquisition.events import Anomaly, Target, latest_targets
from acquisition.geomag import EarthField
from acquisition.types import ChannelSpec, StreamDescriptor
from acquisition.validate import POSITION_LIMIT_M, READING_LIMIT_NT, check_geometry

#: Signal density classes per hectare by depth band, land (docs/field.md).
DENSITY_BANDS_M: tuple[tuple[str, float, float], ...] = (
    ("0-0.3 m", 0.0, 0.3), ("0.3-3 m", 0.3, 3.0), ("3-5 m", 3.0, 5.0))
DENSITY_LIMITS: tuple[tuple[float, float, float], ...] = (
    (95, 4, 1), (190, 8, 2), (285, 12, 3), (380, 16, 4))


def density_class(per_ha: float, band: int) -> str:
    """Class 1-4 or 'special' for a signal density (per hectare) in a depth band (0-2)."""
    for k, limits in enumerate(DENSITY_LIMITS, start=1):
        if per_ha <= limits[band]:
            return str(k)
    return "special"


@dataclass(slots=True)
class SurveyResult:
    """Everything `process_survey` found, plus what the survey summary needs."""

    targets: list[Target]
    anomalies: list[Anomaly]
    noise_nT: float
    threshold_nT: float
    lanes: int
    area_m2: float
    n_samples: int
    rejected_samples: int = 0
    spikes: int = 0
    lane_noise_nT: list[float] = field(default_factory=list)
    #: Targets whose signal is under the survey's final threshold (found on
    #: the first lanes, while the threshold was still being learnt), flagged
    #: "under_threshold"; not in ``targets``.
    under_threshold: list[Target] = field(default_factory=list)
    #: Cheap estimates whose signal the survey's fitted targets explain (the
    #: far fields of deep bombs along a lane: `LanePipeline._review_explained`),
    #: flagged "explained"; not in ``targets``.
    explained: list[Target] = field(default_factory=list)
    #: What was done to the input that the user must know (rows sorted by time).
    notes: list[str] = field(default_factory=list)
    #: Numerical failures of fits, each taken as "no fit" (see `PipelineStats`).
    fit_failures: int = 0

    def density(self) -> list[dict[str, Any]]:
        """Signals per hectare and class per depth band (deeper than 5 m counts as 3-5 m)."""
        ha = self.area_m2 / 10_000.0
        out = []
        for b, (name, lo, hi) in enumerate(DENSITY_BANDS_M):
            last = b == len(DENSITY_BANDS_M) - 1
            n = sum(1 for t in self.targets if lo <= t.depth < hi or (last and t.depth >= hi))
            per_ha = n / ha if ha > 0 else math.nan
            out.append({"band": name, "count": n, "per_ha": per_ha,
                        "class": density_class(per_ha, b) if ha > 0 else "n/a"})
        return out

    def summary(self) -> str:
        lines = [
            f"area: {self.area_m2:.0f} m2 ({self.area_m2 / 10_000:.3f} ha), lanes: {self.lanes}, "
            f"samples: {self.n_samples} ({self.rejected_samples} rejected, {self.spikes} spikes)",
            f"noise: {self.noise_nT:.3g} nT, detection threshold: {self.threshold_nT:.3g} nT",
            f"signals found: {len(self.targets)}",
        ]
        if self.under_threshold:
            lines.append(f"  and {len(self.under_threshold)} under the final threshold, found "
                         "on the first lanes while it was being learnt (not listed)")
        if self.explained:
            lines.append(f"  and {len(self.explained)} explained by the fields of the targets "
                         "fitted (no fit of their own; not listed)")
        if self.fit_failures:
            lines.append(f"  numerical fit failures: {self.fit_failures} (each taken as no fit "
                         "there; see the log)")
        for d in self.density():
            lines.append(f"  depth {d['band']:>8}: {d['count']:4d} signals, "
                         f"{d['per_ha']:8.1f} per ha, class {d['class']}")
        return "\n".join(lines)


def make_descriptor(geometry: dict[str, Any], rate_hz: float = 10.0,
                    stream_id: str = "survey") -> StreamDescriptor:
    """A descriptor for data that did not come with one (files, tests)."""
    return StreamDescriptor(stream_id=stream_id, instrument="file", serial="", rate_hz=rate_hz,
                            channels=(ChannelSpec("value", "nT"),), geometry=dict(geometry),
                            position_dims=2, driver="file")


def process_survey(x: np.ndarray, y: np.ndarray, values: np.ndarray, *,
                   t: np.ndarray | None = None, lane: np.ndarray | None = None,
                   geometry: dict[str, Any], field: EarthField,
                   config: LaneConfig | None = None, stream_id: str = "survey",
                   on_progress: Callable[[int, int], None] | None = None,
                   trace: PipelineTrace | None = None) -> SurveyResult:
    """Process a whole lane survey (x, y in m, values in nT; t in seconds if given).

    ``on_progress(done, total)`` is called as readings are taken in (for a
    progress bar). The readings are then fed in pieces, which gives the same
    answer as one piece: the pipeline is a streaming one (chunked equals whole).
    ``trace``: if given, gets what each lane and signal window went through
    (`pipetrace.PipelineTrace`).
    """
    check_geometry(geometry)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    n = len(x)
    if n == 0:
        raise UxoValueError("no readings: the survey has no data rows")
    v = np.asarray(values, dtype=np.float64).reshape(n, -1)[:, 0]
    if len(y) != n:
        raise ValueError("x, y and values must have the same length")
    _check_spread(x, y)
    notes: list[str] = []
    g = np.arange(n, dtype=np.int64)
    rate = 10.0
    if t is not None:
        t = np.asarray(t, dtype=np.float64).ravel()
        order = _time_order(t, notes, has_lanes=lane is not None)
        if order is not None:
            x, y, v, t, g = x[order], y[order], v[order], t[order], g[order]
            if lane is not None:
                lane = np.asarray(lane).ravel()[order]
        dt = np.diff(t[np.isfinite(t)])
        dt = dt[dt > 0]
        if dt.size:
            rate = 1.0 / float(np.median(dt))
        t_ns = np.where(np.isfinite(t), np.round(t * 1e9), 0).astype(np.int64)
    else:
        t_ns = np.round(np.arange(n) * (1e9 / rate)).astype(np.int64)
    pipe = LanePipeline(make_descriptor(geometry, rate, stream_id), field, config, trace)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
    # beyond physical bounds: a damaged or mistyped value, rejected and said
    wild = ok & ((np.abs(x) > POSITION_LIMIT_M) | (np.abs(y) > POSITION_LIMIT_M)
                 | (np.abs(v) > READING_LIMIT_NT))
    if wild.any():
        ok &= ~wild
        first = int(g[np.argmax(wild)]) + 1
        notes.append(f"{int(wild.sum())} reading(s) beyond physical bounds rejected "
                     f"(|x|, |y| > {POSITION_LIMIT_M:g} m or |value| > "
                     f"{READING_LIMIT_NT:g} nT), the first in data row {first}")
    lanes = None
    if lane is not None:
        lane_arr = np.asarray(lane).ravel()
        ok &= np.isfinite(lane_arr.astype(np.float64))
        lanes = lane_arr.astype(np.float64)
    rejected = int((~ok).sum())
    x, y, v, t_ns, g = x[ok], y[ok], v[ok], t_ns[ok], g[ok]
    if lanes is None and t is not None:
        # a multi-sensor cart written one row per sensor per instant (docs/formats.md)
        lanes = cart_lanes(x, y, t[ok], pipe.config.lane_spacing_m)
    elif lanes is not None:
        lanes = lanes[ok].astype(np.int64)
    if lanes is not None:
        order = np.argsort(lanes, kind="stable")
        x, y, v, t_ns, g, lanes = x[order], y[order], v[order], t_ns[order], g[order], lanes[order]
    if on_progress is None:
        events = pipe._ingest(x, y, v, t_ns, g, lanes)
    else:
        events = []
        m = len(x)
        step = max(PROGRESS_PIECE, m // 100)
        for a in range(0, m, step):
            b = min(a + step, m)
            events += pipe._ingest(x[a:b], y[a:b], v[a:b], t_ns[a:b], g[a:b],
                                   None if lanes is None else lanes[a:b])
            on_progress(b, m)
    events += pipe.finish()
    # A target re-estimated later (a revision, same id) is listed once.
    targets = latest_targets([e for e in events if isinstance(e, Target)])
    weak = [t for t in targets if "under_threshold" in t.flags]
    explained = [t for t in targets if "explained" in t.flags and t not in weak]
    targets = [t for t in targets if "under_threshold" not in t.flags
               and "explained" not in t.flags]
    anomalies = [e for e in events if isinstance(e, Anomaly)]
    return SurveyResult(targets=targets, anomalies=anomalies, noise_nT=pipe.noise_nT,
                        under_threshold=weak, explained=explained,
                        threshold_nT=pipe.threshold_nT, lanes=pipe.stats.lanes,
                        area_m2=pipe.stats.area_m2, n_samples=n,
                        rejected_samples=rejected + pipe.stats.rejected_samples,
                        spikes=pipe.stats.spikes, lane_noise_nT=list(pipe.lane_noise),
                        notes=notes, fit_failures=pipe.stats.fit_failures)


#: Fewest readings fed per progress step (a bar needs no finer steps).
PROGRESS_PIECE = 2000


def _check_spread(x: np.ndarray, y: np.ndarray) -> None:
    """Refuse readings that all lie at one position: no lanes, no area, no answer."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise UxoValueError("no reading has a finite position (x, y)")
    xs, ys = x[ok], y[ok]
    if xs.min() == xs.max() and ys.min() == ys.max():
        raise UxoValueError(f"all {xs.size} readings lie at one position (x={xs[0]:g}, "
                            f"y={ys[0]:g}): not a lane survey (positions missing?)")


#: At most this many steps back in ``t`` without a lane column are walks
#: joined in one file (each with its own clock), kept in file order.
JOINED_WALKS_MAX = 9


def _time_order(t: np.ndarray, notes: list[str], *, has_lanes: bool) -> np.ndarray | None:
    """The order that sorts rows by time (stable) when they are not in it, else None.

    Rows out of time order (a file sorted by another column, shuffled) would
    cut lanes at every jump and lose targets; sorting by ``t`` restores the
    walk. A few steps back without a lane column are several walks joined,
    each restarting its clock: sorting would interleave them, so they keep
    the file's order. Rows without a time go last. `notes` says what was done.
    """
    ft = t[np.isfinite(t)]
    back = int(np.count_nonzero(ft[1:] < ft[:-1]))
    if not back:
        return None
    if not has_lanes and back <= JOINED_WALKS_MAX:
        notes.append(f"t goes back {back} time(s): taken as {back + 1} walks joined in one "
                     "file, kept in file order")
        return None
    notes.append(f"rows are not in time order ({back} steps back in t): sorted by t")
    return np.argsort(t, kind="stable")
