"""Streaming lane pipeline: blocks in, `Anomaly` and `Target` events out.

Flow per sample block (positions x, y in metres, reading in nT in column 0):

1. `LaneSegmenter` numbers lanes from positions and order.
2. `LiveDetector` watches the lane being walked and raises an `Anomaly` at the
   latest `live_max_delay_s` after the reading crosses its threshold.
3. When a lane is complete (the next one has started, or `finish()`), it is
   despiked, levelled (masked median, optional drift removal), its noise
   estimated, and its anomaly segments found on both polarities.
4. Segments are grouped across adjacent lanes into signals. A signal that the
   lane just finished did not extend is closed: a dipole is fitted to the
   levelled samples around it and a `Target` goes out — so a target follows
   once the adjacent lane has been walked.

Every decision depends only on the samples, never on block boundaries, so any
chunking gives the same events as processing whole. An optional
`pipetrace.PipelineTrace` records what each lane and signal window went
through (segments, sources, judgements by rule); off by default.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, pays, penalised
from acquisition.dsp.clutter import CLUTTER_LANE_SHARE, abs_peaks, clutter_threshold
from acquisition.dsp.detect import (
    LiveDetector,
    Segment,
    find_segments,
    lane_lowpass,
    lowpass_segments,
)
from acquisition.dsp.fit import (
    BOMB_MOMENT,
    FitResult,
    FitTrace,
    SurveySigma,
    euler_sources,
    fit_sources,
)
from acquisition.dsp.fitcore import centre_point, run_lm, sigma_of, solve_linear
from acquisition.dsp.laneconfig import LaneConfig
from acquisition.dsp.levelling import (
    block_highpass,
    diff_noise,
    fast_median,
    level_lane,
    mad_sigma,
    masked_level,
    percentile_sorted,
    spike_index,
)
from acquisition.dsp.pipetrace import Judgement, LaneTrace, PipelineTrace, WindowTrace
from acquisition.dsp.segment import LaneSegmenter
from acquisition.dsp.targetmerge import merge_targets, same_object
from acquisition.dsp.walkgeom import end_turns, lane_runs, walk_step
from acquisition.events import Anomaly, Target
from acquisition.forward import SensorGeometry, design_matrix
from acquisition.geomag import EarthField
from acquisition.numfail import thread_count
from acquisition.types import SampleBlock, StreamDescriptor

log = logging.getLogger(__name__)

#: How much of a lane on each side of a cheap estimate's segment is kept for
#: the end-of-survey review (`LanePipeline._review_explained`), m: the whole
#: of a 40 m lane, a bounded copy of a kilometre one.
EXPLAIN_STRETCH_M = 40.0
#: Fitted sources up to this far from a fit window (m) have their fields taken
#: out of it when together they matter there (`LanePipeline._minus_fitted`).
FAR_SUBTRACT_M = 15.0
#: The methods of fitted sources (not cheap estimates, not Euler's).
FITTED = ("dipole_fit", "line_fit")
#: Fitted sources this close to a fit window (m) always have their fields
#: taken out of it (`LanePipeline._minus_fitted`).
NEAR_SUBTRACT_M = 4.0
#: What a source fitted beside sources already subtracted must gain in the
#: chi-square weighted by their misfit (`LanePipeline._pay_beside_fitted`):
#: the BIC bar `fit_sources` applies to each further source.
BESIDE_FITTED_GAIN = 10.0
#: A signal that grows larger than this (m, along or across the lanes) is
#: fitted locally: cut where the walk has left it (`LanePipeline._cut_behind`)
#: and in cells (`LanePipeline._tiles`). Dense scenes' segments touch across
#: lanes and join into signals as large as the survey, and a window's cost
#: grows with its samples x sources squared. Below this, one window sees a
#: whole cluster at once (the re-levelling of its lanes and the residual
#: search of broad clusters need all of it): a site's survey-wide cluster of
#: deep bombs on a 30 x 40 m survey stays one window.
LOCAL_SPLIT_M = 48.0
#: Largest side (m) of a cell of a signal fitted locally (`LanePipeline._tiles`).
#: A lone bomb's anomaly (4 m deep: about 8 m across) and the clusters of
#: carpet bombing (2-4 bombs 3-5 m apart) fit inside one cell and its margin.
LOCAL_TILE_M = 16.0
#: Context around a cell (m): segments of the same signal this near are fitted
#: with it, and the sources placed among them dropped (the neighbouring cell
#: owns them). The interaction reach (`LaneConfig.interact_m`, 2 m) and a
#: metre: a neighbour's steep near field is in the window and modelled, so
#: it does not pull the cell's own sources; what its far tail leaves is taken
#: out once the neighbouring cell is fitted (`_minus_fitted`).
LOCAL_MARGIN_M = 3.0
#: A source a cell keeps is judged again on the samples within this many
#: times (its depth + the sensor height) of it when its window's data end
#: nearer than that (`LanePipeline._owned_whole`): a dipole's anomaly is
#: about (depth + height) wide on each side of its peak, and 1.5 of that
#: holds its lobes' flanks, which fix its position and depth.
OWN_VIEW_K = 1.5
#: A source of a signal only the low-pass pass found must lie at least this
#: share of `LaneConfig.lowpass_m` deep (`LanePipeline._fit_window`).
LOWPASS_DEPTH_SHARE = 0.5
#: The low-pass pass and the clutter threshold apply where the survey's
#: background is over this many times the white noise: magnetic soil reads
#: 2.5-4 x (benchmark laterite, gradient and total field, every lane over
#: 2.2 x); a dense survey of overlapping anomalies on clean ground 1.2-1.5 x
#: at its end (30th percentile of the lanes), but more on its first lanes,
#: when a wide anomaly is a large share of them (`robust_ratio`, 1.5, let
#: that in).
SOIL_BG_RATIO = 2.0


@dataclass(slots=True)
class LaneRecord:
    """A finished, levelled lane."""

    lane: int
    gidx: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t_ns: np.ndarray
    raw: np.ndarray
    lev: np.ndarray
    noise: float
    level: float
    x_ref: float
    length_m: float
    n_spikes: int = 0


_OPEN_BOX = (-math.inf, math.inf, -math.inf, math.inf)


@dataclass(slots=True)
class _Group:
    segs: list[Segment] = field(default_factory=list)
    #: Where this signal's fits may place sources (x0, x1, y0, y1): the whole
    #: plane, but beyond the line where the walk's older part of the signal
    #: was cut off and fitted (`LanePipeline._cut_behind`).
    box: tuple[float, float, float, float] = _OPEN_BOX
    #: Segments of the same signal left open beyond ``box``: context only.
    context: list[Segment] = field(default_factory=list)
    #: Part of a signal that grew beyond `LOCAL_SPLIT_M`: fitted in cells.
    local: bool = False
    #: The part of an open signal the walk had left (`LanePipeline._cut_behind`).
    cut: bool = False

    @property
    def lanes(self) -> set[int]:
        return {s.lane for s in self.segs}


class _Buf:
    """Growable column store for the lane being walked."""

    NAMES = ("x", "y", "v", "t", "g")

    def __init__(self, capacity: int = 256) -> None:
        self.n = 0
        size = max(int(capacity), 256)
        self.cols = {k: np.empty(size, dtype=np.int64 if k in "tg" else np.float64)
                     for k in self.NAMES}

    def append(self, x: np.ndarray, y: np.ndarray, v: np.ndarray, t: np.ndarray,
               g: np.ndarray) -> None:
        n, m, cols = self.n, len(x), self.cols
        if n + m > cols["x"].size:
            size = max(n + m, 2 * cols["x"].size)
            for k, a in cols.items():
                b = np.empty(size, dtype=a.dtype)
                b[:n] = a[:n]
                cols[k] = b
        cols["x"][n:n + m] = x
        cols["y"][n:n + m] = y
        cols["v"][n:n + m] = v
        cols["t"][n:n + m] = t
        cols["g"][n:n + m] = g
        self.n = n + m

    def get(self, k: str) -> np.ndarray:
        return self.cols[k][:self.n]


#: The store between lanes: empty, never appended to (`_start_lane` replaces it).
_NO_LANE = _Buf()


@dataclass(slots=True)
class PipelineStats:
    samples: int = 0
    rejected_samples: int = 0
    blocks_without_positions: int = 0
    lanes: int = 0
    spikes: int = 0
    area_m2: float = 0.0
    #: Signals fully explained by targets already fitted beside them (tails of
    #: a neighbour's anomaly detected on their own lanes): no new target.
    explained_signals: int = 0
    #: Fits that landed on a target an earlier signal's fit already reported
    #: (sent as a revision of that target, not as a new one).
    merged_refits: int = 0
    #: Targets sent before the threshold had risen to its final level and
    #: under it (revised with the flag "under_threshold" at `finish`).
    under_threshold: int = 0
    #: Cheap estimates (no fit converged) whose signal the survey's fitted
    #: targets explain once all are known (revised with the flag
    #: "explained" at `finish`).
    explained_late: int = 0
    #: Numerical failures (singular matrix, solver error) the fits took as "no
    #: fit" (`acquisition.numfail`); each is also logged.
    fit_failures: int = 0
    #: Most segments (a core's and its context) fitted in one window, and the
    #: largest side (m) of such a window's segments: bounded on any area
    #: (`LanePipeline._tiles`), so the cost grows with the area.
    largest_window_segments: int = 0
    largest_window_m: float = 0.0
    #: Parts of open signals fitted once the walk had left them (`_cut_behind`).
    cut_signals: int = 0
    #: Windows fitted as cells of a signal larger than `LOCAL_SPLIT_M` (`_tiles`).
    cell_windows: int = 0


def _fields(rows: np.ndarray, x: np.ndarray, y: np.ndarray,
            geom: SensorGeometry) -> Iterator[np.ndarray]:
    """The field at (x, y) of each fitted point source in ``rows`` (x, y,
    depth, mx, my, mz), one source at a time."""
    for row in rows:
        yield design_matrix(x, y, row[0], row[1], row[2], geom) @ row[3:]


def _extent(segs: list[Segment], clip: tuple[float, float, float, float] | None = None
            ) -> tuple[float, float, float, float]:
    """Where ``segs`` lie (x0, x1, y0, y1: lane x, along-lane extent), within ``clip``."""
    ext = (min(s.x_mean for s in segs), max(s.x_mean for s in segs),
           min(s.y0 for s in segs), max(s.y1 for s in segs))
    if clip is None:
        return ext
    return (max(ext[0], clip[0]), min(ext[1], clip[1]), max(ext[2], clip[2]),
            min(ext[3], clip[3]))


def _near(a: _Group, b: _Group, reach: float) -> bool:
    ax0, ax1 = min(s.x_mean for s in a.segs), max(s.x_mean for s in a.segs)
    bx0, bx1 = min(s.x_mean for s in b.segs), max(s.x_mean for s in b.segs)
    ay0, ay1 = min(s.y0 for s in a.segs), max(s.y1 for s in a.segs)
    by0, by1 = min(s.y0 for s in b.segs), max(s.y1 for s in b.segs)
    return ax0 - reach <= bx1 and bx0 - reach <= ax1 and ay0 - reach <= by1 and by0 - reach <= ay1


class LanePipeline:
    """Stateful lane-survey processor; see the module docstring."""

    def __init__(self, descriptor: StreamDescriptor, field: EarthField,
                 config: LaneConfig | None = None, trace: PipelineTrace | None = None) -> None:
        self.descriptor = descriptor
        #: If given, gets what each lane and signal window went through
        #: (`pipetrace`); None: nothing is recorded.
        self.trace = trace
        self.stream_id = descriptor.stream_id
        self.field = field
        self.config = config or LaneConfig()
        self.geom = SensorGeometry.from_geometry(descriptor.geometry, field)
        self.rate_hz = float(descriptor.rate_hz)
        cfg = self.config
        self.segmenter = LaneSegmenter(cfg.lane_spacing_m)
        delay = max(0, math.floor(cfg.live_max_delay_s * self.rate_hz))
        self.live = LiveDetector(k=cfg.live_k, max_delay=delay,
                                 min_thr=max(cfg.min_threshold_nT, cfg.threshold_nT or 0.0))
        self.live.noise = cfg.noise_nT
        self.lanes: dict[int, LaneRecord] = {}
        self.lane_noise: list[float] = []
        self.lane_white: list[float] = []
        # Peak amplitudes of the soil-like lanes, for the clutter threshold.
        self._peaks: list[np.ndarray] = []
        self._peak_area_m2 = 0.0
        self._clutter_nT = math.nan
        self._clutter_lanes = [0, 0]  # lanes seen, lanes that read like soil
        self.stats = PipelineStats()
        self._cur_lane: int | None = None
        self._buf = _Buf()
        self._levels: dict[int, float] = {}
        self._noise_sorted: list[float] = []  # lane_noise, sorted (for its percentile)
        #: Background of each lane low-passed by `LaneConfig.lowpass_m`, sorted.
        self._lp_noise_sorted: list[float] = []
        #: Peaks of the low-passed lanes and their area, for its clutter level.
        self._lp_peaks: list[np.ndarray] = []
        self._lp_area_m2 = 0.0
        self._lp_clutter_nT = math.nan
        self._lp_lanes = [0, 0]  # lanes seen, lanes that read like soil (own background)
        #: Targets of windows made of low-pass segments only: judged against
        #: the low-passed threshold (`lowpass_threshold_nT`).
        self._lowpass_ids: set[int] = set()
        self._offsets_key: tuple[int, float] | None = None  # see process()
        self._t_off = self._i_off = np.empty(0, dtype=np.int64)
        self._held: set[int] = set()  # lanes whose samples are still kept (see _prune)
        self._groups: list[_Group] = []
        self._pending: list[_Group] = []
        #: Parts of open signals the walk has left, to fit now (`_cut_behind`).
        self._cuts: list[_Group] = []
        #: Fitted sources so far (x, y, depth, mx, my, mz), subtracted from neighbours' windows.
        self._fitted = np.empty((0, 6))
        #: Latest revision of every target sent (any method), by id.
        self._sent: dict[int, Target] = {}
        #: Per cheap-estimate target: its segments' lanes (x, y, levelled
        #: values) and which samples are the segment, kept for the end-of-
        #: survey review (`_review_explained`; lanes are pruned as we go).
        self._cheap: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._next_anomaly = 0
        self._next_target = 0
        self._finished = False

    # ----------------------------------------------------------------- public
    @property
    def noise_nT(self) -> float:
        """Current noise sigma of the survey (nT): configured, else from the lanes so far."""
        if self.config.noise_nT is not None:
            return float(self.config.noise_nT)
        # 30th percentile over lanes: lanes crossing wide anomalies read high,
        # and in a busy survey they can be half of all lanes; quiet lanes (and
        # soil, which is everywhere) set the level.
        if not self.lane_noise:
            return math.nan
        if len(self._noise_sorted) != len(self.lane_noise):
            self._noise_sorted = sorted(self.lane_noise)
        return percentile_sorted(self._noise_sorted, 30)  # == np.percentile(lane_noise, 30)

    @property
    def threshold_nT(self) -> float:
        cfg = self.config
        if cfg.threshold_nT is not None:
            return float(cfg.threshold_nT)
        s = self.noise_nT
        if not math.isfinite(s):
            return math.nan
        # No tail guard from the largest readings: in a survey full of targets,
        # the tails are the targets. Heavy-tailed (magnetic) soil is handled by
        # the soil calibration on clean ground (`acquisition.dsp.calibration`)
        # or, without one, by the clutter level from the bulk of the soil's
        # peaks (`clutter_threshold`).
        thr = max(cfg.detect_k * s, cfg.min_threshold_nT)
        # Soil is everywhere, targets are local: only where nearly every lane
        # reads like soil are the peaks the soil's (a few busy lanes over
        # quiet ground would set the level from the targets themselves). And
        # the survey's background must be the soil's, well over the white
        # noise (the low-pass pass's test): on the first lanes of a dense
        # survey on clean ground, wide anomalies crossing most lanes raise
        # their backgrounds 1.5-2 x, and a threshold raised there tenfold
        # (the level of those anomalies' own peaks) is never undone, as the
        # lanes searched with it are gone by the time the survey says so.
        lanes, soil = self._clutter_lanes
        if (math.isfinite(self._clutter_nT) and soil >= CLUTTER_LANE_SHARE * lanes
                and self._short_wave_background()):
            thr = max(thr, self._clutter_nT)
        return thr

    @property
    def lowpass_threshold_nT(self) -> float:
        """Threshold of the low-pass pass (nT), measured as the raw one is on
        uncalibrated magnetic ground: `detect_k` x the low-passed lanes'
        background (30th percentile over lanes, as `noise_nT`), raised to the
        level the low-passed soil's own peaks exceed at
        `LaneConfig.clutter_rate_per_1000m2` (`clutter_threshold`). A soil
        calibration says nothing of the low-passed soil, so this is always
        the survey's own. NaN while no lane has one or the pass is off."""
        if not self._lp_noise_sorted:
            return math.nan
        cfg = self.config
        s = percentile_sorted(self._lp_noise_sorted, 30)
        thr = max(cfg.detect_k * s, cfg.min_threshold_nT)
        if math.isfinite(self._lp_clutter_nT):
            thr = max(thr, self._lp_clutter_nT)
        return thr

    def _short_wave_background(self) -> bool:
        """The survey's background is well over the sensor's white noise: the
        ground's own clutter (magnetic soil) sets the raw threshold."""
        if not self.lane_white:
            return False
        bg = self.noise_nT
        return math.isfinite(bg) and bg > SOIL_BG_RATIO * float(np.median(self.lane_white))

    def _thr_for(self, lowpass: bool) -> float:
        """The threshold a signal is judged against: the low-passed one for a
        signal only the low-pass pass found, else the survey's."""
        if lowpass:
            lp = self.lowpass_threshold_nT
            if math.isfinite(lp):
                return lp
        return self.threshold_nT

    def _add_clutter_peaks(self, lev: np.ndarray, area_m2: float) -> None:
        self._peaks.append(abs_peaks(lev))
        self._peak_area_m2 += area_m2
        self._clutter_nT = clutter_threshold(np.concatenate(self._peaks), self._peak_area_m2,
                                             self.config.clutter_rate_per_1000m2)

    def process(self, block: SampleBlock) -> list[Anomaly | Target]:
        """Feed one block; return the events it caused (anomalies and targets)."""
        if block.positions is None:
            self.stats.blocks_without_positions += 1
            self.stats.rejected_samples += block.n
            return []
        v = np.asarray(block.data[:, 0], dtype=np.float64)
        pos = np.asarray(block.positions, dtype=np.float64)
        # Sample times are t0 + offsets that depend on (n, rate) only: computed
        # by SampleBlock.times_ns once per block shape, then one addition.
        key = (block.n, block.rate_hz)
        if key != self._offsets_key:
            self._offsets_key = key
            self._t_off = block.times_ns() - block.t0_ns
            self._i_off = np.arange(block.n, dtype=np.int64)
        t = block.t0_ns + self._t_off
        g = block.first_index + self._i_off
        # A finite sum means no inf or NaN in the block (one pass, not two).
        if not (math.isfinite(v.sum()) and math.isfinite(pos[:, :2].sum())):
            ok = np.isfinite(v) & np.isfinite(pos[:, 0]) & np.isfinite(pos[:, 1])
            self.stats.rejected_samples += int((~ok).sum())
            v, pos, t, g = v[ok], pos[ok], t[ok], g[ok]
        return self._ingest(pos[:, 0], pos[:, 1], v, t, g)

    def finish(self) -> list[Anomaly | Target]:
        """End of survey: finish the last lane and fit every open signal."""
        if self._finished:
            return []
        self._finished = True
        failed0 = thread_count()
        events: list[Anomaly | Target] = []
        if self._cur_lane is not None and self._buf.n:
            events += self._finish_lane()
        self._pending += self._groups
        self._groups = []
        events += self._fit_ready(final=True)
        events += self._review_explained()
        events += self._review_threshold()
        self._count_failures(failed0)
        return events

    def _review_explained(self) -> list[Target]:
        """End of survey: every cheap estimate whose signal the fitted targets'
        fields explain gets a revision flagged "explained".

        On a total-field survey the summed far field of deep bombs varies
        along a 40 m lane by a few nT, so the lane's median level is off at
        its ends and a weak broad segment appears there: no fit converges on
        it and it is reported as a cheap estimate (e.g.
        13 of 14 such estimates were on no object). When it is fitted, the
        bombs may not be yet (`_explained` only sees earlier fits). Here,
        with every fitted source known, each of its segments' lanes has their
        fields taken out and is levelled again on its median outside the
        segment; if no sample of any segment is then over the threshold, the
        signal was theirs. A real object no fit converged on is not in that
        model, so its signal stays (`docs/dsp.md`, "One survey, one model").
        """
        thr0 = self.threshold_nT
        f = self._fitted
        if not (math.isfinite(thr0) and thr0 > 0 and f.shape[0] and self._cheap):
            return []
        out: list[Target] = []
        for tid, segs in sorted(self._cheap.items()):
            t = self._sent.get(tid)
            if t is None or "explained" in t.flags or "cheap_estimate" not in t.flags:
                continue
            thr = self._thr_for(tid in self._lowpass_ids)
            if all(self._segment_explained(x, y, lev, on, f, thr) for x, y, lev, on in segs):
                t = replace(t, revision=t.revision + 1, flags=(*t.flags, "explained"))
                self._sent[tid] = t
                self.stats.explained_late += 1
                if self.trace is not None:
                    self.trace.late.append(Judgement(
                        "explained_late", "LanePipeline._review_explained", (t.x, t.y)))
                out.append(t)
        return out

    def _segment_stretch(self, s: Segment
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A segment's lane within `EXPLAIN_STRETCH_M` of it (copies: x, y,
        levelled values, and which of them are the segment)."""
        r = self.lanes[s.lane]
        near = (r.y >= s.y0 - EXPLAIN_STRETCH_M) & (r.y <= s.y1 + EXPLAIN_STRETCH_M)
        y = r.y[near]
        return r.x[near], y, r.lev[near], (y >= s.y0) & (y <= s.y1)

    def _segment_explained(self, x: np.ndarray, y: np.ndarray, lev: np.ndarray,
                           on: np.ndarray, f: np.ndarray, thr: float) -> bool:
        """No sample of the segment ``on`` over ``thr`` once the fields of the
        fitted sources ``f`` are out of its lane and the lane is levelled
        again on its median outside the segment."""
        if not on.any() or on.all():
            return False
        r = lev.copy()
        for fk in _fields(f, x, y, self.geom):
            r -= fk
        r -= float(np.median(r[~on]))
        return float(np.max(np.abs(r[on]))) < thr

    def _review_threshold(self) -> list[Target]:
        """End of survey: every target whose signal is under the final threshold
        gets a revision flagged "under_threshold".

        The threshold is learnt as the survey goes (the noise from the lanes
        walked so far; on magnetic ground without a calibration, the soil's
        clutter level from their peaks), so a signal from the first lanes may
        have passed a lower threshold than the survey's own. One survey, one
        threshold: those are told apart, not dropped (`SurveyResult` lists
        them separately). On the benchmark's uncalibrated laterite none of
        them was a buried object (`docs/dsp.md`, "One survey, one threshold").
        An aircraft-bomb-sized fit (`fit.BOMB_MOMENT`) stays a target whatever
        its field, as in `droprules.drop_subthreshold`: a 9 A m2 bomb 3.6 m under
        magnetic ground gives 9.0 nT, and is worth the dig against a
        9.08 nT threshold.
        """
        thr0 = self.threshold_nT
        if not (math.isfinite(thr0) and thr0 > 0):
            return []
        out: list[Target] = []
        for tid in sorted(self._sent):
            t = self._sent[tid]
            # A target only the low-pass pass found: its low-passed threshold.
            thr = self._thr_for(tid in self._lowpass_ids)
            if (abs(t.amplitude_nT) < thr and "under_threshold" not in t.flags
                    and t.moment_abs < BOMB_MOMENT):
                t = replace(t, revision=t.revision + 1, flags=(*t.flags, "under_threshold"))
                self._sent[tid] = t
                self.stats.under_threshold += 1
                if self.trace is not None:
                    self.trace.late.append(Judgement(
                        "under_threshold", "LanePipeline._review_threshold", (t.x, t.y)))
                out.append(t)
        return out

    # --------------------------------------------------------------- internal
    def _ingest(self, x: np.ndarray, y: np.ndarray, v: np.ndarray, t: np.ndarray,
                g: np.ndarray, lanes: np.ndarray | None = None) -> list[Anomaly | Target]:
        n = len(v)
        if n == 0:
            return []
        if self._finished:
            raise RuntimeError("pipeline already finished")
        runs = self.segmenter.runs(x, y) if lanes is None else lane_runs(np.asarray(lanes))
        self.stats.samples += n
        events: list[Anomaly | Target] = []
        failed0 = thread_count()
        for a, b, lane in runs:
            if lane != self._cur_lane:
                if self._cur_lane is not None and self._buf.n:
                    events += self._finish_lane()
                self._start_lane(lane)
            base = self._buf.n
            self._buf.append(x[a:b], y[a:b], v[a:b], t[a:b], g[a:b])
            for hit in self.live.feed(v[a:b], y[a:b]):
                p = hit.lane_pos
                bx, by = self._buf.get("x"), self._buf.get("y")
                assert p < base + (b - a)
                events.append(Anomaly(
                    stream_id=self.stream_id, anomaly_id=self._next_anomaly, lane=lane,
                    sample_index=int(self._buf.get("g")[p]), t_ns=int(self._buf.get("t")[p]),
                    x=float(bx[p]), y=float(by[p]), amplitude_nT=float(hit.amplitude),
                    polarity=1 if hit.amplitude > 0 else -1, width_m=float(hit.width_m)))
                self._next_anomaly += 1
        self._count_failures(failed0)
        return events

    def _count_failures(self, since: int) -> None:
        """Add the fits' numerical failures since ``since`` (`numfail`) to the stats."""
        n = thread_count() - since
        if n:
            self.stats.fit_failures += n
            log.warning("%s: %d numerical fit failure(s) taken as no fit (%d in all)",
                        self.stream_id, n, self.stats.fit_failures)

    def _start_lane(self, lane: int) -> None:
        self._cur_lane = lane
        # Room for a lane like the last one: no regrowth copies on the way
        # (the first lane: 4096 samples, so a long one regrows only a few times).
        last = self.lanes.get(lane - 1)
        self._buf = _Buf(last.gidx.size + last.gidx.size // 4 if last is not None else 4096)
        prior = self._levels.get(lane - 2, self._levels.get(lane - 1))
        self.live.start_lane(prior)

    def _finish_lane(self) -> list[Target]:
        cfg = self.config
        lane = int(self._cur_lane)  # type: ignore[arg-type]
        # Views, not copies: the buffer is dropped here and never written again.
        buf = self._buf
        x, y, raw, t, g = (buf.get(k) for k in _Buf.NAMES)
        self._buf = _NO_LANE
        self._cur_lane = None
        x_mid = fast_median(x) if x.size else math.nan
        if raw.size >= 3:
            # Drop turn samples (side-steps at lane ends): off the lane's line they
            # carry heading error and would make false signals at every lane end.
            tol = cfg.turn_tol_m
            turns = end_turns(x, y)
            # Extremes first (rounding is monotone): usually every sample is on.
            if (turns.any() or float(x.max()) - x_mid > tol
                    or x_mid - float(x.min()) > tol):
                on = np.abs(x - x_mid) <= tol
                on &= ~turns
                if on.sum() >= 3 and not on.all():
                    x, y, raw, t, g = x[on], y[on], raw[on], t[on], g[on]
                    x_mid = fast_median(x)
        white = diff_noise(raw)
        # `despike` without its copies: most lanes have no spike, and then the
        # despiked lane is the raw one (never written to below).
        spikes = spike_index(raw, white) if cfg.despike else np.empty(0, dtype=np.intp)
        v = raw
        if spikes.size:
            v = raw.copy()
            v[spikes] = 0.5 * (raw[spikes - 1] + raw[spikes + 1])
        sigma = self.noise_nT
        if not math.isfinite(sigma):
            sigma = white
        step = (walk_step(x, y, (5.0, cfg.merge_gap_m, cfg.drift_window_m)) if raw.size > 2
                else 0.1)
        step = step if step > 1e-3 else 0.1
        drift = round(cfg.drift_window_m / step) if cfg.drift_window_m > 0 else 0
        if drift:
            lev, base = level_lane(v, max(sigma, white), drift_window=drift)
            level = fast_median(base)
        else:  # constant level: no baseline array (its median is the level)
            level, _ = masked_level(v, max(sigma, white))
            lev = v - level
        # Background = sensor noise plus what the ground itself does (lateritic
        # soil is spatially correlated and escapes a difference-based estimate):
        # the robust spread of the levelled lane, never below the white noise.
        # High-passed first (minus a 5 m running median): broad anomalies of deep
        # objects and residual drift must not pass for background.
        win = max(3, min(lev.size, round(5.0 / step)) | 1)
        # (An approximation of the exact 5 m running median at half its cost or
        # less on long lanes: the MAD agrees to ~1-2 % a lane, `block_highpass`.)
        clutter = (cfg.threshold_nT is None and cfg.clutter_rate_per_1000m2 > 0
                   and lev.size >= 3)
        hp = lev
        if lev.size >= 3:
            hp = block_highpass(lev, win, white)
            noise_lane = max(white, mad_sigma(hp, overwrite=not clutter))
        else:
            noise_lane = max(white, mad_sigma(lev))
        if clutter:
            self._clutter_lanes[0] += 1
            if noise_lane > cfg.robust_ratio * white:
                self._clutter_lanes[1] += 1
                # The soil's peaks above its own local level (the 5 m
                # high-pass): on the flanks of a big shallow bomb's anomaly
                # the levelled signal is tens of nT for metres, and the soil
                # peaks riding on it pushed the clutter threshold up by half
                # for the first lanes (e.g. 19 nT, 10 nT at the
                # end), so a projectile there went undetected.
                self._add_clutter_peaks(hp, (float(y.max()) - float(y.min()))
                                        * cfg.lane_spacing_m)
        if cfg.noise_nT is None and raw.size >= 10:
            self.lane_noise.append(noise_lane)
            bisect.insort(self._noise_sorted, noise_lane)
        if raw.size >= 10:
            self.lane_white.append(white)
        self._levels[lane] = level
        length = float(y.max()) - float(y.min()) if y.size else 0.0  # == np.ptp(y)
        rec = LaneRecord(lane=lane, gidx=g, x=x, y=y, t_ns=t, raw=raw, lev=lev, noise=noise_lane,
                         level=level, x_ref=x_mid,
                         length_m=length, n_spikes=int(spikes.size))
        self.lanes[lane] = rec
        self._held.add(lane)
        self.stats.lanes += 1
        self.stats.spikes += rec.n_spikes
        self.stats.area_m2 += length * cfg.lane_spacing_m
        if cfg.noise_nT is None:
            self.live.noise = self.noise_nT
        thr = self.threshold_nT
        if not math.isfinite(thr):
            thr = max(cfg.detect_k * sigma, cfg.min_threshold_nT)
        gap = max(1, round(cfg.merge_gap_m / step))
        segs = find_segments(lev, thr, x, y, lane, merge_gap=gap) if thr > 0 else []
        if cfg.lowpass_m > 0 and lev.size >= 3:
            segs += self._lowpass_pass(lev, x, y, lane, segs, step, win, white, noise_lane, gap)
        if self.trace is not None:
            self.trace.lanes.append(LaneTrace(lane, x, y, lev, float(thr), tuple(segs)))
        touched = self._group_segments(segs, lane)
        self._pending += [g for g in self._groups if id(g) not in touched]
        self._groups = [g for g in self._groups if id(g) in touched]
        events = self._fit_ready(final=False)
        self._prune(lane)
        return events

    def _lowpass_pass(self, lev: np.ndarray, x: np.ndarray, y: np.ndarray, lane: int,
                      raw: list[Segment], step: float, win: int, white: float,
                      noise_lane: float, gap: int) -> list[Segment]:
        """The lane low-passed by `LaneConfig.lowpass_m`: its background is
        recorded (measured as the raw lane's: MAD of the 5 m high-pass), and on
        magnetic ground its segments that no raw segment covers are returned.

        The raw threshold on magnetic ground is set by the soil's peaks, which
        are short-wave; a deep body's wide anomaly keeps most of its peak
        through the mean while the soil's drop several-fold, so the low-passed
        lane, against its own background, sees what the raw one cannot.
        On ground whose background is the sensor's white noise the raw pass is
        already the better test (no pass is run).
        """
        n = round(self.config.lowpass_m / step) | 1
        if n < 3:
            return []
        lp = lane_lowpass(lev, n)
        # The flank rule of `block_highpass` takes the raw lane's background:
        # on the smooth low-passed lane a white-noise figure would zero soil
        # swings too and read the background low.
        hp = block_highpass(lp, win, noise_lane) if lp.size >= 3 else lp
        lp_noise = max(white / math.sqrt(n), mad_sigma(hp))
        if lev.size >= 10:
            bisect.insort(self._lp_noise_sorted, lp_noise)
            self._lp_lanes[0] += 1
            self._lp_lanes[1] += noise_lane > self.config.robust_ratio * white
            if self.config.clutter_rate_per_1000m2 > 0:
                self._lp_peaks.append(abs_peaks(hp))
                self._lp_area_m2 += (float(y.max()) - float(y.min())) * self.config.lane_spacing_m
                self._lp_clutter_nT = clutter_threshold(
                    np.concatenate(self._lp_peaks), self._lp_area_m2,
                    self.config.clutter_rate_per_1000m2)
        thr = self.lowpass_threshold_nT
        # Soil is everywhere: nearly every lane must read like it (as for the
        # clutter threshold). A dense survey of overlapping anomalies can have
        # a background over the white noise too, but from wide fields, which
        # the raw pass already sees.
        lanes, soil = self._lp_lanes
        if not (soil >= CLUTTER_LANE_SHARE * lanes and self._short_wave_background()
                and math.isfinite(thr) and thr > 0):
            return []
        return lowpass_segments(lp, thr, x, y, lane, raw, merge_gap=gap)

    def _fit_ready(self, final: bool) -> list[Target]:
        """Fit closed signals, strongest first, once no open signal is near them.

        A closed signal next to one still growing waits: fitted later, after its
        neighbour, it sees the neighbour's fitted field subtracted.
        """
        reach = self.config.interact_m
        ready, wait = [], []
        for g in self._pending:
            if final or not any(_near(g, o, reach) for o in self._groups):
                ready.append(g)
            else:
                wait.append(g)
        self._pending = wait
        # The parts the walk has left behind of signals still open
        # (`_cut_behind`): fitted now, whatever is open beside them (their
        # context and box take care of that side).
        ready += self._cuts
        self._cuts = []
        ready.sort(key=lambda g: -max(abs(s.amplitude) for s in g.segs))
        events: list[Target] = []
        for g in ready:
            events += self._fit_group(g)
        return events

    def _group_segments(self, segs: list[Segment], lane: int) -> set[int]:
        """Join lane ``lane``'s segments to the open signals they touch; cut
        off, for fitting now, the part of an open signal the walk has left
        (`_cut_behind`). The ids of the signals this lane extended."""
        cfg = self.config
        tol = cfg.group_tol_m
        reach = 1.5 * cfg.lane_spacing_m
        touched: set[int] = set()
        for s in segs:
            hits = []
            for grp in self._groups:
                for o in grp.segs:
                    if (o.lane != s.lane and abs(o.x_mean - s.x_mean) <= reach
                            and o.y0 - tol <= s.y1 and s.y0 <= o.y1 + tol):
                        hits.append(grp)
                        break
            if not hits:
                grp = _Group([s])
                self._groups.append(grp)
            else:
                grp = hits[0]
                grp.segs.append(s)
                for other in hits[1:]:
                    grp.segs.extend(other.segs)
                    # Where either may place sources (a cut line of one
                    # must not drop the other's sources behind it).
                    grp.box = (min(grp.box[0], other.box[0]), max(grp.box[1], other.box[1]),
                               min(grp.box[2], other.box[2]), max(grp.box[3], other.box[3]))
                    grp.local = grp.local or other.local
                    self._groups.remove(other)
            touched.add(id(grp))
        for grp in self._groups:
            if id(grp) in touched:
                piece = self._cut_behind(grp, lane)
                if piece is not None:
                    self._cuts.append(piece)
                    self.stats.cut_signals += 1
        return touched

    def _cut_behind(self, grp: _Group, lane: int) -> _Group | None:
        """The part of the open signal ``grp`` on lanes the walk has left, once
        it spans more than `LOCAL_SPLIT_M` there, as a signal of its own
        (fitted in cells); ``grp`` keeps the rest.

        On a dense scene the segments of neighbouring anomalies touch across
        lanes and one signal grows with the survey; left open, it is fitted
        as one window at the end. On lanes more than the context margin plus
        the interaction reach (`LOCAL_MARGIN_M` + `LaneConfig.interact_m`)
        behind the lane just finished, what is still to come is seen only as
        its far tail, and the near part of it is in the nearer lanes'
        segments, given as context: so that part is fitted now, keeping its
        sources on its side of the cut line. The rest keeps the other side;
        fitted later, it sees the part's sources subtracted (`_minus_fitted`).
        """
        cfg = self.config
        sp = cfg.lane_spacing_m
        keep = math.ceil((LOCAL_MARGIN_M + cfg.interact_m) / sp)
        if lane - min(s.lane for s in grp.segs) < keep + math.ceil(LOCAL_SPLIT_M / sp):
            return None
        old = [s for s in grp.segs if lane - s.lane > keep]
        rest = [s for s in grp.segs if lane - s.lane <= keep]
        if not old or not rest:
            return None
        ox0, ox1 = min(s.x_mean for s in old), max(s.x_mean for s in old)
        rx0, rx1 = min(s.x_mean for s in rest), max(s.x_mean for s in rest)
        x0, x1, y0, y1 = grp.box
        if rx0 > ox1:  # walking east: the cut line half a lane east of the old part
            cut = ox1 + 0.5 * sp
            if not rx0 > cut:
                return None
            piece_box, rest_box = (x0, min(x1, cut), y0, y1), (max(x0, cut), x1, y0, y1)
        elif rx1 < ox0:
            cut = ox0 - 0.5 * sp
            if not rx1 < cut:
                return None
            piece_box, rest_box = (max(x0, cut), x1, y0, y1), (x0, min(x1, cut), y0, y1)
        else:  # lanes walked out of order: no clean line; left whole
            return None
        grp.segs, grp.box, grp.local = rest, rest_box, True
        return _Group(old, piece_box, context=list(rest), local=True, cut=True)

    def _tiles(self, grp: _Group) -> list[tuple[list[Segment], list[Segment],
                                               tuple[float, float, float, float],
                                               tuple[float, float, float, float] | None]]:
        """The signal ``grp`` as windows to fit: (core segments, context
        segments, where its sources may lie, the region its window may take
        data from or None for all of it), strongest core first.

        A signal larger than `LOCAL_SPLIT_M` (or a part of one, `_cut_behind`)
        is split into a grid of equal cells no larger than `LOCAL_TILE_M`. A
        cell's core is the segments that cross it (on a dense total-field
        survey the summed far fields of many bodies make segments tens of
        metres long, so a segment may cross several); its
        context, the signal's other segments within `LOCAL_MARGIN_M`. Its
        window takes the data within that margin (and the fit pads) of the
        cell and keeps only the sources inside the cell (beyond the signal's
        edge, anywhere): a source near a cell's edge is fitted with its
        neighbours' data in the window, and the neighbouring cell, fitted
        after, sees it subtracted. A signal within one cell is one window,
        as it always was.
        """
        segs = grp.segs
        lo_x, hi_x = min(s.x_mean for s in segs), max(s.x_mean for s in segs)
        lo_y, hi_y = min(s.y0 for s in segs), max(s.y1 for s in segs)
        nx = max(1, math.ceil((hi_x - lo_x) / LOCAL_TILE_M))
        ny = max(1, math.ceil((hi_y - lo_y) / LOCAL_TILE_M))
        if not grp.local and max(hi_x - lo_x, hi_y - lo_y) <= LOCAL_SPLIT_M:
            nx = ny = 1
        if nx == 1 and ny == 1:
            m = LOCAL_MARGIN_M
            ctx = [s for s in grp.context if lo_x - m <= s.x_mean <= hi_x + m
                   and s.y1 >= lo_y - m and s.y0 <= hi_y + m]
            return [(segs, ctx, grp.box, None)]
        ex = [lo_x + (hi_x - lo_x) * i / nx for i in range(nx + 1)]
        ey = [lo_y + (hi_y - lo_y) * j / ny for j in range(ny + 1)]
        bx0, bx1, by0, by1 = grp.box
        m = LOCAL_MARGIN_M
        out: list[tuple[list[Segment], list[Segment], tuple[float, float, float, float],
                        tuple[float, float, float, float] | None]] = []
        for i in range(nx):
            for j in range(ny):
                cx0, cx1, cy0, cy1 = ex[i], ex[i + 1], ey[j], ey[j + 1]
                core = [s for s in segs if cx0 <= s.x_mean <= cx1
                        and s.y1 >= cy0 and s.y0 <= cy1]
                if not core:
                    continue
                ids = {id(s) for s in core}
                ctx = [s for s in (*segs, *grp.context) if id(s) not in ids
                       and cx0 - m <= s.x_mean <= cx1 + m and s.y1 >= cy0 - m
                       and s.y0 <= cy1 + m]
                box = (cx0 if i > 0 else bx0, cx1 if i < nx - 1 else bx1,
                       cy0 if j > 0 else by0, cy1 if j < ny - 1 else by1)
                out.append((core, ctx, box, (cx0 - m, cx1 + m, cy0 - m, cy1 + m)))
        out.sort(key=lambda c: -max(abs(s.amplitude) for s in c[0]))
        return out

    def _prune(self, lane: int) -> None:
        keep_from = lane - 4
        if self._groups or self._pending:
            keep_from = min(keep_from,
                            min(min(g.lanes) for g in self._groups + self._pending) - 2)
        # Only lanes still holding samples are looked at (not every lane so far).
        for k in sorted(k for k in self._held if k < keep_from):
            self._held.discard(k)
            r = self.lanes[k]
            if not r.raw.size:
                continue
            empty, iempty = np.empty(0), np.empty(0, dtype=np.int64)
            # A new record (not replace(), 5x slower): holders of the old keep its data.
            self.lanes[k] = LaneRecord(
                lane=r.lane, gidx=iempty, x=empty, y=empty, t_ns=iempty, raw=empty, lev=empty,
                noise=r.noise, level=r.level, x_ref=r.x_ref, length_m=r.length_m,
                n_spikes=r.n_spikes)

    def _window(self, ext: tuple[float, float, float, float],
                pads: bool = True) -> tuple[np.ndarray, ...]:
        """The levelled samples within the fit pads of the extent ``ext`` (x0,
        x1, y0, y1; `_extent`; within ``ext`` itself if not ``pads``), with
        the fitted sources' fields taken out (`_minus_fitted`): x, y, values,
        lane numbers."""
        cfg = self.config
        px, py = (cfg.fit_pad_x_m, cfg.fit_pad_y_m) if pads else (0.0, 0.0)
        x0, x1 = ext[0] - px, ext[1] + px
        y0, y1 = ext[2] - py, ext[3] + py
        parts = []
        for rec in self.lanes.values():
            if rec.x.size == 0 or not (x0 <= rec.x_ref <= x1):
                continue
            sel = (rec.y >= y0) & (rec.y <= y1) & (rec.x >= x0) & (rec.x <= x1)
            if sel.any():
                parts.append((rec.x[sel], rec.y[sel], rec.lev[sel],
                              np.full(int(sel.sum()), rec.lane, dtype=np.int64)))
        if not parts:
            e = np.empty(0)
            return e, e, e, e.astype(np.int64)
        x, y, v, ln = (np.concatenate(c) for c in zip(*parts, strict=True))
        f = self._fitted
        if f.shape[0]:
            v = self._minus_fitted(x, y, v, (x0, x1, y0, y1))
        return x, y, v, ln

    def _owned_whole(self, fits: list[FitResult], kept: list[FitResult],
                     box: tuple[float, float, float, float],
                     ext: tuple[float, float, float, float]) -> list[FitResult]:
        """``kept`` (the sources of a cell's window ``fits`` inside its cell
        ``box``) without those that, seen whole, are not the cell's.

        A cell's window takes data only within its margin (its extent
        ``ext``, `_extent` clipped to the margin). A body just beyond the
        margin shows there only the near flank of its anomaly, and a source
        inside the cell can model that flank: a false pick, and the body
        itself then fitted beside it. A source whose anomaly (`OWN_VIEW_K` x
        (depth + sensor height) around it) reaches past the window's data,
        and a cheap estimate (the fit kept nothing there: what is left may
        be a neighbour's misfit), is refitted alone on all the samples
        within that reach, with the window's other sources and the sources
        fitted before taken out. It is the cell's if its position there is
        still in the cell and among those samples, and it pays there beyond
        what the sources taken out may misfit (the chi-square weighted by
        `_subtracted_sigma`, the bar of `_pay_beside_fitted`); otherwise the
        neighbouring cell, whose window holds the whole anomaly, owns it.
        """
        out = []
        h = self.geom.sensor_height_m
        others_of = [o for o in fits if o.method in FITTED]
        for f in kept:
            cheap = f.method == "cheap_estimate"
            if not (cheap or (f.method in FITTED and f.ends is None)):
                out.append(f)
                continue
            r = LOCAL_MARGIN_M if cheap else max(OWN_VIEW_K * (f.depth + h), 2.0)
            if not cheap and min(f.x - ext[0], ext[1] - f.x, f.y - ext[2], ext[3] - f.y) >= r:
                out.append(f)  # the window sees all of it
                continue
            x, y, v, _ = self._window((f.x - r, f.x + r, f.y - r, f.y + r), pads=False)
            near = np.hypot(x - f.x, y - f.y) < r
            n = int(near.sum())
            if n < 12:
                out.append(f)
                continue
            x, y, v = x[near], y[near], v[near]
            others = [o for o in others_of if o is not f]
            if others:
                v = v - sum(_fields(np.vstack([o.point_sources() for o in others]), x, y,
                                    self.geom), np.zeros(x.size))
            run = run_lm(np.array([f.x, f.y, max(f.depth, 0.3)]), x, y, v, self.geom)
            qx, qy = float(run.x[0]), float(run.x[1])
            G = np.hstack([design_matrix(x, y, qx, qy, float(run.x[2]), self.geom),
                           np.ones((n, 1))])
            r_with = v - G @ solve_linear(G, v)
            r_without = v - float(np.mean(v))
            sig = self._subtracted_sigma(x, y)
            noise = self.noise_nT if math.isfinite(self.noise_nT) else 1.0
            sig2 = noise * noise if sig is None else sig ** 2
            gain = penalised(chi2_drop(r_without, r_with, sig2, self._soil_like()), n, 6)
            seen = math.hypot(qx - f.x, qy - f.y) < r  # not walked off its own samples
            if (seen and box[0] <= qx <= box[1] and box[2] <= qy <= box[3]
                    and pays(gain, BESIDE_FITTED_GAIN)):
                out.append(f)
        return out

    def _minus_fitted(self, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                      box: tuple[float, float, float, float]) -> np.ndarray:
        """``v`` with the fields of the sources fitted so far taken out: those
        within `NEAR_SUBTRACT_M` of the window's ``box`` always, those up to `FAR_SUBTRACT_M`
        away together, if their summed field varies over the window by the
        threshold or more.

        A big bomb's field reaches far: 10 m from a 99 nT bomb 2 m deep it
        ramps by 4.2 nT over a window (threshold 1.6), cancels a weak
        projectile's negative lobe and leaves its positive one alone, and
        the fit sat on that lobe 2 m off. Flatter far
        fields are left in: on the overlap survey twenty big objects' sum
        varies by 1.6 nT over a bomblet's window (threshold 3.1), and taking
        it out, with the model error of twenty fits, lost two bomblets.
        """
        f = self._fitted
        near, reach = self._fitted_within(box, NEAR_SUBTRACT_M), self._fitted_within(
            box, FAR_SUBTRACT_M)
        if not reach.any():
            return v
        v = v.copy()
        for fk in _fields(f[near], x, y, self.geom):
            v -= fk
        far = sum(_fields(f[reach & ~near], x, y, self.geom), np.zeros(x.size))
        thr = self.threshold_nT
        if math.isfinite(thr) and float(np.ptp(far)) >= thr:
            v -= far
        return v

    def _fitted_within(self, box: tuple[float, float, float, float], r: float) -> np.ndarray:
        """Which sources fitted so far lie within ``r`` of ``box`` (x0, x1, y0, y1)."""
        f = self._fitted
        x0, x1, y0, y1 = box
        return ((f[:, 0] > x0 - r) & (f[:, 0] < x1 + r) & (f[:, 1] > y0 - r)
                & (f[:, 1] < y1 + r))

    def _subtracted_sigma(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Per-sample sigma of what the sources `_minus_fitted` always takes
        out of the window at (x, y) may misfit there: the noise,
        `FitConfig.pos_sigma_m` of position error on their field's slope, and
        `FitConfig.shape_rel` of that field (`fitcore.sigma_of`: `misfit_sigma`
        for moments already solved). None if no fitted source is that near."""
        if not self._fitted.shape[0]:
            return None
        near = self._fitted_within(
            (float(x.min()), float(x.max()), float(y.min()), float(y.max())), NEAR_SUBTRACT_M)
        if not near.any():
            return None
        rows, d = self._fitted[near], 0.02

        def field(px: np.ndarray, py: np.ndarray) -> np.ndarray:
            return sum(_fields(rows, px, py, self.geom), np.zeros(px.size))

        fx = (field(x + d, y) - field(x - d, y)) / (2 * d)
        fy = (field(x, y + d) - field(x, y - d)) / (2 * d)
        noise = self.noise_nT if math.isfinite(self.noise_nT) else 1.0
        fit = self.config.fit
        return sigma_of(field(x, y), fx * fx + fy * fy, noise, fit.pos_sigma_m, fit.shape_rel)

    def _pay_beside_fitted(self, fits: list[FitResult], x: np.ndarray, y: np.ndarray,
                           v: np.ndarray) -> list[FitResult]:
        """``fits`` without the sources that only model what the sources
        fitted earlier, and taken out of ``v``, may misfit.

        A window fitted after a wider one placed sources in it holds their
        misfit: a few nT on the steep slopes of a shallow bomblet, over the
        threshold on a sample or two. `fit_sources` places a first source in
        any window, and there it placed a 0.005 A m2 surface phantom 1.1 m
        from a bomb, on the bomblet's misfit. So each source
        must also pay `BESIDE_FITTED_GAIN` in the chi-square weighted by
        `_subtracted_sigma`, on its own 2 m. Far from earlier sources that
        sigma is the noise, and a real signal pays thousands.
        """
        good = [f for f in fits if f.method in FITTED]
        sig = self._subtracted_sigma(x, y) if good else None
        if sig is None:
            return fits
        preds = [sum(_fields(f.point_sources(), x, y, self.geom), np.zeros(x.size))
                 for f in good]
        res = v - sum(preds, np.zeros(x.size))
        robust = self._soil_like()
        drop = set()
        for f, pf in zip(good, preds, strict=True):
            loc = np.hypot(x - f.x, y - f.y) < 2.0
            n_l = int(loc.sum())
            if n_l <= 7:
                continue
            # Each with its own offset: the window's level is free in the fit.
            r_with = res[loc] - float(np.mean(res[loc]))
            r_without = res[loc] + pf[loc]
            r_without -= float(np.mean(r_without))
            gain = penalised(chi2_drop(r_without, r_with, sig[loc] ** 2, robust), n_l, 6)
            if not pays(gain, BESIDE_FITTED_GAIN):
                drop.add(id(f))
        return [f for f in fits if id(f) not in drop]

    def _soil_like(self) -> bool:
        """Background well above the sensor's white noise: magnetic ground."""
        cfg = self.config
        if not cfg.robust_fit or not self.lane_white:
            return False
        white = float(np.median(self.lane_white))
        bg = self.noise_nT
        return math.isfinite(bg) and bg > cfg.robust_ratio * white

    def _explained(self, segs: list[Segment], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                   ln: np.ndarray, thr: float) -> bool:
        """Every segment of the signal is gone once the sources already fitted
        nearby are subtracted: it was the tail of a neighbour's anomaly (detected
        as a separate signal on its own lanes), and that neighbour is the target.
        ``thr``: the threshold the signal is judged against (`_thr_for`)."""
        if not (math.isfinite(thr) and thr > 0 and self._fitted.shape[0] and x.size):
            return False
        for s in segs:
            on = (ln == s.lane) & (y >= s.y0) & (y <= s.y1)
            if not on.any() or float(np.max(np.abs(v[on]))) >= thr:
                return False
        return True

    def _fit_group(self, grp: _Group) -> list[Target]:
        out: list[Target] = []
        for core, ctx, box, clip in self._tiles(grp):
            self.stats.cell_windows += clip is not None
            out += self._fit_window(core, ctx, box, clip, cut=grp.cut)
        return out

    def _fit_window(self, core: list[Segment], ctx: list[Segment],
                    box: tuple[float, float, float, float],
                    clip: tuple[float, float, float, float] | None = None,
                    cut: bool = False) -> list[Target]:
        """Fit the window of the segments ``core`` (with ``ctx``, context from
        the same signal, and data only within ``clip``: `_tiles`); the
        targets of its sources inside ``box``. ``cut``: the window is (part
        of) what `_cut_behind` cut off (for the trace)."""
        cfg = self.config
        segs = core + ctx
        st = self.stats
        st.largest_window_segments = max(st.largest_window_segments, len(segs))
        ext = _extent(segs, clip)
        st.largest_window_m = max(st.largest_window_m, ext[1] - ext[0], ext[3] - ext[2])
        x, y, v, ln = self._window(ext, pads=clip is None or cfg.cell_pads)
        wt = None
        if self.trace is not None:
            wt = WindowTrace(ext, box, tuple(core), tuple(ctx), int(x.size))
            if clip is not None:
                wt.judgements.append(Judgement("cells", "LanePipeline._tiles"))
            if cut:
                wt.judgements.append(Judgement("cut", "LanePipeline._cut_behind"))
            self.trace.windows.append(wt)
        # A signal only the low-pass pass found is judged against its threshold.
        lowpass = all(s.lowpass for s in core)
        thr_w = self._thr_for(lowpass)
        if wt is not None and lowpass:
            wt.judgements.append(Judgement("lowpass", "LanePipeline._lowpass_pass"))
        if self._explained(core, x, y, v, ln, thr_w):
            self.stats.explained_signals += 1
            if wt is not None:
                wt.judgements.append(Judgement("explained", "LanePipeline._explained"))
            return []
        sigma = self.noise_nT
        if not math.isfinite(sigma):
            sigma = 1.0
        peak = max(core, key=lambda s: abs(s.amplitude))
        pad = cfg.footprint_pad_m
        footprint = (ext[0] - pad, ext[1] + pad, ext[2] - pad, ext[3] + pad)
        fits: list[FitResult]
        broad = len(segs) >= cfg.residual_search_segments
        if cfg.locator == "euler":
            fits = euler_sources(x, y, v, self.geom) if x.size else []
        else:
            if wt is not None:
                wt.fit = FitTrace()
            fits = fit_sources(
                x, y, v, self.geom, sigma, lanes=ln, trace=None if wt is None else wt.fit,
                # A cluster spanning many lanes (broad total-field anomalies of
                # several bombs) may hold more objects than the default allows.
                footprint=footprint,
                max_sources=max(cfg.max_sources, len(segs) // 2),
                max_hints=max(cfg.fit.max_hints, len(segs)),
                hints=[(s.x, s.y) for s in sorted(segs, key=lambda s: -abs(s.amplitude))],
                min_samples=cfg.min_fit_samples, robust=self._soil_like(),
                survey_sigma=SurveySigma(cfg.position_sigma_m, cfg.height_sigma_m,
                                         cfg.depth_rel_sigma),
                max_residual_rounds=cfg.fit.max_residual_rounds if broad else 0, joint=broad,
                elongate=cfg.line_sources, config=cfg.fit,
                thr=thr_w if math.isfinite(thr_w) else 0.0)
        if wt is not None:
            self._trace_fit(wt, fits)
        if lowpass and cfg.locator != "euler":
            # The pass sees anomalies wider than its window; a source shallower
            # than half of it makes a narrower one that the mean flattens: not
            # what was detected, but a soil peak riding on it.
            deep = [f for f in fits if f.depth >= LOWPASS_DEPTH_SHARE * cfg.lowpass_m]
            if wt is not None:
                wt.judgements += [Judgement("lowpass_shallow", "LanePipeline._fit_window",
                                            (f.x, f.y)) for f in fits
                                  if not any(f is k for k in deep)]
            if not deep:
                self.stats.explained_signals += 1
                return []
            fits = deep
        if fits:
            # Sources among the context, or behind a cut line, belong to the
            # neighbouring core (`_tiles`, `_cut_behind`).
            x0, x1, y0, y1 = box
            kept = [f for f in fits if x0 <= f.x <= x1 and y0 <= f.y <= y1]
            if wt is not None:
                rule = "LanePipeline._tiles" if clip is not None else "LanePipeline._cut_behind"
                wt.judgements += [Judgement("outside_box", rule, (f.x, f.y))
                                  for f in fits if not any(f is k for k in kept)]
            if clip is not None and kept:
                owned = self._owned_whole(fits, kept, box, ext)
                if wt is not None:
                    wt.judgements += [Judgement("not_owned", "LanePipeline._owned_whole",
                                                (f.x, f.y))
                                      for f in kept if not any(f is k for k in owned)]
                kept = owned
            if not kept:
                return []
            fits = kept
        if not fits:  # only for an empty window; still report the signal
            fits = [FitResult(x=peak.x, y=peak.y, depth=0.5, moment=(0.0, 0.0, 0.0), quality=0.05,
                              flags=("few_samples", "cheap_estimate"), method="cheap_estimate")]
        if cfg.locator != "euler" and x.size:
            paid = self._pay_beside_fitted(fits, x, y, v)
            if wt is not None:
                wt.judgements += [Judgement("paid_beside_fitted",
                                            "LanePipeline._pay_beside_fitted", (f.x, f.y))
                                  for f in fits if not any(f is k for k in paid)]
            fits = paid
            if not fits:  # the earlier targets' misfit, nothing more
                self.stats.explained_signals += 1
                return []
        rec = self.lanes.get(peak.lane)
        t_ns = int(rec.t_ns[peak.peak]) if rec is not None and rec.t_ns.size > peak.peak else 0
        lanes = tuple(sorted({s.lane for s in core}))
        out = []
        earlier = [t for t in self._sent.values() if t.method in FITTED]
        good = [f for f in fits if f.method in (*FITTED, "euler")]
        if good:
            self._fitted = np.vstack([self._fitted, *(f.point_sources() for f in good)])
        for f in fits:
            amp = peak.amplitude
            if f.method in FITTED and len(fits) > 1 and x.size:
                pred = np.asarray(sum(_fields(f.point_sources(), x, y, self.geom)))
                amp = float(pred[int(np.argmax(np.abs(pred)))])
            t = Target(
                stream_id=self.stream_id, target_id=self._next_target, x=f.x, y=f.y,
                depth=f.depth, moment=f.moment, quality=round(float(f.quality), 4),
                sigma_x=f.sigma_x, sigma_y=f.sigma_y, sigma_depth=f.sigma_depth,
                amplitude_nT=float(amp), lanes=lanes, flags=f.flags, method=f.method,
                t_ns=t_ns, length_m=f.extra.get("length_m"),
                azimuth_deg=f.extra.get("azimuth_deg"),
                plunge_deg=f.extra.get("plunge_deg"))
            if f.method == "cheap_estimate":
                self._cheap[t.target_id] = [self._segment_stretch(s) for s in core
                                            if s.lane in self.lanes]
            same = (same_object(t, earlier, cfg.same_object_m)
                    if f.method in FITTED else None)
            if same is not None:
                # A wide window's fit placed a source here first (with part of
                # this anomaly); this window fitted the rest, with that source's
                # field subtracted. One object: a revision, not a second target.
                t = merge_targets(same, t)
                self.stats.merged_refits += 1
            else:
                self._next_target += 1
            if lowpass:
                # Told apart: its amplitude is the low-passed lane's, under the
                # survey's (raw) threshold by design.
                self._lowpass_ids.add(t.target_id)
                if "lowpass" not in t.flags:
                    t = replace(t, flags=(*t.flags, "lowpass"))
            self._sent[t.target_id] = t
            out.append(t)
        if wt is not None:
            wt.reported += [(t.x, t.y, t.depth, t.method) for t in out]
        return out

    @staticmethod
    def _trace_fit(wt: WindowTrace, fits: list[FitResult]) -> None:
        """Into ``wt``: the sources the fit gave, and each one a named rule of
        the fit dropped (from the fit's `FitTrace`)."""
        wt.sources += [(f.x, f.y, f.depth, f.method) for f in fits]
        for rec in wt.fit.stages if wt.fit is not None else ():
            for src, rule in rec.dropped:
                c = centre_point(np.asarray(src))
                wt.judgements.append(Judgement("dropped", rule, (float(c[0]), float(c[1]))))
