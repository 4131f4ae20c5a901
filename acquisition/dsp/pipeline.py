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
chunking gives the same events as processing whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import median_filter

from acquisition.dsp.calibration import SoilCalibration
from acquisition.dsp.detect import LiveDetector, Segment, find_segments
from acquisition.dsp.dipole import SensorGeometry, design_matrix
from acquisition.dsp.fit import FitResult, euler_sources, fit_sources
from acquisition.dsp.levelling import despike, diff_noise, level_lane, mad_sigma
from acquisition.dsp.segment import LaneSegmenter
from acquisition.events import Anomaly, Target
from acquisition.geomag import EarthField
from acquisition.types import SampleBlock, StreamDescriptor


@dataclass(frozen=True, slots=True)
class LaneConfig:
    """Tunable settings of the lane pipeline (defaults suit 1 m lanes at ~1 m/s, 10 Hz)."""

    lane_spacing_m: float = 1.0
    #: Detection threshold on finished lanes, in robust noise sigmas.
    detect_k: float = 5.0
    #: Live (operator feedback) threshold, in noise sigmas.
    live_k: float = 6.0
    #: Longest wait between the first sample over threshold and the anomaly event.
    live_max_delay_s: float = 0.4
    #: Fixed noise sigma (nT), e.g. from a soil calibration; None = estimate per lane.
    noise_nT: float | None = None
    #: Fixed detection threshold (nT), e.g. from a soil calibration; overrides detect_k.
    threshold_nT: float | None = None
    #: Floor for any threshold (nT).
    min_threshold_nT: float = 0.0
    #: Runs on one lane closer than this (m) are one segment (lobes of one anomaly).
    merge_gap_m: float = 1.0
    #: Segments on adjacent lanes whose along-lane extents come this close join.
    group_tol_m: float = 0.75
    #: Fit window around a signal's extent, across and along lanes (m).
    fit_pad_x_m: float = 1.6
    fit_pad_y_m: float = 2.0
    despike: bool = True
    #: Running-median drift removal window along a lane (m); 0 = constant level.
    drift_window_m: float = 0.0
    max_sources: int = 10
    #: "dipole" (the product) or "euler" (the plain baseline, for benchmarks).
    locator: str = "dipole"
    min_fit_samples: int = 12
    #: Signals made of at least this many lane segments (broad clusters) get
    #: the search for weak sources on the fit residual (`fit_sources` step 3).
    residual_search_segments: int = 6
    #: A closed signal waits while an open one lies within this distance (m).
    interact_m: float = 2.0
    #: A fitted source must lie within the signal's detected extent plus this (m).
    footprint_pad_m: float = 1.0
    #: Huber-reweighted final refit (down-weights soil spikes) wherever the
    #: background exceeds `robust_ratio` x the white noise (magnetic soil).
    robust_fit: bool = True
    robust_ratio: float = 1.5
    #: Samples farther than this across from a lane's median x are turn samples (ignored).
    turn_tol_m: float = 0.3


def config_from_calibration(cal: SoilCalibration, **overrides: object) -> LaneConfig:
    """A `LaneConfig` whose noise and threshold come from a soil calibration."""
    kw: dict[str, object] = {"noise_nT": cal.background_nT, "threshold_nT": cal.threshold_nT,
                             "detect_k": cal.detect_k}
    kw.update(overrides)
    return replace(LaneConfig(), **kw)  # type: ignore[arg-type]


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


@dataclass(slots=True)
class _Group:
    segs: list[Segment] = field(default_factory=list)

    @property
    def lanes(self) -> set[int]:
        return {s.lane for s in self.segs}


class _Buf:
    """Growable column store for the lane being walked."""

    NAMES = ("x", "y", "v", "t", "g")

    def __init__(self) -> None:
        self.n = 0
        self.cols = {k: np.empty(256, dtype=np.int64 if k in "tg" else np.float64)
                     for k in self.NAMES}

    def append(self, **kw: np.ndarray) -> None:
        m = len(kw["x"])
        if self.n + m > self.cols["x"].size:
            size = max(self.n + m, 2 * self.cols["x"].size)
            for k, a in self.cols.items():
                b = np.empty(size, dtype=a.dtype)
                b[:self.n] = a[:self.n]
                self.cols[k] = b
        for k in self.NAMES:
            self.cols[k][self.n:self.n + m] = kw[k]
        self.n += m

    def get(self, k: str) -> np.ndarray:
        return self.cols[k][:self.n]


@dataclass(slots=True)
class PipelineStats:
    samples: int = 0
    rejected_samples: int = 0
    blocks_without_positions: int = 0
    lanes: int = 0
    spikes: int = 0
    area_m2: float = 0.0


def _end_turns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leading/trailing samples reached by a mostly sideways step (the turn)."""
    side = np.abs(np.diff(x)) > np.abs(np.diff(y))
    out = np.zeros(x.size, dtype=bool)
    k = 0
    while k < side.size and side[k]:
        out[k] = True  # the sample before a sideways step is still in the turn
        k += 1
    if k:
        out[k] = True
    k = side.size - 1
    while k >= 0 and side[k]:
        out[k + 1] = True
        k -= 1
    if k < side.size - 1:
        out[k + 1] = True
    return out


def _near(a: _Group, b: _Group, reach: float) -> bool:
    ax0, ax1 = min(s.x_mean for s in a.segs), max(s.x_mean for s in a.segs)
    bx0, bx1 = min(s.x_mean for s in b.segs), max(s.x_mean for s in b.segs)
    ay0, ay1 = min(s.y0 for s in a.segs), max(s.y1 for s in a.segs)
    by0, by1 = min(s.y0 for s in b.segs), max(s.y1 for s in b.segs)
    return ax0 - reach <= bx1 and bx0 - reach <= ax1 and ay0 - reach <= by1 and by0 - reach <= ay1


class LanePipeline:
    """Stateful lane-survey processor; see the module docstring."""

    def __init__(self, descriptor: StreamDescriptor, field: EarthField,
                 config: LaneConfig | None = None) -> None:
        self.descriptor = descriptor
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
        self.stats = PipelineStats()
        self._cur_lane: int | None = None
        self._buf = _Buf()
        self._levels: dict[int, float] = {}
        self._groups: list[_Group] = []
        self._pending: list[_Group] = []
        #: Fitted sources so far (x, y, depth, mx, my, mz), subtracted from neighbours' windows.
        self._fitted = np.empty((0, 6))
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
        return float(np.percentile(self.lane_noise, 30)) if self.lane_noise else math.nan

    @property
    def threshold_nT(self) -> float:
        cfg = self.config
        if cfg.threshold_nT is not None:
            return float(cfg.threshold_nT)
        s = self.noise_nT
        if not math.isfinite(s):
            return math.nan
        # No tail guard here: in a survey full of targets, the tails are the
        # targets. Heavy-tailed (magnetic) soil is handled by the soil
        # calibration on clean ground (`acquisition.dsp.calibration`).
        return max(cfg.detect_k * s, cfg.min_threshold_nT)

    def process(self, block: SampleBlock) -> list[Anomaly | Target]:
        """Feed one block; return the events it caused (anomalies and targets)."""
        if block.positions is None:
            self.stats.blocks_without_positions += 1
            self.stats.rejected_samples += block.n
            return []
        v = np.asarray(block.data[:, 0], dtype=np.float64)
        pos = np.asarray(block.positions, dtype=np.float64)
        t = block.times_ns()
        g = block.first_index + np.arange(block.n, dtype=np.int64)
        ok = np.isfinite(v) & np.isfinite(pos[:, 0]) & np.isfinite(pos[:, 1])
        if not ok.all():
            self.stats.rejected_samples += int((~ok).sum())
            v, pos, t, g = v[ok], pos[ok], t[ok], g[ok]
        return self._ingest(pos[:, 0], pos[:, 1], v, t, g)

    def finish(self) -> list[Anomaly | Target]:
        """End of survey: finish the last lane and fit every open signal."""
        if self._finished:
            return []
        self._finished = True
        events: list[Anomaly | Target] = []
        if self._cur_lane is not None and self._buf.n:
            events += self._finish_lane()
        self._pending += self._groups
        self._groups = []
        events += self._fit_ready(final=True)
        return events

    # --------------------------------------------------------------- internal
    def _ingest(self, x: np.ndarray, y: np.ndarray, v: np.ndarray, t: np.ndarray,
                g: np.ndarray, lanes: np.ndarray | None = None) -> list[Anomaly | Target]:
        n = len(v)
        if n == 0:
            return []
        if self._finished:
            raise RuntimeError("pipeline already finished")
        lane_ids = self.segmenter.assign(x, y) if lanes is None else np.asarray(lanes)
        self.stats.samples += n
        events: list[Anomaly | Target] = []
        cuts = np.flatnonzero(np.diff(lane_ids)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [n]))
        for a, b in zip(starts, ends, strict=True):
            lane = int(lane_ids[a])
            if lane != self._cur_lane:
                if self._cur_lane is not None and self._buf.n:
                    events += self._finish_lane()
                self._start_lane(lane)
            base = self._buf.n
            self._buf.append(x=x[a:b], y=y[a:b], v=v[a:b], t=t[a:b], g=g[a:b])
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
        return events

    def _start_lane(self, lane: int) -> None:
        self._cur_lane = lane
        self._buf = _Buf()
        prior = self._levels.get(lane - 2, self._levels.get(lane - 1))
        self.live.start_lane(prior)

    def _finish_lane(self) -> list[Target]:
        cfg = self.config
        lane = int(self._cur_lane)  # type: ignore[arg-type]
        x, y, raw = self._buf.get("x").copy(), self._buf.get("y").copy(), self._buf.get("v").copy()
        t, g = self._buf.get("t").copy(), self._buf.get("g").copy()
        self._buf = _Buf()
        self._cur_lane = None
        if raw.size >= 3:
            # Drop turn samples (side-steps at lane ends): off the lane's line they
            # carry heading error and would make false signals at every lane end.
            on = np.abs(x - np.median(x)) <= cfg.turn_tol_m
            on &= ~_end_turns(x, y)
            if on.sum() >= 3 and not on.all():
                x, y, raw, t, g = x[on], y[on], raw[on], t[on], g[on]
        white = diff_noise(raw)
        v, spikes = (despike(raw, white) if cfg.despike
                     else (raw, np.zeros(raw.size, dtype=bool)))
        sigma = self.noise_nT
        if not math.isfinite(sigma):
            sigma = white
        step = float(np.median(np.hypot(np.diff(x), np.diff(y)))) if raw.size > 2 else 0.1
        step = step if step > 1e-3 else 0.1
        drift = round(cfg.drift_window_m / step) if cfg.drift_window_m > 0 else 0
        lev, base = level_lane(v, max(sigma, white), drift_window=drift)
        # Background = sensor noise plus what the ground itself does (lateritic
        # soil is spatially correlated and escapes a difference-based estimate):
        # the robust spread of the levelled lane, never below the white noise.
        # High-passed first (minus a 5 m running median): broad anomalies of deep
        # objects and residual drift must not pass for background.
        win = max(3, min(lev.size, round(5.0 / step)) | 1)
        hp = lev - median_filter(lev, size=win, mode="nearest") if lev.size >= 3 else lev
        noise_lane = max(white, mad_sigma(hp))
        if cfg.noise_nT is None and raw.size >= 10:
            self.lane_noise.append(noise_lane)
        if raw.size >= 10:
            self.lane_white.append(white)
        level = float(np.median(base)) if base.size else 0.0
        self._levels[lane] = level
        length = float(np.ptp(y)) if y.size else 0.0
        rec = LaneRecord(lane=lane, gidx=g, x=x, y=y, t_ns=t, raw=raw, lev=lev, noise=noise_lane,
                         level=level, x_ref=float(np.median(x)) if x.size else math.nan,
                         length_m=length, n_spikes=int(spikes.sum()))
        self.lanes[lane] = rec
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
        touched = self._group_segments(segs)
        self._pending += [g for g in self._groups if id(g) not in touched]
        self._groups = [g for g in self._groups if id(g) in touched]
        events = self._fit_ready(final=False)
        self._prune(lane)
        return events

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
        ready.sort(key=lambda g: -max(abs(s.amplitude) for s in g.segs))
        events: list[Target] = []
        for g in ready:
            events += self._fit_group(g)
        return events

    def _group_segments(self, segs: list[Segment]) -> set[int]:
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
                    self._groups.remove(other)
            touched.add(id(grp))
        return touched

    def _prune(self, lane: int) -> None:
        keep_from = lane - 4
        if self._groups or self._pending:
            keep_from = min(keep_from,
                            min(min(g.lanes) for g in self._groups + self._pending) - 2)
        for k in [k for k in self.lanes if k < keep_from and self.lanes[k].raw.size]:
            r = self.lanes[k]
            empty = np.empty(0)
            self.lanes[k] = replace(r, gidx=empty.astype(np.int64), x=empty, y=empty,
                                    t_ns=empty.astype(np.int64), raw=empty, lev=empty)

    def _window(self, grp: _Group) -> tuple[np.ndarray, ...]:
        cfg = self.config
        xs = [s.x_mean for s in grp.segs]
        y0 = min(s.y0 for s in grp.segs) - cfg.fit_pad_y_m
        y1 = max(s.y1 for s in grp.segs) + cfg.fit_pad_y_m
        x0, x1 = min(xs) - cfg.fit_pad_x_m, max(xs) + cfg.fit_pad_x_m
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
            near = ((f[:, 0] > x0 - 4) & (f[:, 0] < x1 + 4) & (f[:, 1] > y0 - 4)
                    & (f[:, 1] < y1 + 4))
            if near.any():
                v = v.copy()
                for sx, sy, sd, mx, my, mz in f[near]:
                    v -= design_matrix(x, y, sx, sy, sd, self.geom) @ np.array([mx, my, mz])
        return x, y, v, ln

    def _soil_like(self) -> bool:
        """Background well above the sensor's white noise: magnetic ground."""
        cfg = self.config
        if not cfg.robust_fit or not self.lane_white:
            return False
        white = float(np.median(self.lane_white))
        bg = self.noise_nT
        return math.isfinite(bg) and bg > cfg.robust_ratio * white

    def _fit_group(self, grp: _Group) -> list[Target]:
        cfg = self.config
        x, y, v, ln = self._window(grp)
        sigma = self.noise_nT
        if not math.isfinite(sigma):
            sigma = 1.0
        peak = max(grp.segs, key=lambda s: abs(s.amplitude))
        pad = cfg.footprint_pad_m
        footprint = (min(s.x_mean for s in grp.segs) - pad, max(s.x_mean for s in grp.segs) + pad,
                     min(s.y0 for s in grp.segs) - pad, max(s.y1 for s in grp.segs) + pad)
        fits: list[FitResult]
        if cfg.locator == "euler":
            fits = euler_sources(x, y, v, self.geom) if x.size else []
        else:
            fits = fit_sources(
                x, y, v, self.geom, sigma, lanes=ln,
                # A cluster spanning many lanes (broad total-field anomalies of
                # several bombs) may hold more objects than the default allows.
                footprint=footprint,
                max_sources=max(cfg.max_sources, len(grp.segs) // 2),
                max_hints=max(12, len(grp.segs)),
                hints=[(s.x, s.y) for s in sorted(grp.segs, key=lambda s: -abs(s.amplitude))],
                min_samples=cfg.min_fit_samples, robust=self._soil_like(),
                max_residual_rounds=3 if len(grp.segs) >= cfg.residual_search_segments else 0,
                thr=self.threshold_nT if math.isfinite(self.threshold_nT) else 0.0)
        if not fits:  # only for an empty window; still report the signal
            fits = [FitResult(x=peak.x, y=peak.y, depth=0.5, moment=(0.0, 0.0, 0.0), quality=0.05,
                              flags=("few_samples", "cheap_estimate"), method="cheap_estimate")]
        rec = self.lanes.get(peak.lane)
        t_ns = int(rec.t_ns[peak.peak]) if rec is not None and rec.t_ns.size > peak.peak else 0
        lanes = tuple(sorted(grp.lanes))
        out = []
        good = [f for f in fits if f.method in ("dipole_fit", "euler")]
        if good:
            self._fitted = np.vstack((self._fitted, [[f.x, f.y, f.depth, *f.moment] for f in good]))
        for f in fits:
            amp = peak.amplitude
            if f.method == "dipole_fit" and len(fits) > 1 and x.size:
                pred = design_matrix(x, y, f.x, f.y, f.depth, self.geom) @ np.array(f.moment)
                amp = float(pred[int(np.argmax(np.abs(pred)))])
            out.append(Target(
                stream_id=self.stream_id, target_id=self._next_target, x=f.x, y=f.y,
                depth=f.depth, moment=f.moment, quality=round(float(f.quality), 4),
                sigma_x=f.sigma_x, sigma_y=f.sigma_y, sigma_depth=f.sigma_depth,
                amplitude_nT=float(amp), lanes=lanes, flags=f.flags, method=f.method,
                t_ns=t_ns))
            self._next_target += 1
        return out
