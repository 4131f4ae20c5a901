"""Soil calibration: measure the site's background before a survey, set the threshold.

The national procedure asks teams to measure the soil's magnetisation and set
the detector for it before surveying (lateritic soils of central Vietnam are
magnetic and mask targets). Here the operator walks a stretch of clean ground
(no known signals); from it we take

- the level (median reading),
- the sensor's white noise (second differences, `diff_noise`),
- the background: the robust spread of the levelled readings, which includes
  what the soil itself does,
- the detection threshold: ``detect_k`` × background, raised if the soil's
  distribution has heavier tails than a Gaussian (the 99.9th percentile of
  |reading − level| × 1.2), so that the clean stretch itself would raise
  almost no signal.

The result is stored with the survey (`to_metadata`, the ``soil_*`` keys that
`uxo process` and `LaneConfig.from_calibration` read back).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from acquisition.dsp.levelling import diff_noise, mad_sigma
from acquisition.errors import UxoValueError


class CalibrationError(UxoValueError):
    """Too little data to calibrate on."""


@dataclass(frozen=True, slots=True)
class SoilCalibration:
    level_nT: float
    white_noise_nT: float
    background_nT: float
    threshold_nT: float
    detect_k: float
    n_samples: int
    tail_nT: float

    def to_metadata(self) -> dict[str, float]:
        """Survey metadata keys (docs/formats.md style ``# key: value``)."""
        return {
            "soil_level_nT": round(self.level_nT, 4),
            "soil_white_noise_nT": round(self.white_noise_nT, 4),
            "soil_noise_nT": round(self.background_nT, 4),
            "soil_threshold_nT": round(self.threshold_nT, 4),
            "soil_detect_k": self.detect_k,
            "soil_samples": self.n_samples,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate_soil(values: np.ndarray, *, detect_k: float = 5.0,
                   min_samples: int = 50) -> SoilCalibration:
    """Calibrate on readings (nT) from a clean stretch of the site (one or more lanes)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < min_samples:
        raise CalibrationError(f"soil calibration needs at least {min_samples} readings "
                               f"of clean ground, got {v.size}")
    level = float(np.median(v))
    dev = v - level
    white = diff_noise(v)
    background = max(white, mad_sigma(dev))
    tail = float(np.percentile(np.abs(dev), 99.9))
    threshold = max(detect_k * background, 1.2 * tail)
    return SoilCalibration(level_nT=level, white_noise_nT=white, background_nT=background,
                           threshold_nT=threshold, detect_k=float(detect_k),
                           n_samples=int(v.size), tail_nT=tail)
