"""Forward model cross-checks, per-hole detection and the single-hole distance estimate."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.borehole.detect import detect, fit_distance
from acquisition.borehole.logs import HoleLog, condition
from acquisition.forward import dipole_field, gradient_reading, reference_field


def test_forward_matches_textbook_formula() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, s, m = rng.normal(size=3) * 3, rng.normal(size=3) * 3, rng.normal(size=3)
        ours = dipole_field(p[None, :], s, m)[0]
        assert np.allclose(ours, reference_field(tuple(p), tuple(s), tuple(m)), rtol=1e-10)


def test_gradient_is_lower_minus_upper_bz() -> None:
    src, m = np.array([0.7, 0.2, -7.0]), np.array([0.3, -0.5, 1.2])
    d = np.array([6.0, 7.0, 8.0])
    g = gradient_reading(np.zeros(3), np.zeros(3), d, 0.65, src, m)
    for i, di in enumerate(d):
        lo = reference_field((0, 0, -di), tuple(src), tuple(m))[2]
        up = reference_field((0, 0, -di + 0.65), tuple(src), tuple(m))[2]
        assert g[i] == pytest.approx(lo - up, rel=1e-10)


def test_tangential_moment_is_invisible_to_one_hole() -> None:
    """Why one hole never suffices: a level moment square to the hole-object line."""
    d = np.linspace(4, 10, 200)
    g = gradient_reading(np.zeros(200), np.zeros(200), d, 0.65, np.array([1.0, 0, -7]),
                         np.array([0, 1.0, 0]))
    assert np.max(np.abs(g)) < 1e-9


def _log(rho: float, az: float, z: float, m: tuple[float, float, float], noise: float,
         seed: int) -> HoleLog:
    rng = np.random.default_rng(seed)
    d = np.arange(10, 4, -0.01)
    src = np.array([rho * np.cos(az), rho * np.sin(az), -z])
    v = gradient_reading(np.zeros_like(d), np.zeros_like(d), d, 0.65, src, np.array(m))
    v = v + rng.normal(0, noise, len(d)) + 12.0
    return HoleLog("H", 0.0, 0.0, d, v, t=np.arange(len(d)) * 0.1)


@pytest.mark.parametrize("rho,z,m", [
    (0.5, 6.0, (0.3, 0.2, -0.9)),
    (0.9, 7.2, (1.0, -0.5, -0.4)),
    (1.3, 8.0, (2.0, 1.0, -3.0)),
    (1.8, 6.5, (5.0, 0.0, -10.0)),
])
def test_single_hole_distance_and_depth(rho: float, z: float, m: tuple) -> None:
    pl = condition(_log(rho, 2.0, z, m, 0.5, seed=int(rho * 10)))
    found = detect(pl)
    assert len(found) == 1
    a = fit_distance(pl, found[0])
    assert a.fit_ok
    assert a.distance_m == pytest.approx(rho, abs=0.08)
    assert a.depth_fit == pytest.approx(z, abs=0.08)
    assert a.sigma_distance_m < 0.2


def test_quiet_log_gives_no_anomaly() -> None:
    pl = condition(_log(1.0, 0.0, 7.0, (0.0, 0.0, 0.0), 0.5, seed=5))
    assert detect(pl) == []


def test_two_separate_objects_in_one_hole() -> None:
    a = _log(0.6, 0.0, 5.5, (0.2, 0.0, -0.5), 0.3, seed=1)
    b = _log(0.8, 1.0, 8.5, (0.3, 0.1, -0.6), 0.0, seed=2)
    both = HoleLog("H", 0.0, 0.0, a.depth, a.values + b.values - 12.0, t=a.t)
    found = detect(condition(both))
    assert len(found) == 2
    assert sorted(round(x.depth_peak) for x in found) == [6, 9]


def test_fast_basis_equals_the_full_tensor_reference() -> None:
    # The fits use one field component per row (dipole_rows, cached sensor
    # geometry, line points in one pass); the plain reference is dipole_basis.
    from acquisition.borehole.locate import LINE_POINTS, Obs, obs_basis, source_basis
    from acquisition.forward import dipole_basis

    rng = np.random.default_rng(0)
    n = 60
    comp = np.r_[np.full(40, -1), rng.integers(0, 3, 20)]
    o = Obs(rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(3, 10, n),
            np.full(n, 0.65), comp, np.zeros(n, int), np.zeros(n), np.ones(n), [], [])

    def reference(src: np.ndarray) -> np.ndarray:
        lower = np.column_stack([o.x, o.y, -o.depth])
        upper = lower + np.array([0.0, 0.0, 0.65])
        bl, bu = dipole_basis(lower, src), dipole_basis(upper, src)
        return np.array([bl[i, 2] - bu[i, 2] if c < 0 else bl[i, c] for i, c in enumerate(comp)])

    src = np.array([0.3, -0.2, -6.0])
    np.testing.assert_allclose(obs_basis(o, src), reference(src), rtol=1e-12, atol=1e-12)
    p = np.array([0.3, -0.2, 6.0, 0.2, 0.1, -0.3])
    ts = (np.arange(LINE_POINTS) + 0.5) / LINE_POINTS * 2.0 - 1.0
    line = sum(reference(src + t * p[3:]) for t in ts) / LINE_POINTS
    np.testing.assert_allclose(source_basis(o, p), line, rtol=1e-12, atol=1e-12)


def test_batched_distance_grid_equals_one_solve_per_point() -> None:
    from acquisition.borehole.detect import _grid_costs, _rz_basis

    src, m = np.array([1.1, 0.0, -7.0]), np.array([0.4, 0.3, -1.0])
    d = np.arange(9.0, 5.0, -0.05)
    y = gradient_reading(np.zeros(len(d)), np.zeros(len(d)), d, 0.65, src, m) + 3.0
    pl = condition(HoleLog("A", 0.0, 0.0, d, y))
    rhos, zs = np.array([0.5, 1.1, 2.0]), np.array([6.5, 7.0, 7.5])
    fast = _grid_costs(pl, d, y, rhos, zs)
    for i, rho in enumerate(rhos):
        for j, z in enumerate(zs):
            a = np.column_stack([_rz_basis(pl, d, rho, z), np.ones(len(d))])
            coef, *_ = np.linalg.lstsq(a, y, rcond=None)
            r = y - a @ coef
            assert fast[i, j] == pytest.approx(float(r @ r), rel=1e-6, abs=1e-9)
    assert np.unravel_index(np.argmin(fast), fast.shape) == (1, 1)  # the true place
