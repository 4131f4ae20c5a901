"""Per-hole anomaly detection along depth, and the single-hole distance estimate.

Detection works on a conditioned log (`logs.ProcessedLog`): a short moving
average (gap-aware) raises the signal-to-noise ratio, a noise-adaptive
threshold (``k`` times the averaged noise) finds candidates, and runs above a
lower threshold closer together than ``merge_m`` are one anomaly (a dipole
seen from a hole gives up to three lobes of alternating sign).

One hole gives distance, not direction: along a vertical line the axial field
of a dipole at horizontal distance rho depends only on the moment's radial
and vertical parts, so fitting (rho, depth) with those two moment parts free
(and an offset) recovers the distance whatever the azimuth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from acquisition.borehole.logs import ProcessedLog
from acquisition.forward import gradient_basis, vector_basis
from acquisition.numfail import swallowed


@dataclass(slots=True)
class DetectConfig:
    k: float = 5.0
    k_low: float = 2.5
    #: An anomaly's extent ends where the envelope falls below this share of its peak.
    rel_low: float = 0.03
    #: Anomalies weaker than shadow_ratio x a stronger one this close (m) are its shadow.
    shadow_m: float = 4.0
    shadow_ratio: float = 0.1
    smooth_m: float = 0.15
    merge_m: float = 0.6
    #: Data either side of an anomaly used by the single-hole fit.
    fit_margin_m: float = 1.2
    max_distance_m: float = 3.5


@dataclass(slots=True)
class HoleAnomaly:
    """One anomaly along one hole."""

    hole: str
    x: float
    y: float
    depth_peak: float
    depth_top: float
    depth_bottom: float
    amplitude_nT: float
    snr: float
    index: int
    #: Single-hole fit: horizontal distance from the hole and the source depth.
    distance_m: float = math.nan
    sigma_distance_m: float = math.nan
    depth_fit: float = math.nan
    sigma_depth_m: float = math.nan
    moment_rz: tuple[float, float] = (math.nan, math.nan)
    fit_ok: bool = False

    @property
    def depth(self) -> float:
        return self.depth_fit if math.isfinite(self.depth_fit) else self.depth_peak


def channel(plog: ProcessedLog, values: np.ndarray | None = None) -> np.ndarray:
    """The scalar series detection looks at: the gradient, or bz for a vector probe."""
    v = plog.values if values is None else values
    return v if v.ndim == 1 else v[:, 2]


def smooth(v: np.ndarray, w: int) -> np.ndarray:
    """Gap-aware centred moving average over ``w`` bins (NaN where no data)."""
    if w <= 1:
        return v.copy()
    ok = np.isfinite(v)
    k = np.ones(w)
    num = np.convolve(np.where(ok, v, 0.0), k, mode="same")
    den = np.convolve(ok.astype(float), k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den < max(1, w // 2)] = np.nan
    return out


def detect(plog: ProcessedLog, values: np.ndarray | None = None,
           config: DetectConfig | None = None, sigma: float | None = None,
           extra_sigma: np.ndarray | None = None) -> list[HoleAnomaly]:
    """Anomalies along one conditioned log (``values`` overrides the log's, e.g. residuals).

    ``extra_sigma`` (per bin, nT) adds to the noise in quadrature: the
    expected misfit of already-located targets, so their residuals are not
    taken for new objects.
    """
    cfg = config or DetectConfig()
    v = channel(plog, values)
    if len(v) < 3 or not np.any(np.isfinite(v)):
        return []
    bin_m = float(np.median(np.diff(plog.depth))) if len(plog.depth) > 1 else 0.05
    w = max(1, round(cfg.smooth_m / max(bin_m, 1e-6)))
    s = smooth(v, w)
    sig: float | np.ndarray = (plog.sigma if sigma is None else sigma) / math.sqrt(w)
    if not (sig > 0):
        return []
    if extra_sigma is not None:
        sig = np.sqrt(sig * sig + smooth(extra_sigma, w) ** 2)
    e = np.abs(s) / sig
    e[~np.isfinite(e)] = 0.0
    # Strongest peak first; its extent is where the envelope stays above
    # max(k_low, rel_low * peak), bridging dips shorter than merge_m (the zero
    # crossings between one dipole's lobes). The far tails of a strong object
    # stay above k_low for metres, so a fixed low threshold would swallow a
    # second object in the same hole.
    free = np.ones(len(e), dtype=bool)
    out: list[HoleAnomaly] = []
    depth = plog.depth
    while True:
        cand = np.where(free, e, 0.0)
        j = int(np.argmax(cand))
        if cand[j] <= cfg.k:
            break
        touching = (j > 0 and not free[j - 1]) or (j + 1 < len(e) and not free[j + 1])
        if touching:
            # The falling tail of an anomaly already taken, not a new one:
            # consume it while it keeps falling away from that anomaly.
            step = 1 if (j > 0 and not free[j - 1]) else -1
            k = j
            while 0 <= k < len(e) and free[k] and (k == j or e[k] <= e[k - step]):
                free[k] = False
                k += step
            continue
        low = max(cfg.k_low, cfg.rel_low * e[j])
        above = (e > low) & free
        lo = hi = j
        while True:
            moved = False
            nxt = lo - 1
            while nxt >= 0 and free[nxt] and depth[lo] - depth[nxt] < cfg.merge_m:
                if above[nxt]:
                    lo, moved = nxt, True
                    break
                nxt -= 1
            nxt = hi + 1
            while nxt < len(e) and free[nxt] and depth[nxt] - depth[hi] < cfg.merge_m:
                if above[nxt]:
                    hi, moved = nxt, True
                    break
                nxt += 1
            if not moved:
                break
        free[lo:hi + 1] = False
        out.append(HoleAnomaly(plog.hole, plog.x, plog.y, float(depth[j]), float(depth[lo]),
                               float(depth[hi]), float(s[j]), float(e[j]), j))
    # A weak bump within a few metres of a far stronger anomaly is its tail or
    # a baseline error under it; a real second object there is found later on
    # the residual logs, once the strong one has been subtracted.
    strong = sorted(out, key=lambda a: -abs(a.amplitude_nT))
    keep: list[HoleAnomaly] = []
    for a in strong:
        if any(abs(b.depth_peak - a.depth_peak) < cfg.shadow_m
               and abs(a.amplitude_nT) < cfg.shadow_ratio * abs(b.amplitude_nT) for b in keep):
            continue
        keep.append(a)
    out = sorted(keep, key=lambda a: a.depth_peak)
    return out


def _rz_basis(plog: ProcessedLog, depth: np.ndarray, rho: float, zsrc: float) -> np.ndarray:
    """Readings per unit (radial, vertical) moment for a source rho east of the hole."""
    n = len(depth)
    src = np.array([rho, 0.0, -zsrc])
    zeros = np.zeros(n)
    if plog.kind == "gradient":
        b = gradient_basis(zeros, zeros, depth, plog.separation, src)
    else:
        b = vector_basis(zeros, zeros, depth, src)[:, 2, :]
    return b[:, [0, 2]]


def _grid_costs(plog: ProcessedLog, depth: np.ndarray, y: np.ndarray, rhos: np.ndarray,
                zs: np.ndarray) -> np.ndarray:
    """Residual sum of squares of the (radial, vertical, offset) fit on a (rho, z) grid.

    All grid points at once (one batched QR): the same numbers as solving
    `_rz_basis` plus an offset column by least squares at each point.
    """
    rr, zz = np.meshgrid(rhos, zs, indexing="ij")
    rx = -rr.reshape(-1, 1)  # sensor minus source, source rho east of the hole
    src_z = -zz.reshape(-1, 1)

    def bz(sensor_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rz = sensor_z[None, :] - src_z
        d2 = np.maximum(rx * rx + rz * rz, 1e-6)
        inv3 = d2 ** -1.5
        inv5 = inv3 / d2
        return 3.0 * rz * rx * inv5, 3.0 * rz * rz * inv5 - inv3

    b0, b1 = bz(-depth)
    if plog.kind == "gradient":
        u0, u1 = bz(-depth + plog.separation)
        b0, b1 = b0 - u0, b1 - u1
    a = np.stack([b0, b1, np.ones_like(b0)], axis=2)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
    q, _ = np.linalg.qr(a)
    proj = np.einsum("gnk,gk->gn", q, np.einsum("gnk,n->gk", q, y))
    resid = y[None, :] - proj
    return np.einsum("gn,gn->g", resid, resid).reshape(rr.shape)


def fit_distance(plog: ProcessedLog, anomaly: HoleAnomaly, values: np.ndarray | None = None,
                 config: DetectConfig | None = None) -> HoleAnomaly:
    """Fill ``distance_m`` and ``depth_fit`` of ``anomaly`` from its own hole's log."""
    cfg = config or DetectConfig()
    v = channel(plog, values)
    sel = ((plog.depth >= anomaly.depth_top - cfg.fit_margin_m)
           & (plog.depth <= anomaly.depth_bottom + cfg.fit_margin_m) & np.isfinite(v))
    d, y = plog.depth[sel], v[sel]
    if len(d) < 8:
        return anomaly
    sig = plog.sigma if plog.sigma > 0 else 1.0
    mid = anomaly.depth_peak - plog.separation / 2

    def resid_for(rho: float, z: float) -> tuple[np.ndarray, np.ndarray]:
        a = np.column_stack([_rz_basis(plog, d, rho, z), np.ones(len(d))])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        return (y - a @ coef) / sig, coef

    rhos = np.arange(0.1, cfg.max_distance_m + 1e-9, 0.1)
    zs = np.arange(mid - 1.0, mid + 1.0 + 1e-9, 0.1)
    costs = _grid_costs(plog, d, y, rhos, zs)
    i, j = np.unravel_index(int(np.argmin(costs)), costs.shape)
    res = least_squares(lambda p: resid_for(p[0], p[1])[0], x0=[rhos[i], zs[j]],
                        bounds=([0.03, mid - 3.0], [cfg.max_distance_m + 1.0, mid + 3.0]),
                        x_scale=[0.1, 0.1])
    rho, z = (float(v) for v in res.x)
    r, coef = resid_for(rho, z)
    dof = max(len(d) - 5, 1)
    s2 = max(float(np.sum(r**2)) / dof, 1.0)
    try:
        cov = np.linalg.inv(res.jac.T @ res.jac) * s2
        srho, sz = (float(math.sqrt(max(c, 0.0))) for c in np.diag(cov))
    except np.linalg.LinAlgError as exc:
        swallowed("detect.fit_distance", exc)
        srho = sz = math.nan
    anomaly.distance_m = rho
    anomaly.depth_fit = z
    anomaly.sigma_distance_m = srho
    anomaly.sigma_depth_m = sz
    anomaly.moment_rz = (float(coef[0]), float(coef[1]))
    anomaly.fit_ok = bool(res.success)
    return anomaly
