"""`LaneConfig`, the lane pipeline's settings, with their allowed ranges, and
the configuration a soil calibration gives (docs/dsp.md describes each)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from acquisition.dsp.calibration import SoilCalibration
from acquisition.dsp.fitconfig import FitConfig
from acquisition.errors import SettingError
from acquisition.validate import Range, check, check_optional, non_negative, positive

#: The budget from the sensor passing a signal to the anomaly event.
LIVE_FEEDBACK_S = 0.5


@dataclass(frozen=True, slots=True)
class LaneConfig:
    """Tunable settings of the lane pipeline (defaults suit 1 m lanes at ~1 m/s, 10 Hz)."""

    lane_spacing_m: float = 1.0
    #: Detection threshold on finished lanes, in robust noise sigmas.
    detect_k: float = 5.0
    #: Live (operator feedback) threshold, in noise sigmas.
    live_k: float = 6.0
    #: Longest wait between the first sample over threshold and the anomaly event.
    #: The operator hears of a signal within `LIVE_FEEDBACK_S` of passing it: this
    #: wait, the driver's block cut (``max_block_s``, 0.05 s) and the service's
    #: own work (up to 0.06 s measured) share that (bench/bench_live_latency.py).
    live_max_delay_s: float = 0.3
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
    #: the search for weak sources on the fit residual (the fit stage `residual_search`).
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
    #: Refit strong sources as line sources (elongated bodies) where that pays.
    line_sources: bool = True
    #: Constants and stage switches of the source fit (`FitConfig`); the
    #: settings above that are also fit settings (``max_sources``,
    #: ``min_fit_samples``, ``line_sources``, ...) and the per-window calls
    #: (broad cluster, magnetic ground) override it.
    fit: FitConfig = field(default_factory=FitConfig)
    #: On magnetic ground with no soil calibration: raise the threshold to the
    #: level soil peaks exceed at this rate (per 1000 m^2), extrapolated from
    #: the survey's own peak statistics (`clutter_threshold`); not every soil
    #: peak that passes becomes a target (fits on soil fail the pair rules,
    #: neighbouring peaks join one signal). 0 = off.
    clutter_rate_per_1000m2: float = 4.0
    #: A fit this close (m) to a target an earlier signal's fit already sent is
    #: that target again: sent as its next revision (`merge_targets`).
    same_object_m: float = 0.5
    #: What the survey cannot know, added to every reported 1-sigma
    #: (`fit.SurveySigma`): horizontal position per axis (m; lower it for RTK
    #: GNSS), sensor height (m), depth model error per metre of depth.
    position_sigma_m: float = 0.05
    height_sigma_m: float = 0.04
    depth_rel_sigma: float = 0.035
    #: A cell's window (`_tiles`) also takes the fit pads beyond its margin
    #: (off: its data end at the margin, and a source whose anomaly reaches
    #: past them is judged on all the samples around it, `_owned_whole`).
    cell_pads: bool = False
    #: Second detection pass on each lane low-passed by a running mean this
    #: long (m), with its own threshold from the low-passed lanes' background,
    #: on magnetic ground only (background over `robust_ratio` x the white
    #: noise). Soil clutter is short-wave; a body deep enough for the soil's
    #: peaks to hide it (2-5 m) gives an anomaly wider than 2 m, which keeps
    #: most of its peak through the mean. 0 = off.
    lowpass_m: float = 2.0

    def __post_init__(self) -> None:
        # A mistyped setting must be refused here, in the library, for every
        # caller: a threshold of 0 or a detect_k of 50 gives a quiet all-clear.
        for name, allowed in _LANE_RANGES.items():
            check(name, getattr(self, name), allowed)
        for name in ("noise_nT", "threshold_nT"):
            check_optional(name, getattr(self, name), _NT_RANGE)
        if self.locator not in ("dipole", "euler"):
            raise SettingError(f"locator = {self.locator!r} is not known "
                               "(allowed: 'dipole', 'euler')")


#: Noise and thresholds: above 0, below the Earth's whole field (nT).
_NT_RANGE = positive(1e5)
#: Allowed values of `LaneConfig`'s numeric settings (docs/dsp.md describes them).
_LANE_RANGES: dict[str, Range] = {
    "lane_spacing_m": positive(50.0),
    "detect_k": Range(1.0, 30.0),
    "live_k": Range(1.0, 30.0),
    "live_max_delay_s": non_negative(60.0),
    "min_threshold_nT": non_negative(1e5),
    "merge_gap_m": non_negative(100.0),
    "group_tol_m": non_negative(100.0),
    "fit_pad_x_m": positive(100.0),
    "fit_pad_y_m": positive(100.0),
    "drift_window_m": non_negative(),
    "max_sources": Range(1, 1000, integer=True),
    "min_fit_samples": Range(1, None, integer=True),
    "residual_search_segments": Range(1, None, integer=True),
    "interact_m": non_negative(100.0),
    "footprint_pad_m": non_negative(100.0),
    "robust_ratio": positive(),
    "turn_tol_m": positive(100.0),
    "clutter_rate_per_1000m2": non_negative(),
    "same_object_m": non_negative(100.0),
    "position_sigma_m": non_negative(100.0),
    "height_sigma_m": non_negative(100.0),
    "depth_rel_sigma": non_negative(10.0),
    "lowpass_m": non_negative(20.0),
}


def config_from_calibration(cal: SoilCalibration, **overrides: object) -> LaneConfig:
    """A `LaneConfig` whose noise and threshold come from a soil calibration."""
    kw: dict[str, object] = {"noise_nT": cal.background_nT, "threshold_nT": cal.threshold_nT,
                             "detect_k": cal.detect_k}
    kw.update(overrides)
    return replace(LaneConfig(), **kw)  # type: ignore[arg-type]
