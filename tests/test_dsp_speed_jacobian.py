"""The source fits' Jacobian shortcut (`fitcore._lm_blocks`) gives the global answer.

`_lm_blocks` recomputes, for a step in one source's parameters, that
source's design columns only and reuses every other source's columns from the
base point. These tests run the same fits with the plain global path (a
`least_squares` that differences the whole residual, as the fits did before)
and require the same positions, depths and targets, on sources far apart and
near together.
"""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import NEAR_AND_FAR, induced, near_and_far_case, survey
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import least_squares

import acquisition.dsp.fitcore as fitcore
from acquisition.dsp.batch import process_survey
from acquisition.dsp.fit import fit_sources
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI


def _lm_global(q0, cuts, block, left, right, v, *, max_nfev, xtol, ftol, many=None):
    """The global path: every residual evaluation builds every source's columns."""
    def fun(q):
        cols = [] if left is None else [left]
        cols += [block(b, q[cuts[b]:cuts[b + 1]]) for b in range(len(cuts) - 1)]
        if right is not None:
            cols.append(right)
        G = np.hstack(cols)
        return G @ fitcore.solve_linear(G, v) - v

    return least_squares(fun, q0, method="lm", x_scale=np.full(len(q0), 0.3),
                         max_nfev=max_nfev, xtol=xtol, ftol=ftol)


@pytest.mark.parametrize("kind", ["gradient", "total", "tf_gradient"])
def test_run_equals_global_path(kind):
    x, y, v, _lane, geometry = survey(NEAR_AND_FAR, kind=kind, noise=0.3, seed=3)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    p0 = np.array([3.0, 5.5, 1.0, 4.4, 7.2, 0.6, 5.0, 14.0, 1.0])
    fast = fitcore.run_lm(p0, x, y, v, geom)
    orig = fitcore._lm_blocks
    try:
        fitcore._lm_blocks = _lm_global
        slow = fitcore.run_lm(p0, x, y, v, geom)
    finally:
        fitcore._lm_blocks = orig
    np.testing.assert_allclose(fast.x, slow.x, rtol=0, atol=1e-9)
    assert fast.cost == pytest.approx(slow.cost, rel=1e-9)
    # and the fit is a fit: the far body within 0.15 m and 0.2 m in depth
    assert np.hypot(fast.x[6] - 4.6, fast.x[7] - 15.0) < 0.15
    assert abs(fast.x[8] - 1.5) < 0.2


def test_run_local_equals_global_path():
    x, y, v, _lane, geometry = survey(NEAR_AND_FAR, kind="gradient", noise=0.3, seed=5)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    p = np.array([3.2, 6.0, 0.8, 4.0, 7.0, 0.5, 4.6, 15.0, 1.5])
    fast = fitcore.run_lm_local(p, [0, 1], x, y, v, geom, (3.6, 6.4), 3.0)
    orig = fitcore._lm_blocks
    try:
        fitcore._lm_blocks = _lm_global
        slow = fitcore.run_lm_local(p, [0, 1], x, y, v, geom, (3.6, 6.4), 3.0)
    finally:
        fitcore._lm_blocks = orig
    np.testing.assert_allclose(fast.x, slow.x, rtol=0, atol=1e-9)
    # the held far source did not move
    np.testing.assert_array_equal(fast.x[6:], p[6:])


def _fits(x, y, v, geom, lane):
    return [(f.x, f.y, f.depth, f.method) for f in
            fit_sources(x, y, v, geom, 0.3, lanes=lane, joint=True, max_residual_rounds=3)]


@pytest.mark.slow  # the global path of a joint window: tens of seconds on a loaded machine
@pytest.mark.parametrize("kind", ["gradient", "total"])
def test_fit_sources_same_targets_as_global_path(kind, monkeypatch):
    x, y, v, lane, geometry = survey(NEAR_AND_FAR, kind=kind, noise=0.3, seed=11, offsets=0.5)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    fast = _fits(x, y, v, geom, lane)
    monkeypatch.setattr(fitcore, "_lm_blocks", _lm_global)
    slow = _fits(x, y, v, geom, lane)
    assert len(fast) == len(slow) >= 2
    for a, b in zip(fast, slow, strict=True):
        assert a[3] == b[3]
        np.testing.assert_allclose(a[:3], b[:3], rtol=0, atol=1e-9)
    # the far body is found where it is
    assert min(np.hypot(f[0] - 4.6, f[1] - 15.0) for f in fast) < 0.2


@pytest.mark.slow
def test_process_survey_same_targets_as_global_path(monkeypatch):
    x, y, v, _lane, geometry = survey(NEAR_AND_FAR, kind="total", noise=0.3, seed=2,
                                      n_lanes=9, length=22.0)
    fast = process_survey(x, y, v, geometry=geometry, field=QUANG_TRI).targets
    monkeypatch.setattr(fitcore, "_lm_blocks", _lm_global)
    slow = process_survey(x, y, v, geometry=geometry, field=QUANG_TRI).targets
    assert len(fast) == len(slow) >= 2
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose([a.x, a.y, a.depth, a.sigma_depth],
                                   [b.x, b.y, b.depth, b.sigma_depth], rtol=0, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), st.floats(0.1, 2.5), st.floats(0.05, 1.5),
       st.floats(0.0, 2.0))
def test_jacobian_is_scipys_forward_difference(dx, dy, d1, d2, noise):
    # Any pair of sources (coincident to 4 m apart, any depths, with noise):
    # the block Jacobian equals scipy's own 2-point difference to the bit.
    from scipy.optimize._numdiff import approx_derivative

    x, y, v, _lane, geometry = survey([induced(3.5, 10.0, d1, 1.0),
                                       induced(3.5 + dx, 10.0 + dy, d2, 0.3)],
                                      kind="total", noise=noise, seed=1, n_lanes=7)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    q = np.array([3.4, 9.9, d1, 3.5 + dx, 10.0 + dy, -d2])  # a negative depth is folded

    def block(_b, s):
        return fitcore.design_matrix(x, y, s[0], s[1], abs(s[2]), geom)

    seen = {}

    def spy(fun, jac, q0, **_kw):
        seen["J"] = jac(q0)
        seen["ref"] = approx_derivative(fun, q0, method="2-point", f0=fun(q0))
        return None

    orig = fitcore._minpack_lm
    try:
        fitcore._minpack_lm = spy
        fitcore._lm_blocks(q, np.array([0, 3, 6]), block, None, np.ones((x.size, 1)), v,
                           max_nfev=10, xtol=1e-6, ftol=1e-8)
    finally:
        fitcore._minpack_lm = orig
    np.testing.assert_array_equal(seen["J"], seen["ref"])


@pytest.mark.parametrize("lanes", [False, True])
def test_refit_local_with_a_line_equals_global_path(lanes):
    # A line source (6 parameters, 3 columns) beside a point, per-lane offsets
    # or one offset, weighted: the block bookkeeping of `refit_local`.
    x, y, v, lane, geom, srcs, w = near_and_far_case("total", 8, line=True)
    ll = lane if lanes else None
    fast, sse_fast = fitcore.refit_local(srcs, [0, 1], x, y, v, geom, w=w, lanes=ll)
    orig = fitcore._lm_blocks
    try:
        fitcore._lm_blocks = _lm_global
        slow, sse_slow = fitcore.refit_local(srcs, [0, 1], x, y, v, geom, w=w, lanes=ll)
    finally:
        fitcore._lm_blocks = orig
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
    assert sse_fast == pytest.approx(sse_slow, rel=1e-9)
    # the held source is untouched and the fit improved on the start
    np.testing.assert_array_equal(fast[2], srcs[2])
    assert not np.allclose(fast[0], srcs[0])
