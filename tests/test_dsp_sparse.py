"""The sparse re-model of deep sources (`sparse_deep`, `acquisition/dsp/sparsefit.py`).

Carpet bombing: three bombs 4-4.6 m deep, 3.5-4.5 m apart give one anomaly
that the greedy stages fit as fewer, deeper, bigger sources; with the stage
each bomb has its own report. The selection (group orthogonal matching
pursuit over grid candidates), given a model of all but one of a
noise-free sum of grid-point dipoles (as the stage asks it, one pick at a
time), picks the missing one exactly, and adds a block only when it pays
under the one criterion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from dsp_synth import induced, lanes_xy, survey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.dsp.acceptance import prefers
from acquisition.dsp.fit import FitTrace, fit_sources
from acquisition.dsp.fitconfig import FitConfig
from acquisition.dsp.sparsefit import SOURCE_PARAMS, candidate_grid, select_blocks
from acquisition.forward import SensorGeometry, design_batch
from acquisition.geomag import QUANG_TRI

GRAD = SensorGeometry.from_geometry(
    {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)
#: (x, y, depth, |moment| A m^2): 4.2, 4.5 and 4.3 m apart.
BOMBS = [(6.0, 8.0, 4.2, 40.0), (10.0, 8.6, 4.6, 30.0), (8.2, 11.8, 4.0, 35.0)]


def _three_bombs(kind: str, sparse: bool, joint: bool, restart: bool = True):
    x, y, v, lane, g = survey([induced(*b) for b in BOMBS], kind=kind, noise=0.3, seed=4,
                              n_lanes=16, length=20.0)
    geom = SensorGeometry.from_geometry(g, QUANG_TRI)
    trace = FitTrace()
    fits = fit_sources(x, y, v, geom, 0.3, thr=1.5, lanes=lane if joint else None,
                       joint=joint, max_residual_rounds=3 if joint else 0,
                       config=FitConfig(sparse_deep=sparse, restart_deep=restart),
                       trace=trace)
    return fits, trace


def _nearest(fits, bx: float, by: float):
    return min(fits, key=lambda f: math.hypot(f.x - bx, f.y - by))


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "joint"), [("gradient", False), ("total", True)])
def test_three_bombs_4_to_4_6_m_deep_each_get_their_own_report(kind, joint):
    fits, trace = _three_bombs(kind, True, joint)
    assert len(fits) == 3
    for bx, by, bd, bm in BOMBS:
        f = _nearest(fits, bx, by)
        assert math.hypot(f.x - bx, f.y - by) <= 0.5, (bx, by, f)
        assert abs(f.depth - bd) <= max(0.15 * bd, 0.10), (bd, f.depth)
        assert np.linalg.norm(f.moment) == pytest.approx(bm, rel=0.25)
    # Distinct reports: each bomb its own.
    assert len({id(_nearest(fits, bx, by)) for bx, by, _d, _m in BOMBS}) == 3
    rec = trace.stage("sparse_deep")
    assert rec.ran and rec.dropped and all(rule == "sparse_deep" for _s, rule in rec.dropped)


@pytest.mark.slow
def test_without_the_stage_the_three_bombs_come_out_as_fewer_deeper_sources():
    # `restart_deep` off too: it would also give each bomb its own source.
    fits, trace = _three_bombs("gradient", False, False, restart=False)
    assert not trace.stage("sparse_deep").ran
    worst = max(math.hypot(_nearest(fits, bx, by).x - bx, _nearest(fits, bx, by).y - by)
                for bx, by, _d, _m in BOMBS)
    assert len(fits) < 3 or worst > 0.5
    assert max(f.depth for f in fits) > 5.0


# ------------------------------------------------------------------ the selection
X, Y, _LANE = lanes_xy(8, 8.0, step=0.2)
PTS = candidate_grid((1.0, 7.0, 1.0, 7.0), (1.5, 2.5), 1.0, 200)
BLOCKS = design_batch(X, Y, PTS[:, 0], PTS[:, 1], PTS[:, 2], GRAD)  # (c, n, 3)
OFFSET = np.ones((X.size, 1))
SEL = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _apart(idx: list[int], sep: float) -> bool:
    return all(math.hypot(*(PTS[a, :2] - PTS[b, :2])) >= sep
               for i, a in enumerate(idx) for b in idx[i + 1:])


moments = st.tuples(st.floats(5.0, 50.0), st.floats(-1.0, 1.0), st.floats(-1.0, 1.0),
                    st.floats(0.3, 1.0))


@SEL
@given(st.lists(st.integers(0, len(PTS) - 1), min_size=1, max_size=3, unique=True),
       st.lists(moments, min_size=3, max_size=3), st.floats(-5.0, 5.0))
def test_given_the_others_the_missing_grid_dipole_is_picked_exactly(idx, ms, offset):
    if not _apart(idx, 3.0):
        return
    v = np.full(X.size, offset)
    for k, (size, ux, uy, uz) in zip(idx, ms, strict=False):
        u = np.array([ux, uy, uz]) / math.sqrt(ux * ux + uy * uy + uz * uz)
        v += BLOCKS[k] @ (size * u)
    # The others in the model (their blocks among the base columns): each
    # of them, and every candidate near it, buys nothing more; the missing
    # one buys the whole residual.
    base = np.hstack([OFFSET, *[BLOCKS[k] for k in idx[:-1]]])
    assert select_blocks(BLOCKS, v, base, PTS, 10.0, 1, 2.0) == [idx[-1]]
    if len(idx) == 1:  # alone: found, and then nothing more pays
        assert select_blocks(BLOCKS, v, OFFSET, PTS, 10.0, 5, 2.0) == idx


@SEL
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 40.0), st.integers(0, 3))
def test_every_block_chosen_pays_and_the_next_best_does_not(seed, bar, n_src):
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 0.5, X.size)
    for k in rng.choice(len(PTS), n_src, replace=False):
        v += BLOCKS[k] @ rng.normal(0.0, 3.0, 3)
    chosen = select_blocks(BLOCKS, v, OFFSET, PTS, bar, 4, 2.0)

    def rss(sel: list[int]) -> float:
        M = np.hstack([OFFSET, *[BLOCKS[j] for j in sel]])
        r = v - M @ np.linalg.lstsq(M, v, rcond=None)[0]
        return float(r @ r)

    for i in range(len(chosen)):
        drop = rss(chosen[:i]) - rss(chosen[:i + 1])
        assert prefers(drop * (1 + 1e-6) + 1e-6, X.size, SOURCE_PARAMS, bar)
    if len(chosen) < 4:
        far = [j for j in range(len(PTS)) if _apart([*chosen, j], 2.0) and j not in chosen]
        best = max((rss(chosen) - rss([*chosen, j]) for j in far), default=-math.inf)
        assert not prefers(best * (1 - 1e-6) - 1e-6, X.size, SOURCE_PARAMS, bar)
