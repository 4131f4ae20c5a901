"""Locate signals: cheap estimates, then a staged point- and line-source fit.

The reading is linear in the moment, so the fit is separable (variable
projection): the optimiser moves only the positions of the sources and, for
every trial position, the moments and a constant offset are solved by linear
least squares. That makes the fit fast and free of moment seeds.

`fit_sources` runs the stages of `acquisition.dsp.fitstages` in order on one
window: a single source, more sources where the residual still holds a
signal (greedy, lane peaks, a ring beside small bodies, the residual's
maxima), refits, line sources for elongated bodies, named drop rules, and
the report with 1-sigma uncertainties (`acquisition.dsp.fitresult`). Their
constants and switches are one `FitConfig`; whether a further source pays is
one criterion (`acquisition.dsp.acceptance`); the pair rules are physics
constraints (`acquisition.dsp.plausibility`). `docs/dsp.md`, "Stages of the
fit", lists them.
"""

from __future__ import annotations

import numpy as np

from acquisition.dsp.addsources import residual_peaks
from acquisition.dsp.droprules import BOMB_MOMENT
from acquisition.dsp.euler import euler_locate
from acquisition.dsp.fitconfig import FitConfig, config_from
from acquisition.dsp.fitcore import design_points, solve_linear
from acquisition.dsp.fitresult import (
    FitResult,
    SurveySigma,
    cheap_estimate,
    cheap_result,
    full_jacobian,
)
from acquisition.dsp.fitstages import run_stages
from acquisition.dsp.fitstate import FitState, FitTrace
from acquisition.forward import SensorGeometry

__all__ = ["BOMB_MOMENT", "FitConfig", "FitResult", "FitTrace", "SurveySigma", "cheap_estimate",
           "euler_sources", "fit_sources", "full_jacobian", "residual_peaks"]


def fit_sources(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
                noise: float, *, max_sources: int | None = None,
                min_samples: int | None = None, edge_margin: float | None = None,
                thr: float = 0.0, rel_misfit: float | None = None,
                min_sep_m: float | None = None, close_m: float | None = None,
                pair_ratio: float | None = None,
                hints: list[tuple[float, float]] | None = None, max_hints: int | None = None,
                footprint: tuple[float, float, float, float] | None = None,
                max_residual_rounds: int | None = None, residual_budget: int | None = None,
                polish: bool | None = None, robust: bool | None = None,
                bic_gain: float | None = None, lanes: np.ndarray | None = None,
                elongate: bool | None = None, joint: bool | None = None,
                survey_sigma: SurveySigma | None = None, config: FitConfig | None = None,
                trace: FitTrace | None = None) -> list[FitResult]:
    """Fit as many sources as the data ask for (up to ``max_sources``).

    Settings come from ``config`` (the defaults if None); each keyword given
    (not None) overrides its `FitConfig` field (``polish``: `polish_weak`;
    ``elongate=False`` switches the line-source stages off). Never returns an
    empty list for non-empty input: a failed or impossible fit gives the
    cheap estimate with flags and a low quality. ``thr``: the detection
    threshold (nT; at least 3 x the noise). ``footprint`` (x0, x1, y0, y1) is
    where the signal was detected: a source placed outside it is explaining
    a neighbour's field, so it is refused (the data's extent plus 1 m if
    None). ``hints``: lane peaks the detector reported, strongest first.
    ``lanes``: the lane of each sample (joint windows re-level and test lane
    offsets with it). ``survey_sigma``: what the survey itself cannot know
    (position, sensor height), added to each reported 1-sigma (`SurveySigma`;
    the defaults if None). ``trace``: if given, gets a record per stage
    (`FitTrace`).
    """
    cfg = config_from(config, max_sources=max_sources, min_samples=min_samples,
                      edge_margin=edge_margin, rel_misfit=rel_misfit, min_sep_m=min_sep_m,
                      close_m=close_m, pair_ratio=pair_ratio, max_hints=max_hints,
                      max_residual_rounds=max_residual_rounds, residual_budget=residual_budget,
                      polish=polish, robust=robust, bic_gain=bic_gain, elongate=elongate,
                      joint=joint)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    noise = max(float(noise), 1e-6)
    if footprint is None and v.size:
        footprint = (float(x.min()) - 1.0, float(x.max()) + 1.0,
                     float(y.min()) - 1.0, float(y.max()) + 1.0)
    st = FitState(x=x, y=y, v=v, geom=geom, noise=noise, thr=max(float(thr), 3.0 * noise),
                  footprint=footprint, lanes=lanes, hints=list(hints or ()), config=cfg,
                  survey_sigma=survey_sigma, cheap=cheap_estimate(x, y, v, geom))
    run_stages(st, trace=trace)
    assert st.result is not None  # the last stage always sets it
    return st.result


def euler_sources(x: np.ndarray, y: np.ndarray, v: np.ndarray,
                  geom: SensorGeometry) -> list[FitResult]:
    """Baseline locator: one Euler (SI 3) estimate per signal; cheap estimate if it fails."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    cx, cy, cd = cheap_estimate(x, y, v, geom)
    est = euler_locate(x, y, v, geom.sensor_height_m)
    if est is None:
        return [cheap_result(x, y, v, geom, cx, cy, cd, ("no_converge", "cheap_estimate"))]
    ex, ey, ed = est
    G = design_points(x, y, np.array([ex, ey, max(ed, 0.01)]), geom)
    lin = solve_linear(G, v)
    return [FitResult(x=ex, y=ey, depth=ed, moment=(float(lin[0]), float(lin[1]), float(lin[2])),
                      quality=0.5, method="euler", n_samples=int(v.size))]
