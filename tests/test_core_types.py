"""Core types: descriptors round-trip, blocks validate shapes, implicit times are exact."""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.events import Target, size_class
from acquisition.geomag import QUANG_TRI, EarthField, from_igrf, resolve
from acquisition.types import BlockFlags, ChannelSpec, SampleBlock, StreamDescriptor


def _desc(**kw):
    base = dict(stream_id="g0", instrument="x", serial="1", rate_hz=10.0,
                channels=(ChannelSpec("grad", "nT"),), geometry={"kind": "gradient"},
                position_dims=2)
    base.update(kw)
    return StreamDescriptor(**base)


def test_descriptor_round_trip():
    d = _desc(channels=(ChannelSpec("a", "nT", calibration={"scale": 2.0}),
                        ChannelSpec("b", "m")))
    assert StreamDescriptor.from_dict(d.to_dict()) == d
    assert d.channel_index("b") == 1
    with pytest.raises(KeyError):
        d.channel_index("zz")


@pytest.mark.parametrize("bad", [
    dict(stream_id=""), dict(rate_hz=0.0), dict(rate_hz=float("nan")), dict(channels=()),
    dict(position_dims=1),
    dict(channels=(ChannelSpec("a", "nT"), ChannelSpec("a", "nT"))),
])
def test_descriptor_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        _desc(**bad)


def test_block_times_are_implicit_and_exact():
    b = SampleBlock("g0", 0, 100, 1_000_000_000, 3.0, np.zeros((4, 1)))
    # 1/3 s steps rounded to the nearest ns, no float drift across the block.
    assert b.times_ns().tolist() == [1_000_000_000, 1_333_333_333, 1_666_666_667, 2_000_000_000]
    assert b.next_index == 104
    assert b.time_of_index_ns(106) == 3_000_000_000


def test_block_validates_shapes_and_equality():
    with pytest.raises(ValueError):
        SampleBlock("g0", 0, 0, 0, 10.0, np.zeros(5))
    with pytest.raises(ValueError):
        SampleBlock("g0", 0, 0, 0, 10.0, np.zeros((5, 1)), positions=np.zeros((4, 2)))
    a = SampleBlock("g0", 1, 0, 5, 10.0, np.arange(3.0)[:, None], np.zeros((3, 2)),
                    flags=BlockFlags.GAP)
    b = SampleBlock("g0", 1, 0, 5, 10.0, np.arange(3.0)[:, None], np.zeros((3, 2)),
                    flags=BlockFlags.GAP)
    assert a == b
    c = SampleBlock("g0", 1, 0, 5, 10.0, np.arange(3.0)[:, None], np.ones((3, 2)),
                    flags=BlockFlags.GAP)
    assert a != c


def test_size_classes_and_target_dict():
    assert size_class(0.02) == "scrap_or_bomblet"
    assert size_class(0.1) == "mortar"
    assert size_class(1.0) == "projectile"
    assert size_class(20.0) == "aircraft_bomb"
    t = Target("g0", 3, 1.0, 2.0, 1.5, (0.0, 3.0, -4.0), 0.9, lanes=(1, 2))
    d = t.to_dict()
    assert d["moment_abs"] == 5.0 and d["size_class"] == "aircraft_bomb"
    assert Target.from_dict(d) == t


def test_igrf_refuses_dates_outside_its_model_years():
    import ppigrf.ppigrf as pp

    from acquisition.geomag import IGRF_FIRST, IGRF_LAST
    g, _h = pp.read_shc(pp.shc_fn)  # the coefficient file ppigrf uses by default
    assert (g.index[0].date(), g.index[-1].date()) == (IGRF_FIRST, IGRF_LAST)
    assert from_igrf(16.75, 107.0, IGRF_LAST).total_nT > 40000
    assert from_igrf(16.75, 107.0, "2026-06-01T09:30:00") == from_igrf(16.75, 107.0,
                                                                         "2026-06-01")
    import datetime as dt
    assert from_igrf(16.75, 107.0, dt.datetime(2026, 6, 1, 9, 30)) == from_igrf(
        16.75, 107.0, dt.date(2026, 6, 1))
    for bad in ("1899-12-31", "2030-01-02"):
        with pytest.raises(ValueError, match="IGRF here covers 1900-01-01 to 2030-01-01"):
            from_igrf(16.75, 107.0, bad)
    with pytest.raises(ValueError, match="is not YYYY-MM-DD"):
        from_igrf(16.75, 107.0, "next tuesday")


def test_earth_field_vector_and_igrf():
    u = QUANG_TRI.unit_vector()
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert u[2] < 0 < u[1]  # points north and down at Quang Tri
    f = from_igrf(16.75, 107.0, "2026-06-01")
    # docs/field.md: total 43,600 nT, inclination 23.2 deg down, declination -1.4 deg.
    assert abs(f.total_nT - 43600) < 150
    assert abs(f.inclination_deg - 23.2) < 0.3
    assert abs(f.declination_deg + 1.4) < 0.3
    assert resolve() == QUANG_TRI
    assert resolve(inclination_deg=30.0).inclination_deg == 30.0
    with pytest.raises(ValueError):
        EarthField(-1.0, 10.0, 0.0)
