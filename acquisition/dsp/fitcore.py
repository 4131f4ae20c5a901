"""Least-squares building blocks of the source fit (`fit.fit_sources`).

Design matrices of point and line sources, the linear solve of their moments
(variable projection), Levenberg-Marquardt runs on a whole window or on the
data near one place with the other sources held (`local_view`), the misfit
sigma a right model still leaves, and a line source's fit. No decisions
about what is a target live here: the criterion is `acceptance`, the pair
rules `plausibility`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import leastsq

from acquisition.dsp.fitconfig import FitConfig
from acquisition.forward import (
    SensorGeometry,
    describe,
    design_batch,
    design_matrix,
    ends_from,
    fold_ends,
    line_design,
)
from acquisition.numfail import swallowed

__all__ = ["MAX_DEPTH", "LMRun",
           "best_line", "by_lane", "centre_depth", "centre_point", "design_points",
           "design_reusing", "design_srcs", "dist_to_src", "fit_line_local", "flatten_points",
           "fold_depths", "fold_src", "index_of", "inside", "lane_groups", "local_res", "local_sse",
           "local_view", "misfit_sigma", "moment_sizes", "near_index", "put_back",
           "refit_local", "residual", "run_lm", "run_lm_local", "sigma_of", "solve_linear",
           "solve_linear_many", "src_design"]

#: The depth bound of every model (m): the fits clamp to it, the cheap
#: estimate and the reports too, and a source at it models a regional level,
#: not an object (`inside`). A bound of the model, not a stage's setting.
MAX_DEPTH = 12.0


def design_points(x: np.ndarray, y: np.ndarray, p: np.ndarray, geom: SensorGeometry) -> np.ndarray:
    """`design_srcs` for point sources packed flat as (x, y, depth) triples."""
    return design_srcs(x, y, [p[3 * s:3 * s + 3] for s in range(len(p) // 3)], geom)


def solve_linear(G: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Normal equations on a handful of unit-scaled columns: ~100x faster than an
    # SVD-based lstsq per call, and column scaling keeps them well conditioned.
    # (Called thousands of times per cluster: plain broadcasting and a strided
    # diagonal, the same arithmetic as np.outer / np.diag_indices_from.)
    A = G.T @ G
    scale = np.sqrt(A.diagonal())
    scale[scale == 0] = 1.0
    A = A / (scale[:, None] * scale[None, :])
    A.flat[::A.shape[0] + 1] += 1e-10
    b = (G.T @ v) / scale
    try:
        sol = np.linalg.solve(A, b)
    except np.linalg.LinAlgError as exc:
        swallowed("fitcore.solve_linear", exc)
        sol = np.linalg.lstsq(A, b, rcond=None)[0]
    return sol / scale


def solve_linear_many(G: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`solve_linear` of each design ``G[j]`` (a stack (m, n, k)) against
    ``v``, in one pass: the same BLAS and LAPACK calls per design as
    `solve_linear` (A.T @ A, then an LU solve), so the same numbers to the
    bit, without its per-call overheads. Raises `numpy.linalg.LinAlgError`
    if any of them is singular (the caller then takes them one by one)."""
    Gt = G.transpose(0, 2, 1)
    A = Gt @ G
    k = A.shape[1]
    scale = np.sqrt(np.diagonal(A, axis1=1, axis2=2))
    scale[scale == 0] = 1.0
    A /= scale[:, :, None] * scale[:, None, :]
    A.reshape(A.shape[0], k * k)[:, ::k + 1] += 1e-10  # the diagonals, as a strided view
    b = (Gt @ v) / scale
    return np.linalg.solve(A, b[..., None])[..., 0] / scale


#: Size (samples x columns) of a design up to which `_lm_blocks` builds and
#: solves a block's stepped designs as one stack: the local fits of a new
#: source, where numpy's per-call overheads dominate. A window-wide design
#: (a joint refit of every source) is done design by design, which was
#: faster there (the same numbers either way).
_STACK_MAX = 20_000

#: Relative step of the forward differences MINPACK's Levenberg-Marquardt is
#: given (the one `scipy.optimize.least_squares` takes by default: sqrt(eps)).
_FD_REL = float(np.finfo(np.float64).eps) ** 0.5


#: Columns of several point sources at once: (m, 3) rows of (x, y, depth) ->
#: m column blocks (n, 3), the numbers ``block`` gives row by row.
Many = Callable[[np.ndarray], Sequence[np.ndarray] | np.ndarray]


def _lm_blocks(q0: np.ndarray, cuts: np.ndarray, block: Callable[[int, np.ndarray], np.ndarray],
               left: np.ndarray | None, right: np.ndarray | None, v: np.ndarray, *,
               max_nfev: int, xtol: float, ftol: float, many: Many | None = None) -> LMRun:
    """Levenberg-Marquardt (MINPACK) on ``G(q) @ solve(G, v) - v`` where
    ``G = [left | block(0, q[cuts[0]:cuts[1]]) | block(1, ...) | ... | right]``
    and every block is 3 columns that depend on its own slice of ``q`` only.
    Returns the end point (``x``, depths not folded), half the residual's
    sum of squares (``cost``) and `least_squares`' status for it.

    The Jacobian is the forward difference `least_squares` makes on its own,
    step for step (same steps, same arithmetic, so the same fit to the bit),
    but a step in one source's parameters recomputes that source's columns
    only: the design of the k-1 others is taken from the base point. With k
    sources that is k times fewer field evaluations per Jacobian, which is
    what dominates the fit of a cluster.

    ``many`` (every block then a point: 3 parameters, 3 columns): the
    columns of several blocks in one pass of the forward model
    (`design_batch`), element for element the numbers ``block`` gives, so
    the fit is the same to the bit. A residual evaluation then also makes
    the Jacobian's stepped designs (every block's three stepped copies): the
    base design and the stepped ones come from one pass of the forward model
    and are solved as one stack (`solve_linear_many`: each the numbers
    `solve_linear` gives it alone). MINPACK asks for the Jacobian at every
    point whose step it accepts, most of the points it evaluates, and the
    forward model's and numpy's per-call overheads, not the arithmetic,
    dominate on the few hundred samples of a local fit.

    MINPACK is driven as `least_squares(method="lm")` drives it (`_minpack_lm`)
    without its per-call wrappers: the same iterates, end point and cost.
    """
    nb = len(cuts) - 1
    off = 0 if left is None else left.shape[1]
    width = off + 3 * nb + (0 if right is None else right.shape[1])
    if v.size * width > _STACK_MAX:
        many = None  # a large design: the stack costs more than the calls it saves
    # The last residual evaluated (its point, design, value and, with
    # ``many``, the stepped residuals) and the last Jacobian: MINPACK asks
    # for the Jacobian at the point it has just evaluated, and for the start
    # point more than once.
    last: dict[str, np.ndarray] = {}

    def steps(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # scipy's `_compute_absolute_step` for "2-point" without a rel_step,
        # and the step as taken (q + h) - q
        h = _FD_REL * ((q >= 0).astype(float) * 2 - 1) * np.maximum(1.0, np.abs(q))
        return h, (q + h) - q

    if many is not None:
        # The stack of designs, kept from one evaluation to the next: the
        # held columns (``left``, ``right``) are the same in every design
        # and every evaluation, and every block's columns are written anew.
        n_st = 1 + 3 * nb
        Gs = np.empty((n_st, v.size, width))
        if left is not None:
            Gs[:, :, :off] = left
        if right is not None:
            Gs[:, :, off + 3 * nb:] = right
        stepped_row, stepped_col = np.arange(1, 4), np.arange(3)
    else:
        # The design of the per-design path, kept likewise (a Jacobian reads
        # it only right after the residual evaluation that wrote it).
        G_buf = np.empty((v.size, width))
        if left is not None:
            G_buf[:, :off] = left
        if right is not None:
            G_buf[:, off + 3 * nb:] = right

    def stacked(q: np.ndarray, h: np.ndarray) -> np.ndarray:
        # Design 0: the base point; design 1 + 3b + j: block b's parameter j
        # stepped. Every block's four column sets from one pass of ``many``.
        assert many is not None
        rows = np.repeat(q.reshape(nb, 1, 3), 4, axis=1)
        rows[:, stepped_row, stepped_col] = (q + h).reshape(nb, 3)
        cols = many(rows.reshape(4 * nb, 3))
        for b in range(nb):
            c = off + 3 * b
            Gs[:, :, c:c + 3] = cols[4 * b]
            for j in range(3):
                Gs[1 + 3 * b + j, :, c:c + 3] = cols[4 * b + 1 + j]
        try:
            return (Gs @ solve_linear_many(Gs, v)[..., None])[..., 0] - v
        except np.linalg.LinAlgError:  # one of them singular: each alone
            return np.stack([G @ solve_linear(G, v) - v for G in Gs])

    def build(q: np.ndarray) -> np.ndarray:
        for b in range(nb):
            c = off + 3 * b
            G_buf[:, c:c + 3] = block(b, q[cuts[b]:cuts[b + 1]])
        return G_buf

    def fun(q: np.ndarray) -> np.ndarray:
        if "q" in last and last["q"].tobytes() == q.tobytes():
            return last["f"]
        last.clear()
        h, step = steps(q)
        last["h"], last["step"] = h, step
        if many is not None:
            fs = stacked(q, h)
            last["q"], last["fs"], last["f"] = q.copy(), fs, fs[0]
            return fs[0]
        G = build(q)
        f = G @ solve_linear(G, v) - v
        last["q"], last["G"], last["f"] = q.copy(), G, f
        return f

    def jac(q: np.ndarray) -> np.ndarray:
        if "qj" in last and last["qj"].tobytes() == q.tobytes():
            return last["J"]
        f0 = fun(q)
        h, step = last["h"], last["step"]
        jt = np.empty((q.size, f0.size))
        if many is not None:
            np.divide(last["fs"][1:] - f0, step[:, None], out=jt)
        else:
            G0 = last["G"]
            for b in range(nb):
                c = off + 3 * b
                lo, hi = int(cuts[b]), int(cuts[b + 1])
                G1 = G0.copy()  # its other columns stay those of G0
                for i in range(lo, hi):
                    q1 = np.copy(q)
                    q1[i] = q[i] + h[i]
                    G1[:, c:c + 3] = block(b, q1[lo:hi])
                    f1 = G1 @ solve_linear(G1, v) - v
                    jt[i] = (f1 - f0) / step[i]
        last["qj"], last["J"] = q.copy(), jt.T
        return jt.T

    return _minpack_lm(fun, jac, q0, max_nfev=max_nfev, xtol=xtol, ftol=ftol)


#: `least_squares`' status for MINPACK's ``info`` (scipy's
#: ``FROM_MINPACK_TO_COMMON``; 6-8 are not in it there either).
_LM_STATUS = {0: -1, 1: 2, 2: 3, 3: 4, 4: 1, 5: 0}


def _minpack_lm(fun: Callable[[np.ndarray], np.ndarray], jac: Callable[[np.ndarray], np.ndarray],
                q0: np.ndarray, *, max_nfev: int, xtol: float, ftol: float) -> LMRun:
    """`least_squares(fun, q0, jac=jac, method="lm", x_scale=0.3, ...)`:
    MINPACK's lmder with the settings, checks and result that call gives
    (``gtol`` 1e-8, step bound factor 100, ``diag`` 1 / 0.3; a start that is
    NaN, with a residual not finite or shorter than ``q0`` is a ValueError;
    the cost is half the final residual's sum of squares), called through
    `scipy.optimize.leastsq`, without `least_squares`' memoising wrappers
    and the Jacobian it computes once more at the end (for its gradient,
    which the fits do not read). ``fun`` and ``jac`` must be deterministic,
    memoised on their point (MINPACK asks for the start point several times)."""
    q0 = np.atleast_1d(q0).astype(float)
    if not np.all((q0 >= -np.inf) & (q0 <= np.inf)):
        raise ValueError("Initial guess is outside of provided bounds")
    f0 = fun(q0)
    jac(q0)  # where least_squares takes it: before the checks below
    if not np.all(np.isfinite(f0)):
        raise ValueError("Residuals are not finite in the initial point.")
    if f0.size < q0.size:
        raise ValueError("Method 'lm' doesn't work when the number of "
                         "residuals is less than the number of variables.")
    x, _cov, info, _msg, ier = leastsq(
        fun, q0, Dfun=jac, full_output=True, col_deriv=False, ftol=ftol, xtol=xtol,
        gtol=1e-8, maxfev=max_nfev, factor=100.0, diag=1 / np.full(q0.size, 0.3))
    f = info["fvec"]
    return LMRun(x, float(0.5 * np.dot(f, f)), _LM_STATUS[ier])


def _points_many(x: np.ndarray, y: np.ndarray, geom: SensorGeometry) -> Many:
    """`_lm_blocks`' ``many`` for point sources whose depth enters as |u|."""
    def many(rows: np.ndarray) -> np.ndarray:
        return design_batch(x, y, rows[:, 0], rows[:, 1], np.abs(rows[:, 2]), geom)
    return many


def residual(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
             geom: SensorGeometry) -> np.ndarray:
    G = design_points(x, y, p, geom)
    return G @ solve_linear(G, v) - v


class LMRun:
    """The bits of a least-squares run the fitter uses (positions with depth >= 0)."""

    __slots__ = ("cost", "status", "x")

    def __init__(self, x: np.ndarray, cost: float, status: int) -> None:
        self.x, self.cost, self.status = x, cost, status


def fold_depths(p: np.ndarray) -> np.ndarray:
    q = np.array(p, dtype=np.float64)
    q[2::3] = np.abs(q[2::3])
    return q


def run_lm(p0: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
         geom: SensorGeometry, max_nfev: int = 60) -> LMRun:
    """Levenberg-Marquardt (MINPACK) on (x, y, depth) per source.

    Depth enters as |u| so the problem is unbounded (LM needs that, and it is
    several times faster here than the bounded trust-region solver, whose SVD
    per step dominates); the mirror image above ground is the same fit folded.
    """
    p0 = fold_depths(p0)
    p0[2::3] = np.maximum(p0[2::3], 0.02)

    def block(_b: int, s: np.ndarray) -> np.ndarray:
        return design_matrix(x, y, s[0], s[1], abs(s[2]), geom)

    r = _lm_blocks(p0, np.arange(0, len(p0) + 1, 3), block, None, np.ones((len(x), 1)), v,
                   max_nfev=max_nfev * (len(p0) + 1), xtol=1e-6, ftol=1e-8,
                   many=_points_many(x, y, geom))
    q = fold_depths(r.x)
    q[2::3] = np.minimum(q[2::3], MAX_DEPTH)
    return LMRun(q, float(r.cost), int(r.status))


def _local(x: np.ndarray, y: np.ndarray, v: np.ndarray, cx: float, cy: float,
           radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    loc = np.hypot(x - cx, y - cy) < radius
    if loc.sum() >= 12:
        return x[loc], y[loc], v[loc]
    return x, y, v


def run_lm_local(p: np.ndarray, free: list[int], x: np.ndarray, y: np.ndarray, v: np.ndarray,
               geom: SensorGeometry, center: tuple[float, float], radius: float) -> LMRun:
    """Move only the ``free`` sources, on the data within ``radius`` of ``center``.

    The other sources keep their positions (their moments are still re-solved),
    so a new source cannot wander off to explain a strong neighbour's misfit
    elsewhere in a wide window, and the cost stays local: a cluster of ten
    sources costs ten small fits, not one huge one.
    """
    x, y, v = _local(x, y, v, center[0], center[1], radius)
    k = len(p) // 3
    fixed = [i for i in range(k) if i not in free]
    base = [design_matrix(x, y, p[3 * i], p[3 * i + 1], p[3 * i + 2], geom) for i in fixed]
    base.append(np.ones((len(x), 1)))
    B = np.hstack(base)

    def block(_b: int, s: np.ndarray) -> np.ndarray:
        return design_matrix(x, y, s[0], s[1], abs(s[2]), geom)

    s0 = fold_depths(np.concatenate([p[3 * i:3 * i + 3] for i in free]))
    s0[2::3] = np.maximum(s0[2::3], 0.02)
    r = _lm_blocks(s0, np.arange(0, len(s0) + 1, 3), block, B, None, v,
                   max_nfev=60 * (len(s0) + 1), xtol=1e-6, ftol=1e-8,
                   many=_points_many(x, y, geom))
    q = np.array(p, dtype=np.float64)
    sol = fold_depths(r.x)
    for j, i in enumerate(free):
        q[3 * i:3 * i + 3] = sol[3 * j:3 * j + 3]
    q[2::3] = np.minimum(q[2::3], MAX_DEPTH)
    return LMRun(q, float(r.cost), int(r.status))


def src_design(x: np.ndarray, y: np.ndarray, s: np.ndarray, geom: SensorGeometry) -> np.ndarray:
    """Columns (n, 3) of one source: a point (x, y, depth) or a line (two end points)."""
    if len(s) == 3:
        return design_matrix(x, y, s[0], s[1], s[2], geom)
    return line_design(x, y, s, geom)


def design_srcs(x: np.ndarray, y: np.ndarray, srcs: list[np.ndarray],
                 geom: SensorGeometry) -> np.ndarray:
    cols = [src_design(x, y, s, geom) for s in srcs]
    cols.append(np.ones((len(x), 1)))
    return np.hstack(cols)


def near_index(srcs: list[np.ndarray], cx: float, cy: float, reach: float) -> list[int]:
    """Indices of the sources (points, or lines anywhere along them) within
    ``reach`` of (cx, cy)."""
    return [i for i, s in enumerate(srcs) if dist_to_src(s, cx, cy) <= reach]


def local_view(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                geom: SensorGeometry, cx: float, cy: float, radius: float, *, margin: float,
                solved: tuple[np.ndarray, np.ndarray] | None = None,
                ) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The near sources' indices (within ``radius`` + ``margin``), the
    window's data with the far sources' fields (at their whole-window
    moments) taken out, and its samples within ``radius`` of (cx, cy)
    (`_local`). A source farther than ``margin`` beyond the local data's
    edge keeps the moment the whole window gives it (`FitConfig.far_margin_m`).
    ``solved``: `design_srcs` of ``srcs`` on the window and its
    `solve_linear` against ``v``, when the caller has them."""
    near = near_index(srcs, cx, cy, radius + margin)
    vw = v
    if len(near) < len(srcs):
        G, lin = solved if solved is not None else _solved(x, y, srcs, v, geom)
        cols = np.concatenate([np.arange(3 * i, 3 * i + 3)
                               for i in range(len(srcs)) if i not in near])
        vw = v - G[:, cols] @ lin[cols]
    lx, ly, lv = _local(x, y, vw, cx, cy, radius)
    return near, vw, lx, ly, lv


def _solved(x: np.ndarray, y: np.ndarray, srcs: list[np.ndarray], v: np.ndarray,
            geom: SensorGeometry) -> tuple[np.ndarray, np.ndarray]:
    G = design_srcs(x, y, srcs, geom)
    return G, solve_linear(G, v)


def design_reusing(x: np.ndarray, y: np.ndarray, q: np.ndarray, p: np.ndarray,
                   G: np.ndarray, geom: SensorGeometry) -> np.ndarray:
    """`design_points` of the points ``q``, taking the columns of each point
    that is ``p``'s point of the same index to the bit from ``G`` (the
    design of ``p`` on the same samples): the same matrix, built only for
    the points that moved or are new."""
    k_p = len(p) // 3
    cols = []
    for i in range(len(q) // 3):
        qi = q[3 * i:3 * i + 3]
        if i < k_p and np.array_equal(qi, p[3 * i:3 * i + 3]):
            cols.append(G[:, 3 * i:3 * i + 3])
        else:
            cols.append(design_matrix(x, y, qi[0], qi[1], qi[2], geom))
    cols.append(np.ones((len(x), 1)))
    return np.hstack(cols)


def put_back(srcs: list[np.ndarray], near: list[int], sub: list[np.ndarray]) -> list[np.ndarray]:
    """``srcs`` with its near sources replaced by ``sub`` (the near ones in
    order, then any new ones, which go last)."""
    out = list(srcs)
    for j, i in enumerate(near):
        out[i] = sub[j]
    return [*out, *sub[len(near):]]


def flatten_points(srcs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(srcs) if srcs else np.empty(0)




def local_res(srcs: list[np.ndarray], lx: np.ndarray, ly: np.ndarray, lv: np.ndarray,
               geom: SensorGeometry, w: np.ndarray | None = None) -> np.ndarray:
    """Residual of the best moments (weighted by ``w`` = 1/sigma if given)."""
    G = design_srcs(lx, ly, srcs, geom)
    if w is not None:
        G, lv = G * w[:, None], lv * w
    return G @ solve_linear(G, lv) - lv


def local_sse(srcs: list[np.ndarray], lx: np.ndarray, ly: np.ndarray, lv: np.ndarray,
               geom: SensorGeometry) -> float:
    r = local_res(srcs, lx, ly, lv, geom)
    return float(r @ r)




def misfit_sigma(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                  geom: SensorGeometry, noise: float, pos_sigma: float,
                  shape_rel: float) -> np.ndarray:
    """Per-sample sigma of what a right model still misfits: sensor noise,
    ``pos_sigma`` of horizontal position error times the model's slope there,
    and ``shape_rel`` of the model itself (a real body is no uniform line)."""
    G = design_srcs(x, y, srcs, geom)
    lin = solve_linear(G, v)
    d = 0.02
    fx = (design_srcs(x + d, y, srcs, geom) - design_srcs(x - d, y, srcs, geom)) @ lin
    fy = (design_srcs(x, y + d, srcs, geom) - design_srcs(x, y - d, srcs, geom)) @ lin
    slope2 = (fx * fx + fy * fy) / (4 * d * d)
    return sigma_of(G @ lin - lin[-1], slope2, noise, pos_sigma, shape_rel)


def sigma_of(f: np.ndarray, slope2: np.ndarray, noise: float, pos_sigma: float,
              shape_rel: float) -> np.ndarray:
    """`misfit_sigma` for a model field ``f`` whose squared horizontal slope
    is ``slope2`` (for moments solved elsewhere)."""
    return np.sqrt(noise * noise + pos_sigma * pos_sigma * slope2 + (shape_rel * f) ** 2)


def fold_src(q: np.ndarray) -> np.ndarray:
    return fold_depths(q) if len(q) == 3 else fold_ends(q)


def lane_groups(lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's lane as an index 0..L-1 and the samples per lane: what
    `by_lane` needs of ``lanes``, for a caller that applies it many times."""
    _, inv = np.unique(lanes, return_inverse=True)
    return inv, np.bincount(inv).astype(np.float64)


def by_lane(M: np.ndarray, lanes: np.ndarray,
            groups: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``M``'s columns minus their mean on each lane: fitting these is fitting
    ``M`` with a free offset per lane (the offsets projected out).
    ``groups``: `lane_groups` of ``lanes``, when the caller has them."""
    inv, cnt = groups if groups is not None else lane_groups(lanes)
    out = np.array(M, dtype=np.float64)
    for c in range(out.shape[1]):
        out[:, c] -= (np.bincount(inv, weights=out[:, c]) / cnt)[inv]
    return out


def refit_local(srcs: list[np.ndarray], free: list[int], lx: np.ndarray, ly: np.ndarray,
                 lv: np.ndarray, geom: SensorGeometry, max_nfev: int = 40,
                 w: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
                 lanes: np.ndarray | None = None) -> tuple[list[np.ndarray], float]:
    """Move the ``free`` sources (points or lines) on local data, the others held
    (all moments re-solved). Returns the new source list and its residual SSE
    (weighted by ``w`` = 1/sigma per sample if given, or whitened by ``w``
    if it is a function of the (n, k) columns: correlated noise). With
    ``lanes``, each lane's offset is free instead of one common offset
    (`by_lane`)."""
    base = [src_design(lx, ly, s, geom) for j, s in enumerate(srcs) if j not in free]
    if lanes is None:
        base.append(np.ones((len(lx), 1)))
    B = np.hstack(base) if base else np.empty((len(lx), 0))
    groups = None
    if lanes is not None:
        # once, not on every column block the fit builds
        groups = lane_groups(lanes)
        B = by_lane(B, lanes, groups)
        lv = by_lane(lv[:, None], lanes, groups)[:, 0]
    sizes = [len(srcs[i]) for i in free]
    cuts = np.cumsum([0, *sizes])
    if callable(w):
        B, lv = w(B), w(lv[:, None])[:, 0]
    elif w is not None:
        B = B * w[:, None]
        lv = lv * w

    def split(q: np.ndarray) -> list[np.ndarray]:
        return [fold_src(q[cuts[k]:cuts[k + 1]]) for k in range(len(free))]

    def finish(c: np.ndarray) -> np.ndarray:
        # A source's columns as the fit sees them: per-lane offsets taken
        # out, then weighted.
        if lanes is not None:
            c = by_lane(c, lanes, groups)
        if callable(w):
            return w(c)
        return c if w is None else c * w[:, None]

    def block(_b: int, s: np.ndarray) -> np.ndarray:
        return finish(src_design(lx, ly, fold_src(s), geom))

    many = None
    if all(size == 3 for size in sizes):
        raw = _points_many(lx, ly, geom)  # fold_src of a point: its depth as |u|

        def many(rows: np.ndarray) -> list[np.ndarray]:
            return [finish(c) for c in raw(rows)]

    q0 = np.concatenate([fold_src(srcs[i]) for i in free])
    r = _lm_blocks(q0, cuts, block, B, None, lv,
                   max_nfev=max_nfev * (len(q0) + 1), xtol=1e-5, ftol=1e-7, many=many)
    out = list(srcs)
    for k, i in enumerate(free):
        e = split(r.x)[k]
        e[2::3] = np.minimum(e[2::3], MAX_DEPTH)
        out[i] = e
    return out, 2.0 * float(r.cost)


def fit_line_local(srcs: list[np.ndarray], i: int, ends0: np.ndarray, lx: np.ndarray,
                    ly: np.ndarray, lv: np.ndarray,
                    geom: SensorGeometry) -> tuple[np.ndarray, float]:
    """Source ``i`` as a line from ``ends0``, the others held (moments re-solved)."""
    out, sse = refit_local([*srcs[:i], ends0, *srcs[i + 1:]], [i], lx, ly, lv, geom)
    return out[i], sse


def index_of(srcs: list[np.ndarray], s: np.ndarray) -> int:
    return next(k for k, t in enumerate(srcs) if t is s)


def best_line(srcs: list[np.ndarray], i: int, depth: float, lx: np.ndarray, ly: np.ndarray,
               lv: np.ndarray, geom: SensorGeometry, cfg: FitConfig,
               shallow: bool = False) -> np.ndarray | None:
    """Source ``i`` (a point) refitted as a line, the others held: seeds on
    the `FitConfig.line_seed_azimuths` and `line_seed_lengths` (and centres
    `line_seed_shifts_m` along each axis, for a point shallower than
    `near_field_m`) screened by one linear solve each, LM from the best two
    at 0.85 × ``depth``, and from the best two at `line_seed_min_depth_m` if
    that is deeper or ``shallow`` asks for them."""
    cx, cy = float(srcs[i][0]), float(srcs[i][1])
    starts: list[np.ndarray] = []
    depths = [0.85 * depth]
    if shallow or 0.85 * depth < cfg.line_seed_min_depth_m:
        depths.append(cfg.line_seed_min_depth_m)
    shifts = cfg.line_seed_shifts_m if depth < cfg.near_field_m else (0.0,)
    for d0 in depths:
        seeds = []
        for az in cfg.line_seed_azimuths:
            ux, uy = math.sin(math.radians(az)), math.cos(math.radians(az))
            seeds += [ends_from((cx + k * ux, cy + k * uy, d0), length, az)
                      for length in cfg.line_seed_lengths for k in shifts]
        scored = sorted(((local_sse([*srcs[:i], e, *srcs[i + 1:]], lx, ly, lv, geom), k)
                         for k, e in enumerate(seeds)), key=lambda t: t[0])
        starts += [seeds[k] for _sse0, k in scored[:2]]
    best: tuple[float, np.ndarray] | None = None
    for start in starts:
        try:
            e, sse = fit_line_local(srcs, i, start, lx, ly, lv, geom)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fitcore.best_line", exc)
            continue
        if np.all(np.isfinite(e)) and (best is None or sse < best[0]):
            best = (sse, e)
    return None if best is None else best[1]


def dist_to_src(s: np.ndarray, px: float, py: float) -> float:
    """Horizontal distance from (px, py) to a point source or to a line's
    horizontal projection."""
    if len(s) == 3:
        return math.hypot(float(s[0]) - px, float(s[1]) - py)
    ax, ay, bx, by = float(s[0]), float(s[1]), float(s[3]), float(s[4])
    dx, dy = bx - ax, by - ay
    L2 = dx * dx + dy * dy
    t = 0.0 if L2 == 0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / L2))
    return math.hypot(ax + t * dx - px, ay + t * dy - py)


def inside(p: np.ndarray, footprint: tuple[float, float, float, float] | None) -> bool:
    """Every source within the footprint and above the depth bound."""
    if footprint is None:
        return False
    x0, x1, y0, y1 = footprint
    for k in range(len(p) // 3):
        px, py, pd = p[3 * k:3 * k + 3]
        if not (x0 <= px <= x1 and y0 <= py <= y1) or pd >= MAX_DEPTH - 1e-3:
            return False
    return True


def moment_sizes(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                  geom: SensorGeometry) -> list[float]:
    """|moment| of each source (points or lines), solved jointly on the window."""
    lin = solve_linear(design_srcs(x, y, srcs, geom), v)
    return [float(np.linalg.norm(lin[3 * k:3 * k + 3])) for k in range(len(srcs))]


def centre_point(s: np.ndarray) -> np.ndarray:
    """A point source, or a line's centre, as (x, y, depth)."""
    return np.array(centre_depth(s)) if len(s) != 3 else np.asarray(s)


def centre_depth(s: np.ndarray) -> tuple[float, float, float]:
    """(x, y, depth) of a point source, or of a line's centre."""
    if len(s) == 3:
        return float(s[0]), float(s[1]), float(s[2])
    info = describe(s)
    return info["x"], info["y"], info["depth"]
