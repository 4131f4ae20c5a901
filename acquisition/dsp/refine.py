"""Stages of the lane fit that move sources without adding or dropping any:
re-placing weak sources on their own near data (`polish_weak`) and the
Huber-reweighted refit on magnetic ground (`robust_refine`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares

from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.dsp.fitcore import (
    MAX_DEPTH,
    design_points,
    flatten_points,
    fold_depths,
    local_view,
    residual,
    run_lm_local,
    solve_linear,
)
from acquisition.forward import (
    SensorGeometry,
)
from acquisition.numfail import swallowed

__all__ = ["polish_weak", "robust_refine"]


def polish_weak(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                 geom: SensorGeometry, cfg: FitConfig = DEFAULT_FIT) -> np.ndarray:
    """Re-place each source that has a stronger neighbour on its own near data.

    In a joint fit over a wide window the misfit a point dipole leaves on a big
    elongated neighbour pulls a small shallow source (mostly in depth). Fitted
    again on the samples within about twice its own reach, with the others held
    (their moments re-solved), its depth comes from its own anomaly's shape.
    Kept only if it stays within 0.3 m and the local misfit does not grow.
    """
    k = len(p) // 3
    G = design_points(x, y, p, geom)
    lin = solve_linear(G, v)
    mags = [float(np.linalg.norm(lin[3 * i:3 * i + 3])) for i in range(k)]
    q = np.array(p, dtype=np.float64)
    h = geom.sensor_height_m
    for i in range(k):
        cx, cy, d = q[3 * i:3 * i + 3]
        stronger = [j for j in range(k) if j != i and mags[j] > mags[i]
                    and math.hypot(q[3 * j] - cx, q[3 * j + 1] - cy) < 3.0]
        if not stronger:
            continue
        rad = min(max(1.2, 2.5 * (d + h)), 2.5)
        pts = [q[3 * j:3 * j + 3] for j in range(k)]
        near, _vw, lx, ly, lv = local_view(pts, x, y, v, geom, cx, cy, rad,
                                           margin=cfg.far_margin_m)
        if lx.size < 20 or lx.size == x.size:
            continue
        qn = flatten_points([pts[j] for j in near])
        ii = near.index(i)
        try:
            r = run_lm_local(qn, [ii], lx, ly, lv, geom, (cx, cy), rad)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("refine.polish_weak", exc)
            continue
        if not np.isfinite(r.cost) or math.hypot(r.x[3 * ii] - cx, r.x[3 * ii + 1] - cy) > 0.3:
            continue
        old = residual(qn, lx, ly, lv, geom)
        if 2.0 * r.cost <= float(old @ old):
            q = q.copy()
            q[3 * i:3 * i + 3] = r.x[3 * ii:3 * ii + 3]
    return q


def robust_refine(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                   geom: SensorGeometry, noise: float, iters: int = 2,
                   c_sigma: float = 2.0) -> np.ndarray:
    """Iteratively reweighted refit with Huber weights (c = ``c_sigma`` × noise).

    Magnetic soil puts short, strong spikes into a fit window (tiny shallow
    grains under the sensor); a plain least-squares fit bends toward them.
    Huber weights leave samples within c alone and down-weight the rest by
    c/|r|, so the source follows its own anomaly. LM (MINPACK) has no robust
    loss, hence the reweighting. Runs only when the residual has outliers.
    """
    c = c_sigma * noise
    q = np.array(p, dtype=np.float64)
    for _ in range(iters):
        r = residual(q, x, y, v, geom)
        a = np.abs(r)
        if not np.any(a > c) or float(np.mean(a > c)) < 0.02:
            break
        sw = np.sqrt(np.minimum(1.0, c / np.maximum(a, 1e-12)))

        def fun(u: np.ndarray, sw: np.ndarray = sw) -> np.ndarray:
            G = design_points(x, y, fold_depths(u), geom) * sw[:, None]
            return G @ solve_linear(G, v * sw) - v * sw

        try:
            s = least_squares(fun, q, method="lm", x_scale=np.full(len(q), 0.3),
                              max_nfev=30 * (len(q) + 1), xtol=1e-6, ftol=1e-8)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("refine.robust_refine", exc)
            break
        new = fold_depths(s.x)
        new[2::3] = np.minimum(new[2::3], MAX_DEPTH)
        if not np.all(np.isfinite(new)) or np.max(np.hypot(new[0::3] - q[0::3],
                                                           new[1::3] - q[1::3])) > 0.5:
            break
        q = new
    return q
