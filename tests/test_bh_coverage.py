"""Layer coverage statement: full plans, lone holes, gaps in logs, worst direction."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.borehole.coverage import HoleSite, layer_coverage, reach_table, single_hole_reach
from acquisition.borehole.logs import HoleLog
from acquisition.borehole.plan import quincunx

AREA = (0.0, 0.0, 8.0, 6.0)


def _planned() -> list[tuple[str, float, float]]:
    return [(h.hole, h.x, h.y) for h in quincunx(AREA).holes]


def test_full_plan_searches_the_layer_for_a_projectile() -> None:
    cov = layer_coverage(_planned(), AREA, 5.0, 10.0, min_moment=1.0, noise_nT=1.0)
    assert cov.fraction == 1.0 and cov.signed_off and not cov.gaps
    assert cov.volume_m3 == pytest.approx(8 * 6 * 5, rel=0.02)


def test_small_moments_leave_gaps_between_holes() -> None:
    fr = [layer_coverage(_planned(), AREA, 5.0, 10.0, min_moment=m, noise_nT=1.0).fraction
          for m in (0.1, 0.3, 0.5, 1.0)]
    assert fr[0] == 0.0  # mortar-sized: 2 m holes cannot sign off at 1 nT
    assert 0.0 < fr[1] < fr[2] < fr[3] == 1.0
    cov = layer_coverage(_planned(), AREA, 5.0, 10.0, min_moment=0.3, noise_nT=1.0)
    assert not cov.signed_off and cov.gaps
    assert all(5.0 <= g[2] < g[3] <= 10.0 for g in cov.gaps)


def test_one_hole_never_guarantees_anything() -> None:
    """A level moment square to the hole-object line gives no axial field."""
    cov = layer_coverage([("A", 4.0, 3.0)], AREA, 5.0, 10.0, min_moment=5.0, noise_nT=0.1)
    assert cov.fraction == 0.0
    assert single_hole_reach(5.0, 0.1, 8.0) > 2.0  # while in-plane moments are seen far


def test_gap_in_a_log_is_a_gap_in_coverage() -> None:
    sites = [HoleSite(h, x, y, 3.5, 10.0, (), 1.0) for h, x, y in _planned()]
    gappy = [HoleSite(s.hole, s.x, s.y, s.top, s.bottom, ((6.8, 7.6),), s.noise_nT)
             if abs(s.x - 4.0) < 1.5 and abs(s.y - 3.46) < 1.0 else s for s in sites]
    full = layer_coverage(sites, AREA, 5.0, 10.0, min_moment=0.3)
    holed = layer_coverage(gappy, AREA, 5.0, 10.0, min_moment=0.3)
    assert holed.fraction < full.fraction
    band = [g for g in holed.gaps if g[2] < 7.7 and g[3] > 6.7]
    assert band and all(3.0 < g[1] < 6.0 or 0 < g[1] < 4.5 for g in band)


def test_measured_noise_from_logs() -> None:
    rng = np.random.default_rng(0)
    d = np.arange(10.5, 4.5, -0.01)
    logs = [HoleLog(h, x, y, d, rng.normal(0, 0.5, len(d))) for h, x, y in _planned()]
    cov = layer_coverage(logs, AREA, 5.0, 10.0, min_moment=1.0)
    assert cov.fraction == 1.0
    short = [HoleLog(h, x, y, d[d < 8], rng.normal(0, 0.5, np.count_nonzero(d < 8)))
             for h, x, y in _planned()]
    cov2 = layer_coverage(short, AREA, 5.0, 10.0, min_moment=1.0)
    assert cov2.slice_fraction[cov2.slice_depths > 8.0].max() == 0.0


def test_reach_table_is_symmetric_and_decays() -> None:
    t = reach_table()
    assert np.allclose(t[:, 0], t[:, -1], rtol=1e-9)
    assert np.all(np.diff(t[:, 45]) < 0)


@pytest.mark.parametrize("bad", [dict(top=5.0, bottom=5.0), dict(top=5.0, bottom=10.0,
                                                                 min_moment=0.0)])
def test_bad_arguments(bad: dict) -> None:
    with pytest.raises(ValueError):
        layer_coverage(_planned(), AREA, **bad)
