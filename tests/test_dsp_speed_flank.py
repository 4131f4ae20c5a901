"""The fit core's fast paths give the old computation's numbers to the bit.

The lane fit spends most of its time in Levenberg-Marquardt runs on local
data (`fitcore._lm_blocks`), which the dense-survey speed work changed:
MINPACK driven directly rather than through `least_squares`' wrappers, the
Jacobian's stepped designs made with each residual evaluation, the forward
model's columns written in place (`forward.dipole.field_rows`), each
geometry's sensor levels taken once, the lanes grouped once for `by_lane`.
Each is compared here with a twin of the code it replaced (kept below,
verbatim in what it computes), and must agree exactly: equal positions,
costs and statuses, equal columns, and a whole fit with the same sources
in and out of every stage. (The flank stage's own solves were left as they
were: it spends its time in these fits, `addsources.try_add_srcs`.)
"""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import NEAR_AND_FAR, induced, near_and_far_case, survey
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import least_squares

import acquisition.dsp.fitcore as fitcore
import acquisition.forward.dipole as dipole
import acquisition.forward.lane as lane_mod
from acquisition.dsp.fit import fit_sources
from acquisition.dsp.fitstate import FitTrace
from acquisition.forward import SensorGeometry, design_batch, design_matrix, sensor_levels
from acquisition.forward.dipole import MU0_4PI_NT, R2_MIN
from acquisition.forward.line import LINE_POINTS, line_design, line_points
from acquisition.geomag import QUANG_TRI


def _field_rows_reference(dx, dy, dz, comp):
    """`field_rows` as it was: three temporaries stacked, then scaled."""
    c = np.asarray(comp, dtype=np.float64)
    c0, c1, c2 = c[..., 0], c[..., 1], c[..., 2]
    r2 = np.maximum(dx * dx + dy * dy + dz * dz, R2_MIN)
    inv_r3 = r2 ** -1.5
    t = 3.0 * (dx * c0 + dy * c1 + dz * c2) * inv_r3 / r2
    return MU0_4PI_NT * np.stack((t * dx - c0 * inv_r3, t * dy - c1 * inv_r3,
                                  t * dz - c2 * inv_r3), axis=-1)


def _lm_blocks_reference(q0, cuts, block, left, right, v, *, max_nfev, xtol, ftol, many=None):
    """`_lm_blocks` as it was: `least_squares(method="lm")`, each block's
    three stepped designs built and solved in the Jacobian."""
    nb = len(cuts) - 1
    off = 0 if left is None else left.shape[1]
    last = {}
    width = off + 3 * nb + (0 if right is None else right.shape[1])
    if v.size * width > fitcore._STACK_MAX:
        many = None

    def build(q):
        cols = [] if left is None else [left]
        if many is not None and nb > 1:
            cols += list(many(q.reshape(nb, 3)))
        else:
            cols += [block(b, q[cuts[b]:cuts[b + 1]]) for b in range(nb)]
        if right is not None:
            cols.append(right)
        return np.hstack(cols)

    def fun(q):
        G = build(q)
        f = G @ fitcore.solve_linear(G, v) - v
        last["q"], last["G"], last["f"] = q.copy(), G, f
        return f

    def jac(q):
        if "q" not in last or last["q"].tobytes() != q.tobytes():
            fun(q)
        G0, f0 = last["G"], last["f"]
        h = fitcore._FD_REL * ((q >= 0).astype(float) * 2 - 1) * np.maximum(1.0, np.abs(q))
        jt = np.empty((q.size, f0.size))
        for b in range(nb):
            c = off + 3 * b
            lo, hi = int(cuts[b]), int(cuts[b + 1])
            if many is None:
                for i in range(lo, hi):
                    q1 = np.copy(q)
                    q1[i] = q[i] + h[i]
                    G1 = G0.copy()
                    G1[:, c:c + 3] = block(b, q1[lo:hi])
                    f1 = G1 @ fitcore.solve_linear(G1, v) - v
                    jt[i] = (f1 - f0) / ((q[i] + h[i]) - q[i])
                continue
            rows = np.repeat(q[None, lo:hi], hi - lo, axis=0)
            rows[np.arange(hi - lo), np.arange(hi - lo)] = q[lo:hi] + h[lo:hi]
            stepped = many(rows)
            Gs = np.repeat(G0[None], hi - lo, axis=0)
            for j, cols in enumerate(stepped):
                Gs[j, :, c:c + 3] = cols
            try:
                fs = (Gs @ fitcore.solve_linear_many(Gs, v)[..., None])[..., 0] - v
            except np.linalg.LinAlgError:
                fs = np.stack([G @ fitcore.solve_linear(G, v) - v for G in Gs])
            for i in range(lo, hi):
                jt[i] = (fs[i - lo] - f0) / ((q[i] + h[i]) - q[i])
        return jt.T

    return least_squares(fun, q0, jac=jac, method="lm", x_scale=np.full(len(q0), 0.3),
                         max_nfev=max_nfev, xtol=xtol, ftol=ftol)


def _by_lane_reference(M, lanes):
    _, inv = np.unique(lanes, return_inverse=True)
    cnt = np.bincount(inv).astype(np.float64)
    out = np.array(M, dtype=np.float64)
    for c in range(out.shape[1]):
        out[:, c] -= (np.bincount(inv, weights=out[:, c]) / cnt)[inv]
    return out


@pytest.fixture
def reference_core(monkeypatch):
    """A function that runs its argument with the replaced code in place."""
    def run(f):
        with monkeypatch.context() as m:
            m.setattr(fitcore, "_lm_blocks", _lm_blocks_reference)
            m.setattr(dipole, "field_rows", _field_rows_reference)
            m.setattr(lane_mod, "field_rows", _field_rows_reference)
            m.setattr(lane_mod, "_levels", lambda geom: tuple(sensor_levels(geom)))
            m.setattr(fitcore, "by_lane", lambda M, lanes, groups=None:
                      _by_lane_reference(M, lanes))
            return f()
    return run


# ------------------------------------------------------------ forward model
finite = st.floats(-20.0, 20.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=40),
       st.lists(st.tuples(finite, finite, st.floats(0.0, 12.0)), min_size=1, max_size=6),
       st.sampled_from(["gradient", "total", "tf_gradient"]))
def test_design_columns_equal_the_stacked_reference(samples, points, kind):
    # Any samples, any sources (on a sample too: the r^2 floor), every kind:
    # the in-place columns are the stacked ones to the bit, one source at a
    # time and many at once.
    geom = SensorGeometry.from_geometry({"kind": kind}, QUANG_TRI)
    x, y = (np.array(c, dtype=float) for c in zip(*samples, strict=True))
    p = np.array(points, dtype=float)
    batch = design_batch(x, y, p[:, 0], p[:, 1], p[:, 2], geom)
    for i, (x0, y0, d) in enumerate(p):
        single = design_matrix(x, y, x0, y0, d, geom)
        ref = _field_rows_reference(x - x0, y - y0, geom.sensor_height_m + d,
                                    sensor_levels(geom)[0][1])
        for h, comp, sign in sensor_levels(geom)[1:]:
            ref += sign * _field_rows_reference(x - x0, y - y0, h + d, comp)
        np.testing.assert_array_equal(single, ref)
        np.testing.assert_array_equal(batch[i], ref)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(finite, finite, st.floats(-5.0, 5.0)), min_size=1, max_size=30),
       st.integers(0, 2))
def test_field_rows_per_point_components_equal_reference(r, axis):
    # The borehole form: one field component per point (`dipole_rows`).
    a = np.array(r, dtype=float)
    comp = np.eye(3)[np.full(len(a), axis)]
    np.testing.assert_array_equal(dipole.field_rows(a[:, 0], a[:, 1], a[:, 2], comp),
                                  _field_rows_reference(a[:, 0], a[:, 1], a[:, 2], comp))
    # and scalars give one row
    np.testing.assert_array_equal(dipole.field_rows(1.0, -2.0, 0.5, np.eye(3)[axis]),
                                  _field_rows_reference(1.0, -2.0, 0.5, np.eye(3)[axis]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=40),
       st.tuples(finite, finite, st.floats(-3.0, 3.0), finite, finite, st.floats(-3.0, 3.0)),
       st.sampled_from(["gradient", "total"]))
def test_line_design_equals_mean_of_its_points(samples, ends, kind):
    # `line_design`'s sum and division are `np.mean`'s, to the bit.
    geom = SensorGeometry.from_geometry({"kind": kind}, QUANG_TRI)
    x, y = (np.array(c, dtype=float) for c in zip(*samples, strict=True))
    e = np.array(ends, dtype=float)
    pts = line_points(e, LINE_POINTS)
    ref = design_batch(x, y, pts[:, 0], pts[:, 1], pts[:, 2], geom).mean(axis=0)
    np.testing.assert_array_equal(line_design(x, y, e, geom), ref)


def test_sensor_levels_taken_once_are_read_only_and_equal():
    geom = SensorGeometry.from_geometry({"kind": "tf_gradient"}, QUANG_TRI)
    cached = lane_mod._levels(geom)
    assert lane_mod._levels(geom) is cached
    for (h, c, s), (h0, c0, s0) in zip(cached, sensor_levels(geom), strict=True):
        assert (h, s) == (h0, s0)
        np.testing.assert_array_equal(c, c0)
        with pytest.raises(ValueError):
            c[0] = 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-1, 6), min_size=2, max_size=80), st.integers(1, 4),
       st.integers(0, 2**31 - 1))
def test_by_lane_with_groups_equals_reference(lanes, k, seed):
    ln = np.array(lanes)
    M = np.random.default_rng(seed).normal(size=(ln.size, k))
    groups = fitcore.lane_groups(ln)
    np.testing.assert_array_equal(fitcore.by_lane(M, ln, groups), _by_lane_reference(M, ln))
    np.testing.assert_array_equal(fitcore.by_lane(M, ln), _by_lane_reference(M, ln))


@settings(max_examples=40, deadline=None)
@given(st.integers(8, 400), st.integers(2, 16), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_solve_linear_many_is_each_solve_linear(n, w, m, seed):
    # The stacked solve (scaled and loaded in place) is each design's own
    # solve, bit for bit: the fit mixes them.
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(m, n, w)) * rng.uniform(1e-3, 1e3, size=w)
    v = rng.normal(size=n)
    many = fitcore.solve_linear_many(G, v)
    for j in range(m):
        np.testing.assert_array_equal(many[j], fitcore.solve_linear(G[j], v))


# ------------------------------------------------------------ the LM runs
def _same_run(a, b):
    np.testing.assert_array_equal(a.x, b.x)
    assert a.cost == b.cost
    assert a.status == b.status


@pytest.mark.parametrize("kind", ["gradient", "total", "tf_gradient"])
def test_point_runs_equal_reference(kind, reference_core):
    x, y, v, lane, geom, srcs, w = near_and_far_case(kind, 4)
    p0 = np.concatenate(srcs)

    def fits():
        return (fitcore.run_lm(p0, x, y, v, geom),                     # whole window
                fitcore.run_lm_local(p0, [1], x, y, v, geom, (4.0, 6.8), 3.0),  # one free
                fitcore.run_lm_local(p0, [0, 1], x, y, v, geom, (3.6, 6.4), 3.0),
                fitcore.refit_local(srcs, [0, 1], x, y, v, geom, lanes=lane),
                fitcore.refit_local(srcs, [0, 2], x, y, v, geom, w=w, lanes=lane))

    fast = fits()
    slow = reference_core(fits)
    for a, b in zip(fast[:3], slow[:3], strict=True):
        _same_run(a, b)
    for (a, sse_a), (b, sse_b) in zip(fast[3:], slow[3:], strict=True):
        for s, t in zip(a, b, strict=True):
            np.testing.assert_array_equal(s, t)
        assert sse_a == sse_b
    # and they are fits: the far body within 0.15 m
    assert np.hypot(fast[0].x[6] - 4.6, fast[0].x[7] - 15.0) < 0.15


@pytest.mark.parametrize("lanes", [False, True])
def test_line_refit_equals_reference(lanes, reference_core):
    # A line source (the per-design path) beside a point, weighted.
    x, y, v, lane, geom, srcs, w = near_and_far_case("total", 8, line=True)
    ll = lane if lanes else None

    def fit():
        return fitcore.refit_local(srcs, [0, 1], x, y, v, geom, w=w, lanes=ll)

    (fast, sse_fast), (slow, sse_slow) = fit(), reference_core(fit)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    assert sse_fast == sse_slow
    np.testing.assert_array_equal(fast[2], srcs[2])


@settings(max_examples=12, deadline=None)
@given(st.floats(-2.5, 2.5), st.floats(-2.5, 2.5), st.floats(0.1, 2.5), st.floats(0.05, 1.5),
       st.floats(0.0, 2.0), st.floats(-1.0, 1.0), st.floats(-1.0, 1.0))
def test_local_runs_equal_reference_for_any_pair(dx, dy, d1, d2, noise, sx, sy):
    # Any pair of bodies and any start of the new one: the run of one free
    # source and of both free, with the stepped designs made in the residual
    # evaluation, end where the old runs ended, with the same cost.
    x, y, v, _lane, geometry = survey([induced(3.5, 10.0, d1, 1.0),
                                       induced(3.5 + dx, 10.0 + dy, d2, 0.3)],
                                      kind="total", noise=noise, seed=1, n_lanes=7)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    p = np.array([3.4, 9.9, d1, 3.5 + dx + sx, 10.0 + dy + sy, 0.5])

    def runs():
        out = []
        for free in ([1], [0, 1]):
            try:
                out.append(fitcore.run_lm_local(p, free, x, y, v, geom, (3.5, 10.0), 3.0))
            except (ValueError, np.linalg.LinAlgError) as exc:
                out.append(type(exc).__name__)
        return out

    fast = runs()
    orig = fitcore._lm_blocks
    try:
        fitcore._lm_blocks = _lm_blocks_reference
        slow = runs()
    finally:
        fitcore._lm_blocks = orig
    for a, b in zip(fast, slow, strict=True):
        if isinstance(a, str) or isinstance(b, str):
            assert a == b
        else:
            _same_run(a, b)


def test_bad_starts_are_value_errors_as_before():
    # What `least_squares` refused, the direct MINPACK call refuses the same
    # way (the fits catch ValueError): a NaN start, a residual that is not
    # finite at the start, fewer residuals than parameters.
    x, y, v, _lane, geometry = survey(NEAR_AND_FAR, kind="total", seed=2)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    for run in (fitcore._lm_blocks, _lm_blocks_reference):
        def block(_b, s, xx=x, yy=y):
            return design_matrix(xx, yy, s[0], s[1], abs(s[2]), geom)

        ones = np.ones((x.size, 1))
        with pytest.raises(ValueError):
            run(np.array([3.0, np.nan, 1.0]), np.array([0, 3]), block, None, ones, v,
                max_nfev=40, xtol=1e-6, ftol=1e-8)
        bad = v.copy()
        bad[5] = np.inf
        with pytest.raises(ValueError):
            run(np.array([3.0, 6.0, 1.0]), np.array([0, 3]), block, None, ones, bad,
                max_nfev=40, xtol=1e-6, ftol=1e-8)

        def block2(_b, s):
            return design_matrix(x[:2], y[:2], s[0], s[1], abs(s[2]), geom)

        with pytest.raises(ValueError):
            run(np.array([3.0, 6.0, 1.0]), np.array([0, 3]), block2, None, None, v[:2],
                max_nfev=40, xtol=1e-6, ftol=1e-8)


# ------------------------------------------------------------ whole fits
# A bomb with a weak deep body on its flank and scrap beside it: the greedy
# searches, the line stage and the flank search all run here.
FLANK = [induced(5.0, 10.0, 0.6, 12.0), induced(7.6, 11.5, 2.2, 2.0),
         induced(3.2, 8.0, 0.2, 0.05), induced(5.5, 16.0, 1.0, 1.0)]


@pytest.mark.slow  # one joint window fitted twice (the reference path is slower)
def test_fit_sources_same_sources_and_trace_as_reference(reference_core):
    x, y, v, lane, geometry = survey(FLANK, kind="total", noise=0.3, seed=6, offsets=0.5,
                                     n_lanes=11)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)

    def fit():
        tr = FitTrace()
        res = fit_sources(x, y, v, geom, 0.3, lanes=lane, joint=True, max_residual_rounds=3,
                          trace=tr)
        return res, tr

    (fast, tr_fast), (slow, tr_slow) = fit(), reference_core(fit)
    assert tr_fast.stage("flank_search").ran
    assert tr_fast.stages == tr_slow.stages  # every stage's sources in and out, exactly
    assert len(fast) == len(slow) >= 3
    for a, b in zip(fast, slow, strict=True):
        assert (a.x, a.y, a.depth, a.method, a.flags) == (b.x, b.y, b.depth, b.method, b.flags)
        np.testing.assert_array_equal(a.moment, b.moment)
    # the bomb is found where it is
    assert min(np.hypot(f.x - 5.0, f.y - 10.0) for f in fast) < 0.3
